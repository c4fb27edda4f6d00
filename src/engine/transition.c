/*-------------------------------------------------------------------------
 *
 * transition.c
 *	  The transition: one step of an execution as one transaction.
 *
 * A transition claims one due line with FOR UPDATE SKIP LOCKED, runs the
 * step in a subtransaction as the execution's owner, classifies a failure,
 * schedules a retry or applies onFailure, merges outputs into the
 * execution's context, records the line, makes the next lines ready,
 * detects the end (success conditions, compensation) and queues the
 * NOTIFY events: all in the caller's transaction, so a crash before commit
 * leaves the line ready and a step's SQL effects are applied exactly once.
 *
 * Concurrency: steps of one execution may run at once in several
 * transactions.  Each takes the execution header's row lock (FOR NO KEY
 * UPDATE) only after its step ran, and makes every decision that reads
 * other lines (readiness, the end) while holding it, so these decisions
 * are serialized per execution without serializing the steps themselves.
 * Lines of other transitions are only changed with SKIP LOCKED, so a
 * transition never waits for a running step while holding the header.
 *
 * Bookkeeping runs as the extension's owner; steps run as the execution's
 * owner (step.c).  Memory: everything is allocated in the SPI procedure
 * context of the transition, freed by SPI_finish.
 *
 * This file is the transition itself: claim, process the line, record the
 * attempt (success, retry, onFailure, routing).  The rest of the state
 * machine, one concern per file (engine_int.h declares what they share):
 *	 claim.c		which line a transition runs (a follow-on, the dispatch)
 *	 store.c		the bookkeeping queries on headers and lines
 *	 context.c		error objects, smart codes, the context merge
 *	 advance.c		readiness, compensation, completion, the end
 *	 progress.c		progress and ETA
 *	 events.c		the event builder and NOTIFY
 *	 timers.c		next due time, deadline sweep, crash records
 *	 step*.c		running one step (step.h)
 *	 route.c		a step's condition and skip targets
 *	 control.c		the control functions, on the same bookkeeping
 *	 cleanup.c		chain_cleanup, the retention of finished executions
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <signal.h>

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/snapmgr.h"

#include "chainexec.h"
#include "compat.h"
#include "plancache.h"
#include "engine.h"
#include "engine_int.h"
#include "flow.h"
#include "group.h"
#include "tasks.h"
#include "compose.h"
#include "engine_xact.h"
#include "inflight.h"
#include "resilience.h"

#include "shmem.h"

/* The line claimed by the running transition, kept for ce_transition_take_claim. */
static struct
{
	bool		valid;
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;
} claimed;

/* The execution whose line this backend is processing, while in_step. */
static bool in_step = false;
static pg_uuid_t step_execution;
static pg_uuid_t step_org;

/*
 * Whether this backend runs a step of execution id (1), or of another
 * execution of its family (2: a change to a parent, a child or a sibling
 * reaches the others, the step's own execution with them, whose
 * transition would then undo it), or neither (0).  SPI connected.
 */
int
ce_in_step_of(const pg_uuid_t *id)
{
	if (!in_step)
		return 0;
	if (memcmp(&step_execution, id, sizeof(pg_uuid_t)) == 0)
		return 1;
	return ce_same_family(&step_org, &step_execution, id) ? 2 : 0;
}

static bool
execution_live(ExecRow *ex, LineRow *line)
{
	if (ex->status == CE_EXEC_COMPENSATING)
		return strcmp(line->line_type, "compensation") == 0;
	return ce_exec_status_is_live(ex->status) || ex->status == CE_EXEC_PAUSED;
}

static int
step_index(const CePlan *plan, const CeStep *step)
{
	int			i;

	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].id == step->id)
			return i;
	return -1;
}

/*
 * The execution ended (cancelled, timed out) while the attempt ran: the
 * line is cancelled, with the attempt, its start and end, and the error
 * that interrupted it.
 */
static void
close_interrupted(ExecRow *ex, LineRow *line, int attempt, Jsonb *input, Jsonb *error)
{
	CeLineUpdate	u;

	memset(&u, 0, sizeof(u));
	u.status = CE_LINE_CANCELLED;
	u.attempt = attempt;
	u.input = input;
	u.error = error;
	u.started = line->ran_now;
	u.finished = true;
	ce_line_update(ex, line->line_number, &u);
}

