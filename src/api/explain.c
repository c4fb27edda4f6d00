/*-------------------------------------------------------------------------
 *
 * explain.c
 *	  chain_explain(chain_id, version): the plan of a chain version as text,
 *	  the way EXPLAIN shows a query: stages of steps in order (a stage's
 *	  steps may run at once), each step's kind, what it waits for, its
 *	  condition and skip target, retries, fallback and compensation, and
 *	  its estimated duration from the history of completed lines; then the
 *	  critical path and the compensations.
 *
 *	  Also the analysis that chain_graph (graph.c) draws: ce_shape_chain()
 *	  and ce_shape_execution() load a chain version or an execution the
 *	  caller can see, and compute stages, direct predecessors, skip targets
 *	  and the critical path over the compiled plan (plan.h).
 *
 * Every query runs with SPI as the calling role (row-level security
 * applies: a role sees the chains of the session's organization and the
 * executions it may read), under a fixed search_path so that no object or
 * operator of the caller's stands in for a catalog one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "cejson.h"
#include "explain.h"

PG_FUNCTION_INFO_V1(ce_chain_explain);

/* The most recent executions whose lines make a step's estimate. */
#define CE_SHAPE_HISTORY	100

static const char *const q_chain_version =
"SELECT version, status, definition::text, organization_id FROM chainexec.chains "
"WHERE organization_id = chainexec.current_organization() AND chain_id = $1 "
"AND ($2 = 0 OR version = $2) "
"ORDER BY (status = 'active') DESC, version DESC LIMIT 1";

static const char *const q_chain_of_execution =
"SELECT status, definition::text FROM chainexec.chains "
"WHERE organization_id = $1 AND chain_id = $2 AND version = $3";

static const char *const q_history =
"SELECT l.line_type = 'fallback', l.step_id, "
"avg(extract(epoch FROM l.finished_at - coalesce(l.first_started_at, l.started_at)) * 1000)::float8, "
"count(*) "
"FROM (SELECT organization_id, id FROM chainexec.universal_transactions "
"      WHERE organization_id = $1 AND chain_id = $2 AND chain_version = $3 "
"      ORDER BY created_at DESC LIMIT " CppAsString2(CE_SHAPE_HISTORY) ") t "
"JOIN chainexec.universal_transaction_lines l "
"  ON l.organization_id = t.organization_id AND l.transaction_id = t.id "
"WHERE l.line_type IN ('step', 'fallback') AND l.status = 'completed' "
"AND l.finished_at IS NOT NULL AND l.started_at IS NOT NULL "
"GROUP BY 1, 2";

static const char *const q_execution =
"SELECT organization_id, chain_id, chain_version, status "
"FROM chainexec.universal_transactions WHERE id = $1";

static const char *const q_lines =
"SELECT line_type, step_id, status, attempt, "
"CASE WHEN started_at IS NULL THEN NULL "
"     ELSE extract(epoch FROM coalesce(finished_at, now()) - coalesce(first_started_at, started_at)) * 1000 "
"END::float8 "
"FROM chainexec.universal_transaction_lines "
"WHERE organization_id = $1 AND transaction_id = $2 ORDER BY line_number";

int
ce_shape_path_begin(void)
{
	int			level;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, chainexec, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
ce_shape_path_end(int level)
{
	AtEOXact_GUC(true, level);
}

text *
ce_shape_result(int level, const char *txt, MemoryContext outer)
{
	text	   *result;

	ce_shape_path_end(level);
	result = (text *) MemoryContextAlloc(outer, VARHDRSZ + strlen(txt));
	SET_VARSIZE(result, VARHDRSZ + strlen(txt));
	memcpy(VARDATA(result), txt, strlen(txt));
	SPI_finish();
	return result;
}

char *
ce_shape_duration(double ms)
{
	if (ms < 10000.0)
		return psprintf("%.0f ms", ms);
	if (ms < 600000.0)
		return psprintf("%.1f s", ms / 1000.0);
	return psprintf("%.0f min %.0f s", floor(ms / 60000.0), fmod(ms, 60000.0) / 1000.0);
}

/* The N of the first "skip_to_step_N" in an expression's text, else 0. */
static int
skip_target(const char *text)
{
	const char *p = text;

	while (p && (p = strstr(p, "skip_to_step_")) != NULL)
	{
		p += strlen("skip_to_step_");
		if (*p >= '0' && *p <= '9')
			return atoi(p);
	}
	return 0;
}

static int
index_of_id(const CePlan *plan, int id)
{
	int			i;

	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].id == id)
			return i;
	return -1;
}

