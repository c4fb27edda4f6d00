/*-------------------------------------------------------------------------
 *
 * step_handler.c
 *	  Running a handler step (a registered function, checked from pg_proc
 *	  before each call) and a template step (a registered template,
 *	  rendered with the step's variables): looking them up by the chain
 *	  version creator's name, the handler's argument, their outputs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_proc.h"

#include "executor/spi.h"

#include "miscadmin.h"

#include "utils/acl.h"
#include "utils/builtins.h"

#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

#include "utils/syscache.h"

#include "chainexec.h"

#include "engine.h"

#include "step_int.h"

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

Jsonb *
ce_step_declared_outputs(const CeStep *step, Jsonb *out)
{
	return step == NULL ? out : filter_object(out, step->noutput_vars, step->output_vars);
}

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

/*
 * Run q (q_handler or q_template) for the object registered under name for
 * the run's chain version; true when there is one (its row in SPI_tuptable).
 */
static bool
lookup_registered(CeQuery *q, const CeStepRun *run, const char *name)
{
	Datum		args[4];

	args[0] = UUIDPGetDatum((pg_uuid_t *) &run->org);
	args[1] = CStringGetTextDatum(name);
	args[2] = CStringGetTextDatum(run->lookup->chain_id);
	args[3] = Int32GetDatum(run->lookup->chain_version);
	return ce_run_query(q, args, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1;
}

/* The handler function registered under name for the step's chain version, or InvalidOid. */
Oid
ce_step_lookup_handler(const CeStepRun *run, const char *name)
{
	bool		isnull;

	if (!lookup_registered(&q_handler, run, name))
		return InvalidOid;
	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Body of the template registered under id for the step's chain version, or NULL. */
static char *
lookup_template(const CeStepRun *run, const char *id)
{
	if (!lookup_registered(&q_template, run, id))
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* {"failedStep", "failureType", "message"} of a compensation's cause (nulls when unknown). */
static void
compensation_context(StringInfo buf, Jsonb *failure)
{
	static const char *const from[] = {"step", "type", "message"};
	static const char *const to[] = {"failedStep", "failureType", "message"};
	int			i;

	appendStringInfoChar(buf, '{');
	for (i = 0; i < 3; i++)
	{
		JsonbValue *v = failure ? getKeyJsonValueFromContainer(&failure->root, from[i], strlen(from[i]), NULL) : NULL;

		if (i > 0)
			appendStringInfoChar(buf, ',');
		escape_json(buf, to[i]);
		appendStringInfoChar(buf, ':');
		if (v != NULL && v->type == jbvString)
			escape_json(buf, pnstrdup(v->val.string.val, v->val.string.len));
		else
			appendStringInfoString(buf, "null");
	}
	appendStringInfoChar(buf, '}');
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
	{
		Jsonb	   *vars = lk->context;

		if (step->ninput_vars > 0 && !run->compensation)
			vars = filter_object(lk->context, step->ninput_vars, step->input_vars);
		/* an iteration's item and index (and an element's outputs) */
		if (lk->extra)
			vars = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(vars),
													  JsonbPGetDatum(lk->extra)));
		JsonbToCString(&buf, &vars->root, VARSIZE(vars));
	}
	appendStringInfo(&buf, ",\"step\":{\"id\":%d,\"name\":", step->id);
	escape_json(&buf, step->name);
	appendStringInfo(&buf, ",\"attempt\":%d},\"execution_id\":", lk->attempt);
	escape_json(&buf, lk->execution_id);
	appendStringInfoString(&buf, ",\"chain_id\":");
	escape_json(&buf, lk->chain_id);
	if (run->compensation)
	{
		/* why the compensation runs: {"failedStep", "failureType", "message"} */
		appendStringInfoString(&buf, ",\"compensation\":");
		compensation_context(&buf, lk->failure);
	}
	appendStringInfoChar(&buf, '}');
	return ce_text_to_jsonb(buf.data);
}

/*
 * Check, from pg_proc, that a handler's function is still one the engine
 * may call with one jsonb: whatever the handlers table says (a function
 * dropped or replaced since it was registered, a row written around
 * chain_register_handler), calling anything else would read its argument
 * as the wrong type.
 */
static void
check_handler_signature(const char *name, Oid fn)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	char	   *what = NULL;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function of handler \"%s\" does not exist", name),
				 errdetail("The function it was registered with (oid %u) was dropped.", fn),
				 errhint("Register the handler again with chainexec.chain_register_handler().")));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (proc->prokind == PROKIND_PROCEDURE)
		what = "it is a procedure";
	else if (proc->prokind == PROKIND_AGGREGATE)
		what = "it is an aggregate function";
	else if (proc->prokind == PROKIND_WINDOW)
		what = "it is a window function";
	else if (proc->prokind != PROKIND_FUNCTION)
		what = "it is not a plain function";
	else if (proc->proretset)
		what = "it returns a set";
	else if (proc->pronargs != 1 || proc->proargtypes.values[0] != JSONBOID)
		what = "it does not take exactly one argument of type jsonb";
	else if (proc->prorettype != JSONBOID)
		what = "it does not return jsonb";
	ReleaseSysCache(tup);
	if (what)
	{
		ce_step_failure_override = "invalid_input";
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s of handler \"%s\" cannot be called as a handler",
						format_procedure(fn), name),
				 errdetail("A handler takes one jsonb and returns jsonb; %s.", what),
				 errhint("Declare it as FUNCTION name(jsonb) RETURNS jsonb and register it again.")));
	}
}

/* Call a handler function with the step's argument (as the owner). */
void
ce_step_call_handler(CeStepRun *run, const char *name, Oid fn)
{
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;
	Jsonb	   *arg = handler_argument(run);
	Jsonb	   *res;

	check_handler_signature(name, fn);
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
	ce_step_converting_outputs = true;
	run->outputs = filter_object(res, run->step->noutput_vars, run->step->output_vars);
	ce_step_converting_outputs = false;
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
		/* an iteration's item and index stay visible */
		if (run->lookup->extra)
			lk.extra = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(run->lookup->extra),
														 JsonbPGetDatum(lk.extra)));
	}
	text = ce_template_render_max(tpl, ce_lookup, &lk, (size_t) ce_max_context_bytes, &len, &err);
	if (text == NULL && err.code == CE_ERR_LIMIT)
	{
		ce_step_fail(run, "validation_failed", "54000",
					 "template output of step \"%s\" is too large (more than %d bytes)",
					 step->name, ce_max_context_bytes);
		return;
	}
	if (text == NULL)
	{
		ce_step_fail_template(run, &err);
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

/*
 * Render a template step in a subtransaction of its own (it runs no user
 * code): text that cannot become variables (a "\u0000" or a number out of
 * jsonb's range in a JSON object it renders) fails the step with
 * validation_failed instead of the transition.
 */
void
ce_step_run_template(CeStepRun *run)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		run_template(run);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata = ce_step_abort_subxact(oldcxt, oldowner);

		run->text = NULL;
		run->outputs = NULL;
		ce_step_fail(run, "validation_failed", unpack_sql_state(edata->sqlerrcode),
					 "output of step \"%s\" cannot become variables: %s",
					 run->step->name, edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* Apply a step setting at the current GUC nesting level. */
