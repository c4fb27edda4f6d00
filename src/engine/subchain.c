/*-------------------------------------------------------------------------
 *
 * subchain.c
 *	  Steps of type "chain": a child execution of the child chain's active
 *	  version, in the parent's organization, owned by the parent's owner;
 *	  the parent's line waits (holding no process) until the child ends.
 *
 * The child's last transition moves the parent on, in the same
 * transaction (ce_child_finished, from the engine's end of an execution):
 * completed, the parent's line completes with the child's outputs
 * (filtered by the step's outputVariables); otherwise it fails with the
 * child's failure type (cancelled, execution_timeout, ...), and the step's
 * retries (a new child per attempt) and onFailure apply.  A parent that
 * ends or starts compensating cancels its live children (and they
 * theirs); a chain line whose timeoutMs passes cancels its child.
 *
 * The child is started as chain_execute would start it for the owner
 * (same checks: an active version in the organization, its inputSchema,
 * the owner's EXECUTE privilege on chain_execute), inside a
 * subtransaction, so that a child that cannot start fails the step
 * instead of the transition.  Nesting is bounded by
 * chainexec.max_chain_depth (a root execution has depth 0).
 *
 * The parent link: columns parent_id and parent_line of the child's
 * header (indexed), and in its metadata "parent" (execution, line, step,
 * chain), "depth" and "ancestors" (ids, root first: the order in which a
 * transition locks them, see compose.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "compose.h"
#include "bridge.h"
#include "engine.h"
#include "failure.h"
#include "flow.h"
#include "shmem.h"
#include "step_int.h"
#include "template.h"

/* Set while this backend cancels a child for its parent's line itself. */
static bool detaching = false;

static CeQuery q_parent_info = {
	"SELECT coalesce(metadata->'ancestors', '[]'::jsonb) || to_jsonb($2::text), "
	"coalesce((metadata->>'depth')::int, 0), in_session "
	"FROM chainexec.universal_transactions WHERE organization_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}};

/*
 * The child chain's concurrencyLimit (its active version's), how many of
 * its places are held, and how many of those by an execution that waits
 * for a place of it: one of the lineage ($3: the ancestors and the parent,
 * ids as text), which waits for this child, or one that waits for a
 * descendant of the chain that holds no place and is not paused (each
 * execution on the way waits for the next: the line that started it is
 * waiting).  When every place is so held, the child could only
 * start once one of them ended, and none of them can end first.  With a
 * place free, the holders' descendants are not read.
 */
static CeQuery q_places_blocked = {
	"WITH RECURSIVE lim AS ("
	"  SELECT (c.definition->>'concurrencyLimit')::numeric::int AS n FROM chainexec.chains c "
	"  WHERE c.organization_id = $1 AND c.chain_id = $2 AND c.status = 'active' "
	"    AND jsonb_typeof(c.definition->'concurrencyLimit') = 'number'), "
	"holders AS ("
	"  SELECT s.holder AS id FROM chainexec.chain_slots s, lim "
	"  WHERE s.organization_id = $1 AND s.chain_id = $2 AND s.slot <= lim.n "
	"    AND EXISTS (SELECT FROM chainexec.universal_transactions t "
	"                WHERE t.organization_id = $1 AND t.id = s.holder AND t.finished_at IS NULL)), "
	"d (root, id) AS ("
	"  SELECT id, id FROM holders "
	"  UNION ALL SELECT d.root, c.id FROM d JOIN chainexec.universal_transactions c "
	"    ON c.organization_id = $1 AND c.parent_id = d.id AND c.finished_at IS NULL "
	"  WHERE EXISTS (SELECT FROM chainexec.universal_transaction_lines pl "
	"                WHERE pl.organization_id = $1 AND pl.transaction_id = d.id "
	"                  AND pl.line_number = c.parent_line AND pl.status = 'waiting')) "
	"SELECT lim.n, (SELECT count(*) FROM holders), CASE WHEN (SELECT count(*) FROM holders) < lim.n THEN 0 ELSE "
	"  (SELECT count(*) FROM holders h WHERE h.id::text IN (SELECT jsonb_array_elements_text($3)) "
	"     OR EXISTS (SELECT FROM d JOIN chainexec.universal_transactions x ON x.organization_id = $1 AND x.id = d.id "
	"                WHERE d.root = h.id AND d.id <> h.id AND x.chain_id = $2 AND x.status <> 'paused' "
	"                  AND EXISTS (SELECT FROM chainexec.chains v WHERE v.organization_id = $1 AND v.chain_id = $2 "
	"                                AND v.version = x.chain_version AND v.definition ? 'concurrencyLimit') "
	"                  AND NOT EXISTS (SELECT FROM chainexec.chain_slots s2 "
	"                                  WHERE s2.organization_id = $1 AND s2.chain_id = $2 AND s2.holder = x.id))) END "
	"FROM lim",
	3, {UUIDOID, TEXTOID, JSONBOID}};

static CeQuery q_may_execute = {
	"SELECT pg_catalog.has_function_privilege($1, "
	"'chainexec.chain_execute(text, jsonb, jsonb)'::pg_catalog.regprocedure, 'EXECUTE')",
	1, {OIDOID}};

/* status, attempt, not_before, input */
static CeQuery q_wait_child = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'waiting', attempt = $4, "
	"not_before = $5, input = $6, output = NULL, error = NULL, started_at = now(), "
	"first_started_at = coalesce(first_started_at, now()), finished_at = NULL, duration_ms = NULL "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	6, {UUIDOID, UUIDOID, INT4OID, INT4OID, TIMESTAMPTZOID, JSONBOID}};

