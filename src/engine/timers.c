/*-------------------------------------------------------------------------
 *
 * timers.c
 *	  Timers, deadlines and recovery: the next time a line becomes due or
 *	  an execution reaches its deadline (the executors' wake-up), the
 *	  deadline sweep, the start-up report, and the record of an attempt
 *	  whose executor died.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <signal.h>

#include "executor/spi.h"
#include "lib/stringinfo.h"

#include "pgstat.h"

#include "utils/json.h"
#include "utils/snapmgr.h"

#include "utils/timestamp.h"

#include "chainexec.h"

#include "plancache.h"
#include "engine.h"
#include "engine_int.h"
#include "flow.h"
#include "engine_xact.h"

#include "inflight.h"
#include "shmem.h"

/* ---------------------------------------------------------------------
 * Timers, deadlines, recovery
 * --------------------------------------------------------------------- */

/*
 * The next time something is due: a line of one execution ($1, $2), or of
 * any execution (the executors' wake-up).  Kept plans: an idle executor
 * asks at every poll, and planning these (two tables and their indexes)
 * cost ten times their execution, most of an idle executor's CPU.
 *
 * For the executors, only lines due after $1, the time up to which their
 * last dispatch claim looked (ce_claimed_due_upto): a line due by then
 * that the claim did not take is locked by a transition, whose commit
 * wakes the executors.  The condition is an index condition on not_before:
 * the scans of the dispatch and waiting indexes skip, without visiting the
 * table, the entries of every line once ready or waiting and since moved
 * on, which vacuum cannot remove while a snapshot older than them is held
 * (a long transaction anywhere): visiting each of those at every idle
 * look made the executors' work grow with every execution.
 *
 * And only lines due by $2, the end of the executor's longest nap
 * (chainexec.poll_interval from now): it wakes then whatever is due later.
 * Lines due later are skipped on the index entry too.  Without the bound,
 * min(not_before) over the dispatch index, which is ordered by
 * organization and priority first, visited every ready line waiting for a
 * retry (and looked for its execution among the in-session ones) at every
 * idle look: 5-6 ms with 5,000 executions backing off.
 */
static CeQuery q_next_due_exec = {
	"SELECT least((SELECT min(not_before) FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status IN ('ready', 'waiting') "
	"AND waits_for IS NULL), "
	"(SELECT deadline FROM chainexec.universal_transactions "
	"WHERE organization_id = $1 AND id = $2 AND finished_at IS NULL "
	"AND status IN ('pending', 'running', 'waiting')))",
	2, {UUIDOID, UUIDOID}};
static CeQuery q_next_due = {
	"SELECT least((SELECT min(not_before) FROM chainexec.universal_transaction_lines l WHERE status = 'ready' AND waits_for IS NULL "
	"AND not_before > $1 AND not_before <= $2 "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = l.organization_id AND t.id = l.transaction_id)), "
	"(SELECT not_before FROM chainexec.universal_transaction_lines l WHERE status = 'waiting' "
	"AND not_before > $1 AND not_before <= $2 "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = l.organization_id AND t.id = l.transaction_id) "
	"ORDER BY not_before LIMIT 1), "
	"(SELECT min(deadline) FROM chainexec.universal_transactions "
	"WHERE deadline IS NOT NULL AND finished_at IS NULL))",
	2, {TIMESTAMPTZOID, TIMESTAMPTZOID}};

TimestampTz
ce_next_due_in_xact(const pg_uuid_t *only_execution, const pg_uuid_t *only_org)
{
	TimestampTz result = DT_NOEND;
	bool		isnull;
	Datum		d;
	int			level;

	SPI_connect();
	level = ce_fixed_search_path();
	if (only_execution)
	{
		Datum		args[2];

		args[0] = UUIDPGetDatum((pg_uuid_t *) only_org);
		args[1] = UUIDPGetDatum((pg_uuid_t *) only_execution);
		ce_run_query(&q_next_due_exec, args, NULL, true, 1);
	}
	else
	{
		Datum		args[2];

		args[0] = TimestampTzGetDatum(ce_claimed_due_upto);
		args[1] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																	ce_poll_interval));
		ce_claimed_due_upto = DT_NOBEGIN;
		ce_run_query(&q_next_due, args, NULL, true, 1);
	}
	if (SPI_processed == 1)
	{
		d = ce_getcol(0, 1, &isnull);
		if (!isnull)
			result = DatumGetTimestampTz(d);
	}
	AtEOXact_GUC(false, level);
	SPI_finish();
	return result;
}

TimestampTz
ce_next_due(const pg_uuid_t *only_execution)
{
	CeXact		xact;
	TimestampTz r;
	pg_uuid_t	org;

	ce_current_org(&org);
	if (!ce_engine_xact_begin(&xact, NULL))
		return DT_NOEND;
	r = ce_next_due_in_xact(only_execution, &org);
	ce_engine_xact_commit(&xact);
	return r;
}