/*
 * Stages, direct predecessors, skip targets and the critical path over
 * the weights in the steps (est_ms or duration_ms).
 */
static void
analyse(CeShape *s)
{
	CePlan	   *plan = s->plan;
	int			n = plan->nsteps;
	int			words = (n + 63) / 64;
	uint64	   *anc = palloc0(sizeof(uint64) * words * Max(n, 1));
	bool	   *done = palloc0(sizeof(bool) * Max(n, 1));
	int		   *order = palloc(sizeof(int) * Max(n, 1));
	int			norder = 0;
	int			i,
				j,
				k,
				m;
	int			best = -1;

	/* a topological order (dependsOn may name a later step) */
	while (norder < n)
	{
		bool		progress = false;

		for (i = 0; i < n; i++)
		{
			const CeStep *st = &plan->steps[i];
			bool		ready = !done[i];

			for (j = 0; ready && j < st->npreds; j++)
				ready = done[st->preds[j]];
			if (ready)
			{
				done[i] = true;
				order[norder++] = i;
				progress = true;
			}
		}
		if (!progress)
			elog(ERROR, "chain \"%s\" has a dependency cycle", s->chain_id);
	}

	for (k = 0; k < n; k++)
	{
		CeShapeStep *ss;
		const CeStep *st;
		double		w;
		int			stage = 1;

		i = order[k];
		ss = &s->steps[i];
		st = ss->step;
		w = ss->has_duration ? ss->duration_ms : (ss->has_est ? ss->est_ms : 0.0);

		/* ancestors, stage, the longest path ending here */
		ss->finish_ms = w;
		ss->path_steps = 1;
		ss->crit_pred = -1;
		for (j = 0; j < st->npreds; j++)
		{
			int			p = st->preds[j];
			CeShapeStep *ps = &s->steps[p];
			int			wd;

			for (wd = 0; wd < words; wd++)
				anc[i * words + wd] |= anc[p * words + wd];
			anc[i * words + p / 64] |= UINT64CONST(1) << (p % 64);
			stage = Max(stage, ps->stage + 1);
			if (ss->crit_pred < 0 || ps->finish_ms + w > ss->finish_ms ||
				(ps->finish_ms + w == ss->finish_ms && ps->path_steps + 1 > ss->path_steps))
			{
				ss->finish_ms = ps->finish_ms + w;
				ss->path_steps = ps->path_steps + 1;
				ss->crit_pred = p;
			}
		}
		ss->stage = stage;
		s->nstages = Max(s->nstages, stage);

		/* direct predecessors: those no other predecessor depends on */
		ss->direct = palloc(sizeof(int) * Max(st->npreds, 1));
		ss->ndirect = 0;
		for (j = 0; j < st->npreds; j++)
		{
			int			p = st->preds[j];
			bool		implied = false;

			for (m = 0; m < st->npreds && !implied; m++)
			{
				int			q = st->preds[m];

				if (q != p && (anc[q * words + p / 64] & (UINT64CONST(1) << (p % 64))))
					implied = true;
			}
			if (!implied)
				ss->direct[ss->ndirect++] = p;
		}
		if (st->condition)
			ss->skip_target = skip_target(st->condition);
		if (s->fallbacks[i].step)
		{
			s->fallbacks[i].stage = stage;
			if (s->fallbacks[i].step->condition)
				s->fallbacks[i].skip_target = skip_target(s->fallbacks[i].step->condition);
		}

		if (best < 0 || ss->finish_ms > s->steps[best].finish_ms ||
			(ss->finish_ms == s->steps[best].finish_ms && ss->path_steps > s->steps[best].path_steps))
			best = i;
	}

	/* the critical path, back from its last step */
	s->ncritical = 0;
	s->critical = palloc(sizeof(int) * Max(n, 1));
	s->critical_ms = best >= 0 ? s->steps[best].finish_ms : 0;
	for (i = best; i >= 0; i = s->steps[i].crit_pred)
	{
		s->critical[s->ncritical++] = i;
		s->steps[i].critical = true;
		if (!s->steps[i].has_est && !s->steps[i].has_duration)
			s->critical_unknown++;
	}
	for (i = 0; i < s->ncritical / 2; i++)
	{
		int			t = s->critical[i];

		s->critical[i] = s->critical[s->ncritical - 1 - i];
		s->critical[s->ncritical - 1 - i] = t;
	}
}

