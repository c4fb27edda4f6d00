/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The store of the state machine: the bookkeeping queries on an
 *	  execution's header (universal_transactions) and its lines
 *	  (universal_transaction_lines), prepared once per backend, and the
 *	  functions that read and write those rows; the fixed search_path and
 *	  the extension owner under which they run.
 *
 *	  Everything here runs in the caller's transaction, SPI connected, as
 *	  the extension owner (ce_bookkeeping_begin).  Nothing here decides:
 *	  the decisions are in transition.c and advance.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>
#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/spi_priv.h"

#include "pgstat.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "utils/plancache.h"
#include "utils/timestamp.h"

#include "plancache.h"
#include "engine.h"
#include "engine_int.h"
#include "compose.h"

static Oid	ext_owner = InvalidOid;

/*
 * Start a GUC nesting level with a fixed search_path, before running as the
 * extension owner: no function or operator of the caller's search_path (or
 * of a step's) may stand in for a catalog one in the bookkeeping queries.
 * End it with AtEOXact_GUC(false, level), which also drops any setting
 * changed meanwhile.
 */
int
ce_fixed_search_path(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, chainexec, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

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
 * A step's completion held back (ce_line_complete): the line's new values,
 * the execution's new context (null: unchanged), written together with the
 * promotion of the next lines (ce_lines_promote) in one statement,
 * q_write_step.  Every other query of the store writes it first (store_flush),
 * so nothing reads around it; ce_exec_lines reads around it by giving the
 * line its new status.  Held only inside a transition (ce_store_hold_begin
 * .. ce_store_hold_end), never past it.
 */
static struct
{
	bool		valid;
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;
	CeLineStatus status;
	Datum		v[13];
	char		n[14];
}			pending;
static bool hold_writes = false;
static CeQuery q_lines;
static CeQuery q_write_step;
static void store_flush(void);

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
	if (pending.valid && q != &q_lines && q != &q_write_step)
		store_flush();
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

/* The extension's owner, who does the bookkeeping (cached; SPI connected). */
Oid
ce_extension_owner(void)
{
	if (!OidIsValid(ext_owner))
	{
		int			ret = SPI_execute("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'chainexec'",
									  true, 1);
		bool		isnull;

		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("extension \"chainexec\" is not installed in this database")));
		ext_owner = DatumGetObjectId(ce_getcol(0, 1, &isnull));
	}
	return ext_owner;
}
/* ---------------------------------------------------------------------
 * Queries
 * --------------------------------------------------------------------- */

