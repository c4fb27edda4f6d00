--
-- 10_define: properties of chain definitions.  Every accepted alias lives;
-- versions count 1, 2, ... and a new definition replaces the draft; every
-- illegal lifecycle transition throws its SQLSTATE; versions that are not
-- drafts are immutable and only one is active; handlers and templates are
-- checked; chain_validate's answers have one shape; and another role
-- cannot change what a role made.  Everything is rolled back.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(83);

-- run_as(role, query): the query's first value, run as another role.
CREATE FUNCTION pg_temp.run_as(r text, q text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	res text;
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	EXECUTE q INTO res;
	RESET ROLE;
	RETURN res;
END
$$;

-- one_step(id, sql): a minimal definition.
CREATE FUNCTION pg_temp.one_step(cid text, q text DEFAULT 'SELECT 1')
RETURNS jsonb
LANGUAGE sql
AS $$
	SELECT jsonb_build_object('id', cid, 'steps',
		jsonb_build_array(jsonb_build_object('id', 1, 'name', 'a', 'type', 'sql', 'sql', q)))
$$;

------------------------------------------------------------------------------
-- The format: aliases and every accepted key.
------------------------------------------------------------------------------
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-alias-sql", "steps": [{"id": 1, "name": "a", "type": "database_operation", "sql": "SELECT {x}::int AS y", "inputVariables": ["x"], "outputVariables": ["y"]}]}')$$,
	'type "database_operation" is accepted for sql');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-alias-op", "steps": [{"id": 1, "name": "a", "type": "database_operation", "instructionSet": "database-operations", "inputTemplate": "insert {x}"}]}')$$,
	'a "database_operation" step without sql calls its instructionSet');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-alias-fn", "steps": [{"id": 1, "name": "a", "type": "instruction_set", "instructionSet": "pricing.three_tier"}]}')$$,
	'type "instruction_set" is accepted for function');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-alias-tpl", "steps": [{"id": 1, "name": "a", "type": "template_processing", "template": "Dear {name|''you''}"}]}')$$,
	'type "template_processing" is accepted for template');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-alias-tplid", "steps": [{"id": 1, "name": "a", "type": "template_processing", "templateId": "welcome-email"}]}')$$,
	'a template step may name a registered template');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-alias-ext", "steps": [{"id": 1, "name": "a", "type": "external_api", "timeoutMs": 60000}]}')$$,
	'type "external_api" is accepted for external');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-alias-backoff", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1", "retryConfig": {"maxRetries": 2, "backoffMs": 250}}]}')$$,
	'retryConfig.backoffMs is accepted for baseDelayMs');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-kinds", "steps": [
	{"id": 1, "name": "s", "type": "sql", "sql": "SELECT 1 AS one", "outputVariables": ["one"]},
	{"id": 2, "name": "f", "type": "function", "instructionSet": "h"},
	{"id": 3, "name": "t", "type": "template", "template": "{one}", "outputVariables": ["text"]},
	{"id": 4, "name": "e", "type": "external"},
	{"id": 5, "name": "w", "type": "wait", "waitMs": 1000}]}')$$,
	'the five canonical step types');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-chainkeys", "name": "n", "description": "d", "version": "1.2",
	"inputSchema": {"type": "object", "properties": {"a": {"type": "string"}}},
	"outputSchema": {"type": "object"},
	"steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}],
	"rollbackEnabled": true, "maxExecutionTime": 300000, "parallelStepsEnabled": false,
	"maxConcurrency": 2, "successConditions": ["a != null"], "notify": "none",
	"category": "c", "performanceTargets": {"p95Ms": 10}, "retryBudget": {"maxRetries": 5},
	"searchPath": "public", "metadata": {"free": {"form": [1]}}}')$$,
	'every chain-level key of the SPEC is accepted');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-stepkeys", "steps": [{"id": 1, "name": "a", "description": "d", "type": "sql",
	"sql": "SELECT {x} AS y", "inputTemplate": "t", "inputVariables": ["x"], "outputVariables": ["y"],
	"conditionalExecution": "{x} > 0", "parallelExecution": true,
	"retryConfig": {"maxRetries": 3, "backoffStrategy": "exponential", "baseDelayMs": 500, "maxDelayMs": 10000,
					"jitter": true, "retryOnErrors": ["database_busy", "api_timeout"]},
	"rollbackAction": "delete_client_record", "onFailure": "fallback",
	"fallbackStep": {"id": 2, "name": "b", "type": "sql", "sql": "SELECT 2 AS y"},
	"timeoutMs": 10000, "maxMemoryMB": 64, "cache": {"ttlMs": 1}, "circuitBreaker": {"failureThreshold": 3},
	"verificationQuery": "SELECT true", "metadata": {"k": "v"}}]}')$$,
	'every step-level key of the SPEC is accepted');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-def-typo", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1", "retryConfg": {}}]}')$$,
	'22023', NULL, 'an unknown key is refused');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-def-typo", "steps": [{"id": 1, "name": "a", "type": "database_op", "sql": "SELECT 1"}]}')$$,
	'22023', 'invalid chain definition: unknown step type "database_op" at steps[0].type', 'an unknown step type is refused');
