/*-------------------------------------------------------------------------
 *
 * define.c
 *	  The SQL-callable checks of definitions used by chain_define and
 *	  chain_validate (the pure compiler's findings, and each step's SQL
 *	  text as PostgreSQL's parser reads it), of inputs and of templates.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "parser/parser.h"
#include "utils/acl.h"
#include "parser/scanner.h"
#include "parser/gram.h"		/* after scanner.h: the PARAM token */

#include "bridge.h"
#include "jsonschema.h"

PG_FUNCTION_INFO_V1(ce_definition_check);
PG_FUNCTION_INFO_V1(ce_input_check);
PG_FUNCTION_INFO_V1(ce_template_check);

static void
check_step_sql(const CeTemplate *tpl, const char *path, const char *key,
			   const char *stepname)
{
	const char *sql = ce_template_sql(tpl);
	int			nplaceholders = ce_template_nplaceholders(tpl);
	MemoryContext cxt = CurrentMemoryContext;
	ErrorContextCallback *save_context = error_context_stack;
	List	   *stmts = NIL;
	CeError		err;
	core_yy_extra_type yyextra;
	core_yyscan_t scanner;
	int			nparams = 0;

	memset(&err, 0, sizeof(err));
	strlcpy(err.path, path, sizeof(err.path));
	/*
	 * Without the callers' error contexts: an SPI caller's would move the
	 * error's position into its own query's.
	 */
	error_context_stack = NULL;
	PG_TRY();
	{
		stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
		error_context_stack = save_context;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		error_context_stack = save_context;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		err.code = CE_ERR_SYNTAX;
		snprintf(err.message, sizeof(err.message), "\"%s\" of step \"%s\" is not valid SQL: %s",
				 key, stepname, edata->message);
		if (edata->cursorpos > 0)
			snprintf(err.detail, sizeof(err.detail),
					 "At character %d of the statement as prepared (placeholders written $1, $2, ...): %s",
					 edata->cursorpos, sql);
		FreeErrorData(edata);
		ce_raise(&err, "invalid chain definition");
	}
	PG_END_TRY();

	if (list_length(stmts) != 1)
	{
		err.code = CE_ERR_SYNTAX;
		snprintf(err.message, sizeof(err.message), "\"%s\" of step \"%s\" must be exactly one SQL statement",
				 key, stepname);
		snprintf(err.detail, sizeof(err.detail), "It holds %d statements.", list_length(stmts));
		snprintf(err.hint, sizeof(err.hint), "Split it into steps, or wrap the statements in a function.");
		ce_raise(&err, "invalid chain definition");
	}

	/* the parser accepted it, so the scanner meets no error */
	scanner = scanner_init(sql, &yyextra, &ScanKeywords, ScanKeywordTokens);
	for (;;)
	{
		core_YYSTYPE yylval;
		YYLTYPE		yylloc;
		int			tok = core_yylex(&yylval, &yylloc, scanner);

		if (tok == 0)
			break;
		if (tok != PARAM)
			continue;
		nparams++;
		if (yylval.ival < 1 || yylval.ival > nplaceholders || nparams > nplaceholders)
		{
			err.code = CE_ERR_SYNTAX;
			snprintf(err.message, sizeof(err.message),
					 "\"%s\" of step \"%s\" refers to parameter $%d", key, stepname, yylval.ival);
			snprintf(err.detail, sizeof(err.detail),
					 "Only {variable} placeholders are bound; the statement has %d.", nplaceholders);
			snprintf(err.hint, sizeof(err.hint), "Write {variable} instead of $n.");
			scanner_finish(scanner);
			ce_raise(&err, "invalid chain definition");
		}
	}
	scanner_finish(scanner);
}

/*
 * The roles of requiredRoles must exist (as GRANT wants them to); those of
 * its fallbacks too.  They are resolved again when the step waits.
 */
static void
check_step_roles(const CeStep *st, const char *prefix)
{
	int			i;

	for (i = 0; i < st->nrequired_roles; i++)
		if (!OidIsValid(get_role_oid(st->required_roles[i], true)))
		{
			CeError		err;

			memset(&err, 0, sizeof(err));
			err.code = CE_ERR_REFERENCE;
			snprintf(err.path, sizeof(err.path), "%s.requiredRoles[%d]", prefix, i);
			snprintf(err.message, sizeof(err.message), "role \"%s\" does not exist",
					 st->required_roles[i]);
			snprintf(err.hint, sizeof(err.hint), "Name an existing role whose members decide on the step.");
			ce_raise(&err, "invalid chain definition");
		}
	if (st->fallback)
	{
		char		sub[256];

		snprintf(sub, sizeof(sub), "%s.fallbackStep", prefix);
		check_step_roles(st->fallback, sub);
	}
}

/* check_step_sql over every SQL text of a step and of its fallbacks. */
static void
check_step_sqls(const CeStep *st, const char *prefix)
{
	char		path[CE_ERR_PATH_LEN];

	if (st->sql_tpl)
	{
		snprintf(path, sizeof(path), "%s.sql", prefix);
		check_step_sql(st->sql_tpl, path, "sql", st->name);
	}
	if (st->rollback_tpl)
	{
		snprintf(path, sizeof(path), "%s.rollbackAction", prefix);
		check_step_sql(st->rollback_tpl, path, "rollbackAction", st->name);
	}
	if (st->verification_query)
	{
		CeError		err;
		CeTemplate *tpl;

		memset(&err, 0, sizeof(err));
		snprintf(path, sizeof(path), "%s.verificationQuery", prefix);
		tpl = ce_template_parse(st->verification_query, strlen(st->verification_query), &err);
		if (tpl == NULL)
		{
			strlcpy(err.path, path, sizeof(err.path));
			ce_raise(&err, "invalid chain definition");
		}
		check_step_sql(tpl, path, "verificationQuery", st->name);
	}
	if (st->fallback)
	{
		snprintf(path, sizeof(path), "%s.fallbackStep", prefix);
		check_step_sqls(st->fallback, path);
	}
}

