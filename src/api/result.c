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
 * built by two statements in one snapshot: the execution's header, then
 * the count of its lines by type and status, which also builds the object
 * from the header's values (passed as parameters: each statement reads
 * one table by its distribution key, so that Citus routes both to one
 * shard; a subquery over the lines correlated with the header is a plan
 * Citus refuses).  Both run as the caller, so row-level security decides
 * what the caller may see: an execution of another organization or role
 * is "does not exist" (42704), as one that was never there.
 *
 * The statements are prepared once per backend (ce_run_query: kept plans,
 * made again when what they depend on changes, or when the role they run
 * as does).  They name every function, operator and type with its schema,
 * so the caller's search_path cannot change what they mean; no search_path
 * is set for them either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "chainexec.h"
#include "engine.h"
#include "result.h"

PG_FUNCTION_INFO_V1(ce_chain_result);

#define EQ " OPERATOR(pg_catalog.=) "

/* The header, if the caller may see it. */
static CeQuery q_result_header = {
	"SELECT t.organization_id, t.chain_id, t.status, t.context, t.output, t.error,"
	" t.started_at, t.finished_at, t.chain_version"
	" FROM chainexec.universal_transactions t"
	" WHERE t.organization_id" EQ "chainexec.current_organization() AND t.id" EQ "$1",
	1, {UUIDOID}};

/*
 * The result: $1 organization, $2 execution, then the header's chain_id,
 * status, context, output, error, started_at, finished_at, chain_version.
 */
static CeQuery q_result_build = {
	"SELECT pg_catalog.jsonb_build_object("
	"  'executionId', $2, 'chainId', $3, 'status', $4,"
	"  'finalContext', $5, 'outputs', $6, 'error', $7,"
	"  'metadata', pg_catalog.jsonb_build_object("
	"    'startTime', $8, 'endTime', $9,"
	"    'totalDuration', CASE WHEN $9 IS NOT NULL AND $8 IS NOT NULL"
	"      THEN pg_catalog.round(EXTRACT(epoch FROM $9 OPERATOR(pg_catalog.-) $8)"
	"                            OPERATOR(pg_catalog.*) 1000::pg_catalog.numeric)::pg_catalog.int8 END,"
	"    'stepsExecuted', pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "ANY ('{step,fallback}'::pg_catalog.text[])"
	"      AND l.status" EQ "ANY ('{completed,compensated}'::pg_catalog.text[])),"
	"    'stepsSkipped', pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "'step'::pg_catalog.text"
	"      AND l.status" EQ "'skipped'::pg_catalog.text),"
	"    'stepsFailed', pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "ANY ('{step,fallback}'::pg_catalog.text[])"
	"      AND l.status" EQ "'failed'::pg_catalog.text),"
	"    'retriesAttempted', COALESCE(pg_catalog.sum(GREATEST(l.attempt OPERATOR(pg_catalog.-) 1, 0))"
	"      FILTER (WHERE l.line_type OPERATOR(pg_catalog.<>) 'compensation'::pg_catalog.text), 0),"
	"    'chainVersion', $10))"
	" FROM chainexec.universal_transaction_lines l"
	" WHERE l.organization_id" EQ "$1 AND l.transaction_id" EQ "$2",
	10, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, JSONBOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, INT4OID}};

/* Both statements, in the active snapshot. */
static Datum
result_in_snapshot(Datum id)
{
	Datum		v[10];
	char		n[11];
	Datum		result;
	bool		isnull;
	int			i;

	ce_run_query(&q_result_header, &id, NULL, true, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, id))),
				 errhint("It may belong to another organization or role, or have been removed by chain_cleanup().")));
	memset(n, ' ', sizeof(n) - 1);
	n[sizeof(n) - 1] = '\0';
	v[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	v[1] = id;
	for (i = 2; i < 10; i++)
	{
		v[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i, &isnull);
		if (isnull)
			n[i] = 'n';
	}
	ce_run_query(&q_result_build, v, n, true, 1);
	if (SPI_processed != 1)
		elog(ERROR, "chain_result: could not count the lines of execution %s",
			 DatumGetCString(DirectFunctionCall1(uuid_out, id)));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "chain_result: the result of execution %s is null",
			 DatumGetCString(DirectFunctionCall1(uuid_out, id)));
	return SPI_datumTransfer(result, false, -1);
}

/*
 * The result of execution `id` (a uuid Datum), SPI connected, copied into
 * the memory context that was current at SPI_connect.  fresh_snapshot:
 * read in a new snapshot (chain_wait, which has just seen the execution
 * end); otherwise in the active one (a STABLE function's).  Raises 42704
 * when the caller may not see the execution, or it does not exist.
 */
Datum
ce_result_in_spi(Datum id, bool fresh_snapshot)
{
	Datum		result;

	if (!fresh_snapshot)
		return result_in_snapshot(id);
	PushActiveSnapshot(GetTransactionSnapshot());
	result = result_in_snapshot(id);
	PopActiveSnapshot();
	return result;
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
