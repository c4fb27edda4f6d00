/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  The step executor: one step transition as one transaction.
 *
 * A transition claims one due line with FOR UPDATE SKIP LOCKED, runs the
 * step in a subtransaction as the execution's owner, classifies a failure,
 * schedules a retry or applies onFailure, merges outputs into the
 * execution's context, records the line, makes the next lines ready,
 * detects the end (success conditions, compensation) and queues the
 * NOTIFY events: all in the caller's transaction, so a crash before commit
 * leaves the line ready and a step's SQL effects are applied exactly once.
 *
 * Concurrency: steps of one execution may run at once in several
 * transactions.  Each takes the execution header's row lock (FOR NO KEY
 * UPDATE) only after its step ran, and makes every decision that reads
 * other lines (readiness, the end) while holding it, so these decisions
 * are serialized per execution without serializing the steps themselves.
 * Lines of other transitions are only changed with SKIP LOCKED, so a
 * transition never waits for a running step while holding the header.
 *
 * Bookkeeping runs as the extension's owner; steps run as the execution's
 * owner (step.c).  Memory: everything is allocated in the SPI procedure
 * context of the transition, freed by SPI_finish.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <signal.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "compat.h"
#include "define.h"
#include "engine.h"
#include "engine_int.h"
#include "engine_xact.h"
#include "inflight.h"
#include "jsonschema.h"
#include "notify.h"
#include "shmem.h"
#include "step.h"

/* The line claimed by the running transition, kept for ce_transition_take_claim. */
static struct
{
	bool		valid;
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;
} claimed;

static Oid	ext_owner = InvalidOid;

/*
 * Set while chain_run drives an execution in its own session: the lines it
 * makes ready are its own next work, so waking the background executors
 * would only make them race it for those lines.
 */
bool		ce_inline_runner = false;

/* The execution whose line this backend is processing, while in_step. */
static bool in_step = false;
static pg_uuid_t step_execution;

bool
ce_in_step_of(const pg_uuid_t *id)
{
	return in_step && memcmp(&step_execution, id, sizeof(pg_uuid_t)) == 0;
}

static void
wake_executors_n(int nready)
{
	int			i;

	if (ce_inline_runner)
		return;
	for (i = 0; i < nready; i++)
		ce_wakeup_at_commit();
}

#define wake_executors() wake_executors_n(1)

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
 * Execute a query prepared once per backend.
 *
 * Every query here finds its rows through a key or a partial index.  A
 * kept plan is made again only when a table's statistics change, so a
 * plan made while the tables were nearly empty (a sequential scan is
 * cheapest then) would go on scanning them after they have grown — in a
 * burst of executions after a quiet period, every transition would read
 * every line until autovacuum analyzes the table.  So the plans are made
 * with enable_seqscan off.
 */
int
ce_run_query(CeQuery *q, Datum *values, const char *nulls, bool read_only, long count)
{
	int			ret;
	int			level;

	if (q->plan == NULL)
	{
		/*
		 * A generic plan: these queries' plans do not depend on their
		 * parameters, and a custom plan for each call (as the plan cache
		 * chooses for "= ANY($n)") costs more than the query.
		 */
		SPIPlanPtr	p = SPI_prepare_cursor(q->sql, q->nargs, q->types, CURSOR_OPT_GENERIC_PLAN);

		if (p == NULL)
			elog(ERROR, "could not prepare chainexec query: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		q->plan = p;
	}
	level = NewGUCNestLevel();
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	ret = SPI_execute_plan(q->plan, values, nulls, read_only, count);
	AtEOXact_GUC(true, level);
	if (ret < 0)
		elog(ERROR, "chainexec query failed: %s", SPI_result_code_string(ret));
	return ret;
}

static Datum
getcol(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

static char *
getcol_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

static Jsonb *
getcol_jsonb(int row, int col)
{
	bool		isnull;
	Datum		d = getcol(row, col, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

static Datum
jsonb_datum_or_null(Jsonb *j, char *nullflag)
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
		ext_owner = DatumGetObjectId(getcol(0, 1, &isnull));
	}
	return ext_owner;
}

/* ---------------------------------------------------------------------
 * Building jsonb values
 * --------------------------------------------------------------------- */

/*
 * A step's error message, detail and hint are kept on its line and its
 * execution, and come from code the step ran (RAISE can make them any
 * size): each is kept up to CE_ERROR_TEXT_MAX bytes (cut at a character
 * boundary), followed by a marker that says how long it was.
 */
#define CE_ERROR_TEXT_MAX 8192

static void
escape_json_capped(StringInfo b, const char *text)
{
	size_t		len = strlen(text);
	int			keep;

	if (len <= CE_ERROR_TEXT_MAX)
	{
		escape_json(b, text);
		return;
	}
	keep = pg_mbcliplen(text, (int) Min(len, (size_t) PG_INT32_MAX), CE_ERROR_TEXT_MAX);
	escape_json(b, psprintf("%.*s... [truncated: %zu bytes in all]", keep, text, len));
}

static Jsonb *
error_jsonb(const char *failure_type, const char *sqlstate, const char *message,
			const char *detail, const char *hint, int attempt)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"failure_type\":");
	escape_json(&b, failure_type ? failure_type : "system_error");
	appendStringInfoString(&b, ",\"sqlstate\":");
	if (sqlstate && sqlstate[0])
		escape_json(&b, sqlstate);
	else
		appendStringInfoString(&b, "null");
	appendStringInfoString(&b, ",\"message\":");
	escape_json_capped(&b, message ? message : "");
	appendStringInfoString(&b, ",\"detail\":");
	if (detail)
		escape_json_capped(&b, detail);
	else
		appendStringInfoString(&b, "null");
	if (hint)
	{
		appendStringInfoString(&b, ",\"hint\":");
		escape_json_capped(&b, hint);
	}
	if (attempt > 0)
		appendStringInfo(&b, ",\"attempt\":%d", attempt);
	appendStringInfoChar(&b, '}');
	return ce_text_to_jsonb(b.data);
}

static Jsonb *
run_error_jsonb(CeStepRun *run, int attempt)
{
	return error_jsonb(run->failure_type, run->sqlstate, run->message, run->detail, run->hint, attempt);
}

/* Add "step"/"stepId" to an execution-level error. */
static Jsonb *
execution_error(Jsonb *line_error, const CeStep *step)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"step\":");
	escape_json(&b, step ? step->name : "");
	appendStringInfo(&b, ",\"stepId\":%d}", step ? step->id : 0);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(line_error),
											  JsonbPGetDatum(ce_text_to_jsonb(b.data))));
}

/* A smart code: CHAINEXEC.<KIND>.<NAME>.V<version>, as chainexec.smart_code() makes it. */
char *
ce_smart_code(const char *kind, const char *name, int version)
{
	StringInfoData b;
	const char *p;
	bool		under = false;

	initStringInfo(&b);
	appendStringInfo(&b, "CHAINEXEC.%s.", kind);
	for (p = name; *p; p++)
	{
		if (isalnum((unsigned char) *p))
		{
			appendStringInfoChar(&b, pg_toupper((unsigned char) *p));
			under = false;
		}
		else if (!under)
		{
			appendStringInfoChar(&b, '_');
			under = true;
		}
	}
	appendStringInfo(&b, ".V%d", version);
	return b.data;
}

/* ---------------------------------------------------------------------
 * The context: the one check of everything written into it
 * --------------------------------------------------------------------- */

/* Nesting depth of a jsonb value (a scalar is 0). */
static int
jsonb_depth(Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;
	int			max = 0;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_ARRAY || tok == WJB_BEGIN_OBJECT)
			max = Max(max, ++depth);
		else if (tok == WJB_END_ARRAY || tok == WJB_END_OBJECT)
			depth--;
	}
	/* a raw scalar is a one-element array to the iterator */
	return JB_ROOT_IS_SCALAR(jb) ? 0 : max;
}

Jsonb *
ce_context_merge(Jsonb *context, Jsonb *vars, const char *kind, const char *subject,
				 CeContextError *err)
{
	Jsonb	   *merged;
	bool		input = strcmp(kind, "input") == 0;

	memset(err, 0, sizeof(*err));
	if (!JB_ROOT_IS_OBJECT(vars) || JB_ROOT_IS_SCALAR(vars))
	{
		err->sqlstate = "22023";
		err->message = psprintf("%s of %s must be a JSON object", kind, subject);
		return NULL;
	}
	if (getKeyJsonValueFromContainer(&vars->root, "chain", 5, NULL) != NULL)
	{
		err->sqlstate = "42939";
		err->message = input ? pstrdup("input variable \"chain\" is reserved")
			: psprintf("%s variable \"chain\" of %s is reserved", kind, subject);
		err->detail = pstrdup("{chain.*} names the built-in variables such as chain.execution_id.");
		if (!input)
			err->hint = pstrdup("Rename the column or key.");
		return NULL;
	}
	/* everything that reads the context must be able to read them back */
	if (jsonb_depth(vars) >= CE_MAX_JSON_DEPTH)
	{
		err->sqlstate = "54000";
		err->message = psprintf("%s of %s nests deeper than %d levels", kind, subject, CE_MAX_JSON_DEPTH - 1);
		return NULL;
	}
	merged = context == NULL ? vars
		: DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(context),
											 JsonbPGetDatum(vars)));
	if (VARSIZE(merged) > (Size) ce_max_context_bytes)
	{
		err->sqlstate = "54000";
		err->message = psprintf("variables of the execution would take %zu bytes, more than chainexec.max_context_bytes (%d)",
								(size_t) VARSIZE(merged), ce_max_context_bytes);
		err->detail = psprintf("The %s of %s takes %zu bytes.", kind, subject, (size_t) VARSIZE(vars));
		err->hint = pstrdup("Keep large data in tables and pass keys, or raise chainexec.max_context_bytes.");
		return NULL;
	}
	return merged;
}

