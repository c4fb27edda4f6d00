/*
 * chainexec--0.1.0.sql
 *	  Install script: tables, views, row-level security and the SQL API.
 *
 * Glossary: a *chain* is a named workflow (chain_id); each version of it is
 * a row of chains.  An *execution* is one run of a chain version (a row of
 * universal_transactions); a *line* is one step's record within an
 * execution (a row of universal_transaction_lines), and retries are
 * *attempts* on the same line.  Every step transition is one transaction.
 */
\echo Use "CREATE EXTENSION chainexec" to load this file. \quit

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'chainexec_admin') THEN
		CREATE ROLE chainexec_admin NOLOGIN;
	END IF;
END
$$;

/* ------------------------------------------------------------------------
 * Tenancy
 * ------------------------------------------------------------------------ */

CREATE FUNCTION chainexec.current_organization()
RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(nullif(pg_catalog.current_setting('chainexec.organization_id', true), '')::uuid,
					'00000000-0000-0000-0000-000000000000'::uuid)
$$;
COMMENT ON FUNCTION chainexec.current_organization() IS
	'the organization (tenant) the session works in: chainexec.organization_id, or the all-zero default';

/* A smart code: CHAINEXEC.<KIND>.<NAME>.V<version>, e.g. CHAINEXEC.RUN.ORDER_FULFILMENT.V1. */
CREATE FUNCTION chainexec.smart_code(kind text, name text, version int)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT 'CHAINEXEC.' || kind || '.' || upper(regexp_replace(name, '[^A-Za-z0-9]+', '_', 'g')) || '.V' || version
$$;

/* Whether the current role may see and control rows owned by role r. */
CREATE FUNCTION chainexec.can_access(r regrole)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.pg_has_role(current_user, 'chainexec_admin', 'MEMBER')
		OR pg_catalog.pg_has_role(current_user, r::oid, 'MEMBER')
$$;

/* ------------------------------------------------------------------------
 * Chain definitions
 * ------------------------------------------------------------------------ */

CREATE TABLE chainexec.chains (
	organization_id uuid NOT NULL DEFAULT chainexec.current_organization(),
	chain_id	text NOT NULL,
	version		int NOT NULL CHECK (version > 0),
	status		text NOT NULL DEFAULT 'draft'
				CHECK (status IN ('draft', 'active', 'deprecated', 'archived')),
	definition	jsonb NOT NULL,
	name		text,
	description	text,
	smart_code	text NOT NULL,
	created_by	regrole NOT NULL DEFAULT current_user::regrole,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	published_at timestamptz,
	PRIMARY KEY (organization_id, chain_id, version),
	CHECK (chain_id ~ '^[a-z0-9_.-]{1,63}$')
);
COMMENT ON TABLE chainexec.chains IS 'one row per chain version; versions that are not drafts are immutable';

/* At most one active version per chain. */
CREATE UNIQUE INDEX chains_one_active
	ON chainexec.chains (organization_id, chain_id) WHERE status = 'active';

CREATE FUNCTION chainexec.chains_guard()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		IF OLD.status <> 'draft' AND pg_catalog.current_setting('chainexec.internal', true) IS DISTINCT FROM 'on' THEN
			RAISE EXCEPTION 'cannot delete version % of chain "%"', OLD.version, OLD.chain_id
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = pg_catalog.format('Version %s is %s; only drafts can be deleted.', OLD.version, OLD.status),
					  HINT = 'Use chain_archive() to retire a version.';
		END IF;
		RETURN OLD;
	END IF;
	IF OLD.status <> 'draft' AND
	   (NEW.definition IS DISTINCT FROM OLD.definition OR NEW.chain_id IS DISTINCT FROM OLD.chain_id
		OR NEW.version IS DISTINCT FROM OLD.version OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
		OR NEW.name IS DISTINCT FROM OLD.name OR NEW.description IS DISTINCT FROM OLD.description
		OR NEW.smart_code IS DISTINCT FROM OLD.smart_code OR NEW.created_by IS DISTINCT FROM OLD.created_by) THEN
		RAISE EXCEPTION 'version % of chain "%" is % and cannot be changed', OLD.version, OLD.chain_id, OLD.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Define a new version with chain_define().';
	END IF;
	IF OLD.status <> 'draft' AND NEW.status = 'draft' THEN
		RAISE EXCEPTION 'version % of chain "%" cannot go back to draft', OLD.version, OLD.chain_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	NEW.updated_at := now();
	RETURN NEW;
