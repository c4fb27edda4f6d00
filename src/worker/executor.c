/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  The chainexec executor: a dynamic background worker that runs step
 *	  transitions until nothing is due, then sleeps.
 *
 * The launcher starts chainexec.max_workers executors connected to
 * chainexec.database.  Each one, in a loop:
 *	 - waits, if need be, for the chainexec extension to be installed
 *	   (the first to notice says so once in the log);
 *	 - calls ce_transition() while it finds a due line — each call claims
 *	   one line with SKIP LOCKED, runs it and commits (engine.c); with
 *	   chainexec.group_commit above 1, ce_transition_group() runs several
 *	   transitions of different executions and commits them together
 *	   (group.c);
 *	 - sweeps executions past their deadline, and hands over those whose
 *	   chain_run session is gone (insession.c), at most once per
 *	   chainexec.poll_interval across all executors;
 *	 - sleeps on its latch until the next timer or retry is due
 *	   (ce_next_due), chainexec.poll_interval at most.  A transaction that
 *	   makes work ready sets the latch when it commits
 *	   (ce_wakeup_at_commit), so new work starts at once.
 * The first executor to find the extension also runs the start-up
 * recovery, once per server start: it records the attempts whose executor
 * died (inflight.c) and writes the recovery report (ce_recover_report);
 * the others wait for it before claiming work.
 *
 * Signals: SIGTERM terminates (die), SIGHUP reloads the configuration,
 * SIGINT cancels the running step (StatementCancelHandler), which the
 * engine records as a failure with SQLSTATE 57014.  A cancel that arrives
 * between steps has nothing to cancel and is dropped.
 *
 * An error thrown out of the engine (a bookkeeping failure: its
 * transaction was rolled back and the line stays due) does not end the
 * process: as in autovacuum, a sigsetjmp block logs it, aborts the
 * transaction, cleans up and sleeps a second before going on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <setjmp.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "chainexec.h"
#include "engine.h"
#include "executor.h"
#include "group.h"
#include "inflight.h"
#include "insession.h"
#include "shmem.h"
#include "step.h"

/* Pause after an error thrown out of the engine */
#define CE_ERROR_NAP_MS			1000
/* How often to look again for a missing extension */
#define CE_EXTENSION_RETRY_MS	5000

/*
 * Loop state.  File-level rather than locals of ce_executor_main because
 * they must survive the longjmp of the error recovery.
 */
static MemoryContext ExecutorContext = NULL;
static MemoryContext ExecutorLoopContext = NULL;
static bool extension_ready = false;	/* extension seen installed */
static bool after_error = false;	/* the last iteration threw */
static bool stalled = false;	/* due work seen that we could not claim */
static bool recovering = false;	/* this executor runs the start-up recovery */

/*
 * A line whose transition threw (outside its step), to record as a failed
 * attempt (ce_transition_fail_line); stage 1 when recording it through
 * the engine threw too, then it is just marked failed; after that, given
 * up (logged).
 */
static struct
{
	bool		pending;
	int			stage;
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;
	char		sqlstate[6];
	char	   *message;
} failed_line;

static void executor_recover_from_error(void);
static void executor_note_failed_line(void);
static void executor_record_failed_line(void);
static void executor_absorb_stale_cancel(void);
static void executor_reload_config(void);
static bool executor_extension_installed(void);
static long executor_idle_nap(void);
static void executor_sleep(long nap_ms);

/*
 * Clean up after an error thrown out of the loop, as PostgresMain and
 * autovacuum do: report it, abort every transaction level (the engine
 * may be inside a subtransaction and SPI), release what is left, and
 * return to the executor's memory context.  Runs with interrupts held.
 */
static void
executor_recover_from_error(void)
{
	/* Since not using PG_TRY, reset the error context stack by hand. */
	error_context_stack = NULL;

	HOLD_INTERRUPTS();

	/* Forget a pending cancel or timeout: the failed work is gone. */
	disable_all_timeouts(false);
	QueryCancelPending = false;
	/* an error thrown while cancels were held leaves them held: not for the next step */
	QueryCancelHoldoffCount = 0;

	EmitErrorReport();
	executor_note_failed_line();

	AbortOutOfAnyTransaction();
	ce_step_reset_session();
	LWLockReleaseAll();
	ConditionVariableCancelSleep();
	pgstat_report_wait_end();
	ce_running_clear();
	ce_inflight_end();
	/* a group that threw: its next transitions run alone (group.c) */
	ce_group_after_error(ce_group_commit);
	if (recovering)
	{
		/* the others must not wait for a recovery that failed */
		recovering = false;
		ce_shmem_finish_recovery();
	}

	MemoryContextSwitchTo(ExecutorContext);
	FlushErrorState();
	MemoryContextReset(ExecutorLoopContext);

	RESUME_INTERRUPTS();

	pgstat_report_activity(STATE_IDLE, "idle");
}

