#!/usr/bin/env bash
# bench/citus.sh: step throughput of chainexec on a Citus cluster with 1, 2
# and 3 worker nodes, and on one node without Citus (SPEC §9 "Scale-out",
# issue 17).  Needs Citus (citus.so in pg_config --pkglibdir); run it under
# the machine's benchmark lock:
#
#   flock /work/notes/bench.lock bench/citus.sh
#
# For each size: a coordinator (no shards, no executors: chainexec.enabled
# off, so that only the workers' executors run steps) and N worker nodes,
# each with chainexec.max_workers = BENCH_WORKERS executors; chainexec's
# tables distributed with citus_distribute(); BENCH_ORGS organizations with
# a chain of BENCH_STEPS no-op sql steps, BENCH_PER_ORG executions each,
# started at once; the figure is steps per second from the first start to
# the last completion.  Every node's postmaster (and so every process it
# forks) is pinned with taskset to one core, worker i to core (i-1) mod
# nproc, the coordinator to the last core: with 2 cores, the 3-worker
# cluster has two workers sharing a core, and no size gets more than the
# machine's 2 cores.  The ratios, not the figures, are the result; on a
# 2-core machine shared with others, more than about 2x cannot show.
#
# The single-node figures, measured in the same run: chainexec without
# Citus on one node pinned to one core, and chainexec with Citus on one
# node that holds every shard (the per-organization dispatch, router
# queries) pinned the same way: their ratio is what the dispatch and Citus
# cost one node.
#
# Settings: BENCH_ORGS (8), BENCH_PER_ORG (25), BENCH_STEPS (5),
# BENCH_WORKERS (2 executors a node), BENCH_SIZES ("1 2 3"),
# BENCH_PRIVATE / BENCH_SRC as in bench/lib.sh.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_ORGS=${BENCH_ORGS:-8}
BENCH_PER_ORG=${BENCH_PER_ORG:-25}
BENCH_STEPS=${BENCH_STEPS:-5}
BENCH_WORKERS=${BENCH_WORKERS:-2}
BENCH_SIZES=${BENCH_SIZES:-1 2 3}
CORES=$(nproc)
DB=chainexec_citus
NODES=()
PORTS=()

[ -f "$("$CE_PG_CONFIG" --pkglibdir)/citus.so" ] ||
	die "citus is not installed (no citus.so in $("$CE_PG_CONFIG" --pkglibdir))"

cleanup()
{
	local d

	for d in "${NODES[@]}"; do
		CE_CLUSTER_DIR=$d ce_cluster_destroy
	done
	NODES=()
	PORTS=()
}
trap 'cleanup; [ -n "$BENCH_INSTALL_DIR" ] && rm -rf "$BENCH_INSTALL_DIR"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# on N SQL: run SQL on node N.
on()
{
	"$CE_PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "${NODES[$1]}" -p "${PORTS[$1]}" \
		-U postgres -d "$DB" -c "$2"
}

# node_start CORE CONF_LINES: start a node pinned to CORE.
node_start()
{
	local conf=$BENCH_TMP/node.conf pm

	cat "$CE_REPO/test/citus/citus.conf" >"$conf"
	printf '%s\n' "chainexec.max_workers = $BENCH_WORKERS" "synchronous_commit = off" "$2" >>"$conf"
	CE_TEST_DB=$DB ce_cluster_new "$conf" >/dev/null 2>&1 || die "could not start a node"
	NODES+=("$CE_CLUSTER_DIR")
	PORTS+=("$PGPORT")
	pm=$(head -n 1 "$CE_CLUSTER_DIR/data/postmaster.pid")
	# the postmaster and what it forked already; what it forks later inherits
	for p in $pm $(pgrep -P "$pm"); do
		taskset -a -p -c "$1" "$p" >/dev/null 2>&1 || true
	done
}

