/*-------------------------------------------------------------------------
 *
 * channel.c
 *	  chain_listen and chain_unlisten: LISTEN (UNLISTEN) on the event
 *	  channels the caller may read, named by the engine (channels.c), whose
 *	  header says who may receive which events.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"

#include "executor/spi.h"
#include "funcapi.h"

#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "chainexec.h"
#include "channels.h"
#include "bridge.h"

PG_FUNCTION_INFO_V1(ce_chain_listen);
PG_FUNCTION_INFO_V1(ce_chain_unlisten);

/* ---------------------------------------------------------------------
 * chain_listen, chain_unlisten
 * --------------------------------------------------------------------- */

/* LISTEN's own checks, which a function running it must make too. */
static void
check_listen_allowed(const char *cmd)
{
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot run %s within a security-restricted operation", cmd)));
	PreventCommandDuringRecovery(cmd);
}

/* A role's name for messages, or its oid when it has none. */
static const char *
role_label(Oid role)
{
	const char *name = OidIsValid(role) ? GetUserNameFromId(role, true) : NULL;

	return name ? name : psprintf("%u", role);
}

/*
 * The channels the current role may read in the session's organization:
 * with a role, that role's (the caller must be a member of it, or of
 * chainexec_admin); else the admin channel for chainexec_admin, or the
 * channel of every role the caller is a member of (itself included).
 */
static List *
readable_channels(bool has_role, Oid role)
{
	Oid			caller = GetUserId();
	Oid			admin = get_role_oid("chainexec_admin", true);
	bool		is_admin = OidIsValid(admin) && is_member_of_role(caller, admin);
	pg_uuid_t	org;
	char		name[NAMEDATALEN];
	List	   *result = NIL;

	if (has_role && !(OidIsValid(role) && (is_admin || is_member_of_role(caller, role))))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to listen for the events of role \"%s\"", role_label(role)),
				 errdetail("Only members of a role, and of chainexec_admin, receive the events of its executions."),
				 errhint("Call chainexec.chain_listen() without a role for every channel you may read.")));
	if (ce_notify_public)
		return list_make1(pstrdup(ce_notify_channel));

	ce_current_org(&org);
	if (has_role)
	{
		ce_channel_name(&org, role, name);
		return list_make1(pstrdup(name));
	}
	if (is_admin)
	{
		ce_channel_name(&org, InvalidOid, name);
		return list_make1(pstrdup(name));
	}

	/* every role whose executions the caller may read (row-level security's rule) */
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		args[1];
		uint64		i;
		List	   *roles = NIL;
		ListCell   *lc;
		MemoryContext outer = CurrentMemoryContext;

		args[0] = ObjectIdGetDatum(caller);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT r.oid FROM pg_catalog.pg_roles r "
								  "WHERE pg_catalog.pg_has_role($1, r.oid, 'MEMBER') ORDER BY 1",
								  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the roles of the current role");
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Oid			r = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));
			MemoryContext old = MemoryContextSwitchTo(outer);

			roles = lappend_oid(roles, r);
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
		foreach(lc, roles)
		{
			ce_channel_name(&org, lfirst_oid(lc), name);
			result = lappend(result, pstrdup(name));
		}
	}
	return result;
}

/* Add a channel to a list of names unless it is there already. */
static List *
add_channel(List *list, const char *ch)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp((const char *) lfirst(lc), ch) == 0)
			return list;
	return lappend(list, pstrdup(ch));
}

/* Return a list of names as the rows of a set-returning function. */
static void
return_names(FunctionCallInfo fcinfo, List *names)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	foreach(lc, names)
	{
		Datum		value = CStringGetTextDatum((const char *) lfirst(lc));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
}

/*
 * chainexec.chain_listen(role regrole DEFAULT NULL) RETURNS SETOF text
 *
 * LISTEN (from the end of the transaction on, for the session) on every
 * channel whose events the current role may read in the session's
 * organization, or on the channel of one role; returns their names.
 * Runs as the caller, so that it knows who calls; only the secret is read
 * as the extension owner.
 */
Datum
ce_chain_listen(PG_FUNCTION_ARGS)
{
	List	   *names;
	ListCell   *lc;

	check_listen_allowed("LISTEN");
	names = readable_channels(!PG_ARGISNULL(0), PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0));
	foreach(lc, names)
		Async_Listen((const char *) lfirst(lc));
	return_names(fcinfo, names);
	return (Datum) 0;
}

/*
 * chainexec.chain_unlisten(role regrole DEFAULT NULL) RETURNS SETOF text
 *
 * UNLISTEN the channel of one role in the session's organization; without
 * a role, every chainexec channel the session listens on (in any
 * organization) and those chain_listen() would choose now.  Returns the
 * names.
 */
Datum
ce_chain_unlisten(PG_FUNCTION_ARGS)
{
	List	   *names;
	ListCell   *lc;

	check_listen_allowed("UNLISTEN");
	names = readable_channels(!PG_ARGISNULL(0), PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0));
	if (PG_ARGISNULL(0))
	{
		uint64		i;
		List	   *listening = NIL;
		MemoryContext outer = CurrentMemoryContext;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT pg_catalog.pg_listening_channels()", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the channels this session listens on");
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *ch = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			if (ch && ce_is_event_channel(ch))
			{
				MemoryContext old = MemoryContextSwitchTo(outer);

				listening = lappend(listening, pstrdup(ch));
				MemoryContextSwitchTo(old);
			}
		}
		SPI_finish();
		foreach(lc, listening)
			names = add_channel(names, (const char *) lfirst(lc));
	}
	foreach(lc, names)
		Async_Unlisten((const char *) lfirst(lc));
	return_names(fcinfo, names);
	return (Datum) 0;
}
