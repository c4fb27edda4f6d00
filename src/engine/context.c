/*-------------------------------------------------------------------------
 *
 * context.c
 *	  The values a transition builds: the error objects of lines and
 *	  executions, smart codes, the context merge (the one check of
 *	  everything written into an execution's context), a line's input and
 *	  output objects, and the variables a step sees.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <signal.h>

#include "mb/pg_wchar.h"

#include "utils/fmgrprotos.h"

#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "chainexec.h"

#include "engine.h"
#include "engine_int.h"

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

Jsonb *
ce_error_jsonb(const char *failure_type, const char *sqlstate, const char *message,
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

Jsonb *
ce_run_error_jsonb(CeStepRun *run, int attempt)
{
	return ce_error_jsonb(run->failure_type, run->sqlstate, run->message, run->detail, run->hint, attempt);
}

/* Add "step"/"stepId" to an execution-level error. */
Jsonb *
ce_execution_error(Jsonb *line_error, const CeStep *step)
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

Jsonb *
ce_context_merge_outputs(Jsonb *context, const CeStep *step, CeStepRun *run)
{
	CeContextError err;
	Jsonb	   *merged = ce_context_merge(context, run->outputs, "output",
										  psprintf("step \"%s\"", step->name), &err);

	if (merged == NULL)
	{
		ce_step_rollback(run);
		ce_step_fail(run, "validation_failed", err.sqlstate, "%s", err.message);
		run->detail = err.detail;
		run->hint = err.hint;
	}
	return merged;
}

/* ---------------------------------------------------------------------
 * What a step sees, and what its line keeps
 * --------------------------------------------------------------------- */

/* The variables a step sees (step NULL: the execution's own). */
void
ce_lookup_init(ExecRow *ex, const CeStep *step, int attempt, CeLookupCtx *lk)
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
	ce_lookup_init(ex, step, attempt, lk);
	memset(run, 0, sizeof(*run));
	run->plan = ex->plan;
	run->step = step;
	run->owner = ex->owner;
	run->org = ex->org;
	run->lookup = lk;
	run->search_path = ex->search_path;
	run->rowcount = -1;
}

/* A line's input: {"input": the rendered inputTemplate}, or NULL. */
Jsonb *
ce_input_jsonb(const char *rendered)
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

/*
 * A line's output: the variables the step set, its row count or text.
 * Built as jsonb directly (the variables container pushed as it is), not
 * printed and parsed again.
 */
Jsonb *
ce_output_jsonb(CeStepRun *run)
{
	JsonbParseState *ps = NULL;
	JsonbValue	k;
	JsonbValue	v;
	JsonbValue *res;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "variables";
	k.val.string.len = strlen("variables");
	pushJsonbValue(&ps, WJB_KEY, &k);
	if (run->outputs)
	{
		v.type = jbvBinary;
		v.val.binary.data = &run->outputs->root;
		v.val.binary.len = VARSIZE(run->outputs) - VARHDRSZ;
		pushJsonbValue(&ps, WJB_VALUE, &v);
	}
	else
	{
		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	}
	if (run->rowcount >= 0)
	{
		k.val.string.val = "rowCount";
		k.val.string.len = strlen("rowCount");
		pushJsonbValue(&ps, WJB_KEY, &k);
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(run->rowcount);
		pushJsonbValue(&ps, WJB_VALUE, &v);
	}
	if (run->text)
	{
		k.val.string.val = "text";
		k.val.string.len = strlen("text");
		pushJsonbValue(&ps, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = run->text;
		v.val.string.len = strlen(run->text);
		pushJsonbValue(&ps, WJB_VALUE, &v);
	}
	if (run->cached)
	{
		k.val.string.val = "cached";
		k.val.string.len = strlen("cached");
		pushJsonbValue(&ps, WJB_KEY, &k);
		v.type = jbvBool;
		v.val.boolean = true;
		pushJsonbValue(&ps, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}
