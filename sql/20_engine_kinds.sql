--
-- 20_engine_kinds: every step kind run in-session with CALL chain_run.
--   sql       {var} placeholders are bound as parameters (a hostile value
--             stays data), {qty}::int casts, RETURNING columns become
--             variables filtered by outputVariables, rowCount on the line;
--   function  a handler registered with chain_register_handler receives
--             {"input", "variables", "step", "execution_id", "chain_id"};
--   template  inline and registered, several outputVariables from a JSON
--             object text, defaults, paths, ternaries, {input};
--   built-ins {chain.execution_id} and the other chain.* variables;
--   timeoutMs enforced on pg_sleep (execution_timeout, 57014).
-- Only stable fields are shown: no ids, timestamps or durations.
--
SET client_min_messages = warning;
CREATE SCHEMA eng_kinds;
SET search_path = eng_kinds, public;

-- The result of chain_run without what changes from run to run.
CREATE FUNCTION pg_temp.summary(r jsonb)
RETURNS jsonb
LANGUAGE sql
AS $$
	SELECT jsonb_build_object('status', r->'status', 'finalContext', r->'finalContext',
							  'outputs', r->'outputs', 'error', r->'error',
							  'metadata', (r->'metadata') - 'startTime' - 'endTime' - 'totalDuration')
$$;

-- The lines of an execution, in order, with their stable fields.
CREATE FUNCTION pg_temp.lines(r jsonb)
RETURNS TABLE (line int, type text, step text, status text, attempt int,
			   input jsonb, output jsonb, failure text, sqlstate text, message text)
LANGUAGE sql
AS $$
	SELECT line_number, line_type, step_name, status, attempt, input, output,
		   error->>'failure_type', error->>'sqlstate', error->>'message'
	  FROM chainexec.universal_transaction_lines
	 WHERE transaction_id = (r->>'executionId')::uuid
	 ORDER BY line_number
$$;

-- ---------------------------------------------------------------------
-- sql steps
-- ---------------------------------------------------------------------
CREATE TABLE t (id int PRIMARY KEY, note text, qty int);

SELECT chainexec.chain_define($${
  "id": "eng-kinds-sql",
  "steps": [
    {"id": 1, "name": "insert_row", "type": "sql",
     "sql": "INSERT INTO eng_kinds.t (id, note, qty) VALUES ({id}::int, {note}, {qty}::int) RETURNING id AS row_id, note AS stored_note, qty * 2 AS doubled, 'not kept' AS extra",
     "outputVariables": ["row_id", "stored_note", "doubled"]},
    {"id": 2, "name": "count_rows", "type": "sql",
     "sql": "SELECT count(*)::int AS n_rows, bool_and(note = {note}) AS note_intact FROM eng_kinds.t"},
    {"id": 3, "name": "touch_rows", "type": "database_operation",
     "sql": "UPDATE eng_kinds.t SET qty = qty + {qty}::int WHERE id >= {row_id}::int"}
  ]
}$$, true);

-- The value is SQL text meant to end the statement and drop the table: it
-- is bound as a parameter, so it is stored as it is and the table stays.
CALL chainexec.chain_run('eng-kinds-sql', $${"id": 1, "note": "'); DROP TABLE eng_kinds.t; --", "qty": "21"}$$) \gset
SELECT jsonb_pretty(pg_temp.summary(:'result'));
SELECT line, type, step, status, attempt, input, output FROM pg_temp.lines(:'result');
SELECT * FROM t;

