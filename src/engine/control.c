/*-------------------------------------------------------------------------
 *
 * control.c
 *	  The control functions that change an execution's course:
 *	  chain_cancel, chain_pause, chain_resume, chain_retry_step,
 *	  chain_skip_step, chain_rollback and chain_rollback_plan, and the
 *	  opening of every control call (control_int.h;
 *	  external.c records the results of external steps), in C, on the
 *	  engine's own bookkeeping (engine_int.h):
 *	  one event builder, one progress/ETA computation, one way to close
 *	  open lines, to compensate and to merge a context.
 *
 * Who may call: the execution must be in the caller's organization
 * (chainexec.organization_id, or the default one), and the caller must be
 * a member of its owner role or of chainexec_admin; otherwise it "does not
 * exist" (42704), so that nobody learns of others' executions.  The check
 * is made in C from the row (role membership, organization id), and every
 * query runs as the extension owner under the fixed search_path
 * "pg_catalog, chainexec, pg_temp": no function, operator, type or table of
 * the caller's can take part.
 *
 * The state machine.  Statuses of an execution: live (pending, running,
 * waiting), paused, compensating, and the final ones completed, failed,
 * cancelled, timeout, compensated.  "Stopped" below means failed, cancelled
 * or timeout; a stopped execution whose compensation has started (it has a
 * compensation line) can only be compensated further, never go forward.
 *
 *   call          live       paused    compensating  stopped   stopped,     completed  compensated
 *                                                              compensation
 *   cancel        cancelled  cancelled cancelled     false     false        false      false
 *   pause         paused     false     55000         55000     55000        55000      55000
 *   resume        false      running   55000         running   55000        55000      55000
 *   retry_step    line reset line reset 55000        running   55000        55000      55000
 *   skip_step     skipped    skipped   55000         running   55000        55000      55000
 *   rollback      compensat. compensat. false        compensat. compensat.  compensat. false
 *   step_complete/fail: the step's line must be waiting (live or paused)
 *
 * chain_step_complete and chain_step_fail on a step with requiredRoles are
 * for the members of those roles and of chainexec_admin only, who need not
 * control the execution (tasks.c); the owner who is neither gets 42501.
 *
 * "compensat." is compensating, or compensated at once when no completed
 * step has a rollbackAction.  Resume, retry and skip of a stopped execution
 * reopen it (status running); completed steps never run again.  Running
 * is pending for an execution none of whose steps has started (GOES_ON).
 * A call on a step that is being run right now fails with 55P03.
 *
 * A step may not control its own execution (55000): its changes would be
 * part of the very transition that runs the step, undone with it when the
 * step fails or its line is dropped, and they would change the lines under
 * the transition's feet (a self-cancel left the execution stuck).  Nor
 * another execution of its family of sub-chains (a parent, a child, a
 * sibling): a change to one reaches the others (compose.h), the step's own
 * with them.  A step that wants its execution to stop fails (raise_failure,
 * onFailure "fail") or routes with conditionalExecution.
 *
 * Control never changes timing: a line keeps a due time in the future
 * (runAt, retry back-off, wait timer) through pause, resume, cancel and
 * resume, retry and skip; a timer that came due during a pause completes
 * (an external step's deadline: times out) at once on resume, as the same
 * attempt, and so does a wait timer cancelled and resumed.
 *
 * Signals to running steps (cancel, rollback) are sent after commit, so
 * that a rolled-back cancel interrupts nothing.
 *
 * A line being run right now is held (still ready) by its transition,
 * which decides after the step, under the header's lock, by the status
 * it finds then; control calls never wait for it.  Pause: the step
 * finishes and counts, a retry it needs waits for resume (pending), and
 * resume makes ready the iterations the pause held back (a forEach's up
 * to maxConcurrency: those set pending, and those that iterations ending
 * during the pause did not start).  Cancel, rollback: the step is
 * interrupted (also when the signal came after the claim, before the step
 * began: step.c) and its line ends cancelled, its effects rolled back.
 * Reopening a stopped execution (resume, retry, skip) while such an
 * interrupted attempt has not ended fails with 55P03, so that its outcome
 * never counts in the reopened execution; a forEach cancelled while its
 * iterations ran (or failed by one) goes on, its ended elements not run
 * again (iterate.c).  Retry and skip of a step whose
 * iterations run fail with 55P03 as for a running step; of a step that
 * waits for a child execution, they cancel the child.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "utils/acl.h"
#include "utils/array.h"

#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"

#include "utils/timestamp.h"

#include "control.h"
#include "control_int.h"
#include "engine.h"
#include "engine_int.h"
#include "tasks.h"
#include "compose.h"
#include "engine_xact.h"
#include "failure.h"
#include "resilience.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(ce_chain_cancel);
PG_FUNCTION_INFO_V1(ce_chain_pause);
PG_FUNCTION_INFO_V1(ce_chain_resume);
PG_FUNCTION_INFO_V1(ce_chain_retry_step);
PG_FUNCTION_INFO_V1(ce_chain_skip_step);
PG_FUNCTION_INFO_V1(ce_chain_rollback);
PG_FUNCTION_INFO_V1(ce_chain_rollback_plan);

/* ---------------------------------------------------------------------
 * Queries (all run as the extension owner, fixed search_path)
 * --------------------------------------------------------------------- */

