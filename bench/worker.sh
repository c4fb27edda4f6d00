#!/usr/bin/env bash
# bench/worker.sh: throughput and latency of the background executors.
#
# For each synchronous_commit setting (BENCH_SYNC, default "on off"; set with
# ALTER SYSTEM + reload) and each chainexec.max_workers setting
# (BENCH_WORKERS, default "1 2"; the server restarts between settings, the
# GUC is PGC_POSTMASTER), BENCH_ROUNDS rounds (default 3) of, in this order:
#
#  (a) pgbench baseline, as many clients as executors, BENCH_SECONDS (default
#      5): a transaction comparable to one step transition, a one-row
#      UPDATE + a one-row INSERT + pg_notify with a payload the size of a
#      step event (prepared statements).  Transactions per second.
#  (b) throughput: BENCH_EXECUTIONS (default 1000) executions of a chain of
#      10 no-op sql steps, each setting an output variable (step i runs
#      "SELECT i AS vi" with outputVariables ["vi"]), started by one client with
#      chain_execute, 10 per transaction (so that starting them is rarely
#      the bottleneck).  Measured from the first execution's start to the
#      last one's end: max(finished_at) - min(created_at) in
#      chainexec.universal_transactions.  Steps per second.
#  (c) latency: BENCH_LAT_RUNS (default 100) executions of the same chain,
#      one at a time, each a pgbench transaction of two prepared statements
#      (chain_execute, committed, then chain_wait), and
#  (d) its baseline: single-client pgbench transactions of (a);
#      both run by pgbench (one client, -M prepared, every transaction's
#      latency logged), interleaved in BENCH_LAT_CHUNKS (default 10) chunks
#      of BENCH_LAT_RUNS / BENCH_LAT_CHUNKS executions and
#      BENCH_LAT_BASE_TX (default 100) baseline transactions, the first
#      transaction of each pgbench run (a new connection) left out: the
#      disk's flush time and the machine's load change from one second to
#      the next, so the two are measured side by side, with the same client
#      and protocol.  Median and p95 of finished_at - created_at (server
#      side) and of the pgbench transaction (client side), against ten times
#      the median baseline transaction.
#  (e) in session: BENCH_LAT_RUNS calls of CALL chain_run() of the same
#      chain in one session (no executor takes part): the median time the
#      client saw per call, against the same baseline as (c).
# and once per synchronous_commit setting, pgbench with 4 clients.
# With synchronous_commit = on, for the last executor count, BENCH_ROUNDS more
# rounds of (a), (b), (d) and (c) with chainexec.group_commit = BENCH_GROUP
# (default 8; 1 or empty skips them) and chainexec.group_commit_window =
# BENCH_GROUP_WINDOW (default: the setting's default): the "grouped N" rows, target >= 2.0 x pgbench for throughput;
# each round also says how many steps one commit of the executors carried
# (from pg_stat_database.xact_commit, less the client's own transactions)
# and so how long a group kept its first transition waiting for its commit.
#
# Each round's chainexec figure is divided by the baseline measured next to
# it; the machine's load changes from one minute to the next, so the
# per-round ratios and their median say more than absolute figures.
#
# Targets (issue 15): throughput >= 0.80 x pgbench with synchronous_commit
# off and >= 1.0 x with it on, at the same number of concurrent transactions
# (executors = clients); a 10-step execution within 1.0 x ten single-client
# pgbench transaction latencies (client-observed median).  The summary starts
# with the ratio table (steps/s against TPS for every setting).
#
# BENCH_PROFILE=1 also preloads pg_stat_statements (track = all) and prints
# the statements that took most time during each throughput run, and the
# table scans (this slows everything down a little: do not compare its
# figures with a normal run).  BENCH_RESET_VACUUM=1: see bench/lib.sh.
#
# Usage (builds this tree into a private installation first, see lib.sh):
#   bench/worker.sh
#   BENCH_SYNC=off BENCH_WORKERS=2 BENCH_ROUNDS=1 BENCH_EXECUTIONS=500 bench/worker.sh
#   BENCH_SRC=/path/to/other/tree bench/worker.sh   (measure another build)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SYNC=${BENCH_SYNC:-on off}
BENCH_WORKERS=${BENCH_WORKERS:-1 2}
BENCH_EXECUTIONS=${BENCH_EXECUTIONS:-1000}
BENCH_LAT_RUNS=${BENCH_LAT_RUNS:-100}
BENCH_LAT_CHUNKS=${BENCH_LAT_CHUNKS:-10}
BENCH_LAT_BASE_TX=${BENCH_LAT_BASE_TX:-100}
BENCH_GROUP=${BENCH_GROUP-8}
BENCH_GROUP_WINDOW=${BENCH_GROUP_WINDOW:-}
CLIENT_XACTS=0
BENCH_CHAIN_STEPS=10
BENCH_BATCH=10

