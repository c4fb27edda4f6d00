#!/usr/bin/env bash
# test/integration/interrupted.sh: an attempt interrupted by chain_cancel or
# by the execution's deadline is recorded on its line (issue 10): the line
# is cancelled with its attempt number, started_at, finished_at and the
# error that interrupted it (before, it kept attempt 0 and no times).
#
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
SLOW=it-slow-$S
LATE=it-late-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF2
		DELETE FROM chainexec.universal_transactions WHERE chain_id IN ('$SLOW', '$LATE');
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id IN ('$SLOW', '$LATE');
	EOF2
}
trap cleanup EXIT

# line ID: status|attempt|times set|sqlstate of line 1
line()
{
	psql_q "SELECT status, attempt, started_at IS NOT NULL AND finished_at IS NOT NULL AND finished_at >= started_at,
		error->>'sqlstate' FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND line_number = 1"
}

plan 4

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$SLOW\", \"steps\": [{\"id\": 1, \"name\": \"slow\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(30)\"}]}', true)" >/dev/null &&
psql_q "SELECT chainexec.chain_define('{\"id\": \"$LATE\", \"maxExecutionTime\": 1500, \"steps\": [{\"id\": 1, \"name\": \"slow\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(30)\"}]}', true)" >/dev/null ||
	bail_out "could not define the chains"

id=$(psql_q "SELECT chainexec.chain_execute('$SLOW')")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor' AND query LIKE '%$SLOW/%' AND wait_event = 'PgSleep'" 1 30 >/dev/null
psql_q "SELECT chainexec.chain_cancel('$id', 'test')" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$id', 10000)->>'status'")" cancelled "the execution is cancelled"
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_number = 1" cancelled 10 >/dev/null
is "$(line "$id")" "cancelled|1|t|57014" "the cancelled attempt is recorded: attempt 1, started_at and finished_at, 57014"

id=$(psql_q "SELECT chainexec.chain_execute('$LATE')")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 20000)->>'status'")" timeout "the execution past its maxExecutionTime times out"
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_number = 1" cancelled 10 >/dev/null
is "$(line "$id")" "cancelled|1|t|57014" "the attempt its deadline cut short is recorded: attempt 1, times, 57014"
