/*-------------------------------------------------------------------------
 *
 * step.c
 *	  Run one step, or one step's rollbackAction, inside an internal
 *	  subtransaction as the execution's owner role.
 *
 * The subtransaction follows the PL handlers' idiom: begin; on error
 * switch back to the outer memory context, copy and flush the error, roll
 * back and release the subtransaction, restore the resource owner.  On
 * success the subtransaction stays open so that the caller can still undo
 * the step (when the execution was cancelled meanwhile); the caller ends
 * it with ce_step_release() or ce_step_rollback().
 *
 * Step settings (timeoutMs as statement_timeout, maxMemoryMB as work_mem,
 * the chain's searchPath, else the caller's search_path) are set at a new
 * GUC nesting level inside the subtransaction and popped when the step
 * ends, together with any setting the step itself changed: nothing a step
 * SETs outlives it (the bookkeeping around it runs as the extension owner).
 *
 * Expects: a transaction, SPI connected, CurrentMemoryContext a context
 * that lives until the end of the transition.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/parse_param.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "compat.h"
#include "engine.h"
#include "failure.h"
#include "step.h"
#include "template.h"

/* Prepared statements of sql steps and SQL rollback actions, per backend. */
typedef struct SqlPlanKey
{
	const void *tpl;			/* the CeTemplate (lives in the plan cache) */
} SqlPlanKey;

typedef struct SqlPlanEntry
{
	SqlPlanKey	key;
	SPIPlanPtr	plan;
	int			nargs;
	Oid		   *argtypes;
} SqlPlanEntry;

static HTAB *sql_plans = NULL;

/* Forget every prepared statement (the plans they belong to are gone). */
void
ce_step_cache_reset(void)
{
	HASH_SEQ_STATUS seq;
	SqlPlanEntry *e;

	if (sql_plans == NULL)
		return;
	hash_seq_init(&seq, sql_plans);
	while ((e = hash_seq_search(&seq)) != NULL)
		SPI_freeplan(e->plan);
	hash_destroy(sql_plans);
	sql_plans = NULL;
}

typedef struct VarParamState
{
	Oid		   *types;
	int			ntypes;
} VarParamState;

static void
var_param_setup(ParseState *pstate, void *arg)
{
	VarParamState *st = (VarParamState *) arg;

	setup_parse_variable_parameters(pstate, &st->types, &st->ntypes);
}

void
ce_step_fail(CeStepRun *run, const char *failure_type, const char *sqlstate,
			 const char *fmt,...)
{
	va_list		ap;
	char		buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	run->ok = false;
	run->failure_type = pstrdup(failure_type);
	strlcpy(run->sqlstate, sqlstate ? sqlstate : "", sizeof(run->sqlstate));
	run->message = pstrdup(buf);
}

/* Text of a value to bind; NULL for null. */
static char *
value_text(const CeValue *v)
{
	CeBuf		b;

	if (v->type == CEV_NULL)
		return NULL;
	if (v->type == CEV_NUMBER && v->str == NULL)
		return psprintf("%.17g", v->num);
	ce_buf_init(&b);
	ce_value_to_text(v, &b);
	return b.data;
}