static CeQuery q_owner = {
	"SELECT owner::oid FROM chainexec.universal_transactions WHERE organization_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}};

/*
 * An execution none of whose steps has started goes on as pending, not
 * running: its first step then starts it (started_at) and takes its place
 * under the chain's concurrencyLimit (flow.c), as if it had never stopped.
 */
#define NO_STEP_STARTED "started_at IS NULL AND NOT EXISTS (SELECT FROM chainexec.universal_transaction_lines l " \
	"WHERE l.organization_id = $1 AND l.transaction_id = $2 AND l.first_started_at IS NOT NULL)"
#define GOES_ON "CASE WHEN " NO_STEP_STARTED " THEN 'pending' ELSE 'running' END"
/* ... and when a step started, the execution started with its first one. */
#define STARTED "coalesce(started_at, (SELECT min(l.first_started_at) FROM chainexec.universal_transaction_lines l " \
	"WHERE l.organization_id = $1 AND l.transaction_id = $2))"

/* $3: the new status; running is GOES_ON. */
static CeQuery q_set_status = {
	"UPDATE chainexec.universal_transactions "
	"SET status = CASE WHEN $3 = 'running' THEN " GOES_ON " ELSE $3 END, "
	"started_at = CASE WHEN $3 = 'running' THEN " STARTED " ELSE started_at END "
	"WHERE organization_id = $1 AND id = $2 RETURNING status",
	3, {UUIDOID, UUIDOID, TEXTOID}};

/* Reopen a stopped execution (GOES_ON); a timed-out one loses its deadline. */
static CeQuery q_reopen = {
	"UPDATE chainexec.universal_transactions SET status = " GOES_ON ", started_at = " STARTED ", "
	"finished_at = NULL, error = NULL, "
	"deadline = CASE WHEN status = 'timeout' THEN NULL ELSE deadline END "
	"WHERE organization_id = $1 AND id = $2 RETURNING status",
	2, {UUIDOID, UUIDOID}};

/*
 * chain_rollback of an execution that had ended: it compensates, so it has
 * not finished (nor holds a place: its compensations take one).
 */
static CeQuery q_unfinish = {
	"UPDATE chainexec.universal_transactions SET finished_at = NULL "
	"WHERE organization_id = $1 AND id = $2 AND finished_at IS NOT NULL",
	2, {UUIDOID, UUIDOID}};

static CeQuery q_set_floor = {
	"UPDATE chainexec.universal_transactions "
	"SET metadata = metadata || jsonb_build_object('progressFloor', $3) "
	"WHERE organization_id = $1 AND id = $2",
	3, {UUIDOID, UUIDOID, INT4OID}};

/* Pause: ready lines wait (their due time kept); running ones are locked. */
static CeQuery q_pause_lines = {
	"UPDATE chainexec.universal_transaction_lines l SET status = 'pending' "
	"FROM (SELECT line_number FROM chainexec.universal_transaction_lines "
	"      WHERE organization_id = $1 AND transaction_id = $2 AND status = 'ready' "
	"      FOR UPDATE SKIP LOCKED) s "
	"WHERE l.organization_id = $1 AND l.transaction_id = $2 AND l.line_number = s.line_number",
	2, {UUIDOID, UUIDOID}};

/* Resume: timers that came due during the pause are due again, as they were. */
static CeQuery q_unpark_timers = {
	"UPDATE chainexec.universal_transaction_lines SET not_before = deadline, deadline = NULL "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status = 'waiting' AND deadline IS NOT NULL",
	2, {UUIDOID, UUIDOID}};

/*
 * Reopen the failed ($4) and cancelled step lines (or only line $5 when
 * not 0, and only cancelled ones when not $4), but not those a fallback
 * stood for successfully.  A line cancelled while it waited ("attempt > 0
 * AND error IS NULL": no failure was recorded on it) is a timer or an
 * external step: a wait step ($3 lists them) waits again for its own due
 * time, as the same attempt; an external step runs again, at once, and so
 * does a line whose due time was the end of a wait (infinity: a failed
 * forEach, external step).  Any other line keeps its due time (runAt,
 * back-off).
 */
#define WAS_WAITING "(l.status = 'cancelled' AND l.attempt > 0 AND l.error IS NULL)"
#define IS_TIMER "(" WAS_WAITING " AND l.step_id = ANY($3))"
static CeQuery q_reopen_lines = {
	"UPDATE chainexec.universal_transaction_lines l SET "
	"status = CASE WHEN " IS_TIMER " THEN 'waiting' ELSE 'pending' END, "
	"attempt = CASE WHEN " IS_TIMER " THEN l.attempt ELSE 0 END, "
	"not_before = CASE WHEN " IS_TIMER " THEN coalesce(l.deadline, l.not_before) "
	"  WHEN " WAS_WAITING " OR l.not_before = 'infinity' THEN least(coalesce(l.deadline, l.not_before), now()) "
	"  ELSE l.not_before END, "
	"first_started_at = CASE WHEN " IS_TIMER " THEN l.first_started_at END, "
	"deadline = NULL, error = NULL, finished_at = NULL, duration_ms = NULL "
	"WHERE l.organization_id = $1 AND l.transaction_id = $2 AND l.line_type = 'step' "
	"AND (l.status = 'cancelled' OR (l.status = 'failed' AND $4)) "
	"AND ($5 = 0 OR l.line_number = $5) "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transaction_lines f "
	"  WHERE f.organization_id = $1 AND f.transaction_id = $2 AND f.line_type = 'fallback' "
	"    AND f.parent_line = l.line_number AND f.status IN ('completed', 'skipped'))",
	5, {UUIDOID, UUIDOID, INT4ARRAYOID, BOOLOID, INT4OID}};

/* A line still open in a stopped execution: an attempt that has not ended yet. */
static CeQuery q_open_line = {
	"SELECT step_id FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_type <> 'compensation' "
	"AND status IN ('pending', 'ready', 'running', 'waiting') ORDER BY line_number LIMIT 1",
	2, {UUIDOID, UUIDOID}};

static CeQuery q_drop_fallbacks = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'cancelled', finished_at = coalesce(finished_at, clock_timestamp()) "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_type = 'fallback' "
	"AND status NOT IN ('completed', 'skipped', 'cancelled')",
	2, {UUIDOID, UUIDOID}};