/* A failed attempt: retry, or apply the step's onFailure. */
static void
handle_failure(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run,
			   int attempt, Jsonb *input)
{
	CeRetry		r = step->retry;
	Jsonb	   *err = ce_run_error_jsonb(run, attempt);
	CeLineUpdate	u;
	bool		compensation = strcmp(line->line_type, "compensation") == 0;

	ce_exec_lock(ex);
	if (!execution_live(ex, line))
	{
		close_interrupted(ex, line, attempt, input, err);
		return;
	}
	if (!compensation && ex->has_deadline && ex->deadline <= GetCurrentTimestamp())
	{
		/* the execution's deadline cut the step short (chain_run has no sweep) */
		close_interrupted(ex, line, attempt, input, err);
		ce_fail_execution(ex, CE_EXEC_TIMEOUT,
					   ce_error_jsonb("execution_timeout", "57014", "execution exceeded its maximum execution time",
								   NULL, NULL, 0), line->line_number);
		return;
	}
	if (ex->max_retries >= 0 && !compensation)
		r.maxRetries = ex->max_retries;

	memset(&u, 0, sizeof(u));
	u.attempt = attempt;
	u.input = input;
	u.started = line->ran_now;
	u.error = err;

	if (attempt <= r.maxRetries &&
		(ce_retry_matches(&r, run->failure_type, run->sqlstate) ||
		 (compensation && ce_retry_compensation_extra(run))) &&
		!line->no_retry && strcmp(run->failure_type, "worker_crashed") != 0 &&
		ce_retry_allowed(ex, run, compensation))
	{
		long		delay = ce_retry_delay_ms(&r, attempt);

		if (r.strategy == CE_BACKOFF_RANDOM)
			delay = ce_retry_delay_random_ms(&r, ce_random_fraction());
		else if (r.jitter && delay > 0)
			delay = (long) (delay * (1.0 + (ce_random_fraction() - 0.5) * 0.5));
		/* paused: the retry waits for chain_resume, its due time kept (an
		 * iteration's claim parks it, counted for its container) */
		u.status = ex->status == CE_EXEC_PAUSED && !CE_IS_ITERATION(line) ? CE_LINE_PENDING : CE_LINE_READY;
		u.has_not_before = true;
		u.not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
		u.finished = false;
		ce_line_update(ex, line->line_number, &u);
		ce_advance(ex, line->line_number);
		ce_step_emit(ex, "step_retry_scheduled", step, u.status, attempt);
		return;
	}

	if (compensation)
	{
		u.status = CE_LINE_FAILED;
		u.finished = true;
		ce_line_update(ex, line->line_number, &u);
		ce_advance(ex, line->line_number);
		ce_step_emit(ex, "step_failed", step, CE_LINE_FAILED, attempt);
		return;
	}

	/* an iteration: onFailure applies to the element (iterate.c) */
	if (CE_IS_ITERATION(line))
	{
		ce_iteration_failed(ex, line, step, run, attempt, input, err);
		return;
	}

	switch (step->on_failure)
	{
		case CE_ONFAIL_WARN:
		case CE_ONFAIL_SKIP:
			/* the execution goes on: the line failed (warn) or is skipped */
			u.status = step->on_failure == CE_ONFAIL_SKIP ? CE_LINE_SKIPPED : CE_LINE_FAILED;
			u.finished = true;
			ce_line_update(ex, line->line_number, &u);
			ce_advance(ex, line->line_number);
			ce_step_emit(ex, u.status == CE_LINE_SKIPPED ? "step_skipped" : "step_failed", step, u.status, attempt);
			break;
		case CE_ONFAIL_ESCALATE:
			/* for a person: the line failed, the execution paused */
			u.status = CE_LINE_FAILED;
			u.error = ce_escalated_error(err);
			u.finished = true;
			ce_line_update(ex, line->line_number, &u);
			ce_exec_set_status(ex, CE_EXEC_PAUSED);
			ce_progress_refresh(ex, NULL);
			ce_step_emit(ex, "step_escalated", step, CE_LINE_FAILED, attempt);
			break;
		case CE_ONFAIL_FALLBACK:
			if (step->fallback && strcmp(line->line_type, "fallback") != 0)
			{
				u.status = CE_LINE_FAILED;
				u.finished = true;
				ce_line_update(ex, line->line_number, &u);
				ce_line_insert(ex, "fallback", step->fallback, CE_LINE_READY, line->line_number);
				ce_wake_executors(1);
				ce_advance(ex, line->line_number);
				ce_step_emit(ex, "step_failed", step, CE_LINE_FAILED, attempt);
				break;
			}
			/* FALLTHROUGH */
		case CE_ONFAIL_FAIL:
		default:
			u.status = CE_LINE_FAILED;
			u.finished = true;
			ce_line_update(ex, line->line_number, &u);
			ce_progress_refresh(ex, NULL);
			ce_step_emit(ex, "step_failed", step, CE_LINE_FAILED, attempt);
			ce_fail_execution(ex, CE_EXEC_FAILED, ce_execution_error(err, step), line->line_number);
			break;
	}
}