/*
 * Remember the line whose transition just threw, with the error, so that
 * the loop records it (executor_record_failed_line).  An error while
 * recording one moves to the next stage instead.
 */
/*
 * Whether an XX000 error is a connection lost mid-query or at commit:
 * Citus reports those with libpq's message, or its own, and SQLSTATE XX000.
 */
static bool
lost_connection_message(const char *msg)
{
	static const char *const lost[] = {
		"server closed the connection unexpectedly", "SSL SYSCALL error", "invalid socket",
		"connection to the remote node", "terminating connection", "could not connect",
		"failure on connection marked as essential", "could not establish any connections",
		"connection establishment for node",
	};

	if (msg == NULL)
		return false;
	for (int i = 0; i < lengthof(lost); i++)
		if (strstr(msg, lost[i]) != NULL)
			return true;
	return false;
}

/* errors outside a step that leave the line for a later claim, in a row */
#define CE_LOCK_CONFLICT_RETRIES	5

/*
 * How many conflicts in a row the line has met (this one included):
 * counted while the conflicts are all the same line's, each within 10 s of
 * the one before.
 */
static int
lock_conflict_again(const pg_uuid_t *org, const pg_uuid_t *id, int line_number)
{
	static pg_uuid_t last_org;
	static pg_uuid_t last_id;
	static int	last_line = 0;
	static int	count = 0;
	static TimestampTz last_at = 0;
	TimestampTz now = GetCurrentTimestamp();
	bool		again = count > 0 && last_line == line_number &&
		memcmp(&last_org, org, sizeof(pg_uuid_t)) == 0 && memcmp(&last_id, id, sizeof(pg_uuid_t)) == 0 &&
		!TimestampDifferenceExceeds(last_at, now, 10000);

	last_at = now;
	if (again)
		return ++count;
	last_org = *org;
	last_id = *id;
	last_line = line_number;
	count = 1;
	return count;
}

/*
 * Errors outside a step that are not the line's doing: a deadlock or lock
 * failure (between grouped commits, or with a session that locks the
 * engine's rows), and a cancel (chain_cancel or chain_rollback of the
 * execution, sent while its transition did its bookkeeping; the execution
 * ends by that call, and the transition's work rolled back).
 */
static bool
not_the_lines_doing(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		sqlerrcode == ERRCODE_QUERY_CANCELED;
}

static void
executor_note_failed_line(void)
{
	MemoryContext old = MemoryContextSwitchTo(ExecutorContext);
	ErrorData  *edata = CopyErrorData();
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;

	if (failed_line.pending)
	{
		if (++failed_line.stage > 1)
		{
			failed_line.pending = false;
			ereport(LOG,
					(errmsg("chainexec executor could not record the failure of line %d of execution %s",
							failed_line.line_number,
							DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&failed_line.id)))),
					 errdetail("The line stays as it is.")));
		}
	}
	else if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION ||
			 edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
			 edata->sqlerrcode == ERRCODE_CRASH_SHUTDOWN ||
			 edata->sqlerrcode == ERRCODE_CANNOT_CONNECT_NOW ||
			 (edata->sqlerrcode == ERRCODE_INTERNAL_ERROR && lost_connection_message(edata->message)))
	{
		/*
		 * Another node went away or restarts (on Citus, the node of a
		 * shard): the transaction rolls back and the line is as it was
		 * before the claim, for a claim again once the node is back.
		 * Not the line's fault: no failure is recorded.
		 */
		if (ce_transition_take_claim(&org, &id, &line_number))
			ereport(LOG,
					(errmsg("chainexec executor leaves line %d of execution %s for a later claim",
							line_number, DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&id)))),
					 errdetail("Its transition lost a connection or a node (SQLSTATE %s).",
							   unpack_sql_state(edata->sqlerrcode))));
	}
	else if (!ce_transition_take_claim(&org, &id, &line_number))
		;						/* no line was claimed: nothing to record */
	else if (not_the_lines_doing(edata->sqlerrcode) &&
			 lock_conflict_again(&org, &id, line_number) <= CE_LOCK_CONFLICT_RETRIES)
	{
		/*
		 * Outside the step (a step's own errors are caught with it): the
		 * transaction rolled back, and the line is claimed again, or not
		 * if the execution was cancelled; its failure is recorded only
		 * when it meets one CE_LOCK_CONFLICT_RETRIES times in a row, so
		 * that it cannot loop.
		 */
		ereport(LOG,
				(errmsg("chainexec executor leaves line %d of execution %s for a later claim",
						line_number, DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&id)))),
				 errdetail("Its transition was interrupted outside the step: %s", edata->message)));
	}
	else
	{
		failed_line.pending = true;
		failed_line.stage = 0;
		failed_line.org = org;
		failed_line.id = id;
		failed_line.line_number = line_number;
		strlcpy(failed_line.sqlstate, unpack_sql_state(edata->sqlerrcode),
				sizeof(failed_line.sqlstate));
		if (failed_line.message)
			pfree(failed_line.message);
		failed_line.message = pstrdup(edata->message ? edata->message : "unknown error");
	}
	FreeErrorData(edata);
	MemoryContextSwitchTo(old);
}

