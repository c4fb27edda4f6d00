/*-------------------------------------------------------------------------
 *
 * group.c
 *	  Grouped commit (chainexec.group_commit): an executor runs up to N
 *	  step transitions of different executions in one transaction, each
 *	  in a subtransaction of its own, and commits them together.
 *
 * Where the commit is the limit (synchronous_commit = on), one WAL flush
 * then serves N transitions.  Each transition stays all-or-nothing with
 * its step's SQL effects: it runs exactly as ce_transition runs it
 * (claim, step in its own subtransaction, bookkeeping, events), inside a
 * subtransaction of the group that is released when it ends, or rolled
 * back alone when an error is thrown out of it.  A crash before the
 * group commits leaves every line of the group due, as a crash before a
 * single transition's commit does, so nothing is done twice.
 *
 * A group ends, and commits, when
 *	 - no line is due (a group never waits to fill up);
 *	 - it has chainexec.group_commit transitions;
 *	 - chainexec.group_commit_window has passed since it began (no new
 *	   transition starts then; the one running finishes): the locks of
 *	   its first transition are held that long, plus the last transition;
 *	 - the line claimed next must not join it (ce_group_admits): that
 *	   claim is undone and the line runs first in the next transaction
 *	   (this is also how a group ends when the next due line, in priority
 *	   order, is the next step of an execution already in it);
 *	 - an error is thrown out of a transition: it is rolled back alone,
 *	   the others commit, and the error is thrown again for the executor
 *	   to record on the line, as after ce_transition; or the error was a
 *	   deadlock or lock failure between groups: the transition is rolled
 *	   back without counting an attempt and runs again alone;
 *	 - the executor is asked to stop or to reload its configuration.
 * An error at the group's commit (the NOTIFY queue full, say: steps
 * cannot leave deferred triggers, step.c) rolls back the whole group:
 * every line stays due, none is blamed, and the executor's next
 * chainexec.group_commit transitions run alone (ce_group_after_error), so
 * that a line whose commit fails is found and recorded as without groups.
 *
 * Which lines run alone (first of a group that takes nobody else):
 * steps that run a handler (kind function, a template or external step
 * with instructions, a handler rollbackAction), because a handler may
 * act outside the database and a crash of the group would make it act
 * again for a line that had finished; steps that name limits (their
 * places and tokens would be held for the whole group); a line whose last
 * attempt ended its executor (it would take the group down again).  A
 * line of an execution already in the group never joins it: the
 * execution's header is locked by the earlier transition until the group
 * commits, so a chain_cancel of that execution could not interrupt the
 * later step, and each execution keeps one transition per commit.
 *
 * A cancel (chain_cancel) interrupts only the step it was sent to: the
 * running slot names the line running now, and a step clears a cancel
 * that arrived before it (step.c).  A cancel of an execution whose
 * transition already ran in the group waits for the group's commit (it
 * needs the execution's header) and then applies, as it would after a
 * transition that took that much longer.
 *
 * Times: now() is the group's start, so a grouped line's started_at is
 * the group's start and its duration_ms counts the transitions before
 * it in the group (at most the window).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "engine.h"
#include "engine_int.h"
#include "engine_xact.h"
#include "group.h"
#include "inflight.h"
#include "step.h"

/* What one transition of a group did. */
typedef enum GroupStep
{
	GS_NONE,					/* nothing was due */
	GS_DONE,					/* ran; kept in the group */
	GS_DEFERRED,				/* claimed a line that must not join: undone */
	GS_UNDONE,					/* rolled back by a lock conflict: runs again */
	GS_ERROR					/* rolled back by an error, to throw again */
} GroupStep;

/* The group being built. */
static struct
{
	bool		active;			/* ce_group_admits answers for a group */
	int			n;				/* transitions admitted */
	bool		deferred;		/* the last claimed line must not join */
	bool		alone;			/* the first line takes nobody else */
	pg_uuid_t	execs[CE_GROUP_MAX];	/* executions of the admitted */
} group;

/* Transitions to run alone (after an error thrown out of a group). */
static int	solo_left = 0;

/*
 * Whether a line may share its transaction with others: its step runs
 * SQL (or nothing: a wait, a timer, a child execution, an external step
 * that starts waiting) and holds no limit.
 */
static bool
line_groupable(const LineRow *line, const CeStep *step)
{
	/* its last attempt ended its executor: it must not take a group along */
	if (line->crashes > 0)
		return false;
	if (strcmp(line->line_type, "compensation") == 0)
		return !step->rollback_is_handler;
	if (step->nlimits > 0)
		return false;
	switch (step->kind)
	{
		case CE_STEP_SQL:
		case CE_STEP_WAIT:
		case CE_STEP_CHAIN:
			return true;
		case CE_STEP_TEMPLATE:
		case CE_STEP_EXTERNAL:
			return step->instruction_set == NULL;
		case CE_STEP_FUNCTION:
		default:
			return false;
	}
}

