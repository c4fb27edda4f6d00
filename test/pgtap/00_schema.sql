--
-- 00_schema: the objects of the install script (chainexec--0.1.0.sql) exist,
-- with tenant-leading keys and only the indexes the engine needs.
-- Runs in chainexec_test, where the runner created the extension.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(53);

SELECT has_extension('chainexec', 'chainexec', 'extension chainexec is installed in schema chainexec');
SELECT has_schema('chainexec');
SELECT has_role('chainexec_admin');

-- Tables: exactly these, each with organization_id leading its keys.
SELECT tables_are('chainexec',
	ARRAY['chains', 'handlers', 'schedules', 'templates', 'universal_transactions', 'universal_transaction_lines']);
SELECT has_table('chainexec', 'chains', 'table chainexec.chains exists');
SELECT has_table('chainexec', 'handlers', 'table chainexec.handlers exists');
SELECT has_table('chainexec', 'templates', 'table chainexec.templates exists');
SELECT has_table('chainexec', 'universal_transactions', 'table chainexec.universal_transactions exists');
SELECT has_table('chainexec', 'universal_transaction_lines', 'table chainexec.universal_transaction_lines exists');

SELECT col_is_pk('chainexec', 'chains', ARRAY['organization_id', 'chain_id', 'version'],
	'chains: primary key (organization_id, chain_id, version)');
SELECT col_is_pk('chainexec', 'handlers', ARRAY['organization_id', 'name'],
	'handlers: primary key (organization_id, name)');
SELECT col_is_pk('chainexec', 'templates', ARRAY['organization_id', 'template_id'],
	'templates: primary key (organization_id, template_id)');
SELECT col_is_pk('chainexec', 'universal_transactions', ARRAY['organization_id', 'id'],
	'universal_transactions: primary key (organization_id, id)');
SELECT col_is_pk('chainexec', 'universal_transaction_lines', ARRAY['organization_id', 'transaction_id', 'line_number'],
	'universal_transaction_lines: primary key (organization_id, transaction_id, line_number)');

SELECT fk_ok('chainexec', 'universal_transactions', ARRAY['organization_id', 'chain_id', 'chain_version'],
			 'chainexec', 'chains', ARRAY['organization_id', 'chain_id', 'version'],
			 'an execution refers to its chain version within its organization');
SELECT fk_ok('chainexec', 'universal_transaction_lines', ARRAY['organization_id', 'transaction_id'],
			 'chainexec', 'universal_transactions', ARRAY['organization_id', 'id'],
			 'a line refers to its execution within its organization');

SELECT col_not_null('chainexec', t, 'organization_id', t || '.organization_id is not null')
  FROM unnest(ARRAY['chains', 'handlers', 'templates', 'universal_transactions', 'universal_transaction_lines']) AS t;
SELECT col_not_null('chainexec', t, 'smart_code', t || '.smart_code is not null')
  FROM unnest(ARRAY['chains', 'universal_transactions', 'universal_transaction_lines']) AS t;

-- Indexes: the dispatch index and the others the engine's queries use, and no others.
SELECT has_index('chainexec', 'universal_transaction_lines', 'universal_transaction_lines_ready',
	ARRAY['priority', 'not_before'], 'the dispatch index universal_transaction_lines_ready exists');
SELECT is(pg_get_expr(indpred, indrelid), '(status = ''ready''::text)',
		  'the dispatch index covers ready lines only')
  FROM pg_index WHERE indexrelid = 'chainexec.universal_transaction_lines_ready'::regclass;
SELECT has_index('chainexec', 'universal_transaction_lines', 'universal_transaction_lines_waiting',
	ARRAY['not_before'], 'timer index universal_transaction_lines_waiting exists');
SELECT has_index('chainexec', 'universal_transactions', 'universal_transactions_idempotency',
	ARRAY['organization_id', 'chain_id', 'idempotency_key'], 'idempotency index exists');
SELECT index_is_unique('chainexec', 'universal_transactions', 'universal_transactions_idempotency',
	'idempotency index is unique');
SELECT index_is_unique('chainexec', 'chains', 'chains_one_active',
	'at most one active version per chain');
SELECT indexes_are('chainexec', 'chains', ARRAY['chains_pkey', 'chains_one_active']);
SELECT indexes_are('chainexec', 'handlers', ARRAY['handlers_pkey']);
SELECT indexes_are('chainexec', 'templates', ARRAY['templates_pkey']);
SELECT indexes_are('chainexec', 'universal_transactions',
	ARRAY['universal_transactions_pkey', 'universal_transactions_idempotency',
		  'universal_transactions_by_chain', 'universal_transactions_deadline',
		  'universal_transactions_finished']);
SELECT indexes_are('chainexec', 'universal_transaction_lines',
	ARRAY['universal_transaction_lines_pkey', 'universal_transaction_lines_ready',
		  'universal_transaction_lines_waiting']);

-- Versions that are not drafts are guarded by a trigger.
SELECT has_trigger('chainexec', 'chains', 'chains_guard', 'chains has the chains_guard trigger');

-- Functions of the install script.
SELECT has_function('chainexec', 'current_organization', ARRAY[]::name[]);
SELECT has_function('chainexec', 'smart_code', ARRAY['text', 'text', 'integer']);
SELECT has_function('chainexec', 'can_access', ARRAY['regrole']);
SELECT has_function('chainexec', 'org_visible', ARRAY['uuid']);
SELECT has_function('chainexec', 'chains_guard', ARRAY[]::name[]);
SELECT has_function('chainexec', '_definition_check', ARRAY['jsonb']);
SELECT has_function('chainexec', '_input_check', ARRAY['jsonb', 'jsonb']);
SELECT has_function('chainexec', '_template_check', ARRAY['text']);
SELECT has_function('chainexec', '_chain_for_change', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_define', ARRAY['jsonb', 'boolean']);
SELECT has_function('chainexec', 'chain_publish', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_deprecate', ARRAY['text']);
SELECT has_function('chainexec', 'chain_reactivate', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_archive', ARRAY['text', 'integer']);
SELECT has_function('chainexec', 'chain_register_handler', ARRAY['text', 'regprocedure']);
SELECT has_function('chainexec', 'chain_register_template', ARRAY['text', 'text']);
SELECT has_function('chainexec', 'chain_validate', ARRAY['text', 'jsonb']);

SELECT * FROM finish();
ROLLBACK;