END
$$;

CREATE TRIGGER chains_guard BEFORE UPDATE OR DELETE ON chainexec.chains
	FOR EACH ROW EXECUTE FUNCTION chainexec.chains_guard();

/* Registered handlers (function steps, rollback handlers) and templates. */
CREATE TABLE chainexec.handlers (
	organization_id uuid NOT NULL DEFAULT chainexec.current_organization(),
	name		text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,128}$'),
	fn			regprocedure NOT NULL,
	registered_by regrole NOT NULL DEFAULT current_user::regrole,
	registered_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, name)
);

CREATE TABLE chainexec.templates (
	organization_id uuid NOT NULL DEFAULT chainexec.current_organization(),
	template_id	text NOT NULL CHECK (template_id ~ '^[A-Za-z0-9_.-]{1,128}$'),
	body		text NOT NULL,
	registered_by regrole NOT NULL DEFAULT current_user::regrole,
	registered_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, template_id)
);

/* ------------------------------------------------------------------------
 * Executions and their lines
 * ------------------------------------------------------------------------ */

CREATE TABLE chainexec.universal_transactions (
	organization_id uuid NOT NULL,
	id			uuid NOT NULL DEFAULT gen_random_uuid(),
	transaction_type text NOT NULL DEFAULT 'chain_execution'
				CHECK (transaction_type = 'chain_execution'),
	chain_id	text NOT NULL,
	chain_version int NOT NULL,
	status		text NOT NULL DEFAULT 'pending'
				CHECK (status IN ('pending', 'running', 'paused', 'waiting', 'completed', 'failed',
								  'cancelled', 'timeout', 'compensating', 'compensated')),
	input		jsonb NOT NULL DEFAULT '{}',
	context		jsonb NOT NULL DEFAULT '{}',
	output		jsonb,
	error		jsonb,
	owner		regrole NOT NULL,
	priority	int NOT NULL DEFAULT 0,
	idempotency_key text,
	deadline	timestamptz,
	created_at	timestamptz NOT NULL DEFAULT now(),
	started_at	timestamptz,
	finished_at	timestamptz,
	smart_code	text NOT NULL,
	metadata	jsonb NOT NULL DEFAULT '{}',
	PRIMARY KEY (organization_id, id),
	FOREIGN KEY (organization_id, chain_id, chain_version)
		REFERENCES chainexec.chains (organization_id, chain_id, version)
);
COMMENT ON TABLE chainexec.universal_transactions IS 'one row per chain execution (header)';

