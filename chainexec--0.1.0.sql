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
	/* operators are schema-qualified: this runs inside privileged code */
	SELECT CASE WHEN s IS NULL OR s OPERATOR(pg_catalog.=) '' THEN '00000000-0000-0000-0000-000000000000'::uuid
				ELSE s::uuid END
	  FROM (SELECT pg_catalog.current_setting('chainexec.organization_id', true) AS s) AS setting
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
	/* the lifecycle: draft -> active | archived; active -> deprecated;
	 * deprecated -> active | archived; archived is final */
	IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
		   (OLD.status = 'draft' AND NEW.status IN ('active', 'archived'))
		OR (OLD.status = 'active' AND NEW.status = 'deprecated')
		OR (OLD.status = 'deprecated' AND NEW.status IN ('active', 'archived'))) THEN
		RAISE EXCEPTION 'version % of chain "%" cannot go from % to %', OLD.version, OLD.chain_id,
			OLD.status, NEW.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Versions go draft -> active -> deprecated -> archived; a deprecated version can be reactivated.';
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
/*
 * chain_history, chain_analytics, ETA estimates.  Not a key, so chain_id
 * leads: then it can never pass for the primary key in a lookup of one
 * execution by (organization_id, id), which a plan made on an empty table
 * could otherwise choose.
 */
CREATE INDEX universal_transactions_by_chain
	ON chainexec.universal_transactions (chain_id, organization_id, created_at);
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
	/* the session's organization only: chainexec.organization_id, or the default one */
	SELECT org OPERATOR(pg_catalog.=) chainexec.current_organization()
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
	IF p_version IS NULL AND EXISTS (SELECT FROM chainexec.chains WHERE organization_id = chainexec.current_organization()
										AND chain_id = p_chain_id) THEN
		RAISE EXCEPTION 'version must not be null' USING ERRCODE = 'null_value_not_allowed';
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
			/* a chain that does not exist, or that is not ours, says so first */
			PERFORM chainexec._chain_for_change(chain_publish.chain_id,
				(SELECT max(c.version) FROM chainexec.chains c
				  WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = chain_publish.chain_id));
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
			'skipped', count(*) FILTER (WHERE status = 'skipped'),
			'cancelled', count(*) FILTER (WHERE status = 'cancelled'),
			'total', count(*),
			'percent', CASE WHEN count(*) = 0 THEN 100
							WHEN t.status = 'completed' THEN 100
							ELSE (100 * count(*) FILTER (WHERE status IN ('completed', 'compensated', 'skipped')
															 OR (status = 'failed' AND t.status IN ('pending', 'running', 'waiting', 'paused')))
								  / count(*))::int END)
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

/* ------------------------------------------------------------------------
 * Control
 *
 * Each public function below is the C entry point ce_control_call: it
 * checks, as the caller, that the execution exists in the caller's
 * organization and that the caller may control it, then runs the
 * implementation chainexec._<name> (not executable by PUBLIC) as the
 * extension owner.
 * ------------------------------------------------------------------------ */

CREATE FUNCTION chainexec._signal_running(execution_id uuid)
RETURNS void LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'ce_signal_running';
CREATE FUNCTION chainexec._finished()
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_finished_sql';
CREATE FUNCTION chainexec._external_result(org uuid, execution_id uuid, step int, ok boolean,
										   output jsonb, failure_type text, message text)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_external_result_sql';

