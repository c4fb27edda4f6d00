#!/usr/bin/env bash
# test/fault/watchdog.sh: no role may stall the executors (issue 9).  A
# LOGIN-only role's handler that swallows every cancel (a PL/pgSQL loop
# catching query_canceled around pg_sleep) would keep its executor past its
# step's timeoutMs and past chain_cancel.  The launcher's watchdog
# terminates an executor whose step still runs chainexec.step_grace_period
# after its timeout or after a cancel was sent to it:
#  - with timeoutMs 500: the executor ends within timeout + grace + a
#    margin, each attempt counts as worker_crashed, and after
#    chainexec.max_crash_attempts (3) the line and the execution fail; an
#    unrelated execution started meanwhile completes;
#  - without a timeout: the step is left alone (longer than the grace), and
#    chain_cancel ends it within the grace + a margin; the execution stays
#    cancelled and the step does not run again; an unrelated execution
#    completes;
#  - an executor ended so exits with FATAL, never "terminated by signal".
#
# chainexec-test: slow timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
ATT=wd_att_$S
SCH=wd_$S
TO_CHAIN=wd-timeout-$S
CANCEL_CHAIN=wd-cancel-$S
OK_CHAIN=wd-ok-$S
GRACE=1000
LOG_START=$(log_offset)

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		ALTER SYSTEM RESET chainexec.step_grace_period;
		SELECT pg_reload_conf();
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'wd-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'wd-%-$S';
		DELETE FROM chainexec.handlers WHERE registered_by::text = '$ATT';
		DROP SCHEMA IF EXISTS $SCH CASCADE;
		DROP OWNED BY $ATT CASCADE;
		DROP ROLE IF EXISTS $ATT;
	EOF
}
trap cleanup EXIT

# as ROLE [psql args]: psql as a LOGIN role, tuples only, stop on error.
as()
{
	local role=$1
	shift
	psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$role" "$@"
}

# now_ms: the time in milliseconds
now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

# wait_step_running CHAIN: print the pid of the executor sleeping in the
# step of CHAIN, once there is one.
wait_step_running()
{
	local deadline=$((SECONDS + 60)) pid
	while [ "$SECONDS" -lt "$deadline" ]; do
		pid=$(psql_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
			AND query LIKE '%$1/%' AND state = 'active' AND wait_event = 'PgSleep' LIMIT 1" 2>/dev/null)
		[ -n "$pid" ] && { echo "$pid"; return 0; }
		sleep 0.05
	done
	return 1
}

# wait_gone PID SECONDS: wait until process PID has left; print how many
# milliseconds that took.
wait_gone()
{
	local start deadline
	start=$(now_ms)
	deadline=$((SECONDS + $2))
	while [ "$SECONDS" -lt "$deadline" ]; do
		[ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE pid = $1")" = 0 ] &&
			{ echo $(($(now_ms) - start)); return 0; }
		sleep 0.05
	done
	echo never
	return 1
}

# line EXECUTION: status|attempt|failure_type|started and finished set
line()
{
	psql_q "SELECT status, attempt, error->>'failure_type', started_at IS NOT NULL AND finished_at IS NOT NULL
		FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND line_number = 1"
}

plan 18

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
is "$(psql_q 'SHOW chainexec.step_grace_period')" 5s "chainexec.step_grace_period is 5 s by default"
psql_q "ALTER SYSTEM SET chainexec.step_grace_period = $GRACE" >/dev/null &&
	psql_q "SELECT pg_reload_conf()" >/dev/null || bail_out "could not set chainexec.step_grace_period"
poll_query_until "SHOW chainexec.step_grace_period" 1s 30 >/dev/null || bail_out "the setting was not reloaded"
sleep 0.5
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "could not set up the role"
CREATE ROLE $ATT LOGIN;
CREATE SCHEMA $SCH AUTHORIZATION $ATT;
EOF
is "$(psql_q "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR pg_has_role('$ATT', 'pg_signal_backend', 'USAGE')
	FROM pg_roles WHERE rolname = '$ATT'")" f "the role is LOGIN only"

as "$ATT" >/dev/null <<EOF || bail_out "could not set up the role's handler and chains"
CREATE FUNCTION $SCH.swallow(a jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
BEGIN
	LOOP
		BEGIN
			PERFORM pg_sleep(1);
		EXCEPTION WHEN query_canceled THEN
			NULL;
		END;
	END LOOP;
END
\$\$;
SELECT chainexec.chain_register_handler('wd_swallow_$S', '$SCH.swallow(jsonb)');
SELECT chainexec.chain_define('{"id": "$TO_CHAIN", "steps": [{"id": 1, "name": "swallow", "type": "function",
	"instructionSet": "wd_swallow_$S", "timeoutMs": 500, "retryConfig": {"maxRetries": 0}},
	{"id": 2, "name": "after", "type": "sql", "sql": "SELECT 1 AS one"}]}', true);