static CeQuery q_header = {
	"SELECT " HEADER_COLS " FROM chainexec.universal_transactions WHERE organization_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}};

static CeQuery q_lock_header = {
	"SELECT status, context FROM chainexec.universal_transactions "
	"WHERE organization_id = $1 AND id = $2 FOR NO KEY UPDATE",
	2, {UUIDOID, UUIDOID}};

static CeQuery q_set_context = {
	"UPDATE chainexec.universal_transactions SET context = $3 WHERE organization_id = $1 AND id = $2",
	3, {UUIDOID, UUIDOID, JSONBOID}};

static CeQuery q_set_status = {
	"UPDATE chainexec.universal_transactions SET status = $3, started_at = coalesce(started_at, now()) "
	"WHERE organization_id = $1 AND id = $2",
	3, {UUIDOID, UUIDOID, TEXTOID}};

static CeQuery q_finish_exec = {
	"UPDATE chainexec.universal_transactions SET status = $3, output = $4, error = coalesce($5, error), "
	"finished_at = clock_timestamp() WHERE organization_id = $1 AND id = $2",
	5, {UUIDOID, UUIDOID, TEXTOID, JSONBOID, JSONBOID}};

static CeQuery q_exec_error = {
	"UPDATE chainexec.universal_transactions SET status = $3, error = coalesce($4, error) "
	"WHERE organization_id = $1 AND id = $2",
	4, {UUIDOID, UUIDOID, TEXTOID, JSONBOID}};

/*
 * A line's update: status $4, attempt $5, not_before $6 (null: keep), input
 * $7, output $8, error $9, started $10 (bool), finished $11 (bool).
 */
#define UPDATE_LINE_SQL \
	"UPDATE chainexec.universal_transaction_lines SET status = $4, attempt = $5, " \
	"not_before = coalesce($6, not_before), input = coalesce($7, input), output = $8, error = $9, " \
	"started_at = CASE WHEN $10 THEN now() ELSE started_at END, " \
	"first_started_at = coalesce(first_started_at, CASE WHEN $10 THEN now() END), " \
	"finished_at = CASE WHEN $11 THEN clock_timestamp() ELSE NULL END, " \
	"duration_ms = CASE WHEN $11 THEN extract(epoch FROM clock_timestamp() - " \
	"CASE WHEN $10 THEN now() ELSE coalesce(started_at, clock_timestamp()) END) * 1000 ELSE NULL END " \
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3"
#define UPDATE_LINE_TYPES UUIDOID, UUIDOID, INT4OID, TEXTOID, INT4OID, TIMESTAMPTZOID, JSONBOID, JSONBOID, \
	JSONBOID, BOOLOID, BOOLOID

/* Make the pending lines of array param ready (due time kept, at least now); never
 * iterations (iterate.c), so the plan reads the steps index, not every iteration. */
#define PROMOTE_SQL(param) \
	"UPDATE chainexec.universal_transaction_lines SET status = 'ready', not_before = greatest(not_before, now()) " \
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = ANY(" param ") AND status = 'pending' " \
	"AND line_type <> 'iteration'"

static CeQuery q_update_line = {UPDATE_LINE_SQL, 11, {UPDATE_LINE_TYPES}};

static CeQuery q_lines = {
	"SELECT line_number, line_type, step_id, status, coalesce(parent_line, 0), "
	"CASE WHEN status = 'waiting' AND line_type = 'step' THEN output->'iterations' END "
	"FROM chainexec.universal_transaction_lines WHERE organization_id = $1 AND transaction_id = $2 "
	"AND line_type <> 'iteration' ORDER BY line_number",
	2, {UUIDOID, UUIDOID}};

static CeQuery q_promote = {PROMOTE_SQL("$3"), 3, {UUIDOID, UUIDOID, INT4ARRAYOID}};

/*
 * A step's line completed, the execution's context ($12, null: unchanged)
 * and the next lines made ready ($13): the writes of a transition in one
 * statement (see pending).  The three touch different rows.
 */
static CeQuery q_write_step = {
	"WITH line AS (" UPDATE_LINE_SQL " RETURNING 1), "
	"header AS (UPDATE chainexec.universal_transactions SET context = $12 "
	"WHERE organization_id = $1 AND id = $2 AND $12 IS NOT NULL RETURNING 1) "
	PROMOTE_SQL("$13"),
	13, {UPDATE_LINE_TYPES, JSONBOID, INT4ARRAYOID}};

/* Lines of other transitions change only with SKIP LOCKED. */
static CeQuery q_close_lines = {
	"UPDATE chainexec.universal_transaction_lines l SET status = $4, finished_at = clock_timestamp(), "
	"error = coalesce($5, l.error) "
	"FROM (SELECT line_number FROM chainexec.universal_transaction_lines "
	"      WHERE organization_id = $1 AND transaction_id = $2 AND line_number = ANY($3) "
	"        AND status IN ('pending', 'ready', 'waiting') FOR UPDATE SKIP LOCKED) s "
	"WHERE l.organization_id = $1 AND l.transaction_id = $2 AND l.line_number = s.line_number",
	5, {UUIDOID, UUIDOID, INT4ARRAYOID, TEXTOID, JSONBOID}};

static CeQuery q_insert_line = {
	"INSERT INTO chainexec.universal_transaction_lines (organization_id, transaction_id, line_number, "
	"line_type, step_id, step_name, status, priority, parent_line, smart_code) "
	"SELECT $1, $2, coalesce(max(line_number), 0) + 1, $3, $4, $5, $6, $7, $8, $9 "
	"FROM chainexec.universal_transaction_lines WHERE organization_id = $1 AND transaction_id = $2",
	9, {UUIDOID, UUIDOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID}};

/*
 * A waiting line whose timer came due while its execution is paused: the
 * due time moves to "deadline" until chain_resume puts it back.
 */
static CeQuery q_park_timer = {
	"UPDATE chainexec.universal_transaction_lines SET deadline = not_before, not_before = 'infinity' "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	3, {UUIDOID, UUIDOID, INT4OID}};

static CeQuery q_set_line_status = {
	"UPDATE chainexec.universal_transaction_lines SET status = $4 "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	4, {UUIDOID, UUIDOID, INT4OID, TEXTOID}};

static CeQuery q_fail_line_plain = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'failed', attempt = attempt + 1, "
	"error = $4, finished_at = clock_timestamp() "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3 "
	"AND status IN ('ready', 'waiting')",
	4, {UUIDOID, UUIDOID, INT4OID, JSONBOID}};

