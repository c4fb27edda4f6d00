--
-- 05_catalog: the catalog explains chainexec (\df+, \dv+, \dt+, \d+).
-- Every function of schema chainexec that PUBLIC may execute, every table
-- and view, and every column of those, has a description (pg_description);
-- the internal functions PUBLIC may execute say so.
-- Runs in chainexec_test, where the runner created the extension.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(7);

SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
	   WHERE p.pronamespace = 'chainexec'::regnamespace
		 AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
		 AND pg_catalog.obj_description(p.oid, 'pg_proc') IS NULL
	   ORDER BY 1$$,
	'every function PUBLIC may execute has a description');

SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
	   WHERE p.pronamespace = 'chainexec'::regnamespace
		 AND p.proname LIKE '\_%'
		 AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
		 AND pg_catalog.obj_description(p.oid, 'pg_proc') NOT LIKE 'internal%'
		 AND p.proname NOT IN ('_progress', '_run_one')
	   ORDER BY 1$$,
	'the description of every internal function (named _...) PUBLIC may execute says it is internal');

SELECT is_empty(
	$$SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
	   WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
		 AND pg_catalog.obj_description(c.oid, 'pg_class') IS NULL
	   ORDER BY 1$$,
	'every table and view has a description');

SELECT is_empty(
	$$SELECT c.oid::regclass::text || '.' || a.attname FROM pg_catalog.pg_class c
	   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	   WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind IN ('v', 'm')
		 AND pg_catalog.col_description(c.oid, a.attnum) IS NULL
	   ORDER BY 1$$,
	'every column of every view has a description');

SELECT is_empty(
	$$SELECT c.oid::regclass::text || '.' || a.attname FROM pg_catalog.pg_class c
	   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	   WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind IN ('r', 'p')
		 AND pg_catalog.col_description(c.oid, a.attnum) IS NULL
	   ORDER BY 1$$,
	'every column of every table has a description');

-- What \df+ shows for one function, as a person reads it.
SELECT matches(pg_catalog.obj_description('chainexec.chain_define(jsonb, boolean)'::regprocedure, 'pg_proc'),
	'^validate and store a new version of a chain',
	'chain_define is described');

-- The extension itself (\dx).
SELECT isnt(pg_catalog.obj_description(e.oid, 'pg_extension'), NULL, 'the extension has a description')
  FROM pg_catalog.pg_extension e WHERE e.extname = 'chainexec';

SELECT * FROM finish();
ROLLBACK;