/* Queue an execution event, honouring the chain's notify setting. */
CREATE FUNCTION chainexec._emit(t chainexec.universal_transactions, event text, status text,
								step_id int DEFAULT NULL, step_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	level text;
	progress int;
BEGIN
	SELECT coalesce(c.definition->>'notify', 'steps') INTO level FROM chainexec.chains c
	 WHERE c.organization_id = t.organization_id AND c.chain_id = t.chain_id AND c.version = t.chain_version;
	IF level = 'none' OR (level = 'lifecycle' AND event !~ '^(chain_|compensation_)') THEN
		RETURN;
	END IF;
	SELECT CASE WHEN count(*) = 0 THEN 100
				ELSE (100 * count(*) FILTER (WHERE l.status IN ('completed', 'skipped', 'compensated')
											 OR (l.status = 'failed' AND t.status IN ('pending', 'running', 'waiting', 'paused')))
					  / count(*))::int END
	  INTO progress
	  FROM chainexec.universal_transaction_lines l
	 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id AND l.line_type = 'step';
	PERFORM pg_catalog.pg_notify(pg_catalog.current_setting('chainexec.notify_channel'),
		jsonb_build_object('event', event, 'executionId', t.id, 'chainId', t.chain_id,
						   'stepId', step_id, 'stepName', step_name, 'status', status, 'attempt', 0,
						   'progress', progress, 'etaMs', NULL,
						   'ts', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text);
END
$$;

CREATE FUNCTION chainexec._lock_execution(p_id uuid)
RETURNS chainexec.universal_transactions
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions;
BEGIN
	SELECT * INTO t FROM chainexec.universal_transactions
	 WHERE organization_id = chainexec.current_organization() AND id = p_id
	   FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'execution % does not exist', p_id USING ERRCODE = 'undefined_object';
	END IF;
	RETURN t;
END
$$;

/* Close open lines of an execution (those not being run right now). */
CREATE FUNCTION chainexec._close_open_lines(t chainexec.universal_transactions, new_status text)
RETURNS void
LANGUAGE sql
AS $$
	UPDATE chainexec.universal_transaction_lines l
	   SET status = new_status,
		   finished_at = CASE WHEN new_status = 'pending' THEN NULL ELSE clock_timestamp() END
	  FROM (SELECT line_number FROM chainexec.universal_transaction_lines
			 WHERE organization_id = t.organization_id AND transaction_id = t.id
			   AND status IN ('pending', 'ready', 'waiting')
			   AND (new_status <> 'pending' OR status = 'ready')
			   FOR UPDATE SKIP LOCKED) s
	 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id AND l.line_number = s.line_number
$$;

/* Reopen a finished (failed, cancelled, timeout) execution so it can go on. */
CREATE FUNCTION chainexec._reopen(t chainexec.universal_transactions)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
BEGIN
	IF t.status IN ('completed', 'compensated', 'compensating') THEN
		RAISE EXCEPTION 'cannot resume execution %: it is %', t.id, t.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = CASE WHEN t.status = 'completed' THEN 'Start a new execution with chain_execute().'
							  ELSE 'Its compensations have run; start a new execution.' END;
	END IF;
	UPDATE chainexec.universal_transactions
	   SET status = 'running', finished_at = NULL, error = NULL,
		   deadline = CASE WHEN t.status = 'timeout' THEN NULL ELSE deadline END
	 WHERE organization_id = t.organization_id AND id = t.id;
END
$$;

CREATE FUNCTION chainexec._chain_cancel(execution_id uuid, reason text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._lock_execution(execution_id);
BEGIN
	IF t.status IN ('completed', 'failed', 'cancelled', 'timeout', 'compensated') THEN
		RETURN false;
	END IF;
	UPDATE chainexec.universal_transactions
	   SET status = 'cancelled', finished_at = clock_timestamp(),
		   error = jsonb_build_object('failure_type', 'cancelled', 'sqlstate', '57014',
									  'message', coalesce(reason, 'cancelled'))
	 WHERE organization_id = t.organization_id AND id = t.id
	 RETURNING * INTO t;
	PERFORM chainexec._close_open_lines(t, 'cancelled');
	PERFORM chainexec._signal_running(t.id);
	PERFORM chainexec._emit(t, 'chain_cancelled', 'cancelled');
	PERFORM chainexec._finished();
	RETURN true;
END
$$;

CREATE FUNCTION chainexec._chain_pause(execution_id uuid)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._lock_execution(execution_id);
BEGIN
	IF t.status = 'paused' THEN
		RETURN false;
	END IF;
	IF t.status NOT IN ('pending', 'running', 'waiting') THEN
		RAISE EXCEPTION 'cannot pause execution %: it is %', t.id, t.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	UPDATE chainexec.universal_transactions SET status = 'paused'
	 WHERE organization_id = t.organization_id AND id = t.id
	 RETURNING * INTO t;
	PERFORM chainexec._close_open_lines(t, 'pending');
	PERFORM chainexec._emit(t, 'chain_paused', 'paused');
	RETURN true;
END
$$;

CREATE FUNCTION chainexec._chain_resume(execution_id uuid)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._lock_execution(execution_id);
BEGIN
	IF t.status IN ('running', 'waiting', 'pending') THEN
		RETURN false;
	ELSIF t.status = 'paused' THEN
		UPDATE chainexec.universal_transactions SET status = 'running'
		 WHERE organization_id = t.organization_id AND id = t.id;
	ELSE
		PERFORM chainexec._reopen(t);
		/* failed and cancelled step lines run again; completed ones do not */
		UPDATE chainexec.universal_transaction_lines
		   SET status = 'pending', attempt = 0, error = NULL, finished_at = NULL, not_before = now()
		 WHERE organization_id = t.organization_id AND transaction_id = t.id
		   AND line_type = 'step' AND status IN ('failed', 'cancelled');
		UPDATE chainexec.universal_transaction_lines
		   SET status = 'cancelled'
		 WHERE organization_id = t.organization_id AND transaction_id = t.id
		   AND line_type = 'fallback' AND status NOT IN ('completed', 'skipped');
	END IF;
	PERFORM chainexec._advance(t.organization_id, t.id);
	SELECT * INTO t FROM chainexec.universal_transactions WHERE organization_id = t.organization_id AND id = t.id;
	PERFORM chainexec._emit(t, 'chain_resumed', t.status);
	RETURN true;
END
$$;

/* The latest step (or fallback) line of a step, locked; errors if it is running. */
CREATE FUNCTION chainexec._step_line(t chainexec.universal_transactions, p_step int)
RETURNS chainexec.universal_transaction_lines
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	l chainexec.universal_transaction_lines;
BEGIN
	IF p_step IS NULL THEN
		RAISE EXCEPTION 'step id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	BEGIN
		SELECT * INTO l FROM chainexec.universal_transaction_lines
		 WHERE organization_id = t.organization_id AND transaction_id = t.id AND step_id = p_step
		   AND line_type IN ('step', 'fallback')
		 ORDER BY line_number DESC LIMIT 1
		   FOR UPDATE NOWAIT;
	EXCEPTION WHEN lock_not_available THEN
		RAISE EXCEPTION 'step % of execution % is running', p_step, t.id
			USING ERRCODE = 'lock_not_available',
				  HINT = 'Wait for the attempt to end, or cancel the execution.';
	END;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'execution % has no step %', t.id, p_step USING ERRCODE = 'undefined_object';
	END IF;
	RETURN l;
END
$$;

CREATE FUNCTION chainexec._chain_retry_step(execution_id uuid, step int)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._lock_execution(execution_id);
	l chainexec.universal_transaction_lines := chainexec._step_line(t, step);
BEGIN
	IF l.status IN ('completed', 'compensated') THEN
		RAISE EXCEPTION 'step % of execution % has completed', step, t.id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Only failed, skipped, cancelled, waiting or scheduled steps can be retried.';
	END IF;
	IF t.status IN ('failed', 'cancelled', 'timeout', 'completed', 'compensated', 'compensating') THEN
		PERFORM chainexec._reopen(t);
		UPDATE chainexec.universal_transaction_lines
		   SET status = 'pending', finished_at = NULL
		 WHERE organization_id = t.organization_id AND transaction_id = t.id
		   AND line_type = 'step' AND status = 'cancelled';
	END IF;
	UPDATE chainexec.universal_transaction_lines
	   SET status = 'pending', attempt = 0, error = NULL, finished_at = NULL, not_before = now()
	 WHERE organization_id = l.organization_id AND transaction_id = l.transaction_id AND line_number = l.line_number;
	IF t.status = 'paused' THEN
		RETURN true;
	END IF;
	PERFORM chainexec._advance(t.organization_id, t.id);
	RETURN true;
END
$$;

CREATE FUNCTION chainexec._chain_skip_step(execution_id uuid, step int, output jsonb)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._lock_execution(execution_id);
	l chainexec.universal_transaction_lines := chainexec._step_line(t, step);
BEGIN
	IF l.status IN ('completed', 'skipped', 'compensated') THEN
		RAISE EXCEPTION 'step % of execution % is already %', step, t.id, l.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF output IS NOT NULL AND jsonb_typeof(output) <> 'object' THEN
		RAISE EXCEPTION 'output of a skipped step must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF t.status IN ('failed', 'cancelled', 'timeout') THEN
		PERFORM chainexec._reopen(t);
		UPDATE chainexec.universal_transaction_lines
		   SET status = 'pending', finished_at = NULL
		 WHERE organization_id = t.organization_id AND transaction_id = t.id
		   AND line_type = 'step' AND status = 'cancelled';
	ELSIF t.status IN ('completed', 'compensated', 'compensating') THEN
		RAISE EXCEPTION 'cannot skip a step of execution %: it is %', t.id, t.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	UPDATE chainexec.universal_transaction_lines
	   SET status = 'skipped', finished_at = clock_timestamp(),
		   output = CASE WHEN _chain_skip_step.output IS NULL THEN universal_transaction_lines.output
						 ELSE jsonb_build_object('variables', _chain_skip_step.output) END
	 WHERE organization_id = l.organization_id AND transaction_id = l.transaction_id AND line_number = l.line_number;
	IF output IS NOT NULL THEN
		UPDATE chainexec.universal_transactions SET context = context || _chain_skip_step.output
		 WHERE organization_id = t.organization_id AND id = t.id;
	END IF;
	PERFORM chainexec._emit(t, 'step_skipped', 'skipped', l.step_id, l.step_name);
	IF t.status <> 'paused' THEN
		PERFORM chainexec._advance(t.organization_id, t.id);
	END IF;
	RETURN true;
END
$$;

/* Completed steps with a rollbackAction, newest first (after to_step when given). */
CREATE FUNCTION chainexec._rollback_candidates(t chainexec.universal_transactions, to_step int)
RETURNS TABLE (line_number int, step_id int, step_name text, rollback_action text, finished_at timestamptz)
LANGUAGE sql STABLE
AS $$
	WITH d AS (
		SELECT definition FROM chainexec.chains
		 WHERE organization_id = t.organization_id AND chain_id = t.chain_id AND version = t.chain_version
	), steps AS (
		SELECT s AS step FROM d, jsonb_array_elements(d.definition->'steps') s
		UNION ALL
		SELECT s->'fallbackStep' FROM d, jsonb_array_elements(d.definition->'steps') s
		 WHERE s ? 'fallbackStep'
	), boundary AS (
		SELECT max(l.finished_at) AS at FROM chainexec.universal_transaction_lines l
		 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id
		   AND l.step_id = to_step AND l.line_type IN ('step', 'fallback')
	)
	SELECT l.line_number, l.step_id, l.step_name, st.step->>'rollbackAction', l.finished_at
	  FROM chainexec.universal_transaction_lines l
	  JOIN steps st ON (st.step->>'id')::int = l.step_id
	 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id
	   AND l.line_type IN ('step', 'fallback') AND l.status = 'completed'
	   AND st.step ? 'rollbackAction'
	   AND (to_step IS NULL OR l.finished_at > (SELECT at FROM boundary))
	 ORDER BY l.finished_at DESC, l.line_number DESC
$$;

CREATE FUNCTION chainexec._chain_rollback_plan(execution_id uuid)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._execution(execution_id);
BEGIN
	RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('order', n, 'stepId', step_id, 'stepName', step_name,
														 'rollbackAction', rollback_action, 'completedAt', finished_at)
									  ORDER BY n), '[]')
			  FROM (SELECT row_number() OVER () AS n, * FROM chainexec._rollback_candidates(t, NULL)) c);