/* A successful attempt (subtransaction still open). */
static void
handle_success(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run,
			   int attempt, Jsonb *input)
{
	CeLineUpdate	u;
	Jsonb	   *merged = NULL;
	bool		compensation = strcmp(line->line_type, "compensation") == 0;
	CondAction	act = COND_RUN;
	int			skip_to = 0;

	if (CE_IS_ITERATION(line) && !compensation)
	{
		ce_iteration_succeeded(ex, line, step, run, attempt, input);
		return;
	}
	ce_exec_lock(ex);
	if (!execution_live(ex, line))
	{
		ce_step_rollback(run);
		close_interrupted(ex, line, attempt, input, NULL);
		return;
	}

	if (run->outputs && !compensation)
	{
		/* undeclared outputs (row columns, a handler's keys) may name "chain" */
		merged = ce_context_merge_outputs(ex->context, step, run);
		if (merged == NULL)
		{
			/* the header is locked already; handle_failure relocks cheaply */
			handle_failure(ex, line, step, run, attempt, input);
			return;
		}
	}

	/* routing decision, taken after the step ran */
	if (!compensation && step->condition_expr && step->condition_is_routing)
	{
		CeLookupCtx lk;

		ce_lookup_init(ex, step, attempt, &lk);
		lk.extra = run->outputs;
		act = ce_eval_condition(step, &lk, &skip_to);
	}

	/* jsonb is canonical: the same bytes mean the same variables */
	if (merged && VARSIZE(merged) == VARSIZE(ex->context) &&
		memcmp(merged, ex->context, VARSIZE(merged)) == 0)
		merged = NULL;

	/*
	 * The new variables, and the execution's start, are written by the
	 * step's subtransaction, which locked the header (ce_exec_lock):
	 * written after it ends, by the transition, the header would get a
	 * multixact (a lock by one subtransaction of ours, an update by
	 * another), one per step.
	 */
	if ((ex->status == CE_EXEC_PENDING || ex->status == CE_EXEC_PAUSED) && !compensation && act != COND_FAIL)
	{
		/* paused while it ran: still its start, if it is the first */
		CeExecStatus status = ex->status == CE_EXEC_PAUSED ? CE_EXEC_PAUSED : CE_EXEC_RUNNING;

		if (merged)
			ce_exec_set_status_context(ex, status, merged);
		else
			ce_exec_set_status(ex, status);
		merged = NULL;
	}
	else if (merged)
	{
		ce_exec_set_context(ex, merged);
		merged = NULL;
	}
	ce_step_release(run);

	memset(&u, 0, sizeof(u));
	u.status = CE_LINE_COMPLETED;
	u.attempt = attempt;
	u.input = input;
	u.started = line->ran_now;
	u.output = ce_output_jsonb(run);
	u.finished = true;
	if (!compensation && act == COND_RUN && line->status == CE_LINE_READY)
	{
		/* the common case: written with the next lines' promotion */
		ce_line_complete(ex, line->line_number, &u, merged);
	}
	else
	{
		if (merged)
			ce_exec_set_context(ex, merged);
		ce_line_update(ex, line->line_number, &u);
	}

	if (compensation)
	{
		if (line->parent_line > 0)
			ce_line_set_status(ex, line->parent_line, CE_LINE_COMPENSATED);
		ce_advance(ex, line->line_number);
		ce_step_emit(ex, "step_completed", step, CE_LINE_COMPENSATED, attempt);
		return;
	}

	if (act == COND_SKIP_TO && step_index(ex->plan, step) >= 0)
		ce_skip_to_step(ex, step_index(ex->plan, step), skip_to);
	if (act == COND_FAIL)
	{
		ce_progress_refresh(ex, NULL);
		ce_step_emit(ex, "step_completed", step, CE_LINE_COMPLETED, attempt);
		ce_fail_execution(ex, CE_EXEC_FAILED,
					   ce_execution_error(ce_error_jsonb("business_rule_violation", "P0001",
												   psprintf("condition of step \"%s\" failed the execution", step->name),
												   NULL, NULL, 0), step),
					   line->line_number);
		return;
	}
	ce_advance(ex, line->line_number);
	ce_step_emit(ex, "step_completed", step, CE_LINE_COMPLETED, attempt);
}