/*
 * Retry one line: a new first attempt.  A line that waited starts again at
 * once (its new timer or deadline comes later than the old one), and so
 * does the failed line of a step that waits for an external result ($4):
 * its due time is the end of a wait that is over (infinity when it had no
 * timeoutMs).  Any other keeps its due time.
 */
static CeQuery q_retry_line = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'pending', attempt = 0, error = NULL, "
	"finished_at = NULL, duration_ms = NULL, first_started_at = NULL, deadline = NULL, "
	"not_before = CASE WHEN status = 'waiting' OR (status = 'failed' AND $4) "
	"  THEN least(coalesce(deadline, not_before), now()) ELSE not_before END "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	4, {UUIDOID, UUIDOID, INT4OID, BOOLOID}};

static CeQuery q_skip_line = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'skipped', finished_at = clock_timestamp(), "
	"deadline = NULL, output = coalesce($4, output) "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	4, {UUIDOID, UUIDOID, INT4OID, JSONBOID}};

static CeQuery q_rollback_plan = {
	"SELECT coalesce(jsonb_agg(jsonb_build_object('order', c.n, 'stepId', l.step_id, 'stepName', l.step_name, "
	"  'rollbackAction', c.action, 'completedAt', l.finished_at) ORDER BY c.n), '[]') "
	"FROM unnest($3::int[], $4::text[]) WITH ORDINALITY AS c(line, action, n) "
	"JOIN chainexec.universal_transaction_lines l "
	"  ON l.organization_id = $1 AND l.transaction_id = $2 AND l.line_number = c.line",
	4, {UUIDOID, UUIDOID, INT4ARRAYOID, TEXTARRAYOID}};

/*
 * chain_cleanup: the owners of the executions to remove, then the removal
 * of those the caller may act for ($3 NULL: every owner, for
 * chainexec_admin).  Two queries, as Citus refuses a function of a row's
 * column (pg_has_role(caller, owner)) in a DELETE.
 */
/* ---------------------------------------------------------------------
 * Opening a control call
 * --------------------------------------------------------------------- */