END
$$;

CREATE FUNCTION chainexec._chain_rollback(execution_id uuid, to_step int)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._lock_execution(execution_id);
	c record;
	first boolean := true;
BEGIN
	IF t.status IN ('compensating', 'compensated') THEN
		RETURN false;
	END IF;
	IF to_step IS NOT NULL AND NOT EXISTS (
		SELECT FROM chainexec.universal_transaction_lines
		 WHERE organization_id = t.organization_id AND transaction_id = t.id AND step_id = to_step) THEN
		RAISE EXCEPTION 'execution % has no step %', t.id, to_step USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM chainexec._close_open_lines(t, 'cancelled');
	PERFORM chainexec._signal_running(t.id);
	FOR c IN SELECT * FROM chainexec._rollback_candidates(t, to_step) LOOP
		INSERT INTO chainexec.universal_transaction_lines
			(organization_id, transaction_id, line_number, line_type, step_id, step_name, status,
			 priority, parent_line, smart_code)
		SELECT t.organization_id, t.id, coalesce(max(line_number), 0) + 1, 'compensation', c.step_id,
			   c.step_name, CASE WHEN first THEN 'ready' ELSE 'pending' END, t.priority, c.line_number,
			   chainexec.smart_code('COMPENSATION', c.step_name, t.chain_version)
		  FROM chainexec.universal_transaction_lines
		 WHERE organization_id = t.organization_id AND transaction_id = t.id;
		first := false;
	END LOOP;
	UPDATE chainexec.universal_transactions
	   SET status = CASE WHEN first THEN 'compensated' ELSE 'compensating' END,
		   finished_at = CASE WHEN first THEN clock_timestamp() END
	 WHERE organization_id = t.organization_id AND id = t.id
	 RETURNING * INTO t;
	IF first THEN
		PERFORM chainexec._emit(t, 'compensation_completed', 'compensated');
		PERFORM chainexec._finished();
	ELSE
		PERFORM chainexec._emit(t, 'compensation_started', 'compensating');
		PERFORM chainexec._advance(t.organization_id, t.id);
	END IF;
	RETURN true;