#define LIVE_STATUSES "('pending', 'running', 'waiting', 'paused', 'compensating')"

static CeQuery q_children = {
	"SELECT id FROM chainexec.universal_transactions "
	"WHERE organization_id = $1 AND parent_id = $2 AND status IN " LIVE_STATUSES,
	2, {UUIDOID, UUIDOID}};

static CeQuery q_children_of_line = {
	"SELECT id FROM chainexec.universal_transactions "
	"WHERE organization_id = $1 AND parent_id = $2 AND parent_line = $3 AND status IN " LIVE_STATUSES,
	3, {UUIDOID, UUIDOID, INT4OID}};

static CeQuery q_parent_line = {
	"SELECT line_type, step_id, step_name, status, attempt, coalesce(parent_line, 0), "
	"coalesce(iteration, -1) FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3 AND status = 'waiting' "
	"AND input->>'childExecutionId' = $4 FOR UPDATE SKIP LOCKED",
	4, {UUIDOID, UUIDOID, INT4OID, TEXTOID}};

static CeQuery q_filter_outputs = {
	"SELECT coalesce(jsonb_object_agg(k, $1 -> k) FILTER (WHERE $1 ? k), '{}'::jsonb) "
	"FROM unnest($2::text[]) AS k",
	2, {JSONBOID, TEXTARRAYOID}};

/* Ancestors root first, then locked in that order. */
static CeQuery q_lock_ancestors = {
	"SELECT 1 FROM (SELECT a.id::uuid AS id, a.n FROM chainexec.universal_transactions c, "
	"  jsonb_array_elements_text(c.metadata->'ancestors') WITH ORDINALITY AS a(id, n) "
	"  WHERE c.organization_id = $1 AND c.id = $2) a "
	"JOIN chainexec.universal_transactions t ON t.organization_id = $1 AND t.id = a.id "
	"ORDER BY a.n FOR NO KEY UPDATE OF t",
	2, {UUIDOID, UUIDOID}};

/* Whether executions $2 and $3 have the same root (a family of sub-chains). */
static CeQuery q_same_family = {
	"SELECT 1 FROM chainexec.universal_transactions a, chainexec.universal_transactions b "
	"WHERE a.organization_id = $1 AND a.id = $2 AND b.organization_id = $1 AND b.id = $3 "
	"AND coalesce(a.metadata->'ancestors'->>0, a.id::text) = coalesce(b.metadata->'ancestors'->>0, b.id::text)",
	3, {UUIDOID, UUIDOID, UUIDOID}};

static CeQuery q_family = {
	"WITH RECURSIVE f(id, d) AS (SELECT $2::uuid, 0 "
	"  UNION ALL SELECT t.id, f.d + 1 FROM f JOIN chainexec.universal_transactions t "
	"    ON t.organization_id = $1 AND t.parent_id = f.id "
	"   WHERE f.d < 64 AND t.status IN " LIVE_STATUSES ") "
	"SELECT id FROM f ORDER BY d",
	2, {UUIDOID, UUIDOID}};

