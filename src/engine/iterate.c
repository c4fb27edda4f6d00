/*-------------------------------------------------------------------------
 *
 * iterate.c
 *	  Steps that run as iterations: "forEach" (once per element of an
 *	  array, at most maxConcurrency at once, outputs gathered into arrays
 *	  in element order) and "repeatUntil" (again and again until an
 *	  expression over the context holds, at most maxIterations times).
 *
 * The step's own line (the container) waits while its iteration lines run;
 * each iteration is a line of type "iteration" with the element's index
 * in column iteration, run by the engine like any step line (retries,
 * timeouts, wait timers, child executions, the sandbox), so that nothing
 * holds a process between iterations.  A forEach makes all its lines in
 * one statement when it starts (lines first .. first + count - 1, the
 * first maxConcurrency ready, the others pending); each iteration that
 * ends makes the next one ready, in the same transition, so no more than
 * maxConcurrency ever run at once.  An iteration's outputs stay on its
 * line (always, whatever saveIntermediateResults says): the context is
 * written once, when the last iteration ends and one statement gathers
 * the arrays.  A repeatUntil makes one line per repetition, and merges
 * each repetition's outputs into the context before it evaluates the
 * expression.
 *
 * onFailure applies to each element (after its retries): "skip" and
 * "warn" leave a null in the arrays and go on; "fail" cancels the other
 * elements and fails the step (its container), which fails the execution.
 * A failed execution compensates every completed element (each
 * compensation sees the element's item, index and outputs).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "compose.h"
#include "bridge.h"
#include "engine.h"
#include "shmem.h"

/* ---------------------------------------------------------------------
 * Queries
 * --------------------------------------------------------------------- */

static CeQuery q_max_line = {
	"SELECT coalesce(max(line_number), 0) FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2",
	2, {UUIDOID, UUIDOID}};

/* first line, step id, step name, ready count, priority, container, smart code, items */
/* (both inserts) line, step id, step name, priority, container, smart code; then ready, elements */
static CeQuery q_insert_elements = {
	"INSERT INTO chainexec.universal_transaction_lines (organization_id, transaction_id, line_number, "
	"line_type, step_id, step_name, status, priority, parent_line, iteration, input, smart_code) "
	"SELECT $1, $2, $3 + e.n::int - 1, 'iteration', $4, $5, "
	"CASE WHEN e.n <= $9 THEN 'ready' ELSE 'pending' END, $6, $7, e.n::int - 1, "
	"jsonb_build_object('item', e.v, 'index', e.n - 1), $8 "
	"FROM jsonb_array_elements($10) WITH ORDINALITY AS e(v, n)",
	10, {UUIDOID, UUIDOID, INT4OID, INT4OID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT4OID, JSONBOID}};

/* line, step id, step name, priority, container, smart code, iteration */
static CeQuery q_insert_repetition = {
	"INSERT INTO chainexec.universal_transaction_lines (organization_id, transaction_id, line_number, "
	"line_type, step_id, step_name, status, priority, parent_line, iteration, input, smart_code) "
	"VALUES ($1, $2, $3, 'iteration', $4, $5, 'ready', $6, $7, $9, jsonb_build_object('index', $9), $8)",
	9, {UUIDOID, UUIDOID, INT4OID, INT4OID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT4OID}};

static CeQuery q_container_wait = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'waiting', attempt = $4, "
	"not_before = 'infinity', started_at = now(), first_started_at = coalesce(first_started_at, now()), "
	"finished_at = NULL, duration_ms = NULL, error = NULL, output = $5 "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	5, {UUIDOID, UUIDOID, INT4OID, INT4OID, JSONBOID}};

#define COUNTER(k) "coalesce((output->'iterations'->>'" k "')::int, 0)"
static CeQuery q_container_get = {
	"SELECT step_id, step_name, status, attempt, " COUNTER("first") ", " COUNTER("count") ", "
	COUNTER("next") ", " COUNTER("done") ", " COUNTER("parked") ", " COUNTER("current") " "
	"FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3 FOR UPDATE",
	3, {UUIDOID, UUIDOID, INT4OID}};