/*
 * _definition_check(definition jsonb) RETURNS jsonb
 *
 * Checks a definition with the pure checker and raises its first error;
 * returns {"id", "name", "description", "warnings": [...]}.
 */
Datum
ce_definition_check(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	CeJson	   *def;
	CePlan	   *plan;
	CeError		err;
	CeWarnings	warnings;
	CeJson	   *res;
	CeJson	   *warr;
	int			i;

	if (VARSIZE(jb) > CE_MAX_DEFINITION_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("chain definition is too large"),
				 errdetail("The definition takes %zu bytes; the limit is %d bytes.",
						   (size_t) VARSIZE(jb), CE_MAX_DEFINITION_BYTES)));
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chain definition must be a JSON object")));

	def = ce_jsonb_to_cejson(jb);
	memset(&err, 0, sizeof(err));
	memset(&warnings, 0, sizeof(warnings));
	plan = ce_plan_build(def, &err, &warnings);
	if (plan == NULL)
		ce_raise(&err, "invalid chain definition");
	for (i = 0; i < plan->nsteps; i++)
	{
		char		prefix[64];

		snprintf(prefix, sizeof(prefix), "steps[%d]", i);
		check_step_sqls(&plan->steps[i], prefix);
		check_step_roles(&plan->steps[i], prefix);
	}

	res = cejson_new(CEJ_OBJECT);
	cejson_object_set(res, "id", cejson_new_string(plan->id, strlen(plan->id)));
	cejson_object_set(res, "name", plan->name ? cejson_new_string(plan->name, strlen(plan->name)) : cejson_new(CEJ_NULL));
	cejson_object_set(res, "description", plan->description ? cejson_new_string(plan->description, strlen(plan->description)) : cejson_new(CEJ_NULL));
	warr = cejson_new(CEJ_ARRAY);
	for (i = 0; i < warnings.count; i++)
	{
		CeJson	   *w = cejson_new_string(warnings.items[i], strlen(warnings.items[i]));

		warr->items = ce_realloc(warr->items, sizeof(CeJson *) * warr->count,
								 sizeof(CeJson *) * (warr->count + 1));
		warr->items[warr->count++] = w;
	}
	cejson_object_set(res, "warnings", warr);
	PG_RETURN_JSONB_P(ce_cejson_to_jsonb(res));
}

/*
 * _input_check(definition jsonb, input jsonb) RETURNS jsonb
 *
 * {"valid": bool, "errors": [{"path", "message"}...], "input": input with
 * the schema's defaults applied}.
 */
Datum
ce_input_check(PG_FUNCTION_ARGS)
{
	Jsonb	   *defjb = PG_GETARG_JSONB_P(0);
	Jsonb	   *injb = PG_GETARG_JSONB_P(1);
	CeJson	   *def = ce_jsonb_to_cejson(defjb);
	CeJson	   *input = ce_jsonb_to_cejson(injb);
	CeJson	   *schema = cejson_get(def, "inputSchema");
	CeJson	   *res = cejson_new(CEJ_OBJECT);
	CeJson	   *errs = cejson_new(CEJ_ARRAY);
	bool		valid = true;

	if (input->type != CEJ_OBJECT)
	{
		CeJson	   *e = cejson_new(CEJ_OBJECT);

		cejson_object_set(e, "path", cejson_new_string("$", 1));
		cejson_object_set(e, "message", cejson_new_string("input must be a JSON object", 27));
		errs->items = ce_alloc(sizeof(CeJson *));
		errs->items[0] = e;
		errs->count = 1;
		valid = false;
	}
	else if (schema != NULL && schema->type == CEJ_OBJECT)
	{
		CeSchemaResult r;
		int			i;

		memset(&r, 0, sizeof(r));
		valid = ce_schema_apply(schema, input, ce_pg_regex, &r);
		errs->items = ce_alloc(sizeof(CeJson *) * (r.count + 1));
		for (i = 0; i < r.count; i++)
		{
			CeJson	   *e = cejson_new(CEJ_OBJECT);

			cejson_object_set(e, "path", cejson_new_string(r.items[i].path, strlen(r.items[i].path)));
			cejson_object_set(e, "message", cejson_new_string(r.items[i].message, strlen(r.items[i].message)));
			errs->items[errs->count++] = e;
		}
	}
	{
		CeJson	   *b = cejson_new(CEJ_BOOL);

		b->boolean = valid;
		cejson_object_set(res, "valid", b);
	}
	cejson_object_set(res, "errors", errs);
	cejson_object_set(res, "input", input);
	PG_RETURN_JSONB_P(ce_cejson_to_jsonb(res));
}

/*
 * _template_check(body text): raises when the template does not parse,
 * naming the character position of the problem.
 */
Datum
ce_template_check(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	CeError		err;

	memset(&err, 0, sizeof(err));
	if (ce_template_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &err) == NULL)
	{
		if (err.pos > 0)
			ce_raise(&err, "invalid template at position %d", err.pos);
		ce_raise(&err, "invalid template");
	}
	PG_RETURN_VOID();
}

