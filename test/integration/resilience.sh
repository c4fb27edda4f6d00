#!/usr/bin/env bash
# test/integration/resilience.sh: the resilience step keys of SPEC §9
# that need no table of their own.
#
# retryBudget: the retries of all steps of one execution count against one
# budget, also when two parallel steps fail at the same time on two
# executors; without it each step retries its own maxRetries.
# backoffStrategy "random": the gaps between attempts, measured by the
# handler (RAISE LOG of its clock), stay between baseDelayMs and maxDelayMs
# (plus the dispatch latency) and differ.
# verificationQuery: a compensation whose query says "not undone" is rolled
# back and retried, and verified on the next attempt; one that never
# verifies ends failed with compensation_unverified, its effects undone;
# no row, true and 0 verify.
# Compensation context: a SQL rollbackAction reads {chain.failure.step},
# {chain.failure.type} and {chain.failure.message}; a rollback handler gets
# "compensation": {failedStep, failureType, message}.
# onFailure "escalate": the line fails and the execution pauses (event
# step_escalated), nothing compensated; chain_retry_step, chain_resume (once
# more escalated while the handler is still down, then completed),
# chain_skip_step go on; chain_cancel with rollbackEnabled compensates.
# (The cache: resilience_cache.sh and resilience_lru.sh; the circuit
# breaker: resilience_breaker.sh.)
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=600
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
N=rs_$S
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ce-resilience.XXXXXX")
WATCH=$(command -v chainexec_watch || echo "$CE_REPO/tools/chainexec_watch")
WATCHER=

cleanup()
{
	[ -n "$WATCHER" ] && kill "$WATCHER" 2>/dev/null
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'rs-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'rs-%-$S';
		RESET chainexec.internal;
		DROP SCHEMA IF EXISTS $N CASCADE;
	EOF
	rm -rf "$TMP"
}
trap cleanup EXIT

define()
{
	psql_q "SELECT chainexec.chain_define('$1'::jsonb, true)" >/dev/null
}

# run ID [INPUT]: CALL chain_run; print the result's status.
run()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -c "CALL chainexec.chain_run('$1', '${2:-{\}}')" | sed -n 's/.*"status": "\([a-z_]*\)".*/\1/p' | head -n 1
}

start()
{
	psql_q "SELECT chainexec.chain_execute('$1', '${2:-{\}}')"
}

calls()
{
	psql_q "SELECT last_value - 1 + (CASE WHEN is_called THEN 1 ELSE 0 END) FROM $N.seq_$1"
}

exec_status()
{
	psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$1'"
}



plan 38

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"