Datum
ce_ctl_uuid_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("execution id must not be null")));
	return PG_GETARG_DATUM(0);
}

int
ce_ctl_step_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("step id must not be null")));
	return PG_GETARG_INT32(n);
}

/* Whether role caller may control what role owner owns. */
static bool
may_control(Oid caller, Oid owner)
{
	Oid			admin = get_role_oid("chainexec_admin", true);

	return is_member_of_role(caller, owner) ||
		(OidIsValid(admin) && is_member_of_role(caller, admin));
}

/*
 * Start a control call on the execution: SPI, bookkeeping context, the
 * caller's right to it (see the file header), then the header (locked when
 * the call changes anything).  A step may not change its own execution.
 */
static void
ctl_open(Ctl *c, Datum id, bool change, const char *verb)
{
	ce_ctl_open_as(c, id, change, verb, false);
}

/*
 * ctl_open, and with decider also for a caller who does not control the
 * execution but may decide on one of its tasks (tasks.c checks that next,
 * before anything of the execution is shown): c->may_control says which.
 */
void
ce_ctl_open_as(Ctl *c, Datum id, bool change, const char *verb, bool decider)
{
	Oid			caller = GetUserId();
	Datum		args[2];
	bool		isnull;
	bool		found;
	Oid			owner = InvalidOid;
	int			self;

	memset(c, 0, sizeof(*c));
	/* a concurrent DROP EXTENSION waits for us (engine_xact.c) */
	if (!ce_lock_extension(NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"chainexec\" is not installed in this database")));
	ce_current_org(&c->ex.org);
	memcpy(&c->ex.id, DatumGetUUIDP(id), sizeof(pg_uuid_t));
	SPI_connect();
	ce_bookkeeping_begin(&c->bk);
	args[0] = UUIDPGetDatum(&c->ex.org);
	args[1] = UUIDPGetDatum(&c->ex.id);
	ce_run_query(&q_owner, args, NULL, true, 1);
	found = SPI_processed == 1;
	if (found)
		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (found)
		c->may_control = may_control(caller, owner);
	if (!found || (!c->may_control && !decider))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %s does not exist", ce_uuid_to_cstring(&c->ex.id)),
				 errhint("It may belong to another organization or role, or have been removed by chain_cleanup().")));
	if (change && (self = ce_in_step_of(&c->ex.id)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 self == 1 ? errmsg("a step cannot %s its own execution", verb) :
				 errmsg("a step cannot %s an execution of its own family of sub-chains", verb),
				 self == 1 ? errdetail("The change would be part of the step's own transition.") :
				 errdetail("A change to a parent, child or sibling execution reaches the step's own execution."),
				 errhint("To stop the execution, fail the step (chainexec.raise_failure() with onFailure \"fail\") or route with conditionalExecution; control the other executions of its family from outside it.")));
	ce_exec_read(&c->ex);
	if (change)
		ce_exec_lock(&c->ex);
	/* a control call never starts an execution: only its first step does */
	c->ex.not_started = c->ex.status == CE_EXEC_PENDING;
}

void
ce_ctl_close(Ctl *c)
{
	ce_bookkeeping_end(&c->bk);
	SPI_finish();
}

static bool
is(const Ctl *c, CeExecStatus status)
{
	return c->ex.status == status;
}

static bool
is_live(const Ctl *c)
{
	return ce_exec_status_is_live(c->ex.status);
}

static bool
is_stopped(const Ctl *c)
{
	return is(c, CE_EXEC_FAILED) || is(c, CE_EXEC_CANCELLED) || is(c, CE_EXEC_TIMEOUT);
}

static List *
ctl_lines(Ctl *c)
{
	if (c->lines == NIL)
		c->lines = ce_exec_lines(&c->ex);
	return c->lines;
}

/* Whether the execution's compensation has started (it has such a line). */
static bool
compensation_started(Ctl *c)
{
	ListCell   *lc;

	foreach(lc, ctl_lines(c))
		if (((LineInfo *) lfirst(lc))->type == 'c')
			return true;
	return false;
}

/* The call is illegal in the execution's status: 55000. */
static void
refuse(Ctl *c, const char *verb)
{
	const char *hint;

	if (is(c, CE_EXEC_COMPLETED))
		hint = "Start a new execution with chain_execute(), or undo it with chain_rollback().";
	else if (is(c, CE_EXEC_COMPENSATING) || is(c, CE_EXEC_COMPENSATED) || is_stopped(c))
		hint = "Its compensation has started: it can only be compensated further, with chain_rollback().";
	else
		hint = "See the state machine of the control functions in the README.";
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s execution %s: it is %s%s", verb, c->ex.id_s, ce_exec_status_name(c->ex.status),
					is_stopped(c) ? " and its compensation has started" : ""),
			 errhint("%s", hint)));
}

