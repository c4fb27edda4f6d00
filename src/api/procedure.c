/*-------------------------------------------------------------------------
 *
 * procedure.c
 *	  What the procedures chain_run and chain_await share (procedure.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"

#include "procedure.h"

void
ce_procedure_check_nonatomic(FunctionCallInfo fcinfo, const char *name,
							 const char *detail, const char *hint)
{
	if (fcinfo->context && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
			 errmsg("%s cannot run inside a transaction block", name),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

Datum
ce_procedure_result(MemoryContext callcxt, Jsonb *result)
{
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	Datum		value;
	bool		isnull = (result == NULL);

	MemoryContextSwitchTo(callcxt);
	if (result)
		result = DatumGetJsonbPCopy(JsonbPGetDatum(result));
	SPI_finish();
	MemoryContextSwitchTo(callcxt);

	tupdesc = CreateTemplateTupleDesc(1);
	TupleDescInitEntry(tupdesc, (AttrNumber) 1, "result", JSONBOID, -1, 0);
	tupdesc = BlessTupleDesc(tupdesc);
	value = result ? JsonbPGetDatum(result) : (Datum) 0;
	tuple = heap_form_tuple(tupdesc, &value, &isnull);
	return HeapTupleGetDatum(tuple);
}
