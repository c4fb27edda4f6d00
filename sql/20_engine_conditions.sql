--
-- 20_engine_conditions: conditionalExecution in-session (CALL chain_run).
--   expressions  == != > < >= <= && || ! ( ) ?: with the null and
--                coercion rules: a numeric-looking string compares as a
--                number against a number ("10" > 9), else text ("10" < "9");
--                null == null; every ordering comparison with null is false;
--                unset variables are null;
--   actions      truthy runs, falsy and 'skip' skip, 'continue' runs,
--                'fail' fails the execution, 'skip_to_step_N' skips this
--                step and those before step N;
--   routing      a condition that reads the step's own outputVariables is
--                taken after the step ran: skip_to_step_N skips the steps
--                between it and N, 'fail' fails the execution.
--
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.lines(r jsonb)
RETURNS TABLE (line int, step text, status text, failure text, message text)
LANGUAGE sql
AS $$
	SELECT line_number, step_name, status, error->>'failure_type', error->>'message'
	  FROM chainexec.universal_transaction_lines
	 WHERE transaction_id = (r->>'executionId')::uuid
	 ORDER BY line_number
$$;

-- ---------------------------------------------------------------------
-- Operators and their null / coercion rules: a step runs ("completed")
-- when its condition is true, else it is skipped.
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-cond-ops",
  "steps": [
    {"id": 1,  "name": "numeric_string_gt_number", "type": "template", "template": "ran", "outputVariables": ["r1"],
     "conditionalExecution": "{s10} > 9"},
    {"id": 2,  "name": "numeric_string_eq_number", "type": "template", "template": "ran", "outputVariables": ["r2"],
     "conditionalExecution": "{s10} == 10 && 10 == {s10} && {s10} >= 10.0"},
    {"id": 3,  "name": "text_compare_strings", "type": "template", "template": "ran", "outputVariables": ["r3"],
     "conditionalExecution": "{s10} > '9'"},
    {"id": 4,  "name": "text_compare_words", "type": "template", "template": "ran", "outputVariables": ["r4"],
     "conditionalExecution": "'apple' < \"banana\" && name == 'Ada' && name != 'ada'"},
    {"id": 5,  "name": "null_equals_null", "type": "template", "template": "ran", "outputVariables": ["r5"],
     "conditionalExecution": "{nv} == null && {unset} == null && {nv} == {unset} && null == null"},
    {"id": 6,  "name": "null_gt_one", "type": "template", "template": "ran", "outputVariables": ["r6"],
     "conditionalExecution": "{nv} > 1"},
    {"id": 7,  "name": "null_any_ordering", "type": "template", "template": "ran", "outputVariables": ["r7"],
     "conditionalExecution": "{nv} < 1 || {nv} >= 1 || {nv} <= 1 || {unset} < 'z' || null <= null"},
    {"id": 8,  "name": "null_not_equal_zero", "type": "template", "template": "ran", "outputVariables": ["r8"],
     "conditionalExecution": "{nv} != 0 && {nv} != '' && {nv} != false"},
    {"id": 9,  "name": "not_and_or_parens", "type": "template", "template": "ran", "outputVariables": ["r9"],
     "conditionalExecution": "!(flag) && (n >= 3 && n <= 3) || false"},
    {"id": 10, "name": "non_numeric_string_vs_number", "type": "template", "template": "ran", "outputVariables": ["r10"],
     "conditionalExecution": "name > 5"},
    {"id": 11, "name": "paths_and_indexes", "type": "template", "template": "ran", "outputVariables": ["r11"],
     "conditionalExecution": "order.lines.1.qty == 2 && {order.customer.tier} == 'gold'"},
    {"id": 12, "name": "falsy_empty_string", "type": "template", "template": "ran", "outputVariables": ["r12"],
     "conditionalExecution": "{empty}"},
    {"id": 13, "name": "falsy_zero", "type": "template", "template": "ran", "outputVariables": ["r13"],
     "conditionalExecution": "zero"},
    {"id": 14, "name": "truthy_object", "type": "template", "template": "ran", "outputVariables": ["r14"],
     "conditionalExecution": "order"},
    {"id": 15, "name": "ternary_continue", "type": "template", "template": "ran", "outputVariables": ["r15"],
     "conditionalExecution": "n > 2 ? 'continue' : 'skip'"},
    {"id": 16, "name": "ternary_skip", "type": "template", "template": "ran", "outputVariables": ["r16"],
     "conditionalExecution": "n > 100 ? 'continue' : 'skip'"},
    {"id": 17, "name": "reads_earlier_output", "type": "template", "template": "ran", "outputVariables": ["r17"],
     "conditionalExecution": "r1 == 'ran' && r6 == null"},
    {"id": 18, "name": "bool_literals", "type": "template", "template": "ran", "outputVariables": ["r18"],
     "conditionalExecution": "flag == false && true != false && 1.50 == 1.5"}
  ]
}$$, true);

