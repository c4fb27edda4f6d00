#!/usr/bin/env bash
# test/integration/control.sh: the events and estimates of the control
# functions, with the executors and a LISTEN client (chainexec_watch).
#
# Events sent by chain_pause, chain_resume, chain_skip_step, chain_cancel,
# chain_step_complete, chain_step_fail and chain_retry_step carry the real
# attempt and etaMs, as the engine's own do (one
# event builder); etaMs is known at once after a chain's first completion
# (no cached "no history" answer for a minute); estimates count the time
# spent in failed attempts and back-offs.  An execution paused (or
# cancelled) and resumed before any of its steps started is pending again:
# its first step starts it, under the chain's concurrencyLimit.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ce-control.XXXXXX")
RAW=$TMP/raw.txt
WATCH=$(command -v chainexec_watch || echo "$CE_REPO/tools/chainexec_watch")
WATCHER=

cleanup()
{
	[ -n "$WATCHER" ] && kill "$WATCHER" 2>/dev/null
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'ctl-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'ctl-%-$S';
		DROP FUNCTION IF EXISTS public.ctl_flaky_$S(int);
	EOF
	rm -rf "$TMP"
}
trap cleanup EXIT

if [ ! -x "$WATCH" ]; then
	echo "1..0 # SKIP chainexec_watch is not built (tools/chainexec_watch.c)"
	exit 0
fi

define()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -v "def={\"id\": \"$1\", \"steps\": $2}" \
		<<<"SELECT chainexec.chain_define(:'def'::jsonb, true)" >/dev/null
}

start()
{
	psql_q "SELECT chainexec.chain_execute('$1', '{}', '${2:-{\}}')"
}

# event EXECUTION EVENT FIELD: FIELD of the last EVENT of EXECUTION ("" if none).
event()
{
	local line

	line=$(grep -F "\"$1\"" "$RAW" | grep -F "\"event\": \"$2\"" | tail -n 1)
	[ -z "$line" ] && line=$(grep -F "\"$1\"" "$RAW" | grep -F "\"event\":\"$2\"" | tail -n 1)
	[ -z "$line" ] && return 0
	psql -X -A -t -q -v "p=$line" <<<"SELECT coalesce((:'p'::jsonb)->>'$3', 'null')"
}

# step_event EXECUTION EVENT STEP FIELD: FIELD of the last EVENT of step STEP of EXECUTION.
step_event()
{
	local line

	line=$(grep -F "\"$1\"" "$RAW" | grep -E "\"event\": ?\"$2\"" | grep -E "\"stepId\": ?$3[,} ]" | tail -n 1)
	[ -z "$line" ] && return 0
	psql -X -A -t -q -v "p=$line" <<<"SELECT coalesce((:'p'::jsonb)->>'$4', 'null')"
}

# wait_event EXECUTION EVENT: wait (10 s at most) until EVENT of EXECUTION arrived.
wait_event()
{
	local deadline=$((SECONDS + 10))

	while [ "$SECONDS" -lt "$deadline" ]; do
		[ -n "$(event "$1" "$2" event)" ] && return 0
		sleep 0.1
	done
	return 1
}

wait_line()
{
	poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND step_id = $2 ORDER BY line_number DESC LIMIT 1" "$3" 30
}

plan 34

"$WATCH" --raw -v -t 280 >"$RAW" 2>"$TMP/raw.err" &
WATCHER=$!
deadline=$((SECONDS + 20))
until grep -q 'listening on' "$TMP/raw.err" || [ "$SECONDS" -ge "$deadline" ]; do
	sleep 0.1
done
grep -q 'listening on' "$TMP/raw.err" || bail_out "the watcher does not listen: $(cat "$TMP/raw.err")"

# ---------------------------------------------------------------------------
# etaMs right after a chain's first completion.
define "ctl-first-$S" '[{"id": 1, "name": "a", "type": "sql", "sql": "SELECT pg_sleep(0.1)"},
	{"id": 2, "name": "b", "type": "sql", "sql": "SELECT pg_sleep(0.1)"},
	{"id": 3, "name": "c", "type": "sql", "sql": "SELECT pg_sleep(0.1)"}]'
