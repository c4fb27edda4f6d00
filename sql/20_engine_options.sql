--
-- 20_engine_options: the options of chain_execute / chain_run and the
-- checks on the way in.
--   idempotencyKey          a second call with the same key returns the first
--                           execution and starts nothing;
--   runAt                   lines are not due before it;
--   priority                copied to the lines (dispatch order);
--   version                 a specific active or deprecated version;
--   saveIntermediateResults false: no input/output kept on the lines;
--   maxRetries, timeout     (maxRetries is in 20_engine_failures);
--   skipValidation          input schema not applied;
--   input schema violations are rejected with every problem listed;
--   an unknown option is an error; chain_run refuses to run inside BEGIN.
--
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.try(q text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	st	text;
	msg	text;
	det	text;
	hnt	text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
							hnt = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || coalesce(E'\nDETAIL: ' || nullif(det, ''), '') || coalesce(E'\nHINT: ' || nullif(hnt, ''), '');
END
$$;

SELECT chainexec.chain_define($${
  "id": "eng-opts",
  "inputSchema": {
    "type": "object",
    "required": ["name", "qty"],
    "properties": {
      "name": {"type": "string", "minLength": 2},
      "qty":  {"type": "integer", "minimum": 1, "maximum": 10},
      "tier": {"type": "string", "enum": ["a", "b"], "default": "a"},
      "tags": {"type": "array", "items": {"type": "string"}}
    }
  },
  "steps": [
    {"id": 1, "name": "echo", "type": "sql",
     "sql": "SELECT {name} || '/' || {qty} || '/' || {tier|'none'} AS line, {chain.version}::int AS ran_version",
     "inputTemplate": "{name} x {qty}"}
  ]
}$$, true);
-- version 2 changes the separator; version 1 becomes deprecated
SELECT chainexec.chain_define($${
  "id": "eng-opts",
  "inputSchema": {
    "type": "object",
    "required": ["name", "qty"],
    "properties": {
      "name": {"type": "string", "minLength": 2},
      "qty":  {"type": "integer", "minimum": 1, "maximum": 10},
      "tier": {"type": "string", "enum": ["a", "b"], "default": "a"},
      "tags": {"type": "array", "items": {"type": "string"}}
    }
  },
  "steps": [
    {"id": 1, "name": "echo", "type": "sql",
     "sql": "SELECT {name} || ':' || {qty} || ':' || {tier|'none'} AS line, {chain.version}::int AS ran_version",
     "inputTemplate": "{name} x {qty}"}
  ]
}$$, true);

-- The active version, with the schema's default applied before validation.
CALL chainexec.chain_run('eng-opts', '{"name": "ab", "qty": 2}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;

-- version: a deprecated version still runs; a draft or unknown one does not.
CALL chainexec.chain_run('eng-opts', '{"name": "ab", "qty": 2}', '{"version": 1}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context,
	   :'result'::jsonb->'metadata'->'chainVersion' AS chain_version;
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '{"version": 9}')$$);
SELECT chainexec.chain_define(definition) FROM chainexec.chains WHERE chain_id = 'eng-opts' AND version = 2;
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '{"version": 3}')$$);

-- Input schema violations: all of them, in one error (chain_run and
-- chain_execute check alike).
CALL chainexec.chain_run('eng-opts', '{"name": "a", "qty": 0, "tier": "c", "tags": [1, "x"]}');
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "a", "qty": 0, "tier": "c", "tags": [1, "x"]}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"qty": 11.5}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '[1, 2]')$$);
SELECT count(*) AS executions_recorded_by_refused_calls
  FROM chainexec.universal_transactions WHERE chain_id = 'eng-opts' AND status = 'pending';