/* End executions past their deadline (status timeout), in the current transaction. */
static CeQuery q_lock_overdue = {
	"SELECT FROM chainexec.universal_transactions "
	"WHERE organization_id = $1 AND id = $2 AND deadline <= now() AND finished_at IS NULL "
	"AND status IN ('pending', 'running', 'waiting', 'paused') FOR NO KEY UPDATE SKIP LOCKED",
	2, {UUIDOID, UUIDOID}};

/* Executions past their deadline, locked (a kept plan: swept every poll interval). */
static CeQuery q_overdue = {
	"SELECT organization_id, id FROM chainexec.universal_transactions "
	"WHERE deadline <= now() AND finished_at IS NULL "
	"AND status IN ('pending', 'running', 'waiting', 'paused') "
	"ORDER BY deadline LIMIT 100 FOR NO KEY UPDATE SKIP LOCKED",
	0, {0}};

int
ce_sweep_deadlines_in_xact(void)
{
	bool		citus;
	int			n = 0;
	uint64		i;
	int			ret;
	List	   *found = NIL;
	ListCell   *lc;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;

	SPI_connect();
	save_nestlevel = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	/* on Citus, a multi-shard query cannot lock: candidates first, then each locked by a router query */
	citus = ce_citus_mode();
	if (citus)
		ret = SPI_execute("SELECT organization_id, id FROM chainexec.universal_transactions "
						  "WHERE deadline <= now() AND finished_at IS NULL "
						  "AND status IN ('pending', 'running', 'waiting', 'paused') "
						  "ORDER BY deadline LIMIT 100", false, 0);
	else
		ret = ce_run_query(&q_overdue, NULL, NULL, false, 0);
	if (ret == SPI_OK_SELECT)
	{
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			pg_uuid_t  *pair = palloc(sizeof(pg_uuid_t) * 2);

			memcpy(&pair[0], DatumGetUUIDP(ce_getcol(i, 1, &isnull)), sizeof(pg_uuid_t));
			memcpy(&pair[1], DatumGetUUIDP(ce_getcol(i, 2, &isnull)), sizeof(pg_uuid_t));
			found = lappend(found, pair);
		}
	}
	if (citus)
	{
		List	   *locked = NIL;

		foreach(lc, found)
		{
			pg_uuid_t  *pair = lfirst(lc);
			Datum		args[2] = {UUIDPGetDatum(&pair[0]), UUIDPGetDatum(&pair[1])};

			ce_run_query(&q_lock_overdue, args, NULL, false, 1);
			if (SPI_processed == 1)
				locked = lappend(locked, pair);
		}
		found = locked;
	}
	foreach(lc, found)
	{
		pg_uuid_t  *pair = lfirst(lc);
		ExecRow		ex;

		memset(&ex, 0, sizeof(ex));
		ex.org = pair[0];
		ex.id = pair[1];
		ce_exec_read_header(&ex);
		ex.plan = ce_plan_get(&ex.org, ex.chain_id, ex.version);
		ce_progress_refresh(&ex, NULL);
		ce_fail_execution(&ex, CE_EXEC_TIMEOUT,
					   ce_error_jsonb("execution_timeout", "57014", "execution exceeded its maximum execution time",
								   NULL, NULL, 0), 0);
		/* interrupt steps still running, once this commits */
		ce_signal_running_at_commit(&ex.id);
		n++;
	}
	/* lines waiting for a place that is free (a wake-up lost to a race) */
	n += ce_flow_sweep_in_xact();
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	return n;
}

int
ce_sweep_deadlines(void)
{
	CeXact		xact;
	int			n;

	if (!ce_engine_xact_begin(&xact, NULL))
		return 0;
	n = ce_sweep_deadlines_in_xact();
	ce_engine_xact_commit(&xact);
	return n;
}

void
ce_recover_report(void)
{
	CeXact		xact;
	int			ret;

	if (!ce_engine_xact_begin(&xact, NULL))
		return;
	SPI_connect();
	ret = SPI_execute("SELECT count(*) FROM chainexec.universal_transactions "
					  "WHERE finished_at IS NULL AND status IN ('running', 'waiting', 'compensating', 'pending')",
					  true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		int64		n = DatumGetInt64(ce_getcol(0, 1, &isnull));

		if (n > 0)
			ereport(LOG,
					(errmsg("chainexec: resuming %lld unfinished executions", (long long) n),
					 errdetail("Lines that were running when the server stopped are still ready and run again; their effects were rolled back with their transaction.")));
	}
	SPI_finish();
	ce_engine_xact_commit(&xact);
}