/* The prepared statement of a SQL template, prepared once per backend. */
static SqlPlanEntry *
get_sql_plan(const CeTemplate *tpl)
{
	SqlPlanKey	key;
	SqlPlanEntry *e;
	bool		found;
	VarParamState st;
	SPIPlanPtr	plan;
	int			i;
	int			nargs;

	if (sql_plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(SqlPlanKey);
		ctl.entrysize = sizeof(SqlPlanEntry);
		ctl.hcxt = CacheMemoryContext;
		sql_plans = hash_create("chainexec sql plans", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.tpl = tpl;
	e = hash_search(sql_plans, &key, HASH_FIND, NULL);
	if (e)
		return e;

	/*
	 * Infer the parameters' types as for untyped literals (the way PREPARE
	 * without types does), then prepare the statement again with those
	 * types fixed, so that the kept plan does not depend on the parser hook.
	 */
	st.ntypes = ce_template_nplaceholders(tpl);
	st.types = palloc0(sizeof(Oid) * Max(st.ntypes, 1));
	for (i = 0; i < st.ntypes; i++)
		st.types[i] = UNKNOWNOID;
	plan = SPI_prepare_params(ce_template_sql(tpl), var_param_setup, &st, 0);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_params failed: %s", SPI_result_code_string(SPI_result));
	nargs = st.ntypes;
	SPI_freeplan(plan);
	for (i = 0; i < nargs; i++)
		if (st.types[i] == UNKNOWNOID || st.types[i] == InvalidOid)
			st.types[i] = TEXTOID;
	plan = SPI_prepare(ce_template_sql(tpl), nargs, st.types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);

	e = hash_search(sql_plans, &key, HASH_ENTER, &found);
	e->plan = plan;
	e->nargs = nargs;
	e->argtypes = MemoryContextAllocZero(CacheMemoryContext, sizeof(Oid) * Max(nargs, 1));
	for (i = 0; i < nargs; i++)
		e->argtypes[i] = st.types[i];
	return e;
}

/* The first row of an SPI result as a jsonb object, filtered by names. */
static Jsonb *
first_row_outputs(SPITupleTable *tt, int nnames, char **names)
{
	TupleDesc	desc = CreateTupleDescCopy(tt->tupdesc);
	HeapTuple	tup = tt->vals[0];
	Datum		rec;
	Datum		json;
	Jsonb	   *jb;

	BlessTupleDesc(desc);
	rec = heap_copy_tuple_as_datum(tup, desc);
	json = DirectFunctionCall1(row_to_json, rec);
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text_to_cstring(DatumGetTextPP(json)))));

	if (nnames > 0)
	{
		JsonbParseState *ps = NULL;
		JsonbValue *res;
		int			i;

		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		for (i = 0; i < nnames; i++)
		{
			JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, names[i], strlen(names[i]), NULL);
			JsonbValue	k;

			if (v == NULL)
				continue;
			k.type = jbvString;
			k.val.string.val = names[i];
			k.val.string.len = strlen(names[i]);
			pushJsonbValue(&ps, WJB_KEY, &k);
			if (v->type == jbvBinary)
			{
				/* re-push a container value */
				Jsonb	   *sub = JsonbValueToJsonb(v);
				JsonbIterator *it = JsonbIteratorInit(&sub->root);
				JsonbValue	iv;
				JsonbIteratorToken tok;

				while ((tok = JsonbIteratorNext(&it, &iv, false)) != WJB_DONE)
					pushJsonbValue(&ps, tok, tok < WJB_BEGIN_ARRAY || tok > WJB_END_OBJECT ? &iv : NULL);
			}
			else
				pushJsonbValue(&ps, WJB_VALUE, v);
		}
		res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		jb = JsonbValueToJsonb(res);
	}
	return jb;
}

/* Keep only the named keys of an object (all when nnames is 0). */
static Jsonb *
filter_object(Jsonb *obj, int nnames, char **names)
{
	StringInfoData buf;
	int			i;
	bool		first = true;

	if (nnames == 0 || obj == NULL)
		return obj;
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < nnames; i++)
	{
		JsonbValue *v = getKeyJsonValueFromContainer(&obj->root, names[i], strlen(names[i]), NULL);
		Jsonb	   *vj;

		if (v == NULL)
			continue;
		vj = JsonbValueToJsonb(v);
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		escape_json(&buf, names[i]);
		appendStringInfoChar(&buf, ':');
		JsonbToCString(&buf, &vj->root, VARSIZE(vj));
	}
	appendStringInfoChar(&buf, '}');
	return ce_text_to_jsonb(buf.data);
}