SELECT throws_ok($$SELECT chainexec.chain_define(NULL)$$, '22004', 'chain definition must not be null', 'a NULL definition is refused');
SELECT throws_ok($$SELECT chainexec.chain_define('[]')$$, '22023', 'chain definition must be a JSON object', 'an array is refused');
SELECT throws_ok($$SELECT chainexec.chain_define(jsonb_build_object('id', 'tap-def-big', 'description', repeat('x', 2 * 1024 * 1024), 'steps', '[]'::jsonb))$$,
	'54000', 'chain definition is too large', 'a definition over 1 MB is refused');

------------------------------------------------------------------------------
-- Versions.
------------------------------------------------------------------------------
SELECT is(chainexec.chain_define(pg_temp.one_step('tap-def-v', 'SELECT 1')), 1, 'the first version is 1');
SELECT is(chainexec.chain_define(pg_temp.one_step('tap-def-v', 'SELECT 11')), 1, 'a new definition replaces the draft');
SELECT results_eq($$SELECT version, status, definition->'steps'->0->>'sql' FROM chainexec.chains WHERE chain_id = 'tap-def-v' ORDER BY version$$,
	$$VALUES (1, 'draft', 'SELECT 11')$$, 'one draft row, with the last definition');
SELECT is(chainexec.chain_publish('tap-def-v'), 1, 'chain_publish publishes the draft');
SELECT is(chainexec.chain_define(pg_temp.one_step('tap-def-v', 'SELECT 2')), 2, 'after publishing, the next version is 2');
SELECT is(chainexec.chain_define(pg_temp.one_step('tap-def-v', 'SELECT 22')), 2, 'version 2 is replaced while it is a draft');
SELECT results_eq($$SELECT version, status FROM chainexec.chains WHERE chain_id = 'tap-def-v' ORDER BY version$$,
	$$VALUES (1, 'active'), (2, 'draft')$$, 'active v1, draft v2');
SELECT is(chainexec.chain_define(pg_temp.one_step('tap-def-v', 'SELECT 23'), true), 2, 'define with publish replaces the draft and publishes it');
SELECT results_eq($$SELECT version, status FROM chainexec.chains WHERE chain_id = 'tap-def-v' ORDER BY version$$,
	$$VALUES (1, 'deprecated'), (2, 'active')$$, 'publishing deprecates the previously active version');
SELECT is(chainexec.chain_define(pg_temp.one_step('tap-def-v', 'SELECT 3'), true), 3, 'define with publish, no draft: version 3, active');
SELECT is(chainexec.chain_reactivate('tap-def-v', 1), 1, 'a deprecated version can be reactivated');
SELECT results_eq($$SELECT version, status FROM chainexec.chains WHERE chain_id = 'tap-def-v' ORDER BY version$$,
	$$VALUES (1, 'active'), (2, 'deprecated'), (3, 'deprecated')$$, 'reactivating deprecates the active version');
SELECT is(chainexec.chain_archive('tap-def-v', 2), 2, 'a deprecated version can be archived');
SELECT is(chainexec.chain_deprecate('tap-def-v'), 1, 'chain_deprecate deprecates the active version');
SELECT results_eq($$SELECT version, status FROM chainexec.chains WHERE chain_id = 'tap-def-v' ORDER BY version$$,
	$$VALUES (1, 'deprecated'), (2, 'archived'), (3, 'deprecated')$$, 'no active version after chain_deprecate');
