#!/usr/bin/env bash
# test/integration/limits.sh: flow control across executions, with 4
# executors.
#
#  - max_concurrent: 300 executions whose step holds limit "api"
#    (max_concurrent 3): the highest concurrency the step itself observes
#    (advisory locks of the steps in flight, read from pg_locks) is exactly
#    3; lines waiting for a place hold no transaction and no process (no
#    executor ever waits for another transaction's row or table lock; the
#    NOTIFY queue's lock at commit is the engine's and is not counted) and
#    are not counted as running;
#  - per_second 20, burst 5: never more than 25 calls in any 1 s window,
#    20 per second on average (within 10%);
#  - chain key concurrencyLimit 2: never more than 2 executions of the
#    chain started and unfinished at once, the others stay pending;
#  - chain_drop_limit lets the lines that wait for a place run.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: slow timeout=600
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
N=300
TMPF=$(mktemp "${TMPDIR:-/tmp}/ce-limits.XXXXXX")
NR=200

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'lim-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'lim-%-$S';
		RESET chainexec.internal;
		SELECT chainexec.chain_drop_limit(n) FROM unnest(ARRAY['api_$S', 'rate_$S', 'gate_$S']) n;
		DROP TABLE IF EXISTS public.lim_calls_$S, public.lim_marks_$S;
		DROP FUNCTION IF EXISTS public.lim_probe_$S(text);
		ALTER SYSTEM RESET chainexec.max_workers;
	EOF
	rm -f "$TMPF" "$TMPF.sample"
	cluster_ctl restart >/dev/null 2>&1
	wait_ready 60 >/dev/null 2>&1
}
trap cleanup EXIT

define()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -v "def=$1" <<<"SELECT chainexec.chain_define(:'def'::jsonb, true)" >/dev/null
}

# max_while_running CHAIN SQL SECONDS: run SQL every 0.05 s for at most
# SECONDS or until the executions of CHAIN are done; print the largest value
# seen.  SQL prints a number, optionally followed by "|" and a description
# of what it saw; the description of the largest value goes to
# $TMPF.sample (a diagnostic).
max_while_running()
{
	local chain=$1 sql=$2 timeout=$3 max=0 got deadline left

	: >"$TMPF.sample"
	deadline=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$deadline" ]; do
		got=$(psql_q "$sql") || got=0
		if [ "${got%%|*}" -gt "$max" ] 2>/dev/null; then
			max=${got%%|*}
			printf '%s\n' "${got#*|}" >"$TMPF.sample"
		fi
		left=$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$chain' AND finished_at IS NULL")
		[ "$left" = 0 ] && break
		sleep 0.05
	done
	echo "$max"
}

plan 28

psql_q "ALTER SYSTEM SET chainexec.max_workers = 4" >/dev/null || bail_out "cannot set chainexec.max_workers"
cluster_ctl restart >/dev/null 2>&1 || bail_out "cannot restart the server"
wait_ready 60 || bail_out "the server does not come back"
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" 4 60 ||
	bail_out "4 executors did not start"

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "setup failed"
	CREATE TABLE public.lim_calls_$S (kind text, at timestamptz, concurrency int);
	CREATE TABLE public.lim_marks_$S (id uuid, kind text, at timestamptz DEFAULT clock_timestamp());
	CREATE FUNCTION public.lim_probe_$S(kind text) RETURNS int LANGUAGE plpgsql AS \$f\$
	DECLARE n int;
	BEGIN
		/* one advisory lock per step in flight, held until its transition ends */
		PERFORM pg_advisory_xact_lock(4242, pg_backend_pid());
		PERFORM pg_sleep(0.02);
		SELECT count(*) INTO n FROM pg_locks WHERE locktype = 'advisory' AND classid = 4242 AND granted;
		INSERT INTO public.lim_calls_$S VALUES (kind, clock_timestamp(), n);
		PERFORM pg_sleep(0.02);
		RETURN n;
	END
	\$f\$;
	SELECT chainexec.chain_set_limit('api_$S', max_concurrent => 3);
	SELECT chainexec.chain_set_limit('rate_$S', per_second => 20, burst => 5);
EOF

# 1-2: the limits as set
is "$(psql_q "SELECT name || ':' || max_concurrent || ':' || in_use || ':' || waiting FROM chainexec.limits WHERE name = 'api_$S'")" \
	"api_$S:3:0:0" "chainexec.limits shows the limit and its use"
is "$(psql_q "SELECT name || ':' || per_second || ':' || burst || ':' || (tokens > 4.9) FROM chainexec.limits WHERE name = 'rate_$S'")" \
	"rate_$S:20:5:true" "a rate limit starts with a full bucket"

