#!/usr/bin/env bash
# test/fault/group_commit.sh: an immediate stop in the middle of grouped
# commits (chainexec.group_commit) loses the whole groups and nothing else;
# every step's effect is then applied exactly once.
#
# chainexec.group_commit = 16 with chainexec.group_commit_window = 1s.  12
# executions of a two-step chain and 2 of a one-step chain, started in one
# transaction (so their first lines are due together, and before any
# second line); every step inserts (execution, step) into a table whose
# primary key refuses a second insert, and the one-step chain's step then
# waits for an advisory lock this test holds.  So each executor runs first
# steps, then one waiting step, all in one open group.  While the executors wait (no effect
# committed yet), "pg_ctl stop -m immediate", start again (dispatch paused
# first, to look: nothing of the groups committed), then resume.  Every
# execution must complete, every effect exist once, no line fail (a unique
# violation would mean a step ran again after its effect committed), and
# at most one attempt per executor count as worker_crashed (the step
# running at the stop; the steps before it in its group run again as new).
#
# chainexec-test: slow timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CHAIN=gcf-$S
WAITER=gcf-wait-$S
FX=public.gcf_fx_$S
N=12
LOCKER=

cleanup()
{
	[ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null
	wait_ready 60 >/dev/null 2>&1 || cluster_ctl start >/dev/null 2>&1
	psql -X -q >/dev/null 2>&1 <<-EOF
		ALTER SYSTEM RESET chainexec.group_commit;
		ALTER SYSTEM RESET chainexec.group_commit_window;
		ALTER SYSTEM RESET chainexec.enabled;
		SELECT pg_reload_conf();
		DELETE FROM chainexec.universal_transactions WHERE chain_id IN ('$CHAIN', '$WAITER');
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id IN ('$CHAIN', '$WAITER');
		DROP TABLE IF EXISTS $FX;
	EOF
}
trap cleanup EXIT

# step N [EXTRA-KEYS [MORE-SQL]]: insert the effect (then MORE-SQL), in one statement.
step()
{
	echo "{\"id\": $1, \"name\": \"s$1\", \"type\": \"sql\", ${2:+$2, }\"outputVariables\": [\"s$1\"],
		\"sql\": \"WITH i AS (INSERT INTO $FX VALUES ({chain.execution_id}::uuid, $1) RETURNING step) SELECT i.step AS s$1 FROM i${3:+, $3}\"}"
}

# lines_of_chain WHERE: lines of the chain's executions matching WHERE.
lines_of_chain()
{
	psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
		JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
		WHERE t.chain_id IN ('$CHAIN', '$WAITER') AND ($1)"
}

plan 9

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 1 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 >/dev/null ||
	bail_out "the executors are not running"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "could not set up"
	CREATE TABLE $FX (execution_id uuid, step int, PRIMARY KEY (execution_id, step));
	ALTER SYSTEM SET chainexec.group_commit = 16;
	ALTER SYSTEM SET chainexec.group_commit_window = '1s';
	SELECT pg_reload_conf();
EOF
poll_query_until "SELECT current_setting('chainexec.group_commit')" 16 10 >/dev/null
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CHAIN\", \"steps\": [$(step 1), $(step 2 '"dependsOn": [1]')]}', true)" >/dev/null &&
psql_q "SELECT chainexec.chain_define('{\"id\": \"$WAITER\", \"steps\": [$(step 1 '' "(SELECT pg_advisory_xact_lock_shared($S)) w")]}', true)" >/dev/null ||
	bail_out "could not define the chains"
executors=$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'")

# the lock the waiting steps wait for, held by a session of this test
psql -X -q -c "SELECT pg_advisory_lock($S)" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
LOCKER=$!
poll_query_until "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $S AND granted" 1 30 >/dev/null ||
	bail_out "the test session did not take its advisory lock"

is "$(psql_q "SELECT count(chainexec.chain_execute(c))
	FROM (SELECT '$CHAIN' AS c FROM generate_series(1, $N) UNION ALL SELECT '$WAITER' FROM generate_series(1, 2)) s")" \
	"$((N + 2))" "$N executions and 2 that will wait started"
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
	AND query LIKE 'chainexec: $WAITER/%' AND wait_event_type = 'Lock'" "$executors" 60 >/dev/null
seen=$(psql_q "SELECT count(*) FROM $FX")
waiting=$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
	AND query LIKE 'chainexec: $WAITER/%' AND wait_event_type = 'Lock'")
# the server starts again with dispatch paused, to look at what it recovered
# (written now, read at the next start: no reload, which would end the groups)
psql_q "ALTER SYSTEM SET chainexec.enabled = off" >/dev/null
if [ "$seen" = 0 ] && [ "${waiting:-0}" = "$executors" ]; then
	check "stop the server with pg_ctl -m immediate while the $executors executors wait in the middle of their groups, no effect committed" \
		cluster_ctl crash
else
	not_ok "stop the server mid-group" "$seen effects were already committed, $waiting of $executors executors waiting"
	cluster_ctl crash >/dev/null 2>&1
fi
wait "$LOCKER" 2>/dev/null
LOCKER=
off=$(log_offset)
check "start the server again (crash recovery)" cluster_ctl start
check "the server ran crash recovery" wait_for_log "database system was interrupted|automatic recovery in progress|was not properly shut down" "$off" 30
wait_ready 60 >/dev/null
is "$(psql_q "SELECT count(*) || ' ' || (SELECT count(*) FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id IN ('$CHAIN', '$WAITER') AND l.status = 'completed') FROM $FX")" "0 0" \
	"nothing of the groups was committed: no effect, no completed line"
psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null

if poll_query_until "SELECT count(*) FROM chainexec.universal_transactions
		WHERE chain_id IN ('$CHAIN', '$WAITER') AND finished_at IS NOT NULL" "$((N + 2))" 120 >/dev/null; then
	:
fi
is "$(psql_q "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT status, ','), '')
	FROM chainexec.universal_transactions WHERE chain_id IN ('$CHAIN', '$WAITER')")" "$((N + 2)) completed" \
	"all $((N + 2)) executions completed after the restart"
is "$(psql_q "SELECT count(*) || ' ' || count(DISTINCT execution_id) FROM $FX")" "$((N * 2 + 2)) $((N + 2))" \
	"every (execution, step) effect exists exactly once ($((N * 2 + 2)) rows)"
is "$(lines_of_chain "l.status <> 'completed' OR l.error->>'sqlstate' = '23505'")" 0 \
	"no line failed (no step ran again after its effect committed)"
crashed=$(lines_of_chain "l.attempt > 1")
if [ "${crashed:-99}" -le "${executors:-2}" ]; then
	ok "at most one attempt per executor counts as crashed ($crashed; the steps before it in its group ran again as new)"
else
	not_ok "at most one attempt per executor counts as crashed" "$crashed lines have more than one attempt, $executors executors"
fi

done_testing
exit $?