e1=$(start "ctl-first-$S")
psql_q "SELECT chainexec.chain_wait('$e1', 20000)->>'status'" >/dev/null
sleep 1.2
e2=$(start "ctl-first-$S")
psql_q "SELECT chainexec.chain_wait('$e2', 20000)->>'status'" >/dev/null
wait_event "$e2" chain_completed
eta=$(event "$e2" step_completed etaMs)
like "$eta" '^[0-9]+$' "the second execution's events carry etaMs (got $eta), the chain's first completion being known"
like "$(event "$e2" chain_started etaMs)" '^[0-9]+$' "its chain_started (sent by chain_execute) carries etaMs too"

# ---------------------------------------------------------------------------
# A chain with an approval: events of the control functions.
define "ctl-ask-$S" '[{"id": 1, "name": "prep", "type": "sql", "sql": "SELECT pg_sleep(0.05)"},
	{"id": 2, "name": "approve", "type": "external", "outputVariables": ["ok"]},
	{"id": 3, "name": "book", "type": "sql", "sql": "SELECT pg_sleep(0.05)"}]'
for i in 1 2; do
	h=$(start "ctl-ask-$S")
	wait_line "$h" 2 waiting >/dev/null
	psql_q "SELECT chainexec.chain_step_complete('$h', 2, '{\"ok\": true}')" >/dev/null
	psql_q "SELECT chainexec.chain_wait('$h', 20000)->>'status'" >/dev/null
done
sleep 1.2
x=$(start "ctl-ask-$S")
wait_line "$x" 2 waiting >/dev/null
psql_q "SELECT chainexec.chain_pause('$x')" >/dev/null
wait_event "$x" chain_paused
like "$(event "$x" chain_paused etaMs)" '^[0-9]+$' "chain_paused carries the execution's etaMs"
is "$(event "$x" chain_paused progress)" 33 "chain_paused carries its progress (1 of 3 steps)"
psql_q "SELECT chainexec.chain_resume('$x')" >/dev/null
wait_event "$x" chain_resumed
like "$(event "$x" chain_resumed etaMs)" '^[0-9]+$' "chain_resumed carries the execution's etaMs"
psql_q "SELECT chainexec.chain_skip_step('$x', 2, '{\"ok\": false}')" >/dev/null
wait_event "$x" step_skipped
is "$(event "$x" step_skipped attempt)" 1 "step_skipped of a waiting step carries its attempt (1)"
like "$(event "$x" step_skipped etaMs)" '^[0-9]+$' "and etaMs"
psql_q "SELECT chainexec.chain_wait('$x', 20000)->>'status'" >/dev/null

y=$(start "ctl-ask-$S")
wait_line "$y" 2 waiting >/dev/null
psql_q "SELECT chainexec.chain_step_complete('$y', 2, '{\"ok\": true}')" >/dev/null
wait_event "$y" chain_completed
is "$(event "$y" step_completed attempt | tail -n 1)" 1 "the step_completed of chain_step_complete carries attempt 1"
like "$(step_event "$y" step_completed 2 etaMs)" '^[0-9]+$' "and etaMs"

# chain_step_fail, then chain_retry_step of the failed execution
w=$(start "ctl-ask-$S")
wait_line "$w" 2 waiting >/dev/null
psql_q "SELECT chainexec.chain_step_fail('$w', 2, 'business_rule_violation', 'declined')" >/dev/null
wait_event "$w" chain_failed
is "$(step_event "$w" step_failed 2 attempt)" 1 "the step_failed of chain_step_fail carries attempt 1"
like "$(step_event "$w" step_failed 2 etaMs)" '^[0-9]+$' "and etaMs"
like "$(event "$w" chain_failed etaMs)" '^[0-9]+$' "the chain_failed that follows carries etaMs"
psql_q "SELECT chainexec.chain_retry_step('$w', 2)" >/dev/null
wait_event "$w" chain_resumed
like "$(event "$w" chain_resumed etaMs)" '^[0-9]+$' "the chain_resumed of chain_retry_step carries etaMs"
wait_line "$w" 2 waiting >/dev/null
psql_q "SELECT chainexec.chain_step_complete('$w', 2, '{\"ok\": true}')" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$w', 20000)->>'status'")" completed "the retried execution completes"
is "$(step_event "$w" step_completed 2 attempt)" 1 "the retried step's step_completed carries attempt 1 (a new first attempt)"

