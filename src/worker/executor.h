/*-------------------------------------------------------------------------
 *
 * executor.h
 *	  chainexec executors: dynamic background workers, started by the
 *	  launcher, that run step transitions (engine.h) until nothing is due
 *	  and then sleep on their latch until a commit wakes them or the next
 *	  timer is due.
 *
 * Also declares the parts of the shared state (shmem.c) that only the
 * worker side and chain_wait (wait.c) use; shmem.h holds what the rest of
 * chainexec calls.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_EXECUTOR_H
#define CE_EXECUTOR_H

#include "postgres.h"

/*
 * Entry point of an executor (bgw_function_name "ce_executor_main").
 * main_arg is its slot number (0 .. chainexec.max_workers - 1); bgw_extra
 * holds the Oid of the database to connect to.
 */
extern PGDLLEXPORT void ce_executor_main(Datum main_arg);

/* Whether the library was preloaded, so that the shared state exists. */
extern bool ce_shmem_available(void);

/*
 * Whether executors are configured to run database dbid's executions
 * (preloaded, chainexec.max_workers > 0, chainexec.database is dbid),
 * whatever chainexec.enabled says.
 */
extern bool ce_executors_configured_for(Oid dbid);

/* Executor slots: publish this process's latch; idle hint. */
extern void ce_executor_attach(int index);
extern void ce_executor_set_idle(bool idle);

/*
 * Once-only duties shared by all executors: log a missing extension once
 * (returns true when the caller should log), claim the start-up recovery
 * report, claim the periodic deadline sweep.
 */
/* What an executor found of the chainexec extension in its database */
typedef enum CeExtensionState
{
	CE_EXTENSION_READY,			/* installed, at the library's version */
	CE_EXTENSION_MISSING,		/* not installed */
	CE_EXTENSION_OTHER_VERSION	/* installed at another version (not updated yet) */
} CeExtensionState;

extern bool ce_shmem_note_extension(CeExtensionState state);
extern bool ce_shmem_claim_recovery(void);
extern void ce_shmem_finish_recovery(void);
extern bool ce_shmem_recovery_finished(void);
extern bool ce_shmem_claim_sweep(int interval_ms);

/*
 * chain_wait's sleep: the finish generation grows each time a transaction
 * that ended an execution commits; ce_finished_sleep waits until it
 * differs from `seen` (true) or timeout_ms passes (false).
 */
extern uint64 ce_finished_generation(void);
extern bool ce_finished_sleep(uint64 seen, long timeout_ms);

#endif							/* CE_EXECUTOR_H */