CREATE UNIQUE INDEX universal_transactions_idempotency
	ON chainexec.universal_transactions (organization_id, chain_id, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
/* chain_history, chain_analytics, ETA estimates */
CREATE INDEX universal_transactions_by_chain
	ON chainexec.universal_transactions (organization_id, chain_id, created_at);
/* maxExecutionTime sweep */
CREATE INDEX universal_transactions_deadline
	ON chainexec.universal_transactions (deadline)
	WHERE deadline IS NOT NULL AND finished_at IS NULL;
/* chain_cleanup */
CREATE INDEX universal_transactions_finished
	ON chainexec.universal_transactions (finished_at)
	WHERE finished_at IS NOT NULL;

CREATE TABLE chainexec.universal_transaction_lines (
	organization_id uuid NOT NULL,
	transaction_id uuid NOT NULL,
	line_number	int NOT NULL,
	line_type	text NOT NULL CHECK (line_type IN ('step', 'fallback', 'compensation')),
	step_id		int NOT NULL,
	step_name	text NOT NULL,
	status		text NOT NULL DEFAULT 'pending'
				CHECK (status IN ('pending', 'ready', 'running', 'waiting', 'completed', 'failed',
								  'skipped', 'cancelled', 'compensated')),
	attempt		int NOT NULL DEFAULT 0,
	priority	int NOT NULL DEFAULT 0,
	not_before	timestamptz NOT NULL DEFAULT now(),
	deadline	timestamptz,
	parent_line	int,
	input		jsonb,
	output		jsonb,
	error		jsonb,
	started_at	timestamptz,
	finished_at	timestamptz,
	duration_ms	double precision,
	smart_code	text NOT NULL,
	PRIMARY KEY (organization_id, transaction_id, line_number),
	FOREIGN KEY (organization_id, transaction_id)
		REFERENCES chainexec.universal_transactions (organization_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE chainexec.universal_transaction_lines IS
	'one row per step (attempts counted in attempt), fallback or compensation of an execution';
COMMENT ON COLUMN chainexec.universal_transaction_lines.priority IS
	'the execution''s priority, copied for the dispatch index';
COMMENT ON COLUMN chainexec.universal_transaction_lines.parent_line IS
	'fallback and compensation lines: the step line they stand for';

/* The dispatch query: ready lines by priority, then not_before. */
CREATE INDEX universal_transaction_lines_ready
	ON chainexec.universal_transaction_lines (priority DESC, not_before)
	WHERE status = 'ready';
/* Timers: wait steps and external-step deadlines, by due time. */
CREATE INDEX universal_transaction_lines_waiting
	ON chainexec.universal_transaction_lines (not_before)
	WHERE status = 'waiting';

SELECT pg_catalog.pg_extension_config_dump('chainexec.chains', '');
SELECT pg_catalog.pg_extension_config_dump('chainexec.handlers', '');
SELECT pg_catalog.pg_extension_config_dump('chainexec.templates', '');
SELECT pg_catalog.pg_extension_config_dump('chainexec.universal_transactions', '');
SELECT pg_catalog.pg_extension_config_dump('chainexec.universal_transaction_lines', '');

/* ------------------------------------------------------------------------
 * Row-level security: a role sees what it owns (or whose owner role it is a
 * member of); chainexec_admin sees all; chainexec.organization_id, when
 * set, confines everything to that organization.
 * ------------------------------------------------------------------------ */

CREATE FUNCTION chainexec.org_visible(org uuid)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(nullif(pg_catalog.current_setting('chainexec.organization_id', true), ''), org::text)::uuid = org
$$;

ALTER TABLE chainexec.chains ENABLE ROW LEVEL SECURITY;
ALTER TABLE chainexec.handlers ENABLE ROW LEVEL SECURITY;
ALTER TABLE chainexec.templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE chainexec.universal_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE chainexec.universal_transaction_lines ENABLE ROW LEVEL SECURITY;

CREATE POLICY chains_read ON chainexec.chains FOR SELECT
	USING (chainexec.org_visible(organization_id));
CREATE POLICY handlers_read ON chainexec.handlers FOR SELECT
	USING (chainexec.org_visible(organization_id));
CREATE POLICY templates_read ON chainexec.templates FOR SELECT
	USING (chainexec.org_visible(organization_id));
CREATE POLICY executions_read ON chainexec.universal_transactions FOR SELECT
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(owner));
CREATE POLICY lines_read ON chainexec.universal_transaction_lines FOR SELECT
	USING (chainexec.org_visible(organization_id) AND EXISTS (
		SELECT FROM chainexec.universal_transactions t
		WHERE t.organization_id = universal_transaction_lines.organization_id
		  AND t.id = universal_transaction_lines.transaction_id));

REVOKE ALL ON ALL TABLES IN SCHEMA chainexec FROM PUBLIC;
GRANT USAGE ON SCHEMA chainexec TO PUBLIC;
GRANT SELECT ON chainexec.chains, chainexec.handlers, chainexec.templates,
	chainexec.universal_transactions, chainexec.universal_transaction_lines TO PUBLIC;

/*
 * Definitions are written by the SQL API running as the caller; these
 * policies keep each role to the chains, handlers and templates it created
 * (or whose creator role it is a member of).  Executions and lines are
 * written only by chainexec's C code, as the extension owner.
 */
GRANT INSERT, UPDATE, DELETE ON chainexec.chains, chainexec.handlers, chainexec.templates TO PUBLIC;
CREATE POLICY chains_write ON chainexec.chains FOR INSERT
	WITH CHECK (chainexec.org_visible(organization_id) AND chainexec.can_access(created_by));
CREATE POLICY chains_change ON chainexec.chains FOR UPDATE
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(created_by))
	WITH CHECK (chainexec.org_visible(organization_id) AND chainexec.can_access(created_by));
CREATE POLICY chains_delete ON chainexec.chains FOR DELETE
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(created_by));
CREATE POLICY handlers_write ON chainexec.handlers FOR INSERT
	WITH CHECK (chainexec.org_visible(organization_id) AND chainexec.can_access(registered_by));