# The handler: counts its calls in a sequence per scenario (the rendered
# input names it; a failed step's inserts roll back, a sequence does not),
# logs its clock, and fails while the scenario is in "down".
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "setup failed"
CREATE SCHEMA $N;
CREATE TABLE $N.down (what text PRIMARY KEY);
CREATE TABLE $N.items (id int PRIMARY KEY);
CREATE TABLE $N.why (step text, type text, message text);
CREATE TABLE $N.why_handler (compensation jsonb);
CREATE SEQUENCE $N.seq_budget;
CREATE SEQUENCE $N.seq_random;
CREATE SEQUENCE $N.seq_esc;
CREATE SEQUENCE $N.seq_verify;
CREATE SEQUENCE $N.seq_compfail;
CREATE FUNCTION $N.flaky(a jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
DECLARE
	w text := a->>'input';
	n bigint := nextval(format('$N.seq_%s', w));
BEGIN
	RAISE LOG 'rs-$S % call % at %', w, n, extract(epoch FROM clock_timestamp());
	IF EXISTS (SELECT FROM $N.down d WHERE d.what = w) THEN
		PERFORM chainexec.raise_failure('network_timeout', 'down');
	END IF;
	RETURN jsonb_build_object('v', coalesce((a->'variables'->>'k')::int, 0) * 10, 'n', n);
END
\$\$;
CREATE FUNCTION $N.undo(a jsonb) RETURNS jsonb LANGUAGE sql AS \$\$
	INSERT INTO $N.why_handler VALUES (a->'compensation') RETURNING '{}'::jsonb
\$\$;
SELECT chainexec.chain_register_handler('rs_flaky_$S', '$N.flaky(jsonb)'::regprocedure);
SELECT chainexec.chain_register_handler('rs_undo_$S', '$N.undo(jsonb)'::regprocedure);
EOF

# ---------------------------------------------------------------------------
# retryBudget
BUDGET_STEPS="[
	{\"id\": 1, \"name\": \"a\", \"type\": \"function\", \"instructionSet\": \"rs_flaky_$S\", \"inputTemplate\": \"budget\",
	 \"onFailure\": \"warn\", \"retryConfig\": {\"maxRetries\": 5, \"backoffStrategy\": \"fixed\", \"baseDelayMs\": 20}},
	{\"id\": 2, \"name\": \"b\", \"type\": \"function\", \"instructionSet\": \"rs_flaky_$S\", \"inputTemplate\": \"budget\",
	 \"parallelExecution\": true, \"onFailure\": \"warn\", \"retryConfig\": {\"maxRetries\": 5, \"backoffStrategy\": \"fixed\", \"baseDelayMs\": 20}}]"
define "{\"id\": \"rs-budget-$S\", \"retryBudget\": {\"maxRetries\": 3}, \"steps\": $BUDGET_STEPS}" &&
define "{\"id\": \"rs-nobudget-$S\", \"steps\": $BUDGET_STEPS}" || bail_out "could not define the budget chains"
psql_q "INSERT INTO $N.down VALUES ('budget')" >/dev/null

is "$(run "rs-budget-$S")" "completed" "retryBudget: two failing steps under onFailure warn complete the execution"
is "$(calls budget)" "5" "retryBudget 3: two steps of maxRetries 5 make 2 + 3 calls in all"
is "$(psql_q "SELECT sum(attempt - 1) FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t ON t.id = l.transaction_id WHERE t.chain_id = 'rs-budget-$S'")" "3" \
	"retryBudget 3: the lines' attempts add up to 3 retries"
psql_q "ALTER SEQUENCE $N.seq_budget RESTART" >/dev/null
is "$(run "rs-nobudget-$S")" "completed" "without retryBudget the same chain completes"
is "$(calls budget)" "12" "without retryBudget each step retries 5 times (12 calls)"
psql_q "ALTER SEQUENCE $N.seq_budget RESTART" >/dev/null
id=$(start "rs-budget-$S")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 60000)->>'status'")" "completed" "retryBudget on the executors: the execution completes"
is "$(calls budget)" "5" "retryBudget is shared by two parallel steps on two executors: 5 calls"

# ---------------------------------------------------------------------------
# backoffStrategy random
define "{\"id\": \"rs-random-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"r\", \"type\": \"function\", \"instructionSet\": \"rs_flaky_$S\", \"inputTemplate\": \"random\",
	 \"onFailure\": \"warn\", \"retryConfig\": {\"maxRetries\": 4, \"backoffStrategy\": \"random\", \"baseDelayMs\": 300, \"maxDelayMs\": 700}}]}" ||
	bail_out "could not define the random chain"
psql_q "INSERT INTO $N.down VALUES ('random')" >/dev/null
off=$(log_offset)
is "$(run "rs-random-$S")" "completed" "random back-off: the execution runs its 5 attempts"
wait_for_log "rs-$S random call 5 at" "$off" 10 >/dev/null
gaps=$(tail -c +"$((off + 1))" "$CE_CLUSTER_LOG" | sed -n "s/.*rs-$S random call [0-9]* at \([0-9.]*\).*/\1/p" |
	awk 'NR > 1 { printf "%d\n", ($1 - prev) * 1000 } { prev = $1 }')
ngaps=$(echo "$gaps" | grep -c .)
bad=$(echo "$gaps" | awk '$1 < 295 || $1 > 1500' | tr '\n' ' ')
is "$ngaps" "4" "random back-off: 4 gaps between 5 attempts ($(echo $gaps))"
is "$bad" "" "random back-off: every gap is between baseDelayMs 300 and maxDelayMs 700 (plus dispatch)"
isnt "$(echo "$gaps" | sort -u | wc -l)" "1" "random back-off: the gaps differ"
define "{\"id\": \"rs-random-bad-$S\", \"steps\": [{\"id\": 1, \"name\": \"r\", \"type\": \"sql\", \"sql\": \"SELECT 1\",
	\"retryConfig\": {\"maxRetries\": 1, \"backoffStrategy\": \"random\", \"baseDelayMs\": 900, \"maxDelayMs\": 100}}]}" 2>"$TMP/err"
like "$(cat "$TMP/err")" 'maxDelayMs' "random back-off: maxDelayMs below baseDelayMs is refused"

# ---------------------------------------------------------------------------
# verificationQuery and the compensation context
VERIFY="SELECT CASE WHEN nextval(''$N.seq_verify'') < 2 THEN 1 ELSE count(*) END FROM $N.items WHERE id = {item_id}"
UNDO_SQL="WITH d AS (DELETE FROM $N.items WHERE id = {item_id}) INSERT INTO $N.why VALUES ({chain.failure.step}, {chain.failure.type}, {chain.failure.message})"
define "{\"id\": \"rs-verify-$S\", \"rollbackEnabled\": true, \"steps\": [
	{\"id\": 1, \"name\": \"add\", \"type\": \"sql\", \"sql\": \"INSERT INTO $N.items VALUES ({id}::int) RETURNING id AS item_id\",
	 \"rollbackAction\": \"$UNDO_SQL\", \"verificationQuery\": \"$VERIFY\",
	 \"retryConfig\": {\"maxRetries\": 2, \"backoffStrategy\": \"fixed\", \"baseDelayMs\": 20}},
	{\"id\": 2, \"name\": \"boom\", \"type\": \"sql\", \"sql\": \"SELECT 1 / 0\"}]}" &&
define "{\"id\": \"rs-never-$S\", \"rollbackEnabled\": true, \"steps\": [
	{\"id\": 1, \"name\": \"add\", \"type\": \"sql\", \"sql\": \"INSERT INTO $N.items VALUES ({id}::int) RETURNING id AS item_id\",
	 \"rollbackAction\": \"DELETE FROM $N.items WHERE id = {item_id}\", \"verificationQuery\": \"SELECT false\",
	 \"retryConfig\": {\"maxRetries\": 1, \"backoffStrategy\": \"fixed\", \"baseDelayMs\": 20}},
	{\"id\": 2, \"name\": \"boom\", \"type\": \"sql\", \"sql\": \"SELECT 1 / 0\"}]}" &&
define "{\"id\": \"rs-verified-$S\", \"rollbackEnabled\": true, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS a\", \"rollbackAction\": \"SELECT 1\", \"verificationQuery\": \"SELECT 1 WHERE false\"},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS b\", \"rollbackAction\": \"SELECT 1\", \"verificationQuery\": \"SELECT true, 5\"},
	{\"id\": 3, \"name\": \"c\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS c\", \"rollbackAction\": \"SELECT 1\", \"verificationQuery\": \"SELECT 0::bigint\"},
	{\"id\": 4, \"name\": \"boom\", \"type\": \"sql\", \"sql\": \"SELECT 1 / 0\"}]}" &&
define "{\"id\": \"rs-comph-$S\", \"rollbackEnabled\": true, \"steps\": [
	{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS one\", \"rollbackAction\": \"rs_undo_$S\"},
	{\"id\": 2, \"name\": \"two\", \"type\": \"function\", \"instructionSet\": \"rs_flaky_$S\", \"inputTemplate\": \"compfail\"}]}" ||
	bail_out "could not define the verification chains"

is "$(run "rs-verify-$S" '{"id": 7}')" "compensated" "verificationQuery: a compensation verified on its second attempt ends compensated"
is "$(psql_q "SELECT l.attempt || ':' || l.status FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t ON t.id = l.transaction_id WHERE t.chain_id = 'rs-verify-$S' AND l.line_type = 'compensation'")" \
	"2:completed" "verificationQuery: the compensation line took 2 attempts"
is "$(psql_q "SELECT l.error->>'failure_type' FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t ON t.id = l.transaction_id WHERE t.chain_id = 'rs-verify-$S' AND l.line_type = 'compensation'")" \
	"" "verificationQuery: the verified compensation line keeps no error"
is "$(psql_q "SELECT count(*) FROM $N.items WHERE id = 7")" "0" "verificationQuery: the item is gone"
is "$(psql_q "SELECT step || '|' || type || '|' || message FROM $N.why")" "boom|invalid_input|division by zero" \
	"compensation context: the SQL rollbackAction read chain.failure.step/type/message, once (the unverified attempt rolled back)"
is "$(run "rs-never-$S" '{"id": 8}')" "failed" "verificationQuery: a compensation that never verifies fails the execution"
is "$(psql_q "SELECT l.attempt || ':' || l.status || ':' || (l.error->>'failure_type') FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t ON t.id = l.transaction_id WHERE t.chain_id = 'rs-never-$S' AND l.line_type = 'compensation'")" \
	"2:failed:compensation_unverified" "verificationQuery: retried like a compensation, then failed with compensation_unverified"
is "$(psql_q "SELECT count(*) FROM $N.items WHERE id = 8")" "1" "verificationQuery: the unverified compensation's effects were rolled back"
is "$(run "rs-verified-$S")" "compensated" "verificationQuery: no row, true in the first column and 0 each verify"
psql_q "INSERT INTO $N.down VALUES ('compfail')" >/dev/null
is "$(run "rs-comph-$S")" "compensated" "compensation context: the rollback handler ran"
is "$(psql_q "SELECT compensation FROM $N.why_handler")" '{"message": "down", "failedStep": "two", "failureType": "network_timeout"}' \
	"compensation context: the handler received compensation {failedStep, failureType, message}"

# ---------------------------------------------------------------------------
# onFailure escalate (on the executors), with a watcher for the events
"$WATCH" --raw -v -t 500 >"$TMP/events" 2>"$TMP/watch.err" &
WATCHER=$!
deadline=$((SECONDS + 20))
until grep -qs 'listening on' "$TMP/watch.err" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done

define "{\"id\": \"rs-esc-$S\", \"rollbackEnabled\": true, \"steps\": [
	{\"id\": 1, \"name\": \"add\", \"type\": \"sql\", \"sql\": \"INSERT INTO $N.items VALUES ({id}::int) RETURNING id AS item_id\",
	 \"rollbackAction\": \"DELETE FROM $N.items WHERE id = {item_id}\"},
	{\"id\": 2, \"name\": \"call\", \"type\": \"function\", \"instructionSet\": \"rs_flaky_$S\", \"inputTemplate\": \"esc\", \"onFailure\": \"escalate\"},
	{\"id\": 3, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT 3 AS three\"}]}" || bail_out "could not define the escalation chain"
psql_q "INSERT INTO $N.down VALUES ('esc')" >/dev/null

# wait_paused ID: the execution is paused with step 2 failed
wait_paused()
{
	poll_query_until "SELECT t.status = 'paused' AND l.status = 'failed' FROM chainexec.universal_transactions t
		JOIN chainexec.universal_transaction_lines l ON l.transaction_id = t.id AND l.step_id = 2 WHERE t.id = '$1'" t 30 >/dev/null
}

e1=$(start "rs-esc-$S" '{"id": 101}')
check "escalate: the execution pauses with the step failed" wait_paused "$e1"
is "$(psql_q "SELECT string_agg(step_id || ':' || status, ',' ORDER BY line_number) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$e1'")" \
	"1:completed,2:failed,3:pending" "escalate: the step after it waits; nothing is compensated"
sleep 0.5
is "$(exec_status "$e1")|$(psql_q "SELECT count(*) FROM $N.items WHERE id = 101")" "paused|1" "escalate: still paused a moment later, the first step's row still there"
psql_q "DELETE FROM $N.down WHERE what = 'esc'" >/dev/null
psql_q "SELECT chainexec.chain_retry_step('$e1', 2)" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$e1', 30000)->>'status'")" "completed" "escalate then chain_retry_step: the execution completes"
is "$(psql_q "SELECT string_agg(status, ',' ORDER BY line_number) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$e1'")" \
	"completed,completed,completed" "escalate then chain_retry_step: every step completed"

psql_q "INSERT INTO $N.down VALUES ('esc')" >/dev/null
e2=$(start "rs-esc-$S" '{"id": 102}')
check "escalate (2): paused" wait_paused "$e2"
n0=$(calls esc)
psql_q "SELECT chainexec.chain_resume('$e2')" >/dev/null
poll_query_until "SELECT last_value > $n0 FROM $N.seq_esc" t 30 >/dev/null
check "chain_resume retries the failed step: still down, it escalates again" wait_paused "$e2"
psql_q "DELETE FROM $N.down WHERE what = 'esc'" >/dev/null
psql_q "SELECT chainexec.chain_resume('$e2')" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$e2', 30000)->>'status'")" "completed" "escalate then chain_resume: completes once the handler is back"

psql_q "INSERT INTO $N.down VALUES ('esc')" >/dev/null
e3=$(start "rs-esc-$S" '{"id": 103}')
check "escalate (3): paused" wait_paused "$e3"
psql_q "SELECT chainexec.chain_skip_step('$e3', 2)" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$e3', 30000)->>'status'")" "completed" "escalate then chain_skip_step: completes"
is "$(psql_q "SELECT string_agg(status, ',' ORDER BY line_number) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$e3'")" \
	"completed,skipped,completed" "escalate then chain_skip_step: the step skipped, the next one ran"

e4=$(start "rs-esc-$S" '{"id": 104}')
check "escalate (4): paused" wait_paused "$e4"
psql_q "SELECT chainexec.chain_cancel('$e4')" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$e4', 30000)->>'status'")" "compensated" "escalate then chain_cancel with rollbackEnabled: compensated"
is "$(psql_q "SELECT count(*) FROM $N.items WHERE id = 104")" "0" "escalate then chain_cancel: the first step's row is removed"
sleep 1
kill "$WATCHER" 2>/dev/null
WATCHER=
is "$(grep -c "\"event\": *\"step_escalated\".*\"executionId\": *\"$e1\"" "$TMP/events")" "1" "event step_escalated for the first execution"

done_testing
