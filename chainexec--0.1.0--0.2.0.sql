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
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Definitions, handlers and templates
 * ------------------------------------------------------------------------ */

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

/* Send an event of a control function; the engine's own path in C. */
CREATE FUNCTION chainexec._notify(org uuid, owner regrole, event text, payload text)
RETURNS void
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'ce_notify_sql';
REVOKE ALL ON FUNCTION chainexec._notify(uuid, regrole, text, text) FROM PUBLIC;

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

/* Control functions' events: to the readers' channels, as the engine's. */
CREATE OR REPLACE FUNCTION chainexec._emit(t chainexec.universal_transactions, event text, status text,
										   step_id int DEFAULT NULL, step_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, chainexec, pg_temp
AS $$
DECLARE
	level text;
	progress int;
BEGIN
	SELECT coalesce(c.definition OPERATOR(pg_catalog.->>) 'notify', 'steps') INTO level
	  FROM chainexec.chains c
	 WHERE c.organization_id OPERATOR(pg_catalog.=) t.organization_id
	   AND c.chain_id OPERATOR(pg_catalog.=) t.chain_id AND c.version OPERATOR(pg_catalog.=) t.chain_version;
	IF level OPERATOR(pg_catalog.=) 'none'
	   OR (level OPERATOR(pg_catalog.=) 'lifecycle' AND event OPERATOR(pg_catalog.!~) '^(chain_|compensation_)') THEN
		RETURN;
	END IF;
	SELECT CASE WHEN count(*) OPERATOR(pg_catalog.=) 0 THEN 100
				ELSE (100 OPERATOR(pg_catalog.*)
					  count(*) FILTER (WHERE l.status OPERATOR(pg_catalog.=) ANY ('{completed,skipped,compensated}'::text[])
									   OR (l.status OPERATOR(pg_catalog.=) 'failed'
										   AND t.status OPERATOR(pg_catalog.=) ANY ('{pending,running,waiting,paused}'::text[])))
					  OPERATOR(pg_catalog./) count(*))::int END
	  INTO progress
	  FROM chainexec.universal_transaction_lines l
	 WHERE l.organization_id OPERATOR(pg_catalog.=) t.organization_id
	   AND l.transaction_id OPERATOR(pg_catalog.=) t.id AND l.line_type OPERATOR(pg_catalog.=) 'step';
	PERFORM chainexec._notify(t.organization_id, t.owner, event,
		jsonb_build_object('event', event, 'executionId', t.id, 'chainId', t.chain_id,
						   'stepId', step_id, 'stepName', step_name, 'status', status, 'attempt', 0,
						   'progress', progress, 'etaMs', NULL,
						   'ts', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text);
END
$$;

/* ------------------------------------------------------------------------
 * Execution control
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Scheduling
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Chain format
 * ------------------------------------------------------------------------ */
