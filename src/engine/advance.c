/*-------------------------------------------------------------------------
 *
 * advance.c
 *	  Advancing an execution: making lines ready when their predecessors
 *	  finished (within maxConcurrency), compensation, completion (success
 *	  conditions, outputSchema) and failure, and recording the end.
 *
 *	  Called with the execution's header locked (FOR NO KEY UPDATE), so
 *	  that these decisions are serialized per execution (see transition.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <signal.h>

#include "executor/spi.h"

#include "engine.h"
#include "engine_int.h"
#include "flow.h"
#include "compose.h"

#include "jsonschema.h"

#include "shmem.h"

/*
 * Set while chain_run drives an execution in its own session: the lines it
 * makes ready are its own next work, so waking the background executors
 * would only make them race it for those lines.
 */
bool		ce_inline_runner = false;

void
ce_wake_executors(int nready)
{
	int			i;

	if (ce_inline_runner)
		return;
	for (i = 0; i < nready; i++)
		ce_wakeup_at_commit();
}

/* ---------------------------------------------------------------------
 * Ending an execution
 * --------------------------------------------------------------------- */

/*
 * Record the end of the execution; a completed one makes its chain
 * version's step averages stale.
 */
void
ce_exec_finish(ExecRow *ex, CeExecStatus status, Jsonb *output, Jsonb *error)
{
	ce_exec_write_end(ex, status, output, error);
	if (status == CE_EXEC_COMPLETED)
		ce_eta_forget(ex);
	ce_flow_execution_ended(ex);
	ce_finished_at_commit();
	/* its children end with it; a child moves its parent on (subchain.c) */
	ce_children_cancel(ex);
	ce_child_finished(ex, status, output, error);
}

/* All non-final lines other than own_line. */
static List *
open_lines(ExecRow *ex, int own_line)
{
	List	   *lines = ce_exec_lines(ex);
	List	   *res = NIL;
	ListCell   *lc;

	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->line_number == own_line)
			continue;
		if (ce_line_status_is_open(li->status))
			res = lappend_int(res, li->line_number);
	}
	return res;
}

/* Close the open lines of the execution (not own_line, not locked by others). */
void
ce_close_open_lines(ExecRow *ex, int own_line, CeLineStatus status)
{
	ce_lines_close(ex, open_lines(ex, own_line), status, NULL);
	ce_iterations_close(ex, status);
}

static CeQuery q_rollback_candidates = {
	"SELECT line_number, step_id, line_type FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status = 'completed' "
	"AND line_type IN ('step', 'fallback', 'iteration') "
	"AND ($3 = 0 OR finished_at > (SELECT max(b.finished_at) FROM chainexec.universal_transaction_lines b "
	"      WHERE b.organization_id = $1 AND b.transaction_id = $2 AND b.step_id = $3 "
	"        AND b.line_type IN ('step', 'fallback'))) "
	"ORDER BY finished_at DESC, line_number DESC",
	3, {UUIDOID, UUIDOID, INT4OID}};

List *
ce_rollback_candidates(ExecRow *ex, int to_step)
{
	Datum		args[3];
	List	   *comp = NIL;
	uint64		i;

	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	args[2] = Int32GetDatum(to_step);
	ce_run_query(&q_rollback_candidates, args, NULL, false, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			ln = DatumGetInt32(ce_getcol(i, 1, &isnull));
		int			sid = DatumGetInt32(ce_getcol(i, 2, &isnull));
		CeStep	   *s = ce_plan_step_by_id(ex->plan, sid);

		/* an iterating step is compensated per iteration, not as a whole */
		if (s && ce_step_iterates(s) && strcmp(ce_getcol_text(i, 3), "step") == 0)
			continue;
		if (s && s->rollback_action)
		{
			comp = lappend_int(comp, ln);
			comp = lappend_int(comp, sid);
		}
	}
	return comp;
}

/*
 * A compensation made again (chain_rollback after a cancelled one) keeps
 * the back-off its earlier line was waiting out: control never moves a due
 * time earlier.
 */
static CeQuery q_compensation_keep_due = {
	"UPDATE chainexec.universal_transaction_lines c SET not_before = greatest(c.not_before, p.due) "
	"FROM (SELECT parent_line, max(not_before) AS due FROM chainexec.universal_transaction_lines "
	"      WHERE organization_id = $1 AND transaction_id = $2 AND line_type = 'compensation' "
	"        AND status = 'cancelled' GROUP BY parent_line) p "
	"WHERE c.organization_id = $1 AND c.transaction_id = $2 AND c.line_type = 'compensation' "
	"AND c.status IN ('pending', 'ready') AND c.parent_line = p.parent_line",
	2, {UUIDOID, UUIDOID}};

