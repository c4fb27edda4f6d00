#!/usr/bin/env bash
# bench/in_session.sh: the cost of one step transition in the calling session.
#
# CALL chainexec.chain_run() of a chain of BENCH_STEPS (default 200) no-op
# sql steps ("SELECT 1"), repeated in one session for about BENCH_SECONDS
# (default 5, at least 3 calls): steps per second and microseconds per
# step, as the client sees the CALL (creation, every transition with its
# commit, the result).  Right after it, on the same server, pgbench with one
# client for the same duration, running a comparable transaction: a
# one-row UPDATE and a one-row INSERT (prepared statements).  The pair is
# repeated BENCH_ROUNDS times (default 3), alternating, so that load from
# elsewhere on the machine hits both sides alike; the ratio is
# chainexec steps/s over pgbench transactions/s.  With synchronous_commit on
# and off (BENCH_SYNC, default "on off").
#
# No executor runs (chainexec.max_workers = 0): nothing but chain_run
# touches the lines.  Usage (builds this tree into a private installation):
#   bench/in_session.sh
#   BENCH_STEPS=50 BENCH_ROUNDS=5 BENCH_SYNC=off bench/in_session.sh
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_STEPS=${BENCH_STEPS:-200}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SYNC=${BENCH_SYNC:-on off}

# call_times REPS: run chain_run REPS times in one session after one warm-up
# call; print each timed call's duration in ms.
call_times()
{
	local reps=$1 i

	{
		echo "CALL chainexec.chain_run('bench-run', '{}');"
		echo '\timing on'
		for i in $(seq 1 "$reps"); do
			echo "CALL chainexec.chain_run('bench-run', '{}');"
		done
	} | "$CE_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -o /dev/null |
		awk '/^Time: / { print $2 }'
}

say "chainexec in-session benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(bench_machine)"
say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_install
bench_cluster_start 0
bench_define_noop bench-run "$BENCH_STEPS"
say "chain: $BENCH_STEPS sql steps \"SELECT 1\"; $BENCH_ROUNDS rounds of about ${BENCH_SECONDS}s each side"
say ""

summary=()
for sync in $BENCH_SYNC; do
	bench_set_sync "$sync"
	say "synchronous_commit = $sync"
	bench_reset
	one=$(call_times 1 | head -n 1)
	reps=$(awk -v d="$BENCH_SECONDS" -v t="$one" 'BEGIN { r = int(d * 1000 / t + 0.5); print (r < 3 ? 3 : r) }')

	all_times=
	ce_ms=0 ce_steps=0 pg_secs=0 pg_txns=0 ratios=
	for round in $(seq 1 "$BENCH_ROUNDS"); do
		bench_reset
		times=$(call_times "$reps")
		n=$(printf '%s\n' "$times" | grep -c .)
		[ "$n" -eq "$reps" ] || die "expected $reps timings, got $n"
		bad=$(bq "SELECT count(*) FROM chainexec.universal_transactions WHERE status <> 'completed'")
		[ "$bad" = 0 ] || die "$bad executions did not complete"
		ms=$(printf '%s\n' "$times" | awk '{ s += $1 } END { printf "%.3f", s }')
		all_times+="$times"$'\n'
		r_steps_s=$(calc "$BENCH_STEPS * $n / ($ms / 1000)" 0)

		secs=$(awk -v t="$ms" 'BEGIN { s = int(t / 1000 + 0.5); print (s < 1 ? 1 : s) }')
		bench_reset
		bench_pgbench "$BENCH_TMP/update_insert.sql" 1 "$secs"
		r_ratio=$(calc "$r_steps_s / $PGB_TPS" 3)
		say "  round $round: chain_run $n x $BENCH_STEPS steps in $(calc "$ms / 1000" 2)s = $r_steps_s steps/s;" \
			"pgbench ${secs}s = $(calc "$PGB_TPS" 0) TPS; ratio $r_ratio"

		ce_ms=$(calc "$ce_ms + $ms" 3)
		ce_steps=$((ce_steps + BENCH_STEPS * n))
		pg_secs=$((pg_secs + secs))
		pg_txns=$(calc "$pg_txns + $PGB_TPS * $secs" 1)
		ratios+="$r_ratio"$'\n'
	done

	read -r ncalls med p95 _ <<<"$(printf '%s' "$all_times" | bench_stats)"
	steps_s=$(calc "$ce_steps / ($ce_ms / 1000)" 0)
	us_step=$(calc "$ce_ms * 1000 / $ce_steps" 1)
	tps=$(calc "$pg_txns / $pg_secs" 0)
	us_txn=$(calc "$pg_secs * 1000000 / $pg_txns" 1)
	ratio=$(calc "$steps_s / $tps" 2)
	read -r _ rmed _ _ <<<"$(printf '%s' "$ratios" | bench_stats)"
	rmin=$(printf '%s' "$ratios" | sort -g | head -n 1)
	rmax=$(printf '%s' "$ratios" | sort -g | tail -n 1)
	say "  chain_run: $ncalls calls, per call median $med ms, p95 $p95 ms"
	say "             $steps_s steps/s, $us_step us/step"
	say "  pgbench  : 1 client, ${pg_secs}s, UPDATE + INSERT: $tps TPS, $us_txn us/transaction"
	say "  ratio    : $ratio (chainexec steps/s / pgbench TPS; per round median $rmed, min $rmin, max $rmax)"
	say ""
	summary+=("$(printf '%-18s %10s %9s %12s %9s %7s %16s' "$sync" "$steps_s" "$us_step" "$tps" "$us_txn" "$ratio" "$rmin-$rmax")")
done

say "summary ($BENCH_STEPS-step chain_run vs pgbench UPDATE + INSERT, 1 client)"
printf '%-18s %10s %9s %12s %9s %7s %16s\n' synchronous_commit "steps/s" "us/step" "pgbench TPS" "us/txn" ratio "round ratios"
for r in "${summary[@]}"; do
	printf '%s\n' "$r"
done
