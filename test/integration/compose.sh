#!/usr/bin/env bash
# test/integration/compose.sh: composition (SPEC §9) through the workers
# and through CALL chain_run.
#
# One chain uses all three: a step of type "chain" (a child execution whose
# outputs come back filtered by outputVariables), a forEach over 1,000 items
# with maxConcurrency 8 (every element's effect once, keyed by execution and
# index; the step itself records how many of its iterations are in flight,
# never more than 8; outputs in element order) and a repeatUntil loop.  It
# completes through the workers and through chain_run, with the same final
# context, and its progress never decreases.  Then: a child's failure fails
# the parent's step with the child's failure type; recursion stops at
# chainexec.max_chain_depth; per-element retries, onFailure skip (a null in
# the arrays) and compensation of every completed element in reverse
# order; repeatUntil exhausting maxIterations; a repeatUntil of wait steps
# holds no executor between iterations; cancelling a parent cancels its
# child and its iterations.
#
# chainexec-test: timeout=400
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$

sql()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"
}

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'cp-%-$S' AND parent_id IS NULL;
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'cp-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'cp-%-$S';
		DROP TABLE IF EXISTS public.cp_effects_$S, public.cp_counter_$S, public.cp_comp_$S;
	EOF
}
trap cleanup EXIT

plan 53

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 ||
	bail_out "the executors are not running"

sql <<EOF || bail_out "could not define the test chains"
CREATE TABLE public.cp_effects_$S (exec uuid, idx int, inflight int, PRIMARY KEY (exec, idx));
CREATE TABLE public.cp_counter_$S (exec uuid PRIMARY KEY, n int);
CREATE TABLE public.cp_comp_$S (seq serial, exec uuid, idx int);

SELECT chainexec.chain_define('{"id": "cp-child-$S", "steps": [
  {"id": 1, "name": "times_ten", "type": "sql", "sql": "SELECT {x}::int * 10 AS y, ''hidden'' AS z",
   "outputVariables": ["y", "z"]}]}', true);

SELECT chainexec.chain_define('{"id": "cp-all-$S", "steps": [
  {"id": 1, "name": "seed", "type": "sql", "sql": "SELECT 4 AS a", "outputVariables": ["a"]},
  {"id": 2, "name": "child", "type": "chain", "chain": "cp-child-$S", "input": {"x": "{a}"},
   "outputVariables": ["y"]},
  {"id": 3, "name": "each", "type": "sql", "forEach": "{items}", "maxConcurrency": 8,
   "sql": "INSERT INTO public.cp_effects_$S (exec, idx, inflight) SELECT {chain.execution_id}::uuid, {index}::int, (SELECT count(*) FROM chainexec.universal_transaction_lines WHERE organization_id = {chain.organization_id}::uuid AND transaction_id = {chain.execution_id}::uuid AND line_type = ''iteration'' AND status IN (''ready'', ''running'', ''waiting'')) RETURNING {item}::int * 2 AS doubled",
   "outputVariables": ["doubled"]},
  {"id": 4, "name": "poll", "type": "sql", "repeatUntil": "n >= 5", "maxIterations": 10,
   "sql": "INSERT INTO public.cp_counter_$S VALUES ({chain.execution_id}::uuid, 1) ON CONFLICT (exec) DO UPDATE SET n = cp_counter_$S.n + 1 RETURNING n",
   "outputVariables": ["n"]},
  {"id": 5, "name": "finish", "type": "sql", "sql": "SELECT {y}::int + {n}::int AS final", "outputVariables": ["final"]}]}', true);
EOF

ITEMS="'$(psql_q "SELECT jsonb_build_object('items', (SELECT jsonb_agg(g) FROM generate_series(1, 1000) g))")'"
EXPECTED="(SELECT jsonb_agg(g * 2 ORDER BY g) FROM generate_series(1, 1000) g)"

