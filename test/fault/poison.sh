#!/usr/bin/env bash
# test/fault/poison.sh: a step whose attempts end their executor (SPEC §9,
# poison steps) fails after chainexec.max_crash_attempts (3) attempts with
# failure type worker_crashed, the count surviving the server's
# crash-restart, while other executions are served.
#
# Three ways to die, each three times:
#  - the step terminates its own executor (SELECT pg_terminate_backend(
#    pg_backend_pid()), a FATAL: the launcher starts a new executor; the
#    server does not restart), in a superuser-owned execution; an unrelated
#    execution started after it completes meanwhile; the step runs exactly
#    3 times although the other executor may claim the line before the
#    dead one's replacement starts; again with the line locked by another
#    transaction (queued on the row lock behind the dying attempt) while
#    the replacement starts, so that the replacement's record finds the
#    line locked: the death still counts once;
#  - the executor is killed with SIGKILL mid-step (the postmaster then
#    restarts every process, as after an OOM kill or a crashing function);
#  - the server stops with "pg_ctl stop -m immediate" mid-step and starts
#    again (crash recovery).
# Each time the line ends failed at attempt 3 with worker_crashed, its
# started_at and finished_at set, and the execution failed; a batch of
# ordinary executions running through the crashes completes with every
# step's effect exactly once.
#
# chainexec-test: slow timeout=420
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
TERM_CHAIN=po-term-$S
LOCK_CHAIN=po-lock-$S
RUNS2=public.po_runs2_$S
SLEEP_CHAIN=po-sleep-$S
OK_CHAIN=po-ok-$S
EFFECTS=public.po_effects_$S
RUNS=public.po_runs_$S

cleanup()
{
	wait_ready 60 >/dev/null 2>&1 || cluster_ctl start >/dev/null 2>&1
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id IN ('$TERM_CHAIN', '$LOCK_CHAIN', '$SLEEP_CHAIN', '$OK_CHAIN');
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id IN ('$TERM_CHAIN', '$LOCK_CHAIN', '$SLEEP_CHAIN', '$OK_CHAIN');
		DROP TABLE IF EXISTS $EFFECTS;
		DROP SEQUENCE IF EXISTS $RUNS, $RUNS2;
	EOF
}
trap cleanup EXIT

# executor_running_step CHAIN: pid of an executor inside the step of CHAIN
# (sleeping in it, not merely claiming its line).
executor_running_step()
{
	psql_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
		AND query LIKE '%$1/%' AND state = 'active' AND wait_event = 'PgSleep' LIMIT 1" 2>/dev/null
}

# wait_step_running CHAIN: wait until an executor runs a step of CHAIN.
wait_step_running()
{
	local deadline=$((SECONDS + 60)) pid
	while [ "$SECONDS" -lt "$deadline" ]; do
		pid=$(executor_running_step "$1")
		[ -n "$pid" ] && { echo "$pid"; return 0; }
		sleep 0.1
	done
	return 1
}

# line EXECUTION: status|attempt|failure_type|started and finished set
line()
{
	psql_q "SELECT status, attempt, error->>'failure_type', started_at IS NOT NULL AND finished_at IS NOT NULL
		FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND line_number = 1"
}

# start_batch N: N ordinary executions (two steps, each recording its effect).
start_batch()
{
	psql_q "SELECT count(chainexec.chain_execute('$OK_CHAIN')) FROM generate_series(1, $1)" >/dev/null
}

# check_batch WHAT: every ordinary execution completed, each effect once.
check_batch()
{
	local n
	n=$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$OK_CHAIN'")
	poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$OK_CHAIN' AND status = 'completed'" \
		"$n" 120 >/dev/null
	is "$(psql_q "SELECT count(*) || '/' || count(DISTINCT (execution_id, step)) FROM $EFFECTS")" "$((2 * n))/$((2 * n))" \
		"$1: all $n ordinary executions completed, every step's effect exactly once"
}

plan 21

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
is "$(psql_q 'SHOW restart_after_crash')" on "restart_after_crash is on"
is "$(psql_q 'SHOW chainexec.max_crash_attempts')" 3 "chainexec.max_crash_attempts is 3 by default"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"

psql_q "CREATE TABLE $EFFECTS (execution_id uuid, step int, PRIMARY KEY (execution_id, step));
	CREATE SEQUENCE $RUNS; CREATE SEQUENCE $RUNS2" >/dev/null ||
	bail_out "could not create the effects table"
okstep()
{
	echo "{\"id\": $1, \"name\": \"s$1\", \"type\": \"sql\",
		\"sql\": \"INSERT INTO $EFFECTS SELECT {chain.execution_id}::uuid, $1 FROM pg_sleep(0.02)\"}"
}
psql_q "SELECT chainexec.chain_define('{\"id\": \"$OK_CHAIN\", \"steps\": [$(okstep 1), $(okstep 2)]}', true)" >/dev/null &&
psql_q "SELECT chainexec.chain_define('{\"id\": \"$TERM_CHAIN\", \"steps\": [{\"id\": 1, \"name\": \"poison\", \"type\": \"sql\",
	\"sql\": \"SELECT nextval(''$RUNS''), pg_terminate_backend(pg_backend_pid())\"}, {\"id\": 2, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS one\"}]}', true)" >/dev/null &&