/* Run a SQL template (sql step or SQL rollback action). */
static void
run_sql(CeStepRun *run, const CeTemplate *tpl, CeValue *vals)
{
	SqlPlanEntry *pe = get_sql_plan(tpl);
	Datum	   *values = palloc0(sizeof(Datum) * Max(pe->nargs, 1));
	char	   *nulls = palloc0(pe->nargs + 1);
	int			i;
	int			ret;

	for (i = 0; i < pe->nargs; i++)
	{
		char	   *s = value_text(&vals[i]);

		if (s == NULL)
		{
			nulls[i] = 'n';
			values[i] = (Datum) 0;
			continue;
		}
		nulls[i] = ' ';
		if (pe->argtypes[i] == UNKNOWNOID)
			values[i] = CStringGetDatum(s);
		else
		{
			Oid			typinput;
			Oid			typioparam;

			getTypeInputInfo(pe->argtypes[i], &typinput, &typioparam);
			values[i] = OidInputFunctionCall(typinput, s, typioparam, -1);
		}
	}
	ret = SPI_execute_plan(pe->plan, values, nulls, false, 0);
	if (ret < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	run->rowcount = (int64) SPI_processed;
	if (SPI_tuptable != NULL && SPI_processed > 0 && !run->compensation)
		run->outputs = first_row_outputs(SPI_tuptable, run->step->noutput_vars, run->step->output_vars);
	if (SPI_tuptable)
		SPI_freetuptable(SPI_tuptable);
}

/*
 * Handlers and templates belong to the role that registered them: a step
 * uses the one the chain version's creator registered under that name,
 * else the one shared (by chainexec_admin) under that name.
 */
static CeQuery q_handler = {
	"SELECT h.fn::oid FROM chainexec.chains c, chainexec.handlers h "
	"WHERE c.organization_id = $1 AND c.chain_id = $3 AND c.version = $4 "
	"AND h.organization_id = $1 AND h.name = $2 "
	"AND (h.registered_by::oid = c.created_by::oid OR h.shared) "
	"ORDER BY h.shared LIMIT 1",
	4, {UUIDOID, TEXTOID, TEXTOID, INT4OID}};
static CeQuery q_template = {
	"SELECT t.body FROM chainexec.chains c, chainexec.templates t "
	"WHERE c.organization_id = $1 AND c.chain_id = $3 AND c.version = $4 "
	"AND t.organization_id = $1 AND t.template_id = $2 "
	"AND (t.registered_by::oid = c.created_by::oid OR t.shared) "
	"ORDER BY t.shared LIMIT 1",
	4, {UUIDOID, TEXTOID, TEXTOID, INT4OID}};

/* The handler function registered under name for the step's chain version, or InvalidOid. */
static Oid
lookup_handler(const CeStepRun *run, const char *name)
{
	Datum		args[4];
	bool		isnull;
	int			ret;

	args[0] = UUIDPGetDatum((pg_uuid_t *) &run->org);
	args[1] = CStringGetTextDatum(name);
	args[2] = CStringGetTextDatum(run->lookup->chain_id);
	args[3] = Int32GetDatum(run->lookup->chain_version);
	ret = ce_run_query(&q_handler, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		return InvalidOid;
	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Body of the template registered under id for the step's chain version, or NULL. */
static char *
lookup_template(const CeStepRun *run, const char *id)
{
	Datum		args[4];
	int			ret;

	args[0] = UUIDPGetDatum((pg_uuid_t *) &run->org);
	args[1] = CStringGetTextDatum(id);
	args[2] = CStringGetTextDatum(run->lookup->chain_id);
	args[3] = Int32GetDatum(run->lookup->chain_version);
	ret = ce_run_query(&q_template, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* The argument handed to a handler. */
static Jsonb *
handler_argument(CeStepRun *run)
{
	CeLookupCtx *lk = run->lookup;
	StringInfoData buf;
	const CeStep *step = run->step;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"input\":");
	if (run->rendered_input)
		escape_json(&buf, run->rendered_input);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ",\"variables\":");
	if (step->ninput_vars > 0 && !run->compensation)
	{
		Jsonb	   *vars = filter_object(lk->context, step->ninput_vars, step->input_vars);

		JsonbToCString(&buf, &vars->root, VARSIZE(vars));
	}
	else
		JsonbToCString(&buf, &lk->context->root, VARSIZE(lk->context));
	appendStringInfo(&buf, ",\"step\":{\"id\":%d,\"name\":", step->id);
	escape_json(&buf, step->name);
	appendStringInfo(&buf, ",\"attempt\":%d},\"execution_id\":", lk->attempt);
	escape_json(&buf, lk->execution_id);
	appendStringInfoString(&buf, ",\"chain_id\":");
	escape_json(&buf, lk->chain_id);
	if (run->compensation)
		appendStringInfoString(&buf, ",\"compensation\":true");
	appendStringInfoChar(&buf, '}');
	return ce_text_to_jsonb(buf.data);
}

/* Call a handler function with the step's argument (as the owner). */
static void
call_handler(CeStepRun *run, Oid fn)
{
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;
	Jsonb	   *arg = handler_argument(run);
	Jsonb	   *res;

	if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", get_func_name(fn))));
	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(arg);
	fcinfo->args[0].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	if (fcinfo->isnull)
	{
		run->outputs = NULL;
		return;
	}
	res = DatumGetJsonbP(result);
	if (run->compensation)
		return;
	if (!JB_ROOT_IS_OBJECT(res) || JB_ROOT_IS_SCALAR(res))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("handler \"%s\" returned a JSON value that is not an object",
						run->step->instruction_set),
				 errhint("A handler returns an object whose keys become variables.")));
	run->outputs = filter_object(res, run->step->noutput_vars, run->step->output_vars);
}

/* Render a template step (pure; no subtransaction needed). */
static void
run_template(CeStepRun *run)
{
	const CeStep *step = run->step;
	const CeTemplate *tpl = step->template_tpl;
	CeError		err;
	char	   *text;
	size_t		len;
	CeLookupCtx lk = *run->lookup;

	memset(&err, 0, sizeof(err));
	if (tpl == NULL)
	{
		char	   *body = lookup_template(run, step->template_id);

		if (body == NULL)
		{
			ce_step_fail(run, "resource_not_found", "42704",
						 "template \"%s\" is not registered", step->template_id);
			return;
		}
		tpl = ce_template_parse(body, strlen(body), &err);
		if (tpl == NULL)
		{
			ce_step_fail(run, "syntax_error", "42601", "template \"%s\": %s",
						 step->template_id, err.message);
			return;
		}
	}
	if (run->rendered_input)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfoString(&buf, "{\"input\":");
		escape_json(&buf, run->rendered_input);
		appendStringInfoChar(&buf, '}');
		lk.extra = ce_text_to_jsonb(buf.data);
	}
	text = ce_template_render(tpl, ce_lookup, &lk, &len, &err);
	if (text == NULL)
	{
		if (err.code == CE_ERR_MISSING_VAR)
			ce_step_fail(run, "insufficient_data", "22004", "%s", err.message);
		else
			ce_step_fail(run, "validation_failed", ce_errcode_sqlstate(err.code), "%s", err.message);
		return;
	}
	if (len > (size_t) ce_max_context_bytes)
	{
		ce_step_fail(run, "validation_failed", "54000",
					 "template output of step \"%s\" is too large (%zu bytes, limit %d)",
					 step->name, len, ce_max_context_bytes);
		return;
	}
	run->text = text;
	run->ok = true;
	if (step->noutput_vars > 1)
	{
		CeError		jerr;
		CeJson	   *j;

		memset(&jerr, 0, sizeof(jerr));
		j = cejson_parse(text, len, &jerr);
		if (j != NULL && j->type == CEJ_OBJECT)
		{
			run->outputs = filter_object(ce_cejson_to_jsonb(j), step->noutput_vars, step->output_vars);
			return;
		}
	}
	if (step->noutput_vars >= 1)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfoChar(&buf, '{');
		escape_json(&buf, step->output_vars[0]);
		appendStringInfoChar(&buf, ':');
		escape_json(&buf, text);
		appendStringInfoChar(&buf, '}');
		run->outputs = ce_text_to_jsonb(buf.data);
	}
}

