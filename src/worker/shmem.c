/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  chainexec's small shared state: its creation, the executors' latches
 *	  (to wake them when work is committed), wake-ups and interrupts sent
 *	  at commit, and a condition variable that chain_wait sleeps on.  Which
 *	  backend runs which line, and the watchdog, are in running.c.
 *
 * Shared memory holds only what wake-ups and cancellation need; everything
 * durable lives in tables.  The state exists only when the library is
 * preloaded (shared_preload_libraries); every function here is then a
 * no-op or answers "nothing" otherwise, so chain_run keeps working in any
 * session.
 *
 * Wake-ups are sent from a transaction callback after commit, never
 * earlier, so that a woken executor always finds the committed rows: a
 * transaction that makes lines ready calls ce_wakeup_at_commit(), one that
 * ends an execution calls ce_finished_at_commit().
 *
 * Locking: one LWLock (named tranche "chainexec") protects the slots and
 * flags.  The finish generation is an atomic counter and the condition
 * variable has its own spinlock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "chainexec.h"
#include "compat.h"
#include "executor.h"
#include "launcher.h"
#include "shmem.h"
#include "shmem_int.h"

CeSharedState *ce_shared = NULL;
CeRunningSlot *ce_running = NULL;

#if CE_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Per-backend state */
static bool xact_callback_registered = false;
static int	wake_at_commit = 0;	/* lines made ready by this transaction */
static bool finished_at_commit = false;
/* Executions whose running steps to interrupt at commit (TopMemoryContext). */
typedef struct PendingSignal
{
	pg_uuid_t	execution;
	int			level;			/* (sub)transaction nesting level that asked */
} PendingSignal;
static List *signal_at_commit = NIL;
static bool subxact_callback_registered = false;
static bool exit_callback_registered = false;
int			my_executor_slot = -1;
int			my_running_slot = -1;

static Size ce_running_offset(int nexecutors);
static Size ce_shmem_size(void);
static void ce_shmem_request(void);
static void ce_shmem_startup(void);
static void ce_xact_callback(XactEvent event, void *arg);
static void ce_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);
static void ce_register_xact_callback(void);
static void ce_shmem_exit(int code, Datum arg);

/*
 * Offset of the running slots from the start of the shared struct.
 */
static Size
ce_running_offset(int nexecutors)
{
	return MAXALIGN(add_size(offsetof(CeSharedState, executors),
							 mul_size(nexecutors, sizeof(CeExecutorSlot))));
}

/*
 * Size of the shared struct for chainexec.max_workers executors.
 */
static Size
ce_shmem_size(void)
{
	return add_size(ce_running_offset(ce_max_workers),
					mul_size(CE_RUNNING_SLOTS(), sizeof(CeRunningSlot)));
}

/*
 * Reserve the shared memory and the LWLock (postmaster, at start-up).
 */
static void
ce_shmem_request(void)
{
#if CE_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(ce_shmem_size());
	RequestNamedLWLockTranche(CE_TRANCHE_NAME, 1);
}

/*
 * Create or attach the shared struct; initialise it only when it is new
 * (at start-up and after a crash restart).
 */
static void
ce_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ce_shared = ShmemInitStruct("chainexec", ce_shmem_size(), &found);
	if (!found)
	{
		memset(ce_shared, 0, ce_shmem_size());
		ce_shared->lock = &(GetNamedLWLockTranche(CE_TRANCHE_NAME))->lock;
		ce_shared->launcher_pid = 0;
		ce_shared->database = InvalidOid;
		ce_shared->recovery_done = false;
		ce_shared->recovery_finished = false;
		ce_shared->extension_logged = CE_EXTENSION_READY;
		ce_shared->last_sweep = 0;
		pg_atomic_init_u64(&ce_shared->generation, 0);
		pg_atomic_init_u32(&ce_shared->orphans, 0);
		ConditionVariableInit(&ce_shared->finished_cv);
		ce_shared->nexecutors = ce_max_workers;
		ce_shared->nrunning = CE_RUNNING_SLOTS();
	}
	ce_running = (CeRunningSlot *) ((char *) ce_shared +
									ce_running_offset(ce_shared->nexecutors));
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Install the shared memory hooks.  Called from _PG_init, only under
 * shared_preload_libraries.
 */
void
CeShmemInit(void)
{
#if CE_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ce_shmem_request;
#else
	ce_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ce_shmem_startup;
}

/*
 * Whether the shared state exists (the library was preloaded).
 */
bool
ce_shmem_available(void)
{
	return ce_shared != NULL;
}

/* ------------------------------------------------------------------------
 * Wake-ups after commit
 * ------------------------------------------------------------------------ */

