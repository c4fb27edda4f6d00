#!/usr/bin/env bash
# test/citus/cluster.sh: chainexec on a Citus cluster (SPEC §9 "Scale-out").
#
# When Citus is installed (citus.so in pg_config --pkglibdir): starts a
# coordinator and two workers on local ports (scripts/cluster.sh, settings
# test/citus/citus.conf), adds the workers, creates chainexec on the
# coordinator (Citus propagates it), distributes its tables with
# chainexec.citus_distribute(), and runs a seed-like chain of four
# steps (three effects) for 20 organizations, 5 executions each, started from the
# coordinator and from a worker; an executor on a worker is killed
# (SIGKILL) while steps run.  Every execution completes, each step's
# effect is there exactly once, and every node's executors claimed work.
# Without Citus the plan is "1..0 # SKIP" (scripts/test.sh counts it as
# skipped, never as passed).
#
# Runs from scripts/test.sh (suite "citus"), or alone:
#   CE_REPO=$PWD test/citus/cluster.sh
# chainexec-test: slow timeout=600
set -u
CE_REPO=${CE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$CE_REPO/scripts/common.sh"
. "$CE_REPO/scripts/cluster.sh"
. "$CE_REPO/test/lib/tap.sh"

PG_CONFIG_BIN=${CE_PG_CONFIG:-pg_config}
if [ ! -f "$("$PG_CONFIG_BIN" --pkglibdir)/citus.so" ]; then
	echo "1..0 # SKIP citus is not installed (no citus.so in $("$PG_CONFIG_BIN" --pkglibdir))"
	exit 0
fi

ORGS=20
PER_ORG=5
TOTAL=$((ORGS * PER_ORG))
export CE_TEST_DB=chainexec_citus
unset CE_CLUSTER_OWNER_PID
NODES=()
PORTS=()

EV_DIR=
LISTENERS=()
cleanup()
{
	local d p

	if [ -n "$EV_DIR" ]; then
		touch "$EV_DIR/stop"
		for p in "${LISTENERS[@]}"; do kill "$p" 2>/dev/null; done
		rm -rf "$EV_DIR"
	fi

	for d in "${NODES[@]}"; do
		CE_CLUSTER_DIR=$d ce_cluster_destroy
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# on N SQL: run SQL on node N (0 = coordinator, 1 and 2 = workers).
on()
{
	"$CE_PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "${NODES[$1]}" -p "${PORTS[$1]}" \
		-U postgres -d "$CE_TEST_DB" -c "$2"
}

# on_org N ORG SQL: run SQL on node N in a transaction of organization ORG.
# SET LOCAL goes as a statement of its own: Citus propagates it by sending
# the text of the query that contained it, which for a multi-statement
# string (psql -c "BEGIN; SET LOCAL ...; SELECT ...") is the whole string.
on_org()
{
	"$CE_PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "${NODES[$1]}" -p "${PORTS[$1]}" \
		-U postgres -d "$CE_TEST_DB" -c "BEGIN" -c "SET LOCAL chainexec.organization_id = '$2'" \
		-c "$3" -c "COMMIT"
}

# on_orgs N SQL ORG...: run SQL (one statement, without its ";") on node N in
# a transaction of each organization ORG in turn, in one session; SQL names
# the organization :'org' (a psql variable).  Statements go one by one, as in
# on_org.
on_orgs()
{
	local n=$1 sql=$2 org

	shift 2
	for org in "$@"; do
		printf "\\\\set org '%s'\nBEGIN;\nSET LOCAL chainexec.organization_id = :'org';\n%s;\nCOMMIT;\n" "$org" "$sql"
	done | "$CE_PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "${NODES[$n]}" -p "${PORTS[$n]}" \
		-U postgres -d "$CE_TEST_DB"
}

# poll N SQL EXPECTED TIMEOUT: run SQL on node N until it prints EXPECTED.
poll()
{
	local got= deadline=$((SECONDS + $4))

	while [ "$SECONDS" -lt "$deadline" ]; do
		got=$(on "$1" "$2" 2>&1) || true
		[ "$got" = "$3" ] && return 0
		sleep 0.5
	done
	echo "# timed out after $4 s; last result: $got"
	return 1
}

plan 18

# 1: three clusters
started=0
for n in 0 1 2; do
	if CE_CLUSTER_OWNER_PID=$$ ce_cluster_new "$CE_REPO/test/citus/citus.conf" 2>/tmp/citus-node-$$.err; then
		NODES+=("$CE_CLUSTER_DIR")
		PORTS+=("$PGPORT")
		started=$((started + 1))
	else
		diag "$(cat /tmp/citus-node-$$.err)"
		break
	fi
done
rm -f /tmp/citus-node-$$.err
if [ "$started" -ne 3 ]; then
	not_ok "a coordinator and two workers start"
	echo "Bail out! no cluster"
	exit 1
fi
ok "a coordinator and two workers start (ports ${PORTS[*]})"

# 2: Citus on every node, the workers added
out=$(for n in 0 1 2; do on $n "CREATE EXTENSION citus" || exit 1; done 2>&1 &&
	on 0 "SELECT citus_set_coordinator_host('127.0.0.1', ${PORTS[0]})" 2>&1 >/dev/null &&
	on 0 "SELECT citus_add_node('127.0.0.1', ${PORTS[1]})" 2>&1 >/dev/null &&
	on 0 "SELECT citus_add_node('127.0.0.1', ${PORTS[2]})" 2>&1 >/dev/null &&
	on 0 "SELECT count(*) FROM citus_get_active_worker_nodes()" 2>&1)
is "$out" "2" "Citus runs with two worker nodes"

# 3: CREATE EXTENSION chainexec on the coordinator reaches the workers
out=$(on 0 "CREATE EXTENSION chainexec" 2>&1 &&
	on 1 "SELECT extversion FROM pg_extension WHERE extname = 'chainexec'" 2>&1 &&
	on 2 "SELECT extversion FROM pg_extension WHERE extname = 'chainexec'" 2>&1)
is "$(echo $out)" "0.2.0 0.2.0" "CREATE EXTENSION chainexec on the coordinator is propagated to the workers"

# 4: citus_distribute
out=$(on 0 "SELECT * FROM chainexec.citus_distribute()" 2>&1)
diag "$out"
got=$(on 0 "SELECT count(DISTINCT colocationid) || ' ' || bool_and(partmethod = 'h')
	FROM pg_dist_partition WHERE logicalrelid IN ('chainexec.chains'::regclass,
	'chainexec.universal_transactions'::regclass, 'chainexec.universal_transaction_lines'::regclass,
	'chainexec.handlers'::regclass, 'chainexec.templates'::regclass)" 2>&1)
is "$got" "1 true" "citus_distribute: chains, executions, lines, handlers, templates hash-distributed and colocated"

# 5: the effects table, and a chain per organization
out=$(on 0 "CREATE TABLE public.ce_effects (k text NOT NULL, step text NOT NULL, node int NOT NULL);
	SELECT create_distributed_table('public.ce_effects', 'k')" 2>&1 >/dev/null)
# Half of the organizations placed on each worker (the first of a fixed list
# of candidates, by the shard that holds their lines), alternately.
ORG_LIST=$(on 0 "WITH c AS (SELECT i, md5('citus-org-' || i)::uuid o FROM generate_series(1, 200) i),
	p AS (SELECT i, o, (SELECT groupid FROM pg_dist_placement WHERE shardid =
		get_shard_id_for_distribution_column('chainexec.universal_transaction_lines', o)) g FROM c),
	r AS (SELECT o, g, row_number() OVER (PARTITION BY g ORDER BY i) n FROM p)
	SELECT string_agg(o::text, ' ' ORDER BY n, g) FROM r WHERE n <= $ORGS / 2")
fail=
on_orgs 0 "SELECT chainexec.chain_define('{\"id\": \"seed\", \"steps\": [
	 {\"id\": 1, \"name\": \"reserve\", \"type\": \"sql\", \"sql\": \"INSERT INTO public.ce_effects VALUES ({k}, ''reserve'', current_setting(''port'')::int) RETURNING 1 AS r1\", \"inputVariables\": [\"k\"], \"outputVariables\": [\"r1\"], \"retryConfig\": {\"maxRetries\": 5, \"backoffMs\": 200}},
	 {\"id\": 2, \"name\": \"work\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(0.2)::text AS z\", \"dependsOn\": [1]},
	 {\"id\": 3, \"name\": \"charge\", \"type\": \"sql\", \"sql\": \"INSERT INTO public.ce_effects VALUES ({k}, ''charge'', current_setting(''port'')::int) RETURNING 1 AS r2\", \"dependsOn\": [2], \"inputVariables\": [\"k\"], \"outputVariables\": [\"r2\"], \"retryConfig\": {\"maxRetries\": 5, \"backoffMs\": 200}},
	 {\"id\": 4, \"name\": \"ship\", \"type\": \"sql\", \"sql\": \"INSERT INTO public.ce_effects VALUES ({k}, ''ship'', current_setting(''port'')::int) RETURNING 1 AS r3\", \"dependsOn\": [3], \"inputVariables\": [\"k\"], \"outputVariables\": [\"r3\"], \"retryConfig\": {\"maxRetries\": 5, \"backoffMs\": 200}}]}', true)" $ORG_LIST >/dev/null 2>/tmp/citus-def-$$.err ||
	fail=$(cat /tmp/citus-def-$$.err)
rm -f /tmp/citus-def-$$.err
if [ -z "$out$fail" ]; then ok "a seed-like chain of four steps (three effects) defined in $ORGS organizations"; else not_ok "a seed-like chain of four steps (three effects) defined in $ORGS organizations" "$out" "$fail"; fi

# 6: executions, from the coordinator and (the last organization) from worker 1
fail=
orgs=($ORG_LIST)
sql="SELECT count(chainexec.chain_execute('seed', jsonb_build_object('k', :'org' || '-' || j))) FROM generate_series(1, $PER_ORG) j"
{ on_orgs 0 "$sql" "${orgs[@]:0:ORGS-1}" && on_orgs 1 "$sql" "${orgs[ORGS-1]}"; } >/dev/null 2>/tmp/citus-exe-$$.err ||
	fail=$(cat /tmp/citus-exe-$$.err)
rm -f /tmp/citus-exe-$$.err
if [ -z "$fail" ]; then ok "$TOTAL executions started (organization $ORGS from a worker)"; else not_ok "$TOTAL executions started" "$fail"; fi

# 7: kill an executor on worker 1 while steps run
sleep 1
victim=$(on 1 "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor' ORDER BY pid LIMIT 1")
if [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null; then
	ok "an executor on worker 1 killed with SIGKILL (pid $victim)"
else
	not_ok "an executor on worker 1 killed with SIGKILL" "no executor found on worker 1"
fi

# 8: every execution completes
if poll 0 "SELECT count(*) FILTER (WHERE status = 'completed') FROM chainexec.universal_transactions" "$TOTAL" 120; then
	ok "all $TOTAL executions complete"
else
	not_ok "all $TOTAL executions complete" "$(on 0 "SELECT status, count(*) FROM chainexec.universal_transactions GROUP BY 1" 2>&1)" \
		"$(on 0 "SELECT step_name, error FROM chainexec.universal_transaction_lines WHERE status = 'failed'" 2>&1)"
fi

# 9: exactly once
got=$(on 0 "SELECT count(*) || ' ' || count(DISTINCT (k, step)) FROM public.ce_effects" 2>&1)
is "$got" "$((TOTAL * 3)) $((TOTAL * 3))" "each step's effect is there exactly once ($((TOTAL * 3)) rows, no duplicate)"

# 10: every organization was served
got=$(on 0 "SELECT count(DISTINCT organization_id) FROM chainexec.universal_transactions WHERE status = 'completed'" 2>&1)
is "$got" "$ORGS" "executions of all $ORGS organizations completed"

# 11: the executors of every node ran steps
got=$(on 0 "SELECT count(DISTINCT node) FROM public.ce_effects" 2>&1)
diag "steps per node (port): $(on 0 "SELECT string_agg(node || '=' || n, ' ' ORDER BY node) FROM (SELECT node, count(*) n FROM public.ce_effects GROUP BY 1) s" 2>&1)"
is "$got" "3" "the executors of every node (coordinator and both workers) ran steps"

# 12: node-local dispatch.  Each worker's executors serve the organizations
# placed on their node first; those of the other worker only in every 8th
# round of their dispatch and when none of their own has work they can
# claim.  Both workers hold half of the organizations and run two
# executors each, so a worker's own work lasts about as long as the other's,
# and the claims for the other's organizations are about one in 16 (the
# 8th round, half of the organizations elsewhere) plus those of its idle
# end.  Asserted: at least 2/3 of each worker's steps are of its own
# organizations (without the preference, a worker's share is the half of
# the organizations it holds).  (The coordinator holds no shard: every
# organization is its own.)
# share N: "local/all" steps of worker N (its port) for organizations placed there.
share()
{
	on 0 "WITH e AS MATERIALIZED (SELECT node, substr(k, 1, 36)::uuid o FROM public.ce_effects WHERE node = ${PORTS[$1]})
		SELECT count(*) FILTER (WHERE (SELECT groupid FROM pg_dist_placement WHERE shardid =
			get_shard_id_for_distribution_column('chainexec.universal_transaction_lines', e.o)) = $1) || '/' || count(*) FROM e" 2>&1
}
s1=$(share 1)
s2=$(share 2)
diag "steps of each worker's own organizations: worker 1 $s1, worker 2 $s2"
if [ "$(on 0 "SELECT ${s1%/*} * 3 >= ${s1#*/} * 2 AND ${s2%/*} * 3 >= ${s2#*/} * 2" 2>&1)" = t ]; then
	ok "node-local dispatch: at least 2/3 of each worker's steps are of organizations placed on it ($s1, $s2)"
else
	not_ok "node-local dispatch: at least 2/3 of each worker's steps are of organizations placed on it" "$s1 $s2"
fi

# 13-15: events.  NOTIFY is delivered on the node whose backend committed
# the transition, so a listener connects to every node (the coordinator and
# each worker), runs chain_listen() there for its organizations, and merges
# the streams, ordering each execution's events by "ts" (README, "Running
# on Citus").  Three psql sessions listen, one per node; one execution per
# organization starts, from the coordinator and from each worker in turn;
# when they are all complete, a marker NOTIFY committed on each node after
# them tells that its listener has printed every event of that node.
EV_DIR=$(mktemp -d "${TMPDIR:-/tmp}/citus-events.XXXXXX")
listener()
{
	local org

	{
		echo "LISTEN ce_test_marker;"
		for org in $ORG_LIST; do
			printf "BEGIN;\nSET LOCAL chainexec.organization_id = '%s';\nSELECT chainexec.chain_listen();\nCOMMIT;\n" "$org"
		done
		echo "SELECT 'listening';"
		while [ ! -e "$EV_DIR/stop" ]; do
			echo "SELECT 1;"
			sleep 0.2
		done
	} | "$CE_PGBIN/psql" -X -A -t -q -h "${NODES[$1]}" -p "${PORTS[$1]}" -U postgres -d "$CE_TEST_DB" \
		>"$EV_DIR/node$1" 2>&1
}
# wait_files PATTERN TIMEOUT: until every listener's output has a line matching PATTERN.
wait_files()
{
	local n deadline=$((SECONDS + $2))

	while [ "$SECONDS" -lt "$deadline" ]; do
		for n in 0 1 2; do
			grep -q "$1" "$EV_DIR/node$n" 2>/dev/null || break
			[ "$n" -eq 2 ] && return 0
		done
		sleep 0.2
	done
	return 1
}
for n in 0 1 2; do
	listener $n &
	LISTENERS+=($!)
done
fail=
wait_files '^listening$' 30 || fail="the listeners did not start: $(cat "$EV_DIR"/node* | tail -n 5)"
EV_IDS=
for n in 0 1 2; do
	[ -n "$fail" ] && break
	# organizations n, n + 3, ... from node n
	ids=$(on_orgs $n "SELECT chainexec.chain_execute('seed', jsonb_build_object('k', :'org' || '-events'))" \
		$(echo $ORG_LIST | tr ' ' '\n' | sed -n "$((n + 1))~3p") 2>&1) || { fail=$ids; break; }
	EV_IDS="$EV_IDS${EV_IDS:+,}$(echo $ids | tr ' ' ',')"
done
if [ -z "$fail" ] && poll 0 "SELECT count(*) FROM chainexec.universal_transactions WHERE status = 'completed'
		AND id = ANY ('{$EV_IDS}')" "$ORGS" 60; then
	for n in 0 1 2; do on $n "NOTIFY ce_test_marker, 'end'"; done
	wait_files 'notification "ce_test_marker"' 30 || fail="a listener did not receive its node's marker"
else
	fail=${fail:-"the executions did not complete"}
fi
touch "$EV_DIR/stop"
wait "${LISTENERS[@]}" 2>/dev/null
LISTENERS=()
for n in 0 1 2; do
	sed -n '/notification "ce_test_marker"/d
		s/^Asynchronous notification "[^"]*" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p' \
		"$EV_DIR/node$n" | awk -v n="$n" '{ printf "%d\t%d\t%s\n", n, NR, $0 }'
done >"$EV_DIR/all"
on 0 "CREATE TABLE public.ce_events (node int, seq int, ev jsonb)" >/dev/null 2>&1
"$CE_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "${NODES[0]}" -p "${PORTS[0]}" -U postgres -d "$CE_TEST_DB" \
	-c "\\copy public.ce_events FROM '$EV_DIR/all'" >/dev/null 2>&1
diag "events received per node's listener: $(on 0 "SELECT string_agg(node || '=' || n, ' ' ORDER BY node)
	FROM (SELECT node, count(*) n FROM public.ce_events GROUP BY 1) s" 2>&1)"
got=$(on 0 "SELECT count(DISTINCT node) FROM public.ce_events WHERE ev->>'executionId' = ANY ('{$EV_IDS}')" 2>&1)
if [ -z "$fail" ] && [ "$got" = 3 ]; then
	ok "a listener on every node (chain_listen for each organization): each node's listener received events"
else
	not_ok "a listener on every node (chain_listen for each organization): each node's listener received events" \
		"$fail" "listeners with events: $got"
fi
# every execution: chain_started, step_completed of steps 1 to 4, chain_completed, once
got=$(on 0 "WITH x AS (SELECT ev->>'executionId' e, ev->>'event' t, (ev->>'stepId')::int s FROM public.ce_events)
	SELECT (SELECT count(*) FROM (SELECT e FROM x GROUP BY e HAVING count(*) = 6
		AND count(*) FILTER (WHERE t = 'chain_started') = 1 AND count(*) FILTER (WHERE t = 'chain_completed') = 1
		AND count(DISTINCT s) FILTER (WHERE t = 'step_completed') = 4) g WHERE e = ANY ('{$EV_IDS}'))
		|| ' ' || (SELECT count(*) - count(DISTINCT ev::text) FROM public.ce_events)" 2>&1)
is "$got" "$ORGS 0" "the events of all $ORGS executions across the listeners, each once (6 each, no duplicate)"
# in order per execution, merged by ts: chain_started, steps 1 to 4, chain_completed
got=$(on 0 "SELECT count(*) FROM (SELECT array_agg(ev->>'event' || coalesce(':' || (ev->>'stepId'), '')
		ORDER BY (ev->>'ts')::timestamptz, node, seq) a FROM public.ce_events
		WHERE ev->>'executionId' = ANY ('{$EV_IDS}') GROUP BY ev->>'executionId') g
	WHERE a = '{chain_started,step_completed:1,step_completed:2,step_completed:3,step_completed:4,chain_completed}'" 2>&1)
is "$got" "$ORGS" "merged by ts, each execution's events are in order (chain_started, steps 1 to 4, chain_completed)"
rm -rf "$EV_DIR"
EV_DIR=

# 16: the SQL API of one organization, statement by statement, from a worker
# (versions, publishing, control, chain_run with a plain SET, limits,
# handlers, templates, cache, breakers)
org=$(echo $ORG_LIST | cut -d' ' -f1)
on 0 "CREATE FUNCTION public.ce_h(j jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT j'" >/dev/null 2>&1
out=$("$CE_PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "${NODES[2]}" -p "${PORTS[2]}" -U postgres -d "$CE_TEST_DB" 2>&1 <<SQL
BEGIN;
SET LOCAL chainexec.organization_id = '$org';
SELECT 'define ' || chainexec.chain_define('{"id": "api", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1 AS x"}]}', false);
SELECT 'publish ' || chainexec.chain_publish('api', 1);
SELECT 'define ' || chainexec.chain_define('{"id": "api", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT pg_sleep(3)::text AS x"}, {"id": 2, "name": "b", "type": "sql", "sql": "SELECT 2 AS y", "dependsOn": [1]}]}', true);
SELECT 'deprecate ' || chainexec.chain_deprecate('api');
SELECT 'reactivate ' || chainexec.chain_reactivate('api', 2);
SELECT 'quick ' || chainexec.chain_define('{"id": "quick", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 7 AS x"}]}', true);
SELECT chainexec.chain_execute('api', '{}') AS e \gset
COMMIT;
BEGIN;
SET LOCAL chainexec.organization_id = '$org';
SELECT 'pause ' || chainexec.chain_pause(:'e');
SELECT 'resume ' || chainexec.chain_resume(:'e');
SELECT 'cancel ' || chainexec.chain_cancel(:'e', 'test');
SELECT 'limit ' || (chainexec.chain_set_limit('lim', 2, 5, 2) IS NOT NULL);
SELECT 'limit ' || (chainexec.chain_set_limit('lim', 3, 6, 2) IS NOT NULL);
SELECT 'drop ' || chainexec.chain_drop_limit('lim');
SELECT 'handler ' || (chainexec.chain_register_handler('h', 'public.ce_h(jsonb)') IS NOT NULL);
SELECT 'handler ' || (chainexec.chain_register_handler('h', 'public.ce_h(jsonb)') IS NOT NULL);
SELECT 'template ' || (chainexec.chain_register_template('t', 'hello {x}') IS NOT NULL);
SELECT 'template ' || (chainexec.chain_register_template('t', 'hello {y}') IS NOT NULL);
SELECT 'cache ' || chainexec.chain_cache_invalidate('api', NULL);
SELECT 'breaker ' || chainexec.chain_circuit_reset('k');
COMMIT;
BEGIN;
SET LOCAL chainexec.organization_id = '$org';
SELECT 'status ' || (chainexec.chain_status(:'e')->>'status');
COMMIT;
SET chainexec.organization_id = '$org';
CALL chainexec.chain_run('quick', '{}', NULL, NULL);
SQL
)
want="define 1
publish 1
define 2
deprecate 2
reactivate 2
quick 1
pause true
resume true
cancel true
limit true
limit true
drop true
handler true
handler true
template true
template true
cache 0
breaker false
status cancelled"
got=$(printf '%s\n' "$out" | sed '$d')
if [ "$got" = "$want" ] && printf '%s\n' "$out" | tail -n 1 | grep -q '"status": "completed".*"x": 7'; then
	ok "the SQL API from a worker: versions, publishing, control, limits, handlers, templates, cache, breakers, chain_run"
else
	not_ok "the SQL API from a worker" "$out"
fi

# 18: a LOGIN role connected straight to a worker reads no shard of
# chainexec's tables (every organization's executions are there) and not
# the channel secret (with it, every organization's channel names)
on 0 "CREATE ROLE ce_citus_intruder LOGIN" >/dev/null 2>&1
tables=$(on 1 "SET citus.show_shards_for_app_name_prefixes = '*'; SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'chainexec' AND c.relkind IN ('r', 'p') ORDER BY 1")
shards=$(printf '%s\n' "$tables" | grep -c '^universal_transaction.*_[0-9][0-9]*$')
who=$("$CE_PGBIN/psql" -X -A -t -q -h "${NODES[1]}" -p "${PORTS[1]}" -U ce_citus_intruder -d "$CE_TEST_DB" \
	-c "SELECT current_user" 2>&1)
leaks=$(for t in $tables; do
		"$CE_PGBIN/psql" -X -A -t -q -h "${NODES[1]}" -p "${PORTS[1]}" -U ce_citus_intruder -d "$CE_TEST_DB" \
			-c "SELECT '$t' FROM chainexec.\"$t\" LIMIT 1" 2>/dev/null
	done)
if [ "$who" = ce_citus_intruder ] && [ "$shards" -gt 0 ] && [ -z "$leaks" ]; then
	ok "a LOGIN role on a worker reads no row of chainexec's tables or of their $shards execution shards there"
else
	not_ok "a LOGIN role on a worker reads no row of chainexec's tables or shards" "connected as: $who; shards: $shards; readable: $leaks"
fi

# 17: no crash but the one we caused (worker 1's restart after the SIGKILL)
crashes=$(for n in 0 1 2; do grep -E 'terminated by signal (4|6|7|8|11)\b|PANIC:|TRAP:' "${NODES[$n]}/server.log"; done | head -n 5)
is "$crashes" "" "no server process crashed on its own"

done_testing
