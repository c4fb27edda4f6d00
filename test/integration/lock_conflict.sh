#!/usr/bin/env bash
# test/integration/lock_conflict.sh: a deadlock met by a transition outside
# its step (in its bookkeeping: here against a session that locks the
# execution's header, then waits for a lock the step took) is not the
# line's fault: the
# executor logs it, leaves the line for a later claim, and the execution
# completes, its step run once more (the first run was rolled back with the
# transition).  Before, the line was recorded failed (internal_error,
# 40P01) and the execution with it.  The same held for grouped commits,
# whose transitions can deadlock with each other on the headers of
# parallel steps.
#
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
C=lc-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$C';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$C';
		DROP TABLE IF EXISTS public.lc_runs_$S;
	EOF
}
trap cleanup EXIT

plan 4

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "setup failed"
CREATE TABLE public.lc_runs_$S (at timestamptz DEFAULT clock_timestamp());
SELECT chainexec.chain_define('{"id": "$C", "steps": [
  {"id": 1, "name": "a", "type": "sql",
   "sql": "INSERT INTO public.lc_runs_$S SELECT clock_timestamp() FROM pg_advisory_xact_lock($S) RETURNING pg_sleep(1)::text AS x",
   "outputVariables": ["x"]}]}', true);
EOF

off=$(log_offset)
e=$(psql_q "SELECT chainexec.chain_execute('$C')")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%(execution $e)'" 1 20 >/dev/null

# The session locks the header while the step runs; the transition, its
# step done, waits for the header; the session then asks for the advisory
# lock the step took (held by the transition until it ends).  The
# transition waited first, so its deadlock check runs first and it is the
# one that fails.  The session then commits at once: the line is free.
psql -X -q >/dev/null 2>&1 <<EOF &
BEGIN;
SELECT FROM chainexec.universal_transactions WHERE id = '$e' FOR UPDATE;
SELECT pg_sleep(1.5);
SELECT pg_advisory_xact_lock($S);
COMMIT;
EOF
locker=$!

wait_for_log "leaves line 1 of execution $e for a later claim" "$off" 30 >/dev/null
check "the executor logs the deadlock and leaves the line for a later claim" \
	wait_for_log "leaves line 1 of execution $e for a later claim" "$off" 1
wait "$locker"
is "$(psql_q "SELECT chainexec.chain_wait('$e', 20000)->>'status'")" completed \
	"the execution completes"
is "$(psql_q "SELECT status || ' ' || attempt || ' ' || (error IS NULL)::text FROM chainexec.universal_transaction_lines
	WHERE transaction_id = '$e' AND line_number = 1")" "completed 1 true" \
	"its line completed in one attempt: the deadlock counted none"
is "$(psql_q "SELECT count(*) FROM public.lc_runs_$S")" 1 \
	"the step's effect is there once (the run the deadlock rolled back left none)"
