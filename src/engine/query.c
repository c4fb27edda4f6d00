/*-------------------------------------------------------------------------
 *
 * query.c
 *	  Running the engine's bookkeeping queries (CeQuery): each prepared
 *	  once per backend with a generic plan made under fixed settings,
 *	  prepared again when the tables were distributed by Citus (with the
 *	  clock readings as parameters, as Citus needs), and the readers of the
 *	  columns of their results.
 *
 *	  Runs in the caller's transaction, SPI connected; the user and the
 *	  search_path are the caller's to set (store.c, ce_bookkeeping_begin).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/spi_priv.h"
#include "lib/stringinfo.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/plancache.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "engine_int.h"

/* ---------------------------------------------------------------------
 * Small SPI helpers
 * --------------------------------------------------------------------- */

/*
 * Whether every statement of a prepared query has a valid generic plan (a
 * plan made under ce_run_query's settings that an execution will reuse);
 * sets *generation to the sum of the statements' plan generations, which
 * changes when a plan is made again.
 */
static bool
plans_ready(SPIPlanPtr plan, uint64 *generation)
{
	ListCell   *lc;

	*generation = 0;
	foreach(lc, plan->plancache_list)
	{
		CachedPlanSource *ps = (CachedPlanSource *) lfirst(lc);

		if (!ps->is_valid || ps->gplan == NULL || !ps->gplan->is_valid)
			return false;
		*generation += (uint64) ps->generation;
	}
	return true;
}


/*
 * Citus mode: the text of q with its clock readings bound as parameters.
 *
 * Citus refuses, in an INSERT ... ON CONFLICT or UPDATE of a distributed
 * table, any VOLATILE function (clock_timestamp()) and any non-IMMUTABLE
 * one inside CASE or COALESCE (now() in "coalesce(started_at, now())"),
 * even when the statement goes to one shard.  So each "clock_timestamp()"
 * of the text becomes $(nargs+1) and each "now()" $(nargs+2), both
 * timestamptz, which ce_run_query binds to the clock and to the start of
 * the transaction: the values those functions would return, read once per
 * statement on the node that runs it.  Sets *extra to the number of
 * parameters added (0 or 2).
 */