/* ---------------------------------------------------------------------
 * The child's input
 * --------------------------------------------------------------------- */

static void
value_json(const CeValue *v, StringInfo out)
{
	switch (v->type)
	{
		case CEV_NULL:
			appendStringInfoString(out, "null");
			break;
		case CEV_BOOL:
			appendStringInfoString(out, v->b ? "true" : "false");
			break;
		case CEV_NUMBER:
		case CEV_JSON:
			appendBinaryStringInfo(out, v->str, (int) v->len);
			break;
		case CEV_STRING:
			{
				char	   *s = pnstrdup(v->str, v->len);

				escape_json(out, s);
			}
			break;
	}
}

/* Render "input" (strings are templates; "{a.b}" alone keeps the value's type). */
static bool
render_input(const CeJson *v, CeLookupCtx *lk, StringInfo out, CeStepRun *run, const CeStep *step)
{
	int			i;

	switch (v->type)
	{
		case CEJ_STRING:
			{
				const char *const *path;
				int			npath;
				CeError		err;
				CeTemplate *t;
				char	   *text;
				size_t		len;

				if (ce_compose_bare_placeholder(v->str, v->len, &path, &npath))
				{
					CeValue		val;

					if (!ce_lookup(lk, path, npath, &val))
					{
						ce_step_fail(run, "insufficient_data", "22004",
									 "variable \"%s\" of the input of step \"%s\" is not set",
									 path[0], step->name);
						return false;
					}
					value_json(&val, out);
					return true;
				}
				memset(&err, 0, sizeof(err));
				t = ce_template_parse(v->str, v->len, &err);
				text = t ? ce_template_render_max(t, ce_lookup, lk, (size_t) ce_max_context_bytes, &len, &err) : NULL;
				if (text == NULL)
				{
					ce_step_fail_template(run, &err);
					return false;
				}
				escape_json(out, text);
				return true;
			}
		case CEJ_OBJECT:
			appendStringInfoChar(out, '{');
			for (i = 0; i < v->count; i++)
			{
				if (i > 0)
					appendStringInfoChar(out, ',');
				escape_json(out, pnstrdup(v->keys[i], v->keylens[i]));
				appendStringInfoChar(out, ':');
				if (!render_input(v->items[i], lk, out, run, step))
					return false;
			}
			appendStringInfoChar(out, '}');
			return true;
		case CEJ_ARRAY:
			appendStringInfoChar(out, '[');
			for (i = 0; i < v->count; i++)
			{
				if (i > 0)
					appendStringInfoChar(out, ',');
				if (!render_input(v->items[i], lk, out, run, step))
					return false;
			}
			appendStringInfoChar(out, ']');
			return true;
		case CEJ_NUMBER:
			appendBinaryStringInfo(out, v->str, (int) v->len);
			return true;
		case CEJ_BOOL:
		case CEJ_NULL:
		default:
			{
				char	   *s = cejson_to_string(v);

				appendStringInfoString(out, s);
				return true;
			}
	}
}

/* The child's input: "input" rendered, else the step's inputVariables. */
static Jsonb *
child_input(const CeStep *step, CeLookupCtx *lk, CeStepRun *run)
{
	StringInfoData b;
	int			i;

	initStringInfo(&b);
	if (step->compose->child_input)
	{
		if (!render_input(step->compose->child_input, lk, &b, run, step))
			return NULL;
		return ce_text_to_jsonb(b.data);
	}
	appendStringInfoChar(&b, '{');
	for (i = 0; i < step->ninput_vars; i++)
	{
		CeValue		val;
		const char *path[1];

		path[0] = step->input_vars[i];
		if (!ce_lookup(lk, path, 1, &val))
			continue;
		if (b.len > 1)
			appendStringInfoChar(&b, ',');
		escape_json(&b, step->input_vars[i]);
		appendStringInfoChar(&b, ':');
		value_json(&val, &b);
	}
	appendStringInfoChar(&b, '}');
	return ce_text_to_jsonb(b.data);
}

/* ---------------------------------------------------------------------
 * Starting a child
 * --------------------------------------------------------------------- */

static bool
exec_live(ExecRow *ex)
{
	return ce_exec_status_is_live(ex->status) || ex->status == CE_EXEC_PAUSED;
}

/*
 * Create the child in a subtransaction; false with run's failure set when
 * it cannot start (the error's SQLSTATE classified as a step's would be).
 */
