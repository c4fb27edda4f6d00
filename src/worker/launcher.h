/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The chainexec launcher: a static background worker that waits for
 *	  chainexec.database to exist, starts chainexec.max_workers executors
 *	  and starts a new one whenever one exits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_LAUNCHER_H
#define CE_LAUNCHER_H

#include "postgres.h"

/* Entry point of the launcher (bgw_function_name "ce_launcher_main"). */
extern PGDLLEXPORT void ce_launcher_main(Datum main_arg);

/*
 * Shared state the launcher publishes (shmem.c).  No-ops when the library
 * is not preloaded.
 */
extern void ce_shmem_set_launcher(pid_t pid);	/* 0 when exiting */
extern void ce_shmem_set_database(Oid dbid);	/* InvalidOid: not found */

#endif							/* CE_LAUNCHER_H */