Jsonb *
ce_context_merge_or_error(Jsonb *context, Jsonb *vars, const char *kind, const char *subject)
{
	CeContextError err;
	Jsonb	   *merged = ce_context_merge(context, vars, kind, subject, &err);

	if (merged == NULL)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(err.sqlstate[0], err.sqlstate[1], err.sqlstate[2],
									   err.sqlstate[3], err.sqlstate[4])),
				 errmsg_internal("%s", err.message),
				 err.detail ? errdetail_internal("%s", err.detail) : 0,
				 err.hint ? errhint("%s", err.hint) : 0));
	return merged;
}

/* ---------------------------------------------------------------------
 * Queries
 * --------------------------------------------------------------------- */

/* The last column: attempts in a row whose executor died (ce_record_crash). */
#define LINE_COLS "organization_id, transaction_id, line_number, line_type, step_id, step_name, " \
	"status, attempt, coalesce(parent_line, 0), started_at, " \
	"CASE WHEN error->>'failure_type' = 'worker_crashed' " \
	"THEN coalesce((error->>'crashes')::int, 0) ELSE 0 END"

/*
 * The dispatch queries of the executors (the only queries that claim lines
 * of any execution): never a line of an execution that a chain_run session
 * drives (insession.c).
 */
static CeQuery q_claim_ready = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines l "
	"WHERE status = 'ready' AND not_before <= now() "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = l.organization_id AND t.id = l.transaction_id) "
	"ORDER BY priority DESC, not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 0, {0}};
/*
 * Claims within one execution (chain_run, _run_one) also take a line that
 * is not due yet once the execution is past its deadline, so that the
 * transition ends it (status timeout): chain_run has no deadline sweep.
 */
#define PAST_DEADLINE "EXISTS (SELECT FROM chainexec.universal_transactions t " \
	"WHERE t.organization_id = $1 AND t.id = $2 AND t.deadline <= now() " \
	"AND t.status IN ('pending', 'running', 'waiting'))"
static CeQuery q_claim_ready_exec = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status = 'ready' "
	"AND (not_before <= now() OR " PAST_DEADLINE ") "
	"ORDER BY priority DESC, not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 2, {UUIDOID, UUIDOID}};
static CeQuery q_claim_waiting = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines l "
	"WHERE status = 'waiting' AND not_before <= now() "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = l.organization_id AND t.id = l.transaction_id) "
	"ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 0, {0}};
static CeQuery q_claim_waiting_exec = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status = 'waiting' "
	"AND (not_before <= now() OR " PAST_DEADLINE ") "
	"ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 2, {UUIDOID, UUIDOID}};

static CeQuery q_header = {
	"SELECT status, chain_id, chain_version, context, owner::oid, deadline, priority, "
	"coalesce((metadata->>'saveIntermediateResults')::boolean, true), "
	"coalesce((metadata->'options'->>'maxRetries')::int, -1), "
	"coalesce((metadata->>'progressFloor')::int, 0) "
	"FROM chainexec.universal_transactions WHERE organization_id = $1 AND id = $2",
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

/* status, attempt, not_before (null: keep), input, output, error,
 * started (bool), finished (bool) */
static CeQuery q_update_line = {
	"UPDATE chainexec.universal_transaction_lines SET status = $4, attempt = $5, "
	"not_before = coalesce($6, not_before), input = coalesce($7, input), output = $8, error = $9, "
	"started_at = CASE WHEN $10 THEN now() ELSE started_at END, "
	"first_started_at = coalesce(first_started_at, CASE WHEN $10 THEN now() END), "
	"finished_at = CASE WHEN $11 THEN clock_timestamp() ELSE NULL END, "
	"duration_ms = CASE WHEN $11 THEN extract(epoch FROM clock_timestamp() - "
	"CASE WHEN $10 THEN now() ELSE coalesce(started_at, clock_timestamp()) END) * 1000 ELSE NULL END "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	11, {UUIDOID, UUIDOID, INT4OID, TEXTOID, INT4OID, TIMESTAMPTZOID, JSONBOID, JSONBOID, JSONBOID, BOOLOID, BOOLOID}};

static CeQuery q_lines = {
	"SELECT line_number, line_type, step_id, status, coalesce(parent_line, 0) "
	"FROM chainexec.universal_transaction_lines WHERE organization_id = $1 AND transaction_id = $2 "
	"ORDER BY line_number",
	2, {UUIDOID, UUIDOID}};

static CeQuery q_promote = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'ready', not_before = greatest(not_before, now()) "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = ANY($3) AND status = 'pending'",
	3, {UUIDOID, UUIDOID, INT4ARRAYOID}};

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

/* ---------------------------------------------------------------------
 * Reading
 * --------------------------------------------------------------------- */

static bool
claim_line(CeQuery *q, const pg_uuid_t *only, LineRow *line, pg_uuid_t *org, pg_uuid_t *id)
{
	Datum		args[2];
	bool		isnull;

	if (only)
	{
		args[0] = UUIDPGetDatum(org);
		args[1] = UUIDPGetDatum((pg_uuid_t *) only);
	}
	ce_run_query(q, only ? args : NULL, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	memcpy(org, DatumGetUUIDP(getcol(0, 1, &isnull)), sizeof(pg_uuid_t));
	memcpy(id, DatumGetUUIDP(getcol(0, 2, &isnull)), sizeof(pg_uuid_t));
	line->line_number = DatumGetInt32(getcol(0, 3, &isnull));
	line->line_type = getcol_text(0, 4);
	line->step_id = DatumGetInt32(getcol(0, 5, &isnull));
	line->step_name = getcol_text(0, 6);
	line->status = getcol_text(0, 7);
	line->attempt = DatumGetInt32(getcol(0, 8, &isnull));
	line->parent_line = DatumGetInt32(getcol(0, 9, &isnull));
	line->started_at = DatumGetTimestampTz(getcol(0, 10, &line->has_started));
	line->has_started = !line->has_started;
	line->crashes = DatumGetInt32(getcol(0, 11, &isnull));
	return true;
}

/*
 * Read the header with a fresh snapshot (not read-only): the context must
 * include the outputs of every step whose commit made this line ready.
 */
static void
read_header(ExecRow *ex)
{
	Datum		args[2];
	bool		isnull;

	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_header, args, NULL, false, 1);
	if (SPI_processed != 1)
		elog(ERROR, "execution %s has lines but no header", ce_uuid_to_cstring(&ex->id));
	ex->status = getcol_text(0, 1);
	ex->chain_id = getcol_text(0, 2);
	ex->version = DatumGetInt32(getcol(0, 3, &isnull));
	ex->context = getcol_jsonb(0, 4);
	ex->owner = DatumGetObjectId(getcol(0, 5, &isnull));
	ex->deadline = DatumGetTimestampTz(getcol(0, 6, &isnull));
	ex->has_deadline = !isnull;
	ex->priority = DatumGetInt32(getcol(0, 7, &isnull));
	ex->save_intermediate = DatumGetBool(getcol(0, 8, &isnull));
	ex->max_retries = DatumGetInt32(getcol(0, 9, &isnull));
	ex->progress_floor = DatumGetInt32(getcol(0, 10, &isnull));
	ex->org_s = ce_uuid_to_cstring(&ex->org);
	ex->id_s = ce_uuid_to_cstring(&ex->id);
}

/* Take the header's row lock; refresh status and context. */
static void
lock_header(ExecRow *ex)
{
	Datum		args[2];

	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_lock_header, args, NULL, false, 1);
	if (SPI_processed != 1)
		elog(ERROR, "execution %s vanished", ex->id_s);
	ex->status = getcol_text(0, 1);
	ex->context = getcol_jsonb(0, 2);
}

static List *
read_lines(ExecRow *ex)
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

		li->line_number = DatumGetInt32(getcol(i, 1, &isnull));
		t = getcol_text(i, 2);
		li->type = t[0];
		li->step_id = DatumGetInt32(getcol(i, 3, &isnull));
		li->status = getcol_text(i, 4);
		li->parent_line = DatumGetInt32(getcol(i, 5, &isnull));
		res = lappend(res, li);
	}
	return res;
}

/* ---------------------------------------------------------------------
 * Writing
 * --------------------------------------------------------------------- */

typedef struct LineUpdate
{
	const char *status;
	int			attempt;
	bool		has_not_before;
	TimestampTz not_before;
	Jsonb	   *input;
	Jsonb	   *output;
	Jsonb	   *error;
	bool		started;
	bool		finished;
} LineUpdate;

static void
update_line(ExecRow *ex, int line_number, LineUpdate *u)
{
	Datum		v[11];
	char		n[12] = "           ";

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line_number);
	v[3] = CStringGetTextDatum(u->status);
	v[4] = Int32GetDatum(u->attempt);
	v[5] = TimestampTzGetDatum(u->not_before);
	if (!u->has_not_before)
		n[5] = 'n';
	v[6] = jsonb_datum_or_null(ex->save_intermediate ? u->input : NULL, &n[6]);
	v[7] = jsonb_datum_or_null(ex->save_intermediate ? u->output : NULL, &n[7]);
	v[8] = jsonb_datum_or_null(u->error, &n[8]);
	v[9] = BoolGetDatum(u->started);
	v[10] = BoolGetDatum(u->finished);
	ce_run_query(&q_update_line, v, n, false, 0);
}

static void
set_line_status(ExecRow *ex, int line_number, const char *status)
{
	Datum		v[4];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line_number);
	v[3] = CStringGetTextDatum(status);
	ce_run_query(&q_set_line_status, v, NULL, false, 0);
}

static void
set_exec_status(ExecRow *ex, const char *status)
{
	Datum		v[3];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(status);
	ce_run_query(&q_set_status, v, NULL, false, 0);
	ex->status = pstrdup(status);
}