static bool
create_child(ExecRow *ex, LineRow *line, const CeStep *step, Jsonb *input,
			 CeParentLink *link, CeStepRun *run, pg_uuid_t *child)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		ce_execution_create_child(step->compose->child_chain, input, ex->owner, link, child);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata = ce_step_abort_subxact(oldcxt, oldowner);
		char		sqlstate[6];

		strlcpy(sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(sqlstate));
		ce_step_fail(run, ce_failure_type_for_sqlstate(sqlstate, false), sqlstate,
					 "child execution of chain \"%s\" could not start: %s",
					 step->compose->child_chain, edata->message);
		run->detail = edata->detail ? pstrdup(edata->detail) : NULL;
		run->hint = edata->hint ? pstrdup(edata->hint) : NULL;
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

bool
ce_child_start(ExecRow *ex, LineRow *line, const CeStep *step, CeLookupCtx *lk,
			   CeStepRun *run, int attempt, Jsonb *input)
{
	CeParentLink link;
	Jsonb	   *in;
	Datum		v[6];
	bool		isnull;
	pg_uuid_t	child;
	StringInfoData b;
	TimestampTz due;

	in = child_input(step, lk, run);
	if (in == NULL)
		return false;

	ce_exec_lock(ex);
	if (ex->status == CE_EXEC_PAUSED)
	{
		ce_line_set_status(ex, line->line_number, CE_LINE_PENDING);
		return true;
	}
	if (!exec_live(ex))
	{
		ce_line_set_status(ex, line->line_number, CE_LINE_CANCELLED);
		return true;
	}

	memset(&link, 0, sizeof(link));
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_parent_info, v, NULL, true, 1);
	if (SPI_processed != 1)
		elog(ERROR, "execution %s vanished", ex->id_s);
	link.ancestors = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	link.depth = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)) + 1;
	link.in_session = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	link.org = ex->org;
	link.id = ex->id;
	link.line = line->line_number;
	link.step_id = step->id;
	link.step_name = step->name;
	link.chain_id = ex->chain_id;
	link.priority = ex->priority;

	if (link.depth > ce_max_chain_depth)
	{
		ce_step_fail(run, "validation_failed", "54001",
					 "child execution of step \"%s\" would be nested %d deep", step->name, link.depth);
		run->detail = psprintf("chainexec.max_chain_depth is %d.", ce_max_chain_depth);
		run->hint = pstrdup("A chain that runs itself needs a condition that ends the recursion.");
		return false;
	}
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = CStringGetTextDatum(step->compose->child_chain);
	v[2] = JsonbPGetDatum(link.ancestors);
	ce_run_query(&q_places_blocked, v, NULL, false, 1);
	if (SPI_processed == 1 && !ce_flow_lock_child_starts(&ex->org, step->compose->child_chain))
	{
		/* another transition starts a child of the chain: after it */
		ce_flow_line_again_soon(ex, line->line_number);
		return true;
	}
	if (SPI_processed == 1)
		ce_run_query(&q_places_blocked, v, NULL, false, 1);
	if (SPI_processed == 1)
	{
		int			lim = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		int64		held = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		int64		blocked = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));

		if (lim > 0 && held >= lim && blocked >= lim)
		{
			ce_step_fail(run, "validation_failed", "55000",
						 "child execution of step \"%s\" could never start: every place of chain \"%s\" is held by an execution that waits for one",
						 step->name, step->compose->child_chain);
			run->detail = psprintf("Chain \"%s\" has concurrencyLimit %d; its places are held by this execution's ancestors, or by executions whose own sub-chains of it wait for a place.",
								   step->compose->child_chain, lim);
			run->hint = pstrdup("Raise the chain's concurrencyLimit above the number of its executions that can be nested or run at once, or start the child from another chain.");
			return false;
		}
	}
	v[0] = ObjectIdGetDatum(ex->owner);
	ce_run_query(&q_may_execute, v, NULL, true, 1);
	if (SPI_processed != 1 ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		ce_step_fail(run, "permission_denied", "42501",
					 "the owner of execution %s may not execute chains", ex->id_s);
		run->hint = pstrdup("A step of type \"chain\" starts its child as chainexec.chain_execute() would, for the execution's owner.");
		return false;
	}

	if (!create_child(ex, line, step, in, &link, run, &child))
		return false;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"childExecutionId\":");
	escape_json(&b, ce_uuid_to_cstring(&child));
	appendStringInfoString(&b, ",\"chain\":");
	escape_json(&b, step->compose->child_chain);
	appendStringInfoChar(&b, '}');
	if (step->timeout_ms > 0)
		due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), step->timeout_ms);
	else
		due = DT_NOEND;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line->line_number);
	v[3] = Int32GetDatum(attempt);
	v[4] = TimestampTzGetDatum(due);
	v[5] = JsonbPGetDatum(ce_iteration_input(input, ce_text_to_jsonb(b.data)));
	ce_run_query(&q_wait_child, v, NULL, false, 0);
	ce_advance(ex, line->line_number);
	(void) ce_progress_refresh(ex, NULL);
	ce_step_emit(ex, "step_started", step, CE_LINE_WAITING, attempt);
	return true;
}

