/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  chainexec's small shared state: executor latches for wake-ups, which
 *	  backend runs which line (for cancellation and status), and a condition
 *	  variable that chain_wait sleeps on.
 *
 * The engine owns this interface (transitions wake executors, signal
 * running steps, mark their running slot); the worker layer implements it
 * (src/worker/shmem.c, running.c, running_list.c), so that nothing in
 * src/engine includes a header of src/worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_SHMEM_H
#define CE_SHMEM_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/uuid.h"

/*
 * Ask that idle executors be woken when the current transaction commits
 * (nothing happens if it aborts).  Cheap to call many times.  A no-op when
 * the library was not preloaded.
 */
extern void ce_wakeup_at_commit(void);

/*
 * Ask that chain_wait callers be woken when the current transaction
 * commits, because an execution ended in it.
 */
extern void ce_finished_at_commit(void);

/* Whether running executors serve database dbid (preloaded, enabled). */
extern bool ce_executors_serve_database(Oid dbid);

/*
 * Publish that this backend is running line `line` of execution `exec`
 * (until ce_running_clear), so that ce_signal_running_at_commit finds the
 * backends running lines of an execution, to interrupt them.
 */
extern void ce_running_set(const pg_uuid_t *exec, int line);
extern void ce_running_clear(void);

/*
 * The running line's step code starts (timeout_at: its timeout, 0 for
 * none) and ends; the launcher's watchdog (ce_watchdog) terminates an
 * executor still in it chainexec.step_grace_period after its timeout or a
 * cancel.  True when a cancel was sent for the line after its claim,
 * before its step began: the step is to be interrupted at once.
 */
extern bool ce_running_step_begin(TimestampTz timeout_at);
extern void ce_running_step_end(void);
extern long ce_watchdog(long nap);

/* Interrupt (SIGINT) the other backends running lines of exec when the
 * current transaction commits. */
extern void ce_signal_running_at_commit(const pg_uuid_t *exec);

/* One line that a backend runs now (a copy of its running slot). */
typedef struct CeRunningLine
{
	pid_t		pid;
	int			line;			/* line_number */
	pg_uuid_t	execution;
	bool		executor;		/* an executor, else a chain_run session */
	bool		in_step;		/* the step's own code runs now */
} CeRunningLine;

/*
 * The lines running now (palloc'd copy in *lines), the number of executor
 * slots (*executors, chainexec.max_workers) and of running executors
 * (*executors_alive).  Returns the number of lines.
 */
extern int	ce_running_lines(CeRunningLine **lines, int *executors, int *executors_alive);

#endif							/* CE_SHMEM_H */
