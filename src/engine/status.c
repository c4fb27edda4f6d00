/*-------------------------------------------------------------------------
 *
 * status.c
 *	  The status names of executions and lines, and their groups: the one
 *	  table of each that the C code and (through chainexec._status_names)
 *	  the SQL of the extension compare against.  The tables' CHECK
 *	  constraints list the same names; a regression test holds them equal.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "status.h"

/* In enum order. */
const CeStatusInfo ce_exec_statuses[CE_EXEC_NSTATUSES] = {
	[CE_EXEC_PENDING] = {"pending", false, true, false, false},
	[CE_EXEC_RUNNING] = {"running", false, true, false, false},
	[CE_EXEC_WAITING] = {"waiting", false, true, false, false},
	[CE_EXEC_PAUSED] = {"paused", false, false, false, false},
	[CE_EXEC_COMPENSATING] = {"compensating", false, false, false, false},
	[CE_EXEC_COMPLETED] = {"completed", true, false, false, false},
	[CE_EXEC_FAILED] = {"failed", true, false, false, false},
	[CE_EXEC_CANCELLED] = {"cancelled", true, false, false, false},
	[CE_EXEC_TIMEOUT] = {"timeout", true, false, false, false},
	[CE_EXEC_COMPENSATED] = {"compensated", true, false, false, false},
};

const CeStatusInfo ce_line_statuses[CE_LINE_NSTATUSES] = {
	[CE_LINE_PENDING] = {"pending", false, false, true, false},
	[CE_LINE_READY] = {"ready", false, false, true, true},
	[CE_LINE_RUNNING] = {"running", false, false, false, true},
	[CE_LINE_WAITING] = {"waiting", false, false, true, true},
	[CE_LINE_COMPLETED] = {"completed", true, false, false, false},
	[CE_LINE_FAILED] = {"failed", true, false, false, false},
	[CE_LINE_SKIPPED] = {"skipped", true, false, false, false},
	[CE_LINE_CANCELLED] = {"cancelled", true, false, false, false},
	[CE_LINE_COMPENSATED] = {"compensated", true, false, false, false},
};

static int
status_find(const CeStatusInfo *table, int n, const char *name, int len)
{
	int			i;

	for (i = 0; i < n; i++)
		if ((int) strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0)
			return i;
	return -1;
}

static int
status_index(const CeStatusInfo *table, int n, const char *name, const char *what)
{
	int			i = status_find(table, n, name, strlen(name));

	if (i >= 0)
		return i;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("unknown %s status \"%s\"", what, name)));
	return 0;					/* keep the compiler quiet */
}

CeExecStatus
ce_exec_status_from_name(const char *name)
{
	return (CeExecStatus) status_index(ce_exec_statuses, CE_EXEC_NSTATUSES, name, "execution");
}

CeLineStatus
ce_line_status_from_name(const char *name)
{
	return (CeLineStatus) status_index(ce_line_statuses, CE_LINE_NSTATUSES, name, "line");
}

int
ce_exec_status_lookup(const char *name, int len)
{
	return status_find(ce_exec_statuses, CE_EXEC_NSTATUSES, name, len);
}

int
ce_line_status_lookup(const char *name, int len)
{
	return status_find(ce_line_statuses, CE_LINE_NSTATUSES, name, len);
}

/*
 * chainexec._status_names(kind text, grp text DEFAULT 'all') RETURNS text[]:
 * the names of kind ('execution' or 'line') in group grp ('all',
 * 'terminal', and 'live' for executions, 'open' and 'active' for lines),
 * in the order of the table.  Immutable: a query that compares against it
 * is planned with the list as a constant.
 */
PG_FUNCTION_INFO_V1(ce_status_names_sql);
Datum
ce_status_names_sql(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *grp = text_to_cstring(PG_GETARG_TEXT_PP(1));
	const CeStatusInfo *table;
	int			n;
	Datum		names[Max(CE_EXEC_NSTATUSES, CE_LINE_NSTATUSES)];
	int			count = 0;
	int			i;

	if (strcmp(kind, "execution") == 0)
	{
		table = ce_exec_statuses;
		n = CE_EXEC_NSTATUSES;
	}
	else if (strcmp(kind, "line") == 0)
	{
		table = ce_line_statuses;
		n = CE_LINE_NSTATUSES;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown kind of status \"%s\"", kind),
				 errhint("The kinds are \"execution\" and \"line\".")));
	if (strcmp(grp, "all") != 0 && strcmp(grp, "terminal") != 0 &&
		!(table == ce_exec_statuses && strcmp(grp, "live") == 0) &&
		!(table == ce_line_statuses && (strcmp(grp, "open") == 0 || strcmp(grp, "active") == 0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown group \"%s\" of %s statuses", grp, kind),
				 errhint("The groups are \"all\", \"terminal\", \"live\" (executions), \"open\" and \"active\" (lines).")));
	for (i = 0; i < n; i++)
	{
		const CeStatusInfo *s = &table[i];

		if (strcmp(grp, "all") == 0 ||
			(strcmp(grp, "terminal") == 0 && s->terminal) ||
			(strcmp(grp, "live") == 0 && s->live) ||
			(strcmp(grp, "open") == 0 && s->open) ||
			(strcmp(grp, "active") == 0 && s->active))
			names[count++] = CStringGetTextDatum(s->name);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(names, count, TEXTOID, -1, false, TYPALIGN_INT));
}
