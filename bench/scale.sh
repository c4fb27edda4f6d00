#!/usr/bin/env bash
# bench/scale.sh: the cost of a step transition as the tables grow.
#
# The same cluster is measured at four sizes, in this order:
#   empty      no execution in the tables (besides the measured ones)
#   inflight   BENCH_SCALE_INFLIGHT (default 10,000) unfinished executions
#              that no executor takes during the run: each has some steps
#              done and waits (half of them on an external step due in a
#              day, half on a retry due in an hour), the rest of its lines
#              pending (bench_inflight_sql in lib.sh)
#   both       the same + BENCH_SCALE_HISTORY (default 1,000,000) finished
#              executions of 10 lines each (bench_history_sql), written
#              straight into the tables with INSERT ... SELECT
#              generate_series, in key order
#   history    the finished ones only
# After each change of size the tables are vacuumed and analyzed (as
# autovacuum would), and the executors' plans are made again.
#
# At each size, BENCH_ROUNDS rounds (default 2) of:
#   (a) pgbench UPDATE + INSERT + pg_notify with BENCH_WORKERS clients
#       (default 2), BENCH_SECONDS (default 5): TPS;
#   (b) BENCH_EXECUTIONS (default 1000) executions of the 10-step benchmark
#       chain through BENCH_WORKERS executors: steps/s (as bench/worker.sh);
#   (c) pgbench with 1 client, BENCH_SECONDS: latency of one transaction;
#   (d) BENCH_LAT_RUNS (default 30) CALL chain_run() of the chain in one
#       session: microseconds per step.
# The cost of a transition at a size is its ratio to the pgbench run next to
# it, relative to the same ratio on empty tables: 1.00 = as on empty tables,
# 1.10 = 10% dearer (target: history within 10%).  Measured executions are
# deleted after each round.
#
# The cluster gets shared_buffers = 1GB and wal_level = minimal (the
# history loads without WAL, in the transaction that truncates the tables);
# pgbench runs under the same settings.  About 1 GB of disk per 100,000
# finished executions.  With the defaults the run takes about 15-25 minutes,
# most of it loading and vacuuming the history; smaller:
#   BENCH_SCALE_HISTORY=100000 BENCH_SCALE_INFLIGHT=2000 BENCH_ROUNDS=1 bench/scale.sh
# BENCH_SYNC (default off: the CPU cost, not the commit, is what grows with
# the tables) picks synchronous_commit.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_SYNC=${BENCH_SYNC:-off}
BENCH_WORKERS=${BENCH_WORKERS:-2}
BENCH_EXECUTIONS=${BENCH_EXECUTIONS:-1000}
BENCH_LAT_RUNS=${BENCH_LAT_RUNS:-30}
BENCH_SCALE_HISTORY=${BENCH_SCALE_HISTORY:-1000000}
BENCH_SCALE_INFLIGHT=${BENCH_SCALE_INFLIGHT:-10000}
BENCH_CHAIN_STEPS=10
BENCH_BATCH=10
BENCH_EXTRA_CONF="shared_buffers = 1GB
wal_level = minimal
max_wal_senders = 0
max_wal_size = 8GB
checkpoint_timeout = 30min"

MEASURED="('warmup', 'throughput', 'insession')"

# unfinished_measured: how many measured executions have not finished.
unfinished_measured()
{
	bench_unfinished "input->>'phase' IN $MEASURED"
}