/*
 * Wake as many executors as the committed transaction made lines ready,
 * idle ones first.  An executor that commits its own transition goes on to
 * look for work itself, so it counts as one of them; waking more would only
 * make them race for the same line.  Setting a latch is race-free (an
 * executor resets it only after waking) and every woken executor works
 * until nothing is due, so ready work is never left with every executor
 * asleep.  Runs inside commit: must not fail.
 */
static void
ce_wake_executors(int nready)
{
	int			i;
	int			pass;
	int			towake = nready;

	if (my_executor_slot >= 0)
		towake--;
	if (towake <= 0)
		return;

	LWLockAcquire(ce_shared->lock, LW_SHARED);
	for (pass = 0; pass < 2 && towake > 0; pass++)
	{
		for (i = 0; i < ce_shared->nexecutors && towake > 0; i++)
		{
			CeExecutorSlot *slot = &ce_shared->executors[i];

			if (i == my_executor_slot || slot->pid == 0 || slot->latch == NULL)
				continue;
			/* first pass: the idle ones; second: any other */
			if ((pass == 0) != slot->idle)
				continue;
			SetLatch(slot->latch);
			towake--;
		}
	}
	LWLockRelease(ce_shared->lock);
}

/*
 * Tell chain_wait callers that some execution ended: bump the generation,
 * then broadcast.  Runs inside commit: must not fail.
 */
static void
ce_broadcast_finished(void)
{
	pg_atomic_fetch_add_u64(&ce_shared->generation, 1);
	ConditionVariableBroadcast(&ce_shared->finished_cv);
}

/*
 * Interrupt (SIGINT) the backends other than this one that run lines of
 * the executions listed.  Runs inside commit: must not fail.
 */
static void
ce_signal_running(List *executions)
{
	ListCell   *lc;
	int			i;
	bool		wake = false;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz due = TimestampTzPlusMilliseconds(now, ce_step_grace_period);

	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	foreach(lc, executions)
	{
		for (i = 0; i < ce_shared->nrunning; i++)
		{
			CeRunningSlot *slot = &ce_running[i];

			if (slot->pid != 0 && slot->pid != MyProcPid &&
				memcmp(&slot->execution, &((PendingSignal *) lfirst(lc))->execution,
					   sizeof(pg_uuid_t)) == 0)
			{
				(void) kill(slot->pid, SIGINT);
				/* claimed, its step not begun: the step clears a cancel before it */
				if (!slot->in_step)
					slot->cancel_early = true;
				/* the watchdog ends the step if it is still there after the grace */
				if (slot->executor && slot->in_step && slot->cancel_at == 0)
				{
					slot->cancel_at = now;
					slot->cancel_seq = slot->step_seq;
					if (ce_shared->watchdog_wake_at == 0 || due < ce_shared->watchdog_wake_at)
						wake = true;
				}
			}
		}
	}
	if (wake && ce_shared->launcher_latch != NULL)
		SetLatch(ce_shared->launcher_latch);
	LWLockRelease(ce_shared->lock);
}


/*
 * Transaction callback: send the wake-ups this transaction asked for once
 * it has committed; forget them when it aborts or is prepared (a prepared
 * transaction's work is found at the next poll).
 */
static void
ce_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			/* signals first: a line made ready now (a compensation) is not theirs */
			if (signal_at_commit != NIL)
				ce_signal_running(signal_at_commit);
			if (wake_at_commit > 0)
				ce_wake_executors(wake_at_commit);
			if (finished_at_commit)
				ce_broadcast_finished();
			wake_at_commit = 0;
			finished_at_commit = false;
			list_free_deep(signal_at_commit);
			signal_at_commit = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = 0;
			finished_at_commit = false;
			list_free_deep(signal_at_commit);
			signal_at_commit = NIL;
			break;
		default:
			break;
	}
}

/*
 * Register the transaction callback, once per backend.
 */
