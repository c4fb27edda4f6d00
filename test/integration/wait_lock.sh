#!/usr/bin/env bash
# test/integration/wait_lock.sh: chain_wait gives way to a lock request.
#
# chain_wait's transaction holds ACCESS SHARE on chainexec's execution
# tables until it ends.  A request for a conflicting lock (here LOCK TABLE
# ... ACCESS EXCLUSIVE, as TRUNCATE, ALTER TABLE, VACUUM FULL or an
# ALTER EXTENSION UPDATE take it) waits for the waiting session, and every
# executor's next transition queues behind that request: nothing ends the
# execution, and the deadlock detector cannot see the cycle (the wait
# sleeps on a condition variable).  The wait returned only at its timeout,
# or never without one, with the whole engine stalled meanwhile.  Now it
# returns the result as it stands, with a warning, within about a second
# of the request; a wait that blocks nobody still waits to its timeout.
# The same for a request for a lock on one of the tables' indexes
# (REINDEX), which the look locks with the table.  Only a request that has
# waited deadlock_timeout counts: a LOGIN role with no rights on the tables
# can ask for such a lock (CREATE RULE takes it before it checks ownership)
# and give up at once (lock_timeout), and did so to make every other
# role's wait return early.
#
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
EXT=wl-ext-$S
APP=wl-waiter-$S
OUT=$(mktemp)
LOCKOUT=$(mktemp)
MALLORY=wl_mallory_$S

cleanup()
{
	rm -f "$OUT" "$LOCKOUT"
	psql -X -q >/dev/null 2>&1 <<-EOF2
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$APP';
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$EXT';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$EXT';
		RESET chainexec.internal;
		DROP ROLE IF EXISTS $MALLORY;
		ALTER SYSTEM RESET chainexec.enabled;
		SELECT pg_reload_conf();
	EOF2
}
trap cleanup EXIT

