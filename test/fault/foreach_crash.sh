#!/usr/bin/env bash
# test/fault/foreach_crash.sh: a crash in the middle of a forEach loses and
# doubles nothing (SPEC §9 "Composition", §5 one transaction per transition).
#
# Four executions of a forEach over 300 elements (maxConcurrency 8); every
# element inserts (execution id, index) into a table whose primary key
# refuses a second insert, then sleeps a little, so that executors are
# mid-element when the server stops with "pg_ctl stop -m immediate".  After
# crash recovery every execution completes, every (execution, index) effect
# exists exactly once, no element failed (a unique violation would mean an
# element ran again after its effect committed), the gathered array is
# complete and in element order, and the containers' counters agree with
# the lines.
#
# chainexec-test: slow timeout=400
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CHAIN=fc-each-$S
N=4
ELEMS=300

cleanup()
{
	wait_ready 60 >/dev/null 2>&1 || cluster_ctl start >/dev/null 2>&1
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CHAIN';
		DROP TABLE IF EXISTS public.fc_effects_$S;
	EOF
}
trap cleanup EXIT

done_elements()
{
	psql_q "SELECT count(*) FROM public.fc_effects_$S" 2>/dev/null
}

plan 9

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 >/dev/null ||
	bail_out "the executors are not running"

psql_q "CREATE TABLE public.fc_effects_$S (exec uuid, idx int, PRIMARY KEY (exec, idx))" >/dev/null ||
	bail_out "could not create the effects table"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CHAIN\", \"steps\": [
	{\"id\": 1, \"name\": \"each\", \"type\": \"sql\", \"forEach\": \"{items}\", \"maxConcurrency\": 8,
	 \"sql\": \"WITH i AS (INSERT INTO public.fc_effects_$S VALUES ({chain.execution_id}::uuid, {index}::int) RETURNING idx) SELECT i.idx * 3 AS tripled FROM i, pg_sleep(0.01)\",
	 \"outputVariables\": [\"tripled\"]},
	{\"id\": 2, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT jsonb_array_length({tripled}::jsonb) AS n\", \"outputVariables\": [\"n\"]}]}', true)" >/dev/null ||
	bail_out "could not define the chain"

T0=$SECONDS
is "$(psql_q "SELECT count(chainexec.chain_execute('$CHAIN', jsonb_build_object('items', (SELECT jsonb_agg(g) FROM generate_series(1, $ELEMS) g))))
	FROM generate_series(1, $N)")" "$N" "$N executions of a forEach over $ELEMS elements started"

poll_query_until "SELECT count(*) >= $((N * ELEMS / 3)) FROM public.fc_effects_$S" t 120 >/dev/null
mid=$(done_elements)
if [ "${mid:-0}" -lt $((N * ELEMS)) ]; then
	check "stop the server with pg_ctl -m immediate in the middle of the forEach ($mid of $((N * ELEMS)) elements done)" \
		cluster_ctl crash
else
	skip "stop the server with pg_ctl -m immediate in the middle of the forEach" "all had ended already"
fi
off=$(log_offset)
check "start the server again (crash recovery)" cluster_ctl start
check "the server ran crash recovery" wait_for_log "database system was interrupted|automatic recovery in progress|was not properly shut down" "$off" 30
wait_ready 60 >/dev/null

t=$SECONDS
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN' AND finished_at IS NOT NULL" \
	"$N" 240 >/dev/null && diag "the rest ended $((SECONDS - t)) s after the restart; $((SECONDS - T0)) s in all"
is "$(psql_q "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT status, ','), '')
	FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN'")" "$N completed" \
	"no execution lost: all $N completed"
is "$(psql_q "SELECT count(*) || ' ' || count(DISTINCT exec) FROM public.fc_effects_$S")" \
	"$((N * ELEMS)) $N" "every (execution, index) effect exists exactly once"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$CHAIN' AND (l.status <> 'completed' OR l.error->>'sqlstate' = '23505')")" 0 \
	"no line failed or ran an element twice (no unique violation recorded)"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN'
	AND context->'tripled' = (SELECT jsonb_agg(g * 3 ORDER BY g) FROM generate_series(0, $ELEMS - 1) g)
	AND (context->>'n')::int = $ELEMS")" "$N" \
	"each execution's gathered array is complete and in element order"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$CHAIN' AND l.line_type = 'iteration'")" "$((N * ELEMS))" \
	"one iteration line per element, no more"

done_testing