static CeQuery q_container_set = {
	"UPDATE chainexec.universal_transaction_lines SET output = jsonb_build_object('iterations', "
	"jsonb_build_object('first', $4, 'count', $5, 'next', $6, 'done', $7, 'parked', $8, 'current', $9)) "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	9, {UUIDOID, UUIDOID, INT4OID, INT4OID, INT4OID, INT4OID, INT4OID, INT4OID, INT4OID}};

static CeQuery q_ready_range = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'ready', not_before = greatest(not_before, now()) "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number >= $3 AND line_number < $4 "
	"AND line_type = 'iteration' AND status = 'pending'",
	4, {UUIDOID, UUIDOID, INT4OID, INT4OID}};

/* the open iteration lines numbered from $3 to before $4 */
static CeQuery q_close_range = {
	"UPDATE chainexec.universal_transaction_lines l SET status = $5, finished_at = clock_timestamp() "
	"FROM (SELECT line_number FROM chainexec.universal_transaction_lines "
	"      WHERE organization_id = $1 AND transaction_id = $2 AND line_number >= $3 AND line_number < $4 "
	"        AND line_type = 'iteration' AND status IN ('pending', 'ready', 'waiting') "
	"      FOR UPDATE SKIP LOCKED) s "
	"WHERE l.organization_id = $1 AND l.transaction_id = $2 AND l.line_number = s.line_number",
	5, {UUIDOID, UUIDOID, INT4OID, INT4OID, TEXTOID}};

/* an open iteration line numbered from $3 to before $4 (one a transition holds) */
static CeQuery q_open_in_range = {
	"SELECT line_number FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number >= $3 AND line_number < $4 "
	"AND line_type = 'iteration' AND status IN ('pending', 'ready', 'running', 'waiting') LIMIT 1",
	4, {UUIDOID, UUIDOID, INT4OID, INT4OID}};

/*
 * Reopen (chain_resume, chain_retry_step, chain_skip_step of a stopped
 * execution) the forEach containers ($3: the chain's forEach steps) that
 * were cancelled while their iterations ran, or ($4, resume) failed
 * because an element failed ($5: the forEach steps whose failed element
 * fails the step, not "warn" or "skip"), but not one a fallback stood for,
 * nor line $6: the container waits again, those iterations are pending
 * again, the others keep their end.  A container with no such iteration
 * (it failed as it ended, say) starts again as before.
 */
#define REOPEN_ITERATION(i) "(" i "status = 'cancelled' OR (" i "status = 'failed' AND $4 AND " i "step_id = ANY($5)))"
static CeQuery q_reopen_containers = {
	"UPDATE chainexec.universal_transaction_lines c SET status = 'waiting', not_before = 'infinity', "
	"error = NULL, finished_at = NULL, duration_ms = NULL "
	"WHERE c.organization_id = $1 AND c.transaction_id = $2 AND c.line_type = 'step' "
	"AND (c.status = 'cancelled' OR (c.status = 'failed' AND $4 AND c.step_id = ANY($5))) "
	"AND c.attempt > 0 AND c.step_id = ANY($3) AND c.line_number <> $6 "
	"AND EXISTS (SELECT FROM chainexec.universal_transaction_lines i WHERE i.organization_id = $1 "
	"  AND i.transaction_id = $2 AND i.line_type = 'iteration' AND i.parent_line = c.line_number "
	"  AND " REOPEN_ITERATION("i.") ") "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transaction_lines f WHERE f.organization_id = $1 "
	"  AND f.transaction_id = $2 AND f.line_type = 'fallback' AND f.parent_line = c.line_number "
	"  AND f.status IN ('completed', 'skipped')) "
	"RETURNING c.line_number",
	6, {UUIDOID, UUIDOID, INT4ARRAYOID, BOOLOID, INT4ARRAYOID, INT4OID}};
static CeQuery q_reopen_iterations = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'pending', attempt = 0, error = NULL, "
	"finished_at = NULL, duration_ms = NULL, first_started_at = NULL "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_type = 'iteration' "
	"AND parent_line = ANY($3) AND " REOPEN_ITERATION(""),
	5, {UUIDOID, UUIDOID, INT4ARRAYOID, BOOLOID, INT4ARRAYOID}};

/* The counters of reopened containers $3 from their iterations (a failed one's output
 * lost them): "next" up to the last one not pending, "done" those that ended. */