/*
 * Record the progress reported so far as the floor of the execution's
 * progress, before lines go back (it never decreases).
 */
static void
keep_progress(Ctl *c)
{
	Datum		v[3];

	c->ex.progress_floor = ce_progress_refresh(&c->ex, NULL);
	v[0] = UUIDPGetDatum(&c->ex.org);
	v[1] = UUIDPGetDatum(&c->ex.id);
	v[2] = Int32GetDatum(c->ex.progress_floor);
	ce_run_query(&q_set_floor, v, NULL, false, 0);
}

/* The ids of the chain's wait steps. */
static ArrayType *
wait_step_ids(CePlan *plan)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(plan->nsteps, 1));
	int			n = 0;
	int			i;

	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].kind == CE_STEP_WAIT)
			d[n++] = Int32GetDatum(plan->steps[i].id);
	return construct_array(d, n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
}

/* Reopen lines (see q_reopen_lines). */
static void
reopen_lines(Ctl *c, bool failed_too, int only_line)
{
	Datum		v[5];

	v[0] = UUIDPGetDatum(&c->ex.org);
	v[1] = UUIDPGetDatum(&c->ex.id);
	v[2] = PointerGetDatum(wait_step_ids(c->ex.plan));
	v[3] = BoolGetDatum(failed_too);
	v[4] = Int32GetDatum(only_line);
	ce_run_query(&q_reopen_lines, v, NULL, false, 0);
	ce_wakeup_at_commit();
}

/*
 * Reopen a stopped execution (resume, retry, skip): status running, its
 * cancelled step lines pending again (failed ones too for resume); own_line
 * is the line that retry or skip acts on itself.
 */
static void
reopen(Ctl *c, bool failed_too, const char *verb, int own_line)
{
	Datum		v[2];

	if (compensation_started(c))
		refuse(c, verb);
	v[0] = UUIDPGetDatum(&c->ex.org);
	v[1] = UUIDPGetDatum(&c->ex.id);

	/*
	 * An attempt that ran when the execution stopped ends by itself (it
	 * is interrupted, or finds the execution stopped and is discarded);
	 * until then its transition holds its line, still open, and it would
	 * count in the reopened execution.  Open lines nobody holds close.
	 */
	ce_close_open_lines(&c->ex, 0, CE_LINE_CANCELLED);
	ce_run_query(&q_open_line, v, NULL, false, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("step %s of execution %s is still running", ce_getcol_text(0, 1), c->ex.id_s),
				 errdetail("Its attempt ran when the execution stopped, and has not ended yet."),
				 errhint("Try again in a moment: a step that is interrupted ends within chainexec.step_grace_period.")));
	keep_progress(c);
	ce_run_query(&q_reopen, v, NULL, false, 0);
	c->ex.status = ce_exec_status_from_name(ce_getcol_text(0, 1));
	c->ex.not_started = c->ex.status == CE_EXEC_PENDING;
	ce_containers_reopen(&c->ex, own_line, failed_too);
	reopen_lines(c, failed_too, 0);
	if (failed_too)
		ce_run_query(&q_drop_fallbacks, v, NULL, false, 0);
}

static void
set_status(Ctl *c, CeExecStatus status)
{
	Datum		v[3];

	v[0] = UUIDPGetDatum(&c->ex.org);
	v[1] = UUIDPGetDatum(&c->ex.id);
	v[2] = CStringGetTextDatum(ce_exec_status_name(status));
	ce_run_query(&q_set_status, v, NULL, false, 0);
	c->ex.status = ce_exec_status_from_name(ce_getcol_text(0, 1));
	c->ex.not_started = c->ex.status == CE_EXEC_PENDING;
}

/* An execution-level event, with progress and ETA of now. */
static void
emit_now(Ctl *c, const char *event, CeExecStatus status)
{
	(void) ce_progress_refresh(&c->ex, NULL);
	ce_exec_emit(&c->ex, event, status);
}

/* The latest line of a step, locked (error if running or missing). */
void
ce_ctl_step_line(Ctl *c, int step_id, LineRow *line)
{
	memset(line, 0, sizeof(*line));
	if (ce_step_line(&c->ex, step_id, true, line))
		return;
	if (!ce_step_line(&c->ex, step_id, false, line))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %s has no step %d", c->ex.id_s, step_id)));
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("step %d of execution %s is running", step_id, c->ex.id_s),
			 errhint("Wait for the attempt to end, or cancel the execution.")));
}

