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
#include "engine_xact.h"
#include "inflight.h"
#include "jsonschema.h"
#include "notify.h"
#include "shmem.h"
#include "step.h"

/* The execution header as a transition sees it. */
typedef struct ExecRow
{
	pg_uuid_t	org;
	pg_uuid_t	id;
	char	   *org_s;
	char	   *id_s;
	char	   *status;
	char	   *chain_id;
	int			version;
	Jsonb	   *context;
	Oid			owner;
	bool		has_deadline;
	TimestampTz deadline;
	int			priority;
	bool		save_intermediate;
	int			max_retries;	/* options.maxRetries, or -1 */
	CePlan	   *plan;
	char	   *search_path;	/* the caller's, for the steps */
} ExecRow;

/* One claimed line. */
typedef struct LineRow
{
	int			line_number;
	char	   *line_type;
	int			step_id;
	char	   *step_name;
	char	   *status;
	int			attempt;
	int			parent_line;
	TimestampTz started_at;
	bool		has_started;
	bool		ran_now;		/* the step ran in this transaction: its
								 * attempt started at the transaction's start */
	int			crashes;		/* attempts in a row whose executor died */
} LineRow;

/* The line claimed by the running transition, kept for ce_transition_take_claim. */
static struct
{
	bool		valid;
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;
} claimed;

/* A line as advance() sees it. */
typedef struct LineInfo
{
	int			line_number;
	char		type;			/* s(tep), f(allback), c(ompensation) */
	int			step_id;
	char	   *status;
	int			parent_line;
} LineInfo;

static Oid	ext_owner = InvalidOid;

/*
 * Set while chain_run drives an execution in its own session: the lines it
 * makes ready are its own next work, so waking the background executors
 * would only make them race it for those lines.
 */
bool		ce_inline_runner = false;

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
static int
bookkeeping_guc_level(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
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
	escape_json(&b, message ? message : "");
	appendStringInfoString(&b, ",\"detail\":");
	if (detail)
		escape_json(&b, detail);
	else
		appendStringInfoString(&b, "null");
	if (hint)
	{
		appendStringInfoString(&b, ",\"hint\":");
		escape_json(&b, hint);
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
	"coalesce((metadata->'options'->>'maxRetries')::int, -1) "
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
	"UPDATE chainexec.universal_transactions SET status = $3, error = $4 "
	"WHERE organization_id = $1 AND id = $2",
	4, {UUIDOID, UUIDOID, TEXTOID, JSONBOID}};

/* status, attempt, not_before (null: keep), input, output, error,
 * started (bool), finished (bool) */
static CeQuery q_update_line = {
	"UPDATE chainexec.universal_transaction_lines SET status = $4, attempt = $5, "
	"not_before = coalesce($6, not_before), input = coalesce($7, input), output = $8, error = $9, "
	"started_at = CASE WHEN $10 THEN now() ELSE started_at END, "
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
	"UPDATE chainexec.universal_transaction_lines SET status = 'ready', not_before = now() "
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

static CeQuery q_completed_for_rollback = {
	"SELECT line_number, step_id, line_type FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status = 'completed' "
	"AND line_type IN ('step', 'fallback') ORDER BY finished_at DESC, line_number DESC",
	2, {UUIDOID, UUIDOID}};

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
 * Events
 * --------------------------------------------------------------------- */

static int	current_progress = 0;

static bool is_final(const char *status);

/* ---------------------------------------------------------------------
 * ETA: from the average duration of each step in this chain version's
 * last 20 completed executions, refreshed at most once a minute per backend
 * --------------------------------------------------------------------- */

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
static long current_eta = -1;

static CeQuery q_step_averages = {
	"SELECT l.step_id, avg(l.duration_ms) "
	"FROM (SELECT organization_id, id FROM chainexec.universal_transactions "
	"      WHERE organization_id = $1 AND chain_id = $2 AND chain_version = $3 AND status = 'completed' "
	"      ORDER BY created_at DESC LIMIT 20) t "
	"JOIN chainexec.universal_transaction_lines l ON l.organization_id = t.organization_id AND l.transaction_id = t.id "
	"WHERE l.line_type = 'step' AND l.status = 'completed' AND l.duration_ms IS NOT NULL "
	"GROUP BY l.step_id",
	3, {UUIDOID, TEXTOID, INT4OID}};

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
	memset(&key, 0, sizeof(key));
	key.org = ex->org;
	key.version = ex->version;
	strlcpy(key.chain_id, ex->chain_id, sizeof(key.chain_id));
	e = hash_search(eta_cache, &key, HASH_ENTER, &found);
	if (found && e->fetched > now - 60 * USECS_PER_SEC)
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

/*
 * Percent of step lines finished, from a lines list.  Failed lines count
 * only while the execution goes on past them (onFailure warn, or replaced by
 * a fallback); a failure that ends the execution does not move progress,
 * so that resuming it never makes progress go back.  Cancelled lines never
 * count.
 */
static int
compute_progress(List *lines, bool count_failed)
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
			strcmp(li->status, "compensated") == 0 ||
			(count_failed && strcmp(li->status, "failed") == 0))
			done++;
	}
	return total > 0 ? (done * 100) / total : 100;
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
	ce_finished_at_commit();
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