static CeQuery q_recount = {
	"UPDATE chainexec.universal_transaction_lines c SET output = jsonb_build_object('iterations', "
	"  jsonb_build_object('first', s.first, 'count', s.count, 'next', s.next, 'done', s.done, "
	"  'parked', 0, 'current', 0)) "
	"FROM (SELECT parent_line, min(line_number) AS first, count(*) AS count, "
	"        coalesce(max(line_number) FILTER (WHERE status <> 'pending') - min(line_number) + 1, 0) AS next, "
	"        count(*) FILTER (WHERE status IN ('completed', 'skipped', 'failed')) AS done "
	"      FROM chainexec.universal_transaction_lines WHERE organization_id = $1 AND transaction_id = $2 "
	"        AND line_type = 'iteration' AND parent_line = ANY($3) GROUP BY parent_line) s "
	"WHERE c.organization_id = $1 AND c.transaction_id = $2 AND c.line_number = s.parent_line",
	3, {UUIDOID, UUIDOID, INT4ARRAYOID}};

/* status, attempt, input (null: keep), output, error, started now */
static CeQuery q_record = {
	"UPDATE chainexec.universal_transaction_lines SET status = $4, attempt = $5, "
	"input = coalesce($6, input), output = $7, error = $8, "
	"started_at = CASE WHEN $9 THEN now() ELSE started_at END, "
	"first_started_at = coalesce(first_started_at, CASE WHEN $9 THEN now() END), "
	"finished_at = clock_timestamp(), "
	"duration_ms = extract(epoch FROM clock_timestamp() - "
	"CASE WHEN $9 THEN now() ELSE coalesce(started_at, clock_timestamp()) END) * 1000 "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	9, {UUIDOID, UUIDOID, INT4OID, TEXTOID, INT4OID, JSONBOID, JSONBOID, JSONBOID, BOOLOID}};

static CeQuery q_vars = {
	"SELECT CASE WHEN input ? 'item' THEN jsonb_build_object('item', input->'item', 'index', input->'index') "
	"ELSE jsonb_build_object('index', input->'index') END "
	"FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3 AND line_type = 'iteration'",
	3, {UUIDOID, UUIDOID, INT4OID}};

static CeQuery q_compensation_vars = {
	"SELECT CASE WHEN input ? 'item' THEN jsonb_build_object('item', input->'item', 'index', input->'index') "
	"ELSE jsonb_build_object('index', input->'index') END || "
	"CASE WHEN jsonb_typeof(output->'variables') = 'object' THEN output->'variables' ELSE '{}' END "
	"FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3 AND line_type = 'iteration'",
	3, {UUIDOID, UUIDOID, INT4OID}};

/*
 * Each output variable as an array in element order (null for an element
 * that did not complete); with no outputVariables, every key any element
 * set.
 */
static CeQuery q_gather = {
	"WITH it AS MATERIALIZED (SELECT iteration, CASE WHEN status = 'completed' THEN output->'variables' END AS v "
	"            FROM chainexec.universal_transaction_lines "
	"            WHERE organization_id = $1 AND transaction_id = $2 AND line_number >= $3 "
	"              AND line_number < $3 + $4 AND line_type = 'iteration'), "
	"keys AS (SELECT k FROM unnest($5::text[]) AS k WHERE cardinality($5) > 0 "
	"         UNION SELECT jsonb_object_keys(v) FROM it "
	"         WHERE cardinality($5) = 0 AND jsonb_typeof(v) = 'object') "
	"SELECT coalesce(jsonb_object_agg(keys.k, "
	"  (SELECT jsonb_agg(coalesce(it.v -> keys.k, 'null'::jsonb) ORDER BY it.iteration) FROM it)), '{}'::jsonb) "
	"FROM keys",
	5, {UUIDOID, UUIDOID, INT4OID, INT4OID, TEXTARRAYOID}};

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

typedef struct Container
{
	int			line_number;
	int			step_id;
	char	   *step_name;
	CeLineStatus status;
	int			attempt;
	int			first;			/* forEach: first element's line */
	int			count;			/* forEach: elements; repeatUntil: maxIterations */
	int			next;			/* iterations made ready so far */
	int			done;			/* iterations that ended */
	int			parked;			/* iterations a pause set back to pending */
	int			current;		/* repeatUntil: the line of the running one */
} Container;