# check_all ID HOW: the assertions about one execution of cp-all.
check_all()
{
	local id=$1 how=$2
	is "$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$id'")" completed \
		"$how: the parent completes"
	is "$(psql_q "SELECT context->>'y' || ' ' || (context ? 'z')::text || ' ' || (context->>'final')
		FROM chainexec.universal_transactions WHERE id = '$id'")" "40 false 45" \
		"$how: the child's output y comes back (z is filtered out by outputVariables); the loop set n = 5"
	is "$(psql_q "SELECT count(*) || ' ' || min(status) || ' ' || (min(metadata->'parent'->>'executionId') = '$id')::text
		|| ' ' || min(metadata->>'depth') || ' ' || min(parent_line)
		FROM chainexec.universal_transactions WHERE parent_id = '$id'")" "1 completed true 1 2" \
		"$how: one child, completed, linked to the parent's line 2 (column and metadata, depth 1)"
	is "$(psql_q "SELECT (context->'doubled' = $EXPECTED)::text FROM chainexec.universal_transactions WHERE id = '$id'")" true \
		"$how: forEach outputs are an array in element order (1,000 elements)"
	is "$(psql_q "SELECT count(*) || ' ' || count(DISTINCT idx) || ' ' || max(inflight) FROM public.cp_effects_$S WHERE exec = '$id'")" \
		"1000 1000 8" \
		"$how: every element's effect exactly once; at most 8 (and 8) iterations in flight, as the step recorded"
	is "$(psql_q "SELECT count(*) FILTER (WHERE step_id = 3) || ' ' || min(iteration) FILTER (WHERE step_id = 3) || ' '
		|| max(iteration) FILTER (WHERE step_id = 3) || ' ' || count(*) FILTER (WHERE step_id = 4) || ' '
		|| count(*) FILTER (WHERE status <> 'completed')
		FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_type = 'iteration'")" \
		"1000 0 999 5 0" \
		"$how: one iteration line per element (0..999) and per repetition (5), all completed"
}

# ---------------------------------------------------------------------------
# Through the workers, sampling progress as it runs.
t0=$(date +%s%N)
id=$(psql_q "SELECT chainexec.chain_execute('cp-all-$S', $ITEMS)")
samples=()
for _ in $(seq 1 600); do
	p=$(psql_q "SELECT (chainexec.chain_status('$id')->'progress'->>'percent') || ' ' || (chainexec.chain_status('$id')->>'status')")
	samples+=("${p% *}")
	case "${p#* }" in completed|failed|cancelled|timeout|compensated) break ;; esac
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
diag "through the workers: $ms ms; progress samples: ${samples[*]:0:12} ... ${samples[*]: -4}"
check_all "$id" "workers"
mono=t
prev=0
for v in "${samples[@]}"; do
	[ -n "$v" ] || continue
	if [ "$v" -lt "$prev" ]; then mono=f; fi
	prev=$v
done
is "$mono $prev" "t 100" "workers: progress never decreases while the iterations and the child run, and ends at 100"
is "$(psql_q "SELECT jsonb_array_length(chainexec.chain_status('$id')->'children')
	|| ' ' || (chainexec.chain_status('$id')->'children'->0->>'status')")" "1 completed" \
	"chain_status shows the child under its parent"

# ---------------------------------------------------------------------------
# Through CALL chain_run (in the session; the child too).
t0=$(date +%s%N)
res=$(psql_q "CALL chainexec.chain_run('cp-all-$S', $ITEMS)")
ms=$((($(date +%s%N) - t0) / 1000000))
rid=$(psql_q "SELECT '$res'::jsonb->>'executionId'")
diag "through chain_run: $ms ms"
check_all "$rid" "chain_run"
is "$(psql_q "SELECT (a.context - 'n') = (b.context - 'n') FROM chainexec.universal_transactions a, chainexec.universal_transactions b
	WHERE a.id = '$id' AND b.id = '$rid'")" t "the workers' final context equals chain_run's"

# ---------------------------------------------------------------------------
# A child that fails fails the parent's step with the child's failure type.
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-failchild-$S", "steps": [
  {"id": 1, "name": "decline", "type": "sql", "sql": "SELECT chainexec.raise_failure(''card_declined'', ''insufficient funds'')"}]}', true);
SELECT chainexec.chain_define('{"id": "cp-failparent-$S", "steps": [
  {"id": 1, "name": "pay", "type": "chain", "chain": "cp-failchild-$S"}]}', true);
EOF
id=$(psql_q "SELECT chainexec.chain_execute('cp-failparent-$S')")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" failed "a failing child fails its parent"
is "$(psql_q "SELECT error->>'failure_type' FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_number = 1")" \
	card_declined "the parent's chain step fails with the child's failure type"
like "$(psql_q "SELECT error->>'message' FROM chainexec.universal_transactions WHERE id = '$id'")" "insufficient funds" \
	"the parent's error carries the child's message"

