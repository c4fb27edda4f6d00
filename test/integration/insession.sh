#!/usr/bin/env bash
# test/integration/insession.sh: every step of an execution driven by CALL
# chain_run runs in the calling session (SPEC §9, "in-session runs stay in
# the session"), and the workers take it over when the session stops
# driving it.
#
# The issue's case: a temporary table made by the caller, and two parallel
# steps that each insert into it and sleep 1.5 s; an executor used to claim
# one of them and fail it with 42P01 (the executor has no such table).
# Then: a session that drives an execution dies mid-step (terminated); the
# workers finish the execution.  And chain_run that returns while an
# external step waits hands the execution over: completing the step from
# another session lets the workers run the rest.
#
# chainexec-test: timeout=180
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
PAR=is-par-$S
DIE=is-die-$S
EXT=is-ext-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF2
		DELETE FROM chainexec.universal_transactions WHERE chain_id IN ('$PAR', '$DIE', '$EXT');
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id IN ('$PAR', '$DIE', '$EXT');
	EOF2
}
trap cleanup EXIT

plan 9

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$PAR\", \"steps\": [
	{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"INSERT INTO session_log SELECT ''one'' FROM pg_sleep(1.5)\"},
	{\"id\": 2, \"name\": \"two\", \"type\": \"sql\", \"parallelExecution\": true, \"sql\": \"INSERT INTO session_log SELECT ''two'' FROM pg_sleep(1.5)\"},
	{\"id\": 3, \"name\": \"setting\", \"type\": \"sql\", \"dependsOn\": [1, 2], \"sql\": \"SELECT current_setting(''is_test.marker'', true) AS marker\"}]}', true)" >/dev/null &&
psql_q "SELECT chainexec.chain_define('{\"id\": \"$DIE\", \"steps\": [
	{\"id\": 1, \"name\": \"slow_here\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(CASE WHEN current_setting(''application_name'') = ''is-driver-$S'' THEN 60 ELSE 0 END)\"},
	{\"id\": 2, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT 2 AS two\"}]}', true)" >/dev/null &&
psql_q "SELECT chainexec.chain_define('{\"id\": \"$EXT\", \"steps\": [
	{\"id\": 1, \"name\": \"ask\", \"type\": \"external\"},
	{\"id\": 2, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT 3 AS three\"}]}', true)" >/dev/null ||
	bail_out "could not define the chains"

# ---- the issue's case: the session's temp table and settings
got=$(psql -X -A -t -q -v ON_ERROR_STOP=1 2>&1 <<EOF2
CREATE TEMP TABLE session_log (step text);
SET is_test.marker = 'from the session';
CALL chainexec.chain_run('$PAR', '{}');
SELECT string_agg(step, ',' ORDER BY step) FROM session_log;
EOF2
)
res=$(echo "$got" | head -1)
like "$res" '"status": "completed"' "chain_run with two parallel steps writing the caller's temp table completes"
is "$(echo "$got" | tail -1)" "one,two" "both parallel steps ran in the calling session"
like "$res" '"marker": "from the session"' "a step sees the calling session's settings"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$PAR' AND in_session")" 0 \
	"the execution is no longer marked as driven once chain_run returned"

# ---- the driving session dies mid-step: the workers take the execution over
PGAPPNAME=is-driver-$S psql -X -q -c "CALL chainexec.chain_run('$DIE', '{}')" >/dev/null 2>&1 &
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'is-driver-$S' AND wait_event = 'PgSleep'" 1 30 >/dev/null
id=$(psql_q "SELECT id FROM chainexec.universal_transactions WHERE chain_id = '$DIE'")
is "$(psql_q "SELECT in_session FROM chainexec.universal_transactions WHERE id = '$id'")" t \
	"while the session drives it, the execution is marked"
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'is-driver-$S'" >/dev/null
wait
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" completed \
	"once the driving session died, the executors finished the execution"
is "$(psql_q "SELECT string_agg(status || ':' || attempt, ',' ORDER BY line_number) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id'")" \
	"completed:1,completed:1" "each step ran once to completion (the driver's attempt rolled back with it)"

# ---- chain_run returns while an external step waits: the workers go on
got=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -c "CALL chainexec.chain_run('$EXT', '{}')" 2>&1)
id=$(psql_q "SELECT id FROM chainexec.universal_transactions WHERE chain_id = '$EXT'")
like "$got" '"status": "waiting"' "chain_run returns while the external step waits"
psql_q "SELECT chainexec.chain_step_complete('$id', 1, '{}')" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" completed \
	"completing the external step from another session lets the workers run the rest"