/*
 * The execution failed (status "failed", or "timeout").  Cancels its other
 * open lines and either starts compensation or ends it.
 */
static void
fail_execution(ExecRow *ex, const char *status, Jsonb *error, int own_line)
{
	CePlan	   *plan = ex->plan;
	bool		compensate = false;
	uint64		i;
	List	   *comp = NIL;
	ListCell   *lc;

	close_lines(ex, open_lines(ex, own_line), "cancelled", NULL);

	if (plan->rollback_enabled && strcmp(status, "failed") == 0)
	{
		Datum		args[2];

		args[0] = UUIDPGetDatum(&ex->org);
		args[1] = UUIDPGetDatum(&ex->id);
		ce_run_query(&q_completed_for_rollback, args, NULL, false, 0);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int			ln = DatumGetInt32(getcol(i, 1, &isnull));
			int			sid = DatumGetInt32(getcol(i, 2, &isnull));
			CeStep	   *s = ce_plan_step_by_id(plan, sid);

			if (s && s->rollback_action)
			{
				comp = lappend_int(comp, ln);
				comp = lappend_int(comp, sid);
			}
		}
		compensate = comp != NIL;
	}

	if (!compensate)
	{
		finish_execution(ex, status, NULL, error);
		emit(ex, strcmp(status, "timeout") == 0 ? "chain_timeout" : "chain_failed", NULL, status, 0);
		return;
	}

	{
		Datum		v[4];

		v[0] = UUIDPGetDatum(&ex->org);
		v[1] = UUIDPGetDatum(&ex->id);
		v[2] = CStringGetTextDatum("compensating");
		v[3] = JsonbPGetDatum(error);
		ce_run_query(&q_exec_error, v, NULL, false, 0);
		ex->status = "compensating";
	}
	/* one compensation line per completed step, in reverse completion order */
	i = 0;
	for (lc = list_head(comp); lc != NULL; lc = lnext(comp, lnext(comp, lc)))
	{
		int			ln = lfirst_int(lc);
		int			sid = lfirst_int(lnext(comp, lc));

		insert_line(ex, "compensation", ce_plan_step_by_id(plan, sid), i == 0 ? "ready" : "pending", ln);
		i++;
	}
	wake_executors();
	emit(ex, "compensation_started", NULL, "compensating", 0);
}