bool
ce_group_admits(const ExecRow *ex, const LineRow *line, const CeStep *step)
{
	int			i;

	if (!group.active)
		return true;
	if (group.n == 0)
	{
		group.alone = !line_groupable(line, step);
		group.execs[group.n++] = ex->id;
		return true;
	}
	for (i = 0; i < group.n; i++)
	{
		if (memcmp(&group.execs[i], &ex->id, sizeof(pg_uuid_t)) == 0)
		{
			group.deferred = true;
			return false;
		}
	}
	if (group.n >= CE_GROUP_MAX || !line_groupable(line, step))
	{
		group.deferred = true;
		return false;
	}
	group.execs[group.n++] = ex->id;
	return true;
}

void
ce_group_after_error(int max)
{
	group.active = false;
	if (max > 1)
		solo_left = max;
}

/* Errors between concurrent groups, after which a transition runs again. */
static bool
lock_conflict(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
}

/*
 * Run one transition of the group in a subtransaction of its own, with a
 * snapshot of its own.  Expects the group's transaction; returns in the
 * caller's memory context and resource owner.  *error: the error of a
 * GS_ERROR, copied into errcxt.
 */
static GroupStep
group_one(MemoryContext errcxt, ErrorData **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile GroupStep r = GS_NONE;
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;

	/* the claim of the previous transition is settled */
	(void) ce_transition_take_claim(&org, &id, &line_number);
	group.deferred = false;
	/* a cancel that arrived between steps is for none (executor.c) */
	QueryCancelPending = false;
	/*
	 * The line the previous transition made ready is that execution's next
	 * step, which must not join the group: claim by the dispatch query
	 * instead (the group's first transition still follows on, store.c).
	 */
	if (group.n > 0)
		(void) ce_store_take_promoted(&org, &id, &line_number);

	SetCurrentStatementStartTimestamp();
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		CeTransitionResult tr;

		/* its reads see what the group's earlier transitions wrote */
		CommandCounterIncrement();
		PushActiveSnapshot(GetTransactionSnapshot());
		tr = ce_transition_in_xact(NULL, NULL);
		PopActiveSnapshot();
		if (tr == CE_TR_DONE && !group.deferred)
		{
			ReleaseCurrentSubTransaction();
			r = GS_DONE;
		}
		else
		{
			/* nothing claimed, or a claim to undo (the line stays due) */
			RollbackAndReleaseCurrentSubTransaction();
			r = group.deferred ? GS_DEFERRED : GS_NONE;
		}
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(errcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ce_step_reset_session();

		if (lock_conflict(edata->sqlerrcode))
		{
			/* not the line's fault: it runs again, alone */
			(void) ce_transition_take_claim(&org, &id, &line_number);
			ereport(DEBUG1,
					(errmsg_internal("chainexec executor runs line %d of execution %s again alone: %s",
									 line_number,
									 DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&id))),
									 edata->message)));
			FreeErrorData(edata);
			solo_left = Max(solo_left, 1);
			r = GS_UNDONE;
		}
		else
		{
			*error = edata;
			r = GS_ERROR;
		}
	}
	PG_END_TRY();
	/* a crash from now on is not this attempt's doing */
	ce_inflight_end();
	return r;
}

CeTransitionResult
ce_transition_group(int max, int window_ms)
{
	CeXact		xact;
	bool		changed;
	TimestampTz start;
	ErrorData  *error = NULL;
	int			done = 0;

	if (max > CE_GROUP_MAX)
		max = CE_GROUP_MAX;
	if (max <= 1 || solo_left > 0)
	{
		if (solo_left > 0)
			solo_left--;
		return ce_transition(NULL);
	}

	if (!ce_engine_xact_begin(&xact, &changed))
		return CE_TR_GONE;
	if (changed)
		ce_extension_owner_forget();
	memset(&group, 0, sizeof(group));
	group.active = true;
	start = GetCurrentTimestamp();
	for (;;)
	{
		GroupStep	r = group_one(xact.caller, &error);

		if (r == GS_DONE)
			done++;
		if (r != GS_DONE || group.alone || done >= max ||
			ProcDiePending || ConfigReloadPending ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), window_ms))
			break;
	}
	group.active = false;
	if (error == NULL)
	{
		pg_uuid_t	org;
		pg_uuid_t	id;
		int			line_number;

		/* a failed commit is no line's doing: ce_group_after_error */
		(void) ce_transition_take_claim(&org, &id, &line_number);
	}
	/* a cancel sent now (chain_cancel) is for no step: held over the commit */
	HOLD_CANCEL_INTERRUPTS();
	ce_engine_xact_commit(&xact);
	RESUME_CANCEL_INTERRUPTS();
	pgstat_report_stat(false);
	if (error != NULL)
		ReThrowError(error);
	return done > 0 || solo_left > 0 ? CE_TR_DONE : CE_TR_NONE;
}