CALL chainexec.chain_run('eng-cond-ops', $${
  "s10": "10", "nv": null, "flag": false, "n": 3, "name": "Ada", "empty": "", "zero": 0,
  "order": {"customer": {"tier": "gold"}, "lines": [{"qty": 1}, {"qty": 2}]}
}$$) \gset
SELECT :'result'::jsonb->>'status' AS status;
SELECT line, step, status FROM pg_temp.lines(:'result');

-- ---------------------------------------------------------------------
-- Actions before the step: skip, fail, skip_to_step_N
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-cond-actions",
  "steps": [
    {"id": 1, "name": "a", "type": "template", "template": "a", "outputVariables": ["va"]},
    {"id": 2, "name": "b", "type": "template", "template": "b", "outputVariables": ["vb"],
     "conditionalExecution": "mode == 'jump' ? 'skip_to_step_5' : (mode == 'stop' ? 'fail' : (mode == 'skip' ? 'skip' : 'continue'))"},
    {"id": 3, "name": "c", "type": "template", "template": "c", "outputVariables": ["vc"]},
    {"id": 4, "name": "d", "type": "template", "template": "d", "outputVariables": ["vd"]},
    {"id": 5, "name": "e", "type": "template", "template": "e {vb|'-'}{vc|'-'}{vd|'-'}", "outputVariables": ["ve"]}
  ]
}$$, true);