/*
 * Before skip or retry of a step: a step whose iterations run is being
 * run (55P03); its other iterations close.  A child execution it waits
 * for is cancelled.
 */
static void
settle_step(Ctl *c, int step_id, LineRow *line, const char *why)
{
	CeStep	   *step = ce_plan_step_by_id(c->ex.plan, step_id);

	if (step && step->kind == CE_STEP_CHAIN && line->status == CE_LINE_WAITING)
		ce_child_cancel_for_line(&c->ex, line, why);

	if (step && ce_step_iterates(step) && line->status == CE_LINE_WAITING &&
		!ce_container_settle(&c->ex, line->line_number))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("step %d of execution %s is running", step_id, c->ex.id_s),
				 errdetail("Some of its iterations are running now."),
				 errhint("Wait for them to end (chain_pause() stops it starting more), or cancel the execution.")));
}

/* ---------------------------------------------------------------------
 * The calls
 * --------------------------------------------------------------------- */

/* chain_cancel(execution_id uuid, reason text DEFAULT NULL) RETURNS boolean */
Datum
ce_chain_cancel(PG_FUNCTION_ARGS)
{
	Ctl			c;
	bool		done = false;

	ctl_open(&c, ce_ctl_uuid_arg(fcinfo), true, "cancel");
	if (is_live(&c) || is(&c, CE_EXEC_PAUSED) || is(&c, CE_EXEC_COMPENSATING))
	{
		char	   *reason = PG_ARGISNULL(1) ? CE_FAILURE_CANCELLED : text_to_cstring(PG_GETARG_TEXT_PP(1));
		Jsonb	   *cause = NULL;
		List	   *comp = NIL;

		/* an escalated execution given up: compensated, the escalated step as the cause */
		if (is(&c, CE_EXEC_PAUSED) && c.ex.plan->rollback_enabled && ce_escalated_count(&c.ex) > 0)
			cause = ce_escalated_cause(&c.ex);
		ce_close_open_lines(&c.ex, 0, CE_LINE_CANCELLED);
		if (cause)
			comp = ce_rollback_candidates(&c.ex, 0);
		if (comp != NIL)
		{
			emit_now(&c, "chain_cancelled", CE_EXEC_COMPENSATING);
			ce_start_compensation(&c.ex, comp, cause);
		}
		else
		{
			ce_exec_finish(&c.ex, CE_EXEC_CANCELLED, NULL, ce_error_jsonb(CE_FAILURE_CANCELLED, "57014", reason, NULL, NULL, 0));
			emit_now(&c, "chain_cancelled", CE_EXEC_CANCELLED);
		}
		ce_signal_running_at_commit(&c.ex.id);
		done = true;
	}
	ce_ctl_close(&c);
	PG_RETURN_BOOL(done);
}

/* chain_pause(execution_id uuid) RETURNS boolean */
Datum
ce_chain_pause(PG_FUNCTION_ARGS)
{
	Ctl			c;
	Datum		v[2];

	ctl_open(&c, ce_ctl_uuid_arg(fcinfo), true, "pause");
	if (is(&c, CE_EXEC_PAUSED))
	{
		ce_ctl_close(&c);
		PG_RETURN_BOOL(false);
	}
	if (!is_live(&c))
		refuse(&c, "pause");
	set_status(&c, CE_EXEC_PAUSED);
	v[0] = UUIDPGetDatum(&c.ex.org);
	v[1] = UUIDPGetDatum(&c.ex.id);
	ce_run_query(&q_pause_lines, v, NULL, false, 0);
	emit_now(&c, "chain_paused", CE_EXEC_PAUSED);
	ce_ctl_close(&c);
	PG_RETURN_BOOL(true);
}

/* chain_resume(execution_id uuid) RETURNS boolean */
Datum
ce_chain_resume(PG_FUNCTION_ARGS)
{
	Ctl			c;

	ctl_open(&c, ce_ctl_uuid_arg(fcinfo), true, "resume");
	if (is_live(&c))
	{
		ce_ctl_close(&c);
		PG_RETURN_BOOL(false);
	}
	if (is(&c, CE_EXEC_PAUSED))
	{
		Datum		v[2];

		set_status(&c, CE_EXEC_RUNNING);
		/* escalated steps are retried; iterations the pause held back run */
		ce_escalated_reopen(&c.ex);
		ce_iterations_advance(&c.ex, ce_exec_lines(&c.ex), true);
		v[0] = UUIDPGetDatum(&c.ex.org);
		v[1] = UUIDPGetDatum(&c.ex.id);
		ce_run_query(&q_unpark_timers, v, NULL, false, 0);
		if (SPI_processed > 0)
			ce_wakeup_at_commit();
	}
	else if (is_stopped(&c))
		reopen(&c, true, "resume", 0);
	else
		refuse(&c, "resume");
	ce_advance(&c.ex, 0);
	emit_now(&c, "chain_resumed", c.ex.status);
	ce_ctl_close(&c);
	PG_RETURN_BOOL(true);
}