static ArrayType *
int_array(List *ints)
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
static void
close_lines(ExecRow *ex, List *line_numbers, const char *status, Jsonb *error)
{
	Datum		v[5];
	char		n[6] = "     ";

	if (line_numbers == NIL)
		return;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = PointerGetDatum(int_array(line_numbers));
	v[3] = CStringGetTextDatum(status);
	v[4] = jsonb_datum_or_null(error, &n[4]);
	ce_run_query(&q_close_lines, v, n, false, 0);
}

static void
insert_line(ExecRow *ex, const char *type, const CeStep *step, const char *status, int parent_line)
{
	Datum		v[9];
	char		n[10] = "         ";

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(type);
	v[3] = Int32GetDatum(step->id);
	v[4] = CStringGetTextDatum(step->name);
	v[5] = CStringGetTextDatum(status);
	v[6] = Int32GetDatum(ex->priority);
	v[7] = Int32GetDatum(parent_line);
	v[8] = CStringGetTextDatum(ce_smart_code(strcmp(type, "compensation") == 0 ? "COMPENSATION" : "STEP",
										  step->name, ex->version));
	ce_run_query(&q_insert_line, v, n, false, 0);
}

/* ---------------------------------------------------------------------
 * Progress, ETA and events: the one copy, for transitions and control
 * functions alike
 * --------------------------------------------------------------------- */

static int	current_progress = 0;
static long current_eta = -1;

static bool is_final(const char *status);

/*
 * ETA: from the average time each step took, first attempt to end (failed
 * attempts and back-offs included), in this chain version's last 20
 * completed executions.  Cached per backend for a minute; an answer of "no
 * history yet" is asked again after a second, and a backend forgets its
 * answer when it completes an execution of the chain itself, so that the
 * first completion is used at once.
 */

typedef struct EtaKey
{
	pg_uuid_t	org;
	int			version;
	char		chain_id[NAMEDATALEN];
} EtaKey;

typedef struct EtaEntry
{
	EtaKey		key;
	TimestampTz fetched;
	int			n;
	int		   *step_ids;
	double	   *avg_ms;
} EtaEntry;

static HTAB *eta_cache = NULL;

static CeQuery q_step_averages = {
	"SELECT l.step_id, avg(extract(epoch FROM l.finished_at - coalesce(l.first_started_at, l.started_at)) * 1000)::float8 "
	"FROM (SELECT organization_id, id FROM chainexec.universal_transactions "
	"      WHERE organization_id = $1 AND chain_id = $2 AND chain_version = $3 AND status = 'completed' "
	"      ORDER BY created_at DESC LIMIT 20) t "
	"JOIN chainexec.universal_transaction_lines l ON l.organization_id = t.organization_id AND l.transaction_id = t.id "
	"WHERE l.line_type = 'step' AND l.status = 'completed' AND l.finished_at IS NOT NULL "
	"AND l.started_at IS NOT NULL "
	"GROUP BY l.step_id",
	3, {UUIDOID, TEXTOID, INT4OID}};

static void
eta_key(ExecRow *ex, EtaKey *key)
{
	memset(key, 0, sizeof(*key));
	key->org = ex->org;
	key->version = ex->version;
	strlcpy(key->chain_id, ex->chain_id, sizeof(key->chain_id));
}

static void
eta_forget(ExecRow *ex)
{
	EtaKey		key;
	EtaEntry   *e;

	if (eta_cache == NULL)
		return;
	eta_key(ex, &key);
	e = hash_search(eta_cache, &key, HASH_FIND, NULL);
	if (e)
		e->fetched = 0;
}

static EtaEntry *
step_averages(ExecRow *ex)
{
	EtaKey		key;
	EtaEntry   *e;
	bool		found;
	TimestampTz now = GetCurrentTimestamp();
	Datum		v[3];
	uint64		i;

	if (eta_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(EtaKey);
		ctl.entrysize = sizeof(EtaEntry);
		ctl.hcxt = CacheMemoryContext;
		eta_cache = hash_create("chainexec step averages", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	eta_key(ex, &key);
	e = hash_search(eta_cache, &key, HASH_ENTER, &found);
	if (found && e->fetched > now - (e->n > 0 ? 60 : 1) * USECS_PER_SEC)
		return e;
	if (found)
	{
		if (e->step_ids)
			pfree(e->step_ids);
		if (e->avg_ms)
			pfree(e->avg_ms);
	}
	e->n = 0;
	e->step_ids = NULL;
	e->avg_ms = NULL;
	e->fetched = now;

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = CStringGetTextDatum(ex->chain_id);
	v[2] = Int32GetDatum(ex->version);
	ce_run_query(&q_step_averages, v, NULL, true, 0);
	if (SPI_processed > 0)
	{
		e->step_ids = MemoryContextAllocZero(CacheMemoryContext, sizeof(int) * SPI_processed);
		e->avg_ms = MemoryContextAllocZero(CacheMemoryContext, sizeof(double) * SPI_processed);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			e->step_ids[i] = DatumGetInt32(getcol(i, 1, &isnull));
			e->avg_ms[i] = DatumGetFloat8(getcol(i, 2, &isnull));
		}
		e->n = (int) SPI_processed;
	}
	return e;
}

long
ce_eta_new_execution(const pg_uuid_t *org, const char *chain_id, int version)
{
	ExecRow		ex;
	EtaEntry   *e;
	double		eta = 0;
	int			k;

	memset(&ex, 0, sizeof(ex));
	ex.org = *org;
	ex.chain_id = (char *) chain_id;
	ex.version = version;
	e = step_averages(&ex);
	if (e->n == 0)
		return -1;
	for (k = 0; k < e->n; k++)
		eta += e->avg_ms[k];
	return (long) (eta + 0.5);
}

/* Estimated ms left: the averages of the step lines not yet finished. */
static long
compute_eta(ExecRow *ex, List *lines)
{
	EtaEntry   *e = step_averages(ex);
	ListCell   *lc;
	double		eta = 0;

	if (e->n == 0)
		return -1;
	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);
		int			k;

		if (li->type != 's' || is_final(li->status))
			continue;
		for (k = 0; k < e->n; k++)
			if (e->step_ids[k] == li->step_id)
				eta += e->avg_ms[k];
	}
	return (long) (eta + 0.5);
}

/*
 * Percent of step lines finished.  A failed line counts when the execution
 * went on past it (onFailure warn, or a fallback stands for it); a failure
 * that ends the execution does not move progress, and cancelled lines never
 * count.  So transitions only ever add to it; a control function that
 * reopens lines (resume, retry, skip of a finished execution) first records
 * what was reported in progressFloor, below which it never goes.
 */
static int
compute_progress(ExecRow *ex, List *lines)
{
	ListCell   *lc;
	int			total = 0;
	int			done = 0;

	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type != 's')
			continue;
		total++;
		if (strcmp(li->status, "completed") == 0 || strcmp(li->status, "skipped") == 0 ||
			strcmp(li->status, "compensated") == 0)
			done++;
		else if (strcmp(li->status, "failed") == 0)
		{
			CeStep	   *s = ex->plan ? ce_plan_step_by_id(ex->plan, li->step_id) : NULL;
			bool		past = s && s->on_failure == CE_ONFAIL_WARN;
			ListCell   *lc2;

			foreach(lc2, lines)
			{
				LineInfo   *fl = lfirst(lc2);

				if (fl->type == 'f' && fl->parent_line == li->line_number)
					past = true;
			}
			if (past)
				done++;
		}
	}
	return Max(total > 0 ? (done * 100) / total : 100, ex->progress_floor);
}

static void
progress_from_lines(ExecRow *ex, List *lines)
{
	current_eta = compute_eta(ex, lines);
	current_progress = compute_progress(ex, lines);
}

int
ce_progress_refresh(ExecRow *ex, long *eta_ms)
{
	progress_from_lines(ex, read_lines(ex));
	if (eta_ms)
		*eta_ms = current_eta;
	return current_progress;
}

static void
emit(ExecRow *ex, const char *event, const CeStep *step, const char *status, int attempt)
{
	CeEvent		ev;

	memset(&ev, 0, sizeof(ev));
	ev.event = event;
	ev.org = &ex->org;
	ev.owner = ex->owner;
	ev.execution_id = ex->id_s;
	ev.chain_id = ex->chain_id;
	ev.step_id = step ? step->id : 0;
	ev.step_name = step ? step->name : NULL;
	ev.status = status;
	ev.attempt = attempt;
	ev.progress = current_progress;
	ev.eta_ms = strcmp(event, "chain_completed") == 0 ? 0 : current_eta;
	ce_notify(ex->plan->notify, &ev);
}

void
ce_exec_emit(ExecRow *ex, const char *event, const CeStep *step, const char *status, int attempt)
{
	emit(ex, event, step, status, attempt);
}

/* ---------------------------------------------------------------------
 * Ending an execution
 * --------------------------------------------------------------------- */

static void advance(ExecRow *ex, int own_line);

static void
finish_execution(ExecRow *ex, const char *status, Jsonb *output, Jsonb *error)
{
	Datum		v[5];
	char		n[6] = "     ";

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(status);
	v[3] = jsonb_datum_or_null(output, &n[3]);
	v[4] = jsonb_datum_or_null(error, &n[4]);
	ce_run_query(&q_finish_exec, v, n, false, 0);
	ex->status = pstrdup(status);
	if (strcmp(status, "completed") == 0)
		eta_forget(ex);
	ce_finished_at_commit();
}

void
ce_exec_finish(ExecRow *ex, const char *status, Jsonb *error)
{
	finish_execution(ex, status, NULL, error);
}

/* All non-final lines other than own_line. */
static List *
open_lines(ExecRow *ex, int own_line)
{
	List	   *lines = read_lines(ex);
	List	   *res = NIL;
	ListCell   *lc;

	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->line_number == own_line)
			continue;
		if (strcmp(li->status, "pending") == 0 || strcmp(li->status, "ready") == 0 ||
			strcmp(li->status, "waiting") == 0)
			res = lappend_int(res, li->line_number);
	}
	return res;
}