/* Put a step line into the waiting state (wait timer or external step). */
static void
start_waiting(ExecRow *ex, LineRow *line, const CeStep *step, int attempt, char *rendered)
{
	CeLineUpdate	u;

	memset(&u, 0, sizeof(u));
	u.status = CE_LINE_WAITING;
	u.attempt = attempt;
	u.started = true;
	u.has_not_before = true;
	if (step->kind == CE_STEP_WAIT)
		u.not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), step->wait_ms);
	else if (step->timeout_ms > 0)
		u.not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), step->timeout_ms);
	else
		u.not_before = DT_NOEND;
	/* external steps keep their rendered input so the worker outside can read it */
	u.input = ce_input_jsonb(rendered);
	{
		bool		save = ex->save_intermediate;

		ex->save_intermediate = true;
		ce_line_update(ex, line->line_number, &u);
		ex->save_intermediate = save;
	}
	ce_task_start(ex, line, step);
	ce_exec_lock(ex);
	ce_advance(ex, line->line_number);
	ce_step_emit(ex, "step_started", step, CE_LINE_WAITING, attempt);
}

static char *
render_input(const CeStep *step, CeLookupCtx *lk, CeStepRun *run)
{
	CeError		err;
	size_t		len;
	char	   *s;

	if (step->input_tpl == NULL)
		return NULL;
	memset(&err, 0, sizeof(err));
	s = ce_template_render_max(step->input_tpl, ce_lookup, lk, (size_t) ce_max_context_bytes, &len, &err);
	if (s == NULL)
	{
		if (err.code == CE_ERR_MISSING_VAR)
			ce_step_fail(run, "insufficient_data", "22004", "%s", err.message);
		else
			ce_step_fail(run, "validation_failed", ce_errcode_sqlstate(err.code), "%s", err.message);
	}
	return s;
}

/*
 * Whether the claimed line can run now.  If not, it is dealt with here: a
 * line of an execution that ended is cancelled, one of a paused execution
 * waits for chain_resume, and an execution past its deadline times out.
 */
static bool
line_can_run(ExecRow *ex, LineRow *line, bool compensation)
{
	if (!execution_live(ex, line))
	{
		ce_line_set_status(ex, line->line_number, CE_LINE_CANCELLED);
		return false;
	}
	if (ex->status == CE_EXEC_PAUSED)
	{
		/*
		 * Paused: a ready line waits for chain_resume; a timer that came due
		 * keeps its due time aside, and completes (or times out) at once on
		 * resume, as the same attempt.  Decided under the header's lock: a
		 * resume that committed since the claim read the header would not
		 * see the line it held, which stays due for the next claim then.
		 */
		ce_exec_lock(ex);
		if (ex->status != CE_EXEC_PAUSED)
		{
			if (!execution_live(ex, line))
				ce_line_set_status(ex, line->line_number, CE_LINE_CANCELLED);
			else
				ce_wake_executors(1);
		}
		else if (line->status == CE_LINE_WAITING)
			ce_line_park_timer(ex, line->line_number);
		else if (CE_IS_ITERATION(line))
			ce_iteration_park(ex, line);
		else
			ce_line_set_status(ex, line->line_number, CE_LINE_PENDING);
		return false;
	}
	if (ex->has_deadline && ex->deadline <= GetCurrentTimestamp() && !compensation)
	{
		ce_exec_lock(ex);
		if (execution_live(ex, line))
		{
			ce_line_set_status(ex, line->line_number, CE_LINE_CANCELLED);
			ce_fail_execution(ex, CE_EXEC_TIMEOUT,
							  ce_error_jsonb("execution_timeout", "57014", "execution exceeded its maximum execution time",
											 NULL, NULL, 0), line->line_number);
		}
		return false;
	}
	return true;
}

