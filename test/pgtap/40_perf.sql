--
-- 40_perf: what keeps a step transition cheap (issue 15) and must stay so.
-- The status CHECKs of the execution tables are calls of C functions
-- (PostgreSQL reads back and plans every CHECK for each UPDATE; an IN list
-- of ten words costs a tenth of an executor's time), with the same rule
-- and the same constraint names as chainexec--0.1.0.sql.  The engine's
-- kept plans are made with enable_seqscan off, also when an ANALYZE made
-- them stale, though the setting is no longer saved and restored around
-- every query: no transition reads the lines with a sequential scan after
-- an ANALYZE of small tables (where one would be the cheapest plan).
-- Execution ids are time-ordered UUIDs (version 7, src/api/uuid7.c).
-- Runs in chainexec_test, where the runner created the extension.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(25);

SELECT is(pg_catalog.pg_get_constraintdef(c.oid),
		  'CHECK (chainexec._execution_status_valid(status))',
		  'universal_transactions_status_check calls a C function')
  FROM pg_catalog.pg_constraint c
 WHERE c.conname = 'universal_transactions_status_check'
   AND c.conrelid = 'chainexec.universal_transactions'::regclass;
SELECT is(pg_catalog.pg_get_constraintdef(c.oid),
		  'CHECK (chainexec._line_status_valid(status))',
		  'universal_transaction_lines_status_check calls a C function')
  FROM pg_catalog.pg_constraint c
 WHERE c.conname = 'universal_transaction_lines_status_check'
   AND c.conrelid = 'chainexec.universal_transaction_lines'::regclass;

SELECT ok(bool_and(chainexec._execution_status_valid(s)),
		  'every execution status of SPEC §2 is valid')
  FROM unnest(ARRAY['pending', 'running', 'paused', 'waiting', 'completed', 'failed',
					'cancelled', 'timeout', 'compensating', 'compensated']) s;
SELECT ok(bool_and(chainexec._line_status_valid(s)),
		  'every line status of SPEC §2 is valid')
  FROM unnest(ARRAY['pending', 'ready', 'running', 'waiting', 'completed', 'failed',
					'skipped', 'cancelled', 'compensated']) s;
SELECT ok(NOT bool_or(chainexec._execution_status_valid(s)),
		  'other words are not execution statuses')
  FROM unnest(ARRAY['ready', 'skipped', 'Running', 'running ', '', 'pend', 'pendingx']) s;
SELECT ok(NOT bool_or(chainexec._line_status_valid(s)),
		  'other words are not line statuses')
  FROM unnest(ARRAY['paused', 'timeout', 'compensating', 'READY', ' ready', '', 'complete']) s;

-- The constraints refuse what the old ones refused.
SELECT chainexec.chain_define('{"id": "tap-perf", "name": "perf", "steps": [
	{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1 AS v", "outputVariables": ["v"]}]}', true);
CREATE TEMP TABLE perf_ids ON COMMIT DROP AS
	SELECT chainexec.chain_execute('tap-perf', '{}') AS id;
SELECT throws_ok(
	$$UPDATE chainexec.universal_transactions SET status = 'ready' WHERE id = (SELECT id FROM perf_ids)$$,
	'23514', NULL, 'an execution status outside the rule is refused');
SELECT throws_ok(
	$$UPDATE chainexec.universal_transaction_lines SET status = 'paused' WHERE transaction_id = (SELECT id FROM perf_ids)$$,
	'23514', NULL, 'a line status outside the rule is refused');
SELECT lives_ok(
	$$UPDATE chainexec.universal_transactions SET status = 'compensating' WHERE id = (SELECT id FROM perf_ids)$$,
	'a valid execution status is accepted');
SELECT is(pg_catalog.pg_get_constraintdef(c.oid),
		  'CHECK (chainexec._line_type_valid(line_type))',
		  'universal_transaction_lines_line_type_check calls a C function')
  FROM pg_catalog.pg_constraint c
 WHERE c.conname = 'universal_transaction_lines_line_type_check'
   AND c.conrelid = 'chainexec.universal_transaction_lines'::regclass;
SELECT is(ARRAY(SELECT chainexec._line_type_valid(s)
				  FROM unnest(ARRAY['step', 'fallback', 'compensation', 'iteration',
									'Step', 'steps', 'ste', '', 'iteration ', 'chain']) s),
		  ARRAY[true, true, true, true, false, false, false, false, false, false],
		  'the four line types are valid, other words are not');
SELECT throws_ok(
	$$UPDATE chainexec.universal_transaction_lines SET line_type = 'chain' WHERE transaction_id = (SELECT id FROM perf_ids)$$,
	'23514', NULL, 'a line type outside the rule is refused');
SELECT lives_ok(
	$$UPDATE chainexec.universal_transaction_lines SET line_type = 'step' WHERE transaction_id = (SELECT id FROM perf_ids)$$,
	'a valid line type is accepted');
SELECT lives_ok(
	$$UPDATE chainexec.universal_transaction_lines SET status = 'skipped' WHERE transaction_id = (SELECT id FROM perf_ids)$$,
	'a valid line status is accepted');

-- Plans stay index plans after an ANALYZE (here of small tables).
CREATE TEMP TABLE perf_run ON COMMIT DROP AS
	SELECT chainexec.chain_execute('tap-perf', '{}') AS id;
SELECT ok(chainexec._run_one(id), 'a transition ran') FROM perf_run;
ANALYZE chainexec.universal_transaction_lines, chainexec.universal_transactions;
CREATE TEMP TABLE perf_run2 ON COMMIT DROP AS
	SELECT chainexec.chain_execute('tap-perf', '{}') AS id;
CREATE TEMP TABLE perf_scans ON COMMIT DROP AS
	SELECT seq_scan FROM pg_catalog.pg_stat_xact_user_tables
	 WHERE relid = 'chainexec.universal_transaction_lines'::regclass;
SELECT chainexec._run_one(id) FROM perf_run2;
SELECT is((SELECT seq_scan FROM pg_catalog.pg_stat_xact_user_tables
			WHERE relid = 'chainexec.universal_transaction_lines'::regclass) - s.seq_scan, 0::bigint,
		  'no transition after an ANALYZE scans the lines sequentially')
  FROM perf_scans s;

-- A line's output is assembled as jsonb (not printed and parsed again).
SELECT is(l.output, '{"rowCount": 1, "variables": {"v": 1}}'::jsonb, 'a sql step''s line output')
  FROM perf_run2 r JOIN chainexec.universal_transaction_lines l ON l.transaction_id = r.id AND l.line_number = 1;

-- Execution ids are time-ordered (version 7): new executions' rows are
-- neighbours in the primary keys, whatever the history.
CREATE TEMP TABLE perf_v7 ON COMMIT DROP AS
	SELECT chainexec._uuid7() AS u, pg_catalog.clock_timestamp() AS t
	  FROM generate_series(1, 1000);
SELECT is(count(*) FILTER (WHERE substr(u::text, 15, 1) = '7' AND substr(u::text, 20, 1) IN ('8', '9', 'a', 'b')),
		  1000::bigint, '_uuid7(): version 7, variant 10')
  FROM perf_v7;
SELECT is(count(DISTINCT u), 1000::bigint, '_uuid7(): 1000 calls, 1000 ids') FROM perf_v7;
SELECT ok(bool_and(abs(('x' || substr(replace(u::text, '-', ''), 1, 12))::bit(48)::bigint
					   - (extract(epoch FROM t) * 1000)::bigint) <= 1000),
		  '_uuid7(): its first 48 bits are the Unix time in milliseconds')
  FROM perf_v7;
CREATE TEMP TABLE perf_v7_first ON COMMIT DROP AS SELECT chainexec._uuid7() AS a;
SELECT FROM pg_sleep(0.002);
SELECT ok((SELECT a FROM perf_v7_first) < chainexec._uuid7(), 'an id made 2 ms later sorts after');
SELECT is(substr((SELECT id FROM perf_ids)::text, 15, 1), '7', 'chain_execute makes a version 7 execution id');

-- After a forEach of 500 items, the transitions of the next steps read
-- the execution's step lines, not its 500 iteration lines (the lines read
-- and the promotion go through universal_transaction_lines_steps).
SELECT chainexec.chain_define('{"id": "tap-perf-each", "name": "perf each", "steps": [
	{"id": 1, "name": "each", "type": "sql", "forEach": "{items}", "sql": "SELECT {item} AS v"},
	{"id": 2, "name": "b", "type": "sql", "sql": "SELECT 2 AS w"},
	{"id": 3, "name": "c", "type": "sql", "sql": "SELECT 3 AS x"}]}', true);
CREATE TEMP TABLE perf_each ON COMMIT DROP AS
	SELECT chainexec.chain_execute('tap-perf-each',
		jsonb_build_object('items', (SELECT jsonb_agg(g) FROM generate_series(1, 500) g))) AS id;
-- (one transition per statement, as chain_run runs them)
DO $$
DECLARE
	e uuid := (SELECT id FROM perf_each);
BEGIN
	FOR i IN 1..700 LOOP
		EXIT WHEN (SELECT l.status FROM chainexec.universal_transaction_lines l
					WHERE l.transaction_id = e AND l.line_type = 'step' AND l.step_id = 1) = 'completed';
		PERFORM chainexec._run_one(e);
	END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM chainexec.universal_transaction_lines l, perf_each e
			WHERE l.transaction_id = e.id AND l.line_type = 'iteration' AND l.status = 'completed'),
		  500::bigint, 'the forEach ran its 500 iterations');