/*
 * Record the failure of a line whose transition threw, so that the line
 * is not claimed again and again while other executions wait.
 */
static void
executor_record_failed_line(void)
{
	if (!failed_line.pending)
		return;
	ce_transition_fail_line(&failed_line.org, &failed_line.id,
							failed_line.line_number, failed_line.sqlstate,
							failed_line.message, failed_line.stage > 0);
	failed_line.pending = false;
}

/*
 * Drop a query cancel that arrived while no step runs: chain_cancel sends
 * it to the backend it saw running a line, which may have finished that
 * line meanwhile.  Thrown now, it would only fail the next claim.
 */
static void
executor_absorb_stale_cancel(void)
{
	if (QueryCancelPending)
	{
		QueryCancelPending = false;
		elog(DEBUG1, "chainexec executor ignores a cancel request that arrived between steps");
	}
}

/*
 * Reload the configuration if SIGHUP asked for it.
 */
static void
executor_reload_config(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * The installed version of extension chainexec (palloc'd in the current
 * memory context), or NULL when it is not installed.  Needs a
 * transaction.
 */
static char *
executor_extension_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("chainexec"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Whether the chainexec extension is installed in this database at the
 * version of this library (CE_EXTVERSION); a transaction of its own.
 * After the server starts with a new library and before ALTER EXTENSION
 * chainexec UPDATE, the schema is the old one: the executors wait rather
 * than fail every query.  Logs once (across executors) each time what
 * they wait for changes.
 */
static bool
executor_extension_installed(void)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *version;
	CeExtensionState state;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	version = executor_extension_version();
	if (version == NULL)
		state = CE_EXTENSION_MISSING;
	else if (strcmp(version, CE_EXTVERSION) != 0)
		state = CE_EXTENSION_OTHER_VERSION;
	else
		state = CE_EXTENSION_READY;
	MemoryContextSwitchTo(caller);
	if (version != NULL)
		version = pstrdup(version);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);

	if (ce_shmem_note_extension(state))
	{
		if (state == CE_EXTENSION_MISSING)
			ereport(LOG,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("extension \"chainexec\" is not installed in database \"%s\"",
							ce_database),
					 errdetail("The chainexec executors wait for it and look again every %d seconds.",
							   CE_EXTENSION_RETRY_MS / 1000),
					 errhint("Run CREATE EXTENSION chainexec in database \"%s\".",
							 ce_database)));
		else
			ereport(LOG,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"chainexec\" in database \"%s\" is at version %s, the library at %s",
							ce_database, version, CE_EXTVERSION),
					 errdetail("The chainexec executors run no step until the extension is updated; they look again every %d seconds.",
							   CE_EXTENSION_RETRY_MS / 1000),
					 errhint("Run ALTER EXTENSION chainexec UPDATE in database \"%s\".",
							 ce_database)));
	}
	return state == CE_EXTENSION_READY;
}

/*
 * Work out how long to sleep once ce_transition found nothing to do;
 * -1 means "look again at once".  Also runs the deadline sweep when it is
 * this executor's turn, or when something is overdue.
 *
 * "Overdue" (ce_next_due in the past although nothing could be claimed)
 * happens when another executor holds the due line or when an execution
 * has passed its deadline.  The first time, sweep and look again; if that
 * did not help, sleep the full poll interval rather than spin — the
 * executor holding the line wakes everybody when it commits.
 */
