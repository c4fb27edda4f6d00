/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The store of the state machine: the bookkeeping queries on an
 *	  execution's header (universal_transactions) and its lines
 *	  (universal_transaction_lines), run by query.c, and the functions
 *	  that read and write those rows; the fixed search_path and the
 *	  extension owner under which they run.
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

#include "utils/memutils.h"
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
	/* the execution's new status, held with it (ce_exec_status_held); -1: none */
	int			exec_status;
}			pending;
static bool hold_writes = false;
static CeQuery q_lines;
static void store_flush(void);

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
	"finished_at = clock_timestamp(), started_at = coalesce(started_at, $6) "
	"WHERE organization_id = $1 AND id = $2",
	6, {UUIDOID, UUIDOID, TEXTOID, JSONBOID, JSONBOID, TIMESTAMPTZOID}};

static CeQuery q_exec_error = {
	"UPDATE chainexec.universal_transactions SET status = $3, error = coalesce($4, error), "
	"started_at = coalesce(started_at, $5) WHERE organization_id = $1 AND id = $2",
	5, {UUIDOID, UUIDOID, TEXTOID, JSONBOID, TIMESTAMPTZOID}};

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
#define PROMOTE_WHERE(cond) \
	"UPDATE chainexec.universal_transaction_lines SET status = 'ready', not_before = greatest(not_before, now()) " \
	"WHERE organization_id = $1 AND transaction_id = $2 AND " cond " AND status = 'pending' " \
	"AND line_type <> 'iteration'"
#define PROMOTE_SQL(param) PROMOTE_WHERE("line_number = ANY(" param ")")
/*
 * One line (the usual case): its key is an index condition.  The planner
 * never makes "= ANY($n)" one in a generic plan (it prices $n as ten
 * elements, ten descents), so the form above reads every line of the
 * execution: a 200-step chain read 200 lines per step.
 */
#define PROMOTE_ONE_SQL(param) PROMOTE_WHERE("line_number = " param)

static CeQuery q_update_line = {UPDATE_LINE_SQL, 11, {UPDATE_LINE_TYPES}};

static CeQuery q_lines = {
	"SELECT line_number, line_type, step_id, status, coalesce(parent_line, 0), "
	"CASE WHEN status = 'waiting' AND line_type = 'step' THEN output->'iterations' END "
	"FROM chainexec.universal_transaction_lines WHERE organization_id = $1 AND transaction_id = $2 "
	"AND line_type <> 'iteration' ORDER BY line_number",
	2, {UUIDOID, UUIDOID}};

static CeQuery q_promote = {PROMOTE_SQL("$3"), 3, {UUIDOID, UUIDOID, INT4ARRAYOID}};
static CeQuery q_promote_one = {PROMOTE_ONE_SQL("$3"), 3, {UUIDOID, UUIDOID, INT4OID}};

/*
 * A step's line completed, the execution's context ($12, when it changed)
 * and the next lines made ready ($13: none, one line number, or an array):
 * the writes of a transition in one statement (see pending).  The three
 * touch different rows.  One text for each shape, so that no statement
 * updates a row it need not or reads lines to promote none.
 */
enum
{
	PROMOTE_NONE,
	PROMOTE_ONE,
	PROMOTE_MANY
};
static CeQuery q_write_step[2][3];	/* [context changed][PROMOTE_*] */