/* ---------------------------------------------------------------------
 * Cancelling children
 * --------------------------------------------------------------------- */

static void
cancel_one(const pg_uuid_t *org, const pg_uuid_t *id, const char *reason)
{
	ExecRow		c;

	memset(&c, 0, sizeof(c));
	c.org = *org;
	c.id = *id;
	ce_exec_read(&c);
	ce_exec_lock(&c);
	if (!exec_live(&c) && c.status != CE_EXEC_COMPENSATING)
		return;
	ce_close_open_lines(&c, 0, CE_LINE_CANCELLED);
	ce_exec_finish(&c, CE_EXEC_CANCELLED, NULL, ce_error_jsonb(CE_FAILURE_CANCELLED, "57014", reason, NULL, NULL, 0));
	ce_signal_running_at_commit(&c.id);
	(void) ce_progress_refresh(&c, NULL);
	ce_exec_emit(&c, "chain_cancelled", CE_EXEC_CANCELLED);
}

static List *
ids_of(CeQuery *q, Datum *v)
{
	List	   *ids = NIL;
	uint64		i;

	ce_run_query(q, v, NULL, false, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

		memcpy(u, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)),
			   sizeof(pg_uuid_t));
		ids = lappend(ids, u);
	}
	return ids;
}

static bool
has_chain_steps(const CePlan *plan)
{
	int			i;

	if (plan == NULL)
		return true;
	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].kind == CE_STEP_CHAIN ||
			(plan->steps[i].fallback && plan->steps[i].fallback->kind == CE_STEP_CHAIN))
			return true;
	return false;
}

void
ce_children_cancel(ExecRow *ex)
{
	Datum		v[2];
	List	   *ids;
	ListCell   *lc;

	if (!has_chain_steps(ex->plan))
		return;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	ids = ids_of(&q_children, v);
	if (ids == NIL)
		return;
	foreach(lc, ids)
		cancel_one(&ex->org, lfirst(lc), psprintf("parent execution %s ended (%s)", ex->id_s,
												  ce_exec_status_name(ex->status)));
	/* the events that follow are the parent's */
	(void) ce_progress_refresh(ex, NULL);
}

void
ce_child_cancel_for_line(ExecRow *ex, LineRow *line, const char *reason)
{
	Datum		v[3];
	List	   *ids;
	ListCell   *lc;

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line->line_number);
	ids = ids_of(&q_children_of_line, v);
	detaching = true;
	PG_TRY();
	{
		foreach(lc, ids)
			cancel_one(&ex->org, lfirst(lc), reason);
	}
	PG_FINALLY();
	{
		detaching = false;
	}
	PG_END_TRY();
	(void) ce_progress_refresh(ex, NULL);
}

/* ---------------------------------------------------------------------
 * A child ended
 * --------------------------------------------------------------------- */