CREATE POLICY handlers_change ON chainexec.handlers FOR UPDATE
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(registered_by));
CREATE POLICY handlers_delete ON chainexec.handlers FOR DELETE
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(registered_by));
CREATE POLICY templates_write ON chainexec.templates FOR INSERT
	WITH CHECK (chainexec.org_visible(organization_id) AND chainexec.can_access(registered_by));
CREATE POLICY templates_change ON chainexec.templates FOR UPDATE
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(registered_by));
CREATE POLICY templates_delete ON chainexec.templates FOR DELETE
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(registered_by));

/* ------------------------------------------------------------------------
 * Internal C entry points
 * ------------------------------------------------------------------------ */

/* Checks a definition (raises the first error); returns its summary. */
CREATE FUNCTION chainexec._definition_check(definition jsonb)
RETURNS jsonb
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'ce_definition_check';

/* Applies defaults and checks input against a definition's inputSchema:
 * {"valid": bool, "errors": [...], "input": input with defaults}. */
CREATE FUNCTION chainexec._input_check(definition jsonb, input jsonb)
RETURNS jsonb
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'ce_input_check';

/* ------------------------------------------------------------------------
 * Definitions
 * ------------------------------------------------------------------------ */

CREATE FUNCTION chainexec.chain_define(definition jsonb, publish boolean DEFAULT false)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	summary	jsonb;
	cid		text;
	org		uuid := chainexec.current_organization();
	v		int;
	owner_role regrole;
BEGIN
	IF definition IS NULL THEN
		RAISE EXCEPTION 'chain definition must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	summary := chainexec._definition_check(definition);
	cid := summary->>'id';

	/* Only the chain's creator (or a member of it, or chainexec_admin) may add versions. */
	SELECT created_by INTO owner_role FROM chainexec.chains
	 WHERE organization_id = org AND chain_id = cid ORDER BY version LIMIT 1;
	IF FOUND AND NOT chainexec.can_access(owner_role) THEN
		RAISE EXCEPTION 'permission denied for chain "%"', cid
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Chain "%s" was created by role %s.', cid, owner_role),
				  HINT = 'Ask its creator or a member of chainexec_admin to define new versions.';
	END IF;

	/* Serialize versioning of one chain. */
	PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(org::text || '/' || cid, 0));

	SELECT version INTO v FROM chainexec.chains
	 WHERE organization_id = org AND chain_id = cid AND status = 'draft';
	IF FOUND THEN
		UPDATE chainexec.chains
		   SET definition = chain_define.definition, name = summary->>'name',
			   description = summary->>'description', smart_code = chainexec.smart_code('CHAIN', cid, v),
			   created_by = coalesce(owner_role, current_user::regrole)
		 WHERE organization_id = org AND chain_id = cid AND version = v;
	ELSE
		SELECT coalesce(max(version), 0) + 1 INTO v FROM chainexec.chains
		 WHERE organization_id = org AND chain_id = cid;
		INSERT INTO chainexec.chains (organization_id, chain_id, version, status, definition,
									  name, description, smart_code, created_by)
		VALUES (org, cid, v, 'draft', chain_define.definition, summary->>'name',
				summary->>'description', chainexec.smart_code('CHAIN', cid, v),
				coalesce(owner_role, current_user::regrole));
	END IF;
	IF publish THEN
		PERFORM chainexec.chain_publish(cid, v);
	END IF;
	RETURN v;
END
$$;