END
$$;

CREATE FUNCTION chainexec._chain_step_complete(execution_id uuid, step int, output jsonb)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, chainexec
AS $$
	SELECT chainexec._external_result(chainexec.current_organization(), execution_id, step, true,
									  coalesce(output, '{}'), NULL, NULL)
$$;

CREATE FUNCTION chainexec._chain_step_fail(execution_id uuid, step int, failure_type text, message text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
BEGIN
	IF failure_type IS NULL OR failure_type !~ '^[a-z0-9_]{1,63}$' THEN
		RAISE EXCEPTION 'invalid failure type "%"', failure_type
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A failure type has 1 to 63 characters among a-z, 0-9 and "_", such as "api_timeout".';
	END IF;
	RETURN chainexec._external_result(chainexec.current_organization(), execution_id, step, false,
									  NULL, failure_type, message);
END
$$;

CREATE FUNCTION chainexec._chain_cleanup(older_than interval, caller regrole)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	n bigint;
BEGIN
	IF older_than IS NULL OR older_than < interval '0' THEN
		RAISE EXCEPTION 'retention must be a non-negative interval' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	WITH gone AS (
		DELETE FROM chainexec.universal_transactions t
		 WHERE t.finished_at IS NOT NULL AND t.finished_at < now() - older_than
		   AND t.organization_id = chainexec.current_organization()
		   AND (pg_catalog.pg_has_role(caller::oid, 'chainexec_admin', 'MEMBER')
				OR pg_catalog.pg_has_role(caller::oid, t.owner::oid, 'MEMBER'))
		RETURNING 1)
	SELECT count(*) INTO n FROM gone;
	RETURN n;
END
$$;

DO $$
DECLARE
	f text;
BEGIN
	FOR f IN SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
			  WHERE p.pronamespace = 'chainexec'::regnamespace AND p.proname LIKE '\_%'
	LOOP
		EXECUTE 'REVOKE ALL ON FUNCTION ' || f || ' FROM PUBLIC';
	END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION chainexec._execution(uuid), chainexec._definition_check(jsonb),
	chainexec._input_check(jsonb, jsonb), chainexec._template_check(text),
	chainexec._chain_for_change(text, int) TO PUBLIC;

CREATE FUNCTION chainexec.chain_cancel(execution_id uuid, reason text DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_pause(execution_id uuid)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_resume(execution_id uuid)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_retry_step(execution_id uuid, step int)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_skip_step(execution_id uuid, step int, output jsonb DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_rollback(execution_id uuid, to_step int DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_rollback_plan(execution_id uuid)
RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_step_complete(execution_id uuid, step int, output jsonb DEFAULT '{}')
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_step_fail(execution_id uuid, step int, failure_type text, message text DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';
CREATE FUNCTION chainexec.chain_cleanup(older_than interval)
RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_control_call';

/* ------------------------------------------------------------------------
 * Views for people
 * ------------------------------------------------------------------------ */

CREATE VIEW chainexec.executions WITH (security_invoker = true) AS
SELECT t.id AS execution_id, t.organization_id, t.chain_id, t.chain_version, t.status,
	   t.owner, t.priority, t.created_at, t.started_at, t.finished_at,
	   extract(epoch FROM coalesce(t.finished_at, now()) - t.started_at) * 1000 AS duration_ms,
	   t.error->>'failure_type' AS failure_type, t.error->>'message' AS error_message,
	   t.idempotency_key, t.smart_code
  FROM chainexec.universal_transactions t;

CREATE VIEW chainexec.step_runs WITH (security_invoker = true) AS
SELECT l.transaction_id AS execution_id, l.organization_id, t.chain_id, t.chain_version,
	   l.line_number, l.line_type, l.step_id, l.step_name, l.status, l.attempt,
	   l.not_before, l.started_at, l.finished_at, l.duration_ms,
	   l.error->>'failure_type' AS failure_type, l.error->>'sqlstate' AS sqlstate,
	   l.error->>'message' AS error_message, l.input, l.output, l.smart_code
  FROM chainexec.universal_transaction_lines l
  JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id;

CREATE VIEW chainexec.chain_analytics WITH (security_invoker = true) AS
SELECT t.organization_id, t.chain_id, t.chain_version,
	   count(*) AS executions,
	   count(*) FILTER (WHERE t.status = 'completed') AS completed,
	   count(*) FILTER (WHERE t.status IN ('failed', 'timeout', 'compensated')) AS failed,
	   round(100.0 * count(*) FILTER (WHERE t.status = 'completed')
			 / nullif(count(*) FILTER (WHERE t.finished_at IS NOT NULL), 0), 2) AS success_rate,
	   round(avg(extract(epoch FROM t.finished_at - t.started_at) * 1000)::numeric, 2) AS avg_duration_ms,
	   round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.finished_at - t.started_at) * 1000))::numeric, 2) AS p50_duration_ms,
	   round((percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM t.finished_at - t.started_at) * 1000))::numeric, 2) AS p95_duration_ms,
	   round(avg(s.steps), 2) AS avg_steps,
	   sum(s.retries) AS retries,
	   (SELECT c.definition->'performanceTargets' FROM chainexec.chains c
		 WHERE c.organization_id = t.organization_id AND c.chain_id = t.chain_id
		   AND c.version = t.chain_version) AS performance_targets
  FROM chainexec.universal_transactions t
  LEFT JOIN LATERAL (
		SELECT count(*) FILTER (WHERE l.line_type IN ('step', 'fallback') AND l.status = 'completed') AS steps,
			   coalesce(sum(greatest(l.attempt - 1, 0)), 0) AS retries
		  FROM chainexec.universal_transaction_lines l
		 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id) s ON true
 WHERE t.created_at > now() - interval '30 days'
 GROUP BY t.organization_id, t.chain_id, t.chain_version;