/* ereport(ERROR) a CeError of the pure modules, with its SQLSTATE. */
static void
raise_ce_error(const CeError *err, const char *chain_id, int version)
{
	const char *st = ce_errcode_sqlstate(err->code);

	ereport(ERROR,
			(errcode(MAKE_SQLSTATE(st[0], st[1], st[2], st[3], st[4])),
			 errmsg("invalid definition of version %d of chain \"%s\": %s%s%s", version, chain_id,
					err->message, err->path[0] ? " at " : "", err->path),
			 err->detail[0] ? errdetail("%s", err->detail) : 0,
			 err->hint[0] ? errhint("%s", err->hint) : 0));
}

/* Compile a stored definition (its text, from an SPI result). */
static CePlan *
compile(const char *def, const char *chain_id, int version)
{
	CeError		err;
	CeJson	   *json;
	CePlan	   *plan;

	memset(&err, 0, sizeof(err));
	json = cejson_parse(def, strlen(def), &err);
	if (json == NULL)
		raise_ce_error(&err, chain_id, version);
	plan = ce_plan_build(json, &err, NULL);
	if (plan == NULL)
		raise_ce_error(&err, chain_id, version);
	return plan;
}

/* A uuid as text. */
static char *
uuid_text(const pg_uuid_t *u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) u)));
}

static CeShape *
new_shape(const char *chain_id, int version, const char *status, CePlan *plan)
{
	CeShape    *s = palloc0(sizeof(CeShape));
	int			i;

	s->chain_id = pstrdup(chain_id);
	s->version = version;
	s->chain_status = pstrdup(status);
	s->plan = plan;
	s->nsteps = plan->nsteps;
	s->steps = palloc0(sizeof(CeShapeStep) * Max(plan->nsteps, 1));
	s->fallbacks = palloc0(sizeof(CeShapeStep) * Max(plan->nsteps, 1));
	for (i = 0; i < plan->nsteps; i++)
	{
		s->steps[i].step = &plan->steps[i];
		s->steps[i].crit_pred = -1;
		s->fallbacks[i].step = plan->steps[i].fallback;
		s->fallbacks[i].crit_pred = -1;
	}
	return s;
}

/* The CeShapeStep of a step or fallback id, or NULL. */
static CeShapeStep *
shape_step(CeShape *s, int id, bool fallback)
{
	int			i;

	for (i = 0; i < s->nsteps; i++)
	{
		if (!fallback && s->steps[i].step->id == id)
			return &s->steps[i];
		if (fallback && s->fallbacks[i].step && s->fallbacks[i].step->id == id)
			return &s->fallbacks[i];
	}
	return NULL;
}