static bool
exec_live(ExecRow *ex)
{
	return ce_exec_status_is_live(ex->status) || ex->status == CE_EXEC_PAUSED;
}

static int
getint(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

static Jsonb *
getjsonb(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

static void
pk_args(ExecRow *ex, int line_number, Datum *v)
{
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line_number);
}

static bool
container_get(ExecRow *ex, int line_number, Container *c)
{
	Datum		v[3];

	pk_args(ex, line_number, v);
	ce_run_query(&q_container_get, v, NULL, false, 1);
	if (SPI_processed != 1)
		return false;
	memset(c, 0, sizeof(*c));
	c->line_number = line_number;
	c->step_id = getint(0, 1);
	c->step_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	c->status = ce_line_status_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3));
	c->attempt = getint(0, 4);
	c->first = getint(0, 5);
	c->count = getint(0, 6);
	c->next = getint(0, 7);
	c->done = getint(0, 8);
	c->parked = getint(0, 9);
	c->current = getint(0, 10);
	return true;
}

static void
container_set(ExecRow *ex, Container *c)
{
	Datum		v[9];

	pk_args(ex, c->line_number, v);
	v[3] = Int32GetDatum(c->first);
	v[4] = Int32GetDatum(c->count);
	v[5] = Int32GetDatum(c->next);
	v[6] = Int32GetDatum(c->done);
	v[7] = Int32GetDatum(c->parked);
	v[8] = Int32GetDatum(c->current);
	ce_run_query(&q_container_set, v, NULL, false, 0);
}

static Jsonb *
counters_jsonb(Container *c)
{
	return ce_text_to_jsonb(psprintf("{\"iterations\": {\"first\": %d, \"count\": %d, \"next\": %d, "
									 "\"done\": %d, \"parked\": %d, \"current\": %d}}",
									 c->first, c->count, c->next, c->done, c->parked, c->current));
}

/* Record the end of an iteration's attempt on its line. */
static void
record(ExecRow *ex, LineRow *line, CeLineStatus status, int attempt, Jsonb *input,
	   Jsonb *output, Jsonb *error)
{
	Datum		v[9];
	char		n[10] = "         ";

	pk_args(ex, line->line_number, v);
	v[3] = CStringGetTextDatum(ce_line_status_name(status));
	v[4] = Int32GetDatum(attempt);
	v[5] = input ? JsonbPGetDatum(input) : (Datum) 0;
	n[5] = input ? ' ' : 'n';
	v[6] = output ? JsonbPGetDatum(output) : (Datum) 0;
	n[6] = output ? ' ' : 'n';
	v[7] = error ? JsonbPGetDatum(error) : (Datum) 0;
	n[7] = error ? ' ' : 'n';
	v[8] = BoolGetDatum(line->ran_now);
	ce_run_query(&q_record, v, n, false, 0);
}

/* Close the open iteration lines numbered from first to before end. */
static void
close_iterations(ExecRow *ex, int first, int end, CeLineStatus status)
{
	Datum		v[5];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(first);
	v[3] = Int32GetDatum(end);
	v[4] = CStringGetTextDatum(ce_line_status_name(status));
	ce_run_query(&q_close_range, v, NULL, false, 0);
}

/* The number of a line added after the execution's last. */
static int
next_line_number(ExecRow *ex)
{
	Datum		v[2];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_max_line, v, NULL, false, 1);
	return getint(0, 1) + 1;
}

/* $1 to $8 of q_insert_elements and q_insert_repetition */
static void
iteration_args(ExecRow *ex, const CeStep *step, int container, int first, Datum *v)
{
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(first);
	v[3] = Int32GetDatum(step->id);
	v[4] = CStringGetTextDatum(step->name);
	v[5] = Int32GetDatum(ex->priority);
	v[6] = Int32GetDatum(container);
	v[7] = CStringGetTextDatum(ce_smart_code("ITERATION", step->name, ex->version));
}

static Jsonb *
jsonb_cat(Jsonb *a, Jsonb *b)
{
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(a), JsonbPGetDatum(b)));
}

