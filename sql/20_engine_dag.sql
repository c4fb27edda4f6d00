--
-- 20_engine_dag: ordering, success conditions and the output.
--   DAG          parallelExecution and dependsOn; data dependencies found
--                by chainexec (a parallel step waits for the values it
--                reads); maxConcurrency (never more ready lines than it);
--                parallelStepsEnabled false (strictly sequential).
--                Readiness is watched one transition at a time with
--                chainexec._run_one() after chain_execute (no executor
--                serves this database, hence the warnings); a line is held
--                back by moving its not_before into the future.
--   success      successConditions false: failed, validation_failed;
--   output       outputSchema filters the output, the context stays whole.
--
SET client_min_messages = warning;

-- "step:status" of every line, in line order.
CREATE FUNCTION pg_temp.states(id uuid)
RETURNS text
LANGUAGE sql
AS $$
	SELECT string_agg(step_name || ':' || status, ' ' ORDER BY line_number)
	  FROM chainexec.universal_transaction_lines WHERE transaction_id = id
$$;

-- Hold a step back (not due), or release it.
CREATE FUNCTION pg_temp.hold(id uuid, step text, held boolean)
RETURNS void
LANGUAGE sql
AS $$
	UPDATE chainexec.universal_transaction_lines
	   SET not_before = CASE WHEN held THEN 'infinity' ELSE now() END
	 WHERE transaction_id = id AND step_name = step
$$;

-- ---------------------------------------------------------------------
-- Parallel branches, dependsOn and data dependencies
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-dag",
  "steps": [
    {"id": 1, "name": "a", "type": "template", "template": "A", "outputVariables": ["va"]},
    {"id": 2, "name": "b", "type": "template", "template": "B", "outputVariables": ["vb"], "parallelExecution": true},
    {"id": 3, "name": "c", "type": "template", "template": "{va}{vb}", "outputVariables": ["vc"], "dependsOn": [1, 2]},
    {"id": 4, "name": "d", "type": "template", "template": "{va}!", "outputVariables": ["vd"],
     "parallelExecution": true, "inputVariables": ["va"]},
    {"id": 5, "name": "e", "type": "template", "template": "{vc}+{vd}", "outputVariables": ["ve"],
     "inputVariables": ["vc", "vd"]}
  ]
}$$, true);

SELECT chainexec.chain_execute('eng-dag', '{}') AS id \gset
-- a and b have no predecessors; d is parallel but reads va, so it waits for a
SELECT pg_temp.states(:'id');
SELECT pg_temp.hold(:'id', 'b', true);
SELECT chainexec._run_one(:'id');
-- a done: d is ready although b is not; c waits for b (dependsOn); e waits
-- for d (the step before it) and for c (it reads vc)
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
-- nothing else is due while b is held back
SELECT chainexec._run_one(:'id');
SELECT pg_temp.hold(:'id', 'b', false);
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT status, context FROM chainexec.universal_transactions WHERE id = :'id';

-- The same chain under chain_run.
CALL chainexec.chain_run('eng-dag', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;

-- A step that reads a value only a fallback may provide waits for the
-- failed step's fallback (its outputs count as the step's).
SELECT chainexec.chain_define($${
  "id": "eng-dag-fallback",
  "steps": [
    {"id": 1, "name": "lookup", "type": "sql", "sql": "SELECT 1/0 AS rate", "onFailure": "fallback",
     "fallbackStep": {"id": 10, "name": "default_rate", "type": "template", "template": "7", "outputVariables": ["rate"]}},
    {"id": 2, "name": "other", "type": "template", "template": "x", "outputVariables": ["other"], "parallelExecution": true},
    {"id": 3, "name": "use_rate", "type": "template", "template": "rate {rate}", "outputVariables": ["used"],
     "parallelExecution": true, "inputVariables": ["rate"]}
  ]
}$$, true);
SELECT chainexec.chain_execute('eng-dag-fallback', '{}') AS id \gset
SELECT pg_temp.states(:'id');
SELECT pg_temp.hold(:'id', 'other', true);
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.hold(:'id', 'other', false);
SELECT chainexec._run_one(:'id');
SELECT chainexec._run_one(:'id');
SELECT status, context FROM chainexec.universal_transactions WHERE id = :'id';

