--
-- 10_define: chain definitions.  chain_define takes the SPEC's format
-- (camelCase keys, the design documents' aliases), numbers versions,
-- replaces the current draft; chain_publish / chain_deprecate /
-- chain_reactivate / chain_archive move versions through their lifecycle
-- and refuse every illegal transition; versions that are not drafts are
-- immutable; handlers and templates are registered with checks;
-- chain_validate reports every input violation at once; and a role cannot
-- change another role's chains, handlers or templates (registering under
-- the same name makes a handler or template of one's own).
--
-- Errors are shown by pg_temp.try(), which runs a statement and prints
-- "ok: <value>" or "<SQLSTATE>: <message>" (with detail and hint when
-- asked), so that the expected output names the SQLSTATE of every refusal.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS ce_test_alice;
DROP ROLE IF EXISTS ce_test_bob;
DROP ROLE IF EXISTS ce_test_carol;
DROP ROLE IF EXISTS ce_test_admin;
RESET client_min_messages;

CREATE FUNCTION pg_temp.try(q text, detailed boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	r		text;
	n		bigint;
	st		text;
	msg		text;
	det		text;
	hnt		text;
BEGIN
	IF q ~* '^\s*(SELECT|VALUES)' THEN
		EXECUTE q INTO r;
		RETURN 'ok' || CASE WHEN coalesce(r, '') = '' THEN '' ELSE ': ' || r END;
	END IF;
	EXECUTE q;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN 'ok: ' || n || ' row(s)';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	IF detailed THEN
		RETURN st || ': ' || msg
			|| CASE WHEN det <> '' THEN E'\nDETAIL: ' || det ELSE '' END
			|| CASE WHEN hnt <> '' THEN E'\nHINT: ' || hnt ELSE '' END;
	END IF;
	RETURN st || ': ' || msg;
END
$$;

-- The versions of a chain, oldest first.
CREATE FUNCTION pg_temp.versions(cid text)
RETURNS TABLE (version int, status text, name text, smart_code text, published boolean)
LANGUAGE sql
AS $$
	SELECT c.version, c.status, c.name, c.smart_code, c.published_at IS NOT NULL
	  FROM chainexec.chains c
	 WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = cid
	 ORDER BY c.version
$$;

------------------------------------------------------------------------------
-- 1. The SPEC's format: every chain key, every step kind, camelCase keys.
------------------------------------------------------------------------------
SELECT chainexec.chain_define($json${
  "id": "def-order",
  "name": "Order fulfilment",
  "description": "Reserve stock, price, confirm, wait for approval",
  "version": "1.2",
  "category": "sales",
  "inputSchema": {
    "type": "object",
    "properties": {
      "order_id": {"type": "integer", "minimum": 1},
      "qty": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
      "email": {"type": "string", "pattern": "^[^@]+@[^@]+$", "maxLength": 200},
      "channel": {"type": "string", "enum": ["web", "phone"], "default": "web"},
      "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
      "express": {"type": "boolean", "default": false},
      "note": {"type": "string", "minLength": 3}
    },
    "required": ["order_id", "email"]
  },
  "outputSchema": {"type": "object", "properties": {"reservation_id": {"type": "integer"}}},
  "steps": [
    {"id": 1, "name": "reserve_stock", "description": "reserve",
     "type": "sql",
     "sql": "SELECT {order_id}::int * 10 + {qty}::int AS reservation_id",
     "inputVariables": ["order_id", "qty"],
     "outputVariables": ["reservation_id"],
     "retryConfig": {"maxRetries": 3, "backoffStrategy": "exponential",
                     "baseDelayMs": 500, "maxDelayMs": 10000, "jitter": true,
                     "retryOnErrors": ["database_busy", "api_timeout"]},
     "rollbackAction": "SELECT {reservation_id}",
     "onFailure": "fail", "timeoutMs": 10000, "maxMemoryMB": 64,
     "cache": {"ttlMs": 60000}, "circuitBreaker": {"failureThreshold": 5},
     "verificationQuery": "SELECT true", "metadata": {"anything": [1, {"goes": null}]}},
    {"id": 2, "name": "price", "type": "function",
     "instructionSet": "pricing.three_tier",
     "inputTemplate": "price order {order_id} for {email}",
     "inputVariables": ["order_id"], "outputVariables": ["total"],
     "dependsOn": [1], "onFailure": "warn"},
    {"id": 3, "name": "confirm", "type": "template",
     "template": "Dear {email}, {{order}} {order_id} costs {total|'n/a'}.",
     "outputVariables": ["confirmation"],
     "conditionalExecution": "{express} == false || {qty} > 0",
     "parallelExecution": true,
     "fallbackStep": {"id": 30, "name": "confirm_plain", "type": "sql", "sql": "SELECT 'plain' AS confirmation"}},
    {"id": 4, "name": "approve", "type": "external", "inputTemplate": "approve {order_id}",
     "timeoutMs": 86400000, "onFailure": "skip"},
    {"id": 5, "name": "cool_down", "type": "wait", "waitMs": 60000}
  ],
  "rollbackEnabled": true,
  "maxExecutionTime": 300000,
  "parallelStepsEnabled": true,
  "maxConcurrency": 4,
  "successConditions": ["reservation_id != null", "{qty} >= 1"],
  "notify": "lifecycle",
  "performanceTargets": {"p95Ms": 2000},
  "retryBudget": {"maxRetries": 10},
  "searchPath": "public",
  "metadata": {"owner": "sales-team"}
}$json$);

-- The definition is stored as given, one draft row.
SELECT * FROM pg_temp.versions('def-order');
SELECT definition->'steps'->2->'fallbackStep'->>'name' AS fallback,
       definition->>'version' AS label, created_by = current_user::regrole AS created_by_me
  FROM chainexec.chains WHERE chain_id = 'def-order';

-- The design documents' aliases, and backoffMs for baseDelayMs.
SELECT chainexec.chain_define($json${
  "id": "def-aliases",
  "name": "Design document spelling",
  "steps": [
    {"id": 1, "name": "extract", "type": "database_operation",
     "sql": "SELECT {raw}::text AS lead", "inputVariables": ["raw"], "outputVariables": ["lead"],
     "retryConfig": {"maxRetries": 2, "backoffMs": 250}},
    {"id": 2, "name": "operation_by_handler", "type": "database_operation",
     "instructionSet": "database-operations", "inputTemplate": "insert lead {lead}"},
    {"id": 3, "name": "score", "type": "instruction_set", "instructionSet": "scoring.v2"},
    {"id": 4, "name": "proposal", "type": "template_processing", "templateId": "proposal-email"},
    {"id": 5, "name": "crm_push", "type": "external_api", "timeoutMs": 30000}
  ]
}$json$);
SELECT jsonb_path_query_array(definition, '$.steps[*].type') AS types
  FROM chainexec.chains WHERE chain_id = 'def-aliases';

-- Unknown keys are errors, with the path and a suggestion.
SELECT pg_temp.try($q$SELECT chainexec.chain_define('{"id": "def-typo", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1", "retryConfg": {}}]}')$q$, true);
-- backoffMs and baseDelayMs together are refused.
SELECT pg_temp.try($q$SELECT chainexec.chain_define('{"id": "def-typo", "steps": [{"id": 1, "name": "a", "type": "database_operation", "sql": "SELECT 1", "retryConfig": {"backoffMs": 1, "baseDelayMs": 2}}]}')$q$);
-- An unknown type, with the aliases in the hint.
SELECT pg_temp.try($q$SELECT chainexec.chain_define('{"id": "def-typo", "steps": [{"id": 1, "name": "a", "type": "database_op", "sql": "SELECT 1"}]}')$q$, true);
-- A syntax error in an expression: the step, the key and the position.
SELECT pg_temp.try($q$SELECT chainexec.chain_define('{"id": "def-typo", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1", "conditionalExecution": "{x} > > 1"}]}')$q$);
-- Nothing was stored for the refused definitions.
SELECT count(*) FROM chainexec.chains WHERE chain_id = 'def-typo';
-- NULL is refused.
SELECT pg_temp.try($q$SELECT chainexec.chain_define(NULL)$q$);

------------------------------------------------------------------------------
-- 2. Versions: 1, 2, ...; a new definition replaces the current draft.
------------------------------------------------------------------------------
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v1", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}') AS v;
-- Still a draft: the same version is replaced.
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v1b", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 11"}]}') AS v;
SELECT * FROM pg_temp.versions('def-life');
SELECT definition->'steps'->0->>'sql' AS sql FROM chainexec.chains WHERE chain_id = 'def-life';
SELECT chainexec.chain_publish('def-life') AS published;
-- Publishing what is already active is a no-op that returns its version.
SELECT chainexec.chain_publish('def-life', 1) AS published;
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v2", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 2"}]}') AS v;
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v2b", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 22"}]}') AS v;
SELECT * FROM pg_temp.versions('def-life');
-- chain_define(..., publish => true): a new version, published at once;
-- the draft v2 is replaced by it, the active v1 becomes deprecated.
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v2c", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 23"}]}', true) AS v;
SELECT * FROM pg_temp.versions('def-life');
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v3", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 3"}]}') AS v;
SELECT chainexec.chain_publish('def-life', 3) AS published;
SELECT * FROM pg_temp.versions('def-life');

