#!/usr/bin/env bash
# test/integration/await.sh: CALL chain_await waits for an execution holding
# no snapshot (issue 10, "waiting pins xmin").
#
# chain_wait is a function: the statement that calls it holds a snapshot,
# so a session waiting for a person kept the cluster's xmin (vacuum of
# chainexec's busy tables stopped: "dead but not yet removable").
# chain_await commits between its looks, as chain_run does: while a session
# waits in it for an external step, pg_stat_activity shows no backend_xmin
# (and no backend_xid) for it; it returns the result once the step is
# completed from another session; it returns at its timeout with the
# status as it stands; it refuses to run in a transaction block, a null or
# unknown execution, and a negative timeout.
#
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
EXT=aw-ext-$S
APP=aw-waiter-$S
OUT=$(mktemp)

cleanup()
{
	rm -f "$OUT"
	psql -X -q >/dev/null 2>&1 <<-EOF2
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$APP';
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$EXT';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$EXT';
	EOF2
}
trap cleanup EXIT

plan 9

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$EXT\", \"steps\": [
	{\"id\": 1, \"name\": \"approve\", \"type\": \"external\", \"outputVariables\": [\"ok\"]},
	{\"id\": 2, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS done\"}]}', true)" >/dev/null ||
	bail_out "could not define $EXT"

id=$(psql_q "SELECT chainexec.chain_execute('$EXT')")
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$id'" waiting 30 >/dev/null

# ---- a session waits in chain_await for the person
PGAPPNAME=$APP psql -X -A -t -q -c "CALL chainexec.chain_await('$id', 60000)" >"$OUT" 2>&1 &
waiter=$!
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP' AND query LIKE '%chain_await%'" 1 30 >/dev/null
sleep 0.5
# A sample may fall on one of the waiter's looks (a short transaction, once
# a second; longer on a loaded machine): what must not happen is a snapshot
# held across the wait, which every sample would see.  So no two samples in
# a row may find one.
pinned=0
held=0
prev=
for i in $(seq 1 15); do
	x=$(psql_q "SELECT coalesce(backend_xmin::text, '') || coalesce(backend_xid::text, '') FROM pg_stat_activity WHERE application_name = '$APP'")
	if [ -n "$x" ]; then
		pinned=$((pinned + 1))
		[ -n "$prev" ] && held=$((held + 1))
	fi
	prev=$x
	sleep 0.2
done
is "$held" 0 "backend_xmin (and backend_xid) of the waiting session stay empty during 3 s of waiting (no two samples in a row found one; $pinned of 15 fell on a look)"
is "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$APP' AND query LIKE '%chain_await%'")" 1 \
	"the session is still waiting"

psql_q "SELECT chainexec.chain_step_complete('$id', 1, '{\"ok\": true}')" >/dev/null
wait "$waiter"
like "$(cat "$OUT")" '"status": "completed"' "chain_await returns the result once the person completed the step"
like "$(cat "$OUT")" '"ok": true' "... with the final context"

# ---- timeout: the result as it stands
id2=$(psql_q "SELECT chainexec.chain_execute('$EXT')")
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$id2'" waiting 30 >/dev/null
t0=$SECONDS
got=$(psql -X -A -t -q -c "CALL chainexec.chain_await('$id2', 300)" 2>&1)
like "$got" '"status": "waiting"' "at its timeout chain_await returns the result as it stands"

# ---- misuse
like "$(psql -X -A -t -q -c "BEGIN" -c "CALL chainexec.chain_await('$id2', 10)" 2>&1)" \
	'chain_await cannot run inside a transaction block' "refused inside a transaction block"
like "$(psql -X -A -t -q -v VERBOSITY=verbose -c "CALL chainexec.chain_await(NULL, 10)" 2>&1)" \
	'22004.*execution id must not be null' "a null execution id is refused (22004)"
like "$(psql -X -A -t -q -v VERBOSITY=verbose -c "CALL chainexec.chain_await(gen_random_uuid(), 10)" 2>&1)" \
	'42704.*does not exist' "an unknown execution is refused (42704)"
like "$(psql -X -A -t -q -v VERBOSITY=verbose -c "CALL chainexec.chain_await('$id2', -1)" 2>&1)" \
	'22023.*must not be negative' "a negative timeout is refused (22023)"

# For contrast (a diagnostic, not a test): the same sampling of chain_wait.
id3=$(psql_q "SELECT chainexec.chain_execute('$EXT')")
PGAPPNAME=$APP psql -X -A -t -q -c "SELECT chainexec.chain_wait('$id3', 3000)" >/dev/null 2>&1 &
sleep 1
diag "chain_wait's backend_xmin while it waits: $(psql_q "SELECT coalesce(backend_xmin::text, 'none') FROM pg_stat_activity WHERE application_name = '$APP'")"
wait
