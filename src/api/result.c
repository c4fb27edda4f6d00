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
#include "utils/date.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "chainexec.h"
#include "engine.h"
#include "result.h"

PG_FUNCTION_INFO_V1(ce_chain_result);

#define EQ " OPERATOR(pg_catalog.=) "

/* The header, if the caller may see it: the columns CE_RESULT_HEADER_COLS. */
static CeQuery q_result_header = {
	"SELECT " CE_RESULT_HEADER_COLS
	" FROM chainexec.universal_transactions t"
	" WHERE t.organization_id" EQ "chainexec.current_organization() AND t.id" EQ "$1",
	1, {UUIDOID}};

/*
 * The counts of an execution's lines ($1 organization, $2 execution):
 * steps executed, skipped, failed, and the retries attempted.  The result
 * object is built in C from them and the header's values: building it in
 * SQL (jsonb_build_object of twenty arguments, each typed again at every
 * call) cost more than reading the rows.
 */
static CeQuery q_result_lines = {
	"SELECT pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "ANY ('{step,fallback}'::pg_catalog.text[])"
	"  AND l.status" EQ "ANY ('{completed,compensated}'::pg_catalog.text[])),"
	" pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "'step'::pg_catalog.text"
	"  AND l.status" EQ "'skipped'::pg_catalog.text),"
	" pg_catalog.count(*) FILTER (WHERE l.line_type" EQ "ANY ('{step,fallback}'::pg_catalog.text[])"
	"  AND l.status" EQ "'failed'::pg_catalog.text),"
	" COALESCE(pg_catalog.sum(GREATEST(l.attempt OPERATOR(pg_catalog.-) 1, 0))"
	"  FILTER (WHERE l.line_type OPERATOR(pg_catalog.<>) 'compensation'::pg_catalog.text), 0)"
	" FROM chainexec.universal_transaction_lines l"
	" WHERE l.organization_id" EQ "$1 AND l.transaction_id" EQ "$2",
	2, {UUIDOID, UUIDOID}};

static void
push_key(JsonbParseState **ps, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(ps, WJB_KEY, &k);
}

static void
push_null(JsonbParseState **ps)
{
	JsonbValue	v;

	v.type = jbvNull;
	pushJsonbValue(ps, WJB_VALUE, &v);
}

static void
push_string(JsonbParseState **ps, const char *key, char *s)
{
	JsonbValue	v;

	push_key(ps, key);
	if (s == NULL)
	{
		push_null(ps);
		return;
	}
	v.type = jbvString;
	v.val.string.val = s;
	v.val.string.len = strlen(s);
	pushJsonbValue(ps, WJB_VALUE, &v);
}

static void
push_int(JsonbParseState **ps, const char *key, int64 n)
{
	JsonbValue	v;

	push_key(ps, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	pushJsonbValue(ps, WJB_VALUE, &v);
}

/* A jsonb column's value, a container or a scalar, as it is; null: JSON null. */
static void
push_jsonb(JsonbParseState **ps, const char *key, Jsonb *jb)
{
	JsonbValue	v;

	push_key(ps, key);
	if (jb == NULL)
	{
		push_null(ps);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &jb->root;
	v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	pushJsonbValue(ps, WJB_VALUE, &v);
}

/* A timestamp as to_json writes it (ISO 8601); null: JSON null. */
static void
push_time(JsonbParseState **ps, const char *key, bool isnull, TimestampTz t)
{
	push_string(ps, key, isnull ? NULL : JsonEncodeDateTime(NULL, TimestampTzGetDatum(t), TIMESTAMPTZOID, NULL));
}

/*
 * Milliseconds from start to end, rounded half away from zero, as
 * round(extract(epoch FROM end - start) * 1000) gives them.
 */
static int64
duration_ms(TimestampTz start, TimestampTz end)
{
	int64		us = end - start;
	int64		ms = us / 1000;
	int64		rest = us % 1000;

	if (rest >= 500)
		ms++;
	else if (rest <= -500)
		ms--;
	return ms;
}

/* Column c (1-based) of row 0 of SPI_tuptable, or NULL */
static Datum
col(int c, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c, isnull);
}

/*
 * The result from the header row `row` (CE_RESULT_HEADER_COLS from column
 * `first` of desc) and the count of the lines, read in the active
 * snapshot.  Returns the jsonb in the memory context current at SPI_connect.
 */
Datum
ce_result_from_header(HeapTuple row, TupleDesc desc, int first, Datum id)
{
	Datum		h[9];
	bool		hn[9];
	Datum		args[2];
	int64		counts[4];
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	int			i;

	for (i = 0; i < 9; i++)
		h[i] = SPI_getbinval(row, desc, first + i, &hn[i]);
	args[0] = h[0];
	args[1] = id;
	ce_run_query(&q_result_lines, args, NULL, true, 1);
	if (SPI_processed != 1)
		elog(ERROR, "chain_result: could not count the lines of execution %s",
			 DatumGetCString(DirectFunctionCall1(uuid_out, id)));
	for (i = 0; i < 4; i++)
	{
		bool		isnull;
		Datum		d = col(i + 1, &isnull);

		counts[i] = isnull ? 0 : DatumGetInt64(d);
	}

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_string(&ps, "executionId", DatumGetCString(DirectFunctionCall1(uuid_out, id)));
	push_string(&ps, "chainId", hn[1] ? NULL : TextDatumGetCString(h[1]));
	push_string(&ps, "status", hn[2] ? NULL : TextDatumGetCString(h[2]));
	push_jsonb(&ps, "finalContext", hn[3] ? NULL : DatumGetJsonbP(h[3]));
	push_jsonb(&ps, "outputs", hn[4] ? NULL : DatumGetJsonbP(h[4]));
	push_jsonb(&ps, "error", hn[5] ? NULL : DatumGetJsonbP(h[5]));
	push_key(&ps, "metadata");
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_time(&ps, "startTime", hn[6], DatumGetTimestampTz(h[6]));
	push_time(&ps, "endTime", hn[7], DatumGetTimestampTz(h[7]));
	if (hn[6] || hn[7])
	{
		push_key(&ps, "totalDuration");
		push_null(&ps);
	}
	else
		push_int(&ps, "totalDuration", duration_ms(DatumGetTimestampTz(h[6]), DatumGetTimestampTz(h[7])));
	push_int(&ps, "stepsExecuted", counts[0]);
	push_int(&ps, "stepsSkipped", counts[1]);
	push_int(&ps, "stepsFailed", counts[2]);
	push_int(&ps, "retriesAttempted", counts[3]);
	if (hn[8])
	{
		push_key(&ps, "chainVersion");
		push_null(&ps);
	}
	else
		push_int(&ps, "chainVersion", DatumGetInt32(h[8]));
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return SPI_datumTransfer(JsonbPGetDatum(JsonbValueToJsonb(res)), false, -1);
}

/* Both statements, in the active snapshot. */
static Datum
result_in_snapshot(Datum id)
{
	ce_run_query(&q_result_header, &id, NULL, true, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, id))),
				 errhint("It may belong to another organization or role, or have been removed by chain_cleanup().")));
	return ce_result_from_header(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, id);
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