/*
 * An attempt whose executor died: the record of it that the dead executor
 * left (inflight.c).  The line, if it is still due at that attempt (its
 * transaction died with the executor), gets the attempt number, failure
 * type worker_crashed with the count of such attempts in a row, the
 * attempt's start and end, and a back-off (1 s, doubling, at most a
 * minute; none after the last one) so that other work goes first.  A record of an attempt that
 * committed before its executor died changes nothing.  A second executor
 * that died running the same attempt (it claimed the line before the
 * first one's record was swept) counts as one more attempt.  The line
 * fails at its next claim once chainexec.max_crash_attempts is reached
 * (process_line).  Runs its own transaction.
 */
static CeQuery q_crash_line = {
	"SELECT l.step_name, greatest(l.attempt + 1, $4), "
	"  CASE WHEN l.error->>'failure_type' = 'worker_crashed' "
	"       THEN coalesce((l.error->>'crashes')::int, 0) ELSE 0 END + 1, "
	"  l.not_before "
	"FROM chainexec.universal_transaction_lines l "
	"WHERE l.organization_id = $1 AND l.transaction_id = $2 AND l.line_number = $3 "
	"  AND l.status IN ('ready', 'pending') "
	"  AND (l.attempt < $4 OR (l.attempt = $4 AND l.error->>'failure_type' = 'worker_crashed' "
	"                          AND l.started_at IS DISTINCT FROM $5)) "
	"FOR UPDATE SKIP LOCKED",
	5, {UUIDOID, UUIDOID, INT4OID, INT4OID, TIMESTAMPTZOID}};

/* The same line, without a lock: is there a record to make, the line locked? */
static CeQuery q_crash_line_locked = {
	"SELECT 1 FROM chainexec.universal_transaction_lines l "
	"WHERE l.organization_id = $1 AND l.transaction_id = $2 AND l.line_number = $3 "
	"  AND l.status IN ('ready', 'pending') "
	"  AND (l.attempt < $4 OR (l.attempt = $4 AND l.error->>'failure_type' = 'worker_crashed' "
	"                          AND l.started_at IS DISTINCT FROM $5))",
	5, {UUIDOID, UUIDOID, INT4OID, INT4OID, TIMESTAMPTZOID}};

/*
 * The record itself: every value computed by record_crash, none by a
 * function of the row's columns (Citus runs no STABLE function on a
 * column reference in an UPDATE).
 */
static CeQuery q_crash_write = {
	"UPDATE chainexec.universal_transaction_lines SET attempt = $4, error = $5, "
	"  started_at = $6, finished_at = $7, duration_ms = $8, not_before = $9 "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	9, {UUIDOID, UUIDOID, INT4OID, INT4OID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	FLOAT8OID, TIMESTAMPTZOID}};

/*
 * Run q_crash_line and q_crash_write (SPI connected, as the extension's
 * owner).  Returns the count of attempts in a row that ended their
 * executor, 0 when the record changed nothing (the attempt committed or
 * was counted already), or -1 when the line is locked by another
 * transaction (a transition that claimed it, which may count the attempt
 * itself: ce_record_orphan).
 */
static int
record_crash(const pg_uuid_t *org, const pg_uuid_t *execution, int line, int attempt,
			 TimestampTz started_at)
{
	Datum		v[9];
	bool		isnull;
	int			crashes;
	int			new_attempt;
	char	   *step_name;
	TimestampTz not_before;
	TimestampTz now = GetCurrentTimestamp();
	StringInfoData error;
	StringInfoData message;

	v[0] = UUIDPGetDatum((pg_uuid_t *) org);
	v[1] = UUIDPGetDatum((pg_uuid_t *) execution);
	v[2] = Int32GetDatum(line);
	v[3] = Int32GetDatum(attempt);
	v[4] = TimestampTzGetDatum(started_at);
	ce_run_query(&q_crash_line, v, NULL, false, 1);
	if (SPI_processed != 1)
	{
		ce_run_query(&q_crash_line_locked, v, NULL, true, 1);
		return SPI_processed == 1 ? -1 : 0;
	}
	step_name = ce_getcol_text(0, 1);
	new_attempt = DatumGetInt32(ce_getcol(0, 2, &isnull));
	crashes = DatumGetInt32(ce_getcol(0, 3, &isnull));
	not_before = DatumGetTimestampTz(ce_getcol(0, 4, &isnull));
	/* retried after 1, 2, 4 ... seconds (60 at most), until the last attempt */
	if (crashes < ce_max_crash_attempts)
		not_before = Max(not_before, TimestampTzPlusMilliseconds(GetCurrentTransactionStartTimestamp(),
																 (int64) Min(60.0, pow(2.0, crashes - 1)) * 1000));
	initStringInfo(&message);
	appendStringInfo(&message, "executor died running step \"%s\"", step_name);
	initStringInfo(&error);
	appendStringInfoString(&error, "{\"failure_type\": \"worker_crashed\", \"sqlstate\": \"57P02\", \"message\": ");
	escape_json(&error, message.data);
	appendStringInfoString(&error, ", \"detail\": \"The process running the attempt ended before its transaction did: "
						   "it was terminated or killed, ran out of memory, crashed, or the server stopped.\"");
	appendStringInfo(&error, ", \"attempt\": %d, \"crashes\": %d}", new_attempt, crashes);

	v[3] = Int32GetDatum(new_attempt);
	v[4] = JsonbPGetDatum(ce_text_to_jsonb(error.data));
	v[5] = TimestampTzGetDatum(started_at);
	v[6] = TimestampTzGetDatum(now);
	v[7] = Float8GetDatum(Max((double) (now - started_at) / 1000.0, 0.0));
	v[8] = TimestampTzGetDatum(not_before);
	ce_run_query(&q_crash_write, v, NULL, false, 0);
	if (SPI_processed != 1)
		return 0;
	ereport(LOG,
			(errmsg("chainexec: the executor running attempt %d of step \"%s\" of execution %s died",
					attempt, step_name, ce_uuid_to_cstring(execution)),
			 errdetail("It is attempt %d in a row to end its executor; the step fails after %d (chainexec.max_crash_attempts).",
					   crashes, ce_max_crash_attempts)));
	return crashes;
}

