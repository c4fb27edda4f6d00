/*-------------------------------------------------------------------------
 *
 * insession.h
 *	  Executions driven by CALL chain_run stay in the calling session; the
 *	  workers take them over when the session stops driving them (see
 *	  insession.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_INSESSION_H
#define CE_INSESSION_H

#include "postgres.h"
#include "utils/uuid.h"

/* chain_run: this session drives the execution / no longer does. */
extern void ce_session_drive(const pg_uuid_t *execution);
extern void ce_session_release(const pg_uuid_t *execution);

/* chain_run returns: hand the execution to the workers (current transaction). */
extern void ce_session_hand_over(const pg_uuid_t *org, const pg_uuid_t *execution);

/*
 * Executors: hand over the executions whose driving session is gone;
 * returns how many.  Runs its own transaction.
 */
extern int	ce_sweep_sessions(void);

#endif							/* CE_INSESSION_H */