# define_and_run FIRST_NODE: define the chain in every organization, start
# the executions from FIRST_NODE, wait for them; prints steps per second.
define_and_run()
{
	local n=$1 org i t0 t1 total=$((BENCH_ORGS * BENCH_PER_ORG)) got

	for i in $(seq 1 "$BENCH_ORGS"); do
		org=$(on "$n" "SELECT md5('bench-org-$i')::uuid")
		"$CE_PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "${NODES[$n]}" -p "${PORTS[$n]}" -U postgres -d "$DB" \
			-c "BEGIN" -c "SET LOCAL chainexec.organization_id = '$org'" \
			-c "SELECT chainexec.chain_define(jsonb_build_object('id', 'bench', 'steps',
				(SELECT jsonb_agg(jsonb_build_object('id', s, 'name', 's' || s, 'type', 'sql',
					'sql', format('SELECT %s AS v%s', s, s), 'outputVariables', jsonb_build_array('v' || s))
					|| CASE WHEN s > 1 THEN jsonb_build_object('dependsOn', jsonb_build_array(s - 1)) ELSE '{}' END
					ORDER BY s) FROM generate_series(1, $BENCH_STEPS) s)), true)" -c "COMMIT" >/dev/null ||
			die "chain_define failed"
	done
	t0=$(date +%s.%N)
	for i in $(seq 1 "$BENCH_ORGS"); do
		org=$(on "$n" "SELECT md5('bench-org-$i')::uuid")
		"$CE_PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "${NODES[$n]}" -p "${PORTS[$n]}" -U postgres -d "$DB" \
			-c "BEGIN" -c "SET LOCAL chainexec.organization_id = '$org'" \
			-c "SELECT count(chainexec.chain_execute('bench', '{}')) FROM generate_series(1, $BENCH_PER_ORG)" \
			-c "COMMIT" >/dev/null || die "chain_execute failed"
	done
	for i in $(seq 1 1200); do
		got=$(on "$n" "SELECT count(*) FROM chainexec.universal_transactions WHERE status = 'completed'" 2>/dev/null) || got=0
		[ "$got" = "$total" ] && break
		sleep 0.25
	done
	[ "$got" = "$total" ] || die "only $got of $total executions completed"
	t1=$(on "$n" "SELECT extract(epoch FROM max(finished_at)) FROM chainexec.universal_transactions")
	calc "$total * $BENCH_STEPS / ($t1 - $t0)"
}

# citus_setup WORKERS: Citus on every node, the workers added, chainexec
# created and distributed.  WORKERS 0: one node that holds the shards.
citus_setup()
{
	local w=$1 i

	for i in $(seq 0 "$w"); do on "$i" "CREATE EXTENSION citus" >/dev/null; done
	on 0 "SELECT citus_set_coordinator_host('127.0.0.1', ${PORTS[0]})" >/dev/null
	for i in $(seq 1 "$w"); do on 0 "SELECT citus_add_node('127.0.0.1', ${PORTS[$i]})" >/dev/null; done
	[ "$w" -eq 0 ] && on 0 "SELECT citus_set_node_property('127.0.0.1', ${PORTS[0]}, 'shouldhaveshards', true)" >/dev/null
	on 0 "CREATE EXTENSION chainexec" >/dev/null
	on 0 "SELECT count(*) FROM chainexec.citus_distribute()" >/dev/null 2>&1 || die "citus_distribute failed"
	# the executors switch to Citus mode within 10 s
	sleep 11
}

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/chainexec-bench.XXXXXX") || die "mktemp failed"
bench_install
say "machine: $(bench_machine)"
say "$BENCH_ORGS organizations x $BENCH_PER_ORG executions x $BENCH_STEPS steps, $BENCH_WORKERS executors a node, synchronous_commit off"

# one node, no Citus
node_start 0 "shared_preload_libraries = 'chainexec'"
on 0 "CREATE EXTENSION chainexec" >/dev/null
sleep 2
plain=$(define_and_run 0)
say "1 node, no Citus:                       $plain steps/s"
cleanup

# one node, Citus, every shard on it: the per-organization dispatch
node_start 0 ""
citus_setup 0
single=$(define_and_run 0)
say "1 node, Citus (per-organization claims): $single steps/s"
cleanup

declare -A RATE
for w in $BENCH_SIZES; do
	node_start $((CORES - 1)) "chainexec.enabled = off"
	for i in $(seq 1 "$w"); do node_start $(((i - 1) % CORES)) ""; done
	citus_setup "$w"
	RATE[$w]=$(define_and_run 0)
	say "coordinator + $w worker(s):              ${RATE[$w]} steps/s"
	cleanup
done

say ""
say "| cluster | steps/s | ratio |"
say "| --- | --- | --- |"
say "| 1 node, no Citus | $plain | 1.00 |"
say "| 1 node, Citus, per-organization dispatch | $single | $(calc "$single / $plain") |"
first=
for w in $BENCH_SIZES; do
	[ -z "$first" ] && first=${RATE[$w]}
	say "| coordinator + $w worker(s) | ${RATE[$w]} | $(calc "${RATE[$w]} / $first") (of 1 worker) |"
done
say "(2 cores: each worker node is pinned to one core, so past 2 workers nodes share a core and scaling cannot show)"
