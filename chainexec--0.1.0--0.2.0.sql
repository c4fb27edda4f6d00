/*
 * chainexec--0.1.0--0.2.0.sql
 *	  Update script from 0.1.0 to 0.2.0.
 *
 * CREATE EXTENSION chainexec (0.2.0) runs chainexec--0.1.0.sql and then
 * this script, so a fresh installation and an updated one are the same
 * by construction.  Sections, in order: privileges and search paths;
 * definitions, handlers and templates; events; execution control;
 * scheduling; chain format.
 */
\echo Use "ALTER EXTENSION chainexec UPDATE TO '0.2.0'" to load this file. \quit

/* ------------------------------------------------------------------------
 * Privileges and search paths
 *
 * Only the extension owner writes chainexec's tables: PUBLIC keeps SELECT
 * (row-level security decides which rows) and loses every write
 * privilege.  The functions that write definitions and schedules are the
 * C entry point ce_definer_call (src/definer.c): it runs the
 * implementation chainexec._<name>(..., caller regrole), which PUBLIC
 * may not execute, as the extension owner, and the implementation checks
 * what the caller may do.
 *
 * Every function that is not C pins its search_path to pg_catalog,
 * chainexec, pg_temp: pg_temp last, since a search_path that does not
 * name pg_temp searches it first, for types and tables, and a temporary
 * table named "text" would stand for the type text inside code that runs
 * as the extension owner.  The small SQL helpers that row-level security
 * policies inline name every type, function and operator with its schema
 * instead (a SET clause would keep them from being inlined).  The last
 * section of this script applies both rules to every function again, so
 * that the functions later sections add follow them too.
 * ------------------------------------------------------------------------ */

/*
 * The session's organization: chainexec.organization_id, or the all-zero
 * default when empty, as before; in C: a SQL function the planner cannot
 * inline is planned again at every statement that calls it (every
 * row-level security check), and an inlined CASE of STABLE functions is
 * refused by Citus in the conditions of an UPDATE.
 */
CREATE OR REPLACE FUNCTION chainexec.current_organization()
RETURNS uuid
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ce_current_organization';

CREATE OR REPLACE FUNCTION chainexec.smart_code(kind text, name text, version int)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT 'CHAINEXEC.' OPERATOR(pg_catalog.||) kind OPERATOR(pg_catalog.||) '.'
		OPERATOR(pg_catalog.||) pg_catalog.upper(pg_catalog.regexp_replace(name, '[^A-Za-z0-9]+', '_', 'g'))
		OPERATOR(pg_catalog.||) '.V' OPERATOR(pg_catalog.||) version
$$;

CREATE OR REPLACE FUNCTION chainexec.can_access(r regrole)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.pg_has_role(CURRENT_USER, 'chainexec_admin'::pg_catalog.name, 'MEMBER')
		OR pg_catalog.pg_has_role(CURRENT_USER, r::pg_catalog.oid, 'MEMBER')
$$;

CREATE OR REPLACE FUNCTION chainexec.org_visible(org uuid)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	/* the session's organization only: chainexec.organization_id, or the default one */
	SELECT org OPERATOR(pg_catalog.=) chainexec.current_organization()
$$;

/* Whether role caller may change what role r owns: r itself, a member of r, or chainexec_admin. */
CREATE FUNCTION chainexec._role_may(caller regrole, r regrole)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.pg_has_role(caller::pg_catalog.oid, 'chainexec_admin'::pg_catalog.name, 'MEMBER')
		OR pg_catalog.pg_has_role(caller::pg_catalog.oid, r::pg_catalog.oid, 'MEMBER')
$$;

/* Writes: the extension owner only, through the SQL API. */
DO $$
DECLARE
	rel regclass;
BEGIN
	FOR rel IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
				WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	LOOP
		EXECUTE pg_catalog.format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %s FROM PUBLIC', rel);
	END LOOP;
	FOR rel IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
				WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind = 'S'
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE %s FROM PUBLIC', rel);
	END LOOP;
END
$$;
DROP POLICY chains_write ON chainexec.chains;
DROP POLICY chains_change ON chainexec.chains;
DROP POLICY chains_delete ON chainexec.chains;
DROP POLICY handlers_write ON chainexec.handlers;
DROP POLICY handlers_change ON chainexec.handlers;
DROP POLICY handlers_delete ON chainexec.handlers;
DROP POLICY templates_write ON chainexec.templates;
DROP POLICY templates_change ON chainexec.templates;
DROP POLICY templates_delete ON chainexec.templates;
DROP POLICY schedules_write ON chainexec.schedules;
DROP POLICY schedules_change ON chainexec.schedules;
DROP POLICY schedules_delete ON chainexec.schedules;

/* A schedule's input is its creator's: like executions, seen by the owner role's members and chainexec_admin. */
ALTER POLICY schedules_read ON chainexec.schedules
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(created_by));

/* ------------------------------------------------------------------------
 * Definitions, handlers and templates
 *
 * A chain belongs to the role that defined its first version (created_by):
 * only that role, its members and chainexec_admin define new versions of
 * it, publish, deprecate, reactivate or archive it.  Versions of one
 * chain are numbered under a row lock of its versions, which PUBLIC
 * cannot take (advisory locks can be taken by anyone).
 *
 * Handlers and templates belong to the role that registered them: a step
 * of a chain version uses the handler (or template) registered under that
 * name by the version's creator, else the one chainexec_admin shared
 * under that name.  Other roles see neither unless shared.
 * ------------------------------------------------------------------------ */

ALTER TABLE chainexec.handlers ADD COLUMN shared boolean NOT NULL DEFAULT false;
ALTER TABLE chainexec.templates ADD COLUMN shared boolean NOT NULL DEFAULT false;
/* 0.1.0 handlers and templates served the whole organization: those of chainexec_admin stay shared */
UPDATE chainexec.handlers SET shared = true
 WHERE pg_catalog.pg_has_role(registered_by::pg_catalog.oid, 'chainexec_admin'::pg_catalog.name, 'MEMBER');
UPDATE chainexec.templates SET shared = true
 WHERE pg_catalog.pg_has_role(registered_by::pg_catalog.oid, 'chainexec_admin'::pg_catalog.name, 'MEMBER');
ALTER TABLE chainexec.handlers DROP CONSTRAINT handlers_pkey,
	ADD CONSTRAINT handlers_pkey PRIMARY KEY (organization_id, name, registered_by);
ALTER TABLE chainexec.templates DROP CONSTRAINT templates_pkey,
	ADD CONSTRAINT templates_pkey PRIMARY KEY (organization_id, template_id, registered_by);
CREATE UNIQUE INDEX handlers_one_shared ON chainexec.handlers (organization_id, name) WHERE shared;
CREATE UNIQUE INDEX templates_one_shared ON chainexec.templates (organization_id, template_id) WHERE shared;
COMMENT ON COLUMN chainexec.handlers.shared IS
	'used by every role''s chains of the organization (only chainexec_admin shares); else only by chains its registering role created';
COMMENT ON COLUMN chainexec.templates.shared IS
	'used by every role''s chains of the organization (only chainexec_admin shares); else only by chains its registering role created';
ALTER POLICY handlers_read ON chainexec.handlers
	USING (chainexec.org_visible(organization_id) AND (shared OR chainexec.can_access(registered_by)));
ALTER POLICY templates_read ON chainexec.templates
	USING (chainexec.org_visible(organization_id) AND (shared OR chainexec.can_access(registered_by)));

/*
 * Lock every version of a chain (FOR NO KEY UPDATE: executions referencing
 * a version are not blocked) and return its owner, the creator of its
 * first version, or NULL for a new chain.
 */
CREATE FUNCTION chainexec._chain_lock(org uuid, cid text)
RETURNS regrole
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	owner_role regrole;
BEGIN
	PERFORM FROM chainexec.chains c WHERE c.organization_id = org AND c.chain_id = cid
	   FOR NO KEY UPDATE;
	SELECT c.created_by INTO owner_role FROM chainexec.chains c
	 WHERE c.organization_id = org AND c.chain_id = cid ORDER BY c.version LIMIT 1;
	RETURN owner_role;
END
$$;

/* Raise 42501 unless caller may change chain cid, owned by owner_role. */
CREATE FUNCTION chainexec._chain_check_owner(cid text, owner_role regrole, caller regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
BEGIN
	IF owner_role IS NOT NULL AND NOT chainexec._role_may(caller, owner_role) THEN
		RAISE EXCEPTION 'permission denied for chain "%"', cid
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Chain "%s" is owned by role %s.', cid, owner_role),
				  HINT = pg_catalog.format('Only role %s, its members and chainexec_admin may change its versions.', owner_role);
	END IF;
END
$$;

CREATE FUNCTION chainexec._chain_define(definition jsonb, publish boolean, caller regrole)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	summary	jsonb;
	cid		text;
	org		uuid := chainexec.current_organization();
	v		int;
	owner_role regrole;
	tries	int := 0;
BEGIN
	IF definition IS NULL THEN
		RAISE EXCEPTION 'chain definition must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	summary := chainexec._definition_check(definition);
	cid := summary->>'id';
	LOOP
		/* the lock first, then the owner and the version it decides */
		owner_role := chainexec._chain_lock(org, cid);
		PERFORM chainexec._chain_check_owner(cid, owner_role, caller);
		BEGIN
			SELECT c.version INTO v FROM chainexec.chains c
			 WHERE c.organization_id = org AND c.chain_id = cid AND c.status = 'draft';
			IF FOUND THEN
				UPDATE chainexec.chains c
				   SET definition = _chain_define.definition, name = summary->>'name',
					   description = summary->>'description', smart_code = chainexec.smart_code('CHAIN', cid, v)
				 WHERE c.organization_id = org AND c.chain_id = cid AND c.version = v;
			ELSE
				SELECT coalesce(max(c.version), 0) + 1 INTO v FROM chainexec.chains c
				 WHERE c.organization_id = org AND c.chain_id = cid;
				INSERT INTO chainexec.chains (organization_id, chain_id, version, status, definition,
											  name, description, smart_code, created_by)
				VALUES (org, cid, v, 'draft', _chain_define.definition, summary->>'name',
						summary->>'description', chainexec.smart_code('CHAIN', cid, v),
						coalesce(owner_role, caller));
			END IF;
			EXIT;
		EXCEPTION WHEN unique_violation THEN
			/*
			 * A concurrent first definition of the same id committed
			 * between our lock (there was nothing to lock) and our insert:
			 * its rows are there now, so lock them and decide again.
			 */
			tries := tries + 1;
			IF tries >= 3 THEN
				RAISE EXCEPTION 'could not serialize the definition of chain "%"', cid
					USING ERRCODE = 'serialization_failure',
						  HINT = 'Another session defined it at the same time; try again.';
			END IF;
		END;
	END LOOP;
	IF publish THEN
		PERFORM chainexec._chain_publish(cid, v, caller);
	END IF;
	RETURN v;
END
$$;

/*
 * Lock chain cid of the session's organization and check that caller may
 * change it; returns its owner.  Raises when the chain does not exist.
 */
CREATE FUNCTION chainexec._chain_owned(cid text, caller regrole)
RETURNS regrole
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	owner_role regrole;
BEGIN
	IF cid IS NULL THEN
		RAISE EXCEPTION 'chain id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	owner_role := chainexec._chain_lock(chainexec.current_organization(), cid);
	IF owner_role IS NULL THEN
		PERFORM chainexec._raise_chain_not_found(cid);
	END IF;
	PERFORM chainexec._chain_check_owner(cid, owner_role, caller);
	RETURN owner_role;
END
$$;

/* The version to change, after the lock and the owner check; or an error. */
CREATE FUNCTION chainexec._chain_for_change(p_chain_id text, p_version int, caller regrole)
RETURNS chainexec.chains
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	r chainexec.chains;
BEGIN
	PERFORM chainexec._chain_owned(p_chain_id, caller);
	IF p_version IS NULL THEN
		RAISE EXCEPTION 'version must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO r FROM chainexec.chains c
	 WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = p_chain_id
	   AND c.version = p_version;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'version % of chain "%" does not exist', p_version, p_chain_id
			USING ERRCODE = 'undefined_object';
	END IF;
	RETURN r;
END
$$;

CREATE FUNCTION chainexec._chain_publish(chain_id text, version int, caller regrole)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	v int := _chain_publish.version;
	r chainexec.chains;
BEGIN
	IF v IS NULL THEN
		PERFORM chainexec._chain_owned(_chain_publish.chain_id, caller);
		SELECT c.version INTO v FROM chainexec.chains c
		 WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = _chain_publish.chain_id
		   AND c.status = 'draft';
		IF NOT FOUND THEN
			RAISE EXCEPTION 'chain "%" has no draft version to publish', _chain_publish.chain_id
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'Define a new version with chain_define(), or name the version to publish.';
		END IF;
	END IF;
	r := chainexec._chain_for_change(_chain_publish.chain_id, v, caller);
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

CREATE FUNCTION chainexec._chain_deprecate(chain_id text, caller regrole)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	v int;
BEGIN
	PERFORM chainexec._chain_owned(_chain_deprecate.chain_id, caller);
	SELECT c.version INTO v FROM chainexec.chains c
	 WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = _chain_deprecate.chain_id
	   AND c.status = 'active';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'chain "%" has no active version to deprecate', _chain_deprecate.chain_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	UPDATE chainexec.chains c SET status = 'deprecated'
	 WHERE c.organization_id = chainexec.current_organization() AND c.chain_id = _chain_deprecate.chain_id
	   AND c.version = v;
	RETURN v;
END
$$;

CREATE FUNCTION chainexec._chain_reactivate(chain_id text, version int, caller regrole)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	r chainexec.chains := chainexec._chain_for_change(_chain_reactivate.chain_id, _chain_reactivate.version, caller);
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

CREATE FUNCTION chainexec._chain_archive(chain_id text, version int, caller regrole)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	r chainexec.chains := chainexec._chain_for_change(_chain_archive.chain_id, _chain_archive.version, caller);
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

/* Raise 42501 unless caller may share (chainexec_admin). */
CREATE FUNCTION chainexec._check_share(what text, caller regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
BEGIN
	IF NOT pg_catalog.pg_has_role(caller::pg_catalog.oid, 'chainexec_admin'::pg_catalog.name, 'MEMBER') THEN
		RAISE EXCEPTION 'permission denied to share %', what
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Only members of chainexec_admin share handlers and templates with every role.',
				  HINT = 'Register it without sharing: your own chains use it.';
	END IF;
END
$$;

CREATE FUNCTION chainexec._chain_register_handler(name text, fn regprocedure, shared boolean, caller regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	p pg_catalog.pg_proc;
	org uuid := chainexec.current_organization();
	ts timestamptz := pg_catalog.now();	/* a value: Citus refuses functions in DO UPDATE SET */
BEGIN
	IF name IS NULL OR fn IS NULL THEN
		RAISE EXCEPTION 'handler name and function must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF shared IS NULL THEN
		RAISE EXCEPTION '"shared" must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF name !~ '^[A-Za-z0-9_.-]{1,128}$' THEN
		RAISE EXCEPTION 'invalid handler name "%"', name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A handler name has 1 to 128 letters, digits, "_", "." or "-".';
	END IF;
	SELECT * INTO p FROM pg_catalog.pg_proc WHERE oid = fn;
	IF p.pronargs <> 1 OR p.proargtypes[0] <> 'pg_catalog.jsonb'::pg_catalog.regtype
	   OR p.prorettype <> 'pg_catalog.jsonb'::pg_catalog.regtype OR p.proretset OR p.prokind <> 'f' THEN
		RAISE EXCEPTION 'handler function % must take one jsonb and return jsonb', fn
			USING ERRCODE = 'invalid_function_definition',
				  HINT = 'Declare it as FUNCTION name(jsonb) RETURNS jsonb.';
	END IF;
	IF NOT pg_catalog.has_function_privilege(caller::pg_catalog.oid, fn::pg_catalog.oid, 'EXECUTE') THEN
		RAISE EXCEPTION 'permission denied for function %', fn USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF shared THEN
		PERFORM chainexec._check_share(pg_catalog.format('handler "%s"', name), caller);
		IF EXISTS (SELECT FROM chainexec.handlers h
					WHERE h.organization_id = org AND h.name = _chain_register_handler.name AND h.shared
					  AND h.registered_by <> caller) THEN
			RAISE EXCEPTION 'handler "%" is already shared by another role', name
				USING ERRCODE = 'duplicate_object',
					  HINT = 'Its registering role can replace it, or register it without sharing.';
		END IF;
	END IF;
	INSERT INTO chainexec.handlers AS h (organization_id, name, fn, registered_by, shared)
	VALUES (org, name, fn, caller, shared)
	ON CONFLICT ON CONSTRAINT handlers_pkey
	DO UPDATE SET fn = EXCLUDED.fn, shared = EXCLUDED.shared, registered_at = ts;
END
$$;

CREATE FUNCTION chainexec._chain_register_handler(name text, fn regprocedure, caller regrole)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
	SELECT chainexec._chain_register_handler(name, fn, false, caller)
$$;

CREATE FUNCTION chainexec._chain_register_template(template_id text, body text, shared boolean, caller regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	org uuid := chainexec.current_organization();
	ts timestamptz := pg_catalog.now();	/* a value: Citus refuses functions in DO UPDATE SET */
BEGIN
	IF template_id IS NULL OR body IS NULL THEN
		RAISE EXCEPTION 'template id and body must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF shared IS NULL THEN
		RAISE EXCEPTION '"shared" must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF template_id !~ '^[A-Za-z0-9_.-]{1,128}$' THEN
		RAISE EXCEPTION 'invalid template id "%"', template_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A template id has 1 to 128 letters, digits, "_", "." or "-".';
	END IF;
	PERFORM chainexec._template_check(body);
	IF shared THEN
		PERFORM chainexec._check_share(pg_catalog.format('template "%s"', template_id), caller);
		IF EXISTS (SELECT FROM chainexec.templates t
					WHERE t.organization_id = org AND t.template_id = _chain_register_template.template_id
					  AND t.shared AND t.registered_by <> caller) THEN
			RAISE EXCEPTION 'template "%" is already shared by another role', template_id
				USING ERRCODE = 'duplicate_object',
					  HINT = 'Its registering role can replace it, or register it without sharing.';
		END IF;
	END IF;
	INSERT INTO chainexec.templates AS t (organization_id, template_id, body, registered_by, shared)
	VALUES (org, template_id, body, caller, shared)
	ON CONFLICT ON CONSTRAINT templates_pkey
	DO UPDATE SET body = EXCLUDED.body, shared = EXCLUDED.shared, registered_at = ts;
END
$$;

CREATE FUNCTION chainexec._chain_register_template(template_id text, body text, caller regrole)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
	SELECT chainexec._chain_register_template(template_id, body, false, caller)
$$;

/* The public functions: ce_definer_call runs chainexec._<name>(..., caller) as the extension owner. */
CREATE OR REPLACE FUNCTION chainexec.chain_define(definition jsonb, publish boolean DEFAULT false)
RETURNS int LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE OR REPLACE FUNCTION chainexec.chain_publish(chain_id text, version int DEFAULT NULL)
RETURNS int LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE OR REPLACE FUNCTION chainexec.chain_deprecate(chain_id text)
RETURNS int LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE OR REPLACE FUNCTION chainexec.chain_reactivate(chain_id text, version int)
RETURNS int LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE OR REPLACE FUNCTION chainexec.chain_archive(chain_id text, version int)
RETURNS int LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE OR REPLACE FUNCTION chainexec.chain_register_handler(name text, fn regprocedure)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE FUNCTION chainexec.chain_register_handler(name text, fn regprocedure, shared boolean)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE OR REPLACE FUNCTION chainexec.chain_register_template(template_id text, body text)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE FUNCTION chainexec.chain_register_template(template_id text, body text, shared boolean)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
COMMENT ON FUNCTION chainexec.chain_register_handler(text, regprocedure, boolean) IS
	'register a handler for the chains you create, or (shared, chainexec_admin only) for every role''s chains';
COMMENT ON FUNCTION chainexec.chain_register_template(text, text, boolean) IS
	'register a template for the chains you create, or (shared, chainexec_admin only) for every role''s chains';

/* 0.1.0's check, run as the caller by the functions above; gone with them */
DROP FUNCTION chainexec._chain_for_change(text, int);

REVOKE ALL ON FUNCTION chainexec._role_may(regrole, regrole), chainexec._chain_lock(uuid, text),
	chainexec._chain_check_owner(text, regrole, regrole), chainexec._chain_define(jsonb, boolean, regrole),
	chainexec._chain_owned(text, regrole), chainexec._chain_for_change(text, int, regrole),
	chainexec._chain_publish(text, int, regrole), chainexec._chain_deprecate(text, regrole),
	chainexec._chain_reactivate(text, int, regrole), chainexec._chain_archive(text, int, regrole),
	chainexec._check_share(text, regrole),
	chainexec._chain_register_handler(text, regprocedure, boolean, regrole),
	chainexec._chain_register_handler(text, regprocedure, regrole),
	chainexec._chain_register_template(text, text, boolean, regrole),
	chainexec._chain_register_template(text, text, regrole) FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Events
 *
 * PostgreSQL has no privilege on LISTEN, so an event goes only to
 * channels whose names other roles cannot derive: its owner role's
 * channel in its organization, read by the members of that role, and the
 * organization's admin channel, read by chainexec_admin (the row-level
 * security rule of executions).  A channel is named
 * <chainexec.notify_channel>_<32 hex digits of a HMAC-SHA-256 keyed with
 * channel_secret>; chain_listen() subscribes a session to the channels its
 * role may read.  Payloads carry no variable values and no rendered input.
 * ------------------------------------------------------------------------ */

/* The key of channel names: the extension owner's alone, never dumped. */
CREATE TABLE chainexec.channel_secret (
	singleton	boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	secret		bytea NOT NULL CHECK (octet_length(secret) >= 32),
	created_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE chainexec.channel_secret IS
	'the key of the event channel names; readable by the extension owner only';
REVOKE ALL ON chainexec.channel_secret FROM PUBLIC;
/* 244 random bits from two version-4 uuids (pg_strong_random) */
INSERT INTO chainexec.channel_secret (secret)
	SELECT pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text
												OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::text,
												'-', ''), 'hex');

CREATE FUNCTION chainexec.chain_listen(role regrole DEFAULT NULL)
RETURNS SETOF text
LANGUAGE c VOLATILE ROWS 4 AS 'MODULE_PATHNAME', 'ce_chain_listen';
COMMENT ON FUNCTION chainexec.chain_listen(regrole) IS
	'LISTEN, from the end of the transaction on, to the events the current role may read in the session''s organization (its roles'' executions; all of them for chainexec_admin), or to those of one role; returns the channel names';

CREATE FUNCTION chainexec.chain_unlisten(role regrole DEFAULT NULL)
RETURNS SETOF text
LANGUAGE c VOLATILE ROWS 4 AS 'MODULE_PATHNAME', 'ce_chain_unlisten';
COMMENT ON FUNCTION chainexec.chain_unlisten(regrole) IS
	'UNLISTEN the event channels of chainexec this session listens to (or the channel of one role); returns their names';

/*
 * A new secret: every channel gets a new name, so that a role that has
 * left an owner role (and may still LISTEN on a name it learned) hears no
 * more.  Sessions call chain_listen() again.
 */
CREATE FUNCTION chainexec.chain_rotate_channels()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
BEGIN
	/* TRUNCATE, not DELETE: its relcache invalidation tells every backend */
	TRUNCATE chainexec.channel_secret;
	INSERT INTO chainexec.channel_secret (secret)
		SELECT pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text
													OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::text,
													'-', ''), 'hex');