/* Close the open lines of the execution (not own_line, not locked by others). */
static void
close_open_lines(ExecRow *ex, int own_line, const char *status)
{
	close_lines(ex, open_lines(ex, own_line), status, NULL);
}

void
ce_exec_close_open_lines(ExecRow *ex, const char *status)
{
	close_open_lines(ex, 0, status);
}

static CeQuery q_rollback_candidates = {
	"SELECT line_number, step_id FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status = 'completed' "
	"AND line_type IN ('step', 'fallback') "
	"AND ($3 = 0 OR finished_at > (SELECT max(b.finished_at) FROM chainexec.universal_transaction_lines b "
	"      WHERE b.organization_id = $1 AND b.transaction_id = $2 AND b.step_id = $3 "
	"        AND b.line_type IN ('step', 'fallback'))) "
	"ORDER BY finished_at DESC, line_number DESC",
	3, {UUIDOID, UUIDOID, INT4OID}};

List *
ce_rollback_candidates(ExecRow *ex, int to_step)
{
	Datum		args[3];
	List	   *comp = NIL;
	uint64		i;

	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	args[2] = Int32GetDatum(to_step);
	ce_run_query(&q_rollback_candidates, args, NULL, false, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			ln = DatumGetInt32(getcol(i, 1, &isnull));
		int			sid = DatumGetInt32(getcol(i, 2, &isnull));
		CeStep	   *s = ce_plan_step_by_id(ex->plan, sid);

		if (s && s->rollback_action)
		{
			comp = lappend_int(comp, ln);
			comp = lappend_int(comp, sid);
		}
	}
	return comp;
}

/*
 * A compensation made again (chain_rollback after a cancelled one) keeps
 * the back-off its earlier line was waiting out: control never moves a due
 * time earlier.
 */
static CeQuery q_compensation_keep_due = {
	"UPDATE chainexec.universal_transaction_lines c SET not_before = greatest(c.not_before, p.due) "
	"FROM (SELECT parent_line, max(not_before) AS due FROM chainexec.universal_transaction_lines "
	"      WHERE organization_id = $1 AND transaction_id = $2 AND line_type = 'compensation' "
	"        AND status = 'cancelled' GROUP BY parent_line) p "
	"WHERE c.organization_id = $1 AND c.transaction_id = $2 AND c.line_type = 'compensation' "
	"AND c.status IN ('pending', 'ready') AND c.parent_line = p.parent_line",
	2, {UUIDOID, UUIDOID}};

void
ce_start_compensation(ExecRow *ex, List *comp, Jsonb *error)
{
	Datum		v[4];
	char		n[5] = "    ";
	ListCell   *lc;
	int			i = 0;

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum("compensating");
	v[3] = jsonb_datum_or_null(error, &n[3]);
	ce_run_query(&q_exec_error, v, n, false, 0);
	ex->status = "compensating";

	/* one compensation line per completed step, in reverse completion order */
	for (lc = list_head(comp); lc != NULL; lc = lnext(comp, lnext(comp, lc)))
	{
		int			ln = lfirst_int(lc);
		int			sid = lfirst_int(lnext(comp, lc));

		insert_line(ex, "compensation", ce_plan_step_by_id(ex->plan, sid), i == 0 ? "ready" : "pending", ln);
		i++;
	}
	ce_run_query(&q_compensation_keep_due, v, NULL, false, 0);
	wake_executors();
	emit(ex, "compensation_started", NULL, "compensating", 0);
}

/*
 * The execution failed (status "failed", or "timeout").  Cancels its other
 * open lines and either starts compensation or ends it.
 */
static void
fail_execution(ExecRow *ex, const char *status, Jsonb *error, int own_line)
{
	List	   *comp = NIL;

	close_open_lines(ex, own_line, "cancelled");
	if (ex->plan->rollback_enabled && strcmp(status, "failed") == 0)
		comp = ce_rollback_candidates(ex, 0);
	if (comp == NIL)
	{
		finish_execution(ex, status, NULL, error);
		emit(ex, strcmp(status, "timeout") == 0 ? "chain_timeout" : "chain_failed", NULL, status, 0);
		return;
	}
	ce_start_compensation(ex, comp, error);
}

/* The variables a step sees (step NULL: the execution's own). */
static void
lookup_init(ExecRow *ex, const CeStep *step, int attempt, CeLookupCtx *lk)
{
	memset(lk, 0, sizeof(*lk));
	lk->context = ex->context;
	lk->execution_id = ex->id_s;
	lk->chain_id = ex->chain_id;
	lk->chain_version = ex->version;
	lk->organization_id = ex->org_s;
	if (step)
	{
		lk->step_id = step->id;
		lk->step_name = step->name;
		lk->attempt = attempt;
	}
}

void
ce_step_setup(ExecRow *ex, const CeStep *step, int attempt, CeLookupCtx *lk, CeStepRun *run)
{
	lookup_init(ex, step, attempt, lk);
	memset(run, 0, sizeof(*run));
	run->plan = ex->plan;
	run->step = step;
	run->owner = ex->owner;
	run->org = ex->org;
	run->lookup = lk;
	run->search_path = ex->search_path;
	run->rowcount = -1;
}

/* Whether every success condition holds on the context. */
static bool
check_success(ExecRow *ex, char **failed_cond)
{
	CePlan	   *plan = ex->plan;
	CeLookupCtx lk;
	int			i;

	lookup_init(ex, NULL, 0, &lk);
	for (i = 0; i < plan->nsuccess; i++)
	{
		CeValue		v;
		CeError		err;

		memset(&err, 0, sizeof(err));
		if (!ce_expr_eval(plan->success_expr[i], ce_lookup, &lk, &v, &err) || !ce_value_truthy(&v))
		{
			*failed_cond = plan->success_text[i];
			return false;
		}
	}
	return true;
}

static void
complete_execution(ExecRow *ex, int own_line)
{
	char	   *cond = NULL;
	Jsonb	   *output = ex->context;

	if (!check_success(ex, &cond))
	{
		Jsonb	   *err = error_jsonb("validation_failed", "23514",
									  psprintf("success condition \"%s\" is false", cond),
									  NULL, NULL, 0);

		fail_execution(ex, "failed", err, own_line);
		return;
	}
	if (ex->plan->output_schema)
	{
		CeJson	   *ctx = ce_jsonb_to_cejson(ex->context);

		output = ce_cejson_to_jsonb(ce_schema_filter(ex->plan->output_schema, ctx));
	}
	current_progress = 100;
	finish_execution(ex, "completed", output, NULL);
	emit(ex, "chain_completed", NULL, "completed", 0);
}

/* ---------------------------------------------------------------------
 * Readiness
 * --------------------------------------------------------------------- */

static bool
is_final(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "skipped") == 0 ||
		strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0 ||
		strcmp(status, "compensated") == 0;
}

static bool
is_active(const char *status)
{
	return strcmp(status, "ready") == 0 || strcmp(status, "waiting") == 0 ||
		strcmp(status, "running") == 0;
}

static CeQuery q_compensation_error = {
	"UPDATE chainexec.universal_transactions t "
	"SET error = coalesce(t.error, '{}') || jsonb_build_object('compensationError', "
	"  (SELECT l.error || jsonb_build_object('step', l.step_name, 'stepId', l.step_id) "
	"     FROM chainexec.universal_transaction_lines l "
	"    WHERE l.organization_id = $1 AND l.transaction_id = $2 "
	"      AND l.line_type = 'compensation' AND l.status = 'failed' "
	"    ORDER BY l.line_number LIMIT 1)) "
	"WHERE t.organization_id = $1 AND t.id = $2",
	2, {UUIDOID, UUIDOID}};

/*
 * Compensation: ready the next compensation line, or end the execution.
 */
static void
advance_compensation(ExecRow *ex, List *lines)
{
	ListCell   *lc;
	bool		any_failed = false;
	int			next = 0;

	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type != 'c')
			continue;
		if (is_active(li->status))
			return;				/* one at a time; still running */
		if (strcmp(li->status, "failed") == 0)
			any_failed = true;
		if (strcmp(li->status, "pending") == 0 && next == 0)
			next = li->line_number;
	}
	if (next)
	{
		Datum		v[3];

		v[0] = UUIDPGetDatum(&ex->org);
		v[1] = UUIDPGetDatum(&ex->id);
		v[2] = PointerGetDatum(int_array(list_make1_int(next)));
		ce_run_query(&q_promote, v, NULL, false, 0);
		wake_executors();
		return;
	}
	if (any_failed)
	{
		/* the header's error keeps the cause and adds the compensation's */
		Datum		v[2];

		v[0] = UUIDPGetDatum(&ex->org);
		v[1] = UUIDPGetDatum(&ex->id);
		ce_run_query(&q_compensation_error, v, NULL, false, 0);
	}
	finish_execution(ex, any_failed ? "failed" : "compensated", NULL, NULL);
	emit(ex, "compensation_completed", NULL, any_failed ? "failed" : "compensated", 0);
	emit(ex, "chain_failed", NULL, any_failed ? "failed" : "compensated", 0);
}

/*
 * Make lines ready whose predecessors have all finished, within
 * maxConcurrency; end the execution when nothing is left.  Called with the
 * header locked.
 */