static CeQuery *
write_step_query(bool context, int promote)
{
	CeQuery    *q = &q_write_step[context][promote];

	if (q->sql == NULL)
	{
		static const Oid types[] = {UPDATE_LINE_TYPES, JSONBOID};
		const char *header = "UPDATE chainexec.universal_transactions SET context = $12 "
			"WHERE organization_id = $1 AND id = $2";
		const char *main_sql;
		StringInfoData buf;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		main_sql = promote == PROMOTE_ONE ? PROMOTE_ONE_SQL("$13") :
			promote == PROMOTE_MANY ? PROMOTE_SQL("$13") : context ? header : NULL;
		initStringInfo(&buf);
		if (main_sql == NULL)
			appendStringInfoString(&buf, UPDATE_LINE_SQL);
		else
		{
			appendStringInfoString(&buf, "WITH line AS (" UPDATE_LINE_SQL " RETURNING 1) ");
			if (context && promote != PROMOTE_NONE)
				appendStringInfo(&buf, ", header AS (%s RETURNING 1) ", header);
			appendStringInfoString(&buf, main_sql);
		}
		memcpy(q->types, types, sizeof(types));
		q->types[12] = promote == PROMOTE_ONE ? INT4OID : INT4ARRAYOID;
		q->nargs = 13;
		q->sql = buf.data;
		MemoryContextSwitchTo(old);
	}
	return q;
}

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

	if (ce_direct_available())
	{
		if (!ce_direct_read_header(ex))
			elog(ERROR, "execution %s has lines but no header", ce_uuid_to_cstring(&ex->id));
		return;
	}
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
	if (ce_direct_available())
	{
		if (!ce_direct_lock_header(ex))
			elog(ERROR, "execution %s vanished", ex->id_s);
		return;
	}
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

	if (ce_direct_available())
	{
		ListCell   *lc;

		res = ce_direct_lines(ex);
		/* a completion held back (see pending) */
		foreach(lc, res)
		{
			LineInfo   *li = lfirst(lc);

			if (pending.valid && li->line_number == pending.line_number &&
				memcmp(&pending.id, &ex->id, sizeof(pg_uuid_t)) == 0)
				li->status = pending.status;
		}
		return res;
	}
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
	pending.n[12] = ' ';
	pending.n[13] = '\0';
	pending.org = ex->org;
	pending.id = ex->id;
	pending.line_number = line_number;
	pending.status = u->status;
	pending.exec_status = -1;
	pending.valid = true;
	if (context)
		ex->context = context;
}

/* Write the completion held back, with the lines to promote (or none). */
static void
write_pending(List *promote)
{
	int			shape = promote == NIL ? PROMOTE_NONE :
		list_length(promote) == 1 ? PROMOTE_ONE : PROMOTE_MANY;

	int			exec_status = pending.exec_status;

	pending.valid = false;
	pending.exec_status = -1;
	if (shape != PROMOTE_MANY && ce_direct_available())
	{
		ce_direct_write_step(pending.v, pending.n, shape == PROMOTE_ONE ? linitial_int(promote) : 0,
							 exec_status);
		return;
	}
	if (shape == PROMOTE_ONE)
		pending.v[12] = Int32GetDatum(linitial_int(promote));
	else
		pending.v[12] = PointerGetDatum(ce_int_array(promote));
	ce_run_query(write_step_query(pending.n[11] != 'n', shape), pending.v, pending.n, false, 0);
	if (exec_status >= 0)
	{
		Datum		v[3];

		v[0] = pending.v[0];
		v[1] = pending.v[1];
		v[2] = CStringGetTextDatum(ce_exec_status_name((CeExecStatus) exec_status));
		ce_run_query(&q_set_status, v, NULL, false, 0);
	}
}

static void
store_flush(void)
{
	if (pending.valid)
		write_pending(NIL);
}

/* A held-back write goes first, so that no query but q_lines reads around it. */
void
ce_store_before_query(const CeQuery *q)
{
	if (pending.valid && q != &q_lines)
		store_flush();
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
	pending.exec_status = -1;
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
	pending.exec_status = -1;
	hold_writes = false;
}

/* Whether the completion held back is one of ex's execution. */
static bool
pending_of(ExecRow *ex)
{
	return pending.valid && memcmp(&pending.id, &ex->id, sizeof(pg_uuid_t)) == 0 &&
		memcmp(&pending.org, &ex->org, sizeof(pg_uuid_t)) == 0;
}

/*
 * Set ex's status with the completion held back, in the same update of
 * its header (by direct row access only): true if so, else the caller
 * sets it (ce_exec_set_status).  An execution's header updated twice in
 * one transaction costs a second new version and, the first being the
 * transaction's own, a check of its foreign keys.
 */