# A chain that runs itself stops at chainexec.max_chain_depth (8).
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-rec-$S", "steps": [
  {"id": 1, "name": "again", "type": "chain", "chain": "cp-rec-$S"}]}', true);
EOF
id=$(psql_q "SELECT chainexec.chain_execute('cp-rec-$S')")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" failed "a chain that runs itself ends (failed)"
is "$(psql_q "SELECT count(*) || ' ' || max((metadata->>'depth')::int) FROM chainexec.universal_transactions WHERE chain_id = 'cp-rec-$S'")" \
	"9 8" "the recursion stops at depth 8: the root and 8 nested children"
is "$(psql_q "SELECT l.error->>'failure_type' || ' ' || (l.error->>'sqlstate') FROM chainexec.universal_transactions t
	JOIN chainexec.universal_transaction_lines l ON l.organization_id = t.organization_id AND l.transaction_id = t.id
	WHERE t.chain_id = 'cp-rec-$S' AND t.metadata->>'depth' = '8'")" "validation_failed 54001" \
	"the deepest one's step fails with validation_failed (54001) instead of starting a ninth"

# A chain with concurrencyLimit N whose step starts a child of itself: the
# child needs a place, and when the execution and its ancestors hold all N
# of them, it could never have one (each of them waits for it): the step
# fails at once with validation_failed (55000) instead of waiting forever.
# With a place to spare, the child takes it and the nesting completes.
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-recl-$S", "concurrencyLimit": 2, "steps": [
  {"id": 1, "name": "dec", "type": "sql", "sql": "SELECT {n}::int - 1 AS m", "outputVariables": ["m"]},
  {"id": 2, "name": "again", "type": "chain", "chain": "cp-recl-$S", "input": {"n": "{m}"}, "conditionalExecution": "{n} > 0"}]}', true);
EOF
id=$(psql_q "SELECT chainexec.chain_execute('cp-recl-$S', '{\"n\": 1}')")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" completed \
	"concurrencyLimit 2: an execution and the child of its own chain hold both places and complete"
id=$(psql_q "SELECT chainexec.chain_execute('cp-recl-$S', '{\"n\": 2}')")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" failed \
	"concurrencyLimit 2: a grandchild of the same chain fails instead of waiting forever"
like "$(psql_q "SELECT l.error->>'failure_type' || ' ' || (l.error->>'sqlstate') || ' ' || (l.error->>'message') FROM chainexec.universal_transactions t
	JOIN chainexec.universal_transaction_lines l ON l.organization_id = t.organization_id AND l.transaction_id = t.id
	WHERE t.chain_id = 'cp-recl-$S' AND t.metadata->>'depth' = '1' AND t.metadata->'ancestors'->>0 = '$id' AND l.step_id = 2")" \
	"^validation_failed 55000 .*every place of chain" \
	"the child's step says why: its ancestors hold every place of the chain"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'cp-recl-$S' AND finished_at IS NULL")" 0 \
	"no execution of the chain is left waiting for a place"
# Two executions that each start a child of the chain at once, each
# holding one of its two places: each child would wait for the other's
# parent.  The second child start finds every place held by an execution
# that waits (its own parent, and the first one, whose child waits for a
# place) and fails; its parent ends, the first child takes its place.
# (Their first steps take 0.5 s, so that both hold their place before
# either starts its child; if one got through first, both complete.)
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-recl2-$S", "concurrencyLimit": 2, "steps": [
  {"id": 1, "name": "dec", "type": "sql", "sql": "SELECT {n}::int - 1 AS m FROM pg_sleep(0.5)", "outputVariables": ["m"]},
  {"id": 2, "name": "again", "type": "chain", "chain": "cp-recl2-$S", "input": {"n": "{m}"}, "conditionalExecution": "{n} > 0"}]}', true);
EOF
ids=$(psql_q "SELECT string_agg(chainexec.chain_execute('cp-recl2-$S', '{\"n\": 1}')::text, ' ') FROM generate_series(1, 2)")
for id in $ids; do psql_q "SELECT chainexec.chain_wait('$id', 30000)" >/dev/null; done
like "$(psql_q "SELECT string_agg(status, ' ' ORDER BY status) FROM chainexec.universal_transactions WHERE id IN ('${ids% *}', '${ids#* }')")" \
	"^completed (failed|completed)\$" "two executions recursing at once: one completes, the other's child fails instead of both waiting forever"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'cp-recl2-$S' AND finished_at IS NULL")" 0 \
	"no execution of the chain is left waiting for a place"