/* Whether every success condition holds on the context. */
static bool
check_success(ExecRow *ex, char **failed_cond)
{
	CePlan	   *plan = ex->plan;
	CeLookupCtx lk;
	int			i;

	memset(&lk, 0, sizeof(lk));
	lk.context = ex->context;
	lk.execution_id = ex->id_s;
	lk.chain_id = ex->chain_id;
	lk.chain_version = ex->version;
	lk.organization_id = ex->org_s;
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

	current_eta = compute_eta(ex, lines);
	current_progress = compute_progress(lines,
										strcmp(ex->status, "running") == 0 ||
										strcmp(ex->status, "waiting") == 0 ||
										strcmp(ex->status, "pending") == 0 ||
										strcmp(ex->status, "paused") == 0);

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
			current_progress = compute_progress(read_lines(ex), false);
			emit(ex, "step_failed", step, "failed", attempt);
			fail_execution(ex, "failed", execution_error(err, step), line->line_number);
			break;
	}
}

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

/*
 * Whether a step's outputs may become variables: everything later reads
 * the context (expressions, templates, the output schema) must be able to
 * read them, so a value the readers refuse fails the step here, as its
 * own failure, never the transition later.  Sets the failure when not.
 */
static bool
outputs_acceptable(CeStepRun *run, const CeStep *step)
{
	if (VARSIZE(run->outputs) > (Size) ce_max_context_bytes)
	{
		ce_step_fail(run, "validation_failed", "54000",
					 "outputs of step \"%s\" take %zu bytes, more than chainexec.max_context_bytes (%d)",
					 step->name, (size_t) VARSIZE(run->outputs), ce_max_context_bytes);
		return false;
	}
	/* the context holds them one level down */
	if (jsonb_depth(run->outputs) >= CE_MAX_JSON_DEPTH)
	{
		ce_step_fail(run, "validation_failed", "54000",
					 "outputs of step \"%s\" nest deeper than %d levels",
					 step->name, CE_MAX_JSON_DEPTH - 1);
		return false;
	}
	return true;
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
		if (getKeyJsonValueFromContainer(&run->outputs->root, "chain", 5, NULL) != NULL)
		{
			/* undeclared outputs (row columns, a handler's keys) may name it */
			ce_step_rollback(run);
			ce_step_fail(run, "validation_failed", "42939",
						 "output variable \"chain\" of step \"%s\" is reserved", step->name);
			run->hint = pstrdup("{chain.*} names the built-in variables; rename the column or key.");
			handle_failure(ex, line, step, run, attempt, input);
			return;
		}
		if (!outputs_acceptable(run, step))
		{
			ce_step_rollback(run);
			handle_failure(ex, line, step, run, attempt, input);
			return;
		}
		merged = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(ex->context),
													JsonbPGetDatum(run->outputs)));
		if (VARSIZE(merged) > (Size) ce_max_context_bytes)
		{
			ce_step_rollback(run);
			ce_step_fail(run, "validation_failed", "54000",
						 "variables of the execution would take %zu bytes, more than chainexec.max_context_bytes (%d)",
						 (size_t) VARSIZE(merged), ce_max_context_bytes);
			/* the header is locked already; handle_failure relocks cheaply */
			handle_failure(ex, line, step, run, attempt, input);
			return;
		}
	}

	/* routing decision, taken after the step ran */
	if (!compensation && step->condition_expr && step->condition_is_routing)
	{
		CeLookupCtx lk;

		memset(&lk, 0, sizeof(lk));
		lk.context = ex->context;
		lk.extra = run->outputs;
		lk.execution_id = ex->id_s;
		lk.chain_id = ex->chain_id;
		lk.chain_version = ex->version;
		lk.step_id = step->id;
		lk.step_name = step->name;
		lk.attempt = attempt;
		lk.organization_id = ex->org_s;
		act = eval_condition(step, &lk, &skip_to);
	}

	ce_step_release(run);

	/* jsonb is canonical: the same bytes mean the same variables */
	if (merged && VARSIZE(merged) == VARSIZE(ex->context) &&
		memcmp(merged, ex->context, VARSIZE(merged)) == 0)
		merged = NULL;
	if (merged)
	{
		Datum		v[3];

		v[0] = UUIDPGetDatum(&ex->org);
		v[1] = UUIDPGetDatum(&ex->id);
		v[2] = JsonbPGetDatum(merged);
		ce_run_query(&q_set_context, v, NULL, false, 0);
		ex->context = merged;
	}

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
		current_progress = compute_progress(read_lines(ex), false);
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
	s = ce_template_render(step->input_tpl, ce_lookup, lk, &len, &err);
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
	memset(&lk, 0, sizeof(lk));
	lk.context = ex->context;
	lk.execution_id = ex->id_s;
	lk.chain_id = ex->chain_id;
	lk.chain_version = ex->version;
	lk.step_id = step->id;
	lk.step_name = step->name;
	lk.organization_id = ex->org_s;

	memset(&run, 0, sizeof(run));
	run.plan = plan;
	run.step = step;
	run.owner = ex->owner;
	run.org = ex->org;
	run.lookup = &lk;
	run.compensation = compensation;
	run.search_path = ex->search_path;
	run.deadline = ex->has_deadline && !compensation ? ex->deadline : 0;
	run.rowcount = -1;

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
	save_nestlevel = bookkeeping_guc_level();
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
			process_line(&ex, &line);
			ce_running_clear();
			result = CE_TR_DONE;
		}
	}
	PG_CATCH();
	{
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
	level = bookkeeping_guc_level();
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
	level = bookkeeping_guc_level();
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
						  "(SELECT min(not_before) FROM chainexec.universal_transaction_lines l WHERE status = 'waiting' "
						  "AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
						  "AND t.organization_id = l.organization_id AND t.id = l.transaction_id)), "
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
	save_nestlevel = bookkeeping_guc_level();
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
		current_progress = compute_progress(read_lines(&ex), false);
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
	save_nestlevel = bookkeeping_guc_level();
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
 * Make ready what can run, for control functions (resume, retry, skip):
 * the header must be locked by the caller's transaction.  SQL-callable as
 * chainexec._advance(org uuid, id uuid).
 */
PG_FUNCTION_INFO_V1(ce_advance_sql);
Datum
ce_advance_sql(PG_FUNCTION_ARGS)
{
	ExecRow		ex;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;

	memset(&ex, 0, sizeof(ex));
	memcpy(&ex.org, PG_GETARG_UUID_P(0), sizeof(pg_uuid_t));
	memcpy(&ex.id, PG_GETARG_UUID_P(1), sizeof(pg_uuid_t));
	SPI_connect();
	save_nestlevel = bookkeeping_guc_level();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	read_header(&ex);
	ex.plan = ce_plan_get(&ex.org, ex.chain_id, ex.version);
	lock_header(&ex);
	advance(&ex, 0);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * External steps: results from outside
 * --------------------------------------------------------------------- */

/*
 * _external_result(org uuid, id uuid, step int, ok boolean, output jsonb,
 *                  failure_type text, message text) RETURNS boolean
 *
 * The transition of chain_step_complete / chain_step_fail: the waiting
 * line of the step is recorded as done (outputs merged) or failed (retry
 * or onFailure), in the caller's transaction.  Called as the extension
 * owner by the public functions after their permission check.
 */
PG_FUNCTION_INFO_V1(ce_external_result_sql);
Datum
ce_external_result_sql(PG_FUNCTION_ARGS)
{
	ExecRow		ex;
	LineRow		line;
	CeStep	   *step;
	CeStepRun	run;
	CeLookupCtx lk;
	int			step_id = PG_GETARG_INT32(2);
	bool		ok = PG_GETARG_BOOL(3);
	Datum		args[3];
	Oid			types[3] = {UUIDOID, UUIDOID, INT4OID};
	int			ret;
	bool		isnull;
	int			save_nestlevel;

	/* not STRICT (output, failure_type and message may be null) */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("execution id must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("step must not be null")));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("\"ok\" must not be null")));

	memset(&ex, 0, sizeof(ex));
	memset(&line, 0, sizeof(line));
	memcpy(&ex.org, PG_GETARG_UUID_P(0), sizeof(pg_uuid_t));
	memcpy(&ex.id, PG_GETARG_UUID_P(1), sizeof(pg_uuid_t));

	SPI_connect();
	save_nestlevel = bookkeeping_guc_level();
	read_header(&ex);
	ex.plan = ce_plan_get(&ex.org, ex.chain_id, ex.version);

	args[0] = UUIDPGetDatum(&ex.org);
	args[1] = UUIDPGetDatum(&ex.id);
	args[2] = Int32GetDatum(step_id);
	ret = SPI_execute_with_args("SELECT line_number, line_type, status, attempt, coalesce(parent_line, 0) "
								"FROM chainexec.universal_transaction_lines "
								"WHERE organization_id = $1 AND transaction_id = $2 AND step_id = $3 "
								"AND line_type IN ('step', 'fallback') ORDER BY line_number DESC LIMIT 1 FOR UPDATE",
								3, types, args, NULL, false, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %s has no step %d", ex.id_s, step_id)));
	line.line_number = DatumGetInt32(getcol(0, 1, &isnull));
	line.line_type = getcol_text(0, 2);
	line.status = getcol_text(0, 3);
	line.attempt = DatumGetInt32(getcol(0, 4, &isnull));
	line.parent_line = DatumGetInt32(getcol(0, 5, &isnull));
	line.step_id = step_id;
	if (strcmp(line.status, "waiting") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("step %d of execution %s is not waiting for a result", step_id, ex.id_s),
				 errdetail("The step is %s.", line.status),
				 errhint("Only external steps wait for chain_step_complete() or chain_step_fail().")));
	step = ce_plan_step_by_id(ex.plan, step_id);
	if (step == NULL || step->kind != CE_STEP_EXTERNAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("step %d of execution %s is not an external step", step_id, ex.id_s)));

	memset(&lk, 0, sizeof(lk));
	lk.context = ex.context;
	lk.execution_id = ex.id_s;
	lk.chain_id = ex.chain_id;
	lk.chain_version = ex.version;
	lk.step_id = step->id;
	lk.step_name = step->name;
	lk.attempt = line.attempt;
	lk.organization_id = ex.org_s;

	memset(&run, 0, sizeof(run));
	run.plan = ex.plan;
	run.step = step;
	run.owner = ex.owner;
	run.org = ex.org;
	run.lookup = &lk;
	run.rowcount = -1;
	current_progress = 0;

	if (ok)
	{
		Jsonb	   *out = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);

		if (out && (!JB_ROOT_IS_OBJECT(out) || JB_ROOT_IS_SCALAR(out)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("output of an external step must be a JSON object"),
					 errhint("Its keys become variables of the execution.")));
		if (out && step->noutput_vars > 0)
		{
			/* keep only the declared outputVariables */
			StringInfoData b;
			int			i;
			bool		first = true;

			initStringInfo(&b);
			appendStringInfoChar(&b, '{');
			for (i = 0; i < step->noutput_vars; i++)
			{
				JsonbValue *v = getKeyJsonValueFromContainer(&out->root, step->output_vars[i],
															 strlen(step->output_vars[i]), NULL);
				Jsonb	   *vj;

				if (v == NULL)
					continue;
				vj = JsonbValueToJsonb(v);
				if (!first)
					appendStringInfoChar(&b, ',');
				first = false;
				escape_json(&b, step->output_vars[i]);
				appendStringInfoChar(&b, ':');
				JsonbToCString(&b, &vj->root, VARSIZE(vj));
			}
			appendStringInfoChar(&b, '}');
			out = ce_text_to_jsonb(b.data);
		}
		run.ok = true;
		run.outputs = out;
		handle_success(&ex, &line, step, &run, line.attempt, NULL);
	}
	else
	{
		char	   *ftype = PG_ARGISNULL(5) ? "system_error" : text_to_cstring(PG_GETARG_TEXT_PP(5));
		char	   *msg = PG_ARGISNULL(6) ? ftype : text_to_cstring(PG_GETARG_TEXT_PP(6));

		ce_step_fail(&run, ftype, NULL, "%s", msg);
		handle_failure(&ex, &line, step, &run, line.attempt, NULL);
	}
	AtEOXact_GUC(false, save_nestlevel);
	SPI_finish();
	PG_RETURN_BOOL(true);
}