/* Averages of completed lines of the last executions of the version. */
static void
load_history(CeShape *s, const pg_uuid_t *org)
{
	Datum		args[3];
	Oid			types[3] = {UUIDOID, TEXTOID, INT4OID};
	uint64		r;

	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = CStringGetTextDatum(s->chain_id);
	args[2] = Int32GetDatum(s->version);
	if (SPI_execute_with_args(q_history, 3, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the history of chain \"%s\"", s->chain_id);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		fallback = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
		int			id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		double		avg = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &isnull));
		CeShapeStep *ss = shape_step(s, id, fallback);

		if (ss == NULL || isnull)
			continue;
		ss->has_est = true;
		ss->est_ms = Max(avg, 0.0);
		ss->runs = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	}
}

CeShape *
ce_shape_chain(const char *chain_id, int version)
{
	Datum		args[2];
	Oid			types[2] = {TEXTOID, INT4OID};
	bool		isnull;
	int			v;
	char	   *status;
	CePlan	   *plan;
	CeShape    *s;
	pg_uuid_t	org;

	args[0] = CStringGetTextDatum(chain_id);
	args[1] = Int32GetDatum(version);
	if (SPI_execute_with_args(q_chain_version, 2, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read chain \"%s\"", chain_id);
	if (SPI_processed == 0)
	{
		char	   *org_setting = GetConfigOptionByName("chainexec.organization_id", NULL, true);
		bool		org_set = org_setting && org_setting[0];

		if (version != 0)
		{
			/* does the chain exist at all? */
			args[1] = Int32GetDatum(0);
			if (SPI_execute_with_args(q_chain_version, 2, types, args, NULL, true, 1) == SPI_OK_SELECT &&
				SPI_processed > 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("version %d of chain \"%s\" does not exist", version, chain_id),
						 errhint("Call chain_explain('%s') for its active version.", chain_id)));
		}
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("chain \"%s\" does not exist", chain_id),
				 org_set ?
				 errdetail("It was looked for in organization %s (chainexec.organization_id).", org_setting) :
				 errdetail("It was looked for in the default organization (chainexec.organization_id is not set)."),
				 errhint("Set chainexec.organization_id to the organization that defined the chain, or define it with chainexec.chain_define().")));
	}
	v = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	plan = compile(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), chain_id, v);
	memcpy(&org, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)),
		   sizeof(pg_uuid_t));
	s = new_shape(chain_id, v, status, plan);
	load_history(s, &org);
	analyse(s);
	return s;
}

CeShape *
ce_shape_execution(const pg_uuid_t *execution)
{
	Datum		args[3];
	Oid			types[3] = {UUIDOID, TEXTOID, INT4OID};
	bool		isnull;
	pg_uuid_t	org;
	char	   *chain_id;
	int			version;
	char	   *exec_status;
	CePlan	   *plan;
	CeShape    *s;
	uint64		r;

	args[0] = UUIDPGetDatum((pg_uuid_t *) execution);
	if (SPI_execute_with_args(q_execution, 1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read execution");
	if (SPI_processed == 0)
		return NULL;
	memcpy(&org, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
		   sizeof(pg_uuid_t));
	chain_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	exec_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);

	args[0] = UUIDPGetDatum(&org);
	args[1] = CStringGetTextDatum(chain_id);
	args[2] = Int32GetDatum(version);
	if (SPI_execute_with_args(q_chain_of_execution, 3, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read chain \"%s\"", chain_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("version %d of chain \"%s\" does not exist", version, chain_id),
				 errdetail("Execution %s runs it, in an organization other than the session's.",
						   uuid_text(execution)),
				 errhint("Set chainexec.organization_id to the execution's organization.")));
	plan = compile(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), chain_id, version);
	s = new_shape(chain_id, version, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), plan);
	s->is_execution = true;
	s->execution_id = uuid_text(execution);
	s->execution_status = exec_status;

	args[1] = UUIDPGetDatum((pg_uuid_t *) execution);
	types[1] = UUIDOID;
	if (SPI_execute_with_args(q_lines, 2, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the lines of execution %s", s->execution_id);
	s->compensations = palloc0(sizeof(CeShapeCompensation) * Max(SPI_processed, 1));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *type = SPI_getvalue(tup, desc, 1);
		int			id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		char	   *status = SPI_getvalue(tup, desc, 3);
		CeShapeStep *ss;
		Datum		d;

		if (strcmp(type, "compensation") == 0)
		{
			s->compensations[s->ncompensations].step_id = id;
			s->compensations[s->ncompensations].status = status;
			s->ncompensations++;
			continue;
		}
		ss = shape_step(s, id, strcmp(type, "fallback") == 0);
		if (ss == NULL)
			continue;
		ss->has_line = true;
		ss->status = status;
		ss->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		d = SPI_getbinval(tup, desc, 5, &isnull);
		if (!isnull)
		{
			ss->has_duration = true;
			ss->duration_ms = Max(DatumGetFloat8(d), 0.0);
		}
	}
	/* a step a fallback stood for: the fallback's time is the step's too */
	for (r = 0; r < (uint64) s->nsteps; r++)
		if (s->fallbacks[r].has_duration)
		{
			s->steps[r].has_duration = true;
			s->steps[r].duration_ms += s->fallbacks[r].duration_ms;
		}
	analyse(s);
	return s;
}