END
$$;
COMMENT ON FUNCTION chainexec.chain_rotate_channels() IS
	'give every event channel a new name (a new secret); listeners call chain_listen() again';
REVOKE ALL ON FUNCTION chainexec.chain_rotate_channels() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chainexec.chain_rotate_channels() TO chainexec_admin;

/* ------------------------------------------------------------------------
 * Execution control
 * ------------------------------------------------------------------------ */

/*
 * The control functions are C in the engine (src/engine/control.c; its header
 * draws their state machine): one copy of events, progress and ETA,
 * closing lines, compensation and context checks, shared with the step
 * transitions.  The PL/pgSQL implementations of 0.1.0 and the C helpers
 * they called back go.
 */
DROP FUNCTION chainexec._chain_cancel(uuid, text);
DROP FUNCTION chainexec._chain_pause(uuid);
DROP FUNCTION chainexec._chain_resume(uuid);
DROP FUNCTION chainexec._chain_retry_step(uuid, int);
DROP FUNCTION chainexec._chain_skip_step(uuid, int, jsonb);
DROP FUNCTION chainexec._chain_rollback(uuid, int);
DROP FUNCTION chainexec._chain_rollback_plan(uuid);
DROP FUNCTION chainexec._chain_step_complete(uuid, int, jsonb);
DROP FUNCTION chainexec._chain_step_fail(uuid, int, text, text);
DROP FUNCTION chainexec._chain_cleanup(interval, regrole);
DROP FUNCTION chainexec._rollback_candidates(chainexec.universal_transactions, int);
DROP FUNCTION chainexec._step_line(chainexec.universal_transactions, int);
DROP FUNCTION chainexec._reopen(chainexec.universal_transactions);
DROP FUNCTION chainexec._close_open_lines(chainexec.universal_transactions, text);
DROP FUNCTION chainexec._lock_execution(uuid);
DROP FUNCTION chainexec._emit(chainexec.universal_transactions, text, text, int, text);
DROP FUNCTION chainexec._advance(uuid, uuid);
DROP FUNCTION chainexec._external_result(uuid, uuid, int, boolean, jsonb, text, text);
DROP FUNCTION chainexec._signal_running(uuid);
DROP FUNCTION chainexec._finished();

/* ETA: a step's time from its first attempt's start, failed attempts included. */
ALTER TABLE chainexec.universal_transaction_lines ADD COLUMN first_started_at timestamptz;
COMMENT ON COLUMN chainexec.universal_transaction_lines.first_started_at IS
	'when the first attempt of the line started (started_at is the last attempt''s)';
COMMENT ON COLUMN chainexec.universal_transaction_lines.deadline IS
	'a waiting line''s due time, kept aside while its execution is paused (not_before is then infinity)';

/*
 * Progress and ETA of chain_status: the engine's one computation (the
 * events report the same), not a copy in SQL.
 */
CREATE FUNCTION chainexec._progress(execution_id uuid)
RETURNS jsonb LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'ce_progress_sql';
COMMENT ON FUNCTION chainexec._progress(uuid) IS
	'{"percent", "etaMs"} of an execution the caller may see, as its events report them';