static CeQuery q_fail_exec_plain = {
	"UPDATE chainexec.universal_transactions SET status = 'failed', error = $3, "
	"finished_at = clock_timestamp() "
	"WHERE organization_id = $1 AND id = $2 "
	"AND status IN ('pending', 'running', 'waiting', 'paused', 'compensating')",
	3, {UUIDOID, UUIDOID, JSONBOID}};

/* ---------------------------------------------------------------------
 * Reading
 * --------------------------------------------------------------------- */

/* Row row of SPI_tuptable, of LINE_COLS, as a claimed line. */
void
ce_line_from_row(int row, LineRow *line)
{
	bool		isnull;

	line->line_number = DatumGetInt32(ce_getcol(row, 3, &isnull));
	line->line_type = ce_getcol_text(row, 4);
	line->step_id = DatumGetInt32(ce_getcol(row, 5, &isnull));
	line->step_name = ce_getcol_text(row, 6);
	line->status = ce_line_status_from_name(ce_getcol_text(row, 7));
	line->attempt = DatumGetInt32(ce_getcol(row, 8, &isnull));
	line->parent_line = DatumGetInt32(ce_getcol(row, 9, &isnull));
	line->started_at = DatumGetTimestampTz(ce_getcol(row, 10, &line->has_started));
	line->has_started = !line->has_started;
	line->crashes = DatumGetInt32(ce_getcol(row, 11, &isnull));
	line->iteration = DatumGetInt32(ce_getcol(row, 12, &isnull));
}

/* Row row of SPI_tuptable, HEADER_COLS from column col0 + 1, into ex. */
void
ce_header_from_row(int row, int col0, ExecRow *ex)
{
	bool		isnull;
	Datum		p;

	ex->status = ce_exec_status_from_name(ce_getcol_text(row, col0 + 1));
	ex->chain_id = ce_getcol_text(row, col0 + 2);
	ex->version = DatumGetInt32(ce_getcol(row, col0 + 3, &isnull));
	ex->context = ce_getcol_jsonb(row, col0 + 4);
	ex->owner = DatumGetObjectId(ce_getcol(row, col0 + 5, &isnull));
	ex->deadline = DatumGetTimestampTz(ce_getcol(row, col0 + 6, &isnull));
	ex->has_deadline = !isnull;
	ex->priority = DatumGetInt32(ce_getcol(row, col0 + 7, &isnull));
	ex->save_intermediate = DatumGetBool(ce_getcol(row, col0 + 8, &isnull));
	ex->max_retries = DatumGetInt32(ce_getcol(row, col0 + 9, &isnull));
	ex->progress_floor = DatumGetInt32(ce_getcol(row, col0 + 10, &isnull));
	/* a child execution's parent (subchain.c) */
	p = ce_getcol(row, col0 + 11, &isnull);
	ex->has_parent = !isnull;
	if (!isnull)
		memcpy(&ex->parent_id, DatumGetUUIDP(p), sizeof(pg_uuid_t));
	ex->parent_line = DatumGetInt32(ce_getcol(row, col0 + 12, &isnull));
	ex->org_s = ce_uuid_to_cstring(&ex->org);
	ex->id_s = ce_uuid_to_cstring(&ex->id);
	ex->header_read = true;
}

