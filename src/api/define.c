/*-------------------------------------------------------------------------
 *
 * define.c
 *	  Server glue of the pure definition checker (plan.c): the SQL-callable
 *	  checks used by chain_define and chain_validate, errors, the per-backend
 *	  plan cache, and variable lookup over Jsonb contexts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "parser/gram.h"		/* after scanner.h: the PARAM token */
#include "catalog/pg_collation.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "catalog/namespace.h"
#include "step.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "chainexec.h"
#include "define.h"
#include "jsonschema.h"
#include "template.h"

PG_FUNCTION_INFO_V1(ce_definition_check);
PG_FUNCTION_INFO_V1(ce_input_check);
PG_FUNCTION_INFO_V1(ce_template_check);

/*
 * ereport(ERROR) a CeError.  context_fmt, when given, prefixes the message
 * (e.g. "invalid chain definition").
 */
void
ce_raise(const CeError *err, const char *context_fmt,...)
{
	const char *sqlstate = ce_errcode_sqlstate(err->code);
	int			code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
									 sqlstate[3], sqlstate[4]);
	char		prefix[256] = "";

	if (context_fmt)
	{
		va_list		ap;

		va_start(ap, context_fmt);
		vsnprintf(prefix, sizeof(prefix), context_fmt, ap);
		va_end(ap);
	}

	ereport(ERROR,
			(errcode(code),
			 err->path[0] ?
			 errmsg("%s%s%s at %s", prefix, prefix[0] ? ": " : "", err->message, err->path) :
			 errmsg("%s%s%s", prefix, prefix[0] ? ": " : "", err->message),
			 err->detail[0] ? errdetail("%s", err->detail) : 0,
			 err->hint[0] ? errhint("%s", err->hint) : 0));
	pg_unreachable();
}

/*
 * The pattern matcher of inputSchema checks in the server: PostgreSQL's
 * own regular expression engine, in its POSIX extended flavour, on the
 * pattern as ce_schema_prepare_pattern() rewrites it.  Unlike glibc's
 * regexec(), it stops on a query cancel or a statement_timeout, so that a
 * pattern and a subject chosen to run for minutes cannot hold a backend,
 * or a background executor that a step calls chain_execute() from, beyond
 * its timeouts.  Returns 1 on a match, 0 on none, -1 when the pattern is
 * refused or does not compile (the input then fails with a violation).
 */
int
ce_pg_regex(const char *pattern, const char *subject, size_t subject_len)
{
	char	   *prepared = ce_schema_prepare_pattern(pattern);
	pg_wchar   *wpat;
	pg_wchar   *wsub;
	int			wpatlen;
	int			wsublen;
	regex_t		re;
	int			rc;

	if (prepared == NULL)
		return -1;
	wpat = palloc((strlen(prepared) + 1) * sizeof(pg_wchar));
	wpatlen = pg_mb2wchar_with_len(prepared, wpat, strlen(prepared));
	if (pg_regcomp(&re, wpat, wpatlen, REG_EXTENDED | REG_NOSUB, C_COLLATION_OID) != REG_OKAY)
	{
		/* pg_regcomp() frees what it allocated when it fails */
		CHECK_FOR_INTERRUPTS();
		return -1;
	}
	wsub = palloc((subject_len + 1) * sizeof(pg_wchar));
	wsublen = pg_mb2wchar_with_len(subject, wsub, subject_len);
	rc = pg_regexec(&re, wsub, wsublen, 0, NULL, 0, NULL, 0);
	pg_regfree(&re);
	pfree(wsub);
	pfree(wpat);
	if (rc == REG_CANCEL)
	{
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling the inputSchema pattern check")));
	}
	if (rc == REG_OKAY)
		return 1;
	return rc == REG_NOMATCH ? 0 : -1;
}

CeJson *
ce_jsonb_to_cejson(Jsonb *jb)
{
	char	   *text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	CeError		err;
	CeJson	   *v;

	memset(&err, 0, sizeof(err));
	v = cejson_parse(text, strlen(text), &err);
	if (v == NULL)
		ce_raise(&err, "could not read JSON value");
	return v;
}