static void
advance(ExecRow *ex, int own_line)
{
	CePlan	   *plan = ex->plan;
	List	   *lines = read_lines(ex);
	ListCell   *lc;
	LineInfo  **by_step = palloc0(sizeof(LineInfo *) * plan->nsteps);
	bool	   *finished = palloc0(sizeof(bool) * plan->nsteps);
	int			active = 0;
	int			pending = 0;
	int			waiting = 0;
	List	   *promote = NIL;
	int			i;

	progress_from_lines(ex, lines);

	if (strcmp(ex->status, "compensating") == 0)
	{
		advance_compensation(ex, lines);
		return;
	}
	if (strcmp(ex->status, "running") != 0 && strcmp(ex->status, "waiting") != 0 &&
		strcmp(ex->status, "pending") != 0)
		return;					/* paused, or ended */

	/* step lines by step index */
	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type == 's')
		{
			/* step lines are numbered in array order: line n is steps[n - 1] */
			i = li->line_number - 1;
			if (i >= 0 && i < plan->nsteps && plan->steps[i].id == li->step_id)
				by_step[i] = li;
			else
			{
				for (i = 0; i < plan->nsteps; i++)
					if (plan->steps[i].id == li->step_id)
						by_step[i] = li;
			}
		}
		if (li->type != 'c' && is_active(li->status))
		{
			active++;
			if (strcmp(li->status, "waiting") == 0)
				waiting++;
		}
	}
	for (i = 0; i < plan->nsteps; i++)
	{
		LineInfo   *li = by_step[i];

		if (li == NULL)
			continue;
		finished[i] = is_final(li->status);
		if (finished[i] && strcmp(li->status, "failed") == 0)
		{
			/* a step replaced by its fallback finishes with the fallback */
			foreach(lc, lines)
			{
				LineInfo   *fl = lfirst(lc);

				if (fl->type == 'f' && fl->parent_line == li->line_number && !is_final(fl->status))
					finished[i] = false;
			}
		}
		if (strcmp(li->status, "pending") == 0)
			pending++;
	}

	/*
	 * A fallback line set back to pending (a pause) runs again first: it
	 * stands for a step that has failed, so nothing else waits for it.
	 */
	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type != 'f' || strcmp(li->status, "pending") != 0)
			continue;
		if (plan->max_concurrency > 0 && active >= plan->max_concurrency)
		{
			pending++;			/* not finished: the execution goes on */
			continue;
		}
		promote = lappend_int(promote, li->line_number);
		active++;
	}

	for (i = 0; i < plan->nsteps; i++)
	{
		LineInfo   *li = by_step[i];
		CeStep	   *s = &plan->steps[i];
		int			k;
		bool		ok = true;

		if (li == NULL || strcmp(li->status, "pending") != 0)
			continue;
		for (k = 0; k < s->npreds; k++)
			if (!finished[s->preds[k]])
				ok = false;
		if (!ok)
			continue;
		if (plan->max_concurrency > 0 && active >= plan->max_concurrency)
			break;
		promote = lappend_int(promote, li->line_number);
		active++;
		pending--;
	}
	if (promote != NIL)
	{
		Datum		v[3];

		v[0] = UUIDPGetDatum(&ex->org);
		v[1] = UUIDPGetDatum(&ex->id);
		v[2] = PointerGetDatum(int_array(promote));
		ce_run_query(&q_promote, v, NULL, false, 0);
		wake_executors_n(list_length(promote));
	}

	if (active == 0 && pending == 0)
	{
		complete_execution(ex, own_line);
		return;
	}
	if (active == 0)
	{
		/* pending lines whose predecessors can never finish */
		fail_execution(ex, "failed",
					   error_jsonb("system_error", "55000", "no step can run: the remaining steps wait for steps that did not finish",
								   NULL, NULL, 0), own_line);
		return;
	}
	if (waiting == active && strcmp(ex->status, "waiting") != 0)
		set_exec_status(ex, "waiting");
	else if (waiting < active && strcmp(ex->status, "running") != 0)
		set_exec_status(ex, "running");
}

/* ---------------------------------------------------------------------
 * Conditions
 * --------------------------------------------------------------------- */

typedef enum CondAction
{
	COND_RUN,
	COND_SKIP,
	COND_FAIL,
	COND_SKIP_TO
} CondAction;

static CondAction
eval_condition(const CeStep *step, CeLookupCtx *lk, int *skip_to)
{
	CeValue		v;
	CeError		err;

	memset(&err, 0, sizeof(err));
	if (!ce_expr_eval(step->condition_expr, ce_lookup, lk, &v, &err))
		return COND_FAIL;
	if (v.type == CEV_STRING)
	{
		char	   *s = pnstrdup(v.str, v.len);

		if (strcmp(s, "continue") == 0)
			return COND_RUN;
		if (strcmp(s, "skip") == 0)
			return COND_SKIP;
		if (strcmp(s, "fail") == 0)
			return COND_FAIL;
		if (strncmp(s, "skip_to_step_", 13) == 0)
		{
			*skip_to = atoi(s + 13);
			return COND_SKIP_TO;
		}
	}
	return ce_value_truthy(&v) ? COND_RUN : COND_SKIP;
}

/*
 * Skip every not-yet-finished step line between step index from (exclusive
 * unless include_from) and the step with id target (exclusive).
 */
static void
skip_to_step(ExecRow *ex, int from_index, int target_id)
{
	CePlan	   *plan = ex->plan;
	List	   *lines = read_lines(ex);
	List	   *skip = NIL;
	int			i;
	int			target = -1;
	ListCell   *lc;

	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].id == target_id)
			target = i;
	if (target < 0)
		return;
	for (i = from_index + 1; i < target; i++)
	{
		foreach(lc, lines)
		{
			LineInfo   *li = lfirst(lc);

			if (li->type == 's' && li->step_id == plan->steps[i].id &&
				(strcmp(li->status, "pending") == 0 || strcmp(li->status, "ready") == 0))
				skip = lappend_int(skip, li->line_number);
		}
	}
	close_lines(ex, skip, "skipped", NULL);
}

/* ---------------------------------------------------------------------
 * The transition
 * --------------------------------------------------------------------- */

static Jsonb *
input_jsonb(const char *rendered)
{
	StringInfoData b;

	if (rendered == NULL)
		return NULL;
	initStringInfo(&b);
	appendStringInfoString(&b, "{\"input\":");
	escape_json(&b, rendered);
	appendStringInfoChar(&b, '}');
	return ce_text_to_jsonb(b.data);
}

static Jsonb *
output_jsonb(CeStepRun *run)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"variables\":");
	if (run->outputs)
		JsonbToCString(&b, &run->outputs->root, VARSIZE(run->outputs));
	else
		appendStringInfoString(&b, "{}");
	if (run->rowcount >= 0)
		appendStringInfo(&b, ",\"rowCount\":" INT64_FORMAT, run->rowcount);
	if (run->text)
	{
		appendStringInfoString(&b, ",\"text\":");
		escape_json(&b, run->text);
	}
	appendStringInfoChar(&b, '}');
	return ce_text_to_jsonb(b.data);
}

/* Whether the execution may still record work (else the line is dropped). */
static bool
execution_live(ExecRow *ex, LineRow *line)
{
	if (strcmp(ex->status, "compensating") == 0)
		return strcmp(line->line_type, "compensation") == 0;
	return strcmp(ex->status, "running") == 0 || strcmp(ex->status, "waiting") == 0 ||
		strcmp(ex->status, "pending") == 0 || strcmp(ex->status, "paused") == 0;
}

static int
step_index(const CePlan *plan, const CeStep *step)
{
	int			i;

	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].id == step->id)
			return i;
	return -1;
}

/*
 * The execution ended (cancelled, timed out) while the attempt ran: the
 * line is cancelled, with the attempt, its start and end, and the error
 * that interrupted it.
 */
static void
close_interrupted(ExecRow *ex, LineRow *line, int attempt, Jsonb *input, Jsonb *error)
{
	LineUpdate	u;

	memset(&u, 0, sizeof(u));
	u.status = "cancelled";
	u.attempt = attempt;
	u.input = input;
	u.error = error;
	u.started = line->ran_now;
	u.finished = true;
	update_line(ex, line->line_number, &u);
}

/* A failed attempt: retry, or apply the step's onFailure. */
static void
handle_failure(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run,
			   int attempt, Jsonb *input)
{
	CeRetry		r = step->retry;
	Jsonb	   *err = run_error_jsonb(run, attempt);
	LineUpdate	u;
	bool		compensation = strcmp(line->line_type, "compensation") == 0;

	lock_header(ex);
	if (!execution_live(ex, line))
	{
		close_interrupted(ex, line, attempt, input, err);
		return;
	}
	if (!compensation && ex->has_deadline && ex->deadline <= GetCurrentTimestamp())
	{
		/* the execution's deadline cut the step short (chain_run has no sweep) */
		close_interrupted(ex, line, attempt, input, err);
		fail_execution(ex, "timeout",
					   error_jsonb("execution_timeout", "57014", "execution exceeded its maximum execution time",
								   NULL, NULL, 0), line->line_number);
		return;
	}
	if (ex->max_retries >= 0 && !compensation)
		r.maxRetries = ex->max_retries;

	memset(&u, 0, sizeof(u));
	u.attempt = attempt;
	u.input = input;
	u.started = line->ran_now;
	u.error = err;

	if (attempt <= r.maxRetries && ce_retry_matches(&r, run->failure_type, run->sqlstate) &&
		strcmp(ex->status, "paused") != 0 &&
		strcmp(run->failure_type, "worker_crashed") != 0)
	{
		long		delay = ce_retry_delay_ms(&r, attempt);

		if (r.jitter && delay > 0)
			delay = (long) (delay * (1.0 + (ce_random_fraction() - 0.5) * 0.5));
		u.status = "ready";
		u.has_not_before = true;
		u.not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
		u.finished = false;
		update_line(ex, line->line_number, &u);
		advance(ex, line->line_number);
		emit(ex, "step_retry_scheduled", step, "ready", attempt);
		return;
	}

	if (compensation)
	{
		u.status = "failed";
		u.finished = true;
		update_line(ex, line->line_number, &u);
		advance(ex, line->line_number);
		emit(ex, "step_failed", step, "failed", attempt);
		return;
	}

	switch (step->on_failure)
	{
		case CE_ONFAIL_WARN:
			u.status = "failed";
			u.finished = true;
			update_line(ex, line->line_number, &u);
			advance(ex, line->line_number);
			emit(ex, "step_failed", step, "failed", attempt);
			break;
		case CE_ONFAIL_SKIP:
			u.status = "skipped";
			u.finished = true;
			update_line(ex, line->line_number, &u);
			advance(ex, line->line_number);
			emit(ex, "step_skipped", step, "skipped", attempt);
			break;
		case CE_ONFAIL_FALLBACK:
			if (step->fallback && strcmp(line->line_type, "fallback") != 0)
			{
				u.status = "failed";
				u.finished = true;
				update_line(ex, line->line_number, &u);
				insert_line(ex, "fallback", step->fallback, "ready", line->line_number);
				wake_executors();
				advance(ex, line->line_number);
				emit(ex, "step_failed", step, "failed", attempt);
				break;
			}
			/* FALLTHROUGH */
		case CE_ONFAIL_FAIL:
		default:
			u.status = "failed";
			u.finished = true;
			update_line(ex, line->line_number, &u);
			ce_progress_refresh(ex, NULL);
			emit(ex, "step_failed", step, "failed", attempt);
			fail_execution(ex, "failed", execution_error(err, step), line->line_number);
			break;
	}
}

