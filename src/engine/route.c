/*-------------------------------------------------------------------------
 *
 * route.c
 *	  Routing of a transition: a step's condition (conditionalExecution,
 *	  evaluated before the step runs, or after it when it reads the step's
 *	  outputs) and the skipping of the steps up to a skip_to_step_N target.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine_int.h"
#include "expr.h"


CondAction
ce_eval_condition(const CeStep *step, CeLookupCtx *lk, int *skip_to)
{
	CeValue		v;
	CeError		err;

	memset(&err, 0, sizeof(err));
	if (!ce_expr_eval(step->condition_expr, ce_lookup, lk, &v, &err))
		return COND_FAIL;
	if (v.type == CEV_STRING)
	{
		char	   *s = pnstrdup(v.str, v.len);

		if (strcmp(s, "continue") == 0)
			return COND_RUN;
		if (strcmp(s, "skip") == 0)
			return COND_SKIP;
		if (strcmp(s, "fail") == 0)
			return COND_FAIL;
		if (strncmp(s, "skip_to_step_", 13) == 0)
		{
			*skip_to = atoi(s + 13);
			return COND_SKIP_TO;
		}
	}
	return ce_value_truthy(&v) ? COND_RUN : COND_SKIP;
}

/*
 * Skip every pending or ready step line after step index from_index, up
 * to the step with id target_id (exclusive).
 */
void
ce_skip_to_step(ExecRow *ex, int from_index, int target_id)
{
	CePlan	   *plan = ex->plan;
	List	   *lines = ce_exec_lines(ex);
	List	   *skip = NIL;
	int			i;
	int			target = -1;
	ListCell   *lc;

	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].id == target_id)
			target = i;
	if (target < 0)
		return;
	for (i = from_index + 1; i < target; i++)
	{
		foreach(lc, lines)
		{
			LineInfo   *li = lfirst(lc);

			if (li->type == 's' && li->step_id == plan->steps[i].id &&
				(li->status == CE_LINE_PENDING || li->status == CE_LINE_READY))
				skip = lappend_int(skip, li->line_number);
		}
	}
	ce_lines_close(ex, skip, CE_LINE_SKIPPED, NULL);
}