/* ---------------------------------------------------------------------
 * chain_explain
 * --------------------------------------------------------------------- */

static const char *
backoff_name(CeBackoff b)
{
	switch (b)
	{
		case CE_BACKOFF_FIXED:
			return "fixed";
		case CE_BACKOFF_LINEAR:
			return "linear";
		case CE_BACKOFF_EXPONENTIAL:
			return "exponential";
		case CE_BACKOFF_RANDOM:
			return "random";
	}
	return "?";
}

static const char *
on_failure_name(CeOnFailure f)
{
	switch (f)
	{
		case CE_ONFAIL_FAIL:
			return "fail";
		case CE_ONFAIL_WARN:
			return "warn";
		case CE_ONFAIL_SKIP:
			return "skip";
		case CE_ONFAIL_FALLBACK:
			return "fallback";
		case CE_ONFAIL_ESCALATE:
			return "escalate (the execution pauses for a person)";
	}
	return "?";
}

/* "function \"mobile-mode\"", "template \"x\"", "wait 60000 ms", ... */
static char *
kind_text(const CeStep *st)
{
	if (st->kind == CE_STEP_WAIT)
		return psprintf("wait %d ms", st->wait_ms);
	if (st->kind == CE_STEP_TEMPLATE && st->template_id)
		return psprintf("template \"%s\"", st->template_id);
	if (st->sql == NULL && st->instruction_set)
		return psprintf("%s, handler \"%s\"", st->kind_name,
						st->instruction_set);
	return pstrdup(st->kind_name);
}

static char *
estimate_text(const CeShapeStep *ss)
{
	if (!ss->has_est)
		return pstrdup("no history");
	return psprintf("est. %s from %ld run%s", ce_shape_duration(ss->est_ms), ss->runs,
					ss->runs == 1 ? "" : "s");
}

static void
append_ids(StringInfo out, const CeShape *s, const int *idx, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		appendStringInfo(out, "%s%d", i ? ", " : "", s->steps[idx[i]].step->id);
}