/* chain_retry_step(execution_id uuid, step int) RETURNS boolean */
Datum
ce_chain_retry_step(PG_FUNCTION_ARGS)
{
	Ctl			c;
	LineRow		line;
	int			step_id = ce_ctl_step_arg(fcinfo, 1);
	Datum		v[4];
	bool		reopened = false;
	bool		escalated;
	CeStep	   *step;

	ctl_open(&c, ce_ctl_uuid_arg(fcinfo), true, "retry a step of");
	ce_ctl_step_line(&c, step_id, &line);
	settle_step(&c, step_id, &line, "the step that started it is retried");
	escalated = is(&c, CE_EXEC_PAUSED) && ce_escalated_count(&c.ex) > 0;
	if (line.status == CE_LINE_COMPLETED || line.status == CE_LINE_COMPENSATED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("step %d of execution %s has completed", step_id, c.ex.id_s),
				 errhint("Only failed, skipped, cancelled, waiting or scheduled steps can be retried.")));
	if (is_stopped(&c))
	{
		reopen(&c, false, "retry a step of", line.line_number);
		reopened = true;
	}
	else if (is_live(&c) || is(&c, CE_EXEC_PAUSED))
		keep_progress(&c);
	else
		refuse(&c, "retry a step of");
	v[0] = UUIDPGetDatum(&c.ex.org);
	v[1] = UUIDPGetDatum(&c.ex.id);
	v[2] = Int32GetDatum(line.line_number);
	step = ce_plan_step_by_id(c.ex.plan, step_id);
	v[3] = BoolGetDatum(step != NULL && step->kind == CE_STEP_EXTERNAL && step->instruction_set == NULL);
	ce_run_query(&q_retry_line, v, NULL, false, 0);
	if (escalated && ce_escalated_count(&c.ex) == 0)
	{
		/* the last escalated step settled: the execution goes on */
		set_status(&c, CE_EXEC_RUNNING);
		reopened = true;
	}
	if (!is(&c, CE_EXEC_PAUSED))
		ce_advance(&c.ex, 0);
	if (reopened)
		emit_now(&c, "chain_resumed", c.ex.status);
	ce_ctl_close(&c);
	PG_RETURN_BOOL(true);
}

/* chain_skip_step(execution_id uuid, step int, output jsonb DEFAULT NULL) RETURNS boolean */
Datum
ce_chain_skip_step(PG_FUNCTION_ARGS)
{
	Ctl			c;
	LineRow		line;
	int			step_id = ce_ctl_step_arg(fcinfo, 1);
	Jsonb	   *output = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	Jsonb	   *merged = NULL;
	Datum		v[4];
	char		n[5] = "    ";
	CeStep	   *step;
	bool		escalated;

	ctl_open(&c, ce_ctl_uuid_arg(fcinfo), true, "skip a step of");
	ce_ctl_step_line(&c, step_id, &line);
	settle_step(&c, step_id, &line, "the step that started it was skipped");
	escalated = is(&c, CE_EXEC_PAUSED) && ce_escalated_count(&c.ex) > 0;
	if (line.status == CE_LINE_COMPLETED || line.status == CE_LINE_SKIPPED ||
		line.status == CE_LINE_COMPENSATED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("step %d of execution %s is already %s", step_id, c.ex.id_s,
						ce_line_status_name(line.status))));
	if (output)
		merged = ce_context_merge_or_error(c.ex.context, output, "output",
										   psprintf("step \"%s\"", line.step_name));
	if (is_stopped(&c))
		reopen(&c, false, "skip a step of", line.line_number);
	else if (!is_live(&c) && !is(&c, CE_EXEC_PAUSED))
		refuse(&c, "skip a step of");

	v[0] = UUIDPGetDatum(&c.ex.org);
	v[1] = UUIDPGetDatum(&c.ex.id);
	v[2] = Int32GetDatum(line.line_number);
	if (output)
	{
		StringInfoData b;

		initStringInfo(&b);
		appendStringInfoString(&b, "{\"variables\":");
		JsonbToCString(&b, &output->root, VARSIZE(output));
		appendStringInfoChar(&b, '}');
		v[3] = JsonbPGetDatum(ce_text_to_jsonb(b.data));
	}
	else
		n[3] = 'n';
	ce_run_query(&q_skip_line, v, n, false, 0);
	if (merged)
		ce_exec_set_context(&c.ex, merged);
	step = ce_plan_step_by_id(c.ex.plan, step_id);
	(void) ce_progress_refresh(&c.ex, NULL);
	ce_step_emit(&c.ex, "step_skipped", step, CE_LINE_SKIPPED, line.attempt);
	if (escalated && ce_escalated_count(&c.ex) == 0)
	{
		/* the last escalated step settled: the execution goes on */
		set_status(&c, CE_EXEC_RUNNING);
		emit_now(&c, "chain_resumed", c.ex.status);
	}
	if (!is(&c, CE_EXEC_PAUSED))
		ce_advance(&c.ex, 0);
	ce_ctl_close(&c);
	PG_RETURN_BOOL(true);
}

