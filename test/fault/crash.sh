#!/usr/bin/env bash
# test/fault/crash.sh: a step's SQL effects are applied exactly once, whatever
# crashes (SPEC §5, "one transaction per step transition").
#
# 200 executions of a four-step chain (a diamond: 1, then 2 and 3 in
# parallel, then 4); every step inserts (execution id, step) into a table
# whose primary key refuses a second insert, then sleeps a little so that
# the executors are mid-step when they are killed.  While the executions
# run: SIGKILL one executor (the postmaster then restarts every process,
# restart_after_crash), wait for the executors to come back, later stop the
# whole server with "pg_ctl stop -m immediate" and start it again (crash
# recovery).  Then every execution must complete, every (execution, step)
# effect must exist exactly once, no line may have failed with a unique
# violation (a step run again after its effect committed), and no
# execution may be lost.
#
# chainexec-test: slow timeout=420
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CHAIN=cr-diamond-$S
N=200
STEPS=4

cleanup()
{
	wait_ready 60 >/dev/null 2>&1 || cluster_ctl start >/dev/null 2>&1
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CHAIN';
		DROP TABLE IF EXISTS public.cr_effects_$S;
	EOF
}
trap cleanup EXIT

# executors_running: how many executors pg_stat_activity shows.
executors_running()
{
	psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" 2>/dev/null
}

# progress: how many lines of the chain's executions have completed.
progress()
{
	psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
		JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
		WHERE t.chain_id = '$CHAIN' AND l.status = 'completed'" 2>/dev/null
}

# step N [EXTRA-KEYS]: insert the effect first, then sleep 30 ms, in one statement.
step()
{
	echo "{\"id\": $1, \"name\": \"s$1\", \"type\": \"sql\", ${2:+$2, }\"outputVariables\": [\"s$1\"],
		\"sql\": \"WITH i AS (INSERT INTO public.cr_effects_$S VALUES ({chain.execution_id}::uuid, $1) RETURNING step) SELECT i.step AS s$1 FROM i, pg_sleep(0.03)\"}"
}

plan 12

# The runner creates the extension before the pgTAP suites; --only skips them.
psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"

is "$(psql_q 'SHOW restart_after_crash')" on "restart_after_crash is on (a killed backend makes the postmaster restart everything)"
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" 2 30 >/dev/null ||
	bail_out "the executors are not running"

psql_q "CREATE TABLE public.cr_effects_$S (execution_id uuid, step int, PRIMARY KEY (execution_id, step))" >/dev/null ||
	bail_out "could not create the effects table"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CHAIN\", \"steps\": [$(step 1), $(step 2 '"dependsOn": [1]'),
	$(step 3 '"dependsOn": [1]'), $(step 4 '"dependsOn": [2, 3]')]}', true)" >/dev/null ||
	bail_out "could not define the chain"

T0=$SECONDS
is "$(psql_q "SELECT count(chainexec.chain_execute('$CHAIN')) FROM generate_series(1, $N)")" "$N" \
	"$N executions started"

# ---- kill -9 one executor while it runs a step, once 100 steps are done
poll_query_until "SELECT count(*) >= 100 FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$CHAIN' AND l.status = 'completed'" t 60 >/dev/null
pid=
deadline=$((SECONDS + 20))
while [ -z "$pid" ] && [ "$SECONDS" -lt "$deadline" ]; do
	pid=$(psql_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
		AND query LIKE 'chainexec: $CHAIN/%' LIMIT 1" 2>/dev/null)
done
before=$(progress)
off=$(log_offset)
if [ -n "$pid" ] && kill -KILL "$pid"; then
	ok "SIGKILL executor $pid while it runs a step ($before of $((N * STEPS)) steps done)"
else
	not_ok "SIGKILL an executor while it runs a step" "no executor of $CHAIN found in pg_stat_activity"
fi
check "the postmaster notices and reinitializes" \
	wait_for_log "terminated by signal 9|all server processes terminated; reinitializing" "$off" 30
wait_ready 60 >/dev/null
t=$SECONDS
if poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" 2 60 >/dev/null; then
	ok "the executors come back after the crash restart ($((SECONDS - t)) s after the server was ready)"
else
	not_ok "the executors come back after the crash restart" "$(executors_running) executors running"
fi

# ---- let them work a while, then stop the whole server without a checkpoint
poll_query_until "SELECT count(*) >= ${before:-0} + 100 FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$CHAIN' AND l.status = 'completed'" t 60 >/dev/null
mid=$(progress)
if [ "${mid:-0}" -lt $((N * STEPS)) ]; then
	check "stop the server with pg_ctl -m immediate while executions run ($mid of $((N * STEPS)) steps done)" \
		cluster_ctl crash
else
	skip "stop the server with pg_ctl -m immediate while executions run" "all $N had ended already"
fi
off=$(log_offset)
check "start the server again (crash recovery)" cluster_ctl start
check "the server ran crash recovery" wait_for_log "database system was interrupted|automatic recovery in progress|was not properly shut down" "$off" 30
wait_ready 60 >/dev/null

# ---- every execution completes
t=$SECONDS
if poll_query_until "SELECT count(*) FROM chainexec.universal_transactions
		WHERE chain_id = '$CHAIN' AND finished_at IS NOT NULL" "$N" 180 >/dev/null; then
	diag "the rest ended $((SECONDS - t)) s after the restart; $((SECONDS - T0)) s in all"
fi
is "$(psql_q "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT status, ','), '')
	FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN'")" "$N completed" \
	"no execution lost: all $N executions completed"

is "$(psql_q "SELECT count(*) || ' ' || count(DISTINCT execution_id) FROM public.cr_effects_$S")" \
	"$((N * STEPS)) $N" "every (execution, step) effect exists exactly once ($((N * STEPS)) rows, $N executions)"
is "$(psql_q "SELECT count(*) FROM public.cr_effects_$S e
	WHERE NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.id = e.execution_id
		AND t.chain_id = '$CHAIN')")" 0 "every effect belongs to one of the executions"

is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$CHAIN' AND (l.error->>'sqlstate' = '23505' OR l.status <> 'completed')")" 0 \
	"no step ran again after its effect committed (no line failed with SQLSTATE 23505; every line completed)"
diag "lines by attempt: $(psql_q "SELECT string_agg(attempt || ': ' || n, ', ' ORDER BY attempt)
	FROM (SELECT l.attempt, count(*) AS n FROM chainexec.universal_transaction_lines l
		JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
		WHERE t.chain_id = '$CHAIN' GROUP BY 1) s")"

done_testing
exit $?
