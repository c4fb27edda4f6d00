--
-- 30_tenancy: who sees and controls which executions.
--   row-level security: a role sees only the executions it owns (or whose
--   owner role it is a member of); chainexec_admin sees all; control
--   functions refuse other roles' executions; chainexec.organization_id
--   confines a session to one organization; chain_cleanup removes only what
--   the caller may see.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_ce_ann, regress_ce_ben, regress_ce_ann_team, regress_ce_boss;
CREATE ROLE regress_ce_ann;
CREATE ROLE regress_ce_ben;
CREATE ROLE regress_ce_ann_team IN ROLE regress_ce_ann;	-- a member of ann
CREATE ROLE regress_ce_boss IN ROLE chainexec_admin;

CREATE FUNCTION pg_temp.try(q text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	r text;
	st text;
	msg text;
BEGIN
	EXECUTE q INTO r;
	RETURN 'ok: ' || coalesce(r, 'null');
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	RETURN st || ': ' || regexp_replace(msg, '[0-9a-f]{8}-[0-9a-f-]{27}', '<id>', 'g');
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

CREATE TABLE tenancy_ids (who text PRIMARY KEY, id uuid);
GRANT SELECT, INSERT ON tenancy_ids TO PUBLIC;

-- ann defines a chain and starts two executions (no executor serves this
-- database, so they wait: good for control tests)
SET SESSION AUTHORIZATION regress_ce_ann;
SET client_min_messages = error;
SELECT chainexec.chain_define('{"id": "ten-chain", "steps": [{"id": 1, "name": "one", "type": "sql", "sql": "SELECT 1 AS one"}]}', true);
INSERT INTO tenancy_ids SELECT 'ann1', chainexec.chain_execute('ten-chain', '{}');
INSERT INTO tenancy_ids SELECT 'ann2', chainexec.chain_execute('ten-chain', '{}');
SELECT count(*) AS ann_sees FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
RESET SESSION AUTHORIZATION;

-- ben sees none of them, and can neither read nor control them
SET SESSION AUTHORIZATION regress_ce_ben;
SELECT count(*) AS ben_sees_executions FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
SELECT count(*) AS ben_sees_lines FROM chainexec.universal_transaction_lines l
  JOIN tenancy_ids i ON i.id = l.transaction_id;
SELECT count(*) AS ben_sees_view FROM chainexec.executions WHERE chain_id = 'ten-chain';
SELECT pg_temp.try(format('SELECT chainexec.chain_status(%L)', id)) FROM tenancy_ids WHERE who = 'ann1';
SELECT pg_temp.try(format('SELECT chainexec.chain_cancel(%L)', id)) FROM tenancy_ids WHERE who = 'ann1';
SELECT pg_temp.try(format('SELECT chainexec.chain_pause(%L)', id)) FROM tenancy_ids WHERE who = 'ann1';
SELECT pg_temp.try(format('SELECT chainexec.chain_rollback(%L)', id)) FROM tenancy_ids WHERE who = 'ann1';
SELECT pg_temp.try(format('SELECT chainexec.chain_wait(%L, 0)', id)) FROM tenancy_ids WHERE who = 'ann1';
-- ben cannot write the tables directly either
SELECT pg_temp.try('UPDATE chainexec.universal_transactions SET status = ''cancelled''');
SELECT pg_temp.try('DELETE FROM chainexec.universal_transaction_lines');
-- ben may run ann's chain: the execution is ben's, and runs with ben's privileges
SELECT pg_temp.try('SELECT chainexec.chain_execute(''ten-chain'')::text IS NOT NULL');
SELECT count(*) AS ben_sees_own FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
RESET SESSION AUTHORIZATION;

-- a member of ann's role controls ann's executions
SET SESSION AUTHORIZATION regress_ce_ann_team;
SELECT count(*) AS team_sees FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
SELECT pg_temp.try(format('SELECT chainexec.chain_cancel(%L, ''by the team'')', id)) FROM tenancy_ids WHERE who = 'ann1';
RESET SESSION AUTHORIZATION;

-- chainexec_admin sees and controls all
SET SESSION AUTHORIZATION regress_ce_boss;
SELECT count(*) AS boss_sees FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
SELECT pg_temp.try(format('SELECT chainexec.chain_pause(%L)', id)) FROM tenancy_ids WHERE who = 'ann2';
RESET SESSION AUTHORIZATION;

SELECT w.who, t.status FROM tenancy_ids w JOIN chainexec.universal_transactions t ON t.id = w.id ORDER BY w.who;

-- Organizations: a session that names one sees only that organization's
-- chains and executions (a superuser bypasses row-level security, so ann).
SET SESSION AUTHORIZATION regress_ce_ann;
SET chainexec.organization_id = '22222222-2222-2222-2222-222222222222';
SELECT count(*) AS other_org_sees FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
SELECT pg_temp.try(format('SELECT chainexec.chain_status(%L)', id)) FROM tenancy_ids WHERE who = 'ann2';
SELECT pg_temp.try('SELECT chainexec.chain_execute(''ten-chain'')');
-- the error says which organization was searched, and how to pick another
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT chainexec.chain_execute('ten-chain');
SELECT chainexec.chain_validate('ten-chain');
SELECT chainexec.chain_define('{"id": "ten-chain", "steps": [{"id": 1, "name": "one", "type": "sql", "sql": "SELECT 2 AS two"}]}', true) AS org2_version;
INSERT INTO tenancy_ids SELECT 'org2', chainexec.chain_execute('ten-chain', '{}');
SELECT count(*) AS org2_sees FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
SELECT organization_id, smart_code FROM chainexec.universal_transaction_lines
 WHERE transaction_id = (SELECT id FROM tenancy_ids WHERE who = 'org2');
SELECT pg_temp.try('SET chainexec.organization_id = ''not-a-uuid''');
SELECT pg_temp.try('SET chainexec.organization_id = ''2222-2222-2222-2222-2222-2222-2222-2222''');
SET chainexec.organization_id = '22222222222222222222222222222222';
SELECT chainexec.current_organization();
-- an execution must be able to start
SELECT pg_temp.try('SELECT chainexec.chain_execute(''ten-chain'', ''{}'', ''{"runAt": "infinity"}'')');
RESET chainexec.organization_id;
SELECT count(*) AS default_org_sees FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
SELECT pg_temp.try(format('SELECT chainexec.chain_status(%L)', id)) FROM tenancy_ids WHERE who = 'org2';
RESET SESSION AUTHORIZATION;

-- chain_cleanup removes only what the caller may see
UPDATE chainexec.universal_transactions SET finished_at = now() - interval '2 days', status = 'completed'
 WHERE chain_id = 'ten-chain';
SET SESSION AUTHORIZATION regress_ce_ben;
SELECT chainexec.chain_cleanup(interval '1 day') AS ben_removed;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS left_in_default_org FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
SET SESSION AUTHORIZATION regress_ce_ann;
SELECT chainexec.chain_cleanup(interval '1 day') AS ann_removed;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS left_everywhere FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';

-- clean up
DELETE FROM chainexec.universal_transactions WHERE chain_id = 'ten-chain';
SET chainexec.internal = on;
DELETE FROM chainexec.chains WHERE chain_id = 'ten-chain';
RESET chainexec.internal;
DROP TABLE tenancy_ids;
DROP ROLE regress_ce_ann_team, regress_ce_ann, regress_ce_ben, regress_ce_boss;
