/*-------------------------------------------------------------------------
 *
 * statuscheck.c
 *	  The CHECK constraints on the status columns of the two execution
 *	  tables, as C functions.
 *
 * PostgreSQL builds a table's CHECK expressions again for every UPDATE
 * statement: it reads each one back from its stored node text
 * (stringToNode) and plans it.  "status IN (... ten words ...)" is stored
 * as an array constant of about 150 bytes, each byte a token, so on the
 * execution tables, which every step transition updates three times, the
 * two status checks cost about a tenth of an executor's time (bench/README
 * "Where the time goes").  A call of one of these functions on the column
 * is stored as a few dozen tokens and needs no planning, so the same rule
 * costs a small part of that.
 *
 * The names are the engine's (src/engine/status.c), the ones SPEC §2
 * lists; test/pgtap/40_status.sql holds them equal.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "status.h"

PG_FUNCTION_INFO_V1(ce_execution_status_valid);
PG_FUNCTION_INFO_V1(ce_line_status_valid);
PG_FUNCTION_INFO_V1(ce_line_type_valid);

/* chainexec._execution_status_valid(text): a status of universal_transactions */
Datum
ce_execution_status_valid(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(ce_exec_status_lookup(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) >= 0);
}

/* chainexec._line_status_valid(text): a status of universal_transaction_lines */
Datum
ce_line_status_valid(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(ce_line_status_lookup(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) >= 0);
}

/*
 * chainexec._line_type_valid(text): a line type of universal_transaction_lines
 * (step, fallback, compensation, iteration; the engine writes them as
 * literals, iterate.c the last).
 */
Datum
ce_line_type_valid(PG_FUNCTION_ARGS)
{
	static const char *const types[] = {"step", "fallback", "compensation", "iteration"};
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(t);
	size_t		len = VARSIZE_ANY_EXHDR(t);

	for (int i = 0; i < lengthof(types); i++)
		if (strlen(types[i]) == len && memcmp(types[i], s, len) == 0)
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}
