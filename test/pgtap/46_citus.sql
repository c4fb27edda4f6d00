--
-- 46_citus: chainexec.citus_distribute() (SPEC §9 "Scale-out") without
-- Citus: refused with a clear error and nothing changed; PUBLIC may not
-- call it; the executors stay in single-node mode.  On a Citus cluster:
-- test/citus/cluster.sh.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(6);

SET LOCAL client_min_messages = warning;

SELECT has_function('chainexec', 'citus_distribute', ARRAY[]::text[]);
SELECT function_returns('chainexec', 'citus_distribute', ARRAY[]::text[], 'setof text',
	'citus_distribute returns one line per table');
SELECT ok(obj_description('chainexec.citus_distribute()'::regprocedure, 'pg_proc') IS NOT NULL,
	'citus_distribute has a comment');
SELECT ok(NOT has_function_privilege('public', 'chainexec.citus_distribute()', 'EXECUTE'),
	'PUBLIC may not call citus_distribute');
SELECT throws_ok($$SELECT * FROM chainexec.citus_distribute()$$, '0A000',
	'the citus extension is not installed in this database',
	'without Citus, citus_distribute is refused');
SELECT is((SELECT count(*) FROM pg_catalog.pg_class
			WHERE relnamespace = 'chainexec'::regnamespace AND relkind = 'r'),
	(SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_depend d ON d.objid = c.oid
	  AND d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'chainexec')
	  WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind = 'r'),
	'every table is still a plain table of the extension');

SELECT * FROM finish();
ROLLBACK;