SELECT is(chainexec.chain_define(pg_temp.one_step('tap-def-v', 'SELECT 4')), 4, 'the next draft is version 4');

------------------------------------------------------------------------------
-- Illegal transitions, each with its SQLSTATE.
------------------------------------------------------------------------------
SELECT throws_ok($$SELECT chainexec.chain_deprecate('tap-def-v')$$, '55000',
	'chain "tap-def-v" has no active version to deprecate', 'deprecate without an active version');
SELECT throws_ok($$SELECT chainexec.chain_reactivate('tap-def-v', 4)$$, '55000',
	'cannot reactivate version 4 of chain "tap-def-v": it is draft', 'reactivate a draft');
SELECT throws_ok($$SELECT chainexec.chain_reactivate('tap-def-v', 2)$$, '55000',
	'cannot reactivate version 2 of chain "tap-def-v": it is archived', 'reactivate an archived version');
SELECT throws_ok($$SELECT chainexec.chain_publish('tap-def-v', 3)$$, '55000',
	'cannot publish version 3 of chain "tap-def-v": it is deprecated', 'publish a deprecated version');
SELECT throws_ok($$SELECT chainexec.chain_publish('tap-def-v', 2)$$, '55000',
	'cannot publish version 2 of chain "tap-def-v": it is archived', 'publish an archived version');
SELECT is(chainexec.chain_publish('tap-def-v'), 4, 'publish the draft v4');
SELECT throws_ok($$SELECT chainexec.chain_archive('tap-def-v', 4)$$, '55000',
	'cannot archive version 4 of chain "tap-def-v": it is active', 'archive the active version');
SELECT throws_ok($$SELECT chainexec.chain_publish('tap-def-v')$$, '55000',
	'chain "tap-def-v" has no draft version to publish', 'publish without a draft');
SELECT throws_ok($$SELECT chainexec.chain_publish('tap-def-v', 9)$$, '42704',
	'version 9 of chain "tap-def-v" does not exist', 'publish a version that does not exist');
SELECT throws_ok($$SELECT chainexec.chain_publish('tap-def-none')$$, '42704',
	'chain "tap-def-none" does not exist', 'publish a chain that does not exist');
SELECT throws_ok($$SELECT chainexec.chain_deprecate('tap-def-none')$$, '42704', NULL, 'deprecate a chain that does not exist');
SELECT throws_ok($$SELECT chainexec.chain_reactivate('tap-def-none', 1)$$, '42704', NULL, 'reactivate a chain that does not exist');
SELECT throws_ok($$SELECT chainexec.chain_archive('tap-def-none', 1)$$, '42704', NULL, 'archive a chain that does not exist');
SELECT throws_ok($$SELECT chainexec.chain_archive('tap-def-v', NULL)$$, '22004', NULL, 'archive a NULL version');
SELECT throws_ok($$SELECT chainexec.chain_publish(NULL, 1)$$, '22004', NULL, 'publish a NULL chain id');

------------------------------------------------------------------------------
-- Immutability; one active version.
------------------------------------------------------------------------------
SELECT throws_ok($$UPDATE chainexec.chains SET definition = '{}' WHERE chain_id = 'tap-def-v' AND version = 4$$, '55000',
	'version 4 of chain "tap-def-v" is active and cannot be changed', 'the definition of an active version cannot change');
SELECT throws_ok($$UPDATE chainexec.chains SET name = 'x' WHERE chain_id = 'tap-def-v' AND version = 3$$, '55000',
	NULL, 'a deprecated version cannot be renamed');
SELECT throws_ok($$UPDATE chainexec.chains SET status = 'draft' WHERE chain_id = 'tap-def-v' AND version = 3$$, '55000',
	NULL, 'a version cannot go back to draft');
SELECT throws_ok($$DELETE FROM chainexec.chains WHERE chain_id = 'tap-def-v' AND version = 2$$, '55000',
	NULL, 'an archived version cannot be deleted');
SELECT throws_ok($$UPDATE chainexec.chains SET status = 'active' WHERE chain_id = 'tap-def-v' AND version = 3$$, '23505',
	NULL, 'a second active version is refused');