------------------------------------------------------------------------------
-- 3. Lifecycle: draft -> active -> deprecated -> active | archived.
-- Every illegal transition is refused with its SQLSTATE.
------------------------------------------------------------------------------
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v4", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 4"}]}') AS v;
-- now: v1 deprecated, v2 deprecated, v3 active, v4 draft
SELECT pg_temp.try($q$SELECT chainexec.chain_reactivate('def-life', 4)$q$, true);  -- draft
SELECT pg_temp.try($q$SELECT chainexec.chain_archive('def-life', 3)$q$, true);     -- active
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-life', 2)$q$, true);     -- deprecated
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-life', 9)$q$);           -- no such version
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-nothing')$q$, true);     -- no such chain
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-nothing', 1)$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_publish(NULL, 1)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_deprecate('def-nothing')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_reactivate('def-nothing', 1)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_archive('def-nothing', 1)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_reactivate('def-life', 0)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_archive('def-life', NULL)$q$);
-- Legal: deprecate the active version; then there is none to deprecate.
SELECT chainexec.chain_deprecate('def-life') AS deprecated;
SELECT pg_temp.try($q$SELECT chainexec.chain_deprecate('def-life')$q$);
-- No draft to publish without a version number once v4 is published.
SELECT chainexec.chain_publish('def-life') AS published;
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-life')$q$, true);
-- Reactivate a deprecated version: the active one (v4) becomes deprecated.
SELECT chainexec.chain_reactivate('def-life', 1) AS reactivated;
SELECT * FROM pg_temp.versions('def-life');
-- Reactivating the active version is a no-op.
SELECT chainexec.chain_reactivate('def-life', 1) AS reactivated;
-- Archive a deprecated version; archiving twice is a no-op.
SELECT chainexec.chain_archive('def-life', 2) AS archived;
SELECT chainexec.chain_archive('def-life', 2) AS archived;
-- An archived version cannot be published or reactivated.
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-life', 2)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_reactivate('def-life', 2)$q$);
-- Archive a draft.
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v5", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 5"}]}') AS v;
SELECT chainexec.chain_archive('def-life', 5) AS archived;
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-life', 5)$q$);
-- With no draft left, the next definition is version 6.
SELECT chainexec.chain_define('{"id": "def-life", "name": "life v6", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 6"}]}') AS v;
SELECT * FROM pg_temp.versions('def-life');