/*
 * conditionalExecution, taken before the step runs: true when it decided
 * (skip, skip to a step, fail) and the line is recorded.
 */
static bool
precondition_decides(ExecRow *ex, LineRow *line, const CeStep *step, CeLookupCtx *lk, int attempt)
{
	int			skip_to = 0;
	CondAction	act;
	CeLineUpdate u;

	if (step->condition_expr == NULL || step->condition_is_routing)
		return false;
	if (CE_IS_ITERATION(line))
		return false;			/* an iterating step's, once, for all */
	act = ce_eval_condition(step, lk, &skip_to);
	if (act == COND_RUN)
		return false;
	ce_exec_lock(ex);
	if (!execution_live(ex, line))
	{
		ce_line_set_status(ex, line->line_number, CE_LINE_CANCELLED);
		return true;
	}
	memset(&u, 0, sizeof(u));
	u.attempt = line->attempt;
	u.finished = true;
	if (act == COND_FAIL)
	{
		Jsonb	   *err = ce_error_jsonb("business_rule_violation", "P0001",
										 psprintf("condition of step \"%s\" failed the execution", step->name),
										 NULL, NULL, 0);

		u.status = CE_LINE_FAILED;
		u.error = err;
		ce_line_update(ex, line->line_number, &u);
		ce_step_emit(ex, "step_failed", step, CE_LINE_FAILED, attempt);
		ce_fail_execution(ex, CE_EXEC_FAILED, ce_execution_error(err, step), line->line_number);
		return true;
	}
	u.status = CE_LINE_SKIPPED;
	ce_line_update(ex, line->line_number, &u);
	if (act == COND_SKIP_TO)
		ce_skip_to_step(ex, step_index(ex->plan, step), skip_to);
	ce_advance(ex, line->line_number);
	ce_step_emit(ex, "step_skipped", step, CE_LINE_SKIPPED, attempt);
	return true;
}

/*
 * Before a step (not a compensation) runs: its precondition, its
 * inputVariables, its inputTemplate; a wait step or an external step
 * without instructions starts waiting instead.  True when the line is
 * dealt with; else *input is the line's input and the step is to run.
 */
static bool
prepare_step(ExecRow *ex, LineRow *line, const CeStep *step, CeLookupCtx *lk,
			 CeStepRun *run, int attempt, Jsonb **input)
{
	int			i;

	if (precondition_decides(ex, line, step, lk, attempt))
		return true;

	/* inputVariables must be set */
	for (i = 0; i < step->ninput_vars; i++)
	{
		CeValue		v;
		const char *path[1];

		path[0] = step->input_vars[i];
		if (!ce_lookup(lk, path, 1, &v) || v.type == CEV_NULL)
		{
			ce_step_fail(run, "insufficient_data", "22004",
						 "input variable \"%s\" of step \"%s\" is not set",
						 step->input_vars[i], step->name);
			handle_failure(ex, line, step, run, attempt, NULL);
			return true;
		}
	}

	/* forEach, repeatUntil: the step's line waits for its iterations */
	if (ce_step_iterates(step) && !CE_IS_ITERATION(line) && strcmp(line->line_type, "step") == 0)
	{
		if (!ce_container_start(ex, line, step, lk, run, attempt))
			handle_failure(ex, line, step, run, attempt, NULL);
		return true;
	}

	run->rendered_input = render_input(step, lk, run);
	if (step->input_tpl && run->rendered_input == NULL)
	{
		handle_failure(ex, line, step, run, attempt, NULL);
		return true;
	}
	*input = ce_input_jsonb(run->rendered_input);
	if (CE_IS_ITERATION(line))
		*input = ce_iteration_input(lk->extra, *input);

	/* type "chain": a child execution; the line waits for it (subchain.c) */
	if (step->kind == CE_STEP_CHAIN)
	{
		if (!ce_child_start(ex, line, step, lk, run, attempt, *input))
			handle_failure(ex, line, step, run, attempt, *input);
		return true;
	}

	/* the limits it names must have room (flow.c); else it waits, unrun */
	if (!ce_flow_admit_step(ex, line, step))
		return true;

	if (step->kind == CE_STEP_WAIT || (step->kind == CE_STEP_EXTERNAL && step->instruction_set == NULL))
	{
		start_waiting(ex, line, step, attempt, run->rendered_input);
		return true;
	}
	return false;
}