# ---------------------------------------------------------------------------
# Estimates count failed attempts: a step that fails once and waits out a
# back-off of 800 ms before it succeeds.
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE FUNCTION public.ctl_flaky_$S(attempt int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
	IF attempt < 2 THEN
		PERFORM chainexec.raise_failure('api_timeout', 'first attempts fail');
	END IF;
	RETURN attempt;
END
\$\$;
EOF
define "ctl-flaky-$S" "[{\"id\": 1, \"name\": \"flaky\", \"type\": \"sql\", \"sql\": \"SELECT public.ctl_flaky_$S({chain.attempt}::int) AS n\",
	\"retryConfig\": {\"maxRetries\": 2, \"backoffStrategy\": \"fixed\", \"baseDelayMs\": 800, \"retryOnErrors\": [\"api_timeout\"]}}]"
for i in 1 2; do
	f=$(start "ctl-flaky-$S")
	psql_q "SELECT chainexec.chain_wait('$f', 20000)->>'status'" >/dev/null
done
later=$(start "ctl-flaky-$S" '{"runAt": "2100-01-01T00:00:00Z"}')
eta=$(psql_q "SELECT chainexec.chain_status('$later')->'progress'->>'etaMs'")
if [ -n "$eta" ] && [ "$eta" != null ] && [ "$eta" -ge 800 ]; then
	ok "the estimate of a step includes its failed attempt and back-off ($eta ms >= 800 ms)"
else
	not_ok "the estimate of a step includes its failed attempt and back-off" "etaMs: $eta"
fi
psql_q "SELECT chainexec.chain_cancel('$later')" >/dev/null
wait_event "$later" chain_cancelled
like "$(event "$later" chain_cancelled etaMs)" '^[0-9]+$' "chain_cancelled carries etaMs too"

# ---------------------------------------------------------------------------
# A cancel in a savepoint that rolls back interrupts nothing.
define "ctl-sleep-$S" '[{"id": 1, "name": "nap", "type": "sql", "sql": "SELECT pg_sleep(2) IS NULL AS slept"}]'
z=$(start "ctl-sleep-$S")
poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'chainexec: ctl-sleep-$S/%'" t 20 >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -c "BEGIN" -c "SAVEPOINT s" -c "SELECT chainexec.chain_cancel('$z')" \
	-c "ROLLBACK TO s" -c "COMMIT" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$z', 20000)->>'status'")" completed \
	"a chain_cancel rolled back to a savepoint does not interrupt the running step"
is "$(psql_q "SELECT attempt FROM chainexec.universal_transaction_lines WHERE transaction_id = '$z'")" 1 \
	"which completes at its first attempt"

# ---------------------------------------------------------------------------
# Paused or cancelled, then resumed, before any step started: pending again;
# the first step starts it (started_at), under concurrencyLimit 1.
psql_q "SELECT chainexec.chain_define('{\"id\": \"ctl-limit-$S\", \"concurrencyLimit\": 1, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS a FROM pg_sleep(0.3)\", \"outputVariables\": [\"a\"]},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 2 AS b\", \"outputVariables\": [\"b\"]}]}', true)" >/dev/null
soon=$(psql_q "SELECT to_jsonb(now() + interval '1.5 seconds')")
l1=$(start "ctl-limit-$S" "{\"runAt\": $soon}")
l2=$(start "ctl-limit-$S" "{\"runAt\": $soon}")
l3=$(start "ctl-limit-$S" "{\"runAt\": $soon}")
is "$(psql_q "SELECT chainexec.chain_pause('$l1') AND chainexec.chain_resume('$l1')
	AND chainexec.chain_pause('$l2') AND chainexec.chain_resume('$l2')
	AND chainexec.chain_cancel('$l3') AND chainexec.chain_resume('$l3')")" t \
	"pause and resume, and cancel and resume, before any step started"
is "$(psql_q "SELECT string_agg(status || ':' || (started_at IS NULL)::text, ' ' ORDER BY id)
	FROM chainexec.universal_transactions WHERE id IN ('$l1', '$l2', '$l3')")" \
	"pending:true pending:true pending:true" "the three executions are pending again, not started"