bool
ce_exec_status_held(ExecRow *ex, CeExecStatus status)
{
	if (!pending_of(ex) || !ce_direct_available())
		return false;
	pending.exec_status = (int) status;
	ex->status = status;
	return true;
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

	if (ce_direct_available())
	{
		ce_direct_write_header(ex, status, false, NULL, NULL, NULL);
		ex->status = status;
		return;
	}
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(ce_exec_status_name(status));
	ce_run_query(&q_set_status, v, NULL, false, 0);
	ex->status = status;
}

/*
 * ce_exec_set_status and ce_exec_set_context in one new version of the
 * header where direct access applies (the execution's start with its first
 * step's variables: a second version in the same transaction would cost a
 * second update, and a check of its foreign keys).
 */
void
ce_exec_set_status_context(ExecRow *ex, CeExecStatus status, Jsonb *context)
{
	if (!ce_direct_available())
	{
		ce_exec_set_status(ex, status);
		ce_exec_set_context(ex, context);
		return;
	}
	ce_direct_write_header(ex, status, false, NULL, NULL, context);
	ex->status = status;
	ex->context = context;
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

	ex->context = context;
	if (ce_direct_available())
	{
		ce_direct_write_context(ex, context);
		return;
	}
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = JsonbPGetDatum(context);
	ce_run_query(&q_set_context, v, NULL, false, 0);
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
	if (pending_of(ex))
	{
		write_pending(line_numbers);
		return;
	}
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	if (list_length(line_numbers) == 1)
	{
		v[2] = Int32GetDatum(linitial_int(line_numbers));
		ce_run_query(&q_promote_one, v, NULL, false, 0);
		return;
	}
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

/*
 * Whether an execution that moves to `status` (its end, or compensating)
 * in this transition ran without having been marked started: it was still
 * pending (its first transition), and it completes or fails there (such as
 * a chain of one step), or a step of it ran here and it times out or
 * starts or ends its compensation (a step cut short by maxExecutionTime; a
 * success condition that is false).  A cancel, or a chain_rollback or a
 * timeout before any step ran, leaves it never started.
 */
bool
ce_exec_ran_to_end(const ExecRow *ex, CeExecStatus status)
{
	if (ex->status != CE_EXEC_PENDING)
		return false;
	if (status == CE_EXEC_COMPLETED || status == CE_EXEC_FAILED)
		return true;
	return ex->ran && (status == CE_EXEC_TIMEOUT || status == CE_EXEC_COMPENSATING ||
					   status == CE_EXEC_COMPENSATED);
}

/*
 * Write the end of the execution: status, output, error (NULL: kept), and
 * its start when it had none (ce_exec_ran_to_end).
 */
void
ce_exec_write_end(ExecRow *ex, CeExecStatus status, Jsonb *output, Jsonb *error)
{
	Datum		v[6];
	char		n[7] = "      ";

	if (ce_direct_available())
	{
		Jsonb	   *context = NULL;

		/* the held completion's new context goes with the end, in one update of the header */
		if (pending_of(ex) && pending.n[11] != 'n' && pending.exec_status < 0)
		{
			context = DatumGetJsonbP(pending.v[11]);
			pending.n[11] = 'n';
		}
		ce_direct_write_header(ex, status, true, output, error, context);
		ex->status = status;
		return;
	}
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(ce_exec_status_name(status));
	v[3] = ce_jsonb_datum_or_null(output, &n[3]);
	v[4] = ce_jsonb_datum_or_null(error, &n[4]);
	v[5] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (!ce_exec_ran_to_end(ex, status))
		n[5] = 'n';
	ce_run_query(&q_finish_exec, v, n, false, 0);
	ex->status = status;
}

/* Set the execution's status and, when given, its error (and its start: ce_exec_ran_to_end). */
void
ce_exec_set_status_error(ExecRow *ex, CeExecStatus status, Jsonb *error)
{
	Datum		v[5];
	char		n[6] = "     ";

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = CStringGetTextDatum(ce_exec_status_name(status));
	v[3] = ce_jsonb_datum_or_null(error, &n[3]);
	v[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (!ce_exec_ran_to_end(ex, status))
		n[4] = 'n';
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