void
ce_start_compensation(ExecRow *ex, List *comp, Jsonb *error)
{
	Datum		v[2];
	ListCell   *lc;
	int			i = 0;

	ce_exec_set_status_error(ex, CE_EXEC_COMPENSATING, error);
	ex->status = CE_EXEC_COMPENSATING;

	/* one compensation line per completed step, in reverse completion order */
	for (lc = list_head(comp); lc != NULL; lc = lnext(comp, lnext(comp, lc)))
	{
		int			ln = lfirst_int(lc);
		int			sid = lfirst_int(lnext(comp, lc));

		ce_line_insert(ex, "compensation", ce_plan_step_by_id(ex->plan, sid), i == 0 ? CE_LINE_READY : CE_LINE_PENDING, ln);
		i++;
	}
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_compensation_keep_due, v, NULL, false, 0);
	ce_wake_executors(1);
	ce_exec_emit(ex, "compensation_started", CE_EXEC_COMPENSATING);
}

/*
 * The execution failed (status failed, or timeout).  Cancels its other
 * open lines and either starts compensation or ends it.
 */
void
ce_fail_execution(ExecRow *ex, CeExecStatus status, Jsonb *error, int own_line)
{
	List	   *comp = NIL;

	ce_close_open_lines(ex, own_line, CE_LINE_CANCELLED);
	ce_children_cancel(ex);
	if (ex->plan->rollback_enabled && status == CE_EXEC_FAILED)
		comp = ce_rollback_candidates(ex, 0);
	if (comp == NIL)
	{
		ce_exec_finish(ex, status, NULL, error);
		ce_exec_emit(ex, status == CE_EXEC_TIMEOUT ? "chain_timeout" : "chain_failed", status);
		return;
	}
	ce_start_compensation(ex, comp, error);
}

/* Whether every success condition holds on the context. */
static bool
check_success(ExecRow *ex, char **failed_cond)
{
	CePlan	   *plan = ex->plan;
	CeLookupCtx lk;
	int			i;

	ce_lookup_init(ex, NULL, 0, &lk);
	for (i = 0; i < plan->nsuccess; i++)
	{
		CeValue		v;
		CeError		err;

		memset(&err, 0, sizeof(err));
		if (!ce_expr_eval(plan->success_expr[i], ce_lookup, &lk, &v, &err) || !ce_value_truthy(&v))
		{
			*failed_cond = plan->success_text[i];
			return false;
		}
	}
	return true;
}

static void
complete_execution(ExecRow *ex, int own_line)
{
	char	   *cond = NULL;
	Jsonb	   *output = ex->context;

	if (!check_success(ex, &cond))
	{
		Jsonb	   *err = ce_error_jsonb("validation_failed", "23514",
									  psprintf("success condition \"%s\" is false", cond),
									  NULL, NULL, 0);

		ce_fail_execution(ex, CE_EXEC_FAILED, err, own_line);
		return;
	}
	if (ex->plan->output_schema)
	{
		CeJson	   *ctx = ce_jsonb_to_cejson(ex->context);

		output = ce_cejson_to_jsonb(ce_schema_filter(ex->plan->output_schema, ctx));
	}
	ce_progress_complete();
	ce_exec_finish(ex, CE_EXEC_COMPLETED, output, NULL);
	ce_exec_emit(ex, "chain_completed", CE_EXEC_COMPLETED);
}

/* ---------------------------------------------------------------------
 * Readiness
 * --------------------------------------------------------------------- */

static CeQuery q_compensation_error = {
	"UPDATE chainexec.universal_transactions t "
	"SET error = coalesce(t.error, '{}') || jsonb_build_object('compensationError', "
	"  (SELECT l.error || jsonb_build_object('step', l.step_name, 'stepId', l.step_id) "
	"     FROM chainexec.universal_transaction_lines l "
	"    WHERE l.organization_id = $1 AND l.transaction_id = $2 "
	"      AND l.line_type = 'compensation' AND l.status = 'failed' "
	"    ORDER BY l.line_number LIMIT 1)) "
	"WHERE t.organization_id = $1 AND t.id = $2",
	2, {UUIDOID, UUIDOID}};

/*
 * Compensation: ready the next compensation line, or end the execution.
 */
static void
advance_compensation(ExecRow *ex, List *lines)
{
	ListCell   *lc;
	bool		any_failed = false;
	int			next = 0;

	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type != 'c')
			continue;
		if (ce_line_status_is_active(li->status))
			return;				/* one at a time; still running */
		if (li->status == CE_LINE_FAILED)
			any_failed = true;
		if (li->status == CE_LINE_PENDING && next == 0)
			next = li->line_number;
	}
	if (next)
	{
		ce_lines_promote(ex, list_make1_int(next));
		ce_wake_executors(1);
		return;
	}
	if (any_failed)
	{
		/* the header's error keeps the cause and adds the compensation's */
		Datum		v[2];

		v[0] = UUIDPGetDatum(&ex->org);
		v[1] = UUIDPGetDatum(&ex->id);
		ce_run_query(&q_compensation_error, v, NULL, false, 0);
	}
	ce_exec_finish(ex, any_failed ? CE_EXEC_FAILED : CE_EXEC_COMPENSATED, NULL, NULL);
	ce_exec_emit(ex, "compensation_completed", ex->status);
	ce_exec_emit(ex, "chain_failed", ex->status);
}