SELECT is((SELECT count(*)::int FROM chainexec.chains WHERE chain_id = 'tap-def-v' AND status = 'active'), 1,
	'exactly one active version');

------------------------------------------------------------------------------
-- Handlers and templates.
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.tap_h1(a jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT a $$;
CREATE FUNCTION pg_temp.tap_h2(a jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT a $$;
CREATE FUNCTION pg_temp.tap_bad(a text) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION pg_temp.tap_json(a jsonb) RETURNS json LANGUAGE sql AS $$ SELECT '{}'::json $$;

SELECT lives_ok($$SELECT chainexec.chain_register_handler('tap.handler', 'pg_temp.tap_h1(jsonb)'::regprocedure)$$,
	'a jsonb -> jsonb function is registered as a handler');
SELECT lives_ok($$SELECT chainexec.chain_register_handler('tap.handler', 'pg_temp.tap_h2(jsonb)'::regprocedure)$$,
	'registering the same name again replaces it');
SELECT is((SELECT fn::oid FROM chainexec.handlers WHERE name = 'tap.handler'), 'pg_temp.tap_h2(jsonb)'::regprocedure::oid,
	'the handler now points to the second function');
SELECT throws_ok($$SELECT chainexec.chain_register_handler('tap.bad', 'pg_temp.tap_bad(text)'::regprocedure)$$, '42P13',
	NULL, 'a handler must take jsonb');
SELECT throws_ok($$SELECT chainexec.chain_register_handler('tap.bad', 'pg_temp.tap_json(jsonb)'::regprocedure)$$, '42P13',
	NULL, 'a handler must return jsonb');
SELECT throws_ok($$SELECT chainexec.chain_register_handler('tap bad', 'pg_temp.tap_h1(jsonb)'::regprocedure)$$, '22023',
	'invalid handler name "tap bad"', 'a handler name has no spaces');
SELECT throws_ok($$SELECT chainexec.chain_register_handler(NULL, 'pg_temp.tap_h1(jsonb)'::regprocedure)$$, '22004',
	NULL, 'a NULL handler name is refused');
SELECT lives_ok($$SELECT chainexec.chain_register_template('tap-template', 'Dear {name|''you''}, {{x}}')$$,
	'a template is registered');
SELECT throws_ok($$SELECT chainexec.chain_register_template('tap-template', 'Dear {name')$$, '42601',
	'invalid template at position 6: unterminated placeholder', 'a template syntax error names its position');
SELECT throws_ok($$SELECT chainexec.chain_register_template('tap template', 'x')$$, '22023',
	NULL, 'a template id has no spaces');

------------------------------------------------------------------------------
-- chain_validate and _input_check: shapes.
------------------------------------------------------------------------------
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-def-schema",
	"inputSchema": {"type": "object", "required": ["n", "s"], "properties": {
		"n": {"type": "integer", "minimum": 1},
		"s": {"type": "string", "enum": ["a", "b"]},
		"d": {"type": "string", "default": "dflt"},
		"l": {"type": "array", "items": {"type": "integer"}}}},
	"steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}')$$, 'a chain with an input schema');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(chainexec.chain_validate('tap-def-schema', '{"n": 1, "s": "a"}')) k),
	ARRAY['errors', 'valid', 'warnings'], 'chain_validate returns valid, errors and warnings');
SELECT is(chainexec.chain_validate('tap-def-schema', '{"n": 1, "s": "a"}'),
	'{"valid": true, "errors": [], "warnings": []}'::jsonb, 'a valid input: no errors');
SELECT is(chainexec.chain_validate('tap-def-schema', '{"n": 0, "s": "c", "l": [1, "x"]}')->'valid',
	'false'::jsonb, 'an invalid input is not valid');
SELECT is((SELECT array_agg(e->>'path' ORDER BY e->>'path')
		     FROM jsonb_array_elements(chainexec.chain_validate('tap-def-schema', '{"n": 0, "s": "c", "l": [1, "x"]}')->'errors') e),
	ARRAY['$.l[1]', '$.n', '$.s'], 'all three violations are reported together');
SELECT is((SELECT bool_and(jsonb_typeof(e->'path') = 'string' AND jsonb_typeof(e->'message') = 'string')
		     FROM jsonb_array_elements(chainexec.chain_validate('tap-def-schema', '{}')->'errors') e),
	true, 'each error has a path and a message');
SELECT is(jsonb_array_length(chainexec.chain_validate('tap-def-schema', '{}')->'errors'), 2,
	'missing required properties are each an error');
SELECT is(chainexec._input_check((SELECT definition FROM chainexec.chains WHERE chain_id = 'tap-def-schema'), '{"n": 1, "s": "a"}')->'input',
	'{"n": 1, "s": "a", "d": "dflt"}'::jsonb, 'defaults are applied to the input');
SELECT is(jsonb_typeof(chainexec.chain_validate('tap-def-v')->'warnings'), 'array', 'warnings is an array');
SELECT throws_ok($$SELECT chainexec.chain_validate('tap-def-none')$$, '42704', NULL, 'validate a chain that does not exist');

------------------------------------------------------------------------------
-- Permissions.
------------------------------------------------------------------------------
CREATE ROLE ce_test_tap_alice NOLOGIN;
CREATE ROLE ce_test_tap_bob NOLOGIN;
CREATE ROLE ce_test_tap_carol NOLOGIN IN ROLE ce_test_tap_alice;
GRANT EXECUTE ON FUNCTION pg_temp.tap_h1(jsonb), pg_temp.tap_h2(jsonb) TO PUBLIC;

SELECT is(pg_temp.run_as('ce_test_tap_alice', $$SELECT chainexec.chain_define(pg_temp.one_step('tap-def-perm'), true)$$), '1',
	'alice defines and publishes her chain');
SELECT lives_ok($$SELECT pg_temp.run_as('ce_test_tap_alice', 'SELECT chainexec.chain_register_handler(''tap.alice'', ''pg_temp.tap_h1(jsonb)''::regprocedure)')$$,
	'alice registers a handler');
SELECT throws_ok($$SELECT pg_temp.run_as('ce_test_tap_bob', 'SELECT chainexec.chain_define(pg_temp.one_step(''tap-def-perm'', ''SELECT 666''))')$$,
	'42501', 'permission denied for chain "tap-def-perm"', 'bob cannot add a version to her chain');
SELECT is(pg_temp.run_as('ce_test_tap_alice', $$SELECT chainexec.chain_define(pg_temp.one_step('tap-def-perm', 'SELECT 2'))$$), '2',
	'alice adds a draft');
SELECT throws_ok($$SELECT pg_temp.run_as('ce_test_tap_bob', 'SELECT chainexec.chain_publish(''tap-def-perm'')')$$,
	'42501', NULL, 'bob cannot publish her chain');
SELECT throws_ok($$SELECT pg_temp.run_as('ce_test_tap_bob', 'SELECT chainexec.chain_deprecate(''tap-def-perm'')')$$,
	'42501', NULL, 'bob cannot deprecate her chain');
SELECT throws_ok($$SELECT pg_temp.run_as('ce_test_tap_bob', 'SELECT chainexec.chain_archive(''tap-def-perm'', 2)')$$,
	'42501', NULL, 'bob cannot archive her draft');
SELECT lives_ok($$SELECT pg_temp.run_as('ce_test_tap_bob', 'SELECT chainexec.chain_register_handler(''tap.alice'', ''pg_temp.tap_h2(jsonb)''::regprocedure)')$$,
	'bob registers a handler of his own under her handler''s name');
SELECT results_eq($$SELECT fn::text FROM chainexec.handlers WHERE name = 'tap.alice' AND registered_by = 'ce_test_tap_alice'::regrole$$,
	$$SELECT 'pg_temp.tap_h1(jsonb)'::regprocedure::text$$,
	'bob did not replace her handler');
SELECT is(pg_temp.run_as('ce_test_tap_carol', $$SELECT chainexec.chain_publish('tap-def-perm')$$), '2',
	'carol, a member of alice, may publish her chain');
SELECT results_eq($$SELECT version, status, created_by::text FROM chainexec.chains WHERE chain_id = 'tap-def-perm' ORDER BY version$$,
	$$VALUES (1, 'deprecated', 'ce_test_tap_alice'), (2, 'active', 'ce_test_tap_alice')$$,
	'the chain is still alice''s, and bob changed nothing');

SELECT * FROM finish();
ROLLBACK;