Jsonb *
ce_text_to_jsonb(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

Jsonb *
ce_cejson_to_jsonb(const CeJson *v)
{
	return ce_text_to_jsonb(cejson_to_string(v));
}

void
ce_current_org(pg_uuid_t *org)
{
	memset(org, 0, sizeof(*org));
	if (ce_organization_id && ce_organization_id[0])
	{
		pg_uuid_t  *u = DatumGetUUIDP(DirectFunctionCall1(uuid_in,
														  CStringGetDatum(ce_organization_id)));

		memcpy(org, u, sizeof(*org));
	}
}

char *
ce_uuid_to_cstring(const pg_uuid_t *u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) u)));
}

/*
 * Check the SQL text of a step (its sql, a SQL rollbackAction, a
 * verificationQuery) as PostgreSQL's parser reads it, with each
 * placeholder as $n: it must parse, hold exactly one statement, and name
 * no parameter but its placeholders' ($300 would read past the values
 * bound).  Raises the definition's error, naming the JSON path.
 */
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

/* ---------------------------------------------------------------------
 * Plan cache
 * --------------------------------------------------------------------- */

typedef struct PlanKey
{
	pg_uuid_t	org;
	int			version;
	char		chain_id[NAMEDATALEN];
} PlanKey;

typedef struct PlanEntry
{
	PlanKey		key;
	CePlan	   *plan;
	MemoryContext cxt;
} PlanEntry;

static HTAB *plan_cache = NULL;
static bool plan_cache_stale = false;
static bool plan_cache_callback = false;

/*
 * An invalidation of chainexec.chains (DROP/CREATE EXTENSION makes a new
 * one, with the same chain ids and versions) or a full cache reset marks
 * the plans stale; they are dropped at the next ce_plan_get(), a safe point.
 */
static Oid	chains_relid = InvalidOid;

static void
plan_cache_inval(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == chains_relid)
		plan_cache_stale = true;
}

