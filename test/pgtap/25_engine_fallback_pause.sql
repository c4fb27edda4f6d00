-- A fallback line that a pause set back to pending runs after the resume
-- (issue 10, found by 30_control's random walk: the execution completed,
-- or failed with "no step can run", while the fallback of its failed step
-- was still pending).  Transitions through _run_one, in this transaction.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(5);

SELECT chainexec.chain_define('{"id": "tap-fb-pause", "steps": [
	{"id": 1, "name": "bad", "type": "sql", "sql": "SELECT 1 / 0 AS x", "onFailure": "fallback",
	 "fallbackStep": {"id": 10, "name": "fb", "type": "sql", "sql": "SELECT 2 AS x"}},
	{"id": 2, "name": "after", "type": "sql", "sql": "SELECT 3 AS y"}]}', true) IS NOT NULL AS defined \gset
SELECT chainexec.chain_execute('tap-fb-pause') AS e \gset

SELECT ok(chainexec._run_one(:'e'), 'the failing step ran');
SELECT is((SELECT status FROM chainexec.universal_transaction_lines
			WHERE transaction_id = :'e' AND line_type = 'fallback'), 'ready',
		  'its fallback is ready');
SELECT ok(chainexec.chain_pause(:'e') AND chainexec.chain_resume(:'e'), 'paused and resumed');
SELECT chainexec._run_one(:'e') AS r1, chainexec._run_one(:'e') AS r2, chainexec._run_one(:'e') AS r3 \gset
SELECT is((SELECT status FROM chainexec.universal_transactions WHERE id = :'e'), 'completed',
		  'the execution completes');
SELECT is((SELECT string_agg(line_type || ':' || status, ',' ORDER BY line_number)
			 FROM chainexec.universal_transaction_lines WHERE transaction_id = :'e'),
		  'step:failed,step:completed,fallback:completed', 'the fallback ran, then the next step');

SELECT * FROM finish();
ROLLBACK;