/* chain_rollback(execution_id uuid, to_step int DEFAULT NULL) RETURNS boolean */
Datum
ce_chain_rollback(PG_FUNCTION_ARGS)
{
	Ctl			c;
	List	   *comp;
	int			to_step = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);

	ctl_open(&c, ce_ctl_uuid_arg(fcinfo), true, "roll back");
	if (is(&c, CE_EXEC_COMPENSATING) || is(&c, CE_EXEC_COMPENSATED))
	{
		ce_ctl_close(&c);
		PG_RETURN_BOOL(false);
	}
	if (!PG_ARGISNULL(1))
	{
		ListCell   *lc;
		bool		found = false;

		foreach(lc, ctl_lines(&c))
			if (((LineInfo *) lfirst(lc))->step_id == to_step)
				found = true;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("execution %s has no step %d", c.ex.id_s, to_step)));
	}
	ce_close_open_lines(&c.ex, 0, CE_LINE_CANCELLED);
	ce_signal_running_at_commit(&c.ex.id);
	comp = ce_rollback_candidates(&c.ex, to_step);
	if (comp == NIL)
	{
		ce_exec_finish(&c.ex, CE_EXEC_COMPENSATED, NULL, NULL);
		emit_now(&c, "compensation_completed", CE_EXEC_COMPENSATED);
	}
	else
	{
		Datum		v[2];

		v[0] = UUIDPGetDatum(&c.ex.org);
		v[1] = UUIDPGetDatum(&c.ex.id);
		ce_run_query(&q_unfinish, v, NULL, false, 0);
		(void) ce_progress_refresh(&c.ex, NULL);
		ce_start_compensation(&c.ex, comp, NULL);
	}
	ce_ctl_close(&c);
	PG_RETURN_BOOL(true);
}

/* chain_rollback_plan(execution_id uuid) RETURNS jsonb */
Datum
ce_chain_rollback_plan(PG_FUNCTION_ARGS)
{
	Ctl			c;
	List	   *comp;
	ListCell   *lc;
	Datum	   *lines;
	Datum	   *actions;
	int			n = 0;
	Datum		v[4];
	bool		isnull;
	Datum		result;
	MemoryContext callcxt = CurrentMemoryContext;

	ctl_open(&c, ce_ctl_uuid_arg(fcinfo), false, NULL);
	comp = ce_rollback_candidates(&c.ex, 0);
	lines = palloc(sizeof(Datum) * (list_length(comp) / 2 + 1));
	actions = palloc(sizeof(Datum) * (list_length(comp) / 2 + 1));
	for (lc = list_head(comp); lc != NULL; lc = lnext(comp, lnext(comp, lc)))
	{
		CeStep	   *s = ce_plan_step_by_id(c.ex.plan, lfirst_int(lnext(comp, lc)));

		lines[n] = Int32GetDatum(lfirst_int(lc));
		actions[n] = CStringGetTextDatum(s->rollback_action);
		n++;
	}
	v[0] = UUIDPGetDatum(&c.ex.org);
	v[1] = UUIDPGetDatum(&c.ex.id);
	v[2] = PointerGetDatum(construct_array(lines, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	v[3] = PointerGetDatum(construct_array(actions, n, TEXTOID, -1, false, TYPALIGN_INT));
	ce_run_query(&q_rollback_plan, v, NULL, true, 1);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	{
		MemoryContext old = MemoryContextSwitchTo(callcxt);

		result = datumCopy(result, false, -1);
		MemoryContextSwitchTo(old);
	}
	ce_ctl_close(&c);
	PG_RETURN_DATUM(result);
}