-- continue: everything runs
CALL chainexec.chain_run('eng-cond-actions', '{"mode": "walk"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;

-- skip: only step 2 is skipped
CALL chainexec.chain_run('eng-cond-actions', '{"mode": "skip"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;
SELECT line, step, status FROM pg_temp.lines(:'result');

-- skip_to_step_5: steps 2, 3 and 4 are skipped, 5 runs
CALL chainexec.chain_run('eng-cond-actions', '{"mode": "jump"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;
SELECT line, step, status FROM pg_temp.lines(:'result');

-- fail: the execution fails (business_rule_violation), later steps are cancelled
CALL chainexec.chain_run('eng-cond-actions', '{"mode": "stop"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error' AS error;
SELECT line, step, status, failure, message FROM pg_temp.lines(:'result');

-- ---------------------------------------------------------------------
-- Routing: the condition reads the step's own output, after it ran
-- ("validate, and if the data is poor skip to the proposal")
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-cond-routing",
  "steps": [
    {"id": 1, "name": "validate", "type": "sql",
     "sql": "SELECT CASE WHEN {text} = 'forbidden' THEN 'reject' WHEN length({text}) < 5 THEN 'poor' ELSE 'good' END AS quality",
     "outputVariables": ["quality"],
     "conditionalExecution": "quality == 'poor' ? 'skip_to_step_4' : (quality == 'reject' ? 'fail' : 'continue')"},
    {"id": 2, "name": "enrich", "type": "template", "template": "enriched", "outputVariables": ["enriched"]},
    {"id": 3, "name": "score", "type": "template", "template": "scored", "outputVariables": ["scored"]},
    {"id": 4, "name": "proposal", "type": "template", "template": "proposal ({quality})", "outputVariables": ["proposal"]}
  ]
}$$, true);

-- poor data: validate ran (completed), enrich and score skipped, proposal runs
CALL chainexec.chain_run('eng-cond-routing', '{"text": "hi"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;
SELECT line, step, status FROM pg_temp.lines(:'result');

-- good data: everything runs
CALL chainexec.chain_run('eng-cond-routing', '{"text": "hello world"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;

-- 'fail' after the step: its output is kept, the execution fails
CALL chainexec.chain_run('eng-cond-routing', '{"text": "forbidden"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context,
	   :'result'::jsonb->'error'->>'failure_type' AS failure, :'result'::jsonb->'error'->>'step' AS step;
SELECT line, step, status FROM pg_temp.lines(:'result');

-- ---------------------------------------------------------------------
-- Action words written bare, as the design documents write them: they
-- are literals, never variables (an unset variable would be null, which
-- is falsy and skips the step).
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-cond-bare",
  "steps": [
    {"id": 1, "name": "a", "type": "template", "template": "a", "outputVariables": ["va"],
     "conditionalExecution": "{x} == 5 ? skip_to_step_3 : continue"},
    {"id": 2, "name": "b", "type": "template", "template": "b", "outputVariables": ["vb"],
     "conditionalExecution": "{x} == 7 ? fail : ({x} == 8 ? {skip} : continue)"},
    {"id": 3, "name": "c", "type": "template", "template": "c {va|'-'}{vb|'-'}", "outputVariables": ["vc"]}
  ]
}$$, true);

-- x = 1: continue, everything runs
CALL chainexec.chain_run('eng-cond-bare', '{"x": 1}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;
SELECT line, step, status FROM pg_temp.lines(:'result');

-- x = 5: skip_to_step_3 skips step 1 and step 2
CALL chainexec.chain_run('eng-cond-bare', '{"x": 5}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;
SELECT line, step, status FROM pg_temp.lines(:'result');

-- x = 7: bare fail fails the execution at step 2
CALL chainexec.chain_run('eng-cond-bare', '{"x": 7}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error'->>'step' AS step;
SELECT line, step, status FROM pg_temp.lines(:'result');

-- x = 8: braced {skip} skips only step 2
CALL chainexec.chain_run('eng-cond-bare', '{"x": 8}') \gset
SELECT line, step, status FROM pg_temp.lines(:'result');

-- routing after the step, bare words: the seed chain's form
SELECT chainexec.chain_define($${
  "id": "eng-cond-bare-routing",
  "steps": [
    {"id": 1, "name": "validate", "type": "sql",
     "sql": "SELECT CASE WHEN length({text}) < 5 THEN 'incomplete' ELSE 'complete' END AS validation_status, length({text}) * 10 AS data_quality_score",
     "outputVariables": ["validation_status", "data_quality_score"],
     "conditionalExecution": "{validation_status} == 'incomplete' && {data_quality_score} < 70 ? skip_to_step_4 : continue"},
    {"id": 2, "name": "record", "type": "template", "template": "r", "outputVariables": ["rec"]},
    {"id": 3, "name": "research", "type": "template", "template": "s", "outputVariables": ["res"]},
    {"id": 4, "name": "proposal", "type": "template", "template": "p {rec|'-'}{res|'-'}", "outputVariables": ["proposal"]}
  ]
}$$, true);

CALL chainexec.chain_run('eng-cond-bare-routing', '{"text": "hi"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext'->>'proposal' AS proposal;
SELECT line, step, status FROM pg_temp.lines(:'result');

CALL chainexec.chain_run('eng-cond-bare-routing', '{"text": "hello world"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext'->>'proposal' AS proposal;
SELECT line, step, status FROM pg_temp.lines(:'result');
