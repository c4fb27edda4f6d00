/*-------------------------------------------------------------------------
 *
 * control.c
 *	  The entry points of the control functions (chain_cancel, chain_pause,
 *	  chain_resume, chain_retry_step, chain_skip_step, chain_rollback,
 *	  chain_rollback_plan, chain_step_complete, chain_step_fail).
 *
 * Executions are written only by the extension's owner.  Each public
 * control function is this one C entry point: it checks, as the caller,
 * that the execution (its first argument) exists in the caller's
 * organization and that the caller may control it (owner role or a member
 * of it, or chainexec_admin), then calls the implementation
 * chainexec._<name>(same arguments), which is not executable by PUBLIC, as
 * the extension owner, and returns its result.
 *
 * Signals to running steps (cancel) are sent after commit, so that a
 * rolled-back cancel interrupts nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "chainexec.h"
#include "define.h"
#include "engine.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(ce_control_call);
PG_FUNCTION_INFO_V1(ce_signal_running);
PG_FUNCTION_INFO_V1(ce_finished_sql);

/* Check that the caller may control execution id; raises otherwise. */
static void
check_access(pg_uuid_t *id)
{
	Datum		arg = UUIDPGetDatum(id);
	Oid			type = UUIDOID;
	int			ret;
	bool		isnull;

	ret = SPI_execute_with_args("SELECT chainexec.can_access(owner), owner::text "
								"FROM chainexec.universal_transactions "
								"WHERE organization_id = chainexec.current_organization() AND id = $1",
								1, &type, &arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %s does not exist", ce_uuid_to_cstring(id)),
				 errhint("It may belong to another organization or role, or have been removed by chain_cleanup().")));
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for execution %s", ce_uuid_to_cstring(id)),
				 errdetail("The execution belongs to role %s.",
						   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
				 errhint("Only its owner role, members of it, and members of chainexec_admin control an execution.")));
}

Datum
ce_control_call(PG_FUNCTION_ARGS)
{
	Oid			fn = fcinfo->flinfo->fn_oid;
	char	   *name = get_func_name(fn);
	Oid			rettype = get_func_rettype(fn);
	int			nargs = PG_NARGS();
	Oid		   *types;
	int			ndeclared;
	Datum	   *values = palloc(sizeof(Datum) * Max(nargs, 1));
	char	   *nulls = palloc(nargs + 1);
	StringInfoData sql;
	int			i;
	int			ret;
	bool		isnull = true;
	Datum		result = (Datum) 0;
	Oid			save_user;
	int			save_sec;
	int16		typlen;
	bool		typbyval;
	MemoryContext callcxt = CurrentMemoryContext;
	int			gucnest;

	(void) get_func_signature(fn, &types, &ndeclared);
	Assert(ndeclared == nargs);
	if (types[0] == UUIDOID && PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("execution id must not be null")));
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT chainexec.%s(", quote_identifier(psprintf("_%s", name)));
	for (i = 0; i < nargs; i++)
	{
		values[i] = PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
	}

	/*
	 * A function whose first argument is not an execution id gets the
	 * caller's role as one more argument, to confine what it does.
	 */
	if (nargs == 0 || types[0] != UUIDOID)
	{
		Oid		   *t2 = palloc(sizeof(Oid) * (nargs + 1));
		Datum	   *v2 = palloc(sizeof(Datum) * (nargs + 1));
		char	   *n2 = palloc(nargs + 2);

		memcpy(t2, types, sizeof(Oid) * nargs);
		memcpy(v2, values, sizeof(Datum) * nargs);
		memcpy(n2, nulls, nargs);
		t2[nargs] = OIDOID;
		v2[nargs] = ObjectIdGetDatum(GetUserId());
		n2[nargs] = ' ';
		appendStringInfo(&sql, "%s$%d::regrole", nargs ? ", " : "", nargs + 1);
		types = t2;
		values = v2;
		nulls = n2;
		nargs++;
	}
	appendStringInfoChar(&sql, ')');

	SPI_connect();
	if (types[0] == UUIDOID)
		check_access(DatumGetUUIDP(values[0]));

	/*
	 * A fixed search_path while running as the extension owner, so that no
	 * function or operator of the caller's can run with its privileges.
	 */
	gucnest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		ret = SPI_execute_with_args(sql.data, nargs, types, values, nulls, false, 1);
		if (ret < 0 || SPI_processed != 1)
			elog(ERROR, "control function %s failed", name);
		if (rettype != VOIDOID)
		{
			result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
			{
				MemoryContext old = MemoryContextSwitchTo(callcxt);

				get_typlenbyval(rettype, &typlen, &typbyval);
				result = datumCopy(result, typbyval, typlen);
				MemoryContextSwitchTo(old);
			}
		}
	}
	PG_CATCH();
	{
		SetUserIdAndSecContext(save_user, save_sec);
		PG_RE_THROW();
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_user, save_sec);
	AtEOXact_GUC(true, gucnest);
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	return result;
}

/* Pids to interrupt when the current transaction commits. */
static int	pending_pids[64];
static int	npending = 0;
static bool callback_registered = false;

static void
signal_callback(XactEvent event, void *arg)
{
	int			i;

	if (event == XACT_EVENT_COMMIT)
	{
		for (i = 0; i < npending; i++)
			if (pending_pids[i] != MyProcPid)
				kill(pending_pids[i], SIGINT);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
		npending = 0;
}

void
ce_signal_running_at_commit(const pg_uuid_t *id)
{
	int			pids[16];
	int			n = ce_running_pids(id, pids, lengthof(pids));
	int			i;

	if (!callback_registered)
	{
		RegisterXactCallback(signal_callback, NULL);
		callback_registered = true;
	}
	for (i = 0; i < n && npending < (int) lengthof(pending_pids); i++)
		pending_pids[npending++] = pids[i];
}

/*
 * _signal_running(execution_id uuid): interrupt, when this transaction
 * commits, the backends running steps of the execution.
 */
Datum
ce_signal_running(PG_FUNCTION_ARGS)
{
	ce_signal_running_at_commit(PG_GETARG_UUID_P(0));
	PG_RETURN_VOID();
}

/* _finished(): wake chain_wait callers when this transaction commits. */
Datum
ce_finished_sql(PG_FUNCTION_ARGS)
{
	ce_finished_at_commit();
	PG_RETURN_VOID();
}