static char *
citus_query_text(const CeQuery *q, int *extra)
{
	static const struct
	{
		const char *fn;
		int			arg;
	}			clocks[] = {
		{"pg_catalog.clock_timestamp()", 1}, {"clock_timestamp()", 1},
		{"pg_catalog.now()", 2}, {"now()", 2},
	};
	StringInfoData buf;
	const char *p = q->sql;

	*extra = 0;
	initStringInfo(&buf);
	while (*p)
	{
		bool		matched = false;

		/* only at the start of a name */
		if (p == q->sql || !(isalnum((unsigned char) p[-1]) || p[-1] == '_' || p[-1] == '.'))
		{
			for (int i = 0; i < lengthof(clocks); i++)
			{
				size_t		len = strlen(clocks[i].fn);

				if (strncmp(p, clocks[i].fn, len) == 0)
				{
					appendStringInfo(&buf, "$%d::timestamptz", q->nargs + clocks[i].arg);
					*extra = 2;
					p += len;
					matched = true;
					break;
				}
			}
		}
		if (!matched)
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * Execute a query prepared once per backend.
 *
 * Every query here finds its rows through a key or a partial index.  A
 * kept plan is made again only when a table's statistics change, so a
 * plan made while the tables were nearly empty (a sequential scan is
 * cheapest then) would go on scanning them after they have grown — in a
 * burst of executions after a quiet period, every transition would read
 * every line until autovacuum analyzes the table.  So the plans are made
 * with enable_seqscan off.
 *
 * The setting matters only when a plan is made, and saving and restoring
 * a setting walks every GUC (AtEOXact_GUC): a few percent of a transition
 * when done for each of its queries.  So it is set only when the query has
 * no valid plan yet; if an invalidation made the plan again meanwhile
 * (it arrives while the execution takes its locks), the query is prepared
 * again before its next use, under the setting.
 *
 * On Citus (ce_citus_mode) the query is prepared as Citus can run it:
 * its clock readings as parameters (citus_query_text), and with the plan
 * cache's choice of plan rather than a generic one.
 */
int
ce_run_query(CeQuery *q, Datum *values, const char *nulls, bool read_only, long count)
{
	int			ret;
	int			level = -1;
	uint64		generation = 0;
	uint64		after;
	Datum		cvalues[lengthof(q->types) + 2];
	char		cnulls[lengthof(q->types) + 2];

	/* a held-back write goes first, so that no query reads around it */
	ce_store_before_query(q);
	if (q->plan != NULL && !plans_ready(q->plan, &generation) && q->citus != ce_citus_mode())
	{
		/* the tables were distributed (or undistributed) since: prepare again */
		SPI_freeplan(q->plan);
		q->plan = NULL;
	}
	if (q->plan == NULL)
	{
		/*
		 * A generic plan: these queries' plans do not depend on their
		 * parameters, and a custom plan for each call (as the plan cache
		 * chooses for "= ANY($n)") costs more than the query.
		 *
		 * Not on Citus: Citus plans a query that it pulls through the
		 * coordinator (INSERT ... SELECT FROM unnest($n)) only with the
		 * parameters' values, and refuses a generic plan of it ("could
		 * not create distributed plan").  There the plan cache chooses:
		 * Citus makes the generic plan of such a query cost the most, so
		 * it gets a custom plan, and a router query keeps its generic plan
		 * (the shard is found at execution).
		 */
		bool		citus = ce_citus_mode();
		SPIPlanPtr	p;

		if (citus)
		{
			Oid			types[lengthof(q->types) + 2];
			char	   *sql = citus_query_text(q, &q->extra);

			memcpy(types, q->types, sizeof(Oid) * q->nargs);
			types[q->nargs] = TIMESTAMPTZOID;
			types[q->nargs + 1] = TIMESTAMPTZOID;
			p = SPI_prepare_cursor(sql, q->nargs + q->extra, types, 0);
			pfree(sql);
		}
		else
		{
			q->extra = 0;
			p = SPI_prepare_cursor(q->sql, q->nargs, q->types, CURSOR_OPT_GENERIC_PLAN);
		}
		if (p == NULL)
			elog(ERROR, "could not prepare chainexec query: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		q->plan = p;
		q->citus = citus;
	}
	if (q->extra > 0)
	{
		if (q->nargs > 0)
			memcpy(cvalues, values, sizeof(Datum) * q->nargs);
		memset(cnulls, ' ', sizeof(cnulls));
		if (nulls != NULL && q->nargs > 0)
			memcpy(cnulls, nulls, q->nargs);
		cvalues[q->nargs] = TimestampTzGetDatum(GetCurrentTimestamp());
		cvalues[q->nargs + 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		values = cvalues;
		nulls = cnulls;
	}
	if (!plans_ready(q->plan, &generation))
	{
		level = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	ret = SPI_execute_plan(q->plan, values, nulls, read_only, count);
	if (level >= 0)
		AtEOXact_GUC(true, level);
	else if (!plans_ready(q->plan, &after) || after != generation)
	{
		/* made again without the setting: make it again with it next time */
		SPI_freeplan(q->plan);
		q->plan = NULL;
	}
	if (ret < 0)
		elog(ERROR, "chainexec query failed: %s", SPI_result_code_string(ret));
	return ret;
}

Datum
ce_getcol(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

char *
ce_getcol_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

Jsonb *
ce_getcol_jsonb(int row, int col)
{
	bool		isnull;
	Datum		d = ce_getcol(row, col, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

Datum
ce_jsonb_datum_or_null(Jsonb *j, char *nullflag)
{
	*nullflag = j ? ' ' : 'n';
	return j ? JsonbPGetDatum(j) : (Datum) 0;
}