/* Apply a step setting at the current GUC nesting level. */
static void
set_step_guc(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
ce_step_run(CeStepRun *run)
{
	const CeStep *step = run->step;
	const CeTemplate *sql_tpl = NULL;
	const char *handler = NULL;
	Oid			handler_fn = InvalidOid;
	CeValue    *vals = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	Oid			save_user;
	int			save_sec;
	int			gucnest;
	volatile bool timeout_armed = false;
	volatile bool cancel_open = false;
	volatile TimestampTz timeout_at = 0;
	int			timeout_ms;

	run->ok = false;
	run->rowcount = -1;
	run->subxact_open = false;

	/* Decide what to run, and evaluate parameters (pure, no subxact). */
	if (run->compensation)
	{
		if (step->rollback_is_handler)
			handler = step->rollback_action;
		else
			sql_tpl = step->rollback_tpl;
	}
	else if (step->kind == CE_STEP_TEMPLATE && step->instruction_set == NULL)
	{
		run_template(run);
		return;
	}
	else if (step->sql_tpl != NULL)
		sql_tpl = step->sql_tpl;
	else if (step->instruction_set != NULL)
		handler = step->instruction_set;
	else
	{
		ce_step_fail(run, "invalid_input", "22023", "step \"%s\" has nothing to run", step->name);
		return;
	}

	if (sql_tpl)
	{
		CeError		err;
		int			n = ce_template_nplaceholders(sql_tpl);

		memset(&err, 0, sizeof(err));
		vals = palloc0(sizeof(CeValue) * Max(n, 1));
		if (!ce_template_params(sql_tpl, ce_lookup, run->lookup, vals, &err))
		{
			if (err.code == CE_ERR_MISSING_VAR)
				ce_step_fail(run, "insufficient_data", "22004", "%s", err.message);
			else
				ce_step_fail(run, "validation_failed", ce_errcode_sqlstate(err.code), "%s", err.message);
			return;
		}
	}
	else
	{
		handler_fn = lookup_handler(run, handler);
		if (!OidIsValid(handler_fn))
		{
			ce_step_fail(run, "resource_not_found", "42704",
						 "handler \"%s\" is not registered", handler);
			run->hint = pstrdup("Register it with chainexec.chain_register_handler().");
			return;
		}
	}

	GetUserIdAndSecContext(&save_user, &save_sec);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		SetUserIdAndSecContext(run->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
		gucnest = NewGUCNestLevel();
		if (run->plan->search_path)
			set_step_guc("search_path", run->plan->search_path);
		else if (run->search_path)
			set_step_guc("search_path", run->search_path);
		if (step->max_memory_mb > 0)
			set_step_guc("work_mem", psprintf("%dMB", step->max_memory_mb));
		timeout_ms = step->timeout_ms;
		if (run->deadline != 0)
		{
			/* the execution's deadline bounds the step too */
			long		secs;
			int			usecs;
			int64		left;

			TimestampDifference(GetCurrentTimestamp(), run->deadline, &secs, &usecs);
			left = (int64) secs * 1000 + usecs / 1000 + 1;
			if (timeout_ms == 0 || left < timeout_ms)
				timeout_ms = (int) Min(left, INT_MAX);
		}
		if (timeout_ms > 0)
		{
			timeout_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
			enable_timeout_after(STATEMENT_TIMEOUT, timeout_ms);
			timeout_armed = true;
		}

		/* a cancel that arrived before the step is not for it */
		QueryCancelPending = false;
		RESUME_CANCEL_INTERRUPTS();
		cancel_open = true;

		if (sql_tpl)
			run_sql(run, sql_tpl, vals);
		else
			call_handler(run, handler_fn);

		HOLD_CANCEL_INTERRUPTS();
		cancel_open = false;
		if (timeout_armed)
		{
			disable_timeout(STATEMENT_TIMEOUT, false);
			timeout_armed = false;
		}
		/* settings the step changed (SET, set_config) end with it */
		AtEOXact_GUC(false, gucnest);
		SetUserIdAndSecContext(save_user, save_sec);
		MemoryContextSwitchTo(oldcxt);
		run->ok = true;
		run->subxact_open = true;
		run->outer_owner = oldowner;
		run->outer_cxt = oldcxt;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		timed_out = false;

		if (cancel_open)
			HOLD_CANCEL_INTERRUPTS();

		if (timeout_armed)
		{
			timed_out = get_timeout_indicator(STATEMENT_TIMEOUT, true);
			disable_timeout(STATEMENT_TIMEOUT, false);
		}
		SetUserIdAndSecContext(save_user, save_sec);
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		run->ok = false;
		strlcpy(run->sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(run->sqlstate));
		run->message = edata->message ? pstrdup(edata->message) : pstrdup("unknown error");
		run->detail = edata->detail ? pstrdup(edata->detail) : NULL;
		run->hint = edata->hint ? pstrdup(edata->hint) : NULL;
		if (edata->sqlerrcode == ERRCODE_CE_FAILURE && edata->detail &&
			strncmp(edata->detail, "failure type: ", 14) == 0)
		{
			run->failure_type = pstrdup(edata->detail + 14);
			run->detail = NULL;
		}
		else
		{
			/*
			 * ProcessInterrupts() resets the timeout's indicator when it
			 * raises the cancel, so a 57014 at or after the step's deadline
			 * is the step's own timeout too.
			 */
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && timeout_at != 0 &&
				GetCurrentTimestamp() >= timeout_at)
				timed_out = true;
			run->failure_type = pstrdup(ce_failure_type_for_sqlstate(run->sqlstate, timed_out));
		}
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

void
ce_step_release(CeStepRun *run)
{
	if (!run->subxact_open)
		return;
	ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(run->outer_cxt);
	CurrentResourceOwner = run->outer_owner;
	run->subxact_open = false;
}

void
ce_step_rollback(CeStepRun *run)
{
	if (!run->subxact_open)
		return;
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(run->outer_cxt);
	CurrentResourceOwner = run->outer_owner;
	run->subxact_open = false;
}
