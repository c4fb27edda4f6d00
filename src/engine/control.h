/*-------------------------------------------------------------------------
 *
 * control.h
 *	  The control functions of the SQL API (chain_cancel, chain_pause,
 *	  chain_resume, chain_retry_step, chain_skip_step, chain_rollback,
 *	  chain_rollback_plan, chain_step_complete, chain_step_fail,
 *	  chain_cleanup): the SQL-callable entry points of control.c (and of
 *	  external.c and cleanup.c).
 *
 * Each is declared in the update script chainexec--0.1.0--0.2.0.sql as a
 * LANGUAGE c function of the same name.  control.c builds on the engine
 * (engine_int.h); nothing in the engine includes this file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_CONTROL_H
#define CE_CONTROL_H

#include "postgres.h"
#include "fmgr.h"

extern Datum ce_chain_cancel(PG_FUNCTION_ARGS);
extern Datum ce_chain_pause(PG_FUNCTION_ARGS);
extern Datum ce_chain_resume(PG_FUNCTION_ARGS);
extern Datum ce_chain_retry_step(PG_FUNCTION_ARGS);
extern Datum ce_chain_skip_step(PG_FUNCTION_ARGS);
extern Datum ce_chain_rollback(PG_FUNCTION_ARGS);
extern Datum ce_chain_rollback_plan(PG_FUNCTION_ARGS);
extern Datum ce_chain_step_complete(PG_FUNCTION_ARGS);
extern Datum ce_chain_step_fail(PG_FUNCTION_ARGS);
extern Datum ce_chain_cleanup(PG_FUNCTION_ARGS);

/* chainexec 0.1.0's one entry point for all of them: dispatches by name. */
extern Datum ce_control_call(PG_FUNCTION_ARGS);

#endif							/* CE_CONTROL_H */