GRANT SELECT ON chainexec.executions, chainexec.step_runs, chainexec.chain_analytics TO PUBLIC;

/* ------------------------------------------------------------------------
 * Scheduling with pg_cron
 *
 * chainexec does not need pg_cron to install; these functions look for it
 * when called.  A scheduled job starts the chain through chain_execute
 * (the worker runs it; the job's connection is released at once), or, in
 * "inline" mode, runs it to the end in the job's own session with
 * CALL chain_run, for servers where chainexec is not preloaded.  Each run
 * carries the idempotency key cron:<job>:<scheduled minute>, so a job that
 * fires twice for the same minute starts one execution.
 * ------------------------------------------------------------------------ */

CREATE TABLE chainexec.schedules (
	organization_id uuid NOT NULL DEFAULT chainexec.current_organization(),
	job_name	text NOT NULL,
	chain_id	text,
	input		jsonb NOT NULL DEFAULT '{}',
	mode		text NOT NULL CHECK (mode IN ('worker', 'inline', 'cleanup')),
	schedule	text NOT NULL,
	cron_job_id	bigint NOT NULL,
	created_by	regrole NOT NULL DEFAULT current_user::regrole,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, job_name)
);
COMMENT ON TABLE chainexec.schedules IS 'pg_cron jobs that start chains, made by chain_schedule()';
SELECT pg_catalog.pg_extension_config_dump('chainexec.schedules', '');
ALTER TABLE chainexec.schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY schedules_read ON chainexec.schedules FOR SELECT
	USING (chainexec.org_visible(organization_id));