/* A successful attempt (subtransaction still open). */
static void
handle_success(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run,
			   int attempt, Jsonb *input)
{
	LineUpdate	u;
	Jsonb	   *merged = NULL;
	bool		compensation = strcmp(line->line_type, "compensation") == 0;
	CondAction	act = COND_RUN;
	int			skip_to = 0;

	lock_header(ex);
	if (!execution_live(ex, line))
	{
		ce_step_rollback(run);
		close_interrupted(ex, line, attempt, input, NULL);
		return;
	}

	if (run->outputs && !compensation)
	{
		CeContextError err;

		/* undeclared outputs (row columns, a handler's keys) may name "chain" */
		merged = ce_context_merge(ex->context, run->outputs, "output",
								  psprintf("step \"%s\"", step->name), &err);
		if (merged == NULL)
		{
			ce_step_rollback(run);
			ce_step_fail(run, "validation_failed", err.sqlstate, "%s", err.message);
			run->detail = err.detail;
			run->hint = err.hint;
			/* the header is locked already; handle_failure relocks cheaply */
			handle_failure(ex, line, step, run, attempt, input);
			return;
		}
	}

	/* routing decision, taken after the step ran */
	if (!compensation && step->condition_expr && step->condition_is_routing)
	{
		CeLookupCtx lk;

		lookup_init(ex, step, attempt, &lk);
		lk.extra = run->outputs;
		act = eval_condition(step, &lk, &skip_to);
	}

	ce_step_release(run);

	/* jsonb is canonical: the same bytes mean the same variables */
	if (merged && VARSIZE(merged) == VARSIZE(ex->context) &&
		memcmp(merged, ex->context, VARSIZE(merged)) == 0)
		merged = NULL;
	if (merged)
		ce_exec_set_context(ex, merged);

	memset(&u, 0, sizeof(u));
	u.status = "completed";
	u.attempt = attempt;
	u.input = input;
	u.started = line->ran_now;
	u.output = output_jsonb(run);
	u.finished = true;
	update_line(ex, line->line_number, &u);

	if (compensation)
	{
		if (line->parent_line > 0)
			set_line_status(ex, line->parent_line, "compensated");
		advance(ex, line->line_number);
		emit(ex, "step_completed", step, "compensated", attempt);
		return;
	}

	if (act == COND_SKIP_TO && step_index(ex->plan, step) >= 0)
		skip_to_step(ex, step_index(ex->plan, step), skip_to);
	if (act == COND_FAIL)
	{
		ce_progress_refresh(ex, NULL);
		emit(ex, "step_completed", step, "completed", attempt);
		fail_execution(ex, "failed",
					   execution_error(error_jsonb("business_rule_violation", "P0001",
												   psprintf("condition of step \"%s\" failed the execution", step->name),
												   NULL, NULL, 0), step),
					   line->line_number);
		return;
	}
	advance(ex, line->line_number);
	emit(ex, "step_completed", step, "completed", attempt);
}

/* Put a step line into the waiting state (wait timer or external step). */
static void
start_waiting(ExecRow *ex, LineRow *line, const CeStep *step, int attempt, char *rendered)
{
	LineUpdate	u;

	memset(&u, 0, sizeof(u));
	u.status = "waiting";
	u.attempt = attempt;
	u.started = true;
	u.has_not_before = true;
	if (step->kind == CE_STEP_WAIT)
		u.not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), step->wait_ms);
	else if (step->timeout_ms > 0)
		u.not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), step->timeout_ms);
	else
		u.not_before = DT_NOEND;
	/* external steps keep their rendered input so the worker outside can read it */
	u.input = input_jsonb(rendered);
	{
		bool		save = ex->save_intermediate;

		ex->save_intermediate = true;
		update_line(ex, line->line_number, &u);
		ex->save_intermediate = save;
	}
	lock_header(ex);
	advance(ex, line->line_number);
	emit(ex, "step_started", step, "waiting", attempt);
}

static char *
render_input(const CeStep *step, CeLookupCtx *lk, CeStepRun *run)
{
	CeError		err;
	size_t		len;
	char	   *s;

	if (step->input_tpl == NULL)
		return NULL;
	memset(&err, 0, sizeof(err));
	s = ce_template_render_max(step->input_tpl, ce_lookup, lk, (size_t) ce_max_context_bytes, &len, &err);
	if (s == NULL)
	{
		if (err.code == CE_ERR_MISSING_VAR)
			ce_step_fail(run, "insufficient_data", "22004", "%s", err.message);
		else
			ce_step_fail(run, "validation_failed", ce_errcode_sqlstate(err.code), "%s", err.message);
	}
	return s;
}

/* Process one claimed line.  The header is not locked yet. */
static void
process_line(ExecRow *ex, LineRow *line)
{
	CePlan	   *plan;
	CeStep	   *step;
	CeLookupCtx lk;
	CeStepRun	run;
	bool		compensation = strcmp(line->line_type, "compensation") == 0;
	int			attempt;
	Jsonb	   *input = NULL;

	read_header(ex);
	plan = ce_plan_get(&ex->org, ex->chain_id, ex->version);
	ex->plan = plan;
	step = ce_plan_step_by_id(plan, line->step_id);
	if (step == NULL)
		elog(ERROR, "step %d of chain \"%s\" version %d not found", line->step_id, ex->chain_id, ex->version);

	pgstat_report_activity(STATE_RUNNING, psprintf("chainexec: %s/%s %s (execution %s)",
												   ex->chain_id, step->name,
												   compensation ? "compensation" : "step", ex->id_s));

	if (!execution_live(ex, line))
	{
		set_line_status(ex, line->line_number, "cancelled");
		return;
	}
	if (strcmp(ex->status, "paused") == 0)
	{
		/*
		 * Paused: a ready line waits for chain_resume; a timer that came due
		 * keeps its due time aside, and completes (or times out) at once on
		 * resume, as the same attempt.
		 */
		if (strcmp(line->status, "waiting") == 0)
		{
			Datum		v[3];

			v[0] = UUIDPGetDatum(&ex->org);
			v[1] = UUIDPGetDatum(&ex->id);
			v[2] = Int32GetDatum(line->line_number);
			ce_run_query(&q_park_timer, v, NULL, false, 0);
		}
		else
			set_line_status(ex, line->line_number, "pending");
		return;
	}
	if (ex->has_deadline && ex->deadline <= GetCurrentTimestamp() && !compensation)
	{
		lock_header(ex);
		if (execution_live(ex, line))
		{
			set_line_status(ex, line->line_number, "cancelled");
			fail_execution(ex, "timeout",
						   error_jsonb("execution_timeout", "57014", "execution exceeded its maximum execution time",
									   NULL, NULL, 0), line->line_number);
		}
		return;
	}

	/*
	 * The header stays unlocked while the step runs (pending becomes
	 * running in advance(), after the step), so that steps of one execution
	 * run in parallel and control functions never wait for a step.
	 */
	ce_step_setup(ex, step, 0, &lk, &run);
	run.compensation = compensation;
	run.deadline = ex->has_deadline && !compensation ? ex->deadline : 0;

	/* A timer that came due: a wait step ends, an external step times out. */
	if (strcmp(line->status, "waiting") == 0)
	{
		attempt = line->attempt;
		lk.attempt = attempt;
		if (step->kind == CE_STEP_WAIT)
		{
			run.ok = true;
			handle_success(ex, line, step, &run, attempt, NULL);
		}
		else
		{
			ce_step_fail(&run, "execution_timeout", "57014",
						 "external step \"%s\" got no result within %d ms", step->name, step->timeout_ms);
			handle_failure(ex, line, step, &run, attempt, NULL);
		}
		return;
	}

	/* poison: its executor died running it too many times in a row */
	if (line->crashes >= ce_max_crash_attempts)
	{
		attempt = line->attempt;
		lk.attempt = attempt;
		ce_step_fail(&run, "worker_crashed", "57P02",
					 "executor died %d times in a row running step \"%s\"", line->crashes, step->name);
		run.hint = pstrdup("chainexec.max_crash_attempts sets how many attempts may end their executor; the server log says how each one ended.");
		handle_failure(ex, line, step, &run, attempt, NULL);
		return;
	}

	attempt = line->attempt + 1;
	lk.attempt = attempt;

	if (!compensation)
	{
		int			i;

		/* conditionalExecution, taken before the step runs */
		if (step->condition_expr && !step->condition_is_routing)
		{
			int			skip_to = 0;
			CondAction	act = eval_condition(step, &lk, &skip_to);
			LineUpdate	u;

			if (act != COND_RUN)
			{
				lock_header(ex);
				if (!execution_live(ex, line))
				{
					set_line_status(ex, line->line_number, "cancelled");
					return;
				}
				memset(&u, 0, sizeof(u));
				u.attempt = line->attempt;
				u.finished = true;
				if (act == COND_FAIL)
				{
					Jsonb	   *err = error_jsonb("business_rule_violation", "P0001",
												  psprintf("condition of step \"%s\" failed the execution", step->name),
												  NULL, NULL, 0);

					u.status = "failed";
					u.error = err;
					update_line(ex, line->line_number, &u);
					emit(ex, "step_failed", step, "failed", attempt);
					fail_execution(ex, "failed", execution_error(err, step), line->line_number);
					return;
				}
				u.status = "skipped";
				update_line(ex, line->line_number, &u);
				if (act == COND_SKIP_TO)
					skip_to_step(ex, step_index(plan, step), skip_to);
				advance(ex, line->line_number);
				emit(ex, "step_skipped", step, "skipped", attempt);
				return;
			}
		}

		/* inputVariables must be set */
		for (i = 0; i < step->ninput_vars; i++)
		{
			CeValue		v;
			const char *path[1];

			path[0] = step->input_vars[i];
			if (!ce_lookup(&lk, path, 1, &v) || v.type == CEV_NULL)
			{
				ce_step_fail(&run, "insufficient_data", "22004",
							 "input variable \"%s\" of step \"%s\" is not set",
							 step->input_vars[i], step->name);
				handle_failure(ex, line, step, &run, attempt, NULL);
				return;
			}
		}

		run.rendered_input = render_input(step, &lk, &run);
		if (step->input_tpl && run.rendered_input == NULL)
		{
			handle_failure(ex, line, step, &run, attempt, NULL);
			return;
		}
		input = input_jsonb(run.rendered_input);

		if (step->kind == CE_STEP_WAIT || (step->kind == CE_STEP_EXTERNAL && step->instruction_set == NULL))
		{
			start_waiting(ex, line, step, attempt, run.rendered_input);
			return;
		}
	}

	line->ran_now = true;
	ce_inflight_begin(&ex->org, &ex->id, line->line_number, attempt);
	ce_step_run(&run);
	if (run.ok)
		handle_success(ex, line, step, &run, attempt, input);
	else
		handle_failure(ex, line, step, &run, attempt, input);
}