/* The details of one step (or fallback) under its "->" line. */
static void
explain_details(StringInfo out, const CeShape *s, int index, const CeShapeStep *ss,
				const char *pad)
{
	const CeStep *st = ss->step;
	int			i;

	if (ss->ndirect > 0)
	{
		appendStringInfo(out, "%sAfter: ", pad);
		append_ids(out, s, ss->direct, ss->ndirect);
		if (st->ndepends_on > 0)
			appendStringInfoString(out, " (dependsOn)");
		appendStringInfoChar(out, '\n');
	}
	if (st->condition)
		appendStringInfo(out, "%sCondition%s: %s\n", pad,
						 st->condition_is_routing ? " (after the step, routing)" : "", st->condition);
	if (ss->skip_target > 0)
	{
		int			t = index_of_id(s->plan, ss->skip_target);

		appendStringInfo(out, "%sSkip target: step %d%s%s", pad, ss->skip_target,
						 t >= 0 ? " " : " (unknown)", t >= 0 ? s->plan->steps[t].name : "");
		if (t >= 0 && index >= 0)
		{
			int			from = st->condition_is_routing ? index + 1 : index;
			bool		first = true;

			for (i = from; i < t; i++)
			{
				appendStringInfo(out, "%s%d", first ? " (skips " : ", ", s->plan->steps[i].id);
				first = false;
			}
			if (!first)
				appendStringInfoChar(out, ')');
		}
		appendStringInfoChar(out, '\n');
	}
	if (st->retry.maxRetries > 0)
	{
		appendStringInfo(out, "%sRetry: up to %d, %s back-off from %d ms", pad, st->retry.maxRetries,
						 backoff_name(st->retry.strategy), st->retry.baseDelayMs);
		if (st->retry.nretryOn > 0)
		{
			appendStringInfoString(out, ", on ");
			for (i = 0; i < st->retry.nretryOn; i++)
				appendStringInfo(out, "%s%s", i ? ", " : "", st->retry.retryOn[i]);
		}
		if (!st->retry.explicit_config)
			appendStringInfo(out, " (the default of kind %s)", st->kind_name);
		appendStringInfoChar(out, '\n');
	}
	if (st->timeout_ms > 0)
		appendStringInfo(out, "%sTimeout: %d ms\n", pad, st->timeout_ms);
	appendStringInfo(out, "%sOn failure: %s\n", pad, on_failure_name(st->on_failure));
	if (st->rollback_action)
		appendStringInfo(out, "%sCompensation: %s%s%s\n", pad,
						 st->rollback_is_handler ? st->rollback_action : "SQL",
						 st->rollback_is_handler ? " (handler)" : "",
						 st->verification_query ? ", verified by a query" : "");
	if (st->circuit_breaker)
		appendStringInfo(out, "%sCircuit breaker: opens at %d%% failures of %d+ calls in %d ms, for %d ms\n", pad,
						 st->circuit_breaker->failure_threshold, st->circuit_breaker->minimum_throughput,
						 st->circuit_breaker->window_ms, st->circuit_breaker->open_duration_ms);
	if (st->cache)
		appendStringInfo(out, "%sCache: %d ms, at most %d entries\n", pad,
						 st->cache->ttl_ms, st->cache->max_entries);
}