# A holder that waits for something else than its child is not blocked:
# H (place 1) completed its child X and waits at an external step; X,
# rolled back, compensates and needs a place; Q (place 2) starts a child,
# which waits for a place (no 55000), and everything ends once H's step is
# completed (X, a child, ends with H, cancelled).
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-fp-$S", "concurrencyLimit": 2, "steps": [
  {"id": 1, "name": "a", "type": "sql", "sql": "SELECT pg_sleep({secs}::float8)", "rollbackAction": "SELECT 1"},
  {"id": 2, "name": "sub", "type": "chain", "chain": "cp-fp-$S", "input": {"depth": 1, "hold": 0, "secs": 0},
   "conditionalExecution": "{depth} < 1", "outputVariables": ["subout"]},
  {"id": 3, "name": "hold", "type": "external", "conditionalExecution": "{hold} == 1"}]}', true);
EOF
h=$(psql_q "SELECT chainexec.chain_execute('cp-fp-$S', '{\"depth\": 0, \"hold\": 1, \"secs\": 0}')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$h' AND line_number = 3" waiting 20 >/dev/null
x=$(psql_q "SELECT id FROM chainexec.universal_transactions WHERE parent_id = '$h'")
q=$(psql_q "SELECT chainexec.chain_execute('cp-fp-$S', '{\"depth\": 0, \"hold\": 1, \"secs\": 1}')")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%(execution $q)'" 1 20 >/dev/null
psql_q "SELECT chainexec.chain_rollback('$x')" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE parent_id = '$q'" 1 20 >/dev/null
sleep 1
is "$(psql_q "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$q' AND line_number = 2")" waiting \
	"a child start waits for a place when a holder waits for something else than a child without one"
psql_q "SELECT chainexec.chain_step_complete('$h', 3, '{}')" >/dev/null
psql_q "SELECT chainexec.chain_wait('$h', 20000)" >/dev/null
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$q' AND line_number = 3" waiting 30 >/dev/null
psql_q "SELECT chainexec.chain_step_complete('$q', 3, '{}')" >/dev/null
psql_q "SELECT chainexec.chain_wait('$q', 20000)" >/dev/null
psql_q "SELECT chainexec.chain_wait('$x', 20000)" >/dev/null
is "$(psql_q "SELECT string_agg(status, ' ' ORDER BY created_at) FROM chainexec.universal_transactions WHERE id IN ('$h', '$x', '$q')")" \
	"completed cancelled completed" "then all end: the holder completes (its rolled-back child ends with it) and so does the other execution"

# ---------------------------------------------------------------------------
# Per element: retries, onFailure skip (null in the arrays), compensation of
# every completed element in reverse order when the execution fails.
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-comp-$S", "rollbackEnabled": true, "steps": [
  {"id": 1, "name": "each", "type": "sql", "forEach": "{items}", "maxConcurrency": 1, "onFailure": "skip",
   "retryConfig": {"maxRetries": 2, "baseDelayMs": 10, "retryOnErrors": ["database_busy"]},
   "sql": "SELECT CASE WHEN {item}::int = 2 AND {chain.attempt}::int = 1 THEN chainexec.raise_failure(''database_busy'', ''again'') WHEN {item}::int = 3 THEN chainexec.raise_failure(''bad_item'', ''no'') END AS x, {item}::int * 10 AS v",
   "outputVariables": ["v"],
   "rollbackAction": "INSERT INTO public.cp_comp_$S (exec, idx) VALUES ({chain.execution_id}::uuid, {index}::int + 0 * {v}::int)"},
  {"id": 2, "name": "boom", "type": "sql", "sql": "SELECT chainexec.raise_failure(''boom'', ''late'')"}]}', true);
EOF
id=$(psql_q "SELECT chainexec.chain_execute('cp-comp-$S', '{\"items\": [1, 2, 3, 4, 5]}')")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" compensated "forEach then a failure: compensated"
is "$(psql_q "SELECT context->>'v' FROM chainexec.universal_transactions WHERE id = '$id'")" "[10, 20, null, 40, 50]" \
	"onFailure skip leaves a null in the array; a retried element keeps its place"