/*
 * The body of a transition, in the caller's transaction (with an active
 * snapshot).
 */
CeTransitionResult
ce_transition_in_xact(const pg_uuid_t *only_execution, const pg_uuid_t *only_org)
{
	LineRow		line;
	ExecRow		ex;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;
	char	   *search_path;
	CeTransitionResult result = CE_TR_NONE;

	/*
	 * A cancel (chain_cancel, a deadline) is meant for a running step: hold
	 * it off during the bookkeeping; step.c lets it in while the step runs.
	 */
	HOLD_CANCEL_INTERRUPTS();
	SPI_connect();
	search_path = pstrdup(namespace_search_path);
	save_nestlevel = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		memset(&ex, 0, sizeof(ex));
		memset(&line, 0, sizeof(line));
		ex.search_path = search_path;
		if (only_org)
			memcpy(&ex.org, only_org, sizeof(pg_uuid_t));
		if (claim_line(only_execution ? &q_claim_ready_exec : &q_claim_ready, only_execution, &line, &ex.org, &ex.id) ||
			claim_line(only_execution ? &q_claim_waiting_exec : &q_claim_waiting, only_execution, &line, &ex.org, &ex.id))
		{
			current_progress = 0;
			current_eta = -1;
			claimed.valid = true;
			claimed.org = ex.org;
			claimed.id = ex.id;
			claimed.line_number = line.line_number;
			ce_running_set(&ex.id, line.line_number);
			step_execution = ex.id;
			in_step = true;
			process_line(&ex, &line);
			in_step = false;
			ce_running_clear();
			result = CE_TR_DONE;
		}
	}
	PG_CATCH();
	{
		in_step = false;
		ce_running_clear();
		SetUserIdAndSecContext(save_user, save_sec);
		RESUME_CANCEL_INTERRUPTS();
		PG_RE_THROW();
	}
	PG_END_TRY();
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	RESUME_CANCEL_INTERRUPTS();
	return result;
}

static CeQuery q_claim_line = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3 "
	"AND status IN ('ready', 'waiting') FOR UPDATE SKIP LOCKED", 3, {UUIDOID, UUIDOID, INT4OID}};

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

/*
 * The line the last transition claimed, when its transaction did not
 * commit (an error out of the transition): clears the record.
 */
bool
ce_transition_take_claim(pg_uuid_t *org, pg_uuid_t *id, int *line_number)
{
	if (!claimed.valid)
		return false;
	claimed.valid = false;
	*org = claimed.org;
	*id = claimed.id;
	*line_number = claimed.line_number;
	return true;
}

/*
 * Record, in a transaction of its own, an error thrown out of a
 * transition (outside the step's subtransaction) on the line it had
 * claimed, so that an executor does not claim the same line again and
 * again while other work waits: the attempt counts, with failure type
 * internal_error, and the line's retry settings and onFailure apply as
 * for any failure.  With plain (when that too threw), the line and its
 * execution are just marked failed.
 */
