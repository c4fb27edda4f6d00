/*-------------------------------------------------------------------------
 *
 * legacy.c
 *	  C symbols that chainexec 0.1.0's install script declares and 0.2.0
 *	  no longer uses: CREATE EXTENSION runs that script first, so each
 *	  must exist; they raise a clear error or do the little they still do.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <signal.h>

#include "utils/lsyscache.h"

#include "control.h"

#include "shmem.h"

/*
 * chainexec 0.1.0's _advance(org uuid, id uuid) and _external_result(...):
 * the control functions of 0.1.0 called them from PL/pgSQL; 0.2.0 drops
 * them (control.c does the same in C).  The symbols stay for the 0.1.0
 * install script.
 */
static void
no_longer_used(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("chainexec.%s() is no longer used", name),
			 errhint("Update the extension: ALTER EXTENSION chainexec UPDATE.")));
}

PG_FUNCTION_INFO_V1(ce_advance_sql);
Datum
ce_advance_sql(PG_FUNCTION_ARGS)
{
	no_longer_used("_advance");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ce_external_result_sql);
Datum
ce_external_result_sql(PG_FUNCTION_ARGS)
{
	no_longer_used("_external_result");
	PG_RETURN_VOID();
}

/* ce_control_call: 0.1.0 declared every control function with it. */
PG_FUNCTION_INFO_V1(ce_control_call);
Datum
ce_control_call(PG_FUNCTION_ARGS)
{
	char	   *name = get_func_name(fcinfo->flinfo->fn_oid);

	if (strcmp(name, "chain_cancel") == 0)
		return ce_chain_cancel(fcinfo);
	if (strcmp(name, "chain_pause") == 0)
		return ce_chain_pause(fcinfo);
	if (strcmp(name, "chain_resume") == 0)
		return ce_chain_resume(fcinfo);
	if (strcmp(name, "chain_retry_step") == 0)
		return ce_chain_retry_step(fcinfo);
	if (strcmp(name, "chain_skip_step") == 0)
		return ce_chain_skip_step(fcinfo);
	if (strcmp(name, "chain_rollback") == 0)
		return ce_chain_rollback(fcinfo);
	if (strcmp(name, "chain_rollback_plan") == 0)
		return ce_chain_rollback_plan(fcinfo);
	if (strcmp(name, "chain_step_complete") == 0)
		return ce_chain_step_complete(fcinfo);
	if (strcmp(name, "chain_step_fail") == 0)
		return ce_chain_step_fail(fcinfo);
	if (strcmp(name, "chain_cleanup") == 0)
		return ce_chain_cleanup(fcinfo);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("\"%s\" is not a control function of chainexec", name)));
	PG_RETURN_NULL();
}

/* _signal_running(execution_id uuid) of 0.1.0 (dropped by 0.2.0). */
PG_FUNCTION_INFO_V1(ce_signal_running);
Datum
ce_signal_running(PG_FUNCTION_ARGS)
{
	ce_signal_running_at_commit(PG_GETARG_UUID_P(0));
	PG_RETURN_VOID();
}

/* _finished() of 0.1.0 (dropped by 0.2.0). */
PG_FUNCTION_INFO_V1(ce_finished_sql);
Datum
ce_finished_sql(PG_FUNCTION_ARGS)
{
	ce_finished_at_commit();
	PG_RETURN_VOID();
}
