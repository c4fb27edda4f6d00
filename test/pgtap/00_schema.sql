--
-- 00_schema: the objects of the install script (chainexec--0.1.0.sql) exist,
-- with tenant-leading keys, only the indexes the engine needs, the views
-- for people and the SQL API.
-- Runs in chainexec_test, where the runner created the extension.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(97);

SELECT has_extension('chainexec', 'chainexec', 'extension chainexec is installed in schema chainexec');
SELECT has_schema('chainexec');
SELECT has_role('chainexec_admin');

-- Tables: exactly these, each with organization_id leading its keys.
SELECT tables_are('chainexec',
	ARRAY['chains', 'channel_secret', 'circuit_breaker_state', 'handlers', 'schedules', 'step_cache',
		  'step_cache_counters', 'templates', 'universal_transactions', 'universal_transaction_lines',
		  'step_approvals', 'flow_limits', 'flow_limit_slots', 'chain_slots']);
SELECT has_table('chainexec', 'chains', 'table chainexec.chains exists');
SELECT has_table('chainexec', 'handlers', 'table chainexec.handlers exists');
SELECT has_table('chainexec', 'templates', 'table chainexec.templates exists');
SELECT has_table('chainexec', 'universal_transactions', 'table chainexec.universal_transactions exists');
SELECT has_table('chainexec', 'universal_transaction_lines', 'table chainexec.universal_transaction_lines exists');
SELECT has_table('chainexec', 'schedules', 'table chainexec.schedules exists');
-- The key of the event channel names: no organization, and nobody but its owner reads it.
SELECT has_table('chainexec', 'channel_secret', 'table chainexec.channel_secret exists');
SELECT table_privs_are('chainexec', 'channel_secret', 'public', ARRAY[]::text[],
	'PUBLIC has no privilege on chainexec.channel_secret');

SELECT col_is_pk('chainexec', 'chains', ARRAY['organization_id', 'chain_id', 'version'],
	'chains: primary key (organization_id, chain_id, version)');
SELECT col_is_pk('chainexec', 'handlers', ARRAY['organization_id', 'name', 'registered_by'],
	'handlers: primary key (organization_id, name, registered_by)');
SELECT col_is_pk('chainexec', 'templates', ARRAY['organization_id', 'template_id', 'registered_by'],
	'templates: primary key (organization_id, template_id, registered_by)');
SELECT col_is_pk('chainexec', 'universal_transactions', ARRAY['organization_id', 'id'],
	'universal_transactions: primary key (organization_id, id)');
SELECT col_is_pk('chainexec', 'universal_transaction_lines', ARRAY['organization_id', 'transaction_id', 'line_number'],
	'universal_transaction_lines: primary key (organization_id, transaction_id, line_number)');
SELECT col_is_pk('chainexec', 'schedules', ARRAY['organization_id', 'created_by', 'job_name'],
	'schedules: primary key (organization_id, created_by, job_name): a schedule name is its role''s own');

SELECT fk_ok('chainexec', 'universal_transactions', ARRAY['organization_id', 'chain_id', 'chain_version'],
			 'chainexec', 'chains', ARRAY['organization_id', 'chain_id', 'version'],
			 'an execution refers to its chain version within its organization');
SELECT fk_ok('chainexec', 'universal_transaction_lines', ARRAY['organization_id', 'transaction_id'],
			 'chainexec', 'universal_transactions', ARRAY['organization_id', 'id'],
			 'a line refers to its execution within its organization');

SELECT col_not_null('chainexec', t, 'organization_id', t || '.organization_id is not null')
  FROM unnest(ARRAY['chains', 'handlers', 'templates', 'universal_transactions', 'universal_transaction_lines',
					 'schedules']) AS t;
SELECT col_not_null('chainexec', t, 'smart_code', t || '.smart_code is not null')
  FROM unnest(ARRAY['chains', 'universal_transactions', 'universal_transaction_lines']) AS t;

-- Indexes: the dispatch index and the others the engine's queries use, and no others.
SELECT has_index('chainexec', 'universal_transaction_lines', 'universal_transaction_lines_ready',
	ARRAY['organization_id', 'priority', 'not_before'],
	'the dispatch index universal_transaction_lines_ready exists (organizations in turn)');
SELECT is(pg_get_expr(indpred, indrelid), '((status = ''ready''::text) AND (waits_for IS NULL))',
		  'the dispatch index covers ready lines only, not those waiting for a place')
  FROM pg_index WHERE indexrelid = 'chainexec.universal_transaction_lines_ready'::regclass;
SELECT has_index('chainexec', 'universal_transaction_lines', 'universal_transaction_lines_waiting',
	ARRAY['not_before'], 'timer index universal_transaction_lines_waiting exists');
SELECT has_index('chainexec', 'universal_transactions', 'universal_transactions_idempotency',
	ARRAY['organization_id', 'chain_id', 'owner', 'idempotency_key'], 'idempotency index exists (a key is its role''s own)');
SELECT index_is_unique('chainexec', 'universal_transactions', 'universal_transactions_idempotency',
	'idempotency index is unique');
SELECT index_is_unique('chainexec', 'chains', 'chains_one_active',
	'at most one active version per chain');