/* The container as a line the engine can record. */
static void
container_line(Container *c, LineRow *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->line_number = c->line_number;
	cl->line_type = "step";
	cl->step_id = c->step_id;
	cl->step_name = c->step_name;
	cl->status = CE_LINE_WAITING;
	cl->attempt = c->attempt;
	cl->iteration = -1;
	cl->ran_now = false;
}

static void
container_complete(ExecRow *ex, Container *c, const CeStep *step, Jsonb *outputs)
{
	LineRow		cl;
	CeStepRun	run;
	CeLookupCtx lk;

	container_line(c, &cl);
	ce_step_setup(ex, step, c->attempt, &lk, &run);
	run.ok = true;
	run.outputs = outputs;
	ce_line_succeeded(ex, &cl, step, &run, c->attempt);
}

/* The container fails with run's failure; no retry of the whole. */
static void
container_fail(ExecRow *ex, Container *c, const CeStep *step, CeStepRun *failed)
{
	LineRow		cl;

	container_line(c, &cl);
	cl.no_retry = true;
	ce_line_failed(ex, &cl, step, failed, c->attempt);
}

static ArrayType *
output_names(const CeStep *step)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(step->noutput_vars, 1));
	int			i;

	for (i = 0; i < step->noutput_vars; i++)
		d[i] = CStringGetTextDatum(step->output_vars[i]);
	return construct_array(d, step->noutput_vars, TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * Lock the header; false when the execution stopped or paused meanwhile
 * (the line is then cancelled, or pending until the resume).
 */
static bool
lock_live(ExecRow *ex, LineRow *line)
{
	ce_exec_lock(ex);
	if (ex->status == CE_EXEC_PAUSED)
	{
		ce_line_set_status(ex, line->line_number, CE_LINE_PENDING);
		return false;
	}
	if (!exec_live(ex))
	{
		ce_line_set_status(ex, line->line_number, CE_LINE_CANCELLED);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Starting
 * --------------------------------------------------------------------- */

bool
ce_container_start(ExecRow *ex, LineRow *line, const CeStep *step, CeLookupCtx *lk,
				   CeStepRun *run, int attempt)
{
	CeCompose  *cc = step->compose;
	Container	c;
	Datum		v[10];
	int			first;
	int			ready;

	memset(&c, 0, sizeof(c));
	c.line_number = line->line_number;
	c.step_id = step->id;
	c.step_name = step->name;
	c.attempt = attempt;

	if (cc->for_each)
	{
		CeValue		val;
		Jsonb	   *items;
		int			n;

		if (!ce_lookup(lk, (const char *const *) cc->for_each_path, cc->for_each_npath, &val) ||
			val.type == CEV_NULL)
		{
			ce_step_fail(run, "insufficient_data", "22004",
						 "\"forEach\" of step \"%s\": variable %s is not set", step->name, cc->for_each);
			return false;
		}
		if (val.type != CEV_JSON || val.len == 0 || val.str[0] != '[')
		{
			ce_step_fail(run, "validation_failed", "22023",
						 "\"forEach\" of step \"%s\": %s is not an array", step->name, cc->for_each);
			return false;
		}
		items = ce_value_to_jsonb(&val);
		n = JsonContainerSize(&items->root);
		if (n == 0)
		{
			/* nothing to do: each output variable is an empty array */
			StringInfoData b;
			int			i;

			initStringInfo(&b);
			appendStringInfoChar(&b, '{');
			for (i = 0; i < step->noutput_vars; i++)
			{
				if (i > 0)
					appendStringInfoChar(&b, ',');
				escape_json(&b, step->output_vars[i]);
				appendStringInfoString(&b, ":[]");
			}
			appendStringInfoChar(&b, '}');
			run->ok = true;
			run->outputs = ce_text_to_jsonb(b.data);
			ce_line_succeeded(ex, line, step, run, attempt);
			return true;
		}

		if (!lock_live(ex, line))
			return true;
		first = next_line_number(ex);
		ready = cc->max_concurrency > 0 ? Min(cc->max_concurrency, n) : n;
		iteration_args(ex, step, line->line_number, first, v);
		v[8] = Int32GetDatum(ready);
		v[9] = JsonbPGetDatum(items);
		ce_run_query(&q_insert_elements, v, NULL, false, 0);
		c.first = first;
		c.count = n;
		c.next = ready;
	}
	else
	{
		if (!lock_live(ex, line))
			return true;
		first = next_line_number(ex);
		iteration_args(ex, step, line->line_number, first, v);
		v[8] = Int32GetDatum(0);
		ce_run_query(&q_insert_repetition, v, NULL, false, 0);
		c.first = first;
		c.count = cc->max_iterations;
		c.next = 1;
		c.current = first;
		ready = 1;
	}

	pk_args(ex, line->line_number, v);
	v[3] = Int32GetDatum(attempt);
	v[4] = JsonbPGetDatum(counters_jsonb(&c));
	ce_run_query(&q_container_wait, v, NULL, false, 0);
	ce_wake_executors(ready);
	ce_advance(ex, line->line_number);
	(void) ce_progress_refresh(ex, NULL);
	ce_step_emit(ex, "step_started", step, CE_LINE_WAITING, attempt);
	return true;
}

/* ---------------------------------------------------------------------
 * Variables
 * --------------------------------------------------------------------- */

Jsonb *
ce_iteration_vars(ExecRow *ex, LineRow *line)
{
	Datum		v[3];

	if (!CE_IS_ITERATION(line))
		return NULL;
	pk_args(ex, line->line_number, v);
	ce_run_query(&q_vars, v, NULL, true, 1);
	return SPI_processed == 1 ? getjsonb(0, 1) : NULL;
}

Jsonb *
ce_iteration_input(Jsonb *vars, Jsonb *input)
{
	return jsonb_cat(vars, input);
}

Jsonb *
ce_compensation_vars(ExecRow *ex, LineRow *line)
{
	Datum		v[3];

	if (line->parent_line <= 0)
		return NULL;
	pk_args(ex, line->parent_line, v);
	ce_run_query(&q_compensation_vars, v, NULL, true, 1);
	return SPI_processed == 1 ? getjsonb(0, 1) : NULL;
}

/* ---------------------------------------------------------------------
 * Going on
 * --------------------------------------------------------------------- */

/* Whether the repeatUntil expression holds over the context. */
static bool
repeat_done(ExecRow *ex, const CeStep *step, int attempt)
{
	CeLookupCtx lk;
	CeStepRun	run;
	CeValue		val;
	CeError		err;

	ce_step_setup(ex, step, attempt, &lk, &run);
	memset(&err, 0, sizeof(err));
	return ce_expr_eval(step->compose->repeat_expr, ce_lookup, &lk, &val, &err) &&
		ce_value_truthy(&val);
}

/*
 * An iteration ended (completed, skipped, failed under warn): make the
 * next ones ready, or end the container.  The header is locked.
 */
static void
container_next(ExecRow *ex, LineRow *line, const CeStep *step)
{
	CeCompose  *cc = step->compose;
	Container	c;
	Datum		v[10];

	if (!container_get(ex, line->parent_line, &c) || c.status != CE_LINE_WAITING)
		return;					/* the container ended meanwhile */
	c.done++;

	if (cc->repeat_until)
	{
		if (repeat_done(ex, step, c.attempt))
		{
			container_set(ex, &c);
			container_complete(ex, &c, step, NULL);
			return;
		}
		if (c.done >= c.count)
		{
			CeStepRun	run;
			CeLookupCtx lk;

			container_set(ex, &c);
			ce_step_setup(ex, step, c.attempt, &lk, &run);
			ce_step_fail(&run, "iterations_exhausted", "54000",
						 "step \"%s\" ran %d times and its \"repeatUntil\" condition is still false",
						 step->name, c.done);
			run.hint = pstrdup("Raise \"maxIterations\", or make the step reach the condition.");
			container_fail(ex, &c, step, &run);
			return;
		}
		c.current = next_line_number(ex);
		iteration_args(ex, step, c.line_number, c.current, v);
		v[8] = Int32GetDatum(c.next);
		ce_run_query(&q_insert_repetition, v, NULL, false, 0);
		c.next++;
		container_set(ex, &c);
		if (ex->status != CE_EXEC_PAUSED)
			ce_wake_executors(1);
		return;
	}

	if (c.done >= c.count)
	{
		Jsonb	   *gathered;

		container_set(ex, &c);
		v[0] = UUIDPGetDatum(&ex->org);
		v[1] = UUIDPGetDatum(&ex->id);
		v[2] = Int32GetDatum(c.first);
		v[3] = Int32GetDatum(c.count);
		v[4] = PointerGetDatum(output_names(step));
		ce_run_query(&q_gather, v, NULL, false, 1);
		gathered = SPI_processed == 1 ? getjsonb(0, 1) : NULL;
		container_complete(ex, &c, step, gathered);
		return;
	}
	{
		int			limit = cc->max_concurrency > 0 ? c.done + cc->max_concurrency : c.count;
		int			next = Min(limit, c.count);

		if (next > c.next && ex->status != CE_EXEC_PAUSED)
		{
			v[0] = UUIDPGetDatum(&ex->org);
			v[1] = UUIDPGetDatum(&ex->id);
			v[2] = Int32GetDatum(c.first + c.next);
			v[3] = Int32GetDatum(c.first + next);
			ce_run_query(&q_ready_range, v, NULL, false, 0);
			ce_wake_executors((int) SPI_processed);
			c.next = next;
		}
		container_set(ex, &c);
	}
}

void
ce_iteration_succeeded(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run,
					   int attempt, Jsonb *input)
{
	Jsonb	   *merged = NULL;

	ce_exec_lock(ex);
	if (!exec_live(ex))
	{
		ce_step_rollback(run);
		record(ex, line, CE_LINE_CANCELLED, attempt, input, NULL, NULL);
		return;
	}
	if (run->outputs)
	{
		/* forEach: checked as a context of its own; repeatUntil: merged */
		merged = ce_context_merge_outputs(step->compose->repeat_until ? ex->context : NULL, step, run);
		if (merged == NULL)
		{
			ce_line_failed(ex, line, step, run, attempt);
			return;
		}
	}
	ce_step_release(run);
	if (step->compose->repeat_until && merged)
		ce_exec_set_context(ex, merged);
	record(ex, line, CE_LINE_COMPLETED, attempt, input, ce_output_jsonb(run), NULL);
	(void) ce_progress_refresh(ex, NULL);
	ce_step_emit(ex, "step_completed", step, CE_LINE_COMPLETED, attempt);
	container_next(ex, line, step);
}

void
ce_iteration_failed(ExecRow *ex, LineRow *line, const CeStep *step, CeStepRun *run,
					int attempt, Jsonb *input, Jsonb *error)
{
	Container	c;

	switch (step->on_failure)
	{
		case CE_ONFAIL_SKIP:
			record(ex, line, CE_LINE_SKIPPED, attempt, input, NULL, error);
			(void) ce_progress_refresh(ex, NULL);
			ce_step_emit(ex, "step_skipped", step, CE_LINE_SKIPPED, attempt);
			container_next(ex, line, step);
			return;
		case CE_ONFAIL_WARN:
			record(ex, line, CE_LINE_FAILED, attempt, input, NULL, error);
			(void) ce_progress_refresh(ex, NULL);
			ce_step_emit(ex, "step_failed", step, CE_LINE_FAILED, attempt);
			container_next(ex, line, step);
			return;
		default:
			record(ex, line, CE_LINE_FAILED, attempt, input, NULL, error);
			(void) ce_progress_refresh(ex, NULL);
			ce_step_emit(ex, "step_failed", step, CE_LINE_FAILED, attempt);
			if (!container_get(ex, line->parent_line, &c) || c.status != CE_LINE_WAITING)
				return;
			if (step->compose->for_each)
				close_iterations(ex, c.first, c.first + c.count, CE_LINE_CANCELLED);
			container_fail(ex, &c, step, run);
			return;
	}
}

void
ce_iteration_park(ExecRow *ex, LineRow *line)
{
	Container	c;

	ce_line_set_status(ex, line->line_number, CE_LINE_PENDING);
	if (container_get(ex, line->parent_line, &c))
	{
		c.parked++;
		container_set(ex, &c);
	}
}

/*
 * Make ready again the iterations of a waiting container that a pause held
 * back: those it set back to pending (the pause itself, or a claim during
 * it), and for a forEach the ones that iterations ending during the pause
 * would have made ready (container_next does not while paused), up to
 * maxConcurrency.  Ready lines keep their due time.
 */
static void
container_reopen(ExecRow *ex, int line_number)
{
	Container	c;
	Datum		v[4];
	CeStep	   *step;
	int			next;

	if (!container_get(ex, line_number, &c) || c.status != CE_LINE_WAITING)
		return;
	step = ce_plan_step_by_id(ex->plan, c.step_id);
	if (step == NULL || !ce_step_iterates(step))
		return;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	if (step->compose->repeat_until)
	{
		v[2] = Int32GetDatum(c.current);
		v[3] = Int32GetDatum(c.current + 1);
	}
	else
	{
		next = step->compose->max_concurrency > 0 ? c.done + step->compose->max_concurrency : c.count;
		c.next = Max(c.next, Min(next, c.count));
		v[2] = Int32GetDatum(c.first);
		v[3] = Int32GetDatum(c.first + c.next);
	}
	ce_run_query(&q_ready_range, v, NULL, false, 0);
	ce_wake_executors((int) SPI_processed);
	c.parked = 0;
	container_set(ex, &c);
}

void
ce_iterations_advance(ExecRow *ex, List *lines, bool resumed)
{
	ListCell   *lc;

	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type == 's' && li->status == CE_LINE_WAITING &&
			(li->iter_parked > 0 || (resumed && li->iter_count > 0)))
			container_reopen(ex, li->line_number);
	}
}

/*
 * A stopped execution reopens: its forEach steps cancelled while their
 * iterations ran, or (failed_too: chain_resume) failed by an element, go
 * on from where they were, the elements that ended are not run again (a
 * step that completed is not either); not own_line, the step that
 * chain_retry_step starts again or chain_skip_step skips.
 */
void
ce_containers_reopen(ExecRow *ex, int own_line, bool failed_too)
{
	CePlan	   *plan = ex->plan;
	Datum	   *ids = palloc(sizeof(Datum) * Max(plan->nsteps, 1));
	Datum	   *failing = palloc(sizeof(Datum) * Max(plan->nsteps, 1));
	List	   *lines = NIL;
	ListCell   *lc;
	Datum		v[6];
	int			n = 0;
	int			nf = 0;
	int			i;

	for (i = 0; i < plan->nsteps; i++)
	{
		CeStep	   *s = &plan->steps[i];

		if (!ce_step_iterates(s) || !s->compose->for_each)
			continue;
		ids[n++] = Int32GetDatum(s->id);
		if (s->on_failure != CE_ONFAIL_WARN && s->on_failure != CE_ONFAIL_SKIP)
			failing[nf++] = Int32GetDatum(s->id);
	}
	if (n == 0)
		return;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = PointerGetDatum(construct_array(ids, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	v[3] = BoolGetDatum(failed_too);
	v[4] = PointerGetDatum(construct_array(failing, nf, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	v[5] = Int32GetDatum(own_line);
	ce_run_query(&q_reopen_containers, v, NULL, false, 0);
	for (uint64 k = 0; k < SPI_processed; k++)
		lines = lappend_int(lines, getint((int) k, 1));
	if (lines == NIL)
		return;
	v[2] = PointerGetDatum(ce_int_array(lines));
	ce_run_query(&q_reopen_iterations, v, NULL, false, 0);
	ce_run_query(&q_recount, v, NULL, false, 0);
	foreach(lc, lines)
		container_reopen(ex, lfirst_int(lc));
}

/*
 * chain_skip_step, chain_retry_step of a step whose line is lineno: when
 * it is a container, close its iterations that no transition runs now;
 * false when one is running (the step is being run).
 */
bool
ce_container_settle(ExecRow *ex, int lineno)
{
	Container	c;
	Datum		v[4];

	if (!container_get(ex, lineno, &c) || c.count == 0)
		return true;
	close_iterations(ex, c.first, c.first + c.count, CE_LINE_CANCELLED);
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(c.first);
	v[3] = Int32GetDatum(c.first + c.count);
	ce_run_query(&q_open_in_range, v, NULL, false, 1);
	return SPI_processed == 0;
}

void
ce_iterations_close(ExecRow *ex, CeLineStatus status)
{
	close_iterations(ex, 0, PG_INT32_MAX, status);
}