CREATE OR REPLACE FUNCTION chainexec.chain_status(execution_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._execution(execution_id);
	p jsonb;
	cur jsonb;
BEGIN
	SELECT jsonb_build_object(
			'completed', count(*) FILTER (WHERE status IN ('completed', 'compensated')),
			'running', count(*) FILTER (WHERE status IN ('ready', 'running') AND not_before <= now() AND waits_for IS NULL),
			'waiting', count(*) FILTER (WHERE status = 'waiting' OR (status = 'ready' AND (not_before > now() OR waits_for IS NOT NULL))),
			'pending', count(*) FILTER (WHERE status = 'pending'),
			'failed', count(*) FILTER (WHERE status = 'failed'),
			'skipped', count(*) FILTER (WHERE status = 'skipped'),
			'cancelled', count(*) FILTER (WHERE status = 'cancelled'),
			'total', count(*))
	  INTO p
	  FROM chainexec.universal_transaction_lines
	 WHERE organization_id OPERATOR(pg_catalog.=) t.organization_id
	   AND transaction_id OPERATOR(pg_catalog.=) t.id AND line_type OPERATOR(pg_catalog.=) 'step';

	SELECT coalesce(jsonb_agg(jsonb_build_object('stepId', step_id, 'stepName', step_name, 'status', status,
												 'attempt', attempt, 'lineType', line_type, 'notBefore', not_before)
							  ORDER BY line_number), '[]')
	  INTO cur
	  FROM chainexec.universal_transaction_lines
	 WHERE organization_id OPERATOR(pg_catalog.=) t.organization_id
	   AND transaction_id OPERATOR(pg_catalog.=) t.id
	   AND status OPERATOR(pg_catalog.=) ANY (chainexec._status_names('line', 'active'));

	RETURN jsonb_build_object(
		'executionId', t.id,
		'chainId', t.chain_id,
		'chainVersion', t.chain_version,
		'status', t.status,
		'currentSteps', cur,
		'progress', p OPERATOR(pg_catalog.||) chainexec._progress(t.id),
		'createdAt', t.created_at,
		'startedAt', t.started_at,
		'finishedAt', t.finished_at,
		'error', t.error);
END
$$;

CREATE OR REPLACE FUNCTION chainexec.chain_cancel(execution_id uuid, reason text DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_cancel';
COMMENT ON FUNCTION chainexec.chain_cancel(uuid, text) IS
	'stop the execution (a running step is interrupted); false when it had ended already';

CREATE OR REPLACE FUNCTION chainexec.chain_pause(execution_id uuid)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_pause';
COMMENT ON FUNCTION chainexec.chain_pause(uuid) IS
	'pause the execution at the next step boundary; false when it is paused already';

CREATE OR REPLACE FUNCTION chainexec.chain_resume(execution_id uuid)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_resume';
COMMENT ON FUNCTION chainexec.chain_resume(uuid) IS
	'resume a paused execution, or a failed, cancelled or timed-out one from its failed steps; due times are kept';

CREATE OR REPLACE FUNCTION chainexec.chain_retry_step(execution_id uuid, step int)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_retry_step';
COMMENT ON FUNCTION chainexec.chain_retry_step(uuid, int) IS
	'run a step that has not completed again, as a new first attempt (reopens a stopped execution)';

CREATE OR REPLACE FUNCTION chainexec.chain_skip_step(execution_id uuid, step int, output jsonb DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_skip_step';
COMMENT ON FUNCTION chainexec.chain_skip_step(uuid, int, jsonb) IS
	'mark a step that has not completed as skipped, its output (an object) merged into the variables';

CREATE OR REPLACE FUNCTION chainexec.chain_rollback(execution_id uuid, to_step int DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_rollback';
COMMENT ON FUNCTION chainexec.chain_rollback(uuid, int) IS
	'run the compensations of the completed steps (after to_step), newest first; false when compensating or compensated';

CREATE OR REPLACE FUNCTION chainexec.chain_rollback_plan(execution_id uuid)
RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_rollback_plan';
COMMENT ON FUNCTION chainexec.chain_rollback_plan(uuid) IS
	'the compensations chain_rollback would run, in order';

CREATE OR REPLACE FUNCTION chainexec.chain_step_complete(execution_id uuid, step int, output jsonb DEFAULT '{}')
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_step_complete';
COMMENT ON FUNCTION chainexec.chain_step_complete(uuid, int, jsonb) IS
	'the result of an external step that waits: its output variables (an object)';

CREATE OR REPLACE FUNCTION chainexec.chain_step_fail(execution_id uuid, step int, failure_type text, message text DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_step_fail';
COMMENT ON FUNCTION chainexec.chain_step_fail(uuid, int, text, text) IS
	'the failure of an external step that waits (retryConfig and onFailure apply)';

CREATE OR REPLACE FUNCTION chainexec.chain_cleanup(older_than interval)
RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_chain_cleanup';
COMMENT ON FUNCTION chainexec.chain_cleanup(interval) IS
	'delete the finished executions older than that, of those the caller may control; returns how many';

/* ------------------------------------------------------------------------
 * Scheduling
 *
 * pg_cron jobs are made and dropped as the caller (a job runs as the role
 * that made it); the row of chainexec.schedules that records one is
 * written by the extension owner, through chainexec._schedule_save and
 * chainexec._schedule_forget (ce_definer_call), which check that the job
 * is the caller's and runs the command chainexec builds for the row.
 *
 * A schedule name is its role's own within an organization, as a pg_cron
 * job name is its role's own: schedules are keyed by organization, role
 * (created_by) and name.  chain_schedule, chain_unschedule and
 * chain_schedule_cleanup act on the caller's own schedule of that name;
 * another role's schedule of the same name is neither replaced, dropped
 * nor revealed.  A chainexec_admin member who must drop another role's
 * schedule does it as that role (SET ROLE), as pg_cron's own
 * cron.unschedule requires.
 * ------------------------------------------------------------------------ */

/* 0.1.0 rows are unique per organization and name, hence per organization, role and name. */
ALTER TABLE chainexec.schedules DROP CONSTRAINT schedules_pkey;
ALTER TABLE chainexec.schedules ADD CONSTRAINT schedules_pkey PRIMARY KEY (organization_id, created_by, job_name);

/*
 * The pg_cron command of a schedule, built by chainexec from the row's
 * chain, input and mode (a "cleanup" row keeps its retention as
 * input->>'olderThan'); _schedule_save_owner refuses to record a job that
 * runs anything else.
 */
CREATE FUNCTION chainexec._schedule_command(p_job_name text, p_chain_id text, p_input jsonb, p_mode text, p_org uuid)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	key_expr text;
BEGIN
	key_expr := pg_catalog.format('jsonb_build_object(''idempotencyKey'', %L || to_char(date_trunc(''minute'', now()) AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI''))',
								  'cron:' OPERATOR(pg_catalog.||) p_job_name OPERATOR(pg_catalog.||) ':');
	IF p_mode OPERATOR(pg_catalog.=) 'worker' THEN
		RETURN pg_catalog.format('SELECT chainexec.chain_execute(%L, %L::jsonb, %s) FROM (SELECT pg_catalog.set_config(''chainexec.organization_id'', %L, false)) AS org',
								 p_chain_id, p_input::text, key_expr, p_org::text);
	ELSIF p_mode OPERATOR(pg_catalog.=) 'inline' THEN
		RETURN pg_catalog.format('CALL chainexec.chain_run(%L, %L::jsonb, %s)', p_chain_id, p_input::text, key_expr);
	ELSIF p_mode OPERATOR(pg_catalog.=) 'cleanup' THEN
		RETURN pg_catalog.format('SELECT chainexec.chain_cleanup(%L::interval) FROM (SELECT pg_catalog.set_config(''chainexec.organization_id'', %L, false)) AS org',
								 (p_input OPERATOR(pg_catalog.->>) 'olderThan')::interval::text, p_org::text);
	END IF;
	RAISE EXCEPTION 'invalid schedule mode "%"', p_mode USING ERRCODE = 'invalid_parameter_value';
END
$$;

/*
 * _schedule_job took the command to run from its caller, so a schedule row
 * could name one chain while its pg_cron job ran anything: it now builds
 * the command itself.
 */
DROP FUNCTION chainexec._schedule_job(text, text, text, text, jsonb, text);
CREATE FUNCTION chainexec._schedule_job(p_job_name text, p_schedule text, p_chain_id text, p_input jsonb, p_mode text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	job bigint;
	org uuid := chainexec.current_organization();
	cron_name text;
	prev_job bigint;
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
	/*
	 * cron.schedule(name, schedule, command) creates or replaces the
	 * caller's job of that name; one role may schedule for several
	 * organizations, so a job name is scoped to its organization: in
	 * pg_cron, "<organization>/<job name>" ("/" is not allowed in job
	 * names), the plain name in the default organization.
	 */
	cron_name := CASE WHEN org OPERATOR(pg_catalog.=) '00000000-0000-0000-0000-000000000000'::uuid
					  THEN p_job_name ELSE org::text OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) p_job_name END;
	SELECT s.cron_job_id INTO prev_job FROM chainexec.schedules s
	 WHERE s.organization_id = org AND s.created_by = current_user::regrole AND s.job_name = p_job_name;
	EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
		USING cron_name, p_schedule, chainexec._schedule_command(p_job_name, p_chain_id, coalesce(p_input, '{}'), p_mode, org);
	/*
	 * The caller's schedule of that name had another job: made by 0.1.0
	 * under the plain name in an organization other than the default one.
	 */
	IF prev_job IS NOT NULL AND prev_job OPERATOR(pg_catalog.<>) job THEN
		EXECUTE 'SELECT cron.unschedule(j.jobid) FROM cron.job j WHERE j.jobid OPERATOR(pg_catalog.=) $1 AND j.username OPERATOR(pg_catalog.=) current_user'
			USING prev_job;
	END IF;
	PERFORM chainexec._schedule_save(p_job_name, p_schedule, job, p_chain_id, coalesce(p_input, '{}'), p_mode);
	RETURN job;
END
$$;
GRANT EXECUTE ON FUNCTION chainexec._schedule_job(text, text, text, jsonb, text) TO PUBLIC;

CREATE OR REPLACE FUNCTION chainexec.chain_schedule(job_name text, schedule text, chain_id text,
													input jsonb DEFAULT '{}', mode text DEFAULT 'worker')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	org uuid := chainexec.current_organization();
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
	RETURN chainexec._schedule_job(job_name, schedule, chain_id, input, mode);
END
$$;

CREATE OR REPLACE FUNCTION chainexec.chain_schedule_cleanup(job_name text DEFAULT 'chainexec-cleanup',
															schedule text DEFAULT '17 3 * * *',
															older_than interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
BEGIN
	IF older_than IS NULL OR older_than < interval '0' THEN
		RAISE EXCEPTION 'retention must be a non-negative interval' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN chainexec._schedule_job(job_name, schedule, NULL,
								   jsonb_build_object('olderThan', older_than::text), 'cleanup');
END
$$;

CREATE FUNCTION chainexec._schedule_save_owner(p_job_name text, p_schedule text, p_cron_job_id bigint,
											   p_chain_id text, p_input jsonb, p_mode text, caller regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	org uuid := chainexec.current_organization();
	job_user text;
	job_command text;
BEGIN
	PERFORM chainexec._require_pg_cron();
	EXECUTE 'SELECT username, command FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) $1'
		INTO job_user, job_command USING p_cron_job_id;
	IF job_user IS NULL OR job_user <> (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = caller::pg_catalog.oid) THEN
		RAISE EXCEPTION 'permission denied for pg_cron job %', p_cron_job_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A schedule records a pg_cron job of its own role only.';
	END IF;
	IF job_command IS DISTINCT FROM chainexec._schedule_command(p_job_name, p_chain_id, coalesce(p_input, '{}'), p_mode, org) THEN
		RAISE EXCEPTION 'permission denied for pg_cron job %', p_cron_job_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A schedule records a pg_cron job that runs the command chainexec.chain_schedule() built for it only.';
	END IF;
	INSERT INTO chainexec.schedules AS s (organization_id, job_name, chain_id, input, mode, schedule,
										  cron_job_id, created_by)
	VALUES (org, p_job_name, p_chain_id, coalesce(p_input, '{}'), p_mode, p_schedule, p_cron_job_id, caller)
	ON CONFLICT ON CONSTRAINT schedules_pkey
	DO UPDATE SET chain_id = EXCLUDED.chain_id, input = EXCLUDED.input, mode = EXCLUDED.mode,
				  schedule = EXCLUDED.schedule, cron_job_id = EXCLUDED.cron_job_id;
END
$$;

CREATE FUNCTION chainexec._schedule_save(p_job_name text, p_schedule text, p_cron_job_id bigint,
										 p_chain_id text, p_input jsonb, p_mode text)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';

CREATE FUNCTION chainexec._schedule_forget_owner(p_job_name text, caller regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
BEGIN
	/* the caller's own schedule of that name only */
	DELETE FROM chainexec.schedules s
	 WHERE s.organization_id = chainexec.current_organization() AND s.created_by = caller
	   AND s.job_name = p_job_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job "%" does not exist', p_job_name
			USING ERRCODE = 'undefined_object', HINT = 'chainexec.scheduled_jobs lists the jobs.';
	END IF;
END
$$;

CREATE FUNCTION chainexec._schedule_forget(p_job_name text)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';

CREATE OR REPLACE FUNCTION chainexec.chain_unschedule(job_name text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	s chainexec.schedules;
BEGIN
	PERFORM chainexec._require_pg_cron();
	/* the caller's own schedule of that name, not one of a role it is a member of */
	SELECT * INTO s FROM chainexec.schedules
	 WHERE organization_id = chainexec.current_organization() AND created_by = current_user::regrole
	   AND schedules.job_name = chain_unschedule.job_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job "%" does not exist', job_name
			USING ERRCODE = 'undefined_object', HINT = 'chainexec.scheduled_jobs lists the jobs.';
	END IF;
	EXECUTE 'SELECT cron.unschedule($1)' USING s.cron_job_id;
	PERFORM chainexec._schedule_forget(s.job_name);
	RETURN true;
END
$$;

/* A schedule's runs are its role's: executions started by another role's job of the same name are not counted. */
CREATE OR REPLACE VIEW chainexec.scheduled_jobs WITH (security_invoker = true) AS
SELECT s.organization_id, s.job_name, s.schedule, s.mode, s.chain_id, s.input, s.cron_job_id,
	   s.created_by, s.created_at,
	   last.id AS last_execution_id, last.status AS last_status,
	   last.created_at AS last_started_at, last.finished_at AS last_finished_at,
	   (SELECT count(*) FROM chainexec.universal_transactions t
		 WHERE t.organization_id = s.organization_id AND t.chain_id = s.chain_id AND t.owner = s.created_by
		   AND t.idempotency_key LIKE 'cron:' || s.job_name || ':%') AS executions
  FROM chainexec.schedules s
  LEFT JOIN LATERAL (
		SELECT t.id, t.status, t.created_at, t.finished_at
		  FROM chainexec.universal_transactions t
		 WHERE t.organization_id = s.organization_id AND t.chain_id = s.chain_id AND t.owner = s.created_by
		   AND t.idempotency_key LIKE 'cron:' || s.job_name || ':%'
		 ORDER BY t.created_at DESC LIMIT 1) last ON true;

REVOKE ALL ON FUNCTION chainexec._schedule_save_owner(text, text, bigint, text, jsonb, text, regrole),
	chainexec._schedule_forget_owner(text, regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chainexec._schedule_save(text, text, bigint, text, jsonb, text),
	chainexec._schedule_forget(text) TO PUBLIC;

/* ------------------------------------------------------------------------
 * Chain format
 * ------------------------------------------------------------------------ */

/*
 * performanceTargets are compared, not only shown: targets_met says, per
 * target chainexec can judge, whether the chain version meets it over the
 * view's 30 days (totalExecutionTime: the p95 duration is within it;
 * stepsCompleted: on average at least that many steps completed).  Other
 * targets are the chain's own business and are left out.
 */
CREATE OR REPLACE VIEW chainexec.chain_analytics WITH (security_invoker = true) AS
SELECT a.*,
	   (SELECT jsonb_object_agg(k, CASE k
							  WHEN 'totalExecutionTime' THEN a.p95_duration_ms <= (a.performance_targets->>k)::numeric
							  ELSE a.avg_steps >= (a.performance_targets->>k)::numeric END)
		  FROM jsonb_object_keys(a.performance_targets) k
		 WHERE k IN ('totalExecutionTime', 'stepsCompleted')
		   AND jsonb_typeof(a.performance_targets->k) = 'number') AS targets_met
  FROM (SELECT t.organization_id, t.chain_id, t.chain_version,
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
		 GROUP BY t.organization_id, t.chain_id, t.chain_version) a;

/* ------------------------------------------------------------------------
 * Engine: which organization a missing chain was looked for in; poison
 * steps; in-session runs; waiting without a snapshot; DROP EXTENSION
 * ------------------------------------------------------------------------ */

/*
 * "chain does not exist", saying which organization was searched: a chain
 * belongs to the organization that defined it, and a session that forgot
 * to set chainexec.organization_id looks in the default one.
 */
CREATE FUNCTION chainexec._raise_chain_not_found(p_chain_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'chain "%" does not exist', p_chain_id
		USING ERRCODE = 'undefined_object',
			  DETAIL = CASE WHEN pg_catalog.current_setting('chainexec.organization_id', true) OPERATOR(pg_catalog.<>) ''
							THEN pg_catalog.format('It was looked for in organization %s (chainexec.organization_id).',
												   chainexec.current_organization())
							ELSE 'It was looked for in the default organization (chainexec.organization_id is not set).' END,
			  HINT = 'Set chainexec.organization_id to the organization that defined the chain, or define it with chainexec.chain_define().';
END
$$;

CREATE OR REPLACE FUNCTION chainexec.chain_validate(chain_id text, input jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
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
		PERFORM chainexec._raise_chain_not_found(chain_validate.chain_id);
	END IF;
	summary := chainexec._definition_check(d);
	res := chainexec._input_check(d, coalesce(input, '{}'));
	RETURN jsonb_build_object('valid', (res->>'valid')::boolean,
							  'errors', res->'errors',
							  'warnings', coalesce(summary->'warnings', '[]'::jsonb));
END
$$;

/*
 * In-session runs stay in the session: the executors' dispatch queries
 * skip the lines of an execution that a CALL chain_run session drives
 * (see src/insession.c); the session hands it to the workers when it stops
 * driving it, and the executors take over one whose session is gone.
 */
ALTER TABLE chainexec.universal_transactions
	ADD COLUMN in_session boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN chainexec.universal_transactions.in_session IS
	'a CALL chain_run session drives the execution: the background executors leave its lines alone';
/* The dispatch queries' test of the flag, and the executors' hand-over sweep. */
CREATE INDEX universal_transactions_in_session
	ON chainexec.universal_transactions (organization_id, id)
	WHERE in_session;

/*
 * Waiting without a snapshot: chain_wait is a function, so its statement
 * holds a snapshot (and the cluster's xmin) for the whole wait.
 * chain_await commits between its looks, as chain_run does between steps.
 */
CREATE PROCEDURE chainexec.chain_await(execution_id uuid, timeout_ms int DEFAULT NULL,
									   INOUT result jsonb DEFAULT NULL)
LANGUAGE c
AS 'MODULE_PATHNAME', 'ce_chain_await';
COMMENT ON PROCEDURE chainexec.chain_await(uuid, int, jsonb) IS
	'wait until the execution ends (or timeout_ms passes) holding no snapshot, committing between looks; returns its result, as chain_wait';

/*
 * DROP EXTENSION chainexec unschedules the pg_cron jobs chain_schedule made
 * (src/drop.c); the trigger is a member of the extension and goes with it.
 * The role chainexec_admin (the cluster's) and the schema stay.
 */
CREATE FUNCTION chainexec._on_drop_extension()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'ce_on_drop_extension';
REVOKE ALL ON FUNCTION chainexec._on_drop_extension() FROM PUBLIC;
CREATE EVENT TRIGGER chainexec_drop_extension ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION')
	EXECUTE FUNCTION chainexec._on_drop_extension();

/*
 * An idempotency key is the caller's own: a second call by the same role
 * returns its first execution.  Keyed per organization and chain only, a
 * role that called first with another role's key (a schedule's keys
 * cron:<job>:<minute> are predictable) made that role's call return an
 * execution it cannot see, and never run, and learned the ids of others'
 * executions.
 */
DROP INDEX chainexec.universal_transactions_idempotency;
CREATE UNIQUE INDEX universal_transactions_idempotency
	ON chainexec.universal_transactions (organization_id, chain_id, owner, idempotency_key)
	WHERE idempotency_key IS NOT NULL;

/* ------------------------------------------------------------------------
 * Catalog comments
 *
 * What \df+, \dv+, \dt+ and \d+ show: a description of every function
 * PUBLIC may call (the internal ones, named _..., say what calls them),
 * every table and view, and every column people read.  Sections that add
 * functions, tables or views comment them where they make them;
 * test/pgtap/05_catalog.sql checks that nothing is left without one.
 * ------------------------------------------------------------------------ */

/* Definitions */
COMMENT ON FUNCTION chainexec.chain_define(jsonb, boolean) IS
	'validate and store a new version of a chain (replacing its draft); with publish, make it the active version; returns the version number';
COMMENT ON FUNCTION chainexec.chain_publish(text, int) IS
	'make a draft version (default: the latest) the active one; the active version before it becomes deprecated; returns the version';
COMMENT ON FUNCTION chainexec.chain_deprecate(text) IS
	'deprecate the active version of a chain: new executions need an explicit version, running ones go on; returns the version';
COMMENT ON FUNCTION chainexec.chain_reactivate(text, int) IS
	'make a deprecated version the active one again; returns the version';
COMMENT ON FUNCTION chainexec.chain_archive(text, int) IS
	'archive a version that is not active: no new execution may use it; returns the version';
COMMENT ON FUNCTION chainexec.chain_register_handler(text, regprocedure) IS
	'register a handler (a function taking and returning jsonb) for the chains you create; as chain_register_handler(name, fn, false)';
COMMENT ON FUNCTION chainexec.chain_register_template(text, text) IS
	'register a template for the chains you create; as chain_register_template(template_id, body, false)';
COMMENT ON FUNCTION chainexec.chain_validate(text, jsonb) IS
	'check a chain''s definition and an input against its inputSchema without running anything: {"valid", "errors", "warnings"}';

/* Results and history */
COMMENT ON FUNCTION chainexec.chain_status(uuid) IS
	'an execution''s status, its current steps and its progress {"percent", "completed", "running", "waiting", "pending", "failed", "skipped", "total", "etaMs"}';
COMMENT ON FUNCTION chainexec.chain_result(uuid) IS
	'an execution''s result: status, final context, outputs, error and metadata (times, steps executed, skipped and failed, retries)';
COMMENT ON FUNCTION chainexec.chain_history(text, int) IS
	'the latest executions of a chain that the caller may see, newest first';
COMMENT ON FUNCTION chainexec.chain_unschedule(text) IS
	'remove a schedule made by chain_schedule (and its pg_cron job); false when there is none of that name';

/* Helpers of row-level security and defaults, inlined into the policies */
COMMENT ON FUNCTION chainexec.can_access(regrole) IS
	'whether the current role may see and control what role r owns: a member of r, or of chainexec_admin (row-level security)';
COMMENT ON FUNCTION chainexec.org_visible(uuid) IS
	'whether a row of organization org is visible to the session: org is the session''s organization (row-level security)';
COMMENT ON FUNCTION chainexec.smart_code(text, text, int) IS
	'the smart code of a row: CHAINEXEC.<kind>.<NAME>.V<version>';

/* Internal: called by the functions above, not part of the API */
COMMENT ON FUNCTION chainexec.chains_guard() IS
	'internal: trigger of chainexec.chains that keeps versions that are not drafts immutable';
COMMENT ON FUNCTION chainexec._definition_check(jsonb) IS
	'internal: compile a chain definition and return its summary and warnings, or raise its first error (chain_define, chain_validate)';
COMMENT ON FUNCTION chainexec._input_check(jsonb, jsonb) IS
	'internal: check an input against a definition''s inputSchema with its defaults applied (chain_execute, chain_validate)';
COMMENT ON FUNCTION chainexec._template_check(text) IS
	'internal: raise an error when a template body does not parse (chain_register_template)';
COMMENT ON FUNCTION chainexec._execution(uuid) IS
	'internal: the execution''s header row if the caller may see it, else an error (chain_status, chain_result)';
COMMENT ON FUNCTION chainexec._raise_chain_not_found(text) IS
	'internal: raise "chain does not exist", naming the organization searched';
COMMENT ON FUNCTION chainexec._require_pg_cron() IS
	'internal: raise an error naming pg_cron when it is not installed in this database (chain_schedule)';
COMMENT ON FUNCTION chainexec._schedule_command(text, text, jsonb, text, uuid) IS
	'internal: the SQL command that a schedule''s pg_cron job runs (built by chainexec, never taken from the caller)';
COMMENT ON FUNCTION chainexec._schedule_job(text, text, text, jsonb, text) IS
	'internal: create or replace the pg_cron job of a schedule, as the caller (chain_schedule, chain_schedule_cleanup)';
COMMENT ON FUNCTION chainexec._schedule_save(text, text, bigint, text, jsonb, text) IS
	'internal: record a schedule of the caller''s in chainexec.schedules (runs as the extension owner)';
COMMENT ON FUNCTION chainexec._schedule_forget(text) IS
	'internal: remove a schedule of the caller''s from chainexec.schedules (runs as the extension owner)';

/* Tables */
COMMENT ON TABLE chainexec.handlers IS
	'registered handlers: functions that function steps and rollback actions call by name';
COMMENT ON TABLE chainexec.templates IS
	'registered templates that template steps render by templateId';

COMMENT ON COLUMN chainexec.chains.chain_id IS 'the chain''s id (the definition''s "id")';
COMMENT ON COLUMN chainexec.chains.version IS 'version number, from 1, given by chain_define';
COMMENT ON COLUMN chainexec.chains.status IS 'draft, active (the one chain_execute runs by default), deprecated or archived';
COMMENT ON COLUMN chainexec.chains.definition IS 'the definition as given to chain_define';
COMMENT ON COLUMN chainexec.chains.name IS 'the definition''s "name"';
COMMENT ON COLUMN chainexec.chains.description IS 'the definition''s "description"';
COMMENT ON COLUMN chainexec.chains.created_by IS 'the role that defined this version; it and its members may change the chain';
COMMENT ON COLUMN chainexec.chains.created_at IS 'when this version was defined';
COMMENT ON COLUMN chainexec.chains.updated_at IS 'when the row last changed (a draft replaced, a status changed)';
COMMENT ON COLUMN chainexec.chains.published_at IS 'when this version first became active';

COMMENT ON COLUMN chainexec.channel_secret.singleton IS 'always true: the table has one row';
COMMENT ON COLUMN chainexec.channel_secret.secret IS 'the HMAC key of the channel names (chain_rotate_channels replaces it)';
COMMENT ON COLUMN chainexec.channel_secret.created_at IS 'when the key was made';

COMMENT ON COLUMN chainexec.handlers.name IS 'the name steps use (instructionSet, rollbackAction)';
COMMENT ON COLUMN chainexec.handlers.fn IS 'the function called: one jsonb argument, returns jsonb';
COMMENT ON COLUMN chainexec.handlers.registered_by IS 'the role that registered it';
COMMENT ON COLUMN chainexec.handlers.registered_at IS 'when it was last registered';

COMMENT ON COLUMN chainexec.templates.template_id IS 'the name steps use (templateId)';
COMMENT ON COLUMN chainexec.templates.body IS 'the template text, with {var} placeholders';
COMMENT ON COLUMN chainexec.templates.registered_by IS 'the role that registered it';
COMMENT ON COLUMN chainexec.templates.registered_at IS 'when it was last registered';

COMMENT ON COLUMN chainexec.schedules.job_name IS 'the schedule''s name, its creating role''s own within the organization';
COMMENT ON COLUMN chainexec.schedules.chain_id IS 'the chain the job starts (null for a cleanup job)';
COMMENT ON COLUMN chainexec.schedules.input IS 'the input of every execution the job starts';
COMMENT ON COLUMN chainexec.schedules.mode IS 'worker (chain_execute, run by the background workers), inline (CALL chain_run in the job''s session) or cleanup (chain_cleanup)';
COMMENT ON COLUMN chainexec.schedules.schedule IS 'the cron schedule, as pg_cron takes it';
COMMENT ON COLUMN chainexec.schedules.cron_job_id IS 'the job''s id in cron.job';
COMMENT ON COLUMN chainexec.schedules.created_by IS 'the role that made the schedule; its job runs as that role';
COMMENT ON COLUMN chainexec.schedules.created_at IS 'when the schedule was made or last replaced';

COMMENT ON COLUMN chainexec.universal_transactions.id IS 'the execution id';
COMMENT ON COLUMN chainexec.universal_transactions.transaction_type IS 'always chain_execution';
COMMENT ON COLUMN chainexec.universal_transactions.chain_id IS 'the chain executed';
COMMENT ON COLUMN chainexec.universal_transactions.chain_version IS 'the chain version executed';
COMMENT ON COLUMN chainexec.universal_transactions.status IS 'pending, running, paused, waiting, completed, failed, cancelled, timeout, compensating or compensated';
COMMENT ON COLUMN chainexec.universal_transactions.input IS 'the input given to chain_execute, defaults applied';
COMMENT ON COLUMN chainexec.universal_transactions.context IS 'the variables: the input and the outputs of the steps so far';
COMMENT ON COLUMN chainexec.universal_transactions.output IS 'the outputs of a completed execution';
COMMENT ON COLUMN chainexec.universal_transactions.error IS 'why the execution failed: failure_type, message and the details';
COMMENT ON COLUMN chainexec.universal_transactions.owner IS 'the role the steps run as: the one that started the execution';
COMMENT ON COLUMN chainexec.universal_transactions.priority IS 'higher runs first (the priority option)';
COMMENT ON COLUMN chainexec.universal_transactions.idempotency_key IS 'the idempotencyKey option: a second start with the same chain, role and key returns this execution';
COMMENT ON COLUMN chainexec.universal_transactions.deadline IS 'when the execution times out (maxExecutionTime or the timeout option)';
COMMENT ON COLUMN chainexec.universal_transactions.created_at IS 'when chain_execute recorded it';
COMMENT ON COLUMN chainexec.universal_transactions.started_at IS 'when its first step started';
COMMENT ON COLUMN chainexec.universal_transactions.finished_at IS 'when it ended';
COMMENT ON COLUMN chainexec.universal_transactions.metadata IS 'free data about the execution (for example the schedule or the parent that started it)';

COMMENT ON COLUMN chainexec.universal_transaction_lines.transaction_id IS 'the execution (universal_transactions.id)';
COMMENT ON COLUMN chainexec.universal_transaction_lines.line_number IS 'the line''s number within its execution';
COMMENT ON COLUMN chainexec.universal_transaction_lines.line_type IS 'step, fallback or compensation';
COMMENT ON COLUMN chainexec.universal_transaction_lines.step_id IS 'the step''s id in the definition';
COMMENT ON COLUMN chainexec.universal_transaction_lines.step_name IS 'the step''s name in the definition';
COMMENT ON COLUMN chainexec.universal_transaction_lines.status IS 'pending, ready, running, waiting, completed, failed, skipped, cancelled or compensated';
COMMENT ON COLUMN chainexec.universal_transaction_lines.attempt IS 'attempts so far (1 for the first run; a retry adds one)';
COMMENT ON COLUMN chainexec.universal_transaction_lines.not_before IS 'when the line may run next (a retry back-off, a wait timer, runAt); infinity while paused';
COMMENT ON COLUMN chainexec.universal_transaction_lines.input IS 'the step''s rendered input and variables (kept with saveIntermediateResults)';
COMMENT ON COLUMN chainexec.universal_transaction_lines.output IS 'the step''s outputs (kept with saveIntermediateResults)';
COMMENT ON COLUMN chainexec.universal_transaction_lines.error IS 'the last failure: failure_type, sqlstate, message, detail';
COMMENT ON COLUMN chainexec.universal_transaction_lines.started_at IS 'when the last attempt started';
COMMENT ON COLUMN chainexec.universal_transaction_lines.finished_at IS 'when the line ended';
COMMENT ON COLUMN chainexec.universal_transaction_lines.duration_ms IS 'the last attempt''s duration in milliseconds';

/* organization_id and smart_code mean the same in every table */
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT c.oid::regclass AS rel, a.attname
			   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
			  WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind = 'r'
				AND a.attname IN ('organization_id', 'smart_code') AND NOT a.attisdropped
	LOOP
		EXECUTE pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', r.rel, r.attname,
			CASE r.attname WHEN 'organization_id' THEN 'the organization (tenant) the row belongs to'
				 ELSE 'the business meaning of the row, e.g. CHAINEXEC.RUN.<CHAIN>.V1' END);
	END LOOP;
END
$$;

/* Views */
COMMENT ON VIEW chainexec.executions IS
	'executions the current role may see (its roles'' executions; all for chainexec_admin), one row each';
COMMENT ON COLUMN chainexec.executions.execution_id IS 'the execution id';
COMMENT ON COLUMN chainexec.executions.organization_id IS 'the organization (tenant) of the execution';
COMMENT ON COLUMN chainexec.executions.chain_id IS 'the chain executed';
COMMENT ON COLUMN chainexec.executions.chain_version IS 'the chain version executed';
COMMENT ON COLUMN chainexec.executions.status IS 'pending, running, paused, waiting, completed, failed, cancelled, timeout, compensating or compensated';
COMMENT ON COLUMN chainexec.executions.owner IS 'the role the steps run as';
COMMENT ON COLUMN chainexec.executions.priority IS 'higher runs first';
COMMENT ON COLUMN chainexec.executions.created_at IS 'when it was started (recorded)';
COMMENT ON COLUMN chainexec.executions.started_at IS 'when its first step started';
COMMENT ON COLUMN chainexec.executions.finished_at IS 'when it ended';
COMMENT ON COLUMN chainexec.executions.duration_ms IS 'milliseconds from its start to its end (or to now while it runs)';
COMMENT ON COLUMN chainexec.executions.failure_type IS 'the failure type of a failed execution';
COMMENT ON COLUMN chainexec.executions.error_message IS 'the error message of a failed execution';
COMMENT ON COLUMN chainexec.executions.idempotency_key IS 'the idempotencyKey it was started with';
COMMENT ON COLUMN chainexec.executions.smart_code IS 'the business meaning, e.g. CHAINEXEC.RUN.<CHAIN>.V1';

COMMENT ON VIEW chainexec.step_runs IS
	'the lines (steps, fallbacks, compensations) of the executions the current role may see';
COMMENT ON COLUMN chainexec.step_runs.execution_id IS 'the execution';
COMMENT ON COLUMN chainexec.step_runs.organization_id IS 'the organization (tenant) of the execution';
COMMENT ON COLUMN chainexec.step_runs.chain_id IS 'the chain executed';
COMMENT ON COLUMN chainexec.step_runs.chain_version IS 'the chain version executed';
COMMENT ON COLUMN chainexec.step_runs.line_number IS 'the line''s number within its execution';
COMMENT ON COLUMN chainexec.step_runs.line_type IS 'step, fallback or compensation';
COMMENT ON COLUMN chainexec.step_runs.step_id IS 'the step''s id in the definition';
COMMENT ON COLUMN chainexec.step_runs.step_name IS 'the step''s name in the definition';
COMMENT ON COLUMN chainexec.step_runs.status IS 'pending, ready, running, waiting, completed, failed, skipped, cancelled or compensated';
COMMENT ON COLUMN chainexec.step_runs.attempt IS 'attempts so far (retries are attempt - 1)';
COMMENT ON COLUMN chainexec.step_runs.not_before IS 'when the line may run next; infinity while paused';
COMMENT ON COLUMN chainexec.step_runs.started_at IS 'when the last attempt started';
COMMENT ON COLUMN chainexec.step_runs.finished_at IS 'when the line ended';
COMMENT ON COLUMN chainexec.step_runs.duration_ms IS 'the last attempt''s duration in milliseconds';
COMMENT ON COLUMN chainexec.step_runs.failure_type IS 'the last failure''s type';
COMMENT ON COLUMN chainexec.step_runs.sqlstate IS 'the last failure''s SQLSTATE';
COMMENT ON COLUMN chainexec.step_runs.error_message IS 'the last failure''s message';
COMMENT ON COLUMN chainexec.step_runs.input IS 'the rendered input and variables the step was given';
COMMENT ON COLUMN chainexec.step_runs.output IS 'the step''s outputs';
COMMENT ON COLUMN chainexec.step_runs.smart_code IS 'the business meaning, e.g. CHAINEXEC.STEP.<STEP>.V1';

COMMENT ON VIEW chainexec.chain_analytics IS
	'per chain version, over the executions of the last 30 days the current role may see: counts, success rate, durations, steps, retries, targets';
COMMENT ON COLUMN chainexec.chain_analytics.organization_id IS 'the organization (tenant)';
COMMENT ON COLUMN chainexec.chain_analytics.chain_id IS 'the chain';
COMMENT ON COLUMN chainexec.chain_analytics.chain_version IS 'the chain version';
COMMENT ON COLUMN chainexec.chain_analytics.executions IS 'executions started in the last 30 days';
COMMENT ON COLUMN chainexec.chain_analytics.completed IS 'of those, completed';
COMMENT ON COLUMN chainexec.chain_analytics.failed IS 'of those, failed, timed out or compensated';
COMMENT ON COLUMN chainexec.chain_analytics.success_rate IS 'percent of the ended executions that completed';
COMMENT ON COLUMN chainexec.chain_analytics.avg_duration_ms IS 'average duration of the ended executions, in milliseconds';
COMMENT ON COLUMN chainexec.chain_analytics.p50_duration_ms IS 'median duration, in milliseconds';
COMMENT ON COLUMN chainexec.chain_analytics.p95_duration_ms IS '95th percentile of the duration, in milliseconds';
COMMENT ON COLUMN chainexec.chain_analytics.avg_steps IS 'average number of steps completed per execution';
COMMENT ON COLUMN chainexec.chain_analytics.retries IS 'retries in all (attempts beyond the first)';
COMMENT ON COLUMN chainexec.chain_analytics.performance_targets IS 'the definition''s performanceTargets';
COMMENT ON COLUMN chainexec.chain_analytics.targets_met IS 'per target chainexec can judge (totalExecutionTime, stepsCompleted), whether it is met';

COMMENT ON VIEW chainexec.scheduled_jobs IS
	'the schedules the current role may see, with the last execution each started';
COMMENT ON COLUMN chainexec.scheduled_jobs.organization_id IS 'the organization (tenant)';
COMMENT ON COLUMN chainexec.scheduled_jobs.job_name IS 'the schedule''s name';
COMMENT ON COLUMN chainexec.scheduled_jobs.schedule IS 'the cron schedule';
COMMENT ON COLUMN chainexec.scheduled_jobs.mode IS 'worker, inline or cleanup';
COMMENT ON COLUMN chainexec.scheduled_jobs.chain_id IS 'the chain the job starts';
COMMENT ON COLUMN chainexec.scheduled_jobs.input IS 'the input of every execution the job starts';
COMMENT ON COLUMN chainexec.scheduled_jobs.cron_job_id IS 'the job''s id in cron.job';
COMMENT ON COLUMN chainexec.scheduled_jobs.created_by IS 'the role that made the schedule';
COMMENT ON COLUMN chainexec.scheduled_jobs.created_at IS 'when the schedule was made or last replaced';
COMMENT ON COLUMN chainexec.scheduled_jobs.last_execution_id IS 'the last execution the job started';
COMMENT ON COLUMN chainexec.scheduled_jobs.last_status IS 'its status';
COMMENT ON COLUMN chainexec.scheduled_jobs.last_started_at IS 'when it was started';
COMMENT ON COLUMN chainexec.scheduled_jobs.last_finished_at IS 'when it ended';
COMMENT ON COLUMN chainexec.scheduled_jobs.executions IS 'executions the job has started (those not cleaned up)';

/* ------------------------------------------------------------------------
 * Resilience
 *
 * Circuit breakers and the step-result cache of SPEC section 9
 * "Resilience" (step keys circuitBreaker and cache).  Their tables are
 * written only by the engine, as the extension owner, inside the
 * transition that runs the step (src/engine/breaker.c, src/engine/cache.c),
 * and by chain_circuit_reset and chain_cache_invalidate through
 * ce_definer_call.
 *
 * A breaker is shared by every execution and executor of an organization
 * that runs chains of one role: its row is keyed by organization, the role
 * that created the chain (whose handlers the chain calls) and the key, so
 * that another role's failing chain cannot open it.  Its transitions are
 * row updates: a probe call holds the row's lock until its transition
 * commits, so two executors never probe at once, and a crash undoes the
 * probe, never an open breaker.
 *
 * A cache entry is keyed by organization, chain, step name, the role the
 * execution runs as and the key values: a step's result depends on its
 * role's privileges and search_path, so one role's entries never serve
 * another role's executions.  maxEntries bounds a role's entries of a
 * chain's step in an organization (least recently used evicted first).
 * ------------------------------------------------------------------------ */

CREATE TABLE chainexec.circuit_breaker_state (
	organization_id uuid NOT NULL,
	scope		regrole NOT NULL,
	key			text NOT NULL,
	state		text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
	window_start timestamptz NOT NULL DEFAULT now(),
	calls		int NOT NULL DEFAULT 0,
	failures	int NOT NULL DEFAULT 0,
	probe_successes int NOT NULL DEFAULT 0,
	opened_at	timestamptz,
	next_probe_at timestamptz,
	changed_at	timestamptz NOT NULL DEFAULT now(),
	smart_code	text NOT NULL DEFAULT 'CHAINEXEC.CIRCUIT_BREAKER.V1',
	PRIMARY KEY (organization_id, scope, key)
);
COMMENT ON TABLE chainexec.circuit_breaker_state IS
	'circuit breakers (step key circuitBreaker): one row per organization, chain-creating role and key; written by the engine only';
SELECT pg_catalog.pg_extension_config_dump('chainexec.circuit_breaker_state', '');
ALTER TABLE chainexec.circuit_breaker_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY circuit_breaker_state_read ON chainexec.circuit_breaker_state FOR SELECT
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(scope));

CREATE TABLE chainexec.step_cache (
	organization_id uuid NOT NULL,
	chain_id	text NOT NULL,
	step_name	text NOT NULL,
	owner		regrole NOT NULL,
	key_hash	bytea NOT NULL,
	key			jsonb NOT NULL,
	outputs		jsonb NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL,
	last_used_at timestamptz NOT NULL DEFAULT now(),
	hits		bigint NOT NULL DEFAULT 0,
	smart_code	text NOT NULL DEFAULT 'CHAINEXEC.STEP_CACHE.V1',
	PRIMARY KEY (organization_id, chain_id, step_name, owner, key_hash)
);
CREATE INDEX step_cache_lru ON chainexec.step_cache (organization_id, chain_id, step_name, owner, last_used_at);
COMMENT ON TABLE chainexec.step_cache IS
	'step results kept by the step key cache: one row per organization, chain, step, owner role and key values; written by the engine only';
SELECT pg_catalog.pg_extension_config_dump('chainexec.step_cache', '');
ALTER TABLE chainexec.step_cache ENABLE ROW LEVEL SECURITY;
CREATE POLICY step_cache_read ON chainexec.step_cache FOR SELECT
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(owner));

CREATE TABLE chainexec.step_cache_counters (
	organization_id uuid NOT NULL,
	chain_id	text NOT NULL,
	step_name	text NOT NULL,
	owner		regrole NOT NULL,
	hits		bigint NOT NULL DEFAULT 0,
	misses		bigint NOT NULL DEFAULT 0,
	smart_code	text NOT NULL DEFAULT 'CHAINEXEC.STEP_CACHE_COUNTERS.V1',
	PRIMARY KEY (organization_id, chain_id, step_name, owner)
);
COMMENT ON TABLE chainexec.step_cache_counters IS
	'hits and misses of the step key cache per organization, chain, step and owner role; written by the engine only';
SELECT pg_catalog.pg_extension_config_dump('chainexec.step_cache_counters', '');
ALTER TABLE chainexec.step_cache_counters ENABLE ROW LEVEL SECURITY;
CREATE POLICY step_cache_counters_read ON chainexec.step_cache_counters FOR SELECT
	USING (chainexec.org_visible(organization_id) AND chainexec.can_access(owner));

CREATE VIEW chainexec.circuit_breakers WITH (security_invoker = true) AS
SELECT b.organization_id, b.key, b.state, b.calls, b.failures, b.opened_at, b.next_probe_at,
	   b.scope AS chain_owner, b.window_start, b.probe_successes, b.changed_at
  FROM chainexec.circuit_breaker_state b;
COMMENT ON VIEW chainexec.circuit_breakers IS
	'the circuit breakers of the session''s organization that the current role may see: state (closed, open, half_open), calls and failures in the current window, when it opened and when the next probe may run';

CREATE VIEW chainexec.cache_stats WITH (security_invoker = true) AS
SELECT s.organization_id, s.chain_id, s.step_name,
	   s.hits, s.misses,
	   CASE WHEN s.hits + s.misses > 0
			THEN round(s.hits::numeric / (s.hits + s.misses), 4) END AS hit_rate,
	   (SELECT count(*) FROM chainexec.step_cache c
		 WHERE c.organization_id = s.organization_id AND c.chain_id = s.chain_id
		   AND c.step_name = s.step_name) AS entries
  FROM (SELECT organization_id, chain_id, step_name, sum(hits)::bigint AS hits, sum(misses)::bigint AS misses
		  FROM chainexec.step_cache_counters
		 GROUP BY organization_id, chain_id, step_name) s;
COMMENT ON VIEW chainexec.cache_stats IS
	'the step key cache per chain and step of the session''s organization, over the roles the current role may see: hits, misses, hit rate and entries';

/* Everyone reads, row-level security decides which rows; only the engine writes. */
GRANT SELECT ON chainexec.circuit_breaker_state, chainexec.step_cache, chainexec.step_cache_counters,
	chainexec.circuit_breakers, chainexec.cache_stats TO PUBLIC;

/* Columns */
COMMENT ON COLUMN chainexec.circuit_breaker_state.organization_id IS 'the organization the breaker serves';
COMMENT ON COLUMN chainexec.circuit_breaker_state.scope IS 'the role that created the chains whose calls the breaker counts (their handlers are its own)';
COMMENT ON COLUMN chainexec.circuit_breaker_state.key IS 'the breaker''s key: circuitBreaker.key, else the step''s handler, else chain id and step name';
COMMENT ON COLUMN chainexec.circuit_breaker_state.state IS 'closed, open or half_open';
COMMENT ON COLUMN chainexec.circuit_breaker_state.window_start IS 'start of the window (windowMs) whose calls and failures are counted';
COMMENT ON COLUMN chainexec.circuit_breaker_state.calls IS 'calls counted in the window while closed';
COMMENT ON COLUMN chainexec.circuit_breaker_state.failures IS 'failed calls among them';
COMMENT ON COLUMN chainexec.circuit_breaker_state.probe_successes IS 'successful probe calls in a row while half_open';
COMMENT ON COLUMN chainexec.circuit_breaker_state.opened_at IS 'when it last opened';
COMMENT ON COLUMN chainexec.circuit_breaker_state.next_probe_at IS 'when open: from when a probe call may go through';
COMMENT ON COLUMN chainexec.circuit_breaker_state.changed_at IS 'when its state last changed';
COMMENT ON COLUMN chainexec.circuit_breaker_state.smart_code IS 'the business meaning of the row';
COMMENT ON COLUMN chainexec.step_cache.organization_id IS 'the organization of the executions the entry serves';
COMMENT ON COLUMN chainexec.step_cache.chain_id IS 'the chain of the cached step';
COMMENT ON COLUMN chainexec.step_cache.step_name IS 'the cached step';
COMMENT ON COLUMN chainexec.step_cache.owner IS 'the role whose executions the entry serves (it ran the step)';
COMMENT ON COLUMN chainexec.step_cache.key_hash IS 'SHA-256 of the key';
COMMENT ON COLUMN chainexec.step_cache.key IS 'the key: the values of the key variables, as a JSON array';
COMMENT ON COLUMN chainexec.step_cache.outputs IS 'the variables the step set';
COMMENT ON COLUMN chainexec.step_cache.created_at IS 'when the step ran';
COMMENT ON COLUMN chainexec.step_cache.expires_at IS 'when the entry stops serving (created_at + ttlMs)';
COMMENT ON COLUMN chainexec.step_cache.last_used_at IS 'when it was last stored or served (least recently used entries are evicted past maxEntries)';
COMMENT ON COLUMN chainexec.step_cache.hits IS 'how many times it served an execution';
COMMENT ON COLUMN chainexec.step_cache.smart_code IS 'the business meaning of the row';
COMMENT ON COLUMN chainexec.step_cache_counters.organization_id IS 'the organization';
COMMENT ON COLUMN chainexec.step_cache_counters.chain_id IS 'the chain';
COMMENT ON COLUMN chainexec.step_cache_counters.step_name IS 'the cached step';
COMMENT ON COLUMN chainexec.step_cache_counters.owner IS 'the role the executions ran as';
COMMENT ON COLUMN chainexec.step_cache_counters.hits IS 'lookups that found an entry';
COMMENT ON COLUMN chainexec.step_cache_counters.misses IS 'lookups that did not (the step ran)';
COMMENT ON COLUMN chainexec.step_cache_counters.smart_code IS 'the business meaning of the row';
COMMENT ON COLUMN chainexec.circuit_breakers.organization_id IS 'the organization the breaker serves';
COMMENT ON COLUMN chainexec.circuit_breakers.key IS 'the breaker''s key';
COMMENT ON COLUMN chainexec.circuit_breakers.state IS 'closed, open or half_open';
COMMENT ON COLUMN chainexec.circuit_breakers.calls IS 'calls counted in the current window';
COMMENT ON COLUMN chainexec.circuit_breakers.failures IS 'failed calls among them';
COMMENT ON COLUMN chainexec.circuit_breakers.opened_at IS 'when it last opened';
COMMENT ON COLUMN chainexec.circuit_breakers.next_probe_at IS 'when open: from when a probe call may go through';
COMMENT ON COLUMN chainexec.circuit_breakers.chain_owner IS 'the role whose chains share this breaker';
COMMENT ON COLUMN chainexec.circuit_breakers.window_start IS 'start of the current window';
COMMENT ON COLUMN chainexec.circuit_breakers.probe_successes IS 'successful probe calls in a row while half_open';
COMMENT ON COLUMN chainexec.circuit_breakers.changed_at IS 'when its state last changed';
COMMENT ON COLUMN chainexec.cache_stats.organization_id IS 'the organization';
COMMENT ON COLUMN chainexec.cache_stats.chain_id IS 'the chain';
COMMENT ON COLUMN chainexec.cache_stats.step_name IS 'the cached step';
COMMENT ON COLUMN chainexec.cache_stats.hits IS 'lookups that found an entry';
COMMENT ON COLUMN chainexec.cache_stats.misses IS 'lookups that did not';
COMMENT ON COLUMN chainexec.cache_stats.hit_rate IS 'hits / (hits + misses)';
COMMENT ON COLUMN chainexec.cache_stats.entries IS 'entries kept now';

CREATE FUNCTION chainexec._chain_circuit_reset(p_key text, caller regrole)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	n bigint;
	org uuid := chainexec.current_organization();
	scopes regrole[];
BEGIN
	IF p_key IS NULL THEN
		RAISE EXCEPTION 'circuit breaker key must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	/*
	 * The caller's organization, and the breakers of the roles it may act
	 * for, found first (Citus refuses a function of a row's column in a DELETE).
	 */
	SELECT pg_catalog.array_agg(DISTINCT b.scope) INTO scopes FROM chainexec.circuit_breaker_state b
	 WHERE b.organization_id = org AND b.key = p_key AND chainexec._role_may(caller, b.scope);
	DELETE FROM chainexec.circuit_breaker_state b
	 WHERE b.organization_id = org AND b.key = p_key AND b.scope = ANY (scopes);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n > 0;
END
$$;

CREATE FUNCTION chainexec._chain_cache_invalidate(p_chain_id text, p_step_name text, caller regrole)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	n bigint;
	org uuid := chainexec.current_organization();
	owners regrole[];
BEGIN
	IF p_chain_id IS NULL THEN
		RAISE EXCEPTION 'chain id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	/*
	 * The caller's organization; the entries of the roles it may act for,
	 * found first (Citus refuses a function of a row's column in a DELETE).
	 */
	SELECT pg_catalog.array_agg(DISTINCT c.owner) INTO owners FROM chainexec.step_cache c
	 WHERE c.organization_id = org AND c.chain_id = p_chain_id
	   AND (p_step_name IS NULL OR c.step_name = p_step_name)
	   AND chainexec._role_may(caller, c.owner);
	DELETE FROM chainexec.step_cache c
	 WHERE c.organization_id = org AND c.chain_id = p_chain_id
	   AND (p_step_name IS NULL OR c.step_name = p_step_name)
	   AND c.owner = ANY (owners);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION chainexec._chain_circuit_reset(text, regrole),
	chainexec._chain_cache_invalidate(text, text, regrole) FROM PUBLIC;
COMMENT ON FUNCTION chainexec._chain_circuit_reset(text, regrole) IS
	'internal: chain_circuit_reset for a caller, run as the extension owner by ce_definer_call';
COMMENT ON FUNCTION chainexec._chain_cache_invalidate(text, text, regrole) IS
	'internal: chain_cache_invalidate for a caller, run as the extension owner by ce_definer_call';

CREATE FUNCTION chainexec.chain_circuit_reset(key text)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
COMMENT ON FUNCTION chainexec.chain_circuit_reset(text) IS
	'close the circuit breaker of this key (calls and failures forgotten) in the session''s organization, for the chains of the roles the caller may act for; true when there was one';
CREATE FUNCTION chainexec.chain_cache_invalidate(chain_id text, step_name text DEFAULT NULL)
RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
COMMENT ON FUNCTION chainexec.chain_cache_invalidate(text, text) IS
	'remove the cached step results of a chain (or of one of its steps) in the session''s organization, of the roles the caller may act for; returns how many';

/* ------------------------------------------------------------------------
 * People in the loop and flow control
 *
 * Tasks.  An external step with requiredRoles waits for people: only
 * members of one of those roles (and of chainexec_admin) complete or fail
 * it, whoever owns the execution, and with approvalThreshold N it
 * completes when N distinct roles have approved it (their outputs merged
 * in the order of the calls); one chain_step_fail rejects it.  When the
 * step starts waiting, its line records the roles (required_roles, as
 * they resolve then) and approvals_needed; each decision is a row of
 * step_approvals.  The view tasks lists the waiting steps the current
 * role may decide on, in executions that row-level security otherwise
 * hides from it, and nothing more of them than their rendered input.
 *
 * Limits.  chain_set_limit names a limit of the session's organization:
 * max_concurrent steps holding it at once, and a token bucket of
 * per_second with burst.  A place is a row of flow_limit_slots, row-locked
 * (SKIP LOCKED) by the transition that runs the step until it commits, so
 * that any number of executors and sessions never exceed it and a crash
 * frees it.  A token is taken in a short transaction of its own just
 * before the step's transition.  A line that waits for room stays ready
 * and holds nothing: waiting for a place it leaves the dispatch index
 * (waits_for names the limit) until a holder's transition, or the
 * executors' sweep, wakes it; waiting for a token its not_before moves to
 * when its token comes.  The chain key concurrencyLimit keeps executions
 * beyond N of a chain pending: chain_slots holds the executions that have
 * a place (a place whose execution has finished is free).
 *
 * Dispatch serves organizations in turn: the ready-line index leads with
 * organization_id, and each executor claims from the organization after
 * the one it served last.
 *
 * Only members of chainexec_admin set and drop limits: a limit throttles
 * every role of the organization that names it.
 * ------------------------------------------------------------------------ */

ALTER TABLE chainexec.universal_transaction_lines
	ADD COLUMN waits_for text,
	ADD COLUMN required_roles regrole[],
	ADD COLUMN approvals_needed int;
COMMENT ON COLUMN chainexec.universal_transaction_lines.waits_for IS
	'a ready line waiting for a place: the limit''s name, or chain:<chain_id> (concurrencyLimit)';
COMMENT ON COLUMN chainexec.universal_transaction_lines.required_roles IS
	'a waiting external step with requiredRoles: the roles whose members may decide on it';
COMMENT ON COLUMN chainexec.universal_transaction_lines.approvals_needed IS
	'a waiting external step with requiredRoles: the approvals (distinct roles) that complete it';

/* The dispatch query: per organization, ready lines by priority, then not_before. */
DROP INDEX chainexec.universal_transaction_lines_ready;
CREATE INDEX universal_transaction_lines_ready
	ON chainexec.universal_transaction_lines (organization_id, priority DESC, not_before)
	WHERE status = 'ready' AND waits_for IS NULL;
/* Lines waiting for a place, woken in order. */
CREATE INDEX universal_transaction_lines_waits_for
	ON chainexec.universal_transaction_lines (organization_id, waits_for, priority DESC, not_before)
	WHERE waits_for IS NOT NULL;

CREATE TABLE chainexec.step_approvals (
	organization_id uuid NOT NULL,
	transaction_id uuid NOT NULL,
	line_number	int NOT NULL,
	attempt		int NOT NULL,
	role		regrole NOT NULL,
	decision	text NOT NULL CHECK (decision IN ('approved', 'rejected')),
	seq			int NOT NULL,
	output		jsonb,
	message		text,
	decided_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (organization_id, transaction_id, line_number, attempt, role),
	FOREIGN KEY (organization_id, transaction_id, line_number)
		REFERENCES chainexec.universal_transaction_lines (organization_id, transaction_id, line_number)
		ON DELETE CASCADE
);
COMMENT ON TABLE chainexec.step_approvals IS
	'one row per decision on an external step with requiredRoles: who (role), when, approved with what output or rejected';

CREATE TABLE chainexec.flow_limits (
	organization_id uuid NOT NULL,
	name		text NOT NULL CHECK (name ~ '^[a-z0-9_.-]{1,63}$'),
	max_concurrent int CHECK (max_concurrent BETWEEN 1 AND 10000),
	per_second	numeric CHECK (per_second > 0 AND per_second <= 1000000),
	burst		int CHECK (burst BETWEEN 1 AND 1000000),
	tokens		double precision,
	refilled_at	timestamptz,
	next_try	timestamptz,
	created_by	regrole NOT NULL,
	updated_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, name),
	CHECK (max_concurrent IS NOT NULL OR per_second IS NOT NULL),
	CHECK ((per_second IS NULL) = (burst IS NULL))
);
COMMENT ON TABLE chainexec.flow_limits IS
	'named limits of an organization (chain_set_limit): places and token bucket';
COMMENT ON COLUMN chainexec.flow_limits.tokens IS 'the bucket''s level at refilled_at';
COMMENT ON COLUMN chainexec.flow_limits.next_try IS
	'when the last line that found the bucket empty tries again (the next one is spaced after it)';

CREATE TABLE chainexec.flow_limit_slots (
	organization_id uuid NOT NULL,
	name		text NOT NULL,
	slot		int NOT NULL,
	PRIMARY KEY (organization_id, name, slot)
);
COMMENT ON TABLE chainexec.flow_limit_slots IS
	'the places of a limit: a transition running a step that holds the limit row-locks one until it commits (only places 1 to max_concurrent count; those a change of the limit could not remove, being held, go later)';

CREATE TABLE chainexec.chain_slots (
	organization_id uuid NOT NULL,
	chain_id	text NOT NULL,
	slot		int NOT NULL,
	holder		uuid,
	PRIMARY KEY (organization_id, chain_id, slot)
);
COMMENT ON TABLE chainexec.chain_slots IS
	'the places of a chain with concurrencyLimit: the execution holding each (free once it has finished)';

SELECT pg_catalog.pg_extension_config_dump('chainexec.step_approvals', '');
SELECT pg_catalog.pg_extension_config_dump('chainexec.flow_limits', '');
SELECT pg_catalog.pg_extension_config_dump('chainexec.flow_limit_slots', '');
SELECT pg_catalog.pg_extension_config_dump('chainexec.chain_slots', '');

ALTER TABLE chainexec.step_approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE chainexec.flow_limits ENABLE ROW LEVEL SECURITY;
ALTER TABLE chainexec.flow_limit_slots ENABLE ROW LEVEL SECURITY;
ALTER TABLE chainexec.chain_slots ENABLE ROW LEVEL SECURITY;
/* a decision is seen by whoever sees the execution, and by the role that made it */
CREATE POLICY step_approvals_read ON chainexec.step_approvals FOR SELECT
	USING (chainexec.org_visible(organization_id) AND (chainexec.can_access(role) OR EXISTS (
		SELECT FROM chainexec.universal_transactions t
		 WHERE t.organization_id = step_approvals.organization_id AND t.id = step_approvals.transaction_id)));
CREATE POLICY flow_limits_read ON chainexec.flow_limits FOR SELECT
	USING (chainexec.org_visible(organization_id));
REVOKE ALL ON chainexec.step_approvals, chainexec.flow_limits, chainexec.flow_limit_slots,
	chainexec.chain_slots FROM PUBLIC;
GRANT SELECT ON chainexec.step_approvals, chainexec.flow_limits TO PUBLIC;

/* Whether transaction xid is in progress (a place's row lock is held). */
CREATE FUNCTION chainexec._xid_in_progress(xid)
RETURNS boolean LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'ce_xid_in_progress';
/* The lines waiting for a place of a limit try again (when the calling transaction commits). */
CREATE FUNCTION chainexec._limit_wake(org uuid, name text)
RETURNS bigint LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'ce_limit_wake';

/*
 * Places of a chain with concurrencyLimit, made when a version that sets it
 * is defined.  Only the missing ones are inserted: the insertion of a place
 * that exists would wait for the transition holding it (its step).
 */
CREATE FUNCTION chainexec._chain_slots_make()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
BEGIN
	INSERT INTO chainexec.chain_slots (organization_id, chain_id, slot)
	SELECT NEW.organization_id, NEW.chain_id, g
	  FROM pg_catalog.generate_series(1, (NEW.definition->>'concurrencyLimit')::numeric::int) AS g
	 WHERE NOT EXISTS (SELECT FROM chainexec.chain_slots s
						WHERE s.organization_id OPERATOR(pg_catalog.=) NEW.organization_id
						  AND s.chain_id OPERATOR(pg_catalog.=) NEW.chain_id AND s.slot OPERATOR(pg_catalog.=) g)
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END
$$;
CREATE TRIGGER chains_concurrency_slots AFTER INSERT OR UPDATE OF definition ON chainexec.chains
	FOR EACH ROW WHEN (NEW.definition ? 'concurrencyLimit')
	EXECUTE FUNCTION chainexec._chain_slots_make();

CREATE FUNCTION chainexec._chain_set_limit(name text, max_concurrent int, per_second numeric, burst int,
										   caller regrole)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	org		uuid := chainexec.current_organization();
	lname	text := _chain_set_limit.name;
	old_max	int;
	/* values: Citus refuses volatile functions, and stable ones in CASE, in an UPDATE */
	clock	timestamptz := pg_catalog.clock_timestamp();
	ts		timestamptz := pg_catalog.now();
BEGIN
	IF NOT pg_catalog.pg_has_role(caller::pg_catalog.oid, 'chainexec_admin'::pg_catalog.name, 'MEMBER') THEN
		RAISE EXCEPTION 'permission denied to set limit "%"', lname
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A limit throttles every role of the organization whose steps name it.',
				  HINT = 'Ask a member of chainexec_admin to set it.';
	END IF;
	IF lname IS NULL OR lname !~ '^[a-z0-9_.-]{1,63}$' THEN
		RAISE EXCEPTION 'invalid limit name "%"', coalesce(lname, '')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A limit name has 1 to 63 characters among a-z, 0-9, "_", "." and "-".';
	END IF;
	IF max_concurrent IS NULL AND per_second IS NULL THEN
		RAISE EXCEPTION 'limit "%" needs max_concurrent or per_second', lname
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'To remove a limit, use chain_drop_limit().';
	END IF;
	IF max_concurrent IS NOT NULL AND (max_concurrent < 1 OR max_concurrent > 10000) THEN
		RAISE EXCEPTION 'max_concurrent must be between 1 and 10000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF per_second IS NOT NULL AND (per_second <= 0 OR per_second > 1000000) THEN
		RAISE EXCEPTION 'per_second must be greater than 0 and at most 1000000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF burst IS NOT NULL AND per_second IS NULL THEN
		RAISE EXCEPTION 'burst needs per_second'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'burst is the size of the token bucket that per_second fills.';
	END IF;
	IF burst IS NOT NULL AND (burst < 1 OR burst > 1000000) THEN
		RAISE EXCEPTION 'burst must be between 1 and 1000000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF per_second IS NOT NULL THEN
		burst := coalesce(burst, 1);
	END IF;

	SELECT l.max_concurrent INTO old_max FROM chainexec.flow_limits l
	 WHERE l.organization_id = org AND l.name = lname FOR UPDATE;
	IF FOUND THEN
		UPDATE chainexec.flow_limits l
		   SET max_concurrent = _chain_set_limit.max_concurrent, per_second = _chain_set_limit.per_second,
			   burst = _chain_set_limit.burst,
			   tokens = CASE WHEN _chain_set_limit.per_second IS NULL THEN NULL
							 ELSE least(coalesce(l.tokens, _chain_set_limit.burst), _chain_set_limit.burst) END,
			   refilled_at = CASE WHEN _chain_set_limit.per_second IS NULL THEN NULL
								  ELSE coalesce(l.refilled_at, clock) END,
			   next_try = NULL, updated_at = ts
		 WHERE l.organization_id = org AND l.name = lname;
	ELSE
		INSERT INTO chainexec.flow_limits (organization_id, name, max_concurrent, per_second, burst,
										   tokens, refilled_at, created_by)
		VALUES (org, lname, max_concurrent, per_second, burst,
				burst, CASE WHEN per_second IS NOT NULL THEN clock END, caller);
	END IF;
	/* places: those beyond max_concurrent no longer count; removed unless held right now */
	DELETE FROM chainexec.flow_limit_slots s
	 WHERE (s.organization_id, s.name, s.slot) IN (
			SELECT x.organization_id, x.name, x.slot FROM chainexec.flow_limit_slots x
			 WHERE x.organization_id = org AND x.name = lname AND x.slot > coalesce(max_concurrent, 0)
			   FOR UPDATE SKIP LOCKED);
	INSERT INTO chainexec.flow_limit_slots (organization_id, name, slot)
	SELECT org, lname, g FROM pg_catalog.generate_series(1, coalesce(max_concurrent, 0)) AS g
	ON CONFLICT DO NOTHING;
	/* the lines that wait for a place try again */
	PERFORM chainexec._limit_wake(org, lname);
END
$$;

CREATE FUNCTION chainexec._chain_drop_limit(name text, caller regrole)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	org		uuid := chainexec.current_organization();
	lname	text := _chain_drop_limit.name;
BEGIN
	IF NOT pg_catalog.pg_has_role(caller::pg_catalog.oid, 'chainexec_admin'::pg_catalog.name, 'MEMBER') THEN
		RAISE EXCEPTION 'permission denied to drop limit "%"', lname
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A limit throttles every role of the organization whose steps name it.',
				  HINT = 'Ask a member of chainexec_admin to drop it.';
	END IF;
	DELETE FROM chainexec.flow_limits l WHERE l.organization_id = org AND l.name = lname;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	/* its places, but those held right now: a step holding one never waits for this */
	DELETE FROM chainexec.flow_limit_slots s
	 WHERE (s.organization_id, s.name, s.slot) IN (
			SELECT x.organization_id, x.name, x.slot FROM chainexec.flow_limit_slots x
			 WHERE x.organization_id = org AND x.name = lname FOR UPDATE SKIP LOCKED);
	PERFORM chainexec._limit_wake(org, lname);
	RETURN true;
END
$$;

CREATE FUNCTION chainexec.chain_set_limit(name text, max_concurrent int DEFAULT NULL,
										  per_second numeric DEFAULT NULL, burst int DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
CREATE FUNCTION chainexec.chain_drop_limit(name text)
RETURNS boolean LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_definer_call';
COMMENT ON FUNCTION chainexec.chain_set_limit(text, int, numeric, int) IS
	'create or change a limit of the session''s organization: at most max_concurrent steps holding it at once, per_second with burst (chainexec_admin only)';
COMMENT ON FUNCTION chainexec.chain_drop_limit(text) IS
	'drop a limit of the session''s organization; its waiting steps run (chainexec_admin only)';

/*
 * Take a token of limit name for a step about to run: NULL when taken,
 * else the time at which the line should try again (the bucket is empty;
 * lines that wait are spaced by 1 / per_second).  Called by the engine,
 * as the extension owner.
 */
CREATE FUNCTION chainexec._limit_take_token(org uuid, name text)
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	l		chainexec.flow_limits;
	now_ts	timestamptz;
	avail	double precision;
	rate	double precision;
	retry	timestamptz;
BEGIN
	SELECT * INTO l FROM chainexec.flow_limits f
	 WHERE f.organization_id = org AND f.name = _limit_take_token.name FOR NO KEY UPDATE;
	IF NOT FOUND OR l.per_second IS NULL THEN
		RETURN NULL;
	END IF;
	/* the time once the row is ours: another transaction may have taken a token while we waited */
	now_ts := greatest(pg_catalog.clock_timestamp(), l.refilled_at);
	rate := l.per_second::double precision;
	avail := least(l.burst::double precision,
				   coalesce(l.tokens, l.burst) + rate * greatest(extract(epoch FROM now_ts - coalesce(l.refilled_at, now_ts)), 0));
	/* (a token that comes due exactly now may be a rounding error short) */
	IF avail >= 0.999999 THEN
		UPDATE chainexec.flow_limits f SET tokens = greatest(avail - 1, 0), refilled_at = now_ts
		 WHERE f.organization_id = org AND f.name = _limit_take_token.name;
		RETURN NULL;
	END IF;
	/* the bucket is empty: try when the token comes, after the lines already waiting for one */
	retry := now_ts + pg_catalog.make_interval(secs => (1 - avail) / rate);
	IF l.next_try IS NOT NULL AND l.next_try + pg_catalog.make_interval(secs => 1 / rate) > retry THEN
		retry := l.next_try + pg_catalog.make_interval(secs => 1 / rate);
	END IF;
	UPDATE chainexec.flow_limits f SET tokens = avail, refilled_at = now_ts, next_try = retry
	 WHERE f.organization_id = org AND f.name = _limit_take_token.name;
	RETURN retry;
END
$$;

/* What a limit holds now: steps holding a place, and lines waiting for one. */
CREATE FUNCTION chainexec._limit_use(org uuid, name text, OUT in_use int, OUT waiting bigint)
RETURNS record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
	SELECT (SELECT count(*)::int FROM chainexec.flow_limit_slots s
			  JOIN chainexec.flow_limits l ON l.organization_id = s.organization_id AND l.name = s.name
			 WHERE s.organization_id = org AND s.name = _limit_use.name AND s.slot <= l.max_concurrent
			   AND chainexec._xid_in_progress(s.xmax)),
		   (SELECT count(*) FROM chainexec.universal_transaction_lines w
			 WHERE w.organization_id = org AND w.waits_for = _limit_use.name AND w.status = 'ready')
	 WHERE chainexec.org_visible(org)
$$;

CREATE VIEW chainexec.limits WITH (security_invoker = true) AS
SELECT l.organization_id, l.name, l.max_concurrent, l.per_second, l.burst,
	   u.in_use, u.waiting,
	   CASE WHEN l.per_second IS NOT NULL THEN
			least(l.burst::double precision, l.tokens + l.per_second::double precision
				  * greatest(extract(epoch FROM clock_timestamp() - l.refilled_at), 0)) END AS tokens,
	   l.created_by, l.updated_at
  FROM chainexec.flow_limits l
  CROSS JOIN LATERAL chainexec._limit_use(l.organization_id, l.name) u;
GRANT SELECT ON chainexec.limits TO PUBLIC;
COMMENT ON VIEW chainexec.limits IS
	'the limits of the session''s organization with their current use: steps holding a place (in_use), lines waiting for one, tokens in the bucket';

/* Whether the current role may decide on a task for roles (or is chainexec_admin). */
CREATE FUNCTION chainexec._may_decide(roles regrole[])
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
	SELECT pg_catalog.pg_has_role(CURRENT_USER, 'chainexec_admin'::pg_catalog.name, 'MEMBER')
		OR EXISTS (SELECT FROM pg_catalog.pg_roles r
					WHERE r.oid OPERATOR(pg_catalog.=) ANY (roles::pg_catalog.oid[])
					  AND pg_catalog.pg_has_role(CURRENT_USER, r.oid, 'MEMBER'))
$$;

/*
 * Not security_invoker: it reads lines and executions as its owner, and
 * keeps to the rows its own conditions allow (security_barrier: none of
 * the caller's conditions runs first).
 */
CREATE VIEW chainexec.tasks WITH (security_barrier = true) AS
SELECT l.transaction_id AS execution_id, t.chain_id, t.chain_version, l.step_id, l.step_name,
	   l.input->>'input' AS input, l.started_at AS requested_at,
	   CASE WHEN l.not_before < 'infinity' THEN l.not_before END AS due_at,
	   (SELECT count(*)::int FROM chainexec.step_approvals a
		 WHERE a.organization_id = l.organization_id AND a.transaction_id = l.transaction_id
		   AND a.line_number = l.line_number AND a.attempt = l.attempt AND a.decision = 'approved') AS approvals,
	   l.approvals_needed, l.required_roles, l.organization_id
  FROM chainexec.universal_transaction_lines l
  JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
 WHERE l.status = 'waiting' AND l.required_roles IS NOT NULL
   AND l.organization_id = chainexec.current_organization()
   AND t.status IN ('running', 'waiting', 'paused')
   AND chainexec._may_decide(l.required_roles)
   AND NOT EXISTS (SELECT FROM chainexec.step_approvals a
					WHERE a.organization_id = l.organization_id AND a.transaction_id = l.transaction_id
					  AND a.line_number = l.line_number AND a.attempt = l.attempt
					  AND a.role::oid = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER));
GRANT SELECT ON chainexec.tasks TO PUBLIC;
COMMENT ON VIEW chainexec.tasks IS
	'the waiting external steps the current role may complete or fail (requiredRoles), in any execution of the session''s organization, and has not yet decided on';

COMMENT ON FUNCTION chainexec._xid_in_progress(xid) IS
	'internal: whether a transaction is in progress (chainexec.limits counts the places held by running steps with it)';
COMMENT ON FUNCTION chainexec._limit_wake(uuid, text) IS
	'internal: the lines waiting for a place of a limit try again (chain_set_limit, chain_drop_limit)';
COMMENT ON FUNCTION chainexec._chain_slots_make() IS
	'internal: trigger that makes the places of a chain version with concurrencyLimit';
COMMENT ON FUNCTION chainexec._chain_set_limit(text, int, numeric, int, regrole) IS
	'internal: chain_set_limit for role caller, run as the extension owner';
COMMENT ON FUNCTION chainexec._chain_drop_limit(text, regrole) IS
	'internal: chain_drop_limit for role caller, run as the extension owner';
COMMENT ON FUNCTION chainexec._limit_take_token(uuid, text) IS
	'internal: take a token of a limit for a step about to run (the engine calls it); NULL when taken, else when to try again';
COMMENT ON FUNCTION chainexec._limit_use(uuid, text) IS
	'internal: the places of a limit held now and the lines waiting for one (for chainexec.limits)';
COMMENT ON FUNCTION chainexec._may_decide(regrole[]) IS
	'internal: whether the current role is a member of one of roles or of chainexec_admin (for chainexec.tasks)';

COMMENT ON COLUMN chainexec.step_approvals.organization_id IS 'the execution''s organization';
COMMENT ON COLUMN chainexec.step_approvals.transaction_id IS 'the execution';
COMMENT ON COLUMN chainexec.step_approvals.line_number IS 'the step''s line';
COMMENT ON COLUMN chainexec.step_approvals.attempt IS 'the attempt decided on (a retry waits for new decisions)';
COMMENT ON COLUMN chainexec.step_approvals.role IS 'the role that decided (the calling role)';
COMMENT ON COLUMN chainexec.step_approvals.decision IS 'approved (chain_step_complete) or rejected (chain_step_fail)';
COMMENT ON COLUMN chainexec.step_approvals.seq IS 'the order of the decisions on the attempt: outputs merge in this order';
COMMENT ON COLUMN chainexec.step_approvals.output IS 'an approval''s output (the step''s outputVariables of it)';
COMMENT ON COLUMN chainexec.step_approvals.message IS 'a rejection''s message';
COMMENT ON COLUMN chainexec.step_approvals.decided_at IS 'when';

COMMENT ON COLUMN chainexec.flow_limits.organization_id IS 'the organization the limit belongs to';
COMMENT ON COLUMN chainexec.flow_limits.name IS 'the name steps give in "limits"';
COMMENT ON COLUMN chainexec.flow_limits.max_concurrent IS 'at most this many steps holding the limit at once (NULL: no such bound)';
COMMENT ON COLUMN chainexec.flow_limits.per_second IS 'tokens added to the bucket per second (NULL: no rate)';
COMMENT ON COLUMN chainexec.flow_limits.burst IS 'the bucket''s size: at most this many steps at once after a quiet time';
COMMENT ON COLUMN chainexec.flow_limits.refilled_at IS 'when tokens was computed';
COMMENT ON COLUMN chainexec.flow_limits.created_by IS 'the role that created the limit';
COMMENT ON COLUMN chainexec.flow_limits.updated_at IS 'when the limit was last set';

COMMENT ON COLUMN chainexec.flow_limit_slots.organization_id IS 'the limit''s organization';
COMMENT ON COLUMN chainexec.flow_limit_slots.name IS 'the limit';
COMMENT ON COLUMN chainexec.flow_limit_slots.slot IS 'the place''s number, 1 to max_concurrent';

COMMENT ON COLUMN chainexec.chain_slots.organization_id IS 'the chain''s organization';
COMMENT ON COLUMN chainexec.chain_slots.chain_id IS 'the chain';
COMMENT ON COLUMN chainexec.chain_slots.slot IS 'the place''s number, 1 to the largest concurrencyLimit of the chain''s versions';
COMMENT ON COLUMN chainexec.chain_slots.holder IS 'the execution that took the place (free when it has finished)';

COMMENT ON COLUMN chainexec.limits.organization_id IS 'the organization the limit belongs to';
COMMENT ON COLUMN chainexec.limits.name IS 'the name steps give in "limits"';
COMMENT ON COLUMN chainexec.limits.max_concurrent IS 'at most this many steps holding the limit at once';
COMMENT ON COLUMN chainexec.limits.per_second IS 'tokens added per second';
COMMENT ON COLUMN chainexec.limits.burst IS 'the token bucket''s size';
COMMENT ON COLUMN chainexec.limits.in_use IS 'steps holding a place now';
COMMENT ON COLUMN chainexec.limits.waiting IS 'lines waiting for a place';
COMMENT ON COLUMN chainexec.limits.tokens IS 'tokens in the bucket now';
COMMENT ON COLUMN chainexec.limits.created_by IS 'the role that created the limit';
COMMENT ON COLUMN chainexec.limits.updated_at IS 'when the limit was last set';

COMMENT ON COLUMN chainexec.tasks.execution_id IS 'the execution (which the current role may not otherwise see)';
COMMENT ON COLUMN chainexec.tasks.chain_id IS 'its chain';
COMMENT ON COLUMN chainexec.tasks.chain_version IS 'its chain version';
COMMENT ON COLUMN chainexec.tasks.step_id IS 'the step to decide on: chain_step_complete(execution_id, step_id, output) or chain_step_fail';
COMMENT ON COLUMN chainexec.tasks.step_name IS 'the step''s name';
COMMENT ON COLUMN chainexec.tasks.input IS 'the step''s rendered inputTemplate (text)';
COMMENT ON COLUMN chainexec.tasks.requested_at IS 'when the step started waiting';
COMMENT ON COLUMN chainexec.tasks.due_at IS 'when the step times out (timeoutMs), or NULL';
COMMENT ON COLUMN chainexec.tasks.approvals IS 'approvals so far';
COMMENT ON COLUMN chainexec.tasks.approvals_needed IS 'approvals (by distinct roles) that complete the step';
COMMENT ON COLUMN chainexec.tasks.required_roles IS 'the roles whose members decide';
COMMENT ON COLUMN chainexec.tasks.organization_id IS 'the execution''s organization (the session''s)';

REVOKE ALL ON FUNCTION chainexec._chain_set_limit(text, int, numeric, int, regrole),
	chainexec._chain_drop_limit(text, regrole), chainexec._limit_take_token(uuid, text),
	chainexec._chain_slots_make(), chainexec._limit_wake(uuid, text) FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Performance (issue 15)
 *
 * The status CHECKs of the two execution tables as C functions
 * (src/api/statuscheck.c): PostgreSQL reads a table's CHECK expressions
 * back from their stored text and plans them for every UPDATE, and an
 * "IN (ten words)" is an array constant read byte by byte.  Same rule,
 * same constraint names.
 * ------------------------------------------------------------------------ */
CREATE FUNCTION chainexec._execution_status_valid(text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ce_execution_status_valid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION chainexec._execution_status_valid(text) IS
	'internal: the CHECK on universal_transactions.status (pending, running, paused, waiting, completed, failed, cancelled, timeout, compensating, compensated)';
CREATE FUNCTION chainexec._line_status_valid(text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ce_line_status_valid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION chainexec._line_status_valid(text) IS
	'internal: the CHECK on universal_transaction_lines.status (pending, ready, running, waiting, completed, failed, skipped, cancelled, compensated)';
ALTER TABLE chainexec.universal_transactions
	DROP CONSTRAINT universal_transactions_status_check,
	ADD CONSTRAINT universal_transactions_status_check CHECK (chainexec._execution_status_valid(status));
ALTER TABLE chainexec.universal_transaction_lines
	DROP CONSTRAINT universal_transaction_lines_status_check,
	ADD CONSTRAINT universal_transaction_lines_status_check CHECK (chainexec._line_status_valid(status));

/*
 * Time-ordered execution ids (src/api/uuid7.c): the rows of executions
 * started together are neighbours in the primary keys, so that a step's
 * writes touch pages in memory however long the history (bench/scale.sh).
 */
CREATE FUNCTION chainexec._uuid7() RETURNS uuid
	AS 'MODULE_PATHNAME', 'ce_uuid7' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION chainexec._uuid7() IS
	'internal: a new time-ordered UUID, version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then 74 random bits; the default of execution ids';
ALTER TABLE chainexec.universal_transactions ALTER COLUMN id SET DEFAULT chainexec._uuid7();

/* ------------------------------------------------------------------------
 * Scale-out (Citus)
 *
 * SPEC section 9 "Scale-out".  On a Citus cluster the extension owner (or
 * a superuser) calls chainexec.citus_distribute() once on the coordinator,
 * after CREATE EXTENSION citus and CREATE EXTENSION chainexec there (Citus
 * propagates both to the worker nodes).  Every table of the schema that
 * has an organization_id column is distributed by it, all colocated with
 * chainexec.chains (and so with universal_transactions and its lines): an
 * execution, its lines, its chain, its handlers, templates, schedules,
 * breakers and cache entries live on one node, and every query of the
 * engine that names one organization is a router query.  A table without
 * organization_id (the channel secret) becomes a reference table.  Tables
 * are distributed referenced-first, so that the foreign keys (all of
 * which include organization_id) stay.
 *
 * What Citus asks for, and how it is met here:
 * - primary keys and unique indexes must include the distribution column:
 *   every one starts with organization_id;
 * - foreign keys between distributed tables must include it and join
 *   colocated tables: they do (chains <- executions <- lines);
 * - triggers on distributed tables need citus.enable_unsafe_triggers (the
 *   chains_guard trigger only looks at its own row): set for the call;
 * - row-level security policies are propagated to the shards, but a
 *   session's chainexec.organization_id is not (see README "Running on
 *   Citus").
 * The executors detect the distributed lines table (src/engine/store.c)
 * and then claim per organization, with router queries.
 * ------------------------------------------------------------------------ */
/*
 * Citus refuses a policy with a subquery on a distributed table: lines_read
 * (a line is visible with its execution) gets the same test through a
 * function, run as the caller so that executions_read applies to it.
 */
CREATE FUNCTION chainexec._line_visible(org uuid, execution uuid)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
	SELECT EXISTS (SELECT FROM chainexec.universal_transactions t
				   WHERE t.organization_id OPERATOR(pg_catalog.=) org AND t.id OPERATOR(pg_catalog.=) execution)
$$;
COMMENT ON FUNCTION chainexec._line_visible(uuid, uuid) IS
	'internal: whether the caller sees the execution of a line (lines_read on Citus, which refuses subqueries in policies)';

CREATE FUNCTION chainexec.citus_distribute()
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	rel regclass;
	todo regclass[];
	done regclass[] := '{}';
	progress boolean;
	pol record;
	newqual text;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		RAISE EXCEPTION 'the citus extension is not installed in this database'
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Run CREATE EXTENSION citus on the coordinator, add the worker nodes, then call chainexec.citus_distribute() again.';
	END IF;
	IF NOT pg_catalog.pg_has_role(CURRENT_USER,
			(SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'chainexec'), 'MEMBER') THEN
		RAISE EXCEPTION 'only the owner of the chainexec extension may distribute its tables'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
	/*
	 * Every policy whose subquery asks whether the row's execution is
	 * visible (lines_read, step_approvals_read, ...) gets the same test
	 * through _line_visible(); any other subquery is left for Citus to
	 * refuse, with its own message.
	 */
	FOR pol IN SELECT p.tablename, p.policyname, p.permissive, p.cmd, p.roles, p.qual
				 FROM pg_catalog.pg_policies p
				WHERE p.schemaname OPERATOR(pg_catalog.=) 'chainexec'
				  AND p.qual OPERATOR(pg_catalog.~) 'EXISTS \( SELECT\s+FROM (?:chainexec\.)?universal_transactions t' LOOP
		newqual := pg_catalog.regexp_replace(pol.qual,
			'EXISTS \( SELECT\s+FROM (?:chainexec\.)?universal_transactions t\s+WHERE \(\(t\.organization_id = (\w+)\.organization_id\) AND \(t\.id = \1\.transaction_id\)\)\)',
			'chainexec._line_visible(organization_id, transaction_id)', 'g');
		EXECUTE pg_catalog.format('DROP POLICY %I ON chainexec.%I', pol.policyname, pol.tablename);
		EXECUTE pg_catalog.format('CREATE POLICY %I ON chainexec.%I AS %s FOR %s TO %s USING (%s)',
			pol.policyname, pol.tablename, pol.permissive, pol.cmd,
			(SELECT pg_catalog.string_agg(CASE WHEN r OPERATOR(pg_catalog.=) 'public' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r) END, ', ')
			   FROM pg_catalog.unnest(pol.roles) r), newqual);
	END LOOP;
	SELECT pg_catalog.array_agg(c.oid::regclass ORDER BY c.relname) INTO todo
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'chainexec'::regnamespace AND c.relkind OPERATOR(pg_catalog.=) 'r'
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.oid);
	WHILE pg_catalog.cardinality(todo) OPERATOR(pg_catalog.>) 0 LOOP
		progress := false;
		FOREACH rel IN ARRAY todo LOOP
			/* chains first: the other distributed tables are colocated with it */
			CONTINUE WHEN rel OPERATOR(pg_catalog.<>) 'chainexec.chains'::regclass
				AND 'chainexec.chains'::regclass OPERATOR(pg_catalog.=) ANY (todo);
			/* referenced tables first: every foreign key must point at a table already done */
			CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_constraint k
								  WHERE k.conrelid OPERATOR(pg_catalog.=) rel AND k.contype OPERATOR(pg_catalog.=) 'f'
									AND k.confrelid OPERATOR(pg_catalog.<>) rel
									AND k.confrelid::regclass OPERATOR(pg_catalog.=) ANY (todo));
			IF EXISTS (SELECT FROM pg_catalog.pg_attribute a
					   WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attname OPERATOR(pg_catalog.=) 'organization_id'
						 AND NOT a.attisdropped) THEN
				IF rel OPERATOR(pg_catalog.=) 'chainexec.chains'::regclass THEN
					PERFORM pg_catalog.create_distributed_table(rel, 'organization_id', colocate_with => 'none');
				ELSE
					PERFORM pg_catalog.create_distributed_table(rel, 'organization_id', colocate_with => 'chainexec.chains');
				END IF;
				RETURN NEXT pg_catalog.format('%s distributed by organization_id', rel);
			ELSE
				PERFORM pg_catalog.create_reference_table(rel);
				RETURN NEXT pg_catalog.format('%s reference table', rel);
			END IF;
			done := done OPERATOR(pg_catalog.||) rel;
			todo := pg_catalog.array_remove(todo, rel);
			progress := true;
		END LOOP;
		IF NOT progress THEN
			RAISE EXCEPTION 'could not order the tables of chainexec by their foreign keys'
				USING ERRCODE = 'invalid_foreign_key', DETAIL = pg_catalog.format('Left: %s.', todo);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION chainexec.citus_distribute() FROM PUBLIC;
COMMENT ON FUNCTION chainexec.citus_distribute() IS
	'on a Citus coordinator, distribute chainexec''s tables by organization_id (colocated with chains and executions) and make the others reference tables; extension owner only; returns one line per table';

/* ------------------------------------------------------------------------
 * Observability: chainexec.stats (operations), chain_explain and
 * chain_graph (the shape of a chain or an execution), src/api/stats.c,
 * explain.c, graph.c
 * ------------------------------------------------------------------------ */

CREATE FUNCTION chainexec.chain_stats(window_seconds int DEFAULT 60)
RETURNS TABLE (database text, organization_id uuid, executions_active bigint,
			   lines_ready bigint, lines_delayed bigint, lines_running bigint,
			   lines_waiting_external bigint, lines_waiting_timer bigint,
			   oldest_ready_age_s double precision, timers_due bigint,
			   transitions_per_s double precision, failures_per_s double precision,
			   executors_busy int, sessions_busy int, executors int)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'ce_chain_stats';
COMMENT ON FUNCTION chainexec.chain_stats(int) IS
	'the operational numbers of this database per organization, rates over the last window_seconds; superusers, chainexec_admin and pg_monitor see every organization, other roles what row-level security lets them read';

CREATE VIEW chainexec.stats WITH (security_invoker = true) AS
	SELECT * FROM chainexec.chain_stats(60);
GRANT SELECT ON chainexec.stats TO PUBLIC;
COMMENT ON VIEW chainexec.stats IS
	'operational numbers per database and organization (chain_stats over the last minute): backlog, running and waiting lines, due timers, transitions and failures per second, executor slots busy; superusers, chainexec_admin and pg_monitor see every organization, other roles only what row-level security lets them read';
COMMENT ON COLUMN chainexec.stats.database IS 'the current database';
COMMENT ON COLUMN chainexec.stats.organization_id IS 'the tenant; the session''s organization always has a row';
COMMENT ON COLUMN chainexec.stats.executions_active IS 'executions pending, running, waiting, paused or compensating';
COMMENT ON COLUMN chainexec.stats.lines_ready IS 'lines ready and due: the backlog an executor would claim now';
COMMENT ON COLUMN chainexec.stats.lines_delayed IS 'lines ready but not due yet (retry back-off)';
COMMENT ON COLUMN chainexec.stats.lines_running IS 'lines whose step runs now, in an executor or a CALL chain_run session (shared memory: 0 when the library is not preloaded)';
COMMENT ON COLUMN chainexec.stats.lines_waiting_external IS 'external steps waiting for chain_step_complete or chain_step_fail';
COMMENT ON COLUMN chainexec.stats.lines_waiting_timer IS 'wait steps: durable timers';
COMMENT ON COLUMN chainexec.stats.oldest_ready_age_s IS 'seconds since the oldest ready line came due (0: none)';
COMMENT ON COLUMN chainexec.stats.timers_due IS 'waiting lines whose timer or timeout is due and not yet taken';
COMMENT ON COLUMN chainexec.stats.transitions_per_s IS 'lines ended and attempts failed per second over the last minute';
COMMENT ON COLUMN chainexec.stats.failures_per_s IS 'lines failed and attempts failed (retry scheduled) per second over the last minute';
COMMENT ON COLUMN chainexec.stats.executors_busy IS 'executor slots running a line of the organization now (shared memory)';
COMMENT ON COLUMN chainexec.stats.sessions_busy IS 'CALL chain_run sessions running a line of the organization now';
COMMENT ON COLUMN chainexec.stats.executors IS 'executor slots of the server (chainexec.max_workers; 0 when the library is not preloaded)';

CREATE FUNCTION chainexec.chain_explain(chain_id text, version int DEFAULT NULL)
RETURNS text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'ce_chain_explain';
COMMENT ON FUNCTION chainexec.chain_explain(text, int) IS
	'the plan of a chain version (default: the active one, else the latest) as EXPLAIN shows a query: stages of steps that may run at once, dependencies, conditions and skip targets, retries, fallbacks, compensations, the critical path and each step''s estimated duration from its completed runs';

CREATE FUNCTION chainexec.chain_graph(id text, format text DEFAULT 'mermaid')
RETURNS text
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'ce_chain_graph';
COMMENT ON FUNCTION chainexec.chain_graph(text, text) IS
	'the DAG of a chain (its id) or of an execution (its uuid, with each step''s status and duration) as a Mermaid flowchart (format ''mermaid'') or Graphviz DOT (''dot''), the critical path drawn thick';

/* ------------------------------------------------------------------------
 * Composition (SPEC §9): child executions (steps of type "chain"), forEach
 * and repeatUntil (src/engine/subchain.c, src/engine/iterate.c)
 * ------------------------------------------------------------------------ */

/*
 * A child execution names its parent execution and the parent's line that
 * waits for it; its metadata says the same ("parent") with its "depth"
 * and "ancestors".  Deleting a parent (chain_cleanup) deletes its children.
 */
ALTER TABLE chainexec.universal_transactions
	ADD COLUMN parent_id uuid,
	ADD COLUMN parent_line int,
	ADD CONSTRAINT universal_transactions_parent_fkey FOREIGN KEY (organization_id, parent_id)
		REFERENCES chainexec.universal_transactions (organization_id, id) ON DELETE CASCADE;
COMMENT ON COLUMN chainexec.universal_transactions.parent_id IS
	'a child execution (started by a step of type "chain"): its parent execution, in the same organization';
COMMENT ON COLUMN chainexec.universal_transactions.parent_line IS
	'a child execution: the line of the parent that waits for it';
/* A parent's children: cancelling them, chain_status, chain_run, cascades. */
CREATE INDEX universal_transactions_parent
	ON chainexec.universal_transactions (organization_id, parent_id)
	WHERE parent_id IS NOT NULL;

/*
 * Iterations of a forEach or repeatUntil step are lines of their own
 * (line type "iteration"), whose parent_line is the step's line.
 */
ALTER TABLE chainexec.universal_transaction_lines ADD COLUMN iteration int;
ALTER TABLE chainexec.universal_transaction_lines
	DROP CONSTRAINT universal_transaction_lines_line_type_check,
	ADD CONSTRAINT universal_transaction_lines_line_type_check
		CHECK (line_type IN ('step', 'fallback', 'compensation', 'iteration'));
COMMENT ON COLUMN chainexec.universal_transaction_lines.iteration IS
	'iteration lines: the element''s index in the forEach array, or the repetition''s number (from 0)';
COMMENT ON COLUMN chainexec.universal_transaction_lines.parent_line IS
	'fallback and compensation lines: the line they stand for; iteration lines: their step''s line';
/*
 * The engine reads an execution's step, fallback and compensation lines at
 * every transition; this index keeps a forEach's thousands of iteration
 * lines out of that read.
 */
CREATE INDEX universal_transaction_lines_steps
	ON chainexec.universal_transaction_lines (organization_id, transaction_id, line_number)
	WHERE line_type <> 'iteration';

CREATE OR REPLACE VIEW chainexec.executions WITH (security_invoker = true) AS
SELECT t.id AS execution_id, t.organization_id, t.chain_id, t.chain_version, t.status,
	   t.owner, t.priority, t.created_at, t.started_at, t.finished_at,
	   extract(epoch FROM coalesce(t.finished_at, now()) - t.started_at) * 1000 AS duration_ms,
	   t.error->>'failure_type' AS failure_type, t.error->>'message' AS error_message,
	   t.idempotency_key, t.smart_code, t.parent_id AS parent_execution_id
  FROM chainexec.universal_transactions t;

CREATE OR REPLACE VIEW chainexec.step_runs WITH (security_invoker = true) AS
SELECT l.transaction_id AS execution_id, l.organization_id, t.chain_id, t.chain_version,
	   l.line_number, l.line_type, l.step_id, l.step_name, l.status, l.attempt,
	   l.not_before, l.started_at, l.finished_at, l.duration_ms,
	   l.error->>'failure_type' AS failure_type, l.error->>'sqlstate' AS sqlstate,
	   l.error->>'message' AS error_message, l.input, l.output, l.smart_code, l.iteration
  FROM chainexec.universal_transaction_lines l
  JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id;
COMMENT ON COLUMN chainexec.executions.parent_execution_id IS
	'a child execution (a step of type "chain"): its parent execution';
COMMENT ON COLUMN chainexec.step_runs.iteration IS
	'iteration lines of a forEach or repeatUntil step: the element''s index or the repetition''s number';

/*
 * chain_status: the progress counts step lines (a forEach or repeatUntil
 * step is one step; its share of done iterations moves "percent"), the
 * current lines say which iteration they are, and "children" lists the
 * child executions (steps of type "chain") with their status.
 */
CREATE OR REPLACE FUNCTION chainexec.chain_status(execution_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	t chainexec.universal_transactions := chainexec._execution(execution_id);
	p jsonb;
	cur jsonb;
	kids jsonb;
BEGIN
	SELECT jsonb_build_object(
			'completed', count(*) FILTER (WHERE status IN ('completed', 'compensated')),
			'running', count(*) FILTER (WHERE status IN ('ready', 'running') AND not_before <= now() AND waits_for IS NULL),
			'waiting', count(*) FILTER (WHERE status = 'waiting' OR (status = 'ready' AND (not_before > now() OR waits_for IS NOT NULL))),
			'pending', count(*) FILTER (WHERE status = 'pending'),
			'failed', count(*) FILTER (WHERE status = 'failed'),
			'skipped', count(*) FILTER (WHERE status = 'skipped'),
			'cancelled', count(*) FILTER (WHERE status = 'cancelled'),
			'total', count(*))
	  INTO p
	  FROM chainexec.universal_transaction_lines
	 WHERE organization_id OPERATOR(pg_catalog.=) t.organization_id
	   AND transaction_id OPERATOR(pg_catalog.=) t.id AND line_type OPERATOR(pg_catalog.=) 'step';

	SELECT coalesce(jsonb_agg(jsonb_build_object('stepId', step_id, 'stepName', step_name, 'status', status,
												 'attempt', attempt, 'lineType', line_type, 'notBefore', not_before,
												 'iteration', iteration)
							  ORDER BY line_number), '[]')
	  INTO cur
	  FROM chainexec.universal_transaction_lines
	 WHERE organization_id OPERATOR(pg_catalog.=) t.organization_id
	   AND transaction_id OPERATOR(pg_catalog.=) t.id
	   AND status OPERATOR(pg_catalog.=) ANY (chainexec._status_names('line', 'active'));

	SELECT coalesce(jsonb_agg(jsonb_build_object('executionId', c.id, 'chainId', c.chain_id,
												 'status', c.status, 'line', c.parent_line,
												 'stepId', (c.metadata->'parent'->>'stepId')::int)
							  ORDER BY c.created_at, c.id), '[]')
	  INTO kids
	  FROM chainexec.universal_transactions c
	 WHERE c.organization_id OPERATOR(pg_catalog.=) t.organization_id
	   AND c.parent_id OPERATOR(pg_catalog.=) t.id;

	RETURN jsonb_build_object(
		'executionId', t.id,
		'chainId', t.chain_id,
		'chainVersion', t.chain_version,
		'status', t.status,
		'currentSteps', cur,
		'progress', p OPERATOR(pg_catalog.||) chainexec._progress(t.id),
		'createdAt', t.created_at,
		'startedAt', t.started_at,
		'finishedAt', t.finished_at,
		'error', t.error,
		'parentExecutionId', t.parent_id,
		'children', kids);
END
$$;

/* ------------------------------------------------------------------------
 * Statuses
 *
 * The names of the statuses of executions and lines, and their groups,
 * come from the engine's one table of each (src/engine/status.c): SQL that
 * asks "is it terminal", "is it active" compares against
 * chainexec._status_names(kind, group), which the planner folds into a
 * constant.  The tables' CHECK constraints list the same names (a pgTAP
 * test holds them equal).
 * ------------------------------------------------------------------------ */
CREATE FUNCTION chainexec._status_names(kind text, grp text DEFAULT 'all')
RETURNS text[] LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'ce_status_names_sql';
COMMENT ON FUNCTION chainexec._status_names(text, text) IS
	'internal: the status names of kind execution or line in group all, terminal, live (executions), open or active (lines), from the engine''s table';

/* ------------------------------------------------------------------------
 * Performance (issue 15), continued
 *
 * The line_type CHECK as a C function too (src/api/statuscheck.c), for the
 * reason given for the status CHECKs above: every step's write updates two
 * lines, and each UPDATE reads the CHECK expressions back.
 * ------------------------------------------------------------------------ */
CREATE FUNCTION chainexec._line_type_valid(text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ce_line_type_valid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION chainexec._line_type_valid(text) IS
	'internal: the CHECK on universal_transaction_lines.line_type (step, fallback, compensation, iteration)';
ALTER TABLE chainexec.universal_transaction_lines
	DROP CONSTRAINT universal_transaction_lines_line_type_check,
	ADD CONSTRAINT universal_transaction_lines_line_type_check CHECK (chainexec._line_type_valid(line_type));
COMMENT ON COLUMN chainexec.universal_transaction_lines.line_type IS 'step, fallback, compensation or iteration';

/*
 * chain_result in C: one statement kept prepared for the session, as the
 * caller (row-level security applies), naming every function, operator
 * and type with its schema.  chain_wait, chain_await and chain_run call
 * it directly.  As a PL/pgSQL function with a SET clause it took a third
 * of the time of every chain_wait.
 */
CREATE OR REPLACE FUNCTION chainexec.chain_result(execution_id uuid)
RETURNS jsonb
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'ce_chain_result';

/* ------------------------------------------------------------------------
 * Privileges, last (keep this section at the end of the script)
 *
 * The rules of the first section, applied again to everything the
 * sections above made: no write privilege for PUBLIC on any table or
 * sequence; every function that is not C (and not one of the inlined,
 * schema-qualified helpers) pins search_path = pg_catalog, chainexec,
 * pg_temp, and so does every function that runs as its definer.
 * ------------------------------------------------------------------------ */
DO $$
DECLARE
	rel regclass;
	fn regprocedure;
BEGIN
	FOR rel IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
				WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	LOOP
		EXECUTE pg_catalog.format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %s FROM PUBLIC', rel);
	END LOOP;
	FOR rel IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
				WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind = 'S'
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE %s FROM PUBLIC', rel);
	END LOOP;
	FOR fn IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
			   JOIN pg_catalog.pg_language l ON l.oid = p.prolang
			  WHERE p.pronamespace = 'chainexec'::regnamespace
				AND (p.prosecdef OR (l.lanname <> 'c' AND p.proname NOT IN
					 ('current_organization', 'can_access', 'org_visible', 'smart_code', '_role_may')))
				AND NOT coalesce('search_path=pg_catalog, chainexec, pg_temp' = ANY (p.proconfig), false)
	LOOP
		EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, chainexec, pg_temp', fn);
	END LOOP;
END
$$;