static void
plan_cache_drop(void)
{
	HASH_SEQ_STATUS seq;
	PlanEntry  *e;

	hash_seq_init(&seq, plan_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		MemoryContextDelete(e->cxt);
	hash_destroy(plan_cache);
	plan_cache = NULL;
	ce_step_cache_reset();
	plan_cache_stale = false;
}

CePlan *
ce_plan_get(const pg_uuid_t *org, const char *chain_id, int version)
{
	PlanKey		key;
	PlanEntry  *entry;
	bool		found;
	Datum		args[3];
	Oid			types[3] = {UUIDOID, TEXTOID, INT4OID};
	int			ret;
	bool		isnull;
	Datum		d;
	MemoryContext cxt;
	MemoryContext old;
	CeError		err;
	CePlan	   *plan;
	CeJson	   *def;

	if (plan_cache != NULL && plan_cache_stale)
		plan_cache_drop();
	if (!plan_cache_callback)
	{
		CacheRegisterRelcacheCallback(plan_cache_inval, (Datum) 0);
		plan_cache_callback = true;
	}
	if (plan_cache == NULL)
	{
		HASHCTL		ctl;

		chains_relid = get_relname_relid("chains", get_namespace_oid("chainexec", false));

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(PlanKey);
		ctl.entrysize = sizeof(PlanEntry);
		ctl.hcxt = CacheMemoryContext;
		plan_cache = hash_create("chainexec plan cache", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	memcpy(&key.org, org, sizeof(pg_uuid_t));
	key.version = version;
	strlcpy(key.chain_id, chain_id, sizeof(key.chain_id));

	entry = hash_search(plan_cache, &key, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->plan;

	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = CStringGetTextDatum(chain_id);
	args[2] = Int32GetDatum(version);
	ret = SPI_execute_with_args("SELECT definition FROM chainexec.chains "
								"WHERE organization_id = $1 AND chain_id = $2 AND version = $3",
								3, types, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("version %d of chain \"%s\" does not exist", version, chain_id)));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	cxt = AllocSetContextCreate(CacheMemoryContext, "chainexec plan", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		def = ce_jsonb_to_cejson(DatumGetJsonbP(d));
		memset(&err, 0, sizeof(err));
		plan = ce_plan_build(def, &err, NULL);
		if (plan == NULL)
			ce_raise(&err, "invalid definition of version %d of chain \"%s\"", version, chain_id);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	entry = hash_search(plan_cache, &key, HASH_ENTER, &found);
	entry->plan = plan;
	entry->cxt = cxt;
	return plan;
}

/* ---------------------------------------------------------------------
 * Variable lookup
 * --------------------------------------------------------------------- */

/* Fill a CeValue from a JsonbValue (scalars or a container). */
static void
jbv_to_value(JsonbValue *v, CeValue *out)
{
	memset(out, 0, sizeof(*out));
	switch (v->type)
	{
		case jbvNull:
			out->type = CEV_NULL;
			break;
		case jbvBool:
			out->type = CEV_BOOL;
			out->b = v->val.boolean;
			break;
		case jbvNumeric:
			{
				char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
																	NumericGetDatum(v->val.numeric)));

				out->type = CEV_NUMBER;
				out->str = s;
				out->len = strlen(s);
				out->num = strtod(s, NULL);
				break;
			}
		case jbvString:
			out->type = CEV_STRING;
			out->str = v->val.string.val;
			out->len = v->val.string.len;
			break;
		case jbvBinary:
			{
				char	   *s = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);

				out->type = CEV_JSON;
				out->str = s;
				out->len = strlen(s);
				break;
			}
		default:
			out->type = CEV_NULL;
			break;
	}
}

/* Look a path up in one Jsonb object; false when absent. */
static bool
lookup_in(Jsonb *jb, const char *const *path, int npath, CeValue *out)
{
	JsonbContainer *c;
	JsonbValue *v = NULL;
	int			i;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return false;
	c = &jb->root;
	for (i = 0; i < npath; i++)
	{
		if (JsonContainerIsObject(c))
			v = getKeyJsonValueFromContainer(c, path[i], strlen(path[i]), NULL);
		else if (JsonContainerIsArray(c))
		{
			char	   *end;
			long		idx = strtol(path[i], &end, 10);

			if (*end != '\0' || idx < 0 || end == path[i])
				return false;
			v = getIthJsonbValueFromContainer(c, (uint32) idx);
		}
		else
			return false;
		if (v == NULL)
			return false;
		if (i < npath - 1)
		{
			if (v->type != jbvBinary)
				return false;
			c = v->val.binary.data;
		}
	}
	jbv_to_value(v, out);
	return true;
}

static void
set_string(CeValue *out, const char *s)
{
	memset(out, 0, sizeof(*out));
	out->type = CEV_STRING;
	out->str = s;
	out->len = strlen(s);
}

static void
set_int(CeValue *out, int n)
{
	char	   *s = psprintf("%d", n);

	memset(out, 0, sizeof(*out));
	out->type = CEV_NUMBER;
	out->num = n;
	out->str = s;
	out->len = strlen(s);
}

/* CeLookupFn over a CeLookupCtx: chain.* built-ins, extra, then context. */
bool
ce_lookup(void *arg, const char *const *path, int npath, CeValue *out)
{
	CeLookupCtx *ctx = (CeLookupCtx *) arg;

	if (npath >= 1 && strcmp(path[0], "chain") == 0)
	{
		if (npath != 2)
			return false;
		if (strcmp(path[1], "execution_id") == 0 && ctx->execution_id)
			set_string(out, ctx->execution_id);
		else if (strcmp(path[1], "id") == 0 && ctx->chain_id)
			set_string(out, ctx->chain_id);
		else if (strcmp(path[1], "version") == 0)
			set_int(out, ctx->chain_version);
		else if (strcmp(path[1], "step_id") == 0)
			set_int(out, ctx->step_id);
		else if (strcmp(path[1], "step_name") == 0 && ctx->step_name)
			set_string(out, ctx->step_name);
		else if (strcmp(path[1], "attempt") == 0)
			set_int(out, ctx->attempt);
		else if (strcmp(path[1], "organization_id") == 0 && ctx->organization_id)
			set_string(out, ctx->organization_id);
		else
			return false;
		return true;
	}
	if (ctx->extra && lookup_in(ctx->extra, path, npath, out))
		return true;
	return lookup_in(ctx->context, path, npath, out);
}

Jsonb *
ce_value_to_jsonb(const CeValue *v)
{
	JsonbValue	jv;

	switch (v->type)
	{
		case CEV_NULL:
			jv.type = jbvNull;
			break;
		case CEV_BOOL:
			jv.type = jbvBool;
			jv.val.boolean = v->b;
			break;
		case CEV_NUMBER:
			return ce_text_to_jsonb(pnstrdup(v->str, v->len));
		case CEV_STRING:
			jv.type = jbvString;
			jv.val.string.val = (char *) v->str;
			jv.val.string.len = v->len;
			break;
		case CEV_JSON:
			return ce_text_to_jsonb(pnstrdup(v->str, v->len));
	}
	return JsonbValueToJsonb(&jv);
}
