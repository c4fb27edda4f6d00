/*-------------------------------------------------------------------------
 *
 * shmem_int.h
 *	  The layout of chainexec's shared state, for shmem.c and running.c
 *	  only (the rest of chainexec goes through shmem.h and executor.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_SHMEM_INT_H
#define CE_SHMEM_INT_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"

/*
 * Running slots: one per possible backend (MaxBackends counts client
 * backends and background workers, executors included), so that every
 * backend running a line — an executor or a session in chain_run — can
 * publish it, and chain_cancel and the watchdog always find it.  Before
 * PostgreSQL 15 MaxBackends is not known when shared memory is sized.
 */
#if CE_HAVE_SHMEM_REQUEST_HOOK
#define CE_RUNNING_SLOTS()	(MaxBackends)
#else
#define CE_RUNNING_SLOTS()	(MaxConnections + max_worker_processes + 64)
#endif

#define CE_TRANCHE_NAME "chainexec"

/* One executor process (indexed by the number the launcher gave it) */
typedef struct CeExecutorSlot
{
	pid_t		pid;			/* 0 when no executor holds the slot */
	Latch	   *latch;			/* its process latch */
	bool		idle;			/* sleeping for lack of work (a hint) */

	/*
	 * The attempt it runs, as in its slot of the in-flight file
	 * (inflight.c): written by the executor alone while it lives; marked
	 * orphaned, under the lock, when it exits mid-attempt (before its
	 * transaction's locks are released); cleared when recorded.
	 */
	bool		attempt_set;
	bool		attempt_orphaned;
	pg_uuid_t	attempt_org;
	pg_uuid_t	attempt_execution;
	int			attempt_line;
	int			attempt_number;
	TimestampTz attempt_started;
} CeExecutorSlot;

/* One backend running one line (a step or compensation) */
typedef struct CeRunningSlot
{
	pid_t		pid;			/* 0 when free */
	int			line;			/* line_number */
	pg_uuid_t	execution;		/* universal_transactions.id */
	bool		executor;		/* pid is an executor (the watchdog's to end) */
	bool		in_step;		/* the step's own code runs now */
	uint64		step_seq;		/* bumped at each step start of this slot */
	TimestampTz timeout_at;		/* the running step's timeout; 0: none */
	TimestampTz cancel_at;		/* when a cancel was sent to it; 0: none */
	uint64		cancel_seq;		/* step_seq of the step it was sent to */
	bool		cancel_early;	/* a cancel came before the line's step began */
} CeRunningSlot;

typedef struct CeSharedState
{
	LWLock	   *lock;			/* protects all but generation/finished_cv */
	pid_t		launcher_pid;	/* 0 when no launcher runs */
	Latch	   *launcher_latch; /* NULL when no launcher runs */
	TimestampTz watchdog_wake_at;	/* when the launcher wakes next; 0: unknown */
	Oid			database;		/* database served, InvalidOid if unknown */
	bool		recovery_done;	/* start-up recovery claimed */
	bool		recovery_finished;	/* ... and done: executors may claim work */
	int			extension_logged;	/* CeExtensionState last said in the log */
	TimestampTz last_sweep;		/* last deadline sweep by any executor */
	pg_atomic_uint64 generation;	/* bumped when an execution ends */
	ConditionVariable finished_cv;	/* broadcast after such a commit */
	pg_atomic_uint32 orphans;	/* executor slots with attempt_orphaned */
	int			nexecutors;
	int			nrunning;
	CeExecutorSlot executors[FLEXIBLE_ARRAY_MEMBER];
	/* followed by nrunning CeRunningSlots, at ce_running_offset() */
} CeSharedState;

extern CeSharedState *ce_shared;
extern CeRunningSlot *ce_running;	/* ce_shared->nrunning slots */
extern int	my_executor_slot;	/* this process's executor slot, or -1 */
extern int	my_running_slot;	/* this backend's running slot, or -1 */

extern void ce_register_exit_callback(void);

#endif							/* CE_SHMEM_INT_H */