static char *
explain_text(CeShape *s)
{
	StringInfoData out;
	CePlan	   *plan = s->plan;
	int			stage;
	int			i;
	int			nfallbacks = 0;
	int			ncompensations = 0;
	int			unknown = 0;

	for (i = 0; i < s->nsteps; i++)
	{
		if (s->fallbacks[i].step)
			nfallbacks++;
		if (plan->steps[i].rollback_action)
			ncompensations++;
		if (!s->steps[i].has_est)
			unknown++;
	}

	initStringInfo(&out);
	appendStringInfo(&out, "Chain %s version %d (%s)", s->chain_id, s->version, s->chain_status);
	if (plan->name)
		appendStringInfo(&out, ": %s", plan->name);
	appendStringInfoChar(&out, '\n');
	appendStringInfo(&out, "  Steps: %d, fallbacks: %d, stages: %d, parallel steps: %s, max concurrency: ",
					 s->nsteps, nfallbacks, s->nstages, plan->parallel_enabled ? "on" : "off");
	if (plan->max_concurrency > 0)
		appendStringInfo(&out, "%d\n", plan->max_concurrency);
	else
		appendStringInfoString(&out, "unlimited\n");
	if (plan->max_execution_time_ms > 0)
		appendStringInfo(&out, "  Max execution time: %d ms\n", plan->max_execution_time_ms);
	if (plan->retry_budget >= 0)
		appendStringInfo(&out, "  Retry budget: %d retries per execution\n", plan->retry_budget);
	if (s->critical_unknown == s->ncritical)
		appendStringInfoString(&out, "  Estimated duration: unknown (no step of the critical path has history)\n");
	else
	{
		appendStringInfo(&out, "  Estimated duration: %s (critical path", ce_shape_duration(s->critical_ms));
		if (s->critical_unknown > 0)
			appendStringInfo(&out, "; %d of its steps without history", s->critical_unknown);
		appendStringInfoString(&out, ")\n");
	}
	appendStringInfoString(&out, "  Critical path: ");
	for (i = 0; i < s->ncritical; i++)
		appendStringInfo(&out, "%s%d %s", i ? " -> " : "", s->steps[s->critical[i]].step->id,
						 s->steps[s->critical[i]].step->name);
	appendStringInfoChar(&out, '\n');

	for (stage = 1; stage <= s->nstages; stage++)
	{
		int			n = 0;

		for (i = 0; i < s->nsteps; i++)
			if (s->steps[i].stage == stage)
				n++;
		if (n > 1)
			appendStringInfo(&out, "  Stage %d: parallel group of %d steps\n", stage, n);
		else
			appendStringInfo(&out, "  Stage %d\n", stage);
		for (i = 0; i < s->nsteps; i++)
		{
			CeShapeStep *ss = &s->steps[i];

			if (ss->stage != stage)
				continue;
			appendStringInfo(&out, "    ->  Step %d %s  (%s)  (%s)%s\n", ss->step->id, ss->step->name,
							 kind_text(ss->step), estimate_text(ss), ss->critical ? "  [critical]" : "");
			explain_details(&out, s, i, ss, "          ");
			if (s->fallbacks[i].step)
			{
				CeShapeStep *fs = &s->fallbacks[i];

				appendStringInfo(&out, "          ->  Fallback %d %s  (%s)  (%s)\n", fs->step->id,
								 fs->step->name, kind_text(fs->step), estimate_text(fs));
				explain_details(&out, s, -1, fs, "                ");
			}
		}
	}

	if (ncompensations > 0)
	{
		bool		first = true;

		appendStringInfo(&out, "  Compensations (%s; run in reverse completion order): ",
						 plan->rollback_enabled ? "rollbackEnabled" : "only by chain_rollback, rollbackEnabled is off");
		for (i = 0; i < s->nsteps; i++)
		{
			const CeStep *st = &plan->steps[i];

			if (!st->rollback_action)
				continue;
			appendStringInfo(&out, "%s%d %s by %s", first ? "" : "; ", st->id, st->name,
							 st->rollback_is_handler ? st->rollback_action : "SQL");
			first = false;
		}
		appendStringInfoChar(&out, '\n');
	}
	if (plan->nsuccess > 0)
	{
		appendStringInfoString(&out, "  Success conditions: ");
		for (i = 0; i < plan->nsuccess; i++)
			appendStringInfo(&out, "%s%s", i ? "; " : "", plan->success_text[i]);
		appendStringInfoChar(&out, '\n');
	}
	appendStringInfo(&out, "  History: %d of %d steps without completed runs in the last %d executions",
					 unknown, s->nsteps, CE_SHAPE_HISTORY);
	return out.data;
}

/*
 * chain_explain(chain_id text, version int DEFAULT NULL) RETURNS text
 */
Datum
ce_chain_explain(PG_FUNCTION_ARGS)
{
	char	   *chain_id;
	int			version = 0;
	MemoryContext outer = CurrentMemoryContext;
	CeShape    *s;
	int			level;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("chain id must not be null")));
	chain_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
	{
		version = PG_GETARG_INT32(1);
		if (version <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("version must be a positive number, not %d", version),
					 errhint("Leave it out (NULL) for the active version.")));
	}

	level = ce_shape_path_begin();
	s = ce_shape_chain(chain_id, version);
	PG_RETURN_TEXT_P(ce_shape_result(level, explain_text(s), outer));
}