CREATE POLICY schedules_write ON chainexec.schedules FOR INSERT
	WITH CHECK (chainexec.org_visible(organization_id) AND chainexec.can_access(created_by));
CREATE POLICY schedules_change ON chainexec.schedules FOR UPDATE
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(created_by));
CREATE POLICY schedules_delete ON chainexec.schedules FOR DELETE
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(created_by));
GRANT SELECT, INSERT, UPDATE, DELETE ON chainexec.schedules TO PUBLIC;

/* Raises unless pg_cron is installed in this database. */
CREATE FUNCTION chainexec._require_pg_cron()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
		RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'chain_schedule() creates pg_cron jobs.',
				  HINT = pg_catalog.format('Add pg_cron to shared_preload_libraries, set cron.database_name = %L, restart the server, then run CREATE EXTENSION pg_cron in this database.',
										   current_database());
	END IF;
END
$$;
GRANT EXECUTE ON FUNCTION chainexec._require_pg_cron() TO PUBLIC;

CREATE FUNCTION chainexec._schedule_job(p_job_name text, p_schedule text, p_command text, p_chain_id text,
										p_input jsonb, p_mode text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	job bigint;
	org uuid := chainexec.current_organization();
	prev chainexec.schedules;
BEGIN
	PERFORM chainexec._require_pg_cron();
	IF p_job_name IS NULL OR p_job_name !~ '^[A-Za-z0-9_.:-]{1,128}$' THEN
		RAISE EXCEPTION 'invalid job name "%"', p_job_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A job name has 1 to 128 letters, digits, "_", ".", ":" or "-".';
	END IF;
	IF p_schedule IS NULL THEN
		RAISE EXCEPTION 'schedule must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO prev FROM chainexec.schedules WHERE organization_id = org AND job_name = p_job_name;
	IF FOUND AND NOT chainexec.can_access(prev.created_by) THEN
		RAISE EXCEPTION 'permission denied to replace job "%"', p_job_name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Job "%s" was scheduled by role %s.', p_job_name, prev.created_by);
	END IF;
	/* cron.schedule(name, schedule, command) creates or replaces the named job */
	EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job USING p_job_name, p_schedule, p_command;
	INSERT INTO chainexec.schedules AS s (organization_id, job_name, chain_id, input, mode, schedule, cron_job_id)
	VALUES (org, p_job_name, p_chain_id, coalesce(p_input, '{}'), p_mode, p_schedule, job)
	ON CONFLICT ON CONSTRAINT schedules_pkey
	DO UPDATE SET chain_id = EXCLUDED.chain_id, input = EXCLUDED.input, mode = EXCLUDED.mode,
				  schedule = EXCLUDED.schedule, cron_job_id = EXCLUDED.cron_job_id;
	RETURN job;
END
$$;
GRANT EXECUTE ON FUNCTION chainexec._schedule_job(text, text, text, text, jsonb, text) TO PUBLIC;

CREATE FUNCTION chainexec.chain_schedule(job_name text, schedule text, chain_id text,
										 input jsonb DEFAULT '{}', mode text DEFAULT 'worker')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	org uuid := chainexec.current_organization();
	key_expr text;
	cmd text;
BEGIN
	PERFORM chainexec._require_pg_cron();
	IF mode IS NULL OR mode NOT IN ('worker', 'inline') THEN
		RAISE EXCEPTION 'invalid schedule mode "%"', mode
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use "worker" (chain_execute; the background workers run it) or "inline" (CALL chain_run in the job''s session).';
	END IF;
	IF input IS NULL OR jsonb_typeof(input) <> 'object' THEN
		RAISE EXCEPTION 'input must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM chainexec.chains c WHERE c.organization_id = org
					AND c.chain_id = chain_schedule.chain_id AND c.status = 'active') THEN
		IF EXISTS (SELECT FROM chainexec.chains c WHERE c.organization_id = org AND c.chain_id = chain_schedule.chain_id) THEN
			RAISE EXCEPTION 'chain "%" has no active version', chain_schedule.chain_id
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'Publish a version with chainexec.chain_publish().';
		END IF;
		RAISE EXCEPTION 'chain "%" does not exist', chain_schedule.chain_id
			USING ERRCODE = 'undefined_object', HINT = 'Define it with chainexec.chain_define().';
	END IF;
	IF mode = 'inline' AND org <> '00000000-0000-0000-0000-000000000000' THEN
		RAISE EXCEPTION 'inline schedules run in the default organization only'
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Use mode "worker" for chains of other organizations.';
	END IF;

	key_expr := pg_catalog.format('jsonb_build_object(''idempotencyKey'', %L || to_char(date_trunc(''minute'', now()) AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI''))',
								  'cron:' || job_name || ':');
	IF mode = 'worker' THEN
		cmd := pg_catalog.format('SELECT chainexec.chain_execute(%L, %L::jsonb, %s) FROM (SELECT pg_catalog.set_config(''chainexec.organization_id'', %L, false)) AS org',
								 chain_id, input::text, key_expr, org::text);
	ELSE
		cmd := pg_catalog.format('CALL chainexec.chain_run(%L, %L::jsonb, %s)', chain_id, input::text, key_expr);
	END IF;
	RETURN chainexec._schedule_job(job_name, schedule, cmd, chain_id, input, mode);
