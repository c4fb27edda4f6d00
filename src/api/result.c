/*-------------------------------------------------------------------------
 *
 * result.c
 *	  chain_result(execution_id uuid) RETURNS jsonb: an execution's result,
 *	  as chain_wait, chain_await and chain_run return it.
 *
 * The result is
 *   {"executionId", "chainId", "status", "finalContext", "outputs", "error",
 *    "metadata": {"startTime", "endTime", "totalDuration" (ms),
 *                 "stepsExecuted", "stepsSkipped", "stepsFailed",
 *                 "retriesAttempted", "chainVersion"}}
 * built by one statement over the execution's header and its lines.  The
 * statement runs as the caller, so row-level security decides what the
 * caller may see: an execution of another organization or role is "does
 * not exist" (42704), as one that was never there.
 *
 * The statement is prepared once per backend, with a generic plan
 * (SPI_keepplan; the plan cache plans it again when what it depends on
 * changes, or when the role it runs as does).  It names every function,
 * operator and type with its schema, so the caller's search_path cannot
 * change what it means; no search_path is set for it either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "chainexec.h"
#include "result.h"

PG_FUNCTION_INFO_V1(ce_chain_result);

#define EQ " OPERATOR(pg_catalog.=) "
#define RESULT_SQL \
	"SELECT pg_catalog.jsonb_build_object(" \
	"  'executionId', t.id, 'chainId', t.chain_id, 'status', t.status," \
	"  'finalContext', t.context, 'outputs', t.output, 'error', t.error," \
	"  'metadata', (SELECT pg_catalog.jsonb_build_object(" \
	"    'startTime', t.started_at, 'endTime', t.finished_at," \
	"    'totalDuration', CASE WHEN t.finished_at IS NOT NULL AND t.started_at IS NOT NULL" \
	"      THEN pg_catalog.round(EXTRACT(epoch FROM t.finished_at OPERATOR(pg_catalog.-) t.started_at)" \
	"                            OPERATOR(pg_catalog.*) 1000::pg_catalog.numeric)::pg_catalog.int8 END," \
	"    'stepsExecuted', pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "ANY ('{step,fallback}'::pg_catalog.text[])" \
	"      AND l.status" EQ "ANY ('{completed,compensated}'::pg_catalog.text[]))," \
	"    'stepsSkipped', pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "'step'::pg_catalog.text" \
	"      AND l.status" EQ "'skipped'::pg_catalog.text)," \
	"    'stepsFailed', pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "ANY ('{step,fallback}'::pg_catalog.text[])" \
	"      AND l.status" EQ "'failed'::pg_catalog.text)," \
	"    'retriesAttempted', COALESCE(pg_catalog.sum(GREATEST(l.attempt OPERATOR(pg_catalog.-) 1, 0))" \
	"      FILTER (WHERE l.line_type OPERATOR(pg_catalog.<>) 'compensation'::pg_catalog.text), 0)," \
	"    'chainVersion', t.chain_version)" \
	"    FROM chainexec.universal_transaction_lines l" \
	"    WHERE l.organization_id" EQ "t.organization_id AND l.transaction_id" EQ "t.id))" \
	" FROM chainexec.universal_transactions t" \
	" WHERE t.organization_id" EQ "chainexec.current_organization() AND t.id" EQ "$1"

static SPIPlanPtr result_plan = NULL;

/*
 * The result of execution `id` (a uuid Datum), SPI connected, copied into
 * the memory context that was current at SPI_connect.  fresh_snapshot:
 * the statement takes a snapshot of its own (chain_wait, which has just
 * seen the execution end); otherwise it runs in the caller's (a STABLE
 * function's) snapshot.  Raises 42704 when the caller may not see the
 * execution, or it does not exist.
 */
Datum
ce_result_in_spi(Datum id, bool fresh_snapshot)
{
	Datum		values[1];
	Datum		result;
	bool		isnull;
	int			rc;

	if (result_plan == NULL)
	{
		Oid			argtypes[1] = {UUIDOID};
		SPIPlanPtr	p = SPI_prepare_cursor(RESULT_SQL, 1, argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (p == NULL)
			elog(ERROR, "chain_result: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "chain_result: SPI_keepplan failed");
		result_plan = p;
	}
	values[0] = id;
	rc = SPI_execute_plan(result_plan, values, NULL, !fresh_snapshot, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chain_result: SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, id))),
				 errhint("It may belong to another organization or role, or have been removed by chain_cleanup().")));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "chain_result: the result of execution %s is null",
			 DatumGetCString(DirectFunctionCall1(uuid_out, id)));
	return SPI_datumTransfer(result, false, -1);
}

/*
 * chainexec.chain_result(execution_id uuid) RETURNS jsonb
 */
Datum
ce_chain_result(PG_FUNCTION_ARGS)
{
	Datum		result;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("execution id must not be null")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chain_result: SPI_connect failed");
	result = ce_result_in_spi(PG_GETARG_DATUM(0), false);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
