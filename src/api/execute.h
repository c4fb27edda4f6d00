/*-------------------------------------------------------------------------
 *
 * execute.h
 *	  Creating an execution as the caller (execute.c), for chain_execute
 *	  and chain_run (run.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_EXECUTE_H
#define CE_EXECUTE_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/uuid.h"

/*
 * Create the execution that the call's arguments (chain_id, input,
 * options) describe, as the caller; *org and *id receive its keys.
 * Returns false when an execution with the same idempotencyKey existed
 * (*id is that one).
 */
extern bool ce_start_execution(FunctionCallInfo fcinfo, pg_uuid_t *org, pg_uuid_t *id);

#endif							/* CE_EXECUTE_H */