void
ce_transition_fail_line(const pg_uuid_t *org, const pg_uuid_t *id, int line_number,
						const char *sqlstate, const char *message, bool plain)
{
	Oid			save_user;
	int			save_sec;
	int			level;
	Datum		args[4];

	if (!ce_engine_xact_begin(NULL))
	{
		CommitTransactionCommand();
		return;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	level = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);

	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = UUIDPGetDatum((pg_uuid_t *) id);
	args[2] = Int32GetDatum(line_number);
	if (plain)
	{
		Jsonb	   *err = error_jsonb("internal_error", sqlstate, message, NULL, NULL, 0);

		args[3] = JsonbPGetDatum(err);
		ce_run_query(&q_fail_line_plain, args, NULL, false, 0);
		if (SPI_processed > 0)
		{
			args[2] = JsonbPGetDatum(err);
			ce_run_query(&q_fail_exec_plain, args, NULL, false, 0);
		}
	}
	else
	{
		ExecRow		ex;
		LineRow		line;
		pg_uuid_t	o;
		pg_uuid_t	i;

		memset(&ex, 0, sizeof(ex));
		memset(&line, 0, sizeof(line));
		o = *org;
		i = *id;
		ce_run_query(&q_claim_line, args, NULL, false, 1);
		if (SPI_processed == 1)
		{
			bool		isnull;
			CeStep	   *step;
			CeStepRun	run;
			int			attempt;

			line.line_number = DatumGetInt32(getcol(0, 3, &isnull));
			line.line_type = getcol_text(0, 4);
			line.step_id = DatumGetInt32(getcol(0, 5, &isnull));
			line.step_name = getcol_text(0, 6);
			line.status = getcol_text(0, 7);
			line.attempt = DatumGetInt32(getcol(0, 8, &isnull));
			line.parent_line = DatumGetInt32(getcol(0, 9, &isnull));
			line.ran_now = true;
			ex.org = o;
			ex.id = i;
			read_header(&ex);
			ex.plan = ce_plan_get(&ex.org, ex.chain_id, ex.version);
			step = ce_plan_step_by_id(ex.plan, line.step_id);
			if (step == NULL)
				elog(ERROR, "step %d of chain \"%s\" version %d not found",
					 line.step_id, ex.chain_id, ex.version);
			attempt = strcmp(line.status, "waiting") == 0 ? line.attempt : line.attempt + 1;
			memset(&run, 0, sizeof(run));
			run.step = step;
			run.plan = ex.plan;
			run.rowcount = -1;
			ce_step_fail(&run, "internal_error", sqlstate, "%s", message);
			run.hint = pstrdup("The transition of this step failed outside the step; the server log has the error.");
			current_progress = 0;
			current_eta = -1;
			handle_failure(&ex, &line, step, &run, attempt, NULL);
		}
	}

	AtEOXact_GUC(false, level);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

CeTransitionResult
ce_transition(const pg_uuid_t *only_execution)
{
	CeTransitionResult r;
	bool		changed;

	if (!ce_engine_xact_begin(&changed))
	{
		CommitTransactionCommand();
		return CE_TR_GONE;
	}
	if (changed)
		ext_owner = InvalidOid;
	PushActiveSnapshot(GetTransactionSnapshot());
	claimed.valid = false;
	r = ce_transition_in_xact(only_execution, NULL);
	PopActiveSnapshot();
	CommitTransactionCommand();
	claimed.valid = false;
	ce_inflight_end();
	pgstat_report_stat(false);
	return r;
}

/* ---------------------------------------------------------------------
 * Timers, deadlines, recovery
 * --------------------------------------------------------------------- */

TimestampTz
ce_next_due_in_xact(const pg_uuid_t *only_execution, const pg_uuid_t *only_org)
{
	TimestampTz result = DT_NOEND;
	int			ret;
	bool		isnull;
	Datum		d;
	int			level;

	SPI_connect();
	level = ce_fixed_search_path();
	if (only_execution)
	{
		Datum		args[2];
		Oid			types[2] = {UUIDOID, UUIDOID};

		args[0] = UUIDPGetDatum((pg_uuid_t *) only_org);
		args[1] = UUIDPGetDatum((pg_uuid_t *) only_execution);
		ret = SPI_execute_with_args("SELECT least((SELECT min(not_before) FROM chainexec.universal_transaction_lines "
									"WHERE organization_id = $1 AND transaction_id = $2 AND status IN ('ready', 'waiting')), "
									"(SELECT deadline FROM chainexec.universal_transactions "
									"WHERE organization_id = $1 AND id = $2 AND finished_at IS NULL "
									"AND status IN ('pending', 'running', 'waiting')))",
									2, types, args, NULL, true, 1);
	}
	else
		ret = SPI_execute("SELECT least((SELECT min(not_before) FROM chainexec.universal_transaction_lines l WHERE status = 'ready' "
						  "AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
						  "AND t.organization_id = l.organization_id AND t.id = l.transaction_id)), "
						  "(SELECT not_before FROM chainexec.universal_transaction_lines l WHERE status = 'waiting' "
						  "AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
						  "AND t.organization_id = l.organization_id AND t.id = l.transaction_id) "
						  "ORDER BY not_before LIMIT 1), "
						  "(SELECT min(deadline) FROM chainexec.universal_transactions "
						  "WHERE deadline IS NOT NULL AND finished_at IS NULL))",
						  true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		d = getcol(0, 1, &isnull);
		if (!isnull)
			result = DatumGetTimestampTz(d);
	}
	AtEOXact_GUC(false, level);
	SPI_finish();
	return result;
}

TimestampTz
ce_next_due(const pg_uuid_t *only_execution)
{
	TimestampTz r;
	pg_uuid_t	org;

	ce_current_org(&org);
	if (!ce_engine_xact_begin(NULL))
	{
		CommitTransactionCommand();
		return DT_NOEND;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	r = ce_next_due_in_xact(only_execution, &org);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return r;
}

/* End executions past their deadline (status timeout), in the current transaction. */
int
ce_sweep_deadlines_in_xact(void)
{
	int			n = 0;
	uint64		i;
	int			ret;
	List	   *found = NIL;
	ListCell   *lc;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;

	SPI_connect();
	save_nestlevel = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	ret = SPI_execute("SELECT organization_id, id FROM chainexec.universal_transactions "
					  "WHERE deadline <= now() AND finished_at IS NULL "
					  "AND status IN ('pending', 'running', 'waiting', 'paused') "
					  "ORDER BY deadline LIMIT 100 FOR NO KEY UPDATE SKIP LOCKED", false, 0);
	if (ret == SPI_OK_SELECT)
	{
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			pg_uuid_t  *pair = palloc(sizeof(pg_uuid_t) * 2);

			memcpy(&pair[0], DatumGetUUIDP(getcol(i, 1, &isnull)), sizeof(pg_uuid_t));
			memcpy(&pair[1], DatumGetUUIDP(getcol(i, 2, &isnull)), sizeof(pg_uuid_t));
			found = lappend(found, pair);
		}
	}
	foreach(lc, found)
	{
		pg_uuid_t  *pair = lfirst(lc);
		ExecRow		ex;

		memset(&ex, 0, sizeof(ex));
		ex.org = pair[0];
		ex.id = pair[1];
		read_header(&ex);
		ex.plan = ce_plan_get(&ex.org, ex.chain_id, ex.version);
		ce_progress_refresh(&ex, NULL);
		fail_execution(&ex, "timeout",
					   error_jsonb("execution_timeout", "57014", "execution exceeded its maximum execution time",
								   NULL, NULL, 0), 0);
		/* interrupt steps still running, once this commits */
		ce_signal_running_at_commit(&ex.id);
		n++;
	}
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	return n;
}

int
ce_sweep_deadlines(void)
{
	int			n;

	if (!ce_engine_xact_begin(NULL))
	{
		CommitTransactionCommand();
		return 0;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	n = ce_sweep_deadlines_in_xact();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return n;
}

void
ce_recover_report(void)
{
	int			ret;

	if (!ce_engine_xact_begin(NULL))
	{
		CommitTransactionCommand();
		return;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	ret = SPI_execute("SELECT count(*) FROM chainexec.universal_transactions "
					  "WHERE finished_at IS NULL AND status IN ('running', 'waiting', 'compensating', 'pending')",
					  true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		int64		n = DatumGetInt64(getcol(0, 1, &isnull));

		if (n > 0)
			ereport(LOG,
					(errmsg("chainexec: resuming %lld unfinished executions", (long long) n),
					 errdetail("Lines that were running when the server stopped are still ready and run again; their effects were rolled back with their transaction.")));
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* ---------------------------------------------------------------------
 * For the control functions (control.c, through engine_int.h)
 * --------------------------------------------------------------------- */

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
	read_header(ex);
	ex->plan = ce_plan_get(&ex->org, ex->chain_id, ex->version);
}

void
ce_exec_lock(ExecRow *ex)
{
	lock_header(ex);
}

List *
ce_exec_lines(ExecRow *ex)
{
	return read_lines(ex);
}

void
ce_exec_advance(ExecRow *ex)
{
	advance(ex, 0);
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

Jsonb *
ce_error_jsonb(const char *failure_type, const char *sqlstate, const char *message,
			   const char *detail, const char *hint, int attempt)
{
	return error_jsonb(failure_type, sqlstate, message, detail, hint, attempt);
}

void
ce_line_succeeded(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run, int attempt)
{
	handle_success(ex, line, step, run, attempt, NULL);
}

void
ce_line_failed(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run, int attempt)
{
	handle_failure(ex, line, step, run, attempt, NULL);
}

/*
 * An attempt whose executor died: the record of it that the dead executor
 * left (inflight.c).  The line, if it is still due at that attempt (its
 * transaction died with the executor), gets the attempt number, failure
 * type worker_crashed with the count of such attempts in a row, the
 * attempt's start and end, and a back-off (1 s, doubling, at most a
 * minute; none after the last one) so that other work goes first.  A record of an attempt that
 * committed before its executor died changes nothing.  A second executor
 * that died running the same attempt (it claimed the line before the
 * first one's record was swept) counts as one more attempt.  The line
 * fails at its next claim once chainexec.max_crash_attempts is reached
 * (process_line).  Runs its own transaction.
 */
static CeQuery q_record_crash = {
	"WITH c AS (SELECT l.organization_id, l.transaction_id, l.line_number, l.step_name, "
	"  greatest(l.attempt + 1, $4) AS attempt, "
	"  CASE WHEN l.error->>'failure_type' = 'worker_crashed' "
	"       THEN coalesce((l.error->>'crashes')::int, 0) ELSE 0 END + 1 AS crashes "
	"  FROM chainexec.universal_transaction_lines l "
	"  WHERE l.organization_id = $1 AND l.transaction_id = $2 AND l.line_number = $3 "
	"    AND l.status IN ('ready', 'pending') "
	"    AND (l.attempt < $4 OR (l.attempt = $4 AND l.error->>'failure_type' = 'worker_crashed' "
	"                            AND l.started_at IS DISTINCT FROM $5)) "
	"  FOR UPDATE SKIP LOCKED) "
	"UPDATE chainexec.universal_transaction_lines l SET attempt = c.attempt, "
	"  error = jsonb_build_object('failure_type', 'worker_crashed', 'sqlstate', '57P02', "
	"    'message', format('executor died running step \"%s\"', c.step_name), "
	"    'detail', 'The process running the attempt ended before its transaction did: it was terminated or killed, ran out of memory, crashed, or the server stopped.', "
	"    'attempt', c.attempt, 'crashes', c.crashes), "
	"  started_at = $5, finished_at = clock_timestamp(), "
	"  duration_ms = greatest(extract(epoch FROM clock_timestamp() - $5) * 1000, 0), "
	"  not_before = CASE WHEN c.crashes >= $6 THEN l.not_before "
	"    ELSE greatest(l.not_before, now() + make_interval(secs => least(60, power(2, c.crashes - 1)))) END "
	"FROM c WHERE l.organization_id = c.organization_id AND l.transaction_id = c.transaction_id "
	"  AND l.line_number = c.line_number RETURNING c.crashes, c.step_name",
	6, {UUIDOID, UUIDOID, INT4OID, INT4OID, TIMESTAMPTZOID, INT4OID}};

void
ce_record_crash(const pg_uuid_t *org, const pg_uuid_t *execution, int line, int attempt,
				TimestampTz started_at)
{
	Datum		v[6];
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;

	if (!ce_engine_xact_begin(NULL))
	{
		CommitTransactionCommand();
		return;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	save_nestlevel = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	v[0] = UUIDPGetDatum((pg_uuid_t *) org);
	v[1] = UUIDPGetDatum((pg_uuid_t *) execution);
	v[2] = Int32GetDatum(line);
	v[3] = Int32GetDatum(attempt);
	v[4] = TimestampTzGetDatum(started_at);
	v[5] = Int32GetDatum(ce_max_crash_attempts);
	ce_run_query(&q_record_crash, v, NULL, false, 0);
	if (SPI_processed == 1)
	{
		bool		isnull;
		int			crashes = DatumGetInt32(getcol(0, 1, &isnull));

		ereport(LOG,
				(errmsg("chainexec: the executor running attempt %d of step \"%s\" of execution %s died",
						attempt, getcol_text(0, 2), ce_uuid_to_cstring(execution)),
				 errdetail("It is attempt %d in a row to end its executor; the step fails after %d (chainexec.max_crash_attempts).",
						   crashes, ce_max_crash_attempts)));
	}
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * chainexec 0.1.0's _advance(org uuid, id uuid) and _external_result(...):
 * the control functions of 0.1.0 called them from PL/pgSQL; 0.2.0 drops
 * them (control.c does the same in C).  The symbols stay for the 0.1.0
 * install script.
 */
static void
no_longer_used(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("chainexec.%s() is no longer used", name),
			 errhint("Update the extension: ALTER EXTENSION chainexec UPDATE.")));
}

PG_FUNCTION_INFO_V1(ce_advance_sql);
Datum
ce_advance_sql(PG_FUNCTION_ARGS)
{
	no_longer_used("_advance");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ce_external_result_sql);
Datum
ce_external_result_sql(PG_FUNCTION_ARGS)
{
	no_longer_used("_external_result");
	PG_RETURN_VOID();
}