plan 12

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 1 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$EXT\", \"steps\": [
	{\"id\": 1, \"name\": \"approve\", \"type\": \"external\"},
	{\"id\": 2, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS done\"}]}', true)" >/dev/null ||
	bail_out "could not define $EXT"
id=$(psql_q "SELECT chainexec.chain_execute('$EXT')")
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$id'" waiting 30 >/dev/null ||
	bail_out "the execution did not reach its external step"

# ---- a wait that blocks nobody waits to its timeout
start=$(date +%s%N)
st=$(psql_q "SELECT chainexec.chain_wait('$id', 1500)->>'status'")
ms=$(( ($(date +%s%N) - start) / 1000000 ))
is "$st $([ "$ms" -ge 1400 ] && echo late_enough)" "waiting late_enough" \
	"a wait nobody waits behind runs to its timeout (status $st after $ms ms)"

# ---- a session waits; another asks for an ACCESS EXCLUSIVE lock
PGAPPNAME=$APP psql -X -A -t -q -c "SELECT chainexec.chain_wait('$id', 30000)->>'status'" >"$OUT" 2>&1 &
waiter=$!
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP' AND wait_event_type = 'Extension'" 1 30 >/dev/null ||
	bail_out "the waiter did not start waiting"
start=$(date +%s%N)
psql -X -A -t -q -c "SET lock_timeout = '20s'" -c "BEGIN" \
	-c "LOCK TABLE chainexec.universal_transactions IN ACCESS EXCLUSIVE MODE" -c "SELECT 'locked'" -c "COMMIT" >"$LOCKOUT" 2>&1
lock_ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$waiter"

is "$(cat "$LOCKOUT")" "locked" "the lock request is granted (it waited $lock_ms ms)"
is "$([ "$lock_ms" -lt 10000 ] && echo soon)" soon "... within seconds, not at the wait's 30 s timeout ($lock_ms ms)"
like "$(cat "$OUT")" "WARNING:  chain_wait returns before execution $id has ended: another session waits for a lock on chainexec.universal_transactions" \
	"the wait says why it returned"
like "$(cat "$OUT")" "waiting" "... and returns the result as it stands (status waiting)"

# ---- REINDEX holds SHARE on the table (the executors queue behind it) and
# waits for ACCESS EXCLUSIVE on each index, which the look holds ACCESS
# SHARE on: the wait gives way to a request for a lock on an index too
PGAPPNAME=$APP psql -X -A -t -q -c "SELECT chainexec.chain_wait('$id', 30000)->>'status'" >"$OUT" 2>&1 &
waiter=$!
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP' AND wait_event_type = 'Extension'" 1 30 >/dev/null ||
	bail_out "the waiter did not start waiting"
start=$(date +%s%N)
psql -X -A -t -q -c "SET lock_timeout = '20s'" -c "REINDEX TABLE chainexec.universal_transactions" \
	-c "SELECT 'reindexed'" >"$LOCKOUT" 2>&1
lock_ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$waiter"
is "$(cat "$LOCKOUT") $([ "$lock_ms" -lt 10000 ] && echo soon)" "reindexed soon" \
	"REINDEX TABLE is done within seconds, not at the wait's 30 s timeout ($lock_ms ms)"
like "$(cat "$OUT")" "WARNING:  chain_wait returns before execution $id has ended: another session waits for a lock on chainexec.universal_transactions" \
	"... the wait gave way to its request for a lock on an index"

# ---- a request that locks the lines first, then waits for the header's
# table (LOCK TABLE or TRUNCATE of both, ALTER EXTENSION UPDATE): the wait
# gives way, and its result, which counts the lines, must not then wait for
# the request (a deadlock: one of the two was cancelled after a second).
# The executors dispatch nothing meanwhile (chainexec.enabled = off): their
# transitions lock the header's table, then the lines', and one that began
# while the request waited would deadlock with it whatever the wait does.
psql_q "ALTER SYSTEM SET chainexec.enabled = off" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
PGAPPNAME=$APP psql -X -A -t -q -c "SELECT chainexec.chain_wait('$id', 30000)->>'status'" >"$OUT" 2>&1 &
waiter=$!
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP' AND wait_event_type = 'Extension'" 1 30 >/dev/null ||
	bail_out "the waiter did not start waiting"
psql -X -A -t -q -c "SET lock_timeout = '20s'" -c "BEGIN" \
	-c "LOCK TABLE chainexec.universal_transaction_lines, chainexec.universal_transactions IN ACCESS EXCLUSIVE MODE" \
	-c "SELECT 'locked'" -c "COMMIT" >"$LOCKOUT" 2>&1
wait "$waiter"
psql_q "ALTER SYSTEM RESET chainexec.enabled" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
is "$(cat "$LOCKOUT")" "locked" "a request for both tables, the lines first, is granted (no deadlock)"
like "$(cat "$OUT")" "returns before execution $id has ended: another session waits for a lock on chainexec.universal_transaction_lines" \
	"... the wait gave way to it, and returned its result"

# ---- a LOGIN role asks for the lock again and again, giving up after
# 300 ms each time: the wait runs to its timeout all the same
psql_q "CREATE ROLE $MALLORY LOGIN" >/dev/null
PGAPPNAME=$APP psql -X -A -t -q -c "SELECT chainexec.chain_wait('$id', 3500)->>'status'" >"$OUT" 2>&1 &
waiter=$!
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP' AND wait_event_type = 'Extension'" 1 30 >/dev/null ||
	bail_out "the waiter did not start waiting"
start=$(date +%s%N)
for i in $(seq 1 10); do
	psql -X -q -U "$MALLORY" -c "SET lock_timeout = '300ms'" \
		-c "CREATE RULE wl_rule AS ON INSERT TO chainexec.universal_transactions DO ALSO NOTHING" >/dev/null 2>&1
done
wait "$waiter"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
is "$(grep -c WARNING "$OUT")" 0 "a LOGIN role's requests given up after 300 ms do not make another role's wait return early ($ms ms of requests)"
is "$(tail -n 1 "$OUT")" waiting "... which runs to its timeout"

# ---- the engine goes on afterwards
psql_q "SELECT chainexec.chain_step_complete('$id', 1, '{}')" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" completed \
	"the execution completes once its step is done"