/* What ce_advance learns from the lines of an execution. */
typedef struct Readiness
{
	LineInfo  **by_step;		/* the step line of each step, by index */
	bool	   *finished;		/* by step index: its line is done */
	int			active;			/* ready, waiting or running (not
								 * compensation) */
	int			pending;		/* step lines not yet ready */
	int			waiting;
} Readiness;

/* Survey the lines: step lines by step index, what is finished, counts. */
static void
survey_lines(CePlan *plan, List *lines, Readiness *r)
{
	ListCell   *lc;
	int			i;

	r->by_step = palloc0(sizeof(LineInfo *) * plan->nsteps);
	r->finished = palloc0(sizeof(bool) * plan->nsteps);
	r->active = r->pending = r->waiting = 0;
	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type == 's')
		{
			/* step lines are numbered in array order: line n is steps[n - 1] */
			i = li->line_number - 1;
			if (i >= 0 && i < plan->nsteps && plan->steps[i].id == li->step_id)
				r->by_step[i] = li;
			else
			{
				for (i = 0; i < plan->nsteps; i++)
					if (plan->steps[i].id == li->step_id)
						r->by_step[i] = li;
			}
		}
		if (li->type != 'c' && ce_line_status_is_active(li->status))
		{
			r->active++;
			/* a step whose iterations run is running, not waiting */
			if (li->status == CE_LINE_WAITING && li->iter_count == 0)
				r->waiting++;
		}
	}
	for (i = 0; i < plan->nsteps; i++)
	{
		LineInfo   *li = r->by_step[i];

		if (li == NULL)
			continue;
		r->finished[i] = ce_line_status_is_terminal(li->status);
		if (r->finished[i] && li->status == CE_LINE_FAILED)
		{
			/* a step replaced by its fallback finishes with the fallback */
			foreach(lc, lines)
			{
				LineInfo   *fl = lfirst(lc);

				if (fl->type == 'f' && fl->parent_line == li->line_number && !ce_line_status_is_terminal(fl->status))
					r->finished[i] = false;
			}
		}
		if (li->status == CE_LINE_PENDING)
			r->pending++;
	}
}

/* The pending lines that may be made ready now, within maxConcurrency. */
static List *
lines_to_promote(CePlan *plan, List *lines, Readiness *r)
{
	ListCell   *lc;
	List	   *promote = NIL;
	int			i;

	/*
	 * A fallback line set back to pending (a pause) runs again first: it
	 * stands for a step that has failed, so nothing else waits for it.
	 */
	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type != 'f' || li->status != CE_LINE_PENDING)
			continue;
		if (plan->max_concurrency > 0 && r->active >= plan->max_concurrency)
		{
			r->pending++;		/* not finished: the execution goes on */
			continue;
		}
		promote = lappend_int(promote, li->line_number);
		r->active++;
	}

	for (i = 0; i < plan->nsteps; i++)
	{
		LineInfo   *li = r->by_step[i];
		CeStep	   *s = &plan->steps[i];
		int			k;
		bool		ok = true;

		if (li == NULL || li->status != CE_LINE_PENDING)
			continue;
		for (k = 0; k < s->npreds; k++)
			if (!r->finished[s->preds[k]])
				ok = false;
		if (!ok)
			continue;
		if (plan->max_concurrency > 0 && r->active >= plan->max_concurrency)
			break;
		promote = lappend_int(promote, li->line_number);
		r->active++;
		r->pending--;
	}
	return promote;
}

/*
 * Make lines ready whose predecessors have all finished, within
 * maxConcurrency; end the execution when nothing is left.  Called with the
 * header locked.
 */
void
ce_advance(ExecRow *ex, int own_line)
{
	List	   *lines = ce_exec_lines(ex);
	Readiness	r;
	List	   *promote;
	CeExecStatus new_status = CE_EXEC_RUNNING;
	bool		set_status = false;

	ce_progress_from_lines(ex, lines);

	if (ex->status == CE_EXEC_COMPENSATING)
	{
		advance_compensation(ex, lines);
		return;
	}
	if (!ce_exec_status_is_live(ex->status))
		return;					/* paused, or ended */
	ce_iterations_advance(ex, lines, false);

	survey_lines(ex->plan, lines, &r);
	promote = lines_to_promote(ex->plan, lines, &r);
	/* the new status, written with the step's completion where it can be (store.c) */
	if (r.active > 0 && !ex->not_started)
	{
		new_status = r.waiting == r.active ? CE_EXEC_WAITING : CE_EXEC_RUNNING;
		if (ex->status != new_status && !ce_exec_status_held(ex, new_status))
			set_status = true;
	}
	if (promote != NIL)
	{
		ce_lines_promote(ex, promote);
		ce_wake_executors(list_length(promote));
	}

	if (r.active == 0 && r.pending == 0)
	{
		complete_execution(ex, own_line);
		return;
	}
	if (r.active == 0)
	{
		/* pending lines whose predecessors can never finish */
		ce_fail_execution(ex, CE_EXEC_FAILED,
						  ce_error_jsonb("system_error", "55000", "no step can run: the remaining steps wait for steps that did not finish",
										 NULL, NULL, 0), own_line);
		return;
	}
	if (set_status)
		ce_exec_set_status(ex, new_status);
}