define "{\"id\": \"lim-api-$S\", \"steps\": [{\"id\": 1, \"name\": \"call\", \"type\": \"sql\", \"limits\": [\"api_$S\"],
	\"sql\": \"SELECT public.lim_probe_$S('api') AS c\"}]}" || bail_out "cannot define the limited chain"

# 3-7: 300 executions, max_concurrent 3, 4 executors
psql_q "SELECT count(chainexec.chain_execute('lim-api-$S')) FROM generate_series(1, $N)" >/dev/null
poll_query_until "SELECT count(*) > 10 FROM chainexec.universal_transaction_lines WHERE waits_for = 'api_$S'" t 60
is "$(psql_q "SELECT p->>'running' || ':' || (p->>'waiting') FROM (SELECT chainexec.chain_status(transaction_id)->'progress' AS p FROM chainexec.universal_transaction_lines WHERE waits_for = 'api_$S' ORDER BY priority, not_before DESC LIMIT 1) s")" \
	"0:1" "a line waiting for a place counts as waiting, not running, in chain_status"
WAITMAX=$(max_while_running "lim-api-$S" "SELECT count(*) || '|' || coalesce(string_agg(a.wait_event || ' in \"' || left(a.query, 100) || '\" behind ' ||
		coalesce((SELECT string_agg(b.backend_type || ' \"' || left(b.query, 100) || '\"', ', ') FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))), '?'), '; '), '')
	FROM pg_stat_activity a WHERE a.backend_type = 'chainexec executor' AND a.wait_event_type = 'Lock' AND a.wait_event IN ('transactionid', 'tuple', 'relation')" 240)
WAITSEEN=$(cat "$TMPF.sample")
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'lim-api-$S' AND status = 'completed'" "$N" 120
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'lim-api-$S' AND status = 'completed'")" "$N" \
	"all $N executions complete"
is "$(psql_q "SELECT max(concurrency) FROM public.lim_calls_$S WHERE kind = 'api'")" 3 \
	"the highest concurrency the step observed is exactly 3 (max_concurrent 3, 4 executors)"
if [ "$WAITMAX" = 0 ]; then
	ok "no executor ever waited for a lock (another transaction) while lines waited for a place"
else
	not_ok "no executor ever waited for a lock (another transaction) while lines waited for a place" \
		"up to $WAITMAX executors waited at once: $WAITSEEN"
fi
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id WHERE t.chain_id = 'lim-api-$S' AND (l.attempt <> 1 OR l.waits_for IS NOT NULL)")" 0 \
	"waiting for a place costs no attempt and leaves nothing behind"
is "$(psql_q "SELECT in_use || ':' || waiting FROM chainexec.limits WHERE name = 'api_$S'")" "0:0" \
	"the limit is free again"

# 8-10: per_second 20, burst 5
define "{\"id\": \"lim-rate-$S\", \"steps\": [{\"id\": 1, \"name\": \"call\", \"type\": \"sql\", \"limits\": [\"rate_$S\"],
	\"sql\": \"SELECT public.lim_probe_$S('rate') AS c\"}]}" || bail_out "cannot define the rate-limited chain"
psql_q "SELECT count(chainexec.chain_execute('lim-rate-$S')) FROM generate_series(1, $NR)" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'lim-rate-$S' AND finished_at IS NOT NULL" "$NR" 120
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'lim-rate-$S' AND status = 'completed'")" "$NR" \
	"all $NR rate-limited executions complete"
WIN=$(psql_q "SELECT max(c) FROM (SELECT count(*) OVER (ORDER BY at RANGE BETWEEN CURRENT ROW AND '999.999 milliseconds' FOLLOWING) AS c FROM public.lim_calls_$S WHERE kind = 'rate') w")
RATE=$(psql_q "SELECT round(((count(*) - 1) / extract(epoch FROM max(at) - min(at)))::numeric, 2) FROM public.lim_calls_$S WHERE kind = 'rate'")
diag "rate limit: at most $WIN calls in a 1 s window, $RATE calls/s on average"
check "never more than 25 calls in any 1 s window (per_second 20 + burst 5): $WIN" test "${WIN:-99}" -le 25
check "20 calls per second on average, within 10%: $RATE" \
	awk -v r="${RATE:-0}" 'BEGIN { exit !(r >= 18 && r <= 22) }'