psql_q "SELECT chainexec.chain_define('{\"id\": \"$LOCK_CHAIN\", \"steps\": [{\"id\": 1, \"name\": \"poison\", \"type\": \"sql\",
	\"sql\": \"SELECT nextval(''$RUNS2''), pg_sleep(1), pg_terminate_backend(pg_backend_pid())\"}]}', true)" >/dev/null &&
psql_q "SELECT chainexec.chain_define('{\"id\": \"$SLEEP_CHAIN\", \"steps\": [{\"id\": 1, \"name\": \"sleeper\", \"type\": \"sql\",
	\"sql\": \"SELECT pg_sleep(600)\"}]}', true)" >/dev/null ||
	bail_out "could not define the chains"

# ---- 1. the step terminates its own executor
poison=$(psql_q "SELECT chainexec.chain_execute('$TERM_CHAIN')")
sleep 0.3
other=$(psql_q "SELECT chainexec.chain_execute('$OK_CHAIN')")
is "$(psql_q "SELECT chainexec.chain_wait('$other', 30000)->>'status'")" completed \
	"an execution started after the poison one completes meanwhile"
got=$(psql_q "SELECT chainexec.chain_wait('$poison', 60000)->>'status'")
is "$got" failed "the execution whose step terminates its executor fails"
is "$(line "$poison")" "failed|3|worker_crashed|t" \
	"its line: failed at attempt 3 with worker_crashed, started_at and finished_at set"
# nextval is not rolled back: the sequence counts the step's runs.  The
# line is free again as soon as an executor has died, before its
# replacement starts: the other executor claims it and counts the death
# first (inflight.c), so each death counts once.
is "$(psql_q "SELECT last_value FROM $RUNS")" 3 "the step ran exactly 3 times (each death counted once, by whoever claimed the line next)"
is "$(psql_q "SELECT error->>'failure_type' || ':' || (error->>'sqlstate') FROM chainexec.universal_transactions WHERE id = '$poison'")" \
	"worker_crashed:57P02" "the execution's error says worker_crashed"
is "$(psql_q "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$poison' AND line_number = 2")" \
	cancelled "the step after it never ran"

# ---- 1b. the same, the line locked by another transaction as the
# replacement executor starts: a session queued on the line's row lock
# behind the dying attempt gets it when the attempt's transaction ends,
# and holds it for 4 s, while the launcher starts the replacement, whose
# record of the death finds the line locked.  No transition claimed the
# line, so none takes the orphaned attempt: the replacement must record
# it once the line is free, not forget it.
poison=$(psql_q "SELECT chainexec.chain_execute('$LOCK_CHAIN')")
locks=0
for i in 1 2 3; do
	wait_step_running "$LOCK_CHAIN" >/dev/null || break
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-EOF &
		BEGIN;
		SELECT 1 FROM chainexec.universal_transaction_lines
		 WHERE transaction_id = '$poison' AND line_number = 1 FOR UPDATE;
		SELECT pg_sleep(4);
		COMMIT;
	EOF
	locker=$!
	wait "$locker" && locks=$((locks + 1))
done
is "$locks" 3 "a session held the line's lock as each attempt's executor died"
is "$(psql_q "SELECT chainexec.chain_wait('$poison', 60000)->>'status'")" failed \
	"the execution whose line was locked as its executor died fails"
is "$(line "$poison")" "failed|3|worker_crashed|t" \
	"its line: failed at attempt 3 with worker_crashed, started_at and finished_at set"
is "$(psql_q "SELECT last_value FROM $RUNS2")" 3 "the step ran exactly 3 times (no death forgotten while the line was locked)"

# ---- 2. SIGKILL of the executor mid-step, three times
start_batch 20
victim=$(psql_q "SELECT chainexec.chain_execute('$SLEEP_CHAIN')")
kills=0
for i in 1 2 3; do
	pid=$(wait_step_running "$SLEEP_CHAIN") || break
	kill -9 "$pid" && kills=$((kills + 1))
	sleep 1
	wait_ready 60 >/dev/null || break
done
is "$kills" 3 "the executor running the step was killed three times (crash-restarts)"
is "$(psql_q "SELECT chainexec.chain_wait('$victim', 60000)->>'status'")" failed "the killed execution fails"
is "$(line "$victim")" "failed|3|worker_crashed|t" "its line: failed at attempt 3 with worker_crashed, times set"
check_batch "SIGKILL"

# ---- 3. pg_ctl stop -m immediate mid-step, three times
start_batch 20
victim=$(psql_q "SELECT chainexec.chain_execute('$SLEEP_CHAIN')")
stops=0
for i in 1 2 3; do
	wait_step_running "$SLEEP_CHAIN" >/dev/null || break
	cluster_ctl crash >/dev/null 2>&1
	cluster_ctl start >/dev/null 2>&1
	wait_ready 60 >/dev/null && stops=$((stops + 1))
done
is "$stops" 3 "the server was stopped (immediate) mid-step and started three times"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$victim', 60000)->>'status'")" failed "the execution fails"
is "$(line "$victim")" "failed|3|worker_crashed|t" "its line: failed at attempt 3 with worker_crashed, times set"
check_batch "stop -m immediate"

# the crashes were said in the log
like "$(grep -c 'chainexec: the executor running attempt .* died' "$CE_CLUSTER_LOG")" '^([9]|[1-9][0-9]+)$' \
	"each crashed attempt was logged"