wait_event "$l1" chain_resumed
is "$(event "$l1" chain_resumed status)" pending "their chain_resumed event says pending"
for x in "$l1" "$l2" "$l3"; do
	psql_q "SELECT chainexec.chain_wait('$x', 20000)" >/dev/null
done
is "$(psql_q "SELECT string_agg(status || ':' || (started_at IS NOT NULL AND started_at <= finished_at)::text
	|| ':' || (context->>'b'), ' ' ORDER BY id) FROM chainexec.universal_transactions WHERE id IN ('$l1', '$l2', '$l3')")" \
	"completed:true:2 completed:true:2 completed:true:2" "each then completes, with the start its first step wrote"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions a, chainexec.universal_transactions b
	WHERE a.id IN ('$l1', '$l2', '$l3') AND b.id IN ('$l1', '$l2', '$l3') AND a.id < b.id
	AND tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at)")" 0 \
	"one at a time, as concurrencyLimit 1 says"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t
	ON t.id = l.transaction_id WHERE t.id IN ('$l1', '$l2', '$l3') AND l.started_at < t.started_at")" 0 \
	"no step started before its execution did"

# Paused while its first step ran: that step started it; resumed, it is running.
psql_q "SELECT chainexec.chain_define('{\"id\": \"ctl-solo-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS a FROM pg_sleep(1)\", \"outputVariables\": [\"a\"]},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 2 AS b FROM pg_sleep(1)\", \"outputVariables\": [\"b\"]}]}', true)" >/dev/null
p=$(start "ctl-solo-$S")
poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'chainexec: ctl-solo-$S/%'" t 20 >/dev/null
psql_q "SELECT chainexec.chain_pause('$p')" >/dev/null
wait_line "$p" 1 completed >/dev/null
psql_q "SELECT chainexec.chain_resume('$p')" >/dev/null
is "$(psql_q "SELECT true, status, started_at = (SELECT first_started_at FROM
	chainexec.universal_transaction_lines WHERE transaction_id = '$p' AND step_id = 1)
	FROM chainexec.universal_transactions WHERE id = '$p'")" "t|running|t" \
	"paused while its first step ran, then resumed: running, started when that step did"
is "$(psql_q "SELECT chainexec.chain_wait('$p', 20000)->>'status'")" completed "and it completes"

# concurrencyLimit 1 holds through a skip of a waiting execution's step and
# a cancel and resume of one that had started; a skip or retry of a step of
# an execution not yet due leaves it pending.
psql_q "SELECT chainexec.chain_define('{\"id\": \"ctl-lim2-$S\", \"concurrencyLimit\": 1, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS a FROM pg_sleep(0.6)\", \"outputVariables\": [\"a\"]},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 2 AS b FROM pg_sleep(0.6)\", \"outputVariables\": [\"b\"]}]}', true)" >/dev/null
x=$(start "ctl-lim2-$S")
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$x'" running 20 >/dev/null
y=$(start "ctl-lim2-$S")
sleep 0.2
psql_q "SELECT chainexec.chain_skip_step('$y', 1, '{\"a\": 5}')" >/dev/null
is "$(psql_q "SELECT true, status, started_at IS NULL
	FROM chainexec.universal_transactions WHERE id = '$y'")" "t|pending|t" \
	"a skipped step of an execution waiting for its place leaves it pending, not started"
psql_q "SELECT chainexec.chain_wait('$x', 20000)" >/dev/null
z=$(start "ctl-lim2-$S")
psql_q "SELECT chainexec.chain_wait('$y', 20000)" >/dev/null
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$z'" running 20 >/dev/null
w=$(start "ctl-lim2-$S")
psql_q "SELECT chainexec.chain_cancel('$z')" >/dev/null
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$w'" running 20 >/dev/null
until psql_q "SELECT chainexec.chain_resume('$z')" >/dev/null 2>&1; do sleep 0.1; done
for e in "$w" "$z"; do
	psql_q "SELECT chainexec.chain_wait('$e', 20000)" >/dev/null