SELECT indexes_are('chainexec', 'chains', ARRAY['chains_pkey', 'chains_one_active']);
SELECT indexes_are('chainexec', 'handlers', ARRAY['handlers_pkey', 'handlers_one_shared']);
SELECT indexes_are('chainexec', 'templates', ARRAY['templates_pkey', 'templates_one_shared']);
SELECT indexes_are('chainexec', 'universal_transactions',
	ARRAY['universal_transactions_pkey', 'universal_transactions_idempotency',
		  'universal_transactions_by_chain', 'universal_transactions_deadline',
		  'universal_transactions_finished', 'universal_transactions_in_session',
		  'universal_transactions_parent']);
SELECT indexes_are('chainexec', 'universal_transaction_lines',
	ARRAY['universal_transaction_lines_pkey', 'universal_transaction_lines_ready',
		  'universal_transaction_lines_waiting', 'universal_transaction_lines_waits_for',
		  'universal_transaction_lines_steps']);
SELECT indexes_are('chainexec', 'schedules', ARRAY['schedules_pkey']);

-- Views for people.
SELECT views_are('chainexec', ARRAY['executions', 'step_runs', 'chain_analytics', 'scheduled_jobs',
	'circuit_breakers', 'cache_stats', 'limits', 'tasks', 'stats']);
SELECT has_view('chainexec', v, 'view chainexec.' || v || ' exists')
  FROM unnest(ARRAY['executions', 'step_runs', 'chain_analytics', 'scheduled_jobs', 'circuit_breakers', 'cache_stats', 'stats']) AS v;

-- Versions that are not drafts are guarded by a trigger.
SELECT has_trigger('chainexec', 'chains', 'chains_guard', 'chains has the chains_guard trigger');

-- The SQL API (SPEC section 4) and the helpers it is built from.
SELECT has_function('chainexec', 'current_organization', ARRAY[]::name[]);
SELECT has_function('chainexec', 'smart_code', ARRAY['text', 'text', 'integer']);
SELECT has_function('chainexec', 'can_access', ARRAY['regrole']);
SELECT has_function('chainexec', 'org_visible', ARRAY['uuid']);
SELECT has_function('chainexec', 'chains_guard', ARRAY[]::name[]);
SELECT has_function('chainexec', 'raise_failure', ARRAY['text', 'text']);
SELECT has_function('chainexec', 'chain_define', ARRAY['jsonb', 'boolean']);
SELECT has_function('chainexec', 'chain_publish', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_deprecate', ARRAY['text']);
SELECT has_function('chainexec', 'chain_reactivate', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_archive', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_register_handler', ARRAY['text', 'regprocedure']);
SELECT has_function('chainexec', 'chain_register_template', ARRAY['text', 'text']);
SELECT has_function('chainexec', 'chain_validate', ARRAY['text', 'jsonb']);
SELECT has_function('chainexec', 'chain_execute', ARRAY['text', 'jsonb', 'jsonb']);
SELECT has_function('chainexec', 'chain_run', ARRAY['text', 'jsonb', 'jsonb', 'jsonb']);
SELECT has_function('chainexec', 'chain_result', ARRAY['uuid']);
SELECT has_function('chainexec', 'chain_status', ARRAY['uuid']);
SELECT has_function('chainexec', 'chain_history', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_wait', ARRAY['uuid', 'integer']);
SELECT has_function('chainexec', 'chain_listen', ARRAY['regrole']);
SELECT has_function('chainexec', 'chain_unlisten', ARRAY['regrole']);
SELECT has_function('chainexec', 'chain_rotate_channels', ARRAY[]::name[]);
SELECT has_function('chainexec', 'chain_explain', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_graph', ARRAY['text', 'text']);
SELECT has_function('chainexec', 'chain_stats', ARRAY['integer']);
SELECT has_function('chainexec', 'chain_cancel', ARRAY['uuid', 'text']);
SELECT has_function('chainexec', 'chain_pause', ARRAY['uuid']);
SELECT has_function('chainexec', 'chain_resume', ARRAY['uuid']);
SELECT has_function('chainexec', 'chain_retry_step', ARRAY['uuid', 'integer']);
SELECT has_function('chainexec', 'chain_skip_step', ARRAY['uuid', 'integer', 'jsonb']);
SELECT has_function('chainexec', 'chain_rollback', ARRAY['uuid', 'integer']);
SELECT has_function('chainexec', 'chain_rollback_plan', ARRAY['uuid']);
SELECT has_function('chainexec', 'chain_step_complete', ARRAY['uuid', 'integer', 'jsonb']);
SELECT has_function('chainexec', 'chain_step_fail', ARRAY['uuid', 'integer', 'text', 'text']);
SELECT has_function('chainexec', 'chain_cleanup', ARRAY['interval']);
SELECT has_function('chainexec', 'chain_circuit_reset', ARRAY['text']);
SELECT has_function('chainexec', 'chain_cache_invalidate', ARRAY['text', 'text']);
SELECT has_function('chainexec', 'chain_schedule', ARRAY['text', 'text', 'text', 'jsonb', 'text']);
SELECT has_function('chainexec', 'chain_schedule_cleanup', ARRAY['text', 'text', 'interval']);
SELECT has_function('chainexec', 'chain_unschedule', ARRAY['text']);

-- The C entry points the SQL calls.
SELECT has_function('chainexec', '_definition_check', ARRAY['jsonb']);
SELECT has_function('chainexec', '_input_check', ARRAY['jsonb', 'jsonb']);
SELECT has_function('chainexec', '_template_check', ARRAY['text']);
SELECT function_lang_is('chainexec', f, 'c', f || ' is written in C')
  FROM unnest(ARRAY['_definition_check', '_input_check', '_template_check']) AS f;

SELECT * FROM finish();
ROLLBACK;