-- skipValidation: the input is taken as it is (no default either).
CALL chainexec.chain_run('eng-opts', '{"name": "a", "qty": 0}', '{"skipValidation": true}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;

-- Unknown options, and options of the wrong type.
CALL chainexec.chain_run('eng-opts', '{"name": "ab", "qty": 2}', '{"maxRetry": 1}');
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '{"maxRetry": 1}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '{"priority": "high"}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '{"skipValidation": "yes"}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '{"maxRetries": -1}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '{"idempotencyKey": ""}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '{"runAt": "not a time"}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('eng-opts', '{"name": "ab", "qty": 2}', '[]')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute('no-such-chain', '{}')$$);
SELECT pg_temp.try($$SELECT chainexec.chain_execute(NULL, '{}')$$);

-- saveIntermediateResults false: the lines keep no input and no output.
CALL chainexec.chain_run('eng-opts', '{"name": "ab", "qty": 3}', '{"saveIntermediateResults": false}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext'->>'line' AS line;
SELECT step_name, status, input, output FROM chainexec.universal_transaction_lines
 WHERE transaction_id = (:'result'::jsonb->>'executionId')::uuid;
-- (they are kept by default)
CALL chainexec.chain_run('eng-opts', '{"name": "ab", "qty": 3}') \gset
SELECT step_name, status, input, output FROM chainexec.universal_transaction_lines
 WHERE transaction_id = (:'result'::jsonb->>'executionId')::uuid;

-- saveIntermediateResults on the chain (the design documents set it there)
-- is the option's default; the option given to chain_run/chain_execute wins.
SELECT chainexec.chain_define($${
  "id": "eng-opts-nosave",
  "saveIntermediateResults": false,
  "steps": [{"id": 1, "name": "echo", "type": "sql", "sql": "SELECT {name}::text || '!' AS shout",
             "inputTemplate": "say {name}", "outputVariables": ["shout"]}]
}$$, true);
CALL chainexec.chain_run('eng-opts-nosave', '{"name": "ab"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext'->>'shout' AS shout;
SELECT step_name, status, input, output FROM chainexec.universal_transaction_lines
 WHERE transaction_id = (:'result'::jsonb->>'executionId')::uuid;
CALL chainexec.chain_run('eng-opts-nosave', '{"name": "cd"}', '{"saveIntermediateResults": true}') \gset
SELECT step_name, status, input, output FROM chainexec.universal_transaction_lines
 WHERE transaction_id = (:'result'::jsonb->>'executionId')::uuid;
SELECT chainexec.chain_execute('eng-opts-nosave', '{"name": "x"}') AS e1,
	   chainexec.chain_execute('eng-opts-nosave', '{"name": "x"}', '{"saveIntermediateResults": true}') AS e2 \gset
SELECT (SELECT metadata->'saveIntermediateResults' FROM chainexec.universal_transactions WHERE id = :'e1') AS chain_default,
	   (SELECT metadata->'saveIntermediateResults' FROM chainexec.universal_transactions WHERE id = :'e2') AS option_wins;
SELECT chainexec.chain_cancel(:'e1'), chainexec.chain_cancel(:'e2');
SELECT pg_temp.try($$SELECT chainexec.chain_define('{"id": "eng-opts-bad", "saveIntermediateResults": "no", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}')$$);

-- idempotencyKey: the second call returns the first execution's result,
-- with its input, and records nothing new.
CALL chainexec.chain_run('eng-opts', '{"name": "first", "qty": 1}', '{"idempotencyKey": "order-77"}') \gset
SELECT :'result'::jsonb->>'executionId' AS first_id \gset
CALL chainexec.chain_run('eng-opts', '{"name": "second", "qty": 2}', '{"idempotencyKey": "order-77"}') \gset
SELECT :'result'::jsonb->>'executionId' = :'first_id' AS same_execution,
	   :'result'::jsonb->'finalContext'->>'line' AS line;
SELECT chainexec.chain_execute('eng-opts', '{"name": "third", "qty": 3}', '{"idempotencyKey": "order-77"}')::text = :'first_id' AS execute_returns_it_too;
SELECT count(*) AS executions_with_key FROM chainexec.universal_transactions WHERE idempotency_key = 'order-77';
-- the key is per chain
SELECT chainexec.chain_define('{"id": "eng-opts-other", "steps": [{"id": 1, "name": "x", "type": "template", "template": "x"}]}', true);
CALL chainexec.chain_run('eng-opts-other', '{}', '{"idempotencyKey": "order-77"}') \gset
SELECT :'result'::jsonb->>'executionId' <> :'first_id' AS other_chain_other_execution;

-- runAt and priority: recorded on the header and the lines; nothing is due
-- before runAt.
SELECT chainexec.chain_execute('eng-opts', '{"name": "later", "qty": 1}',
							   '{"runAt": "2999-01-01 00:00:00+00", "priority": 7}') AS id \gset
SELECT status, priority, started_at IS NULL AS not_started FROM chainexec.universal_transactions WHERE id = :'id';
SELECT step_name, status, priority, not_before FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id';
SELECT chainexec._run_one(:'id') AS ran_something;
-- once due, it runs
UPDATE chainexec.universal_transaction_lines SET not_before = now() WHERE transaction_id = :'id';
SELECT chainexec._run_one(:'id') AS ran_something;
SELECT status, context->>'line' AS line FROM chainexec.universal_transactions WHERE id = :'id';

-- timeout: the execution's deadline (status timeout once it passes).
SELECT chainexec.chain_define($${
  "id": "eng-opts-slow",
  "steps": [
    {"id": 1, "name": "first", "type": "sql", "sql": "SELECT pg_sleep(0.3) IS NULL AS a"},
    {"id": 2, "name": "second", "type": "sql", "sql": "SELECT pg_sleep(30) IS NULL AS b"},
    {"id": 3, "name": "third", "type": "sql", "sql": "SELECT 1 AS c"}
  ]
}$$, true);
SELECT clock_timestamp() AS started \gset
CALL chainexec.chain_run('eng-opts-slow', '{}', '{"timeout": 1000}') \gset
SELECT clock_timestamp() - :'started'::timestamptz < interval '10 seconds' AS did_not_wait_30s;
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error' AS error;
SELECT step_name, status FROM chainexec.universal_transaction_lines
 WHERE transaction_id = (:'result'::jsonb->>'executionId')::uuid ORDER BY line_number;

-- The deadline also ends an execution whose next retry is due after it.
SELECT chainexec.chain_define($${
  "id": "eng-opts-retry-late",
  "steps": [
    {"id": 1, "name": "fails", "type": "sql", "sql": "SELECT 1/0",
     "retryConfig": {"maxRetries": 3, "backoffStrategy": "fixed", "baseDelayMs": 30000, "retryOnErrors": ["22012"]}}
  ]
}$$, true);
SELECT clock_timestamp() AS started \gset
CALL chainexec.chain_run('eng-opts-retry-late', '{}', '{"timeout": 300}') \gset
SELECT clock_timestamp() - :'started'::timestamptz < interval '10 seconds' AS did_not_wait_30s;
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error'->>'failure_type' AS failure;
SELECT step_name, status, attempt FROM chainexec.universal_transaction_lines
 WHERE transaction_id = (:'result'::jsonb->>'executionId')::uuid ORDER BY line_number;

-- chain_run commits after every step: not inside a transaction block.
BEGIN;
CALL chainexec.chain_run('eng-opts', '{"name": "ab", "qty": 2}');
ROLLBACK;
-- nor from a function
SELECT pg_temp.try($$CALL chainexec.chain_run('eng-opts', '{"name": "ab", "qty": 2}')$$);
-- but a DO block at top level may CALL it (it can commit)
SET client_min_messages = notice;
DO $$
DECLARE
	r jsonb;
BEGIN
	CALL chainexec.chain_run('eng-opts', '{"name": "do", "qty": 4}', '{}', r);
	RAISE NOTICE 'status %, line %', r->>'status', r->'finalContext'->>'line';
END
$$;
SET client_min_messages = warning;
