/*-------------------------------------------------------------------------
 *
 * procedure.h
 *	  What the procedures chain_run and chain_await share: they commit as
 *	  they go, so a CALL must be non-atomic, and they return one INOUT
 *	  jsonb column.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_PROCEDURE_H
#define CE_PROCEDURE_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/jsonb.h"

/*
 * Refuse a call inside a transaction block (25000): name cannot commit
 * there; detail says why it commits, hint what to do instead.
 */
extern void ce_procedure_check_nonatomic(FunctionCallInfo fcinfo, const char *name,
										 const char *detail, const char *hint);

/*
 * The procedure's one-column result row holding result (NULL allowed),
 * copied into callcxt before SPI_finish; the caller is connected to SPI.
 */
extern Datum ce_procedure_result(MemoryContext callcxt, Jsonb *result);

#endif							/* CE_PROCEDURE_H */
