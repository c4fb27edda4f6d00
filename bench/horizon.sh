#!/usr/bin/env bash
# bench/horizon.sh: what a held xmin horizon costs the executors.
#
# A snapshot held anywhere in the cluster (a long report, pg_dump, a
# session idle in transaction, a chain_wait left waiting) keeps vacuum from
# removing the line versions the engine leaves behind, and keeps index
# scans from marking their entries dead: every scan that walks the dispatch
# index visits them all.  This measures how the cost of one execution grows
# with the executions run since the horizon was held.
#
# One cluster, synchronous_commit = off, 2 executors, the 10-step chain of
# worker.sh, tables emptied and vacuumed.  Then BENCH_ROUNDS rounds (default
# 6) of: BENCH_SECONDS (default 4) of one execution at a time (pgbench:
# chain_execute, then chain_wait), and as long of single-client pgbench
# UPDATE + INSERT + pg_notify.  The first round with no snapshot held; then
# a session opens a REPEATABLE READ transaction, takes its snapshot and
# sits idle; the last round after it ended and a VACUUM.  Each round prints
# the executions it ran, their mean latency against ten baseline
# transactions of the same round (the ratio), and the executors' CPU per
# execution against the first round's (the growth).
#
#   bench/horizon.sh
#   BENCH_ROUNDS=10 BENCH_SECONDS=3 bench/horizon.sh
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-6}
BENCH_SECONDS=${BENCH_SECONDS:-4}
BENCH_HISTORY=0
BENCH_RESET_VACUUM=1

bench_install
bench_cluster_start 2
say "machine: $(bench_machine)"
bench_set_sync off
bench_define_noop bench-noop 10
bench_reset
cat >"$BENCH_TMP/latency.sql" <<-'EOF'
	SELECT chainexec.chain_execute('bench-noop', '{"phase": "horizon"}') AS id \gset
	SELECT chainexec.chain_wait(:id, 60000);
EOF

FIRST_CPU=
# round LABEL: one round; prints its line.
round()
{
	local t0 t1 n0 n1 n lat cpu

	n0=$(bq "SELECT count(*) FROM chainexec.universal_transactions")
	t0=$(bench_executor_ticks)
	bench_pgbench "$BENCH_TMP/latency.sql" 1 "$BENCH_SECONDS"
	lat=$PGB_LAT_MS
	t1=$(bench_executor_ticks)
	n1=$(bq "SELECT count(*) FROM chainexec.universal_transactions")
	n=$((n1 - n0))
	[ "$n" -gt 0 ] || die "no execution ran"
	cpu=$(calc "($t1 - $t0) * 1000 / $(getconf CLK_TCK) / $n" 3)
	[ -n "$FIRST_CPU" ] || FIRST_CPU=$cpu
	bench_pgbench "$BENCH_TMP/update_insert_notify.sql" 1 "$BENCH_SECONDS"
	say "  $1: $n executions ($n1 in the tables); latency $lat ms against ten baseline transactions $(calc "$PGB_LAT_MS * 10" 3) ms, ratio $(calc "$lat / ($PGB_LAT_MS * 10)" 2); executors' CPU $cpu ms per execution, $(calc "$cpu / $FIRST_CPU" 2) x the first round's"
}

say "one execution at a time, 2 executors, synchronous_commit = off"
round "no snapshot held      "
"$CE_PGBIN/psql" -X -q -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM pg_class" \
	-c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
holder=$!
sleep 1
for i in $(seq 2 $((BENCH_ROUNDS - 1))); do
	round "snapshot held, round $i"
done
bq "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3600)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$holder" 2>/dev/null || true
bq "VACUUM chainexec.universal_transaction_lines, chainexec.universal_transactions" >/dev/null
round "released, vacuumed    "
