#!/usr/bin/env bash
# bench/cpu.sh: the CPU time of one step transition against the CPU time of
# one pgbench transaction, on the server: a measure that the load of a
# shared machine disturbs much less than throughput (no waiting for a core
# is counted), for comparing builds.
#
# One executor (chainexec.max_workers = 1), synchronous_commit off (BENCH_SYNC),
# the history of bench_reset.  BENCH_ROUNDS rounds (default 3) of:
#   (a) pgbench, 1 client, BENCH_TXNS transactions (default 20000) of
#       UPDATE + INSERT + pg_notify; the CPU its backend used, read from the
#       postmaster's children times once it exited: us per transaction;
#   (b) BENCH_EXECUTIONS executions (default 1000) of the 10-step chain
#       queued in one transaction, then run by the executor; the CPU the
#       executor used (/proc/PID/stat): us per step; and the transaction
#       ids and multixacts the executions used per step (checkpoints before
#       and after, outside the CPU measure: pg_control_checkpoint() tells the
#       next multixact only as of the last checkpoint).
# Ratio: (a) / (b), i.e. how many steps cost the CPU of one pgbench
# transaction (1.0: a step costs what a transaction costs).  Linux only.
#
# Usage:  bench/cpu.sh      BENCH_SRC=/other/tree bench/cpu.sh
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SYNC=${BENCH_SYNC:-off}
BENCH_EXECUTIONS=${BENCH_EXECUTIONS:-1000}
BENCH_TXNS=${BENCH_TXNS:-20000}
BENCH_CHAIN_STEPS=10
HZ=$(getconf CLK_TCK)

say "chainexec CPU benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(bench_machine)"
say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_install
bench_cluster_start 1
bench_define_noop bench-noop "$BENCH_CHAIN_STEPS"
bench_set_sync "$BENCH_SYNC"
postmaster=$(head -n 1 "$PGDATA/postmaster.pid")
say "synchronous_commit = $BENCH_SYNC; $BENCH_ROUNDS rounds of: pgbench 1 client $BENCH_TXNS transactions," \
	"$BENCH_EXECUTIONS executions x $BENCH_CHAIN_STEPS steps through 1 executor"
ratios= steps= txns= xids= multis=
for round in $(seq 1 "$BENCH_ROUNDS"); do
	bench_reset
	for i in 1 2 3; do
		bq "SELECT chainexec.chain_execute('bench-noop', '{\"phase\": \"warmup\"}')" >/dev/null
	done
	sleep 1
	executor=$(bq "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor'")

	c0=$(bench_ticks "$postmaster" children)
	"$CE_PGBIN/pgbench" -n -M prepared -f "$BENCH_TMP/update_insert_notify.sql" -c 1 -j 1 -t "$BENCH_TXNS" >/dev/null 2>&1 ||
		die "pgbench failed"
	sleep 0.5
	c1=$(bench_ticks "$postmaster" children)
	us_txn=$(calc "($c1 - $c0) * 1000000 / $HZ / $BENCH_TXNS" 1)

	read -r x0 m0 <<<"$(bq "CHECKPOINT; SELECT txid_current(), next_multixact_id FROM pg_control_checkpoint()" | tr '|' ' ')"
	bq "SELECT count(chainexec.chain_execute('bench-noop', '{\"phase\": \"cpu\"}')) FROM generate_series(1, $BENCH_EXECUTIONS)" >/dev/null
	t0=$(bench_ticks "$executor")
	while [ "$(bench_unfinished)" != 0 ]; do
		sleep 0.5
	done
	t1=$(bench_ticks "$executor")
	bad=$(bq "SELECT count(*) FROM chainexec.universal_transactions WHERE status <> 'completed'")
	[ "$bad" = 0 ] || die "$bad executions did not complete"
	us_step=$(calc "($t1 - $t0) * 1000000 / $HZ / ($BENCH_EXECUTIONS * $BENCH_CHAIN_STEPS)" 1)
	r=$(calc "$us_txn / $us_step" 3)
	# the ids: less the batch's own and the txid_current() calls'
	read -r x1 m1 <<<"$(bq "CHECKPOINT; SELECT txid_current(), next_multixact_id FROM pg_control_checkpoint()" | tr '|' ' ')"
	xid=$(calc "($x1 - $x0 - 2) / ($BENCH_EXECUTIONS * $BENCH_CHAIN_STEPS)" 2)
	multi=$(calc "($m1 - $m0) / ($BENCH_EXECUTIONS * $BENCH_CHAIN_STEPS)" 2)
	ratios+="$r"$'\n' steps+="$us_step"$'\n' txns+="$us_txn"$'\n' xids+="$xid"$'\n' multis+="$multi"$'\n'
	say "  round $round: pgbench backend $us_txn us CPU per transaction; executor $us_step us CPU per step; ratio $r;" \
		"per step $xid transaction ids and $multi multixacts"
done
say "median: pgbench $(printf '%s' "$txns" | bench_stats | awk '{ print $2 }') us/transaction," \
	"executor $(printf '%s' "$steps" | bench_stats | awk '{ print $2 }') us/step," \
	"ratio $(calc "$(printf '%s' "$ratios" | bench_stats | awk '{ print $2 }')" 2)"
say "per step: $(printf '%s' "$xids" | bench_stats | awk '{ print $2 }') transaction ids and" \
	"$(printf '%s' "$multis" | bench_stats | awk '{ print $2 }') multixacts (medians; a pgbench transaction uses 1 and 0)"