is "$(psql_q "SELECT attempt || ' ' || status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_type = 'iteration' AND iteration = 1")" \
	"2 compensated" "an element is retried on its own line (attempt 2), then compensated"
is "$(psql_q "SELECT string_agg(idx::text, ',' ORDER BY seq) FROM public.cp_comp_$S WHERE exec = '$id'")" "4,3,1,0" \
	"each completed element is compensated once, in reverse order, seeing its own index and outputs"

# repeatUntil that never holds: fails after maxIterations.
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-never-$S", "steps": [
  {"id": 1, "name": "poll", "type": "sql", "repeatUntil": "n >= 100", "maxIterations": 3,
   "sql": "INSERT INTO public.cp_counter_$S VALUES ({chain.execution_id}::uuid, 1) ON CONFLICT (exec) DO UPDATE SET n = cp_counter_$S.n + 1 RETURNING n",
   "outputVariables": ["n"]}]}', true);
EOF
id=$(psql_q "SELECT chainexec.chain_execute('cp-never-$S')")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" failed "repeatUntil never true: the step fails"
is "$(psql_q "SELECT (error->>'failure_type') || ' ' || (SELECT count(*) FROM chainexec.universal_transaction_lines
	WHERE transaction_id = '$id' AND line_type = 'iteration') FROM chainexec.universal_transactions WHERE id = '$id'")" \
	"iterations_exhausted 3" "after maxIterations (3) iterations, with failure type iterations_exhausted"

# repeatUntil of a wait step holds no executor between iterations: three
# loops of 4 x 0.5 s waits, and an unrelated execution completes at once.
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-nap-$S", "steps": [
  {"id": 1, "name": "nap", "type": "wait", "waitMs": 500, "repeatUntil": "chain.step_id == 0", "maxIterations": 4,
   "onFailure": "warn"}]}', true);
SELECT chainexec.chain_define('{"id": "cp-quick-$S", "steps": [
  {"id": 1, "name": "q", "type": "sql", "sql": "SELECT 1 AS q", "outputVariables": ["q"]}]}', true);
EOF
naps=()
for i in 1 2 3; do naps+=("$(psql_q "SELECT chainexec.chain_execute('cp-nap-$S')")"); done
# (once the three loops wait; the time is the execution's own, from its
# creation to its end in the server: a client's clock would count psql
# start-ups, slow on a loaded machine)
poll_query_until "SELECT count(DISTINCT transaction_id) FROM chainexec.universal_transaction_lines
	WHERE transaction_id IN ('${naps[0]}', '${naps[1]}', '${naps[2]}') AND status = 'waiting'" 3 30 >/dev/null
q=$(psql_q "SELECT chainexec.chain_execute('cp-quick-$S')")
st=$(psql_q "SELECT chainexec.chain_wait('$q', 10000)->>'status'")
ms=$(psql_q "SELECT round(extract(epoch FROM finished_at - created_at) * 1000) FROM chainexec.universal_transactions WHERE id = '$q'")
is "$st $( [ "$ms" -lt 1200 ] && echo fast || echo "slow ($ms ms)")" "completed fast" \
	"three loops of wait steps hold no executor (each would hold one for 2 s): another execution completes meanwhile ($ms ms)"
is "$(psql_q "SELECT string_agg(chainexec.chain_wait(u, 10000)->>'status', ',') FROM unnest('{${naps[0]},${naps[1]},${naps[2]}}'::uuid[]) u")" \
	"completed,completed,completed" "the wait loops end (a step with onFailure warn goes on after maxIterations)"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '${naps[0]}' AND line_type = 'iteration' AND status = 'completed'")" \
	4 "each wait loop ran 4 iterations, each a line of its own"

# ---------------------------------------------------------------------------
# Cancelling the parent cancels its child and its iterations.
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-slowchild-$S", "steps": [
  {"id": 1, "name": "sleep", "type": "wait", "waitMs": 600000}]}', true);
SELECT chainexec.chain_define('{"id": "cp-cancel-$S", "steps": [
  {"id": 1, "name": "child", "type": "chain", "chain": "cp-slowchild-$S"},
  {"id": 2, "name": "each", "type": "chain", "chain": "cp-slowchild-$S", "forEach": "{items}", "maxConcurrency": 4,
   "parallelExecution": true}]}', true);