/*
 * Read the header with a fresh snapshot (not read-only): the context must
 * include the outputs of every step whose commit made this line ready.
 */
void
ce_exec_read_header(ExecRow *ex)
{
	Datum		args[2];

	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_header, args, NULL, false, 1);
	if (SPI_processed != 1)
		elog(ERROR, "execution %s has lines but no header", ce_uuid_to_cstring(&ex->id));
	ce_header_from_row(0, 0, ex);
}

/* Take the header's row lock; refresh status and context. */
void
ce_exec_lock(ExecRow *ex)
{
	Datum		args[2];

	/* a child's ancestors first, root first (compose.h) */
	ce_lock_ancestors(ex);
	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_lock_header, args, NULL, false, 1);
	if (SPI_processed != 1)
		elog(ERROR, "execution %s vanished", ex->id_s);
	ex->status = ce_exec_status_from_name(ce_getcol_text(0, 1));
	ex->context = ce_getcol_jsonb(0, 2);
}

List *
ce_exec_lines(ExecRow *ex)
{
	Datum		args[2];
	List	   *res = NIL;
	uint64		i;

	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_lines, args, NULL, false, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		LineInfo   *li = palloc0(sizeof(LineInfo));
		bool		isnull;
		char	   *t;

		li->line_number = DatumGetInt32(ce_getcol(i, 1, &isnull));
		t = ce_getcol_text(i, 2);
		li->type = t[0];
		li->step_id = DatumGetInt32(ce_getcol(i, 3, &isnull));
		li->status = ce_line_status_from_name(ce_getcol_text(i, 4));
		li->parent_line = DatumGetInt32(ce_getcol(i, 5, &isnull));
		ce_container_counters(ce_getcol_jsonb(i, 6), li);
		/* a completion held back (see pending) */
		if (pending.valid && li->line_number == pending.line_number &&
			memcmp(&pending.id, &ex->id, sizeof(pg_uuid_t)) == 0)
			li->status = pending.status;
		res = lappend(res, li);
	}
	return res;
}

/* ---------------------------------------------------------------------
 * Writing
 * --------------------------------------------------------------------- */

/* The first 11 arguments of q_update_line and q_write_step. */
static void
line_update_args(ExecRow *ex, int line_number, CeLineUpdate *u, Datum *v, char *n)
{
	memset(n, ' ', 11);
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line_number);
	v[3] = CStringGetTextDatum(ce_line_status_name(u->status));
	v[4] = Int32GetDatum(u->attempt);
	v[5] = TimestampTzGetDatum(u->not_before);
	if (!u->has_not_before)
		n[5] = 'n';
	v[6] = ce_jsonb_datum_or_null(ex->save_intermediate ? u->input : NULL, &n[6]);
	v[7] = ce_jsonb_datum_or_null(ex->save_intermediate ? u->output : NULL, &n[7]);
	v[8] = ce_jsonb_datum_or_null(u->error, &n[8]);
	v[9] = BoolGetDatum(u->started);
	v[10] = BoolGetDatum(u->finished);
}

void
ce_line_update(ExecRow *ex, int line_number, CeLineUpdate *u)
{
	Datum		v[11];
	char		n[12];

	line_update_args(ex, line_number, u, v, n);
	n[11] = '\0';
	ce_run_query(&q_update_line, v, n, false, 0);
}

/*
 * A step's line completed with u, and the execution's context (NULL:
 * unchanged): held back to be written with the next lines' promotion when
 * inside a transition (see pending), else written now.
 */