# wait_measured TIMEOUT: wait until every measured execution finished, all completed.
wait_measured()
{
	local timeout=$1 start=$SECONDS left bad

	while :; do
		left=$(unfinished_measured)
		[ "$left" = 0 ] && break
		[ $((SECONDS - start)) -ge "$timeout" ] && die "$left executions still unfinished after ${timeout}s"
		sleep 0.2
	done
	bad=$(bq "SELECT count(*) FROM chainexec.universal_transactions
		WHERE input->>'phase' IN $MEASURED AND status <> 'completed'")
	[ "$bad" = 0 ] || die "$bad measured executions did not complete"
}

# clean_measured: delete the measured executions, vacuum.
clean_measured()
{
	bq "DELETE FROM chainexec.universal_transactions WHERE input->>'phase' IN $MEASURED" >/dev/null
	bq "TRUNCATE bench_hist" >/dev/null
	bq "VACUUM chainexec.universal_transaction_lines, chainexec.universal_transactions, bench_acct" >/dev/null
	bq "CHECKPOINT" >/dev/null
}

# throughput: sets TP_STEPS_S.
throughput()
{
	local txns=$((BENCH_EXECUTIONS / BENCH_BATCH)) out secs n e0 e1

	for n in 1 2 3; do
		bq "SELECT chainexec.chain_execute('bench-noop', '{\"phase\": \"warmup\"}')" >/dev/null
	done
	wait_measured 120
	echo "SELECT chainexec.chain_execute('bench-noop', '{\"phase\": \"throughput\"}') FROM generate_series(1, $BENCH_BATCH);" \
		>"$BENCH_TMP/produce.sql"
	e0=$(bench_executor_ticks)
	out=$("$CE_PGBIN/pgbench" -n -M prepared -f "$BENCH_TMP/produce.sql" -c 1 -j 1 -t "$txns" 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "starting the executions failed"; }
	wait_measured 1800
	e1=$(bench_executor_ticks)
	TP_CPU_US=$(calc "($e1 - $e0) * 1000000 / $(getconf CLK_TCK) / ($BENCH_EXECUTIONS * $BENCH_CHAIN_STEPS)" 1)
	read -r secs n <<<"$(bq "SELECT extract(epoch FROM max(finished_at) - min(created_at)), count(*)
		FROM chainexec.universal_transactions WHERE input->>'phase' = 'throughput'" | tr '|' ' ')"
	[ "$n" = "$BENCH_EXECUTIONS" ] || die "expected $BENCH_EXECUTIONS executions, found $n"
	TP_STEPS_S=$(calc "$BENCH_EXECUTIONS * $BENCH_CHAIN_STEPS / $secs" 0)
}

# in_session: sets INS_US_STEP (median chain_run call / steps, in us).
in_session()
{
	local i cli med

	cli=$( {
		echo "CALL chainexec.chain_run('bench-noop', '{\"phase\": \"warmup\"}');"
		echo '\timing on'
		for i in $(seq 1 "$BENCH_LAT_RUNS"); do
			echo "CALL chainexec.chain_run('bench-noop', '{\"phase\": \"insession\"}');"
		done
	} | "$CE_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -o /dev/null | awk '/^Time: / { print $2 }')
	wait_measured 60
	read -r _ med _ _ <<<"$(printf '%s\n' "$cli" | bench_stats)"
	INS_US_STEP=$(calc "$med * 1000 / $BENCH_CHAIN_STEPS" 1)
}

# settle: vacuum and analyze the execution tables, restart the executors'
# plans (ANALYZE invalidates them), checkpoint.
settle()
{
	bq "VACUUM ANALYZE chainexec.universal_transaction_lines, chainexec.universal_transactions" >/dev/null
	bq "CHECKPOINT" >/dev/null
}

# table_sizes: one line, the rows and size of the execution tables.
table_sizes()
{
	bq "SELECT format('%s executions (%s unfinished), %s lines, %s on disk with indexes',
			(SELECT count(*) FROM chainexec.universal_transactions),
			(SELECT count(*) FROM chainexec.universal_transactions WHERE finished_at IS NULL),
			(SELECT count(*) FROM chainexec.universal_transaction_lines),
			pg_size_pretty(pg_total_relation_size('chainexec.universal_transactions')
						   + pg_total_relation_size('chainexec.universal_transaction_lines')))"
}

say "chainexec scale benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(bench_machine)"
say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_install
bench_cluster_start "$BENCH_WORKERS"
bench_define_noop bench-noop "$BENCH_CHAIN_STEPS"
bench_set_sync "$BENCH_SYNC"
bq "TRUNCATE chainexec.step_approvals, chainexec.universal_transaction_lines, chainexec.universal_transactions" >/dev/null
settle
say "synchronous_commit = $BENCH_SYNC, $BENCH_WORKERS executor(s); $BENCH_ROUNDS rounds per size of: pgbench" \
	"$BENCH_WORKERS client(s) ${BENCH_SECONDS}s, $BENCH_EXECUTIONS executions x $BENCH_CHAIN_STEPS steps, pgbench 1 client," \
	"$BENCH_LAT_RUNS chain_run calls"
say ""

declare -A TP_RATIO INS_RATIO TP_ABS INS_ABS CPU_RATIO CPU_ABS
rows=()
for size in empty inflight both history; do
	t=$SECONDS
	case $size in
		inflight)
			bq "$(bench_inflight_sql "$BENCH_SCALE_INFLIGHT")" >/dev/null
			settle ;;
		both)
			# Truncating in the loading transaction lets wal_level = minimal skip
			# the WAL of the load: keep the in-flight rows aside meanwhile.
			bq "CREATE TABLE bench_keep_h AS SELECT * FROM chainexec.universal_transactions;
				CREATE TABLE bench_keep_l AS SELECT * FROM chainexec.universal_transaction_lines;" >/dev/null
			bq "BEGIN;
				TRUNCATE chainexec.step_approvals, chainexec.universal_transaction_lines, chainexec.universal_transactions;
				$(bench_history_sql "$BENCH_SCALE_HISTORY")
				INSERT INTO chainexec.universal_transactions SELECT * FROM bench_keep_h;
				INSERT INTO chainexec.universal_transaction_lines SELECT * FROM bench_keep_l;
				COMMIT;
				DROP TABLE bench_keep_h, bench_keep_l;" >/dev/null
			settle ;;
		history)
			bq "DELETE FROM chainexec.universal_transactions WHERE input->>'phase' = 'inflight'" >/dev/null
			settle ;;
	esac
	say "size $size: $(table_sizes) (prepared in $(ce_elapsed "$t"))"
	tp_ratios= ins_ratios= tp_all= ins_all= cpu_ratios= cpu_all=
	for round in $(seq 1 "$BENCH_ROUNDS"); do
		bench_pgbench "$BENCH_TMP/update_insert_notify.sql" "$BENCH_WORKERS" "$BENCH_SECONDS"
		base_tps=$PGB_TPS base_cpu=$PGB_CPU_US
		throughput
		r=$(calc "$TP_STEPS_S / $base_tps" 3)
		rc=$(calc "$base_cpu / $TP_CPU_US" 3)
		tp_ratios+="$r"$'\n' tp_all+="$TP_STEPS_S"$'\n' cpu_ratios+="$rc"$'\n' cpu_all+="$TP_CPU_US"$'\n'
		bench_pgbench "$BENCH_TMP/update_insert_notify.sql" 1 "$BENCH_SECONDS"
		base_us=$(calc "$PGB_LAT_MS * 1000" 1)
		in_session
		r2=$(calc "$base_us / $INS_US_STEP" 3)
		ins_ratios+="$r2"$'\n' ins_all+="$INS_US_STEP"$'\n'
		say "  round $round: pgbench $BENCH_WORKERS client(s) $(calc "$base_tps" 0) TPS, executors $TP_STEPS_S steps/s," \
			"ratio $r; CPU: pgbench $base_cpu us/txn, executors $TP_CPU_US us/step, ratio $rc;" \
			"pgbench 1 client $base_us us/txn, chain_run $INS_US_STEP us/step, ratio $r2"
		clean_measured
	done
	TP_RATIO[$size]=$(printf '%s' "$tp_ratios" | bench_stats | awk '{ print $2 }')
	INS_RATIO[$size]=$(printf '%s' "$ins_ratios" | bench_stats | awk '{ print $2 }')
	TP_ABS[$size]=$(printf '%s' "$tp_all" | bench_stats | awk '{ print $2 }')
	CPU_RATIO[$size]=$(printf '%s' "$cpu_ratios" | bench_stats | awk '{ print $2 }')
	CPU_ABS[$size]=$(printf '%s' "$cpu_all" | bench_stats | awk '{ print $2 }')
	INS_ABS[$size]=$(printf '%s' "$ins_all" | bench_stats | awk '{ print $2 }')
	say ""