CREATE FUNCTION chainexec._chain_for_change(p_chain_id text, p_version int)
RETURNS chainexec.chains
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	r chainexec.chains;
BEGIN
	IF p_chain_id IS NULL THEN
		RAISE EXCEPTION 'chain id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO r FROM chainexec.chains
	 WHERE organization_id = chainexec.current_organization() AND chain_id = p_chain_id
	   AND version = p_version;
	IF NOT FOUND THEN
		IF EXISTS (SELECT FROM chainexec.chains WHERE organization_id = chainexec.current_organization()
					AND chain_id = p_chain_id) THEN
			RAISE EXCEPTION 'version % of chain "%" does not exist', p_version, p_chain_id
				USING ERRCODE = 'undefined_object';
		END IF;
		RAISE EXCEPTION 'chain "%" does not exist', p_chain_id
			USING ERRCODE = 'undefined_object', HINT = 'Define it with chain_define().';
	END IF;
	IF NOT chainexec.can_access(r.created_by) THEN
		RAISE EXCEPTION 'permission denied for chain "%"', p_chain_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Chain "%s" was created by role %s.', p_chain_id, r.created_by);
	END IF;
	RETURN r;
END
$$;

CREATE FUNCTION chainexec.chain_publish(chain_id text, version int DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	v int := chain_publish.version;
	r chainexec.chains;
BEGIN
	IF v IS NULL THEN
		SELECT c.version INTO v FROM chainexec.chains c
		 WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = chain_publish.chain_id
		   AND c.status = 'draft';
		IF NOT FOUND THEN
			RAISE EXCEPTION 'chain "%" has no draft version to publish', chain_publish.chain_id
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'Define a new version with chain_define(), or name the version to publish.';
		END IF;
	END IF;
	r := chainexec._chain_for_change(chain_publish.chain_id, v);
	IF r.status = 'active' THEN
		RETURN v;
	END IF;
	IF r.status <> 'draft' THEN
		RAISE EXCEPTION 'cannot publish version % of chain "%": it is %', v, r.chain_id, r.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Only drafts are published; use chain_reactivate() for a deprecated version.';
	END IF;
	UPDATE chainexec.chains c SET status = 'deprecated'
	 WHERE c.organization_id = r.organization_id AND c.chain_id = r.chain_id AND c.status = 'active';
	UPDATE chainexec.chains c SET status = 'active', published_at = now()
	 WHERE c.organization_id = r.organization_id AND c.chain_id = r.chain_id AND c.version = v;
	RETURN v;
END
$$;

CREATE FUNCTION chainexec.chain_deprecate(chain_id text)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	v int;
	r chainexec.chains;
BEGIN
	SELECT c.version INTO v FROM chainexec.chains c
	 WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = chain_deprecate.chain_id
	   AND c.status = 'active';
	IF NOT FOUND THEN
		PERFORM chainexec._chain_for_change(chain_deprecate.chain_id,
			(SELECT max(c.version) FROM chainexec.chains c
			  WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = chain_deprecate.chain_id));
		RAISE EXCEPTION 'chain "%" has no active version to deprecate', chain_deprecate.chain_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	r := chainexec._chain_for_change(chain_deprecate.chain_id, v);
	UPDATE chainexec.chains c SET status = 'deprecated'
	 WHERE c.organization_id = r.organization_id AND c.chain_id = r.chain_id AND c.version = v;
	RETURN v;
END
$$;

CREATE FUNCTION chainexec.chain_reactivate(chain_id text, version int)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	r chainexec.chains := chainexec._chain_for_change(chain_reactivate.chain_id, chain_reactivate.version);
BEGIN
	IF r.status = 'active' THEN
		RETURN r.version;
	END IF;
	IF r.status <> 'deprecated' THEN
		RAISE EXCEPTION 'cannot reactivate version % of chain "%": it is %', r.version, r.chain_id, r.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Only deprecated versions can be reactivated; publish drafts with chain_publish().';
	END IF;
	UPDATE chainexec.chains c SET status = 'deprecated'
	 WHERE c.organization_id = r.organization_id AND c.chain_id = r.chain_id AND c.status = 'active';
	UPDATE chainexec.chains c SET status = 'active'
	 WHERE c.organization_id = r.organization_id AND c.chain_id = r.chain_id AND c.version = r.version;
	RETURN r.version;
END
$$;

CREATE FUNCTION chainexec.chain_archive(chain_id text, version int)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	r chainexec.chains := chainexec._chain_for_change(chain_archive.chain_id, chain_archive.version);
BEGIN
	IF r.status = 'archived' THEN
		RETURN r.version;
	END IF;
	IF r.status = 'active' THEN
		RAISE EXCEPTION 'cannot archive version % of chain "%": it is active', r.version, r.chain_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Deprecate it first with chain_deprecate(), or publish another version.';
	END IF;
	UPDATE chainexec.chains c SET status = 'archived'
	 WHERE c.organization_id = r.organization_id AND c.chain_id = r.chain_id AND c.version = r.version;
	RETURN r.version;
END
$$;

CREATE FUNCTION chainexec.chain_register_handler(name text, fn regprocedure)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	prev regrole;
	p pg_catalog.pg_proc;
BEGIN
	IF name IS NULL OR fn IS NULL THEN
		RAISE EXCEPTION 'handler name and function must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF name !~ '^[A-Za-z0-9_.-]{1,128}$' THEN
		RAISE EXCEPTION 'invalid handler name "%"', name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A handler name has 1 to 128 letters, digits, "_", "." or "-".';
	END IF;
	SELECT * INTO p FROM pg_catalog.pg_proc WHERE oid = fn;
	IF p.pronargs <> 1 OR p.proargtypes[0] <> 'jsonb'::regtype OR p.prorettype <> 'jsonb'::regtype
	   OR p.proretset OR p.prokind <> 'f' THEN
		RAISE EXCEPTION 'handler function % must take one jsonb and return jsonb', fn
			USING ERRCODE = 'invalid_function_definition',
				  HINT = 'Declare it as FUNCTION name(jsonb) RETURNS jsonb.';
	END IF;
	IF NOT pg_catalog.has_function_privilege(current_user, fn, 'EXECUTE') THEN
		RAISE EXCEPTION 'permission denied for function %', fn USING ERRCODE = 'insufficient_privilege';
	END IF;
	SELECT registered_by INTO prev FROM chainexec.handlers h
	 WHERE h.organization_id = chainexec.current_organization() AND h.name = chain_register_handler.name;
	IF FOUND AND NOT chainexec.can_access(prev) THEN
		RAISE EXCEPTION 'permission denied to replace handler "%"', name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Handler "%s" was registered by role %s.', name, prev);
	END IF;
	INSERT INTO chainexec.handlers (organization_id, name, fn, registered_by)
	VALUES (chainexec.current_organization(), name, fn, current_user::regrole)
	ON CONFLICT ON CONSTRAINT handlers_pkey
	DO UPDATE SET fn = EXCLUDED.fn, registered_at = now();
END
$$;

CREATE FUNCTION chainexec.chain_register_template(template_id text, body text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	prev regrole;
BEGIN
	IF template_id IS NULL OR body IS NULL THEN
		RAISE EXCEPTION 'template id and body must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF template_id !~ '^[A-Za-z0-9_.-]{1,128}$' THEN
		RAISE EXCEPTION 'invalid template id "%"', template_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A template id has 1 to 128 letters, digits, "_", "." or "-".';
	END IF;
	PERFORM chainexec._template_check(body);
	SELECT registered_by INTO prev FROM chainexec.templates t
	 WHERE t.organization_id = chainexec.current_organization() AND t.template_id = chain_register_template.template_id;
	IF FOUND AND NOT chainexec.can_access(prev) THEN
		RAISE EXCEPTION 'permission denied to replace template "%"', template_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Template "%s" was registered by role %s.', template_id, prev);
	END IF;
	INSERT INTO chainexec.templates (organization_id, template_id, body, registered_by)
	VALUES (chainexec.current_organization(), template_id, body, current_user::regrole)
	ON CONFLICT ON CONSTRAINT templates_pkey
	DO UPDATE SET body = EXCLUDED.body, registered_at = now();
END
$$;

/* Checks template syntax (raises with the position). */
CREATE FUNCTION chainexec._template_check(body text)
RETURNS void
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'ce_template_check';

CREATE FUNCTION chainexec.chain_validate(chain_id text, input jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	d jsonb;
	summary jsonb;
	res jsonb;
BEGIN
	SELECT c.definition INTO d FROM chainexec.chains c
	 WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = chain_validate.chain_id
	 ORDER BY (c.status = 'active') DESC, (c.status = 'draft') DESC, c.version DESC
	 LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'chain "%" does not exist', chain_validate.chain_id
			USING ERRCODE = 'undefined_object', HINT = 'Define it with chain_define().';
	END IF;
	summary := chainexec._definition_check(d);
	res := chainexec._input_check(d, coalesce(input, '{}'));
	RETURN jsonb_build_object('valid', (res->>'valid')::boolean,
							  'errors', res->'errors',
							  'warnings', coalesce(summary->'warnings', '[]'::jsonb));
END
$$;

/* ------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------ */

CREATE FUNCTION chainexec.chain_execute(chain_id text, input jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
RETURNS uuid
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'ce_chain_execute';
COMMENT ON FUNCTION chainexec.chain_execute(text, jsonb, jsonb) IS
	'record an execution of the chain; the background workers run it after the caller commits';

CREATE PROCEDURE chainexec.chain_run(chain_id text, input jsonb DEFAULT '{}', options jsonb DEFAULT '{}',
									 INOUT result jsonb DEFAULT NULL)
LANGUAGE c
AS 'MODULE_PATHNAME', 'ce_chain_run';
COMMENT ON PROCEDURE chainexec.chain_run(text, jsonb, jsonb, jsonb) IS
	'run the chain to its end in this session, committing after every step transition';

CREATE FUNCTION chainexec.raise_failure(failure_type text, message text)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'ce_raise_failure';
COMMENT ON FUNCTION chainexec.raise_failure(text, text) IS
	'raise an error that carries a failure type (matched by retryOnErrors)';

/*
 * Testing and debugging aid: one step transition of an execution inside the
 * caller's transaction (nothing commits in between; back-offs and timers
 * are not waited for: a line is due when not_before <= now()).  Returns
 * whether a line was processed.  Superuser only.
 */
CREATE FUNCTION chainexec._run_one(execution_id uuid)
RETURNS boolean
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'ce_run_one';
REVOKE ALL ON FUNCTION chainexec._run_one(uuid) FROM PUBLIC;
COMMENT ON FUNCTION chainexec._run_one(uuid) IS
	'testing and debugging aid: one step transition of the execution in the caller''s transaction (superuser only)';

/* Makes ready what can run; the caller holds the header's lock. */
CREATE FUNCTION chainexec._advance(org uuid, execution_id uuid)
RETURNS void
LANGUAGE c STRICT VOLATILE
AS 'MODULE_PATHNAME', 'ce_advance_sql';
REVOKE ALL ON FUNCTION chainexec._advance(uuid, uuid) FROM PUBLIC;

/* The execution row the caller may see, or an error. */
CREATE FUNCTION chainexec._execution(p_id uuid)
RETURNS chainexec.universal_transactions
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions;
BEGIN
	IF p_id IS NULL THEN
		RAISE EXCEPTION 'execution id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO t FROM chainexec.universal_transactions
	 WHERE organization_id = chainexec.current_organization() AND id = p_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'execution % does not exist', p_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'It may belong to another organization or role, or have been removed by chain_cleanup().';
	END IF;
	RETURN t;
END
$$;

CREATE FUNCTION chainexec.chain_result(execution_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._execution(execution_id);
	m jsonb;
BEGIN
	SELECT jsonb_build_object(
			'startTime', t.started_at,
			'endTime', t.finished_at,
			'totalDuration', CASE WHEN t.finished_at IS NOT NULL AND t.started_at IS NOT NULL
								  THEN round(extract(epoch FROM t.finished_at - t.started_at) * 1000)::bigint END,
			'stepsExecuted', count(*) FILTER (WHERE l.line_type IN ('step', 'fallback') AND l.status IN ('completed', 'compensated')),
			'stepsSkipped', count(*) FILTER (WHERE l.line_type = 'step' AND l.status = 'skipped'),
			'stepsFailed', count(*) FILTER (WHERE l.line_type IN ('step', 'fallback') AND l.status = 'failed'),
			'retriesAttempted', coalesce(sum(greatest(l.attempt - 1, 0)) FILTER (WHERE l.line_type <> 'compensation'), 0),
			'chainVersion', t.chain_version)
	  INTO m
	  FROM chainexec.universal_transaction_lines l
	 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id;
	RETURN jsonb_build_object(
		'executionId', t.id,
		'chainId', t.chain_id,
		'status', t.status,
		'finalContext', t.context,
		'outputs', t.output,
		'error', t.error,
		'metadata', m);
END
$$;

CREATE FUNCTION chainexec.chain_status(execution_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._execution(execution_id);
	p jsonb;
	cur jsonb;
	eta bigint;
BEGIN
	SELECT jsonb_build_object(
			'completed', count(*) FILTER (WHERE status IN ('completed', 'compensated')),
			'running', count(*) FILTER (WHERE status IN ('ready', 'running') AND not_before <= now()),
			'waiting', count(*) FILTER (WHERE status = 'waiting' OR (status = 'ready' AND not_before > now())),
			'pending', count(*) FILTER (WHERE status = 'pending'),
			'failed', count(*) FILTER (WHERE status = 'failed'),
			'skipped', count(*) FILTER (WHERE status IN ('skipped', 'cancelled')),
			'total', count(*),
			'percent', CASE WHEN count(*) = 0 THEN 100
							WHEN t.status = 'completed' THEN 100
							ELSE (100 * count(*) FILTER (WHERE status IN ('completed', 'compensated', 'skipped', 'failed', 'cancelled')) / count(*))::int END)
	  INTO p
	  FROM chainexec.universal_transaction_lines
	 WHERE organization_id = t.organization_id AND transaction_id = t.id AND line_type = 'step';

	SELECT coalesce(jsonb_agg(jsonb_build_object('stepId', step_id, 'stepName', step_name, 'status', status,
												 'attempt', attempt, 'lineType', line_type, 'notBefore', not_before)
							  ORDER BY line_number), '[]')
	  INTO cur
	  FROM chainexec.universal_transaction_lines
	 WHERE organization_id = t.organization_id AND transaction_id = t.id
	   AND status IN ('ready', 'running', 'waiting');

	/* ETA: the average duration, in this chain version's finished executions, of the steps not yet finished */
	IF t.finished_at IS NULL THEN
		SELECT round(sum(avg_ms))::bigint INTO eta
		  FROM (SELECT l.step_id, avg(h.duration_ms) AS avg_ms
				  FROM chainexec.universal_transaction_lines l
				  JOIN LATERAL (
						SELECT hl.duration_ms
						  FROM chainexec.universal_transactions ht
						  JOIN chainexec.universal_transaction_lines hl
							ON hl.organization_id = ht.organization_id AND hl.transaction_id = ht.id
						 WHERE ht.organization_id = t.organization_id AND ht.chain_id = t.chain_id
						   AND ht.chain_version = t.chain_version AND ht.status = 'completed'
						   AND hl.line_type = 'step' AND hl.step_id = l.step_id AND hl.duration_ms IS NOT NULL
						 ORDER BY ht.created_at DESC
						 LIMIT 20) h ON true
				 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id
				   AND l.line_type = 'step' AND l.status IN ('pending', 'ready', 'running', 'waiting')
				 GROUP BY l.step_id) s;
	ELSE
		eta := 0;
	END IF;

	RETURN jsonb_build_object(
		'executionId', t.id,
		'chainId', t.chain_id,
		'chainVersion', t.chain_version,
		'status', t.status,
		'currentSteps', cur,
		'progress', p || jsonb_build_object('etaMs', eta),
		'createdAt', t.created_at,
		'startedAt', t.started_at,
		'finishedAt', t.finished_at,
		'error', t.error);
END
$$;

CREATE FUNCTION chainexec.chain_history(chain_id text, lim int DEFAULT 20)
RETURNS TABLE (execution_id uuid, chain_version int, status text, created_at timestamptz,
			   started_at timestamptz, finished_at timestamptz, duration_ms double precision,
			   error jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, chainexec
AS $$
BEGIN
	IF lim IS NULL OR lim < 0 THEN
		RAISE EXCEPTION 'limit must be a non-negative integer' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	SELECT t.id, t.chain_version, t.status, t.created_at, t.started_at, t.finished_at,
		   extract(epoch FROM t.finished_at - t.started_at)::double precision * 1000, t.error
	  FROM chainexec.universal_transactions t
	 WHERE t.organization_id = chainexec.current_organization() AND t.chain_id = chain_history.chain_id
	 ORDER BY t.created_at DESC
	 LIMIT lim;
END
$$;
CREATE FUNCTION chainexec.chain_wait(execution_id uuid, timeout_ms int DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'ce_chain_wait';
COMMENT ON FUNCTION chainexec.chain_wait(uuid, int) IS
	'block until the execution ends (or timeout_ms passes) and return its result';