EOF
id=$(psql_q "SELECT chainexec.chain_execute('cp-cancel-$S', '{\"items\": [1,2,3,4,5,6,7,8,9,10]}')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE parent_id = '$id' AND status = 'waiting'" 5 30 ||
	diag "children: $(psql_q "SELECT string_agg(status, ',') FROM chainexec.universal_transactions WHERE parent_id = '$id'")"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_type = 'iteration' AND status = 'waiting'")" \
	4 "forEach over chain steps: 4 iterations (maxConcurrency) wait for their children"
is "$(psql_q "SELECT chainexec.chain_cancel('$id')")" t "chain_cancel of the parent"
is "$(psql_q "SELECT string_agg(DISTINCT status, ',') || ' ' || count(*) FROM chainexec.universal_transactions WHERE parent_id = '$id'")" \
	"cancelled 5" "its 5 children are cancelled with it"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND status IN ('pending', 'ready', 'waiting')")" \
	0 "no line of the parent is left open (iterations cancelled too)"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t
	ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.parent_id = '$id' AND l.status IN ('pending', 'ready', 'waiting')")" \
	0 "no line of a child is left open"

# A child completed by hand?  Its parent's line waits for the child only.
sql <<EOF >/dev/null
SELECT chainexec.chain_define('{"id": "cp-hold-$S", "steps": [
  {"id": 1, "name": "child", "type": "chain", "chain": "cp-slowchild-$S"}]}', true);
EOF
id=$(psql_q "SELECT chainexec.chain_execute('cp-hold-$S')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE parent_id = '$id' AND status = 'waiting'" 1 30 >/dev/null
got=$(psql_q "SELECT chainexec.chain_step_complete('$id', 1, '{}')" 2>&1)
like "$got" "waits for its child execution" "chain_step_complete on a chain step is refused (it completes when its child ends)"
child=$(psql_q "SELECT id FROM chainexec.universal_transactions WHERE parent_id = '$id'")
psql_q "SELECT chainexec.chain_cancel('$child')" >/dev/null
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" failed "cancelling the child fails the parent's step (failure type cancelled)"
is "$(psql_q "SELECT error->>'failure_type' FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_number = 1")" \
	cancelled "the parent's line says cancelled"

# Definition errors name the key.
like "$(psql_q "SELECT chainexec.chain_define('{\"id\": \"cp-bad-$S\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1\", \"maxConcurrency\": 2}]}')" 2>&1)" \
	'"maxConcurrency" of step "a" needs "forEach"' "maxConcurrency without forEach is refused"
like "$(psql_q "SELECT chainexec.chain_define('{\"id\": \"cp-bad-$S\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"chain\"}]}')" 2>&1)" \
	'needs "chain"' "a chain step without \"chain\" is refused"
like "$(psql_q "SELECT chainexec.chain_define('{\"id\": \"cp-bad-$S\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1\", \"forEach\": \"{x}\", \"repeatUntil\": \"x\"}]}')" 2>&1)" \
	'cannot have both' "forEach and repeatUntil together are refused"
like "$(psql_q "SELECT chainexec.chain_define('{\"id\": \"cp-bad-$S\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1\", \"repeatUntil\": \"x ==\"}]}')" 2>&1)" \
	'repeatUntil' "a syntax error in repeatUntil is reported at definition"
like "$(psql_q "SELECT chainexec.chain_define('{\"id\": \"cp-bad-$S\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1\", \"forEach\": \"{x} + 1\"}]}')" 2>&1)" \
	'must name a variable' "forEach must be a variable path"

# An empty forEach completes at once with empty arrays.
id=$(psql_q "SELECT chainexec.chain_execute('cp-comp-$S', '{\"items\": []}')")
psql_q "SELECT chainexec.chain_wait('$id', 30000)" >/dev/null
is "$(psql_q "SELECT context->>'v' FROM chainexec.universal_transactions WHERE id = '$id'")" "[]" \
	"forEach over an empty array: each output variable is an empty array"
id=$(psql_q "SELECT chainexec.chain_execute('cp-comp-$S', '{\"items\": 5}')")
psql_q "SELECT chainexec.chain_wait('$id', 30000)" >/dev/null
like "$(psql_q "SELECT status || ': ' || (error->>'message') FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_number = 1")" \
	"skipped: .*is not an array" "forEach over a value that is not an array fails the element-less step (onFailure skip applies)"

done_testing