SELECT chainexec.chain_define('{"id": "$CANCEL_CHAIN", "steps": [{"id": 1, "name": "swallow", "type": "function",
	"instructionSet": "wd_swallow_$S", "retryConfig": {"maxRetries": 0}}]}', true);
SELECT chainexec.chain_define('{"id": "$OK_CHAIN", "steps": [{"id": 1, "name": "ok", "type": "sql", "sql": "SELECT 1 AS one"}]}', true);
EOF

# ---- 1. a step that swallows its timeout
e=$(as "$ATT" -c "SELECT chainexec.chain_execute('$TO_CHAIN')")
pid=$(wait_step_running "$TO_CHAIN") || bail_out "the step never ran"
other=$(as "$ATT" -c "SELECT chainexec.chain_execute('$OK_CHAIN')")
took=$(wait_gone "$pid" 30)
like "$took" '^[0-9]+$' "the executor running the step past its timeout was terminated"
check "within timeout + grace + a margin (took $took ms)" [ "$took" -le $((500 + GRACE + 2500)) ]
is "$(psql_q "SELECT chainexec.chain_wait('$other', 30000)->>'status'")" completed \
	"an unrelated execution started meanwhile completes"
is "$(psql_q "SELECT chainexec.chain_wait('$e', 120000)->>'status'")" failed \
	"the execution whose step swallows its timeout fails"
is "$(line "$e")" "failed|3|worker_crashed|t" \
	"its line: failed at attempt 3 with worker_crashed, started_at and finished_at set"
is "$(psql_q "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$e' AND line_number = 2")" \
	cancelled "the step after it never ran"
is "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor' AND query LIKE '%$TO_CHAIN/%' AND state = 'active'")" \
	0 "no executor runs the step any more"

# ---- 2. a step without a timeout, then chain_cancel
c=$(as "$ATT" -c "SELECT chainexec.chain_execute('$CANCEL_CHAIN')")
pid=$(wait_step_running "$CANCEL_CHAIN") || bail_out "the step never ran"
sleep $((GRACE * 3 / 1000))
is "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid")" 1 \
	"a step without a timeout runs on past the grace: it is not ended"
other=$(as "$ATT" -c "SELECT chainexec.chain_execute('$OK_CHAIN')")
is "$(as "$ATT" -c "SELECT chainexec.chain_cancel('$c')")" t "its owner cancels it"
took=$(wait_gone "$pid" 30)
like "$took" '^[0-9]+$' "the executor running the step that swallowed the cancel was terminated"
check "within the grace + a margin (took $took ms)" [ "$took" -le $((GRACE + 2500)) ]
is "$(psql_q "SELECT chainexec.chain_wait('$other', 30000)->>'status'")" completed \
	"an unrelated execution started meanwhile completes"
is "$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$c'")" cancelled \
	"the execution stays cancelled"
sleep 2
is "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor' AND query LIKE '%$CANCEL_CHAIN/%' AND state = 'active'")" \
	0 "no executor runs the cancelled step again"

# ---- 3. the server log
like "$(tail -c +"$((LOG_START + 1))" "$CE_CLUSTER_LOG" | grep -c 'terminating chainexec executor with PID .*: its step overstayed its')" \
	'^([4-9]|[1-9][0-9]+)$' "each termination was logged"
is "$(tail -c +"$((LOG_START + 1))" "$CE_CLUSTER_LOG" | grep -c 'terminated by signal')" 0 \
	"no process was terminated by a signal (the executors exit with FATAL)"
