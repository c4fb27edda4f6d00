#!/usr/bin/env bash
# test/integration/insession_many.sh: chain_cancel interrupts the running
# step of every in-session run, however many sessions drive executions at
# once.  Every backend has a place in shared memory to publish the line it
# runs (one per possible backend, not a fixed pool that a 65th session
# finds full), so no cancel is lost for lack of room.
#
# 70 sessions each CALL chain_run a chain whose step sleeps 60 s; once all
# 70 sleep, every execution is cancelled; all 70 sessions stop sleeping
# within seconds.
#
# chainexec-test: timeout=180
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CH=ism-$S
N=70

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF2
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ism-$S';
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CH';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CH';
	EOF2
}
trap cleanup EXIT

plan 3

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CH\", \"steps\": [
	{\"id\": 1, \"name\": \"sleep\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(60)\"}]}', true)" >/dev/null ||
	bail_out "could not define the chain"

for i in $(seq 1 $N); do
	PGAPPNAME=ism-$S psql -X -q -c "CALL chainexec.chain_run('$CH', '{}')" >/dev/null 2>&1 &
done
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ism-$S' AND wait_event = 'PgSleep'" $N 60 ||
	bail_out "the $N sessions did not all start their step"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CH' AND in_session")" $N \
	"$N executions are driven by their sessions"

started=$SECONDS
psql_q "SELECT count(chainexec.chain_cancel(id)) FROM chainexec.universal_transactions WHERE chain_id = '$CH'" >/dev/null
check "within 20 s of chain_cancel no session still sleeps in its step (all $N interrupted)" \
	poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ism-$S' AND wait_event = 'PgSleep'" 0 20
wait
diag "all $N sessions returned $((SECONDS - started)) s after the cancel"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CH' AND status = 'cancelled'")" $N \
	"the $N executions are cancelled"