void
ce_child_finished(ExecRow *ex, CeExecStatus status, Jsonb *output, Jsonb *error)
{
	ExecRow		p;
	LineRow		pl;
	CeStep	   *step;
	CeStepRun	run;
	CeLookupCtx lk;
	Datum		v[4];
	bool		isnull;

	if (!ex->has_parent || detaching)
		return;
	memset(&p, 0, sizeof(p));
	p.org = ex->org;
	p.id = ex->parent_id;
	p.search_path = ex->search_path;
	ce_exec_read(&p);
	ce_exec_lock(&p);
	if (!exec_live(&p))
		return;
	v[0] = UUIDPGetDatum(&p.org);
	v[1] = UUIDPGetDatum(&p.id);
	v[2] = Int32GetDatum(ex->parent_line);
	v[3] = CStringGetTextDatum(ex->id_s);
	ce_run_query(&q_parent_line, v, NULL, false, 1);
	if (SPI_processed != 1)
		return;
	memset(&pl, 0, sizeof(pl));
	pl.line_number = ex->parent_line;
	pl.line_type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	pl.step_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	pl.step_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	pl.status = ce_line_status_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4));
	pl.attempt = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	pl.parent_line = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isnull));
	pl.iteration = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &isnull));
	step = ce_plan_step_by_id(p.plan, pl.step_id);
	if (step == NULL)
		return;
	ce_step_setup(&p, step, pl.attempt, &lk, &run);
	if (status == CE_EXEC_COMPLETED)
	{
		Jsonb	   *out = output ? output : ex->context;

		if (out && step->noutput_vars > 0)
		{
			Datum		fv[2];
			Datum	   *names = palloc(sizeof(Datum) * step->noutput_vars);
			int			i;

			for (i = 0; i < step->noutput_vars; i++)
				names[i] = CStringGetTextDatum(step->output_vars[i]);
			fv[0] = JsonbPGetDatum(out);
			fv[1] = PointerGetDatum(construct_array(names, step->noutput_vars, TEXTOID, -1, false, TYPALIGN_INT));
			ce_run_query(&q_filter_outputs, fv, NULL, true, 1);
			out = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		run.ok = true;
		run.outputs = out;
		ce_line_succeeded(&p, &pl, step, &run, pl.attempt);
	}
	else
	{
		char	   *ftype = NULL;
		char	   *sqlstate = NULL;
		char	   *message = NULL;
		JsonbValue *jv;

		if (error && JB_ROOT_IS_OBJECT(error))
		{
			jv = getKeyJsonValueFromContainer(&error->root, "failure_type", 12, NULL);
			if (jv && jv->type == jbvString)
				ftype = pnstrdup(jv->val.string.val, jv->val.string.len);
			jv = getKeyJsonValueFromContainer(&error->root, "sqlstate", 8, NULL);
			if (jv && jv->type == jbvString && jv->val.string.len == 5)
				sqlstate = pnstrdup(jv->val.string.val, jv->val.string.len);
			jv = getKeyJsonValueFromContainer(&error->root, "message", 7, NULL);
			if (jv && jv->type == jbvString)
				message = pnstrdup(jv->val.string.val, jv->val.string.len);
		}
		if (ftype == NULL)
			ftype = status == CE_EXEC_TIMEOUT ? "execution_timeout" :
				status == CE_EXEC_CANCELLED ? CE_FAILURE_CANCELLED : "validation_failed";
		if (sqlstate == NULL)
			sqlstate = status == CE_EXEC_TIMEOUT || status == CE_EXEC_CANCELLED ? "57014" : "P0001";
		ce_step_fail(&run, ftype, sqlstate, "child execution %s of chain \"%s\" ended %s%s%s",
					 ex->id_s, ex->chain_id, ce_exec_status_name(status), message ? ": " : "", message ? message : "");
		ce_line_failed(&p, &pl, step, &run, pl.attempt);
	}
	/* the events that follow are the child's */
	(void) ce_progress_refresh(ex, NULL);
}

void
ce_lock_ancestors(ExecRow *ex)
{
	Datum		v[2];

	if (!ex->has_parent || ex->ancestors_locked)
		return;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_lock_ancestors, v, NULL, false, 0);
	ex->ancestors_locked = true;
}

bool
ce_same_family(const pg_uuid_t *org, const pg_uuid_t *a, const pg_uuid_t *b)
{
	Datum		v[3];

	v[0] = UUIDPGetDatum(org);
	v[1] = UUIDPGetDatum(a);
	v[2] = UUIDPGetDatum(b);
	ce_run_query(&q_same_family, v, NULL, true, 1);
	return SPI_processed == 1;
}

List *
ce_family(const pg_uuid_t *org, const pg_uuid_t *root)
{
	Datum		v[2];

	v[0] = UUIDPGetDatum((pg_uuid_t *) org);
	v[1] = UUIDPGetDatum((pg_uuid_t *) root);
	return ids_of(&q_family, v);
}
