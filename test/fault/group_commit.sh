#!/usr/bin/env bash
# test/fault/group_commit.sh: an immediate stop in the middle of grouped
# commits (chainexec.group_commit) loses the whole group and nothing else;
# every step's effect is then applied exactly once.
#
# chainexec.group_commit = 8 with chainexec.group_commit_window = 1s: each
# executor keeps adding 250 ms steps to its group for a second before it
# commits.  12 executions of a two-step chain whose steps insert (execution,
# step) into a table whose primary key refuses a second insert.  Half a
# second after the first step started, several steps have run and none is
# committed; then "pg_ctl stop -m immediate", start again.  Every execution
# must complete, every effect exist once, no line fail (a unique violation
# would mean a step ran again after its effect committed), and at most one
# attempt per executor count as worker_crashed (the step running at the
# stop; the steps before it in its group run again as if never run).
#
# chainexec-test: slow timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CHAIN=gcf-$S
FX=public.gcf_fx_$S
N=12

cleanup()
{
	wait_ready 60 >/dev/null 2>&1 || cluster_ctl start >/dev/null 2>&1
	psql -X -q >/dev/null 2>&1 <<-EOF
		ALTER SYSTEM RESET chainexec.group_commit;
		ALTER SYSTEM RESET chainexec.group_commit_window;
		ALTER SYSTEM RESET chainexec.enabled;
		SELECT pg_reload_conf();
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CHAIN';
		DROP TABLE IF EXISTS $FX;
	EOF
}
trap cleanup EXIT

# step N [EXTRA-KEYS]: insert the effect, then sleep 250 ms, in one statement.
step()
{
	echo "{\"id\": $1, \"name\": \"s$1\", \"type\": \"sql\", ${2:+$2, }\"outputVariables\": [\"s$1\"],
		\"sql\": \"WITH i AS (INSERT INTO $FX VALUES ({chain.execution_id}::uuid, $1) RETURNING step) SELECT i.step AS s$1 FROM i, pg_sleep(0.25)\"}"
}

# lines_of_chain WHERE: lines of the chain's executions matching WHERE.
lines_of_chain()
{
	psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
		JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
		WHERE t.chain_id = '$CHAIN' AND ($1)"
}

plan 9

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 1 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 >/dev/null ||
	bail_out "the executors are not running"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "could not set up"
	CREATE TABLE $FX (execution_id uuid, step int, PRIMARY KEY (execution_id, step));
	ALTER SYSTEM SET chainexec.group_commit = 8;
	ALTER SYSTEM SET chainexec.group_commit_window = '1s';
	SELECT pg_reload_conf();
EOF
poll_query_until "SELECT current_setting('chainexec.group_commit')" 8 10 >/dev/null
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CHAIN\", \"steps\": [$(step 1), $(step 2 '"dependsOn": [1]')]}', true)" >/dev/null ||
	bail_out "could not define the chain"
executors=$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'")

is "$(psql_q "SELECT count(chainexec.chain_execute('$CHAIN')) FROM generate_series(1, $N)")" "$N" "$N executions started"
poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
	AND query LIKE 'chainexec: $CHAIN/%'" t 30 >/dev/null
sleep 0.6
# the server starts again with dispatch paused, to look at what it recovered
# (written now, read at the next start: no reload, which would end the groups)
psql_q "ALTER SYSTEM SET chainexec.enabled = off" >/dev/null
ran=$(lines_of_chain "l.status = 'ready'")
seen=$(psql_q "SELECT count(*) FROM $FX")
running=$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor' AND query LIKE 'chainexec: $CHAIN/%'")
if [ "$seen" = 0 ] && [ "${running:-0}" -gt 0 ]; then
	check "stop the server with pg_ctl -m immediate while $running executor(s) are mid-group, no effect committed yet" \
		cluster_ctl crash
else
	not_ok "stop the server mid-group" "$seen effects were already committed, $running executors running a step"
	cluster_ctl crash >/dev/null 2>&1
fi
diag "(at the stop, another session saw $seen effects and $ran of $N first lines still ready)"
off=$(log_offset)
check "start the server again (crash recovery)" cluster_ctl start
check "the server ran crash recovery" wait_for_log "database system was interrupted|automatic recovery in progress|was not properly shut down" "$off" 30
wait_ready 60 >/dev/null
is "$(psql_q "SELECT count(*) || ' ' || (SELECT count(*) FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$CHAIN' AND l.status = 'completed') FROM $FX")" "0 0" \
	"nothing of the groups was committed: no effect, no completed line"
psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null

if poll_query_until "SELECT count(*) FROM chainexec.universal_transactions
		WHERE chain_id = '$CHAIN' AND finished_at IS NOT NULL" "$N" 120 >/dev/null; then
	:
fi
is "$(psql_q "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT status, ','), '')
	FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN'")" "$N completed" \
	"all $N executions completed after the restart"
is "$(psql_q "SELECT count(*) || ' ' || count(DISTINCT execution_id) FROM $FX")" "$((N * 2)) $N" \
	"every (execution, step) effect exists exactly once ($((N * 2)) rows)"
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