# 11-13: chain key concurrencyLimit 2: each execution marks its start (in
# its first step) and its end (in its last); an execution holds its place
# from before the first mark until after the last.
define "{\"id\": \"lim-conc-$S\", \"concurrencyLimit\": 2, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"INSERT INTO public.lim_marks_$S (id, kind) SELECT {chain.execution_id}::uuid, 'start' FROM pg_sleep(0.2)\"},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"INSERT INTO public.lim_marks_$S (id, kind) SELECT {chain.execution_id}::uuid, 'end' FROM pg_sleep(0.2)\"}]}" ||
	bail_out "cannot define the chain with concurrencyLimit"
psql_q "SELECT count(chainexec.chain_execute('lim-conc-$S')) FROM generate_series(1, 10)" >/dev/null
PENDMAX=$(max_while_running "lim-conc-$S" "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'lim-conc-$S' AND status = 'pending' AND EXISTS (SELECT FROM chainexec.universal_transactions r WHERE r.chain_id = 'lim-conc-$S' AND r.status = 'running')" 60)
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'lim-conc-$S' AND finished_at IS NOT NULL" 10 60
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'lim-conc-$S' AND status = 'completed'")" 10 \
	"all 10 executions of the chain with concurrencyLimit 2 complete"
is "$(psql_q "SELECT max(n) FROM (SELECT (SELECT count(*) FROM public.lim_marks_$S s2 JOIN public.lim_marks_$S e2 ON e2.id = s2.id AND e2.kind = 'end' WHERE s2.kind = 'start' AND s2.at <= s.at AND e2.at >= s.at) AS n FROM public.lim_marks_$S s WHERE s.kind = 'start') o")" 2 \
	"at most 2 executions ran at once, and 2 did (as their steps recorded)"
check "the others stayed pending meanwhile (up to $PENDMAX seen)" test "${PENDMAX:-0}" -ge 1

# 14-15: dropping a limit lets its waiting lines run
psql_q "SELECT chainexec.chain_set_limit('gate_$S', max_concurrent => 1)" >/dev/null
define "{\"id\": \"lim-gate-$S\", \"steps\": [{\"id\": 1, \"name\": \"call\", \"type\": \"sql\", \"limits\": [\"gate_$S\"],
	\"sql\": \"SELECT pg_sleep(3)\"}]}" || bail_out "cannot define the gated chain"
psql_q "SELECT count(chainexec.chain_execute('lim-gate-$S')) FROM generate_series(1, 3)" >/dev/null
poll_query_until "SELECT waiting FROM chainexec.limits WHERE name = 'gate_$S'" 2 30
is "$(psql_q "SELECT chainexec.chain_drop_limit('gate_$S')")" t "chain_drop_limit drops the limit"
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'lim-gate-$S' AND status = 'completed'" 3 30
is "$(psql_q "SELECT (max(finished_at) - min(finished_at)) < interval '2.5 s' FROM chainexec.universal_transactions WHERE chain_id = 'lim-gate-$S'")" t \
	"the lines that waited for a place ran at once when it was dropped"

# 17-20: a limit lowered by a new version (2, then 1): the places beyond it
# are no room.  Execution a (version 1) holds place 1 for 6 s, b (version
# 1) place 2 for 1 s; c (version 2, limit 1) waits for place 1.  Once b has
# ended, place 2 is free but beyond c's limit: the executors' sweep (every
# poll_interval, 1 s) does not wake c's line for it (its row stays as it
# is), and c runs when a ends.
define "{\"id\": \"lim-low-$S\", \"concurrencyLimit\": 2, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep({secs}::float8)\"}]}" ||
	bail_out "cannot define the chain with concurrencyLimit 2"
la=$(psql_q "SELECT chainexec.chain_execute('lim-low-$S', '{\"secs\": 6}')")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%(execution $la)'" 1 20 >/dev/null
lb=$(psql_q "SELECT chainexec.chain_execute('lim-low-$S', '{\"secs\": 1}')")
define "{\"id\": \"lim-low-$S\", \"concurrencyLimit\": 1, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep({secs}::float8)\"}]}" ||
	bail_out "cannot define version 2 with concurrencyLimit 1"
is "$(psql_q "SELECT finished_at IS NULL FROM chainexec.universal_transactions WHERE id = '$la'")" t \
	"a new version is defined while a step holds a place of the chain (the definition does not wait for the step)"
lc=$(psql_q "SELECT chainexec.chain_execute('lim-low-$S', '{\"secs\": 0}')")
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$lb'" completed 20 >/dev/null
sleep 0.5
before=$(psql_q "SELECT xmin, waits_for FROM chainexec.universal_transaction_lines WHERE transaction_id = '$lc'")
sleep 2.5
is "$(psql_q "SELECT xmin, waits_for FROM chainexec.universal_transaction_lines WHERE transaction_id = '$lc'")" "$before" \
	"a line waiting under a lowered concurrencyLimit is not woken for a place beyond it"
