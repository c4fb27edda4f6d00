/*-------------------------------------------------------------------------
 *
 * external.c
 *	  The results of external steps: chain_step_complete and
 *	  chain_step_fail record what a person or a system outside the
 *	  database decided on a waiting external step, as the engine records
 *	  an attempt's result, in the caller's transaction.
 *
 * Who may call: as for the other control functions (control.c), or, for
 * a step with requiredRoles, the members of those roles and of
 * chainexec_admin only (tasks.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "control.h"
#include "control_int.h"
#include "compose.h"
#include "engine.h"
#include "tasks.h"

PG_FUNCTION_INFO_V1(ce_chain_step_complete);
PG_FUNCTION_INFO_V1(ce_chain_step_fail);

/*
 * chain_step_complete and chain_step_fail: the result of an external step
 * that waits, recorded as the engine records an attempt's (outputs merged,
 * or retry and onFailure), in the caller's transaction.
 */
static void
external_result(FunctionCallInfo fcinfo, bool ok, Jsonb *output, char *ftype, char *message)
{
	Ctl			c;
	LineRow		line;
	CeStep	   *step;
	CeStepRun	run;
	CeLookupCtx lk;
	int			step_id = ce_ctl_step_arg(fcinfo, 1);
	Oid			caller = GetUserId();
	bool		task;

	ce_ctl_open_as(&c, ce_ctl_uuid_arg(fcinfo), true, ok ? "complete a step of" : "fail a step of", true);
	/* requiredRoles decide who may; else the owner and chainexec_admin */
	task = ce_task_check_caller(&c.ex, ce_plan_step_by_id(c.ex.plan, step_id), step_id, caller,
								c.may_control, ok);
	ce_ctl_step_line(&c, step_id, &line);
	if (line.status != CE_LINE_WAITING)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("step %d of execution %s is not waiting for a result", step_id, c.ex.id_s),
				 errdetail("The step is %s.", ce_line_status_name(line.status)),
				 errhint("Only external steps wait for chain_step_complete() or chain_step_fail().")));
	step = ce_plan_step_by_id(c.ex.plan, step_id);
	if (step != NULL && (step->kind == CE_STEP_CHAIN || ce_step_iterates(step)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("step %d of execution %s waits for its %s", step_id, c.ex.id_s,
						ce_step_iterates(step) ? "iterations" : "child execution"),
				 errhint("It completes or fails when %s; chain_cancel() stops it.",
						 ce_step_iterates(step) ? "its iterations end" : "the child execution ends")));
	if (step == NULL || step->kind != CE_STEP_EXTERNAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("step %d of execution %s is not an external step", step_id, c.ex.id_s)));

	ce_step_setup(&c.ex, step, line.attempt, &lk, &run);
	if (ok)
	{
		run.ok = true;
		run.outputs = ce_step_declared_outputs(step, output);
		if (task)
		{
			/* an approval: the step completes with the threshold's */
			run.outputs = ce_task_approve(&c.ex, &line, step, caller, run.outputs);
			if (run.outputs == NULL)
			{
				ce_ctl_close(&c);
				return;
			}
		}
		ce_line_succeeded(&c.ex, &line, step, &run, line.attempt);
	}
	else
	{
		if (task)
			ce_task_reject(&c.ex, &line, caller, message);
		ce_step_fail(&run, ftype, NULL, "%s", message);
		ce_line_failed(&c.ex, &line, step, &run, line.attempt);
	}
	ce_ctl_close(&c);
}

/* chain_step_complete(execution_id uuid, step int, output jsonb DEFAULT '{}') RETURNS boolean */
Datum
ce_chain_step_complete(PG_FUNCTION_ARGS)
{
	Jsonb	   *out = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);

	(void) ce_ctl_uuid_arg(fcinfo);
	(void) ce_ctl_step_arg(fcinfo, 1);
	if (out)
	{
		/*
		 * The same check as every context write, before anything changes
		 * (the caller's mistake is the caller's error, not the step's).
		 * Only the declared outputs are kept, and checked again on merge.
		 */
		(void) ce_context_merge_or_error(NULL, out, "output", "an external step");
	}
	else
		out = ce_text_to_jsonb("{}");
	external_result(fcinfo, true, out, NULL, NULL);
	PG_RETURN_BOOL(true);
}

/* chain_step_fail(execution_id uuid, step int, failure_type text, message text DEFAULT NULL) RETURNS boolean */
Datum
ce_chain_step_fail(PG_FUNCTION_ARGS)
{
	char	   *ftype = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	const char *p;
	bool		valid = ftype != NULL && ftype[0] != '\0' && strlen(ftype) <= 63;

	(void) ce_ctl_uuid_arg(fcinfo);
	(void) ce_ctl_step_arg(fcinfo, 1);
	for (p = ftype; valid && *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			valid = false;
	if (!valid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid failure type \"%s\"", ftype ? ftype : ""),
				 errhint("A failure type has 1 to 63 characters among a-z, 0-9 and \"_\", such as \"api_timeout\".")));
	external_result(fcinfo, false, NULL, ftype,
					PG_ARGISNULL(3) ? ftype : text_to_cstring(PG_GETARG_TEXT_PP(3)));
	PG_RETURN_BOOL(true);
}