/* Process one claimed line.  The header is not locked yet. */
static void
process_line(ExecRow *ex, LineRow *line)
{
	CePlan	   *plan;
	CeStep	   *step;
	CeLookupCtx lk;
	CeStepRun	run;
	bool		compensation = strcmp(line->line_type, "compensation") == 0;
	int			attempt;
	Jsonb	   *input = NULL;
	CeResilState rs;

	/* an attempt whose executor exited mid-step, not counted yet: first that */
	if (ce_record_orphan(&ex->org, &ex->id, line) && line->crashes < ce_max_crash_attempts)
		return;					/* it waits for its back-off */
	if (!ex->header_read)
		ce_exec_read_header(ex);
	plan = ce_plan_get(&ex->org, ex->chain_id, ex->version);
	ex->plan = plan;
	step = ce_plan_step_by_id(plan, line->step_id);
	if (step == NULL)
		elog(ERROR, "step %d of chain \"%s\" version %d not found", line->step_id, ex->chain_id, ex->version);
	/* in a grouped commit, a line that must not join the group waits (group.c) */
	if (!ce_group_admits(ex, line, step))
		return;

	pgstat_report_activity(STATE_RUNNING, psprintf("chainexec: %s/%s %s (execution %s)",
												   ex->chain_id, step->name,
												   compensation ? "compensation" : "step", ex->id_s));

	if (!line_can_run(ex, line, compensation))
		return;
	/* concurrencyLimit: the execution must have a place to start */
	if (!ce_flow_admit_execution(ex, line))
		return;

	/*
	 * The header stays unlocked while the step runs (pending becomes
	 * running in ce_advance(), after the step), so that steps of one
	 * execution run in parallel and control functions never wait for a
	 * step.
	 */
	ce_step_setup(ex, step, 0, &lk, &run);
	run.compensation = compensation;
	run.deadline = ex->has_deadline && !compensation ? ex->deadline : 0;
	/* an iteration binds {item} and {index}; its compensation its outputs too */
	if (CE_IS_ITERATION(line))
		lk.extra = ce_iteration_vars(ex, line);
	else if (compensation)
		lk.extra = ce_compensation_vars(ex, line);

	/* A timer that came due: a wait step ends, an external step times out. */
	if (line->status == CE_LINE_WAITING)
	{
		attempt = line->attempt;
		lk.attempt = attempt;
		if (step->kind == CE_STEP_WAIT)
		{
			run.ok = true;
			handle_success(ex, line, step, &run, attempt, NULL);
		}
		else if (step->kind == CE_STEP_CHAIN)
		{
			ce_child_cancel_for_line(ex, line, "the step that started it timed out");
			ce_step_fail(&run, "execution_timeout", "57014",
						 "the child execution of step \"%s\" did not end within %d ms", step->name, step->timeout_ms);
			handle_failure(ex, line, step, &run, attempt, NULL);
		}
		else
		{
			ce_step_fail(&run, "execution_timeout", "57014",
						 "external step \"%s\" got no result within %d ms", step->name, step->timeout_ms);
			handle_failure(ex, line, step, &run, attempt, NULL);
		}
		return;
	}

	/* poison: its executor died running it too many times in a row */
	if (line->crashes >= ce_max_crash_attempts)
	{
		attempt = line->attempt;
		lk.attempt = attempt;
		ce_step_fail(&run, "worker_crashed", "57P02",
					 "executor died %d times in a row running step \"%s\"", line->crashes, step->name);
		run.hint = pstrdup("chainexec.max_crash_attempts sets how many attempts may end their executor; the server log says how each one ended.");
		handle_failure(ex, line, step, &run, attempt, NULL);
		return;
	}

	attempt = line->attempt + 1;
	lk.attempt = attempt;
	if (!compensation && prepare_step(ex, line, step, &lk, &run, attempt, &input))
		return;

	line->ran_now = true;
	ex->ran = true;
	if (compensation)
		lk.failure = ce_compensation_failure(ex);
	/* a cache hit, or an open circuit breaker, decides without running */
	if (compensation || ce_resil_before(ex, step, &run, &rs) == CE_RESIL_RUN)
	{
		ce_inflight_begin(&ex->org, &ex->id, line->line_number, attempt);
		ce_step_run(&run);
		if (!compensation)
			ce_resil_after(ex, step, &run, &rs);
	}
	if (run.ok)
		handle_success(ex, line, step, &run, attempt, input);
	else
		handle_failure(ex, line, step, &run, attempt, input);
	if (!compensation)
		ce_resil_events(ex, step, &rs, attempt);
}

