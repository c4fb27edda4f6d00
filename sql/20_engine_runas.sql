--
-- 20_engine_runas: steps run as the role that called chain_run, never as
-- the extension owner, and cannot get out of it.
--   a step touching a table the role may not read fails with
--   permission_denied (42501); SET ROLE, SET SESSION AUTHORIZATION,
--   set_config('role') and RESET ROLE in a step are refused; settings a
--   step changes end with it; the caller's search_path cannot put its own
--   functions in place of the catalog's in chainexec's bookkeeping (which
--   runs as the extension owner); a handler the role may not execute is
--   refused; chainexec._run_one is for superusers only.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_ce_engine_user;
CREATE ROLE regress_ce_engine_user;
CREATE SCHEMA eng_runas;
GRANT USAGE ON SCHEMA eng_runas TO regress_ce_engine_user;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO regress_ce_engine_user', current_database()); END $$;

CREATE TABLE eng_runas.secret (x int);
INSERT INTO eng_runas.secret VALUES (42);
CREATE TABLE eng_runas.mine (who text, session_who text);
GRANT SELECT, INSERT ON eng_runas.mine TO regress_ce_engine_user;

-- A handler that only the superuser may execute.
CREATE FUNCTION eng_runas.h_private(arg jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"private": true}'::jsonb $$;
REVOKE EXECUTE ON FUNCTION eng_runas.h_private(jsonb) FROM PUBLIC;
SELECT chainexec.chain_register_handler('eng_runas.private', 'eng_runas.h_private(jsonb)', true);

CREATE FUNCTION pg_temp.lines(r jsonb)
RETURNS TABLE (line int, step text, status text, failure text, sqlstate text, message text)
LANGUAGE sql
AS $$
	SELECT line_number, step_name, status, error->>'failure_type', error->>'sqlstate', error->>'message'
	  FROM chainexec.universal_transaction_lines
	 WHERE transaction_id = (r->>'executionId')::uuid
	 ORDER BY line_number
$$;

SET SESSION AUTHORIZATION regress_ce_engine_user;
SET client_min_messages = warning;

-- ---------------------------------------------------------------------
-- Privileges are the caller's
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-runas",
  "steps": [
    {"id": 1, "name": "write_mine", "type": "sql",
     "sql": "INSERT INTO eng_runas.mine VALUES (current_user, session_user) RETURNING who = {me} AS as_me"},
    {"id": 2, "name": "read_secret", "type": "sql", "sql": "SELECT x AS secret_x FROM eng_runas.secret"},
    {"id": 3, "name": "after", "type": "template", "template": "never", "outputVariables": ["after"]}
  ]
}$$, true);
CALL chainexec.chain_run('eng-runas', '{"me": "regress_ce_engine_user"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context,
	   :'result'::jsonb->'error'->>'failure_type' AS failure, :'result'::jsonb->'error'->>'sqlstate' AS sqlstate,
	   :'result'::jsonb->'error'->>'message' AS message, :'result'::jsonb->'error'->>'step' AS step;
SELECT * FROM pg_temp.lines(:'result');
SELECT owner FROM chainexec.universal_transactions WHERE id = (:'result'::jsonb->>'executionId')::uuid;
SELECT * FROM eng_runas.mine;

-- A handler the caller may not execute.
SELECT chainexec.chain_define($${
  "id": "eng-runas-handler",
  "steps": [{"id": 1, "name": "private", "type": "function", "instructionSet": "eng_runas.private"}]
}$$, true);
CALL chainexec.chain_run('eng-runas-handler', '{}') \gset
SELECT * FROM pg_temp.lines(:'result');

-- ---------------------------------------------------------------------
-- No way out of the role from a step
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-runas-escape",
  "steps": [
    {"id": 1, "name": "set_role", "type": "sql", "sql": "SET ROLE NONE", "onFailure": "warn"},
    {"id": 2, "name": "set_session_authorization", "type": "sql", "sql": "SET SESSION AUTHORIZATION DEFAULT", "onFailure": "warn"},
    {"id": 3, "name": "set_config_role", "type": "sql", "sql": "SELECT set_config('role', 'none', false) AS r", "onFailure": "warn"},
    {"id": 4, "name": "reset_role", "type": "sql", "sql": "RESET ROLE", "onFailure": "warn"},
    {"id": 5, "name": "set_local_role", "type": "sql", "sql": "SET LOCAL ROLE NONE", "onFailure": "warn"},
    {"id": 6, "name": "change_settings", "type": "sql",
     "sql": "SELECT set_config('search_path', 'pg_catalog', false) AS sp, set_config('work_mem', '77MB', false) AS wm, set_config('statement_timeout', '1', false) AS st"},
    {"id": 7, "name": "who_am_i", "type": "sql",
     "sql": "SELECT current_user::text AS who, current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout, pg_sleep(0.01) IS NULL AS slept"}
  ]
}$$, true);
CALL chainexec.chain_run('eng-runas-escape', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status,
	   (:'result'::jsonb->'finalContext') - 'sp' - 'wm' - 'st' AS context;
SELECT * FROM pg_temp.lines(:'result');
-- nothing a step set outlives it
SELECT current_user, current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
	   current_setting('search_path') AS search_path;

-- ---------------------------------------------------------------------
-- The caller's search_path does not reach the bookkeeping
-- ---------------------------------------------------------------------
CREATE SCHEMA eng_runas_evil;
CREATE TABLE eng_runas_evil.calls (who text);
CREATE FUNCTION eng_runas_evil.now()
RETURNS timestamptz
LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO eng_runas_evil.calls VALUES (current_user);
	RETURN pg_catalog.now();
END
$$;
CREATE FUNCTION eng_runas_evil.clock_timestamp()
RETURNS timestamptz
LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO eng_runas_evil.calls VALUES (current_user);
	RETURN pg_catalog.clock_timestamp();
END
$$;
GRANT INSERT ON eng_runas_evil.calls TO PUBLIC;
SET search_path = eng_runas_evil, pg_catalog;
SELECT chainexec.chain_define($${
  "id": "eng-runas-path",
  "steps": [{"id": 1, "name": "plain", "type": "sql", "sql": "SELECT 1 AS one"}]
}$$, true);
CALL chainexec.chain_run('eng-runas-path', '{}') \gset
SELECT chainexec.chain_execute('eng-runas-path', '{}') IS NOT NULL AS recorded;
-- the impostor is in reach of the caller's own queries
SELECT now() IS NOT NULL AS impostor_called;
RESET search_path;
SELECT :'result'::jsonb->>'status' AS status;
SELECT count(*) AS calls, count(*) FILTER (WHERE who <> current_user) AS calls_as_someone_else
  FROM eng_runas_evil.calls;

-- _run_one is for superusers.
SELECT chainexec._run_one((:'result'::jsonb->>'executionId')::uuid);

RESET SESSION AUTHORIZATION;
SET client_min_messages = warning;
-- every call of the impostors was made as the caller, none as a superuser
SELECT count(*) AS calls_as_superuser
  FROM eng_runas_evil.calls c JOIN pg_roles r ON r.rolname = c.who WHERE r.rolsuper;

DROP SCHEMA eng_runas_evil CASCADE;
DROP SCHEMA eng_runas CASCADE;
DROP OWNED BY regress_ce_engine_user;
DROP ROLE regress_ce_engine_user;