static long
executor_idle_nap(void)
{
	TimestampTz next;
	TimestampTz now;
	long		nap = ce_poll_interval;

	if (ce_shmem_claim_sweep(ce_poll_interval))
	{
		int			n = ce_sweep_deadlines();

		/* executions whose chain_run session is gone */
		n += ce_sweep_sessions();
		if (n > 0)
		{
			stalled = false;
			return -1;
		}
	}

	next = ce_next_due(NULL);
	if (next == DT_NOEND)
		return nap;

	now = GetCurrentTimestamp();
	if (next <= now)
	{
		if (stalled)
			return nap;
		stalled = true;
		if (ce_sweep_deadlines() > 0)
			stalled = false;
		return -1;
	}
	return Min(nap, Max(TimestampDifferenceMilliseconds(now, next), 1));
}

/*
 * Sleep on the latch for at most nap_ms, marked idle meanwhile.  The
 * latch is reset only after waking, so a wake-up sent while this
 * executor was looking for work is not lost.
 */
static void
executor_sleep(long nap_ms)
{
	int			rc;

	pgstat_report_activity(STATE_IDLE, "idle");
	pgstat_report_stat(true);
	ce_executor_set_idle(true);
	rc = WaitLatch(MyLatch,
				   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
				   nap_ms,
				   PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	ce_executor_set_idle(false);

	/* Woken by a commit: whatever blocked us may be gone. */
	if (rc & WL_LATCH_SET)
		stalled = false;
}

/*
 * Executor entry point (a dynamic background worker started by the
 * launcher).  main_arg is the executor's slot number; bgw_extra holds the
 * database oid.
 */
void
ce_executor_main(Datum main_arg)
{
	int			index = DatumGetInt32(main_arg);
	Oid			dbid;
	sigjmp_buf	local_sigjmp_buf;

	memcpy(&dbid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	ce_step_isolated_session = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, StatementCancelHandler);
	/* a reload signalled while this process started was lost (launcher.c) */
	ConfigReloadPending = true;
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);

	ExecutorContext = AllocSetContextCreate(TopMemoryContext,
											"chainexec executor",
											ALLOCSET_DEFAULT_SIZES);
	ExecutorLoopContext = AllocSetContextCreate(ExecutorContext,
												"chainexec executor loop",
												ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(ExecutorContext);

	ce_executor_attach(index);
	ce_inflight_open(index);

	/*
	 * Error recovery: an ERROR thrown anywhere below comes back here.  (A
	 * FATAL, such as a termination request, still ends the process.)
	 */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		executor_recover_from_error();
		after_error = true;
		extension_ready = false;	/* maybe it was dropped */
	}
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		long		nap;

		executor_absorb_stale_cancel();
		CHECK_FOR_INTERRUPTS();
		executor_reload_config();

		MemoryContextSwitchTo(ExecutorLoopContext);
		MemoryContextReset(ExecutorLoopContext);

		/* Record a line whose transition threw, before anything else. */
		if (failed_line.pending)
			executor_record_failed_line();

		/* Do not fill the log as fast as we can. */
		if (after_error)
		{
			after_error = false;
			executor_sleep(CE_ERROR_NAP_MS);
			continue;
		}

		if (!extension_ready)
		{
			if (!executor_extension_installed())
			{
				executor_sleep(CE_EXTENSION_RETRY_MS);
				continue;
			}
			extension_ready = true;

			/*
			 * Attempts whose executor died: after a server start, the
			 * first executor sweeps every slot while the others wait;
			 * an executor replacing a dead one sweeps its own.
			 */
			if (ce_shmem_claim_recovery())
			{
				recovering = true;
				ce_inflight_recover(true, ce_record_crash);
				ce_recover_report();
				recovering = false;
				ce_shmem_finish_recovery();
			}
			else
			{
				while (!ce_shmem_recovery_finished())
				{
					executor_sleep(10);
					CHECK_FOR_INTERRUPTS();
				}
				ce_inflight_recover(false, ce_record_crash);
			}
		}

		/* chainexec.enabled = off: dispatch nothing until a reload. */
		if (!ce_enabled)
		{
			executor_sleep(ce_poll_interval);
			continue;
		}

		for (;;)
		{
			CeTransitionResult r = ce_transition_group(ce_group_commit,
													   ce_group_commit_window);

			if (r == CE_TR_GONE)
				extension_ready = false;	/* dropped: wait for it */
			if (r != CE_TR_DONE)
				break;
			stalled = false;
			MemoryContextReset(ExecutorLoopContext);
			executor_absorb_stale_cancel();
			CHECK_FOR_INTERRUPTS();
			executor_reload_config();
			if (!ce_enabled)
				break;
		}

		if (!ce_enabled || !extension_ready)
			continue;
		nap = executor_idle_nap();
		if (nap < 0)
			continue;
		executor_sleep(nap);
	}
}