/*
 * The body of a transition, in the caller's transaction (with an active
 * snapshot).
 */
CeTransitionResult
ce_transition_in_xact(const pg_uuid_t *only_execution, const pg_uuid_t *only_org)
{
	LineRow		line;
	ExecRow		ex;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;
	char	   *search_path;
	CeTransitionResult result = CE_TR_NONE;
	/* a transition nested in a step's (chainexec._run_one): the outer step's, restored */
	bool		outer_in_step = in_step;
	pg_uuid_t	outer_execution = step_execution;
	pg_uuid_t	outer_org = step_org;

	/*
	 * A cancel (chain_cancel, a deadline) is meant for a running step: hold
	 * it off during the bookkeeping; step.c lets it in while the step runs.
	 */
	HOLD_CANCEL_INTERRUPTS();
	SPI_connect();
	search_path = pstrdup(namespace_search_path);
	save_nestlevel = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		memset(&ex, 0, sizeof(ex));
		memset(&line, 0, sizeof(line));
		ex.search_path = search_path;
		if (only_org)
			memcpy(&ex.org, only_org, sizeof(pg_uuid_t));
		ce_store_hold_begin();
		if (ce_claim_transition_line(only_execution, &line, &ex))
		{
			ce_progress_reset();
			claimed.valid = true;
			claimed.org = ex.org;
			claimed.id = ex.id;
			claimed.line_number = line.line_number;
			ce_running_set(&ex.id, line.line_number);
			step_execution = ex.id;
			step_org = ex.org;
			in_step = true;
			process_line(&ex, &line);
			ce_store_hold_end();
			ce_flow_transition_end(&ex);
			in_step = outer_in_step;
			step_execution = outer_execution;
			step_org = outer_org;
			ce_running_clear();
			result = CE_TR_DONE;
		}
		else
			ce_store_hold_end();
	}
	PG_CATCH();
	{
		in_step = outer_in_step;
		step_execution = outer_execution;
		step_org = outer_org;
		ce_store_hold_reset();
		ce_flow_reset();
		ce_running_clear();
		SetUserIdAndSecContext(save_user, save_sec);
		RESUME_CANCEL_INTERRUPTS();
		PG_RE_THROW();
	}
	PG_END_TRY();
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	RESUME_CANCEL_INTERRUPTS();
	return result;
}

bool
ce_transition_take_claim(pg_uuid_t *org, pg_uuid_t *id, int *line_number)
{
	if (!claimed.valid)
		return false;
	claimed.valid = false;
	*org = claimed.org;
	*id = claimed.id;
	*line_number = claimed.line_number;
	return true;
}

CeTransitionResult
ce_transition(const pg_uuid_t *only_execution)
{
	CeXact		xact;
	CeTransitionResult r;
	bool		changed;

	if (!ce_engine_xact_begin(&xact, &changed))
		return CE_TR_GONE;
	if (changed)
		ce_extension_owner_forget();
	claimed.valid = false;
	r = ce_transition_in_xact(only_execution, NULL);
	/* a cancel sent now (chain_cancel) is for no step: held over the commit */
	HOLD_CANCEL_INTERRUPTS();
	ce_engine_xact_commit(&xact);
	RESUME_CANCEL_INTERRUPTS();
	claimed.valid = false;
	ce_inflight_end();
	pgstat_report_stat(false);
	return r;
}

void
ce_line_succeeded(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run, int attempt)
{
	handle_success(ex, line, step, run, attempt, NULL);
}

void
ce_line_failed(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run, int attempt)
{
	handle_failure(ex, line, step, run, attempt, NULL);
}