void
ce_line_complete(ExecRow *ex, int line_number, CeLineUpdate *u, Jsonb *context)
{
	if (!hold_writes)
	{
		if (context)
			ce_exec_set_context(ex, context);
		ce_line_update(ex, line_number, u);
		return;
	}
	if (pending.valid)
		store_flush();
	line_update_args(ex, line_number, u, pending.v, pending.n);
	pending.v[11] = ce_jsonb_datum_or_null(context, &pending.n[11]);
	pending.v[12] = PointerGetDatum(ce_int_array(NIL));
	pending.n[12] = ' ';
	pending.n[13] = '\0';
	pending.org = ex->org;
	pending.id = ex->id;
	pending.line_number = line_number;
	pending.status = u->status;
	pending.valid = true;
	if (context)
		ex->context = context;
}

/* Write the completion held back, with the lines to promote (or none). */
static void
write_pending(ArrayType *promote)
{
	pending.valid = false;
	if (promote)
		pending.v[12] = PointerGetDatum(promote);
	ce_run_query(&q_write_step, pending.v, pending.n, false, 0);
}

static void
store_flush(void)
{
	if (pending.valid)
		write_pending(NULL);
}

/*
 * Inside a transition: completions may be held back (ce_line_complete)
 * until ce_store_hold_end, which writes what is left; after an error,
 * ce_store_hold_reset forgets it (the transaction is rolled back).
 */
void
ce_store_hold_begin(void)
{
	pending.valid = false;
	hold_writes = true;
}

void
ce_store_hold_end(void)
{
	store_flush();
	hold_writes = false;
}

void
ce_store_hold_reset(void)
{
	pending.valid = false;
	hold_writes = false;
}

/*
 * The first line this backend's last promotion made ready: an executor (or
 * chain_run) claims the next step of the execution it just moved on
 * without the dispatch query (ce_claim_next).  Taking it forgets it.
 */
static struct
{
	bool		valid;
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;
}			promoted;

bool
ce_store_take_promoted(pg_uuid_t *org, pg_uuid_t *id, int *line_number)
{
	if (!promoted.valid)
		return false;
	promoted.valid = false;
	*org = promoted.org;
	*id = promoted.id;
	*line_number = promoted.line_number;
	return true;
}

void
ce_line_set_status(ExecRow *ex, int line_number, CeLineStatus status)
{
	Datum		v[4];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line_number);
	v[3] = CStringGetTextDatum(ce_line_status_name(status));
	ce_run_query(&q_set_line_status, v, NULL, false, 0);
}

void
ce_exec_set_status(ExecRow *ex, CeExecStatus status)
{
	Datum		v[3];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(ce_exec_status_name(status));
	ce_run_query(&q_set_status, v, NULL, false, 0);
	ex->status = status;
}

ArrayType *
ce_int_array(List *ints)
{
	int			n = list_length(ints);
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, ints)
		d[i++] = Int32GetDatum(lfirst_int(lc));
	return construct_array(d, n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
}

/* Close lines (not our own, not locked by others) with a final status. */
void
ce_lines_close(ExecRow *ex, List *line_numbers, CeLineStatus status, Jsonb *error)
{
	Datum		v[5];
	char		n[6] = "     ";

	if (line_numbers == NIL)
		return;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = PointerGetDatum(ce_int_array(line_numbers));
	v[3] = CStringGetTextDatum(ce_line_status_name(status));
	v[4] = ce_jsonb_datum_or_null(error, &n[4]);
	ce_run_query(&q_close_lines, v, n, false, 0);
}

void
ce_line_insert(ExecRow *ex, const char *type, const CeStep *step, CeLineStatus status, int parent_line)
{
	Datum		v[9];
	char		n[10] = "         ";

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(type);
	v[3] = Int32GetDatum(step->id);
	v[4] = CStringGetTextDatum(step->name);
	v[5] = CStringGetTextDatum(ce_line_status_name(status));
	v[6] = Int32GetDatum(ex->priority);
	v[7] = Int32GetDatum(parent_line);
	v[8] = CStringGetTextDatum(ce_smart_code(strcmp(type, "compensation") == 0 ? "COMPENSATION" : "STEP",
										  step->name, ex->version));
	ce_run_query(&q_insert_line, v, n, false, 0);
}