------------------------------------------------------------------------------
-- 4. Versions that are not drafts are immutable; one active version.
------------------------------------------------------------------------------
SELECT pg_temp.try($q$UPDATE chainexec.chains SET definition = '{}' WHERE chain_id = 'def-life' AND version = 1$q$, true);
SELECT pg_temp.try($q$UPDATE chainexec.chains SET name = 'renamed' WHERE chain_id = 'def-life' AND version = 4$q$);
SELECT pg_temp.try($q$UPDATE chainexec.chains SET version = 40 WHERE chain_id = 'def-life' AND version = 4$q$);
SELECT pg_temp.try($q$UPDATE chainexec.chains SET chain_id = 'def-other' WHERE chain_id = 'def-life' AND version = 2$q$);
SELECT pg_temp.try($q$UPDATE chainexec.chains SET status = 'draft' WHERE chain_id = 'def-life' AND version = 1$q$);
SELECT pg_temp.try($q$UPDATE chainexec.chains SET created_by = 'pg_monitor' WHERE chain_id = 'def-life' AND version = 3$q$);
SELECT pg_temp.try($q$DELETE FROM chainexec.chains WHERE chain_id = 'def-life' AND version = 2$q$, true);
-- A second active version is refused (the unique index), whatever the path.
SELECT pg_temp.try($q$UPDATE chainexec.chains SET status = 'active' WHERE chain_id = 'def-life' AND version = 4$q$);
SELECT count(*) AS active_versions FROM chainexec.chains WHERE chain_id = 'def-life' AND status = 'active';
-- A draft can be changed and deleted.
SELECT pg_temp.try($q$UPDATE chainexec.chains SET name = 'draft renamed' WHERE chain_id = 'def-life' AND version = 6$q$);
SELECT pg_temp.try($q$DELETE FROM chainexec.chains WHERE chain_id = 'def-life' AND version = 6$q$);
SELECT * FROM pg_temp.versions('def-life');