static void
ce_register_xact_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(ce_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/*
 * Wake the executors when the current transaction commits.
 */
void
ce_wakeup_at_commit(void)
{
	if (ce_shared == NULL)
		return;
	ce_register_xact_callback();
	wake_at_commit++;
}

/*
 * Wake chain_wait callers when the current transaction commits.
 */
void
ce_finished_at_commit(void)
{
	if (ce_shared == NULL)
		return;
	ce_register_xact_callback();
	finished_at_commit = true;
}

/*
 * Interrupt the steps of execution exec that other backends are running,
 * once the current transaction commits (a cancel that rolls back
 * interrupts nothing).  However many are asked for, none is dropped.
 */
void
ce_signal_running_at_commit(const pg_uuid_t *exec)
{
	MemoryContext old;
	PendingSignal *p;

	if (ce_shared == NULL)
		return;
	ce_register_xact_callback();
	if (!subxact_callback_registered)
	{
		RegisterSubXactCallback(ce_subxact_callback, NULL);
		subxact_callback_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	p = palloc(sizeof(PendingSignal));
	memcpy(&p->execution, exec, sizeof(pg_uuid_t));
	p->level = GetCurrentTransactionNestLevel();
	signal_at_commit = lappend(signal_at_commit, p);
	MemoryContextSwitchTo(old);
}

/*
 * A subtransaction that rolls back (a savepoint, a step that failed) takes
 * its signals with it; one that commits hands them to its parent.
 */
static void
ce_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	foreach(lc, signal_at_commit)
	{
		PendingSignal *p = lfirst(lc);

		if (p->level < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			p->level = level - 1;
		else
		{
			signal_at_commit = foreach_delete_current(signal_at_commit, lc);
			pfree(p);
		}
	}
}

/* ------------------------------------------------------------------------
 * Who serves which database
 * ------------------------------------------------------------------------ */

/*
 * Whether executors run the executions of database dbid at all: the
 * library is preloaded, there are executors, and chainexec.database is
 * that database.  The launcher publishes the oid once it has found the
 * database; before that, the name is looked up (needs a transaction).
 */
bool
ce_executors_configured_for(Oid dbid)
{
	Oid			served;

	if (ce_shared == NULL || ce_max_workers <= 0 || !OidIsValid(dbid))
		return false;

	LWLockAcquire(ce_shared->lock, LW_SHARED);
	served = ce_shared->database;
	LWLockRelease(ce_shared->lock);

	if (!OidIsValid(served) && ce_database != NULL && IsTransactionState())
		served = get_database_oid(ce_database, true);
	return OidIsValid(served) && served == dbid;
}

/*
 * Whether running executors serve database dbid: configured for it, and
 * dispatch is enabled (chainexec.enabled).
 */
bool
ce_executors_serve_database(Oid dbid)
{
	return ce_enabled && ce_executors_configured_for(dbid);
}

/* ------------------------------------------------------------------------
 * Launcher and executor registration
 * ------------------------------------------------------------------------ */

/*
 * Record the running launcher (pid 0: it is exiting).
 */
void
ce_shmem_set_launcher(pid_t pid)
{
	if (ce_shared == NULL)
		return;
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	ce_shared->launcher_pid = pid;
	ce_shared->launcher_latch = pid != 0 ? MyLatch : NULL;
	ce_shared->watchdog_wake_at = 0;
	if (pid == 0)
		ce_shared->database = InvalidOid;
	LWLockRelease(ce_shared->lock);
}

/*
 * Publish the oid of the database the executors serve (InvalidOid: not
 * found).
 */
void
ce_shmem_set_database(Oid dbid)
{
	if (ce_shared == NULL)
		return;
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	ce_shared->database = dbid;
	LWLockRelease(ce_shared->lock);
}

/*
 * Take executor slot `index` for this process and publish its latch, so
 * that commits wake it.  The slot is released at process exit.
 */
void
ce_executor_attach(int index)
{
	CeExecutorSlot *slot;

	if (ce_shared == NULL || index < 0 || index >= ce_shared->nexecutors)
		elog(ERROR, "chainexec executor slot %d out of range", index);

	ce_register_exit_callback();
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	slot = &ce_shared->executors[index];
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	slot->idle = false;
	LWLockRelease(ce_shared->lock);
	my_executor_slot = index;
}

/*
 * Mark this executor idle (sleeping) or busy.  A hint only, written
 * without the lock.
 */
void
ce_executor_set_idle(bool idle)
{
	if (ce_shared != NULL && my_executor_slot >= 0)
		ce_shared->executors[my_executor_slot].idle = idle;
}

/*
 * Report whether the chainexec extension is installed in the served
 * database; returns true when the caller should log that it is missing
 * (the first executor to notice, once until it appears again).
 */
bool
ce_shmem_note_extension(CeExtensionState state)
{
	bool		log_it = false;

	if (ce_shared == NULL)
		return state != CE_EXTENSION_READY;
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	if (ce_shared->extension_logged != (int) state)
	{
		ce_shared->extension_logged = (int) state;
		log_it = state != CE_EXTENSION_READY;
	}
	LWLockRelease(ce_shared->lock);
	return log_it;
}

/*
 * Claim the start-up recovery: true for the first caller after the
 * shared memory was (re)initialised, i.e. once per server start or crash
 * restart.
 */
bool
ce_shmem_claim_recovery(void)
{
	bool		mine = false;

	if (ce_shared == NULL)
		return false;
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	if (!ce_shared->recovery_done)
	{
		ce_shared->recovery_done = true;
		mine = true;
	}
	LWLockRelease(ce_shared->lock);
	return mine;
}

/*
 * The start-up recovery is over (whoever claimed it calls this, even when
 * it failed); ce_shmem_recovery_finished() tells the others they may claim
 * work.  Without shared memory there is nothing to wait for.
 */
void
ce_shmem_finish_recovery(void)
{
	if (ce_shared == NULL)
		return;
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	ce_shared->recovery_finished = true;
	LWLockRelease(ce_shared->lock);
}

bool
ce_shmem_recovery_finished(void)
{
	bool		done;

	if (ce_shared == NULL)
		return true;
	LWLockAcquire(ce_shared->lock, LW_SHARED);
	done = ce_shared->recovery_finished;
	LWLockRelease(ce_shared->lock);
	return done;
}

/*
 * Claim the periodic deadline sweep: true when no executor swept in the
 * last interval_ms milliseconds (and records that the caller does now).
 */
bool
ce_shmem_claim_sweep(int interval_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		mine = false;

	if (ce_shared == NULL)
		return false;
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	if (ce_shared->last_sweep == 0 ||
		TimestampDifferenceExceeds(ce_shared->last_sweep, now, interval_ms))
	{
		ce_shared->last_sweep = now;
		mine = true;
	}
	LWLockRelease(ce_shared->lock);
	return mine;
}

/* ------------------------------------------------------------------------
 * Finished executions, for chain_wait
 * ------------------------------------------------------------------------ */

/*
 * The current finish generation; it grows each time a transaction that
 * ended an execution commits.
 */
uint64
ce_finished_generation(void)
{
	if (ce_shared == NULL)
		return 0;
	return pg_atomic_read_u64(&ce_shared->generation);
}

/*
 * Sleep until the finish generation differs from `seen` or timeout_ms
 * milliseconds pass.  Returns true if the generation changed.
 * Interruptible (query cancel, termination).  Without shared memory,
 * just sleeps on the process latch.
 */
bool
ce_finished_sleep(uint64 seen, long timeout_ms)
{
	TimestampTz start = GetCurrentTimestamp();
	bool		changed = false;

	if (ce_shared == NULL)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		return false;
	}

	ConditionVariablePrepareToSleep(&ce_shared->finished_cv);
	for (;;)
	{
		long		remaining;

		if (pg_atomic_read_u64(&ce_shared->generation) != seen)
		{
			changed = true;
			break;
		}
		remaining = timeout_ms -
			TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		if (remaining <= 0)
			break;
		if (ConditionVariableTimedSleep(&ce_shared->finished_cv, remaining,
										PG_WAIT_EXTENSION))
		{
			changed = pg_atomic_read_u64(&ce_shared->generation) != seen;
			break;
		}
	}
	ConditionVariableCancelSleep();
	return changed;
}

/* ------------------------------------------------------------------------
 * Process exit
 * ------------------------------------------------------------------------ */

/*
 * Register ce_shmem_exit, once per backend.
 */
void
ce_register_exit_callback(void)
{
	if (!exit_callback_registered)
	{
		before_shmem_exit(ce_shmem_exit, (Datum) 0);
		exit_callback_registered = true;
	}
}

/*
 * At process exit, release this backend's executor and running slots.
 */
static void
ce_shmem_exit(int code, Datum arg)
{
	int			i;

	if (ce_shared == NULL)
		return;

	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	if (my_executor_slot >= 0 &&
		ce_shared->executors[my_executor_slot].pid == MyProcPid)
	{
		CeExecutorSlot *slot = &ce_shared->executors[my_executor_slot];

		/*
		 * Exiting mid-attempt (a FATAL, such as a termination request, in
		 * a step): the transaction is still open, so the line is still
		 * locked; whoever claims it next finds the attempt here before the
		 * replacement executor sweeps its record (inflight.c).
		 */
		if (slot->attempt_set && !slot->attempt_orphaned)
		{
			slot->attempt_orphaned = true;
			pg_atomic_fetch_add_u32(&ce_shared->orphans, 1);
		}
		ce_shared->executors[my_executor_slot].pid = 0;
		ce_shared->executors[my_executor_slot].latch = NULL;
		ce_shared->executors[my_executor_slot].idle = false;
	}
	for (i = 0; i < ce_shared->nrunning; i++)
	{
		if (ce_running[i].pid == MyProcPid)
			ce_running[i].pid = 0;
	}
	LWLockRelease(ce_shared->lock);
	my_executor_slot = -1;
	my_running_slot = -1;
}