CREATE TEMP TABLE perf_fetch ON COMMIT DROP AS
	SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) AS n FROM pg_catalog.pg_stat_xact_user_tables
	 WHERE relid = 'chainexec.universal_transaction_lines'::regclass;
DO $$
BEGIN
	FOR i IN 1..5 LOOP
		PERFORM chainexec._run_one((SELECT id FROM perf_each));
	END LOOP;
END
$$;
SELECT cmp_ok((SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) FROM pg_catalog.pg_stat_xact_user_tables
				WHERE relid = 'chainexec.universal_transaction_lines'::regclass) - f.n, '<', 100::bigint,
			  'the two steps after the forEach read fewer than 100 lines, not its 500 iteration lines')
  FROM perf_fetch f;

-- Two transitions in one statement: the second sees what the first wrote
-- (the iterations it made, and their items).
CREATE TEMP TABLE perf_each2 ON COMMIT DROP AS
	SELECT chainexec.chain_execute('tap-perf-each', '{"items": [1, 2, 3]}') AS id;
SELECT count(*) FROM (SELECT chainexec._run_one(id) FROM perf_each2
					  UNION ALL SELECT chainexec._run_one(id) FROM perf_each2) calls;
SELECT is((SELECT string_agg(l.line_type || ':' || l.status, ' ' ORDER BY l.line_number)
			 FROM chainexec.universal_transaction_lines l, perf_each2 e WHERE l.transaction_id = e.id),
		  'step:waiting step:pending step:pending iteration:completed iteration:ready iteration:ready',
		  'two transitions in one statement: the second runs an iteration the first made, with its item');

SELECT * FROM finish();
ROLLBACK;