# wait_all_finished TIMEOUT: wait until no execution is unfinished.
wait_all_finished()
{
	local timeout=$1 start=$SECONDS left

	while :; do
		CLIENT_XACTS=$((CLIENT_XACTS + 1))
		left=$(bench_unfinished)
		[ "$left" = 0 ] && return 0
		[ $((SECONDS - start)) -ge "$timeout" ] && die "$left executions still unfinished after ${timeout}s"
		sleep 0.2
	done
}

# check_completed: every execution completed, else die.
check_completed()
{
	local bad

	bad=$(bq "SELECT count(*) FROM chainexec.universal_transactions WHERE status <> 'completed'")
	[ "$bad" = 0 ] || die "$bad executions did not complete: $(bq "SELECT status, count(*) FROM chainexec.universal_transactions GROUP BY 1")"
}

# warm_up_sql: psql input that runs one execution and waits for it.
warm_up_sql()
{
	echo "SELECT chainexec.chain_execute('bench-noop', '{\"phase\": \"warmup\"}') AS id \\gset"
	echo "SELECT chainexec.chain_wait(:'id', 60000) \\gset"
}

# warm_up: a few executions, so that the executors have prepared their plans.
warm_up()
{
	local i

	for i in 1 2 3; do
		warm_up_sql
	done | "$CE_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -o /dev/null
}

# commits: transactions committed in the database so far (pg_stat_database,
# flushed by the executors at most a second late).
commits()
{
	bq "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
}

# throughput: part (b); sets TP_STEPS_S, TP_SECS, TP_PRODUCER_SECS, and
# TP_PER_COMMIT (steps per commit of the executors, approximately).
throughput()
{
	local txns=$((BENCH_EXECUTIONS / BENCH_BATCH)) out c0 c1

	bench_reset
	warm_up
	sleep 1.1
	c0=$(commits)
	CLIENT_XACTS=0
	echo "SELECT chainexec.chain_execute('bench-noop', '{\"phase\": \"throughput\"}') FROM generate_series(1, $BENCH_BATCH);" \
		>"$BENCH_TMP/produce.sql"
	out=$("$CE_PGBIN/pgbench" -n -M prepared -f "$BENCH_TMP/produce.sql" -c 1 -j 1 -t "$txns" 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "starting the executions failed"; }
	wait_all_finished 1800
	sleep 1.1
	c1=$(commits)
	# the client's: the producer's, the polls, the first commits() query
	TP_PER_COMMIT=$(calc "$BENCH_EXECUTIONS * $BENCH_CHAIN_STEPS / ($c1 - $c0 - $txns - $CLIENT_XACTS - 1)" 2)
	check_completed
	read -r TP_SECS TP_PRODUCER_SECS n <<<"$(bq "SELECT extract(epoch FROM max(finished_at) - min(created_at)),
			extract(epoch FROM max(created_at) - min(created_at)), count(*)
		FROM chainexec.universal_transactions WHERE input->>'phase' = 'throughput'" | tr '|' ' ')"
	[ "$n" = "$BENCH_EXECUTIONS" ] || die "expected $BENCH_EXECUTIONS executions, found $n"
	TP_STEPS_S=$(calc "$BENCH_EXECUTIONS * $BENCH_CHAIN_STEPS / $TP_SECS" 0)
	if [ "$BENCH_PROFILE" = 1 ]; then
		say "    top statements by total time (pg_stat_statements, track = all):"
		say "       calls    plans  plan ms  exec ms  us/call  statement"
		bq "SELECT format('    %8s %8s %8s %8s %8s  %s', calls, plans, round(total_plan_time::numeric, 1),
					   round(total_exec_time::numeric, 1),
					   round(((total_exec_time + total_plan_time) / calls * 1000)::numeric, 1),
					   left(regexp_replace(query, '\\s+', ' ', 'g'), 100))
			FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 16"
		say "    scans of the chainexec tables since the reset:"
		bq "SELECT format('    %-28s seq_scan %6s (%9s rows read)  idx_scan %7s', relname, seq_scan, seq_tup_read, idx_scan)
			FROM pg_stat_user_tables WHERE schemaname = 'chainexec' AND relname LIKE 'universal%' ORDER BY relname"
		bq "SELECT format('      index %-36s idx_scan %7s  (%9s entries read)', indexrelname, idx_scan, idx_tup_read)
			FROM pg_stat_user_indexes WHERE schemaname = 'chainexec' AND relname LIKE 'universal%' AND idx_scan > 0
			ORDER BY indexrelname"
	fi
}