done

say "summary: transition cost relative to empty tables (1.00 = the same; above 1 = dearer),"
say "each size's chainexec/pgbench ratio divided into the empty tables' ratio; medians of $BENCH_ROUNDS rounds"
printf '%-10s %14s %10s %14s %14s %10s %14s\n' size "executors st/s" "vs pgbench" "cost vs empty" "in-session us" "vs pgbench" "cost vs empty"
for size in empty inflight both history; do
	printf '%-10s %14s %10s %14s %14s %10s %14s\n' "$size" \
		"$(calc "${TP_ABS[$size]}" 0)" "$(calc "${TP_RATIO[$size]}" 2)" "$(calc "${TP_RATIO[empty]} / ${TP_RATIO[$size]}" 2)" \
		"${INS_ABS[$size]}" "$(calc "${INS_RATIO[$size]}" 2)" "$(calc "${INS_RATIO[empty]} / ${INS_RATIO[$size]}" 2)"
done
say ""
say "CPU time (not disturbed by a load on the machine): the executors' CPU per step against the"
say "server CPU per pgbench transaction (2 clients) of the same round; medians of $BENCH_ROUNDS rounds"
printf '%-10s %14s %10s %14s\n' size "executor us/st" "vs pgbench" "cost vs empty"
for size in empty inflight both history; do
	printf '%-10s %14s %10s %14s\n' "$size" "${CPU_ABS[$size]}" "$(calc "${CPU_RATIO[$size]}" 2)" \
		"$(calc "${CPU_RATIO[empty]} / ${CPU_RATIO[$size]}" 2)"
done
say "(inflight = $BENCH_SCALE_INFLIGHT unfinished executions; history = $BENCH_SCALE_HISTORY finished ones;" \
	"both = the two; target: history within 1.10)"