END
$$;
COMMENT ON FUNCTION chainexec.chain_schedule(text, text, text, jsonb, text) IS
	'create or replace a pg_cron job that starts the chain on a schedule';

CREATE FUNCTION chainexec.chain_schedule_cleanup(job_name text DEFAULT 'chainexec-cleanup',
												 schedule text DEFAULT '17 3 * * *',
												 older_than interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
BEGIN
	IF older_than IS NULL OR older_than < interval '0' THEN
		RAISE EXCEPTION 'retention must be a non-negative interval' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN chainexec._schedule_job(job_name, schedule,
		pg_catalog.format('SELECT chainexec.chain_cleanup(%L::interval) FROM (SELECT pg_catalog.set_config(''chainexec.organization_id'', %L, false)) AS org',
						  older_than::text, chainexec.current_organization()::text),
		NULL, '{}', 'cleanup');
END
$$;
COMMENT ON FUNCTION chainexec.chain_schedule_cleanup(text, text, interval) IS
	'schedule chain_cleanup with pg_cron (by default daily at 03:17, keeping 30 days)';

CREATE FUNCTION chainexec.chain_unschedule(job_name text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec
AS $$
DECLARE
	s chainexec.schedules;
BEGIN
	PERFORM chainexec._require_pg_cron();
	SELECT * INTO s FROM chainexec.schedules
	 WHERE organization_id = chainexec.current_organization() AND schedules.job_name = chain_unschedule.job_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job "%" does not exist', job_name
			USING ERRCODE = 'undefined_object', HINT = 'chainexec.scheduled_jobs lists the jobs.';
	END IF;
	IF NOT chainexec.can_access(s.created_by) THEN
		RAISE EXCEPTION 'permission denied to unschedule job "%"', job_name
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	EXECUTE 'SELECT cron.unschedule($1)' USING s.cron_job_id;
	DELETE FROM chainexec.schedules
	 WHERE organization_id = s.organization_id AND schedules.job_name = s.job_name;
	RETURN true;
END
$$;

CREATE VIEW chainexec.scheduled_jobs WITH (security_invoker = true) AS
SELECT s.organization_id, s.job_name, s.schedule, s.mode, s.chain_id, s.input, s.cron_job_id,
	   s.created_by, s.created_at,
	   last.id AS last_execution_id, last.status AS last_status,
	   last.created_at AS last_started_at, last.finished_at AS last_finished_at,
	   (SELECT count(*) FROM chainexec.universal_transactions t
		 WHERE t.organization_id = s.organization_id AND t.chain_id = s.chain_id
		   AND t.idempotency_key LIKE 'cron:' || s.job_name || ':%') AS executions
  FROM chainexec.schedules s
  LEFT JOIN LATERAL (
		SELECT t.id, t.status, t.created_at, t.finished_at
		  FROM chainexec.universal_transactions t
		 WHERE t.organization_id = s.organization_id AND t.chain_id = s.chain_id
		   AND t.idempotency_key LIKE 'cron:' || s.job_name || ':%'
		 ORDER BY t.created_at DESC LIMIT 1) last ON true;
GRANT SELECT ON chainexec.scheduled_jobs TO PUBLIC;