done
is "$(psql_q "SELECT string_agg(status, ' ' ORDER BY id) FROM chainexec.universal_transactions WHERE id IN ('$x', '$y', '$z', '$w')")" \
	"completed completed completed completed" "the four executions complete"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines a, chainexec.universal_transaction_lines b
	WHERE a.transaction_id IN ('$x', '$y', '$z', '$w') AND b.transaction_id IN ('$x', '$y', '$z', '$w')
	AND a.transaction_id < b.transaction_id AND a.started_at IS NOT NULL AND b.started_at IS NOT NULL
	AND tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at)")" 0 \
	"no step of one ran while a step of another did: concurrencyLimit 1 held"
v=$(start "ctl-lim2-$S" '{"runAt": "2100-01-01T00:00:00Z"}')
psql_q "SELECT chainexec.chain_skip_step('$v', 1)" >/dev/null
psql_q "SELECT chainexec.chain_retry_step('$v', 2)" >/dev/null
is "$(psql_q "SELECT true, true, status, started_at IS NULL
	FROM chainexec.universal_transactions WHERE id = '$v'")" "t|t|pending|t" \
	"a skip and a retry of steps of an execution not yet due leave it pending, not started"
psql_q "SELECT chainexec.chain_cancel('$v')" >/dev/null

# Parallel lines of one execution taking its place at the same moment: one
# takes it, the other goes again a moment later, in the same place (it
# waited for a place the execution held, woken by nothing; and when it
# waited for the other's take, they could deadlock): parallel first steps,
# and parallel steps of an execution reopened after another took its place.
psql_q "SELECT chainexec.chain_define('{\"id\": \"ctl-par-$S\", \"concurrencyLimit\": 1, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS a FROM pg_sleep(CASE WHEN {slow}::bool THEN 0.3 ELSE 0 END)\", \"outputVariables\": [\"a\"], \"parallelExecution\": true},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 2 AS b FROM pg_sleep(CASE WHEN {slow}::bool THEN 0.3 ELSE 0 END)\", \"outputVariables\": [\"b\"], \"parallelExecution\": true},
	{\"id\": 3, \"name\": \"p\", \"type\": \"sql\", \"sql\": \"SELECT 3 AS p FROM pg_sleep(CASE WHEN {slow}::bool THEN 1 ELSE 0 END)\", \"outputVariables\": [\"p\"], \"dependsOn\": [1, 2]},
	{\"id\": 4, \"name\": \"q\", \"type\": \"sql\", \"sql\": \"SELECT 4 AS q FROM pg_sleep(CASE WHEN {slow}::bool THEN 1 ELSE 0 END)\", \"outputVariables\": [\"q\"], \"dependsOn\": [1, 2]},
	{\"id\": 5, \"name\": \"d\", \"type\": \"sql\", \"sql\": \"SELECT 5 AS d\", \"outputVariables\": [\"d\"], \"dependsOn\": [3, 4]}]}', true)" >/dev/null
par=$(psql_q "SELECT string_agg(chainexec.chain_execute('ctl-par-$S', '{\"slow\": true}')::text, ' ') FROM generate_series(1, 4)")
got=""
for e in $par; do
	got="$got $(psql_q "SELECT chainexec.chain_wait('$e', 30000)->>'status'")"
done
is "$got" " completed completed completed completed" "four executions whose first steps run in parallel complete one after the other"
r=$(psql_q "SELECT chainexec.chain_execute('ctl-par-$S', '{\"slow\": true}')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$r'
	AND step_id IN (1, 2) AND status = 'completed'" 2 20 >/dev/null
sleep 0.3
psql_q "SELECT chainexec.chain_cancel('$r')" >/dev/null
q=$(psql_q "SELECT chainexec.chain_execute('ctl-par-$S', '{\"slow\": false}')")
is "$(psql_q "SELECT chainexec.chain_wait('$q', 20000)->>'status'")" completed "another execution takes the place the cancelled one gave up"
until psql_q "SELECT chainexec.chain_resume('$r')" >/dev/null 2>&1; do sleep 0.1; done
is "$(psql_q "SELECT chainexec.chain_wait('$r', 30000)->>'status'")" completed \
	"reopened, the cancelled one's parallel steps take a place again, and it completes"

done_testing; exit $?