------------------------------------------------------------------------------
-- 5. Handlers: fn(jsonb) RETURNS jsonb; names checked; replacing.
------------------------------------------------------------------------------
CREATE FUNCTION def_handler_a(args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"a": 1}'::jsonb $$;
CREATE FUNCTION def_handler_b(args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"b": 2}'::jsonb $$;
CREATE FUNCTION def_handler_text(args text) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION def_handler_json(args jsonb) RETURNS json LANGUAGE sql AS $$ SELECT '{}'::json $$;
CREATE FUNCTION def_handler_two(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT a $$;
CREATE FUNCTION def_handler_set(args jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$ SELECT args $$;
CREATE PROCEDURE def_handler_proc(args jsonb) LANGUAGE sql AS $$ SELECT 1 $$;
CREATE AGGREGATE def_handler_agg(jsonb) (sfunc = jsonb_concat, stype = jsonb);

SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('pricing.three_tier', 'def_handler_a(jsonb)')$q$);
SELECT name, fn, registered_by = current_user::regrole AS mine FROM chainexec.handlers WHERE fn::text LIKE 'def\_handler%' ORDER BY name;
-- Replacing a handler of one's own.
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('pricing.three_tier', 'def_handler_b(jsonb)')$q$);
SELECT name, fn FROM chainexec.handlers WHERE fn::text LIKE 'def\_handler%' ORDER BY name;
-- Wrong signatures.
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('h', 'def_handler_text(text)')$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('h', 'def_handler_json(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('h', 'def_handler_two(jsonb, jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('h', 'def_handler_set(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('h', 'def_handler_proc(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('h', 'def_handler_agg(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('h', 'no_such_function(jsonb)')$q$);
-- Names.
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('has space', 'def_handler_a(jsonb)')$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('', 'def_handler_a(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('x''; DROP TABLE chainexec.chains; --', 'def_handler_a(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler(repeat('h', 129), 'def_handler_a(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler(repeat('h', 128), 'def_handler_a(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler(NULL, 'def_handler_a(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('h', NULL)$q$);
SELECT name, fn FROM chainexec.handlers WHERE fn::text LIKE 'def\_handler%' ORDER BY name;
DELETE FROM chainexec.handlers WHERE name = repeat('h', 128);

------------------------------------------------------------------------------
-- 6. Templates: syntax checked when registered, with the position.
------------------------------------------------------------------------------
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('proposal-email', 'Dear {client_name|''customer''}, {{see}} {items.0.name}.')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('bad-email', 'Dear {client_name, welcome')$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('bad-email', 'Total: {a ? ''x'' :}')$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('bad-email', 'a } b')$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('bad id', 'x')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('t', NULL)$q$);
-- Replacing one's own template.
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('proposal-email', 'Hello {client_name}')$q$);
SELECT template_id, body FROM chainexec.templates WHERE template_id IN ('proposal-email', 'bad-email', 't') ORDER BY template_id;

------------------------------------------------------------------------------
-- 7. chain_validate: every violation at once, defaults applied.
------------------------------------------------------------------------------
-- def-order is a draft only: validate reads it.
SELECT jsonb_pretty(chainexec.chain_validate('def-order', '{"order_id": 7, "email": "a@b.c"}'));
SELECT jsonb_pretty(chainexec.chain_validate('def-order',
	'{"order_id": 0, "qty": "many", "email": "nope", "channel": "fax", "tags": ["", 3], "note": "x", "extra": true}'));
SELECT jsonb_pretty(chainexec.chain_validate('def-order', '{}'));
-- The input with defaults applied (chain_execute stores this one).
SELECT jsonb_pretty(chainexec._input_check(definition, '{"order_id": 7, "email": "a@b.c"}'))
  FROM chainexec.chains WHERE chain_id = 'def-order';
SELECT chainexec._input_check(definition, '{"order_id": 7, "email": "a@b.c", "qty": 5, "channel": "phone", "express": true}')->'input' AS input
  FROM chainexec.chains WHERE chain_id = 'def-order';
SELECT chainexec._input_check(definition, '[1, 2]') AS not_an_object
  FROM chainexec.chains WHERE chain_id = 'def-order';
-- A chain without inputSchema accepts any object; NULL input means {}.
SELECT chainexec.chain_validate('def-life', '{"anything": [1, 2, 3]}');
SELECT chainexec.chain_validate('def-life', NULL);
SELECT chainexec.chain_validate('def-life');
-- Warnings: keys without effect for the step's kind, unset variables.
SELECT chainexec.chain_define('{"id": "def-warn", "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}, "steps": [{"id": 1, "name": "a", "type": "wait", "waitMs": 10, "sql": "SELECT 1"}, {"id": 2, "name": "b", "type": "sql", "sql": "SELECT {ghost}, {x}", "inputVariables": ["ghost", "x"]}]}') AS v;
SELECT jsonb_pretty(chainexec.chain_validate('def-warn'));
SELECT pg_temp.try($q$SELECT chainexec.chain_validate('def-nothing')$q$, true);

------------------------------------------------------------------------------
-- 8. Tenancy: the same chain id in another organization is another chain.
------------------------------------------------------------------------------
SET chainexec.organization_id = '11111111-1111-1111-1111-111111111111';
SELECT chainexec.chain_define('{"id": "def-life", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}') AS v;
SELECT * FROM pg_temp.versions('def-life');
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-order')$q$);
RESET chainexec.organization_id;
SELECT organization_id, chain_id, version, status FROM chainexec.chains
 WHERE chain_id = 'def-life' AND organization_id <> chainexec.current_organization();

------------------------------------------------------------------------------
-- 9. Permissions: a role cannot add versions to, publish, deprecate,
-- reactivate or archive another role's chain, nor replace its handlers or
-- templates (the same name registers one of its own).  A member of the
-- creator role can change the chain.
------------------------------------------------------------------------------
CREATE ROLE ce_test_alice NOLOGIN;
CREATE ROLE ce_test_bob NOLOGIN;
CREATE ROLE ce_test_carol NOLOGIN IN ROLE ce_test_alice;
CREATE ROLE ce_test_admin NOLOGIN IN ROLE chainexec_admin;
CREATE FUNCTION def_handler_bob_only(args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT args $$;
REVOKE EXECUTE ON FUNCTION def_handler_bob_only(jsonb) FROM PUBLIC;

SET ROLE ce_test_alice;
SELECT chainexec.chain_define('{"id": "def-perm", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}', true) AS v;
SELECT chainexec.chain_define('{"id": "def-perm", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 2"}]}') AS v;
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('alice.handler', 'def_handler_a(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('alice-template', 'Hi {name}')$q$);
-- Alice cannot touch the superuser's chain either.
SELECT pg_temp.try($q$SELECT chainexec.chain_deprecate('def-life')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('pricing.three_tier', 'def_handler_a(jsonb)')$q$);
SELECT pg_temp.try($q$UPDATE chainexec.chains SET name = 'mine now' WHERE chain_id = 'def-order'$q$);
RESET ROLE;

SET ROLE ce_test_bob;
SELECT pg_temp.try($q$SELECT chainexec.chain_define('{"id": "def-perm", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 666"}]}')$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_define('{"id": "def-perm", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 666"}]}', true)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-perm')$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-perm', 2)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_deprecate('def-perm')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_reactivate('def-perm', 1)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_archive('def-perm', 2)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('alice.handler', 'def_handler_b(jsonb)')$q$, true);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_template('alice-template', 'Bye {name}')$q$, true);
-- PUBLIC holds no write privilege on the tables.
SELECT pg_temp.try($q$UPDATE chainexec.chains SET name = 'bob was here' WHERE chain_id = 'def-perm' AND version = 2$q$);
SELECT pg_temp.try($q$DELETE FROM chainexec.chains WHERE chain_id = 'def-perm' AND version = 2$q$);
SELECT pg_temp.try($q$UPDATE chainexec.handlers SET fn = 'def_handler_b(jsonb)' WHERE name = 'alice.handler'$q$);
SELECT pg_temp.try($q$INSERT INTO chainexec.chains (chain_id, version, definition, smart_code, created_by) VALUES ('def-perm', 3, '{}', 'X', 'ce_test_alice')$q$);
-- A function Bob may not execute cannot be his handler.
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('bob.handler', 'def_handler_bob_only(jsonb)')$q$);
-- His own chain and handler are fine.
SELECT chainexec.chain_define('{"id": "def-perm-bob", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}', true) AS v;
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('bob.handler', 'def_handler_b(jsonb)')$q$);
RESET ROLE;

-- Carol is a member of Alice: she may add versions and publish.
SET ROLE ce_test_carol;
SELECT pg_temp.try($q$SELECT chainexec.chain_define('{"id": "def-perm", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 3"}]}', true)$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_register_handler('alice.handler', 'def_handler_b(jsonb)')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-perm-bob', 1)$q$);
RESET ROLE;

-- With no draft left, Bob is still told that the chain is not his.
SET ROLE ce_test_bob;
SELECT pg_temp.try($q$SELECT chainexec.chain_publish('def-perm')$q$);
RESET ROLE;

-- A member of chainexec_admin may change any role's chain.
SET ROLE ce_test_admin;
SELECT pg_temp.try($q$SELECT chainexec.chain_deprecate('def-perm-bob')$q$);
SELECT pg_temp.try($q$SELECT chainexec.chain_define('{"id": "def-perm-bob", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 42"}]}')$q$);
RESET ROLE;

SELECT c.chain_id, c.version, c.status, c.created_by, c.definition->'steps'->0->>'sql' AS sql
  FROM chainexec.chains c WHERE c.chain_id LIKE 'def-perm%' ORDER BY 1, 2;
SELECT name, fn, registered_by FROM chainexec.handlers WHERE name IN ('alice.handler', 'bob.handler') ORDER BY 1;
SELECT template_id, body, registered_by FROM chainexec.templates WHERE template_id = 'alice-template';

------------------------------------------------------------------------------
-- Clean up: roles are cluster-wide.
------------------------------------------------------------------------------
SET chainexec.internal = on;
DELETE FROM chainexec.chains WHERE chain_id LIKE 'def-%';
RESET chainexec.internal;
DELETE FROM chainexec.handlers WHERE fn::text LIKE 'def\_handler%';
DELETE FROM chainexec.templates WHERE template_id IN ('proposal-email', 'alice-template');
DROP FUNCTION def_handler_a(jsonb), def_handler_b(jsonb), def_handler_text(text), def_handler_json(jsonb),
	def_handler_two(jsonb, jsonb), def_handler_set(jsonb), def_handler_bob_only(jsonb);
DROP PROCEDURE def_handler_proc(jsonb);
DROP AGGREGATE def_handler_agg(jsonb);
DROP ROLE ce_test_carol;
DROP ROLE ce_test_admin;
DROP ROLE ce_test_bob;
DROP ROLE ce_test_alice;
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname LIKE 'ce\_test\_%';
