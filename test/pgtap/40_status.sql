--
-- 40_status: the status names of executions and lines are one list each.
-- The engine's table (chainexec._status_names, from src/engine/status.c)
-- names exactly the statuses SPEC lists, the tables' CHECK constraints are
-- that table's test (src/api/statuscheck.c), and its groups are the ones
-- the state machine documents.
-- And no PL/pgSQL or SQL function of the extension writes the execution
-- tables: every state change is the engine's (C).
-- Runs in chainexec_test, where the runner created the extension.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(15);

-- the CHECK on each table's status is the engine's own test of a name (src/api/statuscheck.c)
SELECT is(pg_get_constraintdef((SELECT oid FROM pg_constraint WHERE conname = 'universal_transactions_status_check')),
		  'CHECK (chainexec._execution_status_valid(status))',
		  'the status CHECK of universal_transactions asks the engine''s table');
SELECT is(pg_get_constraintdef((SELECT oid FROM pg_constraint WHERE conname = 'universal_transaction_lines_status_check')),
		  'CHECK (chainexec._line_status_valid(status))',
		  'the status CHECK of universal_transaction_lines asks the engine''s table');

-- the engine's names are the ones SPEC section 2 lists, and exactly those pass the CHECKs
SELECT set_eq(
	$$SELECT unnest(chainexec._status_names('execution'))$$,
	$$VALUES ('pending'), ('running'), ('paused'), ('waiting'), ('completed'), ('failed'),
			 ('cancelled'), ('timeout'), ('compensating'), ('compensated')$$,
	'the execution statuses of the engine are the ones SPEC lists for universal_transactions');
SELECT set_eq(
	$$SELECT unnest(chainexec._status_names('line'))$$,
	$$VALUES ('pending'), ('ready'), ('running'), ('waiting'), ('completed'), ('failed'),
			 ('skipped'), ('cancelled'), ('compensated')$$,
	'the line statuses of the engine are the ones SPEC lists for universal_transaction_lines');
SELECT is_empty(
	$$SELECT n FROM unnest(chainexec._status_names('execution')) AS n WHERE NOT chainexec._execution_status_valid(n)
	  UNION ALL
	  SELECT n FROM unnest(chainexec._status_names('line')) AS n WHERE NOT chainexec._line_status_valid(n)$$,
	'every status of the engine passes its table''s CHECK');
SELECT is(ARRAY[chainexec._execution_status_valid('ready'), chainexec._execution_status_valid('complete'),
				chainexec._execution_status_valid('completed '), chainexec._execution_status_valid(''),
				chainexec._line_status_valid('paused'), chainexec._line_status_valid('timeout'),
				chainexec._line_status_valid('Completed')],
		  ARRAY[false, false, false, false, false, false, false],
		  'a name that is not a status of its kind fails the CHECK (a line status of executions, a prefix, other case)');

SELECT is(chainexec._status_names('execution', 'terminal'),
		  ARRAY['completed', 'failed', 'cancelled', 'timeout', 'compensated'],
		  'terminal executions: completed, failed, cancelled, timeout, compensated');
SELECT is(chainexec._status_names('execution', 'live'),
		  ARRAY['pending', 'running', 'waiting'],
		  'live executions: pending, running, waiting');
SELECT is(chainexec._status_names('line', 'terminal'),
		  ARRAY['completed', 'failed', 'skipped', 'cancelled', 'compensated'],
		  'terminal lines: completed, failed, skipped, cancelled, compensated');
SELECT is(chainexec._status_names('line', 'open'),
		  ARRAY['pending', 'ready', 'waiting'],
		  'open lines: pending, ready, waiting');
SELECT is(chainexec._status_names('line', 'active'),
		  ARRAY['ready', 'running', 'waiting'],
		  'active lines: ready, running, waiting');

SELECT throws_ok($$SELECT chainexec._status_names('job')$$, '22023',
				 'unknown kind of status "job"', 'an unknown kind is an error');
SELECT throws_ok($$SELECT chainexec._status_names('line', 'live')$$, '22023',
				 'unknown group "live" of line statuses', 'a group of the other kind is an error');

-- every state change is in C: no PL/pgSQL or SQL function writes the execution tables
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
	   JOIN pg_catalog.pg_language l ON l.oid = p.prolang
	  WHERE p.pronamespace = 'chainexec'::regnamespace
		AND l.lanname IN ('plpgsql', 'sql')
		AND p.prosrc ~* '(insert\s+into|update|delete\s+from)\s+(only\s+)?(chainexec\s*\.\s*)?"?universal_transaction(_line)?s\M'
	  ORDER BY 1$$,
	'no PL/pgSQL or SQL function of chainexec writes universal_transactions or universal_transaction_lines');

-- the check finds such a function when there is one
CREATE FUNCTION chainexec._status_probe(uuid) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
	UPDATE chainexec.universal_transaction_lines SET status = 'failed' WHERE transaction_id = $1;
END $f$;
SELECT results_eq(
	$$SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
	   JOIN pg_catalog.pg_language l ON l.oid = p.prolang
	  WHERE p.pronamespace = 'chainexec'::regnamespace
		AND l.lanname IN ('plpgsql', 'sql')
		AND p.prosrc ~* '(insert\s+into|update|delete\s+from)\s+(only\s+)?(chainexec\s*\.\s*)?"?universal_transaction(_line)?s\M'
	  ORDER BY 1$$,
	$$VALUES ('chainexec._status_probe(uuid)')$$,
	'the same check finds a PL/pgSQL function that updates universal_transaction_lines');

SELECT * FROM finish();
ROLLBACK;
