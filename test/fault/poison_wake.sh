#!/usr/bin/env bash
# test/fault/poison_wake.sh: an executor that replaces a dead one and finds
# the dead attempt's line locked by another transaction waits for the line
# (src/worker/inflight.c, at most 10 s) and counts the death, however often
# its latch is set meanwhile.  A latch is set by every wake-up of the
# executors (chain_execute, a step made ready, a signal): the wait must be
# measured in time, not in turns of its loop.
#
# As in test/fault/poison.sh (1b): a step terminates its own executor
# (a FATAL, the server does not restart); a session queued on the line's
# row lock behind the dying attempt gets it as the attempt's transaction
# ends and holds it for 6 s, while the launcher starts the replacement.
# Meanwhile every executor's latch is set several hundred times a second
# (SIGUSR1, as any procsignal sets it).  Three times: the step runs exactly
# chainexec.max_crash_attempts (3) times, and the line fails at attempt 3.
#
# chainexec-test: slow timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CH=pw-lock-$S
RUNS=public.pw_runs_$S
WAKER=

cleanup()
{
	[ -n "$WAKER" ] && kill "$WAKER" 2>/dev/null
	wait_ready 60 >/dev/null 2>&1 || cluster_ctl start >/dev/null 2>&1
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CH';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CH';
		DROP SEQUENCE IF EXISTS $RUNS;
	EOF
}
trap cleanup EXIT

# wait_step_running CHAIN: wait until an executor runs a step of CHAIN.
wait_step_running()
{
	local deadline=$((SECONDS + 60)) pid
	while [ "$SECONDS" -lt "$deadline" ]; do
		pid=$(psql_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
			AND query LIKE '%$1/%' AND state = 'active' AND wait_event = 'PgSleep' LIMIT 1" 2>/dev/null)
		[ -n "$pid" ] && return 0
		sleep 0.1
	done
	return 1
}

# wake_executors SECONDS: set every executor's latch (SIGUSR1, by process
# id) about every millisecond, for SECONDS seconds; the executors' ids are
# read again every 100 signals (a replacement starts meanwhile).
wake_executors()
{
	local end=$((SECONDS + $1)) pids p i

	while [ "$SECONDS" -lt "$end" ]; do
		pids=$(psql_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" 2>/dev/null)
		for i in $(seq 100); do
			for p in $pids; do
				kill -USR1 "$p" 2>/dev/null
			done
			sleep 0.001
		done
	done
}

plan 4

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
[ "$(psql_q 'SHOW chainexec.max_crash_attempts')" = 3 ] || bail_out "chainexec.max_crash_attempts is not 3"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"
psql_q "CREATE SEQUENCE $RUNS" >/dev/null || bail_out "could not create the sequence"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CH\", \"steps\": [{\"id\": 1, \"name\": \"poison\", \"type\": \"sql\",
	\"sql\": \"SELECT nextval(''$RUNS''), pg_sleep(1), pg_terminate_backend(pg_backend_pid())\"}]}', true)" >/dev/null ||
	bail_out "could not define the chain"

poison=$(psql_q "SELECT chainexec.chain_execute('$CH')")
locks=0
for i in 1 2 3; do
	wait_step_running "$CH" || break
	wake_executors 9 &
	WAKER=$!
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-EOF &
		BEGIN;
		SELECT 1 FROM chainexec.universal_transaction_lines
		 WHERE transaction_id = '$poison' AND line_number = 1 FOR UPDATE;
		SELECT pg_sleep(6);
		COMMIT;
	EOF
	locker=$!
	wait "$locker" && locks=$((locks + 1))
	kill "$WAKER" 2>/dev/null
	wait "$WAKER" 2>/dev/null
	WAKER=
done
is "$locks" 3 "a session held the line's lock as each attempt's executor died, the executors woken all along"
is "$(psql_q "SELECT chainexec.chain_wait('$poison', 60000)->>'status'")" failed \
	"the execution fails"
is "$(psql_q "SELECT status, attempt, error->>'failure_type' FROM chainexec.universal_transaction_lines
	WHERE transaction_id = '$poison' AND line_number = 1")" "failed|3|worker_crashed" \
	"its line: failed at attempt 3 with worker_crashed"
is "$(psql_q "SELECT last_value FROM $RUNS")" 3 \
	"the step ran exactly 3 times: no death forgotten by a replacement whose latch was set while it waited"