# latency: parts (c) and (d), interleaved; sets LAT_SRV_MED, LAT_CLI_MED and
# LAT_BASE_MS (ten median baseline transactions, ms) and appends every
# execution's times to $BENCH_TMP/lat_srv and $BENCH_TMP/lat_cli.
latency()
{
	local chunk per cli srv n

	bench_reset
	warm_up
	per=$(( (BENCH_LAT_RUNS + BENCH_LAT_CHUNKS - 1) / BENCH_LAT_CHUNKS ))
	cat >"$BENCH_TMP/latency.sql" <<-'EOF'
		SELECT chainexec.chain_execute('bench-noop', '{"phase": "latency"}') AS id \gset
		SELECT chainexec.chain_wait(:id, 60000);
	EOF
	rm -f "$BENCH_TMP"/lat_exec.* "$BENCH_TMP"/lat_base.*
	for chunk in $(seq 1 "$BENCH_LAT_CHUNKS"); do
		"$CE_PGBIN/pgbench" -n -M prepared -f "$BENCH_TMP/update_insert_notify.sql" -c 1 \
			-t $((BENCH_LAT_BASE_TX + 1)) -l --log-prefix="$BENCH_TMP/lat_base" >/dev/null 2>&1 ||
			die "the baseline pgbench run failed"
		"$CE_PGBIN/pgbench" -n -M prepared -f "$BENCH_TMP/latency.sql" -c 1 \
			-t $((per + 1)) -l --log-prefix="$BENCH_TMP/lat_exec" >/dev/null 2>&1 ||
			die "the latency pgbench run failed"
	done
	# log lines: client transaction latency_us script epoch us; the first of each file left out
	cli=$(awk 'FNR > 1 { printf "%.3f\n", $3 / 1000 }' "$BENCH_TMP"/lat_exec.*)
	LAT_BASE_MS=$(awk 'FNR > 1 { printf "%.4f\n", $3 / 1000 }' "$BENCH_TMP"/lat_base.* | median)
	LAT_BASE_MS=$(calc "$LAT_BASE_MS * $BENCH_CHAIN_STEPS" 3)
	check_completed
	n=$(bq "SELECT count(*) FROM chainexec.universal_transactions WHERE input->>'phase' = 'latency'")
	[ "$(printf '%s\n' "$cli" | grep -c .)" = "$((BENCH_LAT_CHUNKS * per))" ] || die "expected $((BENCH_LAT_CHUNKS * per)) client timings"
	# in order of start; the first execution of each pgbench run left out, as above
	srv=$(bq "SELECT extract(epoch FROM finished_at - created_at) * 1000
		FROM chainexec.universal_transactions WHERE input->>'phase' = 'latency'
		ORDER BY created_at" | awk -v per="$per" '(NR - 1) % (per + 1) != 0')
	[ "$n" = "$((BENCH_LAT_CHUNKS * (per + 1)))" ] || die "expected $((BENCH_LAT_CHUNKS * (per + 1))) executions, found $n"
	printf '%s\n' "$cli" >>"$BENCH_TMP/lat_cli"
	printf '%s\n' "$srv" >>"$BENCH_TMP/lat_srv"
	read -r _ LAT_CLI_MED _ _ <<<"$(printf '%s\n' "$cli" | bench_stats)"
	read -r _ LAT_SRV_MED _ _ <<<"$(printf '%s\n' "$srv" | bench_stats)"
}

# in_session: part (e); sets INS_CLI_MED (ms per 10-step chain_run call).
in_session()
{
	local i cli

	bench_reset
	cli=$( {
		echo "CALL chainexec.chain_run('bench-noop', '{\"phase\": \"warmup\"}');"
		echo '\timing on'
		for i in $(seq 1 "$BENCH_LAT_RUNS"); do
			echo "CALL chainexec.chain_run('bench-noop', '{\"phase\": \"insession\"}');"
		done
	} | "$CE_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -o /dev/null | awk '/^Time: / { print $2 }')
	check_completed
	[ "$(printf '%s\n' "$cli" | grep -c .)" = "$BENCH_LAT_RUNS" ] || die "expected $BENCH_LAT_RUNS chain_run timings"
	printf '%s\n' "$cli" >>"$BENCH_TMP/ins_cli"
	read -r _ INS_CLI_MED _ _ <<<"$(printf '%s\n' "$cli" | bench_stats)"
}

# median: the median of the numbers on stdin.
median()
{
	bench_stats | awk '{ print $2 }'
}

# verdict VALUE OP LIMIT: "yes" or "NO".
verdict()
{
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "yes" : "NO" }'
}

# bench_set_group N: chainexec.group_commit = N (a reload).
bench_set_group()
{
	local n=$1 i

	bq "ALTER SYSTEM SET chainexec.group_commit = $n" >/dev/null
	if [ -n "$BENCH_GROUP_WINDOW" ] && [ "$n" -gt 1 ]; then
		bq "ALTER SYSTEM SET chainexec.group_commit_window = '$BENCH_GROUP_WINDOW'" >/dev/null
	else
		bq "ALTER SYSTEM RESET chainexec.group_commit_window" >/dev/null
	fi
	bq "SELECT pg_reload_conf()" >/dev/null
	for i in $(seq 1 100); do
		[ "$(bq "SHOW chainexec.group_commit")" = "$n" ] && { sleep 0.2; return 0; }
		sleep 0.05
	done
	die "chainexec.group_commit did not become $n"
}

# grouped W: the rounds with chainexec.group_commit = BENCH_GROUP, W executors
# against W pgbench clients (synchronous_commit = on); adds the rows.
grouped()
{
	local w=$1 round r tps ratios= all= bases= lat_ratios= lat_bases= per= group_ms= med base lat_med

	bench_set_group "$BENCH_GROUP"
	say "  chainexec.group_commit = $BENCH_GROUP, window $(bq "SHOW chainexec.group_commit_window"):"
	rm -f "$BENCH_TMP/lat_cli" "$BENCH_TMP/lat_srv"
	for round in $(seq 1 "$BENCH_ROUNDS"); do
		bench_reset
		bench_pgbench "$BENCH_TMP/update_insert_notify.sql" "$w" "$BENCH_SECONDS"
		tps=$PGB_TPS
		throughput
		r=$(calc "$TP_STEPS_S / $tps" 3)
		ratios+="$r"$'\n' all+="$TP_STEPS_S"$'\n' bases+="$tps"$'\n' per+="$TP_PER_COMMIT"$'\n'
		# an executor's group lasts (steps per commit) / (its steps per second)
		group_ms+="$(calc "$TP_PER_COMMIT * 1000 * $w / $TP_STEPS_S" 2)"$'\n'
		say "  round $round: (a) pgbench $w client(s): $(calc "$tps" 0) TPS;" \
			"(b) grouped: $BENCH_EXECUTIONS x $BENCH_CHAIN_STEPS steps in $(calc "$TP_SECS" 2)s = $TP_STEPS_S steps/s," \
			"about $TP_PER_COMMIT steps per commit; ratio $r"
		latency
		base=$LAT_BASE_MS
		r=$(calc "$LAT_CLI_MED / $base" 3)
		lat_ratios+="$r"$'\n' lat_bases+="$base"$'\n'
		say "           (c) grouped, one execution at a time: median client $LAT_CLI_MED ms" \
			"against $base ms; ratio $r"
	done
	bench_set_group 1
	med=$(calc "$(printf '%s' "$all" | median)" 0)
	base=$(calc "$(printf '%s' "$bases" | median)" 0)
	r=$(calc "$(printf '%s' "$ratios" | median)" 2)
	say "  grouped, median of rounds: $med steps/s vs $base TPS, ratio $r; $(printf '%s' "$per" | median) steps per commit," \
		"so a group kept its first transition about $(printf '%s' "$group_ms" | median) ms from its commit"
	say ""
	ratio_rows+=("$(printf '%-18s %9s %14s %12s %7s %8s %4s' "on grouped $BENCH_GROUP" "$w" "$med" "$base" \
		"$r" ">= 2.00" "$(verdict "$r" ">=" 2.00)")")
	row on "throughput, grouped $BENCH_GROUP, $w executor(s)" "$med steps/s" "$base TPS" "$r" ">= 2.00" \
		"$(verdict "$r" ">=" 2.00)"
	read -r _ lat_med _ _ <<<"$(bench_stats <"$BENCH_TMP/lat_cli")"
	row on "latency median (client), grouped $BENCH_GROUP" "$lat_med ms" "$(printf '%s' "$lat_bases" | median) ms" \
		"$(calc "$(printf '%s' "$lat_ratios" | median)" 2)" "<= 1.00" \
		"$(verdict "$(printf '%s' "$lat_ratios" | median)" "<=" 1.00)"
}

say "chainexec worker benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(bench_machine)"
say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_install
first_workers=${BENCH_WORKERS%% *}
bench_cluster_start "$first_workers"
bench_define_noop bench-noop "$BENCH_CHAIN_STEPS"
say "chain: $BENCH_CHAIN_STEPS no-op sql steps$([ "$BENCH_OUTPUTS" = 1 ] && echo ", each setting an output variable"); $BENCH_ROUNDS rounds of: throughput $BENCH_EXECUTIONS executions," \
	"latency $BENCH_LAT_RUNS executions one at a time, pgbench runs of ${BENCH_SECONDS}s"
say ""

rows=()
row()
{
	rows+=("$(printf '%-5s %-44s %14s %14s %7s %8s %4s' "$@")")
}
ratio_rows=()

for sync in $BENCH_SYNC; do
	for w in $BENCH_WORKERS; do
		bench_set_workers "$w"
		bench_set_sync "$sync"
		say "synchronous_commit = $sync, chainexec.max_workers = $w"
		rm -f "$BENCH_TMP/lat_cli" "$BENCH_TMP/lat_srv" "$BENCH_TMP/ins_cli"
		tp_ratios= lat_ratios= ins_ratios= tp_all= base_all= lat_base_all=
		if [ "$sync" = off ]; then tp_target=0.80; else tp_target=1.00; fi
		for round in $(seq 1 "$BENCH_ROUNDS"); do
			bench_reset
			bench_pgbench "$BENCH_TMP/update_insert_notify.sql" "$w" "$BENCH_SECONDS"
			base_tps=$PGB_TPS
			throughput
			r=$(calc "$TP_STEPS_S / $base_tps" 3)
			tp_ratios+="$r"$'\n' tp_all+="$TP_STEPS_S"$'\n' base_all+="$base_tps"$'\n'
			say "  round $round: (a) pgbench $w client(s): $(calc "$base_tps" 0) TPS;" \
				"(b) $BENCH_EXECUTIONS x $BENCH_CHAIN_STEPS steps in $(calc "$TP_SECS" 2)s = $TP_STEPS_S steps/s" \
				"(starting them took $(calc "$TP_PRODUCER_SECS" 2)s); ratio $r"

			latency
			base_lat=$LAT_BASE_MS
			r=$(calc "$LAT_CLI_MED / $base_lat" 3)
			lat_ratios+="$r"$'\n' lat_base_all+="$base_lat"$'\n'
			say "           (d) pgbench 1 client: median x $BENCH_CHAIN_STEPS = $base_lat ms;" \
				"(c) $BENCH_LAT_RUNS executions: median server $LAT_SRV_MED ms, client $LAT_CLI_MED ms; ratio $r"
			in_session
			r=$(calc "$INS_CLI_MED / $base_lat" 3)
			ins_ratios+="$r"$'\n'
			say "           (e) $BENCH_LAT_RUNS chain_run calls in session: median $INS_CLI_MED ms; ratio $r"
		done
		tp_med=$(calc "$(printf '%s' "$tp_all" | median)" 0)
		base_med=$(calc "$(printf '%s' "$base_all" | median)" 0)
		lat_base_med=$(printf '%s' "$lat_base_all" | median)
		tp_ratio=$(calc "$(printf '%s' "$tp_ratios" | median)" 2)
		lat_ratio=$(calc "$(printf '%s' "$lat_ratios" | median)" 2)
		ins_ratio=$(calc "$(printf '%s' "$ins_ratios" | median)" 2)
		read -r _ ins_med _ _ <<<"$(bench_stats <"$BENCH_TMP/ins_cli")"
		read -r _ cli_med cli_p95 _ <<<"$(bench_stats <"$BENCH_TMP/lat_cli")"
		read -r _ srv_med srv_p95 _ <<<"$(bench_stats <"$BENCH_TMP/lat_srv")"
		tp_range="$(printf '%s' "$tp_ratios" | sort -g | head -n 1)-$(printf '%s' "$tp_ratios" | sort -g | tail -n 1)"
		lat_range="$(printf '%s' "$lat_ratios" | sort -g | head -n 1)-$(printf '%s' "$lat_ratios" | sort -g | tail -n 1)"
		say "  median of rounds: throughput $tp_med steps/s vs $base_med TPS, ratio $tp_ratio (rounds $tp_range);"
		say "    latency over all $((BENCH_ROUNDS * BENCH_LAT_RUNS)) runs: client median $cli_med ms, p95 $cli_p95 ms;" \
			"server median $srv_med ms, p95 $srv_p95 ms; baseline $lat_base_med ms; ratio $lat_ratio (rounds $lat_range)"
		say ""

		ratio_rows+=("$(printf '%-18s %9s %14s %12s %7s %8s %4s' "$sync" "$w" "$tp_med" "$base_med" \
			"$tp_ratio" ">= $tp_target" "$(verdict "$tp_ratio" ">=" "$tp_target")")")
		row "$sync" "throughput, $w executor(s) vs $w client(s)" "$tp_med steps/s" "$base_med TPS" \
			"$tp_ratio" ">= $tp_target" "$(verdict "$tp_ratio" ">=" "$tp_target")"
		row "$sync" "latency median (client), $w executor(s)" "$cli_med ms" "$lat_base_med ms" \
			"$lat_ratio" "<= 1.00" "$(verdict "$lat_ratio" "<=" 1.00)"
		row "$sync" "latency p95 (client), $w executor(s)" "$cli_p95 ms" "$lat_base_med ms" \
			"$(calc "$cli_p95 / $lat_base_med" 2)" "" ""
		row "$sync" "latency median (server), $w executor(s)" "$srv_med ms" "$lat_base_med ms" \
			"$(calc "$srv_med / $lat_base_med" 2)" "" ""
		row "$sync" "latency p95 (server), $w executor(s)" "$srv_p95 ms" "$lat_base_med ms" \
			"$(calc "$srv_p95 / $lat_base_med" 2)" "" ""
		row "$sync" "in session, chain_run median (client)" "$ins_med ms" "$lat_base_med ms" \
			"$ins_ratio" "" ""
		if [ "$sync" = on ] && [ "${BENCH_GROUP:-1}" -gt 1 ] && [ "$w" = "${BENCH_WORKERS##* }" ]; then
			grouped "$w"
		fi
	done
	bench_reset
	bench_pgbench "$BENCH_TMP/update_insert_notify.sql" 4 "$BENCH_SECONDS"
	say "synchronous_commit = $sync: pgbench 4 clients, UPDATE + INSERT + pg_notify: $(calc "$PGB_TPS" 0) TPS" \
		"(latency average $PGB_LAT_MS ms)"
	say ""
	row "$sync" "pgbench, 4 clients (reference)" "" "$(calc "$PGB_TPS" 0) TPS" "" "" ""
done

say "ratio table ($BENCH_EXECUTIONS executions x $BENCH_CHAIN_STEPS no-op sql steps$([ "$BENCH_OUTPUTS" = 1 ] && echo " setting an output variable each");" \
	"pgbench UPDATE + INSERT + pg_notify, executors = clients; medians of $BENCH_ROUNDS rounds)"
printf '%-18s %9s %14s %12s %7s %8s %4s\n' synchronous_commit executors "chainexec st/s" "pgbench tps" ratio target met
for r in "${ratio_rows[@]}"; do
	printf '%s\n' "$r"
done
say ""
say "summary (chainexec: $BENCH_CHAIN_STEPS no-op sql steps per execution; baseline: pgbench UPDATE + INSERT + pg_notify;"
say "figures and ratios are medians of the rounds, latency percentiles over all runs)"
printf '%-5s %-44s %14s %14s %7s %8s %4s\n' sync measure chainexec baseline ratio target met
for r in "${rows[@]}"; do
	printf '%s\n' "$r"
done