-- ---------------------------------------------------------------------
-- maxConcurrency: five independent steps, at most two ready at once
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-dag-concurrency",
  "maxConcurrency": 2,
  "steps": [
    {"id": 1, "name": "p1", "type": "template", "template": "1", "outputVariables": ["v1"]},
    {"id": 2, "name": "p2", "type": "template", "template": "2", "outputVariables": ["v2"], "parallelExecution": true},
    {"id": 3, "name": "p3", "type": "template", "template": "3", "outputVariables": ["v3"], "parallelExecution": true},
    {"id": 4, "name": "p4", "type": "template", "template": "4", "outputVariables": ["v4"], "parallelExecution": true},
    {"id": 5, "name": "p5", "type": "template", "template": "5", "outputVariables": ["v5"], "parallelExecution": true}
  ]
}$$, true);
CREATE TEMP TABLE ready_counts (n int, ready int, done int);
SELECT chainexec.chain_execute('eng-dag-concurrency', '{}') AS id \gset
INSERT INTO ready_counts
SELECT 0, count(*) FILTER (WHERE status = 'ready'), count(*) FILTER (WHERE status = 'completed')
  FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id';
DO $$
DECLARE
	eid uuid := (SELECT id FROM chainexec.universal_transactions WHERE chain_id = 'eng-dag-concurrency');
	i int := 0;
BEGIN
	WHILE chainexec._run_one(eid) LOOP
		i := i + 1;
		INSERT INTO ready_counts
		SELECT i, count(*) FILTER (WHERE status = 'ready'), count(*) FILTER (WHERE status = 'completed')
		  FROM chainexec.universal_transaction_lines WHERE transaction_id = eid;
	END LOOP;
END
$$;
SELECT * FROM ready_counts ORDER BY n;
SELECT status FROM chainexec.universal_transactions WHERE id = :'id';

-- ---------------------------------------------------------------------
-- parallelStepsEnabled false: one step after the other, whatever the steps say
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-dag-sequential",
  "parallelStepsEnabled": false,
  "steps": [
    {"id": 1, "name": "a", "type": "template", "template": "A", "outputVariables": ["va"]},
    {"id": 2, "name": "b", "type": "template", "template": "B", "outputVariables": ["vb"], "parallelExecution": true},
    {"id": 3, "name": "c", "type": "template", "template": "C", "outputVariables": ["vc"], "dependsOn": [1]},
    {"id": 4, "name": "d", "type": "template", "template": "D", "outputVariables": ["vd"], "parallelExecution": true}
  ]
}$$, true);
SELECT chainexec.chain_execute('eng-dag-sequential', '{}') AS id \gset
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');
SELECT chainexec._run_one(:'id');
SELECT pg_temp.states(:'id');

-- ---------------------------------------------------------------------
-- Success conditions and outputSchema
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-dag-success",
  "successConditions": ["total > 100", "status == 'ok'"],
  "outputSchema": {"type": "object", "properties": {"total": {"type": "number"}, "status": {"type": "string"}}},
  "steps": [
    {"id": 1, "name": "calc", "type": "sql",
     "sql": "SELECT {a}::int * 10 AS total, 'ok' AS status, 'internal' AS working_note"}
  ]
}$$, true);

-- all conditions hold: completed; the output keeps only the schema's properties
CALL chainexec.chain_run('eng-dag-success', '{"a": 20}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'outputs' AS outputs,
	   :'result'::jsonb->'finalContext' AS context;

-- a false condition: failed with validation_failed naming it, though every step completed
CALL chainexec.chain_run('eng-dag-success', '{"a": 5}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'outputs' AS outputs,
	   :'result'::jsonb->'error' AS error,
	   :'result'::jsonb->'metadata'->'stepsExecuted' AS steps_executed;