like "$before" "chain:lim-low-$S\$" "it waits for a place of its chain"
psql_q "SELECT chainexec.chain_wait('$lc', 20000)" >/dev/null
is "$(psql_q "SELECT t.status || ' ' || (t.started_at >= a.finished_at)::text
	FROM chainexec.universal_transactions t, chainexec.universal_transactions a WHERE t.id = '$lc' AND a.id = '$la'")" "completed true" \
	"it starts when the execution holding place 1 ends"

# 21: an execution that failed gave its place up; resumed while another
# execution's step is taking that place (not committed yet: it takes it
# for its whole step), it waits for a place: it does not find the place
# as its own, and no two executions run at once under concurrencyLimit 1.
define "{\"id\": \"lim-race-$S\", \"concurrencyLimit\": 1, \"steps\": [
	{\"id\": 1, \"name\": \"s\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep({secs}::float8), 1 / {d}::int AS r\"}]}" ||
	bail_out "cannot define the chain lim-race"
r1=$(psql_q "SELECT chainexec.chain_execute('lim-race-$S', '{\"secs\": 0, \"d\": 0}')")
psql_q "SELECT chainexec.chain_wait('$r1', 20000)" >/dev/null
r2=$(psql_q "SELECT chainexec.chain_execute('lim-race-$S', '{\"secs\": 3, \"d\": 1}')")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%(execution $r2)'" 1 20 >/dev/null
psql_q "SELECT chainexec.chain_resume('$r1')" >/dev/null
psql_q "SELECT chainexec.chain_wait('$r2', 20000)" >/dev/null
psql_q "SELECT chainexec.chain_wait('$r1', 20000)" >/dev/null
is "$(psql_q "SELECT t1.status || ' ' || (l.started_at >= t2.finished_at)::text
	FROM chainexec.universal_transactions t1, chainexec.universal_transaction_lines l, chainexec.universal_transactions t2
	WHERE t1.id = '$r1' AND l.transaction_id = t1.id AND t2.id = '$r2'")" "failed true" \
	"a failed execution resumed while another takes its place runs again only after that one ended"

# 22-25: places freed under versions with different limits go to a line
# whose own version admits them.  Raised (1, then 2): e1 (v1) holds place
# 1, e2 (v1) waits, e5 (v2) holds place 2, e7 (v2) waits; e5 ends: place 2
# goes to e7 (e2's version admits 1 place only).  Lowered (2, then 1): f1
# and f2 (v1) hold both, f5 (v2) waits, then f3 (v1) waits; f2 ends: place
# 2 goes to f3, not to f5, older, whose version admits 1 place.
ext_chain()
{
	define "{\"id\": \"$1\", \"concurrencyLimit\": $2, \"steps\": [{\"id\": 1, \"name\": \"ext\", \"type\": \"external\"}]}" ||
		bail_out "cannot define chain $1 with concurrencyLimit $2"
}
status_of()
{
	psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$1'"
}
ext_chain "lim-up-$S" 1
e1=$(psql_q "SELECT chainexec.chain_execute('lim-up-$S')")
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$e1'" waiting 20 >/dev/null
e2=$(psql_q "SELECT chainexec.chain_execute('lim-up-$S')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$e2' AND waits_for IS NOT NULL" 1 20 >/dev/null
ext_chain "lim-up-$S" 2
e5=$(psql_q "SELECT chainexec.chain_execute('lim-up-$S')")
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$e5'" waiting 20 >/dev/null
e7=$(psql_q "SELECT chainexec.chain_execute('lim-up-$S')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$e7' AND waits_for IS NOT NULL" 1 20 >/dev/null
psql_q "SELECT chainexec.chain_step_complete('$e5', 1, '{}')" >/dev/null
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$e7'" waiting 20 >/dev/null
is "$(status_of "$e7") $(status_of "$e2")" "waiting pending" \
	"raised limit: the place freed by a version 2 execution goes to the waiting one of version 2"
is "$(psql_q "SELECT string_agg(slot || '=' || CASE holder WHEN '$e1' THEN 'e1' WHEN '$e7' THEN 'e7' ELSE coalesce(holder::text, '-') END, ' ' ORDER BY slot)
	FROM chainexec.chain_slots WHERE chain_id = 'lim-up-$S'")" "1=e1 2=e7" "e1 and e7 hold the two places"
for e in "$e1" "$e7"; do psql_q "SELECT chainexec.chain_cancel('$e')" >/dev/null; done

ext_chain "lim-down-$S" 2
f1=$(psql_q "SELECT chainexec.chain_execute('lim-down-$S')")
f2=$(psql_q "SELECT chainexec.chain_execute('lim-down-$S')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE id IN ('$f1', '$f2') AND status = 'waiting'" 2 20 >/dev/null
ext_chain "lim-down-$S" 1
f5=$(psql_q "SELECT chainexec.chain_execute('lim-down-$S')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$f5' AND waits_for IS NOT NULL" 1 20 >/dev/null
f3=$(psql_q "SELECT chainexec.chain_execute('lim-down-$S', '{}', '{\"version\": 1}')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$f3' AND waits_for IS NOT NULL" 1 20 >/dev/null
psql_q "SELECT chainexec.chain_step_complete('$f2', 1, '{}')" >/dev/null
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$f3'" waiting 20 >/dev/null
is "$(status_of "$f3") $(status_of "$f5")" "waiting pending" \
	"lowered limit: the place beyond version 2's limit goes to the waiting execution of version 1"
psql_q "SELECT chainexec.chain_step_complete('$f1', 1, '{}')" >/dev/null
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$f5'" waiting 20 >/dev/null
is "$(status_of "$f5")" waiting "place 1, freed, goes to the version 2 execution"
for e in "$f3" "$f5"; do psql_q "SELECT chainexec.chain_cancel('$e')" >/dev/null; done

# 26: a concurrencyLimit written 1.0 is the integer 1 (one place)
define "{\"id\": \"lim-float-$S\", \"concurrencyLimit\": 1.0, \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1\"}]}" ||
	not_ok "concurrencyLimit 1.0 is refused"
is "$(psql_q "SELECT count(*) FROM chainexec.chain_slots WHERE chain_id = 'lim-float-$S'")" 1 \
	"concurrencyLimit 1.0 gives the chain one place"

# 27: concurrencyLimit counts executions, not steps: the parallel first
# steps of one execution run side by side (the place is taken in a
# transition of its own, committed before they run; taken in the step's
# own, it stayed invisible to the other line for the whole step).
define "{\"id\": \"lim-par-$S\", \"concurrencyLimit\": 1, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(1)\"},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"parallelExecution\": true, \"sql\": \"SELECT pg_sleep(1)\"}]}" ||
	bail_out "cannot define the chain lim-par"
p=$(psql_q "SELECT chainexec.chain_execute('lim-par-$S')")
psql_q "SELECT chainexec.chain_wait('$p', 20000)" >/dev/null
is "$(psql_q "SELECT t.status, (SELECT count(*) FROM chainexec.universal_transaction_lines a, chainexec.universal_transaction_lines b
	WHERE a.transaction_id = t.id AND b.transaction_id = t.id AND a.line_number < b.line_number
	AND tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at))
	FROM chainexec.universal_transactions t WHERE t.id = '$p'")" "completed|1" \
	"the parallel first steps of an execution under concurrencyLimit 1 run side by side"

# 28: chain_rollback of an execution that has ended (its place given up)
# while another execution holds the only place: its compensation waits for
# a place, and runs after that execution ended.
define "{\"id\": \"lim-rb-$S\", \"concurrencyLimit\": 1, \"rollbackEnabled\": true, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep({secs}::float8)\", \"rollbackAction\": \"SELECT pg_sleep(0.5)\"}]}" ||
	bail_out "cannot define the chain lim-rb"
b1=$(psql_q "SELECT chainexec.chain_execute('lim-rb-$S', '{\"secs\": 0}')")
psql_q "SELECT chainexec.chain_wait('$b1', 20000)" >/dev/null
b2=$(psql_q "SELECT chainexec.chain_execute('lim-rb-$S', '{\"secs\": 2}')")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%(execution $b2)'" 1 20 >/dev/null
psql_q "SELECT chainexec.chain_rollback('$b1')" >/dev/null
psql_q "SELECT chainexec.chain_wait('$b2', 20000)" >/dev/null
poll_query_until "SELECT finished_at IS NOT NULL FROM chainexec.universal_transactions WHERE id = '$b1'" t 20 >/dev/null
is "$(psql_q "SELECT t1.status || ' ' || (l.started_at >= t2.finished_at)::text
	FROM chainexec.universal_transactions t1, chainexec.universal_transaction_lines l, chainexec.universal_transactions t2
	WHERE t1.id = '$b1' AND l.transaction_id = t1.id AND l.line_type = 'compensation' AND t2.id = '$b2'")" "compensated true" \
	"a rollback of an ended execution runs its compensation only when it has a place again"