-- A value that does not fit the inferred type fails the step (22P02),
-- it is never spliced into the statement.
CALL chainexec.chain_run('eng-kinds-sql', '{"id": 2, "note": "x", "qty": "1; DROP TABLE eng_kinds.t"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error'->>'failure_type' AS failure,
	   :'result'::jsonb->'error'->>'sqlstate' AS sqlstate, :'result'::jsonb->'error'->>'message' AS message,
	   :'result'::jsonb->'error'->>'step' AS step;
SELECT count(*) AS rows_still_there FROM t;

-- ---------------------------------------------------------------------
-- function steps
-- ---------------------------------------------------------------------
CREATE TABLE handler_calls (arg jsonb);
CREATE FUNCTION h_price(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO eng_kinds.handler_calls VALUES (arg);
	RETURN jsonb_build_object('price', (arg->'variables'->>'qty')::int * 5,
							  'currency', 'EUR',
							  'ignored', 'not an output variable');
END
$$;
SELECT chainexec.chain_register_handler('eng_kinds.price', 'h_price(jsonb)');

SELECT chainexec.chain_define($${
  "id": "eng-kinds-fn",
  "steps": [
    {"id": 7, "name": "price", "type": "function", "instructionSet": "eng_kinds.price",
     "inputTemplate": "price {qty} units for {customer.name}",
     "inputVariables": ["qty"], "outputVariables": ["price", "currency"]},
    {"id": 8, "name": "price_again", "type": "instruction_set", "instructionSet": "eng_kinds.price"}
  ]
}$$, true);

CALL chainexec.chain_run('eng-kinds-fn', '{"qty": 4, "customer": {"name": "Ada"}}') \gset
SELECT jsonb_pretty(pg_temp.summary(:'result'));
SELECT line, step, status, input, output FROM pg_temp.lines(:'result');

-- The argument's shape: input (rendered inputTemplate, or null), variables
-- (inputVariables when given, else the whole context), step, ids.
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(arg) AS k) AS keys,
	   arg->'input' AS input, arg->'variables' AS variables, arg->'step' AS step,
	   arg->>'chain_id' AS chain_id,
	   arg->>'execution_id' = :'result'::jsonb->>'executionId' AS execution_id_matches
  FROM handler_calls ORDER BY arg->'step'->>'id';

-- A handler that returns something other than an object fails the step.
CREATE FUNCTION h_scalar(arg jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '42'::jsonb $$;
SELECT chainexec.chain_register_handler('eng_kinds.scalar', 'h_scalar(jsonb)');
SELECT chainexec.chain_define($${
  "id": "eng-kinds-fn-bad",
  "steps": [
    {"id": 1, "name": "scalar", "type": "function", "instructionSet": "eng_kinds.scalar"},
    {"id": 2, "name": "unknown", "type": "function", "instructionSet": "eng_kinds.not_registered"}
  ]
}$$, true);
CALL chainexec.chain_run('eng-kinds-fn-bad', '{}') \gset
SELECT line, step, status, failure, sqlstate, message FROM pg_temp.lines(:'result');

-- ---------------------------------------------------------------------
-- template steps
-- ---------------------------------------------------------------------
SELECT chainexec.chain_register_template('eng-kinds-letter',
	'Dear {customer.name|''customer''}, your {items.0.sku} ships {express ? ''tomorrow'' : ''next week''}.');

SELECT chainexec.chain_define($${
  "id": "eng-kinds-tpl",
  "steps": [
    {"id": 1, "name": "letter", "type": "template", "templateId": "eng-kinds-letter",
     "outputVariables": ["letter"]},
    {"id": 2, "name": "several", "type": "template_processing",
     "template": "{{\"grade\": \"{score >= 90 ? 'A' : 'B'}\", \"score\": {score}, \"city\": \"{customer.address.city}\", \"unused\": 1}}",
     "outputVariables": ["grade", "score_copy", "city"]},
    {"id": 3, "name": "not_json", "type": "template",
     "template": "plain {grade}, {{braces}}, {missing|'fallback'} and {nothing|null}|",
     "outputVariables": ["first", "second"]},
    {"id": 4, "name": "with_input", "type": "template",
     "inputTemplate": "ticket {ticket|'T-0'}",
     "template": "[{input}] for {customer.name|'you'}",
     "outputVariables": ["line"]},
    {"id": 5, "name": "no_outputs", "type": "template", "template": "just text {grade}"}
  ]
}$$, true);

CALL chainexec.chain_run('eng-kinds-tpl', '{"score": 93, "express": true, "customer": {"name": "Grace", "address": {"city": "Arlington"}}, "items": [{"sku": "B-52"}]}') \gset
SELECT jsonb_pretty(pg_temp.summary(:'result'));
SELECT line, step, status, input, output FROM pg_temp.lines(:'result');

-- Defaults and the other branch of the ternary.
CALL chainexec.chain_run('eng-kinds-tpl', '{"score": 70, "express": false, "customer": {"address": {"city": "Oslo"}}, "items": [{"sku": "Z"}], "ticket": "T-9"}') \gset
SELECT :'result'::jsonb->>'status' AS status,
	   :'result'::jsonb->'finalContext'->>'letter' AS letter,
	   :'result'::jsonb->'finalContext'->>'grade' AS grade,
	   :'result'::jsonb->'finalContext'->>'line' AS line;

-- A variable that is missing and has no default: insufficient_data naming it.
CALL chainexec.chain_run('eng-kinds-tpl', '{"score": 70, "express": false, "customer": {"name": "Al"}, "items": [{"sku": "Z"}]}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error'->>'step' AS step,
	   :'result'::jsonb->'error'->>'failure_type' AS failure, :'result'::jsonb->'error'->>'message' AS message;

-- A registered template that is not there.
SELECT chainexec.chain_define($${
  "id": "eng-kinds-tpl-missing",
  "steps": [{"id": 1, "name": "gone", "type": "template", "templateId": "eng-kinds-nowhere", "outputVariables": ["x"]}]
}$$, true);
CALL chainexec.chain_run('eng-kinds-tpl-missing', '{}') \gset
SELECT line, step, status, failure, sqlstate, message FROM pg_temp.lines(:'result');

-- ---------------------------------------------------------------------
-- built-in variables
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-kinds-builtins",
  "version": "label only",
  "steps": [
    {"id": 41, "name": "in_sql", "type": "sql",
     "sql": "SELECT {chain.execution_id}::uuid AS eid, {chain.id} AS cid, {chain.version}::int AS ver, {chain.step_id}::int AS sid, {chain.step_name} AS sname, {chain.attempt}::int AS att, {chain.organization_id}::uuid AS org"},
    {"id": 42, "name": "in_template", "type": "template",
     "template": "{chain.id} v{chain.version} step {chain.step_id} {chain.step_name} attempt {chain.attempt}",
     "outputVariables": ["text"]},
    {"id": 43, "name": "in_condition", "type": "template", "template": "ran",
     "conditionalExecution": "chain.step_id == 43 && chain.id == 'eng-kinds-builtins' && {chain.step_name} == 'in_condition'",
     "outputVariables": ["cond"]}
  ]
}$$, true);
CALL chainexec.chain_run('eng-kinds-builtins', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status,
	   (:'result'::jsonb->'finalContext') - 'eid' AS context_without_eid,
	   :'result'::jsonb->'finalContext'->>'eid' = :'result'::jsonb->>'executionId' AS eid_is_the_execution;

-- "chain" is reserved: not as an input variable, nor as an output, even
-- an undeclared one (a column of the row, a key of a handler's result).
CALL chainexec.chain_run('eng-kinds-builtins', '{"chain": {"id": "spoofed"}}');
SELECT chainexec.chain_define($${
  "id": "eng-kinds-reserved",
  "steps": [{"id": 1, "name": "spoof", "type": "sql", "sql": "SELECT 'spoofed' AS chain, 1 AS fine"}]
}$$, true);
CALL chainexec.chain_run('eng-kinds-reserved', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;
SELECT line, step, status, failure, sqlstate, message FROM pg_temp.lines(:'result');

-- ---------------------------------------------------------------------
-- timeoutMs: the step is cancelled; execution_timeout, SQLSTATE 57014
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-kinds-timeout",
  "steps": [
    {"id": 1, "name": "quick", "type": "sql", "sql": "SELECT pg_sleep(0.01) IS NULL AS slept", "timeoutMs": 5000},
    {"id": 2, "name": "sleepy", "type": "sql", "sql": "SELECT pg_sleep(30)", "timeoutMs": 200},
    {"id": 3, "name": "never", "type": "sql", "sql": "SELECT 1 AS one"}
  ]
}$$, true);
SELECT clock_timestamp() AS started \gset
CALL chainexec.chain_run('eng-kinds-timeout', '{}') \gset
SELECT clock_timestamp() - :'started'::timestamptz < interval '10 seconds' AS did_not_wait_30s;
SELECT jsonb_pretty(pg_temp.summary(:'result'));
SELECT line, step, status, attempt, failure, sqlstate, message FROM pg_temp.lines(:'result');
-- each line's duration is its attempt's: at least the time it slept
SELECT step_name, duration_ms >= CASE step_name WHEN 'quick' THEN 10 ELSE 200 END AS at_least_its_sleep,
	   duration_ms < 10000 AS under_10s
  FROM chainexec.universal_transaction_lines
 WHERE transaction_id = (:'result'::jsonb->>'executionId')::uuid AND duration_ms IS NOT NULL
 ORDER BY line_number;
-- the step's statement_timeout does not outlive it
SHOW statement_timeout;

RESET search_path;