bool
ce_record_crash(const pg_uuid_t *org, const pg_uuid_t *execution, int line, int attempt,
				TimestampTz started_at)
{
	CeXact		xact;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;
	int			crashes;

	if (!ce_engine_xact_begin(&xact, NULL))
		return false;
	SPI_connect();
	save_nestlevel = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	crashes = record_crash(org, execution, line, attempt, started_at);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	ce_engine_xact_commit(&xact);
	return crashes < 0;
}

/*
 * The same inside a transition that has claimed (locked) the line, as the
 * extension's owner: an attempt whose executor exited after the line was
 * free again, before the replacement executor swept its record
 * (ce_inflight_take_orphan), is counted before the line runs again.
 * Updates the line's attempt and count; false when there was none.
 */
bool
ce_record_orphan(const pg_uuid_t *org, const pg_uuid_t *execution, LineRow *line)
{
	int			attempt;
	TimestampTz started_at;
	int			crashes;

	if (!ce_inflight_take_orphan(org, execution, line->line_number, line->attempt,
								 &attempt, &started_at))
		return false;
	crashes = record_crash(org, execution, line->line_number, attempt, started_at);
	if (crashes <= 0)
		return false;
	line->attempt = Max(line->attempt + 1, attempt);
	line->crashes = crashes;
	return true;
}

/*
 * Record, in a transaction of its own, an error thrown out of a
 * transition (outside the step's subtransaction) on the line it had
 * claimed, so that an executor does not claim the same line again and
 * again while other work waits: the attempt counts, with failure type
 * internal_error, and the line's retry settings and onFailure apply as
 * for any failure.  With plain (when that too threw), the line and its
 * execution are just marked failed.
 */
void
ce_transition_fail_line(const pg_uuid_t *org, const pg_uuid_t *id, int line_number,
						const char *sqlstate, const char *message, bool plain)
{
	CeXact		xact;
	Oid			save_user;
	int			save_sec;
	int			level;

	if (!ce_engine_xact_begin(&xact, NULL))
		return;
	SPI_connect();
	level = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);

	if (plain)
		ce_fail_line_plain(org, id, line_number,
						   ce_error_jsonb("internal_error", sqlstate, message, NULL, NULL, 0));
	else
	{
		ExecRow		ex;
		LineRow		line;

		memset(&ex, 0, sizeof(ex));
		memset(&line, 0, sizeof(line));
		if (ce_claim_line_number(org, id, line_number, &line))
		{
			CeStep	   *step;
			CeStepRun	run;
			int			attempt;

			line.ran_now = true;
			ex.ran = true;
			ex.org = *org;
			ex.id = *id;
			ce_exec_read_header(&ex);
			ex.plan = ce_plan_get(&ex.org, ex.chain_id, ex.version);
			step = ce_plan_step_by_id(ex.plan, line.step_id);
			if (step == NULL)
				elog(ERROR, "step %d of chain \"%s\" version %d not found",
					 line.step_id, ex.chain_id, ex.version);
			attempt = line.status == CE_LINE_WAITING ? line.attempt : line.attempt + 1;
			memset(&run, 0, sizeof(run));
			run.step = step;
			run.plan = ex.plan;
			run.rowcount = -1;
			ce_step_fail(&run, "internal_error", sqlstate, "%s", message);
			run.hint = pstrdup("The transition of this step failed outside the step; the server log has the error.");
			ce_progress_reset();
			ce_line_failed(&ex, &line, step, &run, attempt);
		}
	}

	AtEOXact_GUC(false, level);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	ce_engine_xact_commit(&xact);
}