void
ce_bookkeeping_begin(CeBookkeeping *bk)
{
	bk->guc_level = ce_fixed_search_path();
	GetUserIdAndSecContext(&bk->save_user, &bk->save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), bk->save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

void
ce_bookkeeping_end(CeBookkeeping *bk)
{
	AtEOXact_GUC(true, bk->guc_level);
	SetUserIdAndSecContext(bk->save_user, bk->save_sec);
}

void
ce_exec_read(ExecRow *ex)
{
	ce_exec_read_header(ex);
	ex->plan = ce_plan_get(&ex->org, ex->chain_id, ex->version);
}

void
ce_exec_set_context(ExecRow *ex, Jsonb *context)
{
	Datum		v[3];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = JsonbPGetDatum(context);
	ce_run_query(&q_set_context, v, NULL, false, 0);
	ex->context = context;
}

/* Make pending lines ready (their due time kept, at least now). */
void
ce_lines_promote(ExecRow *ex, List *line_numbers)
{
	Datum		v[3];

	if (line_numbers == NIL)
		return;
	promoted.valid = true;
	promoted.org = ex->org;
	promoted.id = ex->id;
	promoted.line_number = linitial_int(line_numbers);
	if (pending.valid && memcmp(&pending.id, &ex->id, sizeof(pg_uuid_t)) == 0 &&
		memcmp(&pending.org, &ex->org, sizeof(pg_uuid_t)) == 0)
	{
		write_pending(ce_int_array(line_numbers));
		return;
	}
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = PointerGetDatum(ce_int_array(line_numbers));
	ce_run_query(&q_promote, v, NULL, false, 0);
}

/* Keep aside the due time of a waiting line of a paused execution. */
void
ce_line_park_timer(ExecRow *ex, int line_number)
{
	Datum		v[3];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line_number);
	ce_run_query(&q_park_timer, v, NULL, false, 0);
}

/* Write the end of the execution: status, output, error (NULL: kept). */
void
ce_exec_write_end(ExecRow *ex, CeExecStatus status, Jsonb *output, Jsonb *error)
{
	Datum		v[5];
	char		n[6] = "     ";

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(ce_exec_status_name(status));
	v[3] = ce_jsonb_datum_or_null(output, &n[3]);
	v[4] = ce_jsonb_datum_or_null(error, &n[4]);
	ce_run_query(&q_finish_exec, v, n, false, 0);
	ex->status = status;
}

/* Set the execution's status and, when given, its error. */
void
ce_exec_set_status_error(ExecRow *ex, CeExecStatus status, Jsonb *error)
{
	Datum		v[4];
	char		n[5] = "    ";

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(ce_exec_status_name(status));
	v[3] = ce_jsonb_datum_or_null(error, &n[3]);
	ce_run_query(&q_exec_error, v, n, false, 0);
}

/*
 * After an error out of a transition whose recording threw too: mark the
 * line (if still ready or waiting) and its execution failed with error.
 */
void
ce_fail_line_plain(const pg_uuid_t *org, const pg_uuid_t *id, int line_number, Jsonb *error)
{
	Datum		args[4];

	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = UUIDPGetDatum((pg_uuid_t *) id);
	args[2] = Int32GetDatum(line_number);
	args[3] = JsonbPGetDatum(error);
	ce_run_query(&q_fail_line_plain, args, NULL, false, 0);
	if (SPI_processed > 0)
	{
		args[2] = JsonbPGetDatum(error);
		ce_run_query(&q_fail_exec_plain, args, NULL, false, 0);
	}
}

/* The cached owner is stale: the extension was made again. */
void
ce_extension_owner_forget(void)
{
	ext_owner = InvalidOid;
}
