/*-------------------------------------------------------------------------
 *
 * running.c
 *	  Which backend runs which line, in shared memory: published while a
 *	  line runs, so that chain_cancel can interrupt it (shmem.c sends the
 *	  signals at commit), and the step watchdog that ends an executor
 *	  whose step overstays its timeout or a cancel.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "storage/backendid.h"
#include "storage/lwlock.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "executor.h"
#include "shmem.h"
#include "shmem_int.h"

/* ------------------------------------------------------------------------
 * Running lines
 * ------------------------------------------------------------------------ */

/*
 * Publish that this backend runs line `line` of execution `exec`, in the
 * running slot of its backend id (one slot per possible backend, so every
 * backend has one; the search for a free slot is a fallback that a
 * PostgreSQL before 15 may need).
 */
void
ce_running_set(const pg_uuid_t *exec, int line)
{
	int			slot = -1;
	int			i;

	if (ce_shared == NULL)
		return;
	ce_register_exit_callback();

	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	if (my_running_slot >= 0 && ce_running[my_running_slot].pid == MyProcPid)
		slot = my_running_slot;
	else if (MyBackendId > 0 && MyBackendId <= ce_shared->nrunning)
		slot = MyBackendId - 1; /* this backend's own: never taken by another */
	else
	{
		for (i = 0; i < ce_shared->nrunning; i++)
		{
			if (ce_running[i].pid == 0)
			{
				slot = i;
				break;
			}
		}
	}
	if (slot >= 0)
	{
		ce_running[slot].pid = MyProcPid;
		ce_running[slot].line = line;
		memcpy(&ce_running[slot].execution, exec, sizeof(pg_uuid_t));
		ce_running[slot].executor = my_executor_slot >= 0;
		ce_running[slot].in_step = false;
		ce_running[slot].timeout_at = 0;
		ce_running[slot].cancel_at = 0;
		ce_running[slot].cancel_early = false;
	}
	LWLockRelease(ce_shared->lock);

	my_running_slot = slot;
	if (slot < 0)
		elog(DEBUG1, "chainexec: no free slot to publish a running line");
}

/*
 * Withdraw this backend's running line, if any.
 */
void
ce_running_clear(void)
{
	if (ce_shared == NULL || my_running_slot < 0)
		return;

	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	if (ce_running[my_running_slot].pid == MyProcPid)
	{
		ce_running[my_running_slot].pid = 0;
		ce_running[my_running_slot].line = 0;
		memset(&ce_running[my_running_slot].execution, 0, sizeof(pg_uuid_t));
		ce_running[my_running_slot].in_step = false;
		ce_running[my_running_slot].timeout_at = 0;
		ce_running[my_running_slot].cancel_at = 0;
		ce_running[my_running_slot].cancel_early = false;
	}
	LWLockRelease(ce_shared->lock);
	my_running_slot = -1;
}

/* ------------------------------------------------------------------------
 * The step watchdog
 *
 * A step may ignore its timeout or a cancel (a handler that catches
 * query_canceled in a loop, say) and so keep its executor forever.  The
 * executor publishes, in its running slot, when a step's own code starts
 * and ends and when its timeout falls; ce_signal_running notes when a
 * cancel was sent to it.  The launcher terminates (SIGTERM, as
 * pg_terminate_backend) an executor whose step is still running
 * chainexec.step_grace_period after either; the attempt then counts as
 * worker_crashed (inflight.c).  A step without a timeout that nobody
 * cancelled is never ended.  Each step start bumps the slot's step_seq,
 * and a cancel counts only for the step it was sent to.
 * ------------------------------------------------------------------------ */

/*
 * The step's own code starts now; timeout_at is its timeout (0: none).
 * True when a cancel came for the line before (ce_signal_running): it is
 * the step's, which the watchdog then ends after the grace period too.
 */
