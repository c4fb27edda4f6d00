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
 * The words are the ones SPEC §2 lists (the CHECKs of chainexec--0.1.0.sql).
 * A status added to the state machine is added here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(ce_execution_status_valid);
PG_FUNCTION_INFO_V1(ce_line_status_valid);

static const char *const execution_statuses[] = {
	"pending", "running", "paused", "waiting", "completed", "failed",
	"cancelled", "timeout", "compensating", "compensated", NULL
};

static const char *const line_statuses[] = {
	"pending", "ready", "running", "waiting", "completed", "failed",
	"skipped", "cancelled", "compensated", NULL
};

/* Whether the text argument is one of words. */
static bool
is_one_of(text *t, const char *const *words)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	int			i;

	for (i = 0; words[i] != NULL; i++)
		if ((int) strlen(words[i]) == len && memcmp(words[i], s, len) == 0)
			return true;
	return false;
}

/* chainexec._execution_status_valid(text): a status of universal_transactions */
Datum
ce_execution_status_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(is_one_of(PG_GETARG_TEXT_PP(0), execution_statuses));
}

/* chainexec._line_status_valid(text): a status of universal_transaction_lines */
Datum
ce_line_status_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(is_one_of(PG_GETARG_TEXT_PP(0), line_statuses));
}
