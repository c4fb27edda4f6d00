/*-------------------------------------------------------------------------
 *
 * chainexec.h
 *	  Settings (GUCs) and module-wide declarations of chainexec.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHAINEXEC_H
#define CHAINEXEC_H

#include "postgres.h"

/* GUCs, defined in chainexec.c */
extern char *ce_database;			/* chainexec.database (postmaster) */
extern int	ce_max_workers;			/* chainexec.max_workers (postmaster) */
extern int	ce_poll_interval;		/* chainexec.poll_interval ms (sighup) */
extern bool ce_enabled;				/* chainexec.enabled (sighup) */
extern char *ce_notify_channel;		/* chainexec.notify_channel (sighup) */
extern bool ce_notify_public;		/* chainexec.notify_public (sighup) */
extern int	ce_max_context_bytes;	/* chainexec.max_context_bytes (userset) */
extern int	ce_max_crash_attempts;	/* chainexec.max_crash_attempts (sighup) */
extern int	ce_max_chain_depth;	/* chainexec.max_chain_depth */
extern int	ce_step_grace_period;	/* chainexec.step_grace_period ms (sighup) */
extern int	ce_group_commit;		/* chainexec.group_commit (sighup) */
extern int	ce_group_commit_window;	/* chainexec.group_commit_window ms (sighup) */
extern char *ce_organization_id;	/* chainexec.organization_id (userset) */

/* True when the library was loaded by shared_preload_libraries. */
extern bool ce_preloaded;

/* Subsystem initialisation, called from _PG_init */
extern void CeShmemInit(void);		/* shmem.c */
extern void CeLauncherRegister(void);	/* launcher.c */

#endif							/* CHAINEXEC_H */