bool
ce_running_step_begin(TimestampTz timeout_at)
{
	CeRunningSlot *slot;
	bool		wake = false;
	bool		cancelled = false;

	if (ce_shared == NULL || my_running_slot < 0)
		return false;

	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	slot = &ce_running[my_running_slot];
	if (slot->pid == MyProcPid)
	{
		slot->step_seq++;
		slot->in_step = true;
		slot->timeout_at = timeout_at;
		slot->cancel_at = 0;
		if (slot->cancel_early)
		{
			cancelled = true;
			slot->cancel_early = false;
			slot->cancel_at = GetCurrentTimestamp();
			slot->cancel_seq = slot->step_seq;
		}
		if (slot->executor && (timeout_at != 0 || cancelled) &&
			(ce_shared->watchdog_wake_at == 0 ||
			 TimestampTzPlusMilliseconds(cancelled ? slot->cancel_at : timeout_at,
										 ce_step_grace_period) < ce_shared->watchdog_wake_at))
			wake = true;
	}
	if (wake && ce_shared->launcher_latch != NULL)
		SetLatch(ce_shared->launcher_latch);
	LWLockRelease(ce_shared->lock);
	return cancelled;
}

/*
 * The step's own code has ended (returned or failed).
 */
void
ce_running_step_end(void)
{
	CeRunningSlot *slot;

	if (ce_shared == NULL || my_running_slot < 0)
		return;

	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	slot = &ce_running[my_running_slot];
	if (slot->pid == MyProcPid)
	{
		slot->in_step = false;
		slot->timeout_at = 0;
		slot->cancel_at = 0;
	}
	LWLockRelease(ce_shared->lock);
}

/* What the watchdog ended, to log once the lock is released. */
typedef struct WatchdogKill
{
	pid_t		pid;
	int			line;
	pg_uuid_t	execution;
	bool		cancelled;		/* after a cancel, not a timeout */
} WatchdogKill;

/*
 * The launcher's watchdog: terminate the executors whose step overstayed
 * its timeout or a cancel by chainexec.step_grace_period.  Returns how
 * long the launcher may sleep (at most nap ms) before the next one is due,
 * and publishes that time, so that a step starting with an earlier one
 * wakes the launcher.
 */
long
ce_watchdog(long nap)
{
	TimestampTz now;
	TimestampTz wake_at;
	WatchdogKill *kills;
	int			nkills = 0;
	int			i;

	if (ce_shared == NULL)
		return nap;

	kills = palloc(sizeof(WatchdogKill) * Max(ce_shared->nrunning, 1));
	now = GetCurrentTimestamp();
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < ce_shared->nrunning; i++)
	{
		CeRunningSlot *slot = &ce_running[i];
		TimestampTz due = 0;
		bool		cancelled = false;

		if (slot->pid == 0 || !slot->executor || !slot->in_step)
			continue;
		if (slot->timeout_at != 0)
			due = TimestampTzPlusMilliseconds(slot->timeout_at, ce_step_grace_period);
		if (slot->cancel_at != 0 && slot->cancel_seq == slot->step_seq)
		{
			TimestampTz cdue = TimestampTzPlusMilliseconds(slot->cancel_at, ce_step_grace_period);

			if (due == 0 || cdue < due)
			{
				due = cdue;
				cancelled = true;
			}
		}
		if (due == 0)
			continue;
		if (due <= now)
		{
			/* still the step that overstayed: the lock keeps it so */
			(void) kill(slot->pid, SIGTERM);
			kills[nkills].pid = slot->pid;
			kills[nkills].line = slot->line;
			kills[nkills].execution = slot->execution;
			kills[nkills].cancelled = cancelled;
			nkills++;
			slot->in_step = false;
			continue;
		}
		nap = Min(nap, Max(TimestampDifferenceMilliseconds(now, due), 1));
	}
	wake_at = TimestampTzPlusMilliseconds(now, nap);
	ce_shared->watchdog_wake_at = wake_at != 0 ? wake_at : 1;
	LWLockRelease(ce_shared->lock);

	for (i = 0; i < nkills; i++)
		ereport(LOG,
				(errmsg("terminating chainexec executor with PID %d: its step overstayed its %s",
						(int) kills[i].pid, kills[i].cancelled ? "cancel" : "timeout"),
				 errdetail("Line %d of execution %s was still running %d ms after it.",
						   kills[i].line,
						   DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&kills[i].execution))),
						   ce_step_grace_period),
				 errhint("chainexec.step_grace_period sets how long a step may take to stop; the attempt counts as worker_crashed.")));
	pfree(kills);
	return nap;
}

