/*-------------------------------------------------------------------------
 *
 * step_sql.c
 *	  Running a sql step (or a SQL rollback action): its statement,
 *	  prepared once per backend with its placeholders as parameters, run
 *	  through SPI; the first row's columns become the step's outputs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"

#include "parser/parse_param.h"

#include "utils/builtins.h"

#include "utils/lsyscache.h"

#include "plancache.h"
#include "step_int.h"

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
		sql_plans = ce_cache_create("chainexec sql plans", sizeof(SqlPlanKey), sizeof(SqlPlanEntry));
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

	/*
	 * One statement, with only the parameters of its own placeholders (the
	 * definition check refuses others; this holds whatever the catalog
	 * says).
	 */
	if (list_length(SPI_plan_get_plan_sources(plan)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("the SQL text of a step must be exactly one statement"),
				 errdetail("It holds %d statements.",
						   list_length(SPI_plan_get_plan_sources(plan)))));
	if (nargs > ce_template_nplaceholders(tpl))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_PARAMETER),
				 errmsg("there is no parameter $%d", nargs),
				 errdetail("The statement has %d placeholders.",
						   ce_template_nplaceholders(tpl)),
				 errhint("Write {variable} placeholders, never $n.")));
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

/* The values of a SQL template's placeholders, as its prepared statement takes them. */
static void
bind_params(const CeTemplate *tpl, SqlPlanEntry *pe, CeValue *vals, Datum **values_out, char **nulls_out)
{
	Datum	   *values = palloc0(sizeof(Datum) * Max(pe->nargs, 1));
	char	   *nulls = palloc0(pe->nargs + 1);
	int			i;

	/* never bind past the values of the placeholders */
	if (pe->nargs > ce_template_nplaceholders(tpl))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_PARAMETER),
				 errmsg("there is no parameter $%d", pe->nargs)));
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
	*values_out = values;
	*nulls_out = nulls;
}

/*
 * The error of a step's statement that SPI refused: a transaction control
 * statement (COMMIT, ROLLBACK, SAVEPOINT: the step runs inside the
 * transition's transaction), or COPY to or from the client.
 */
static void
sql_refused(int ret)
{
	if (ret == SPI_ERROR_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("a step cannot control the transaction"),
				 errdetail("COMMIT, ROLLBACK, SAVEPOINT and the like are not allowed in a step."),
				 errhint("A step's statements commit or roll back with the step: fail the step to undo them.")));
	if (ret == SPI_ERROR_COPY)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a step cannot COPY to or from the client")));
	elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
}

/* Run a SQL template (sql step or SQL rollback action). */
void
ce_step_run_sql(CeStepRun *run, const CeTemplate *tpl, CeValue *vals)
{
	SqlPlanEntry *pe = get_sql_plan(tpl);
	Datum	   *values;
	char	   *nulls;
	int			ret;

	bind_params(tpl, pe, vals, &values, &nulls);
	ret = SPI_execute_plan(pe->plan, values, nulls, false, 0);
	if (ret < 0)
		sql_refused(ret);
	run->rowcount = (int64) SPI_processed;
	if (SPI_tuptable != NULL && SPI_processed > 0 && !run->compensation)
	{
		ce_step_converting_outputs = true;
		run->outputs = first_row_outputs(SPI_tuptable, run->step->noutput_vars, run->step->output_vars);
		ce_step_converting_outputs = false;
	}
	if (SPI_tuptable)
		SPI_freetuptable(SPI_tuptable);
}

/*
 * A compensation verified by its verificationQuery (SPEC section 9): the
 * query, with the compensation's variables bound, runs right after the
 * rollbackAction, as the owner, in its subtransaction; no row, or a first
 * column that is true or zero, verifies it.  Otherwise the error fails the
 * attempt with failure type compensation_unverified, and the
 * subtransaction's rollback undoes the compensation.
 */
void
ce_step_verify_compensation(CeStepRun *run)
{
	const CeTemplate *tpl = run->step->verification_tpl;
	CeValue    *vals = palloc0(sizeof(CeValue) * Max(ce_template_nplaceholders(tpl), 1));
	SqlPlanEntry *pe;
	Datum	   *values;
	char	   *nulls;
	CeError		err;
	bool		verified = true;
	const char *got = NULL;
	int			ret;

	memset(&err, 0, sizeof(err));
	if (!ce_template_params(tpl, ce_lookup, run->lookup, vals, &err))
		ereport(ERROR,
				(errcode(err.code == CE_ERR_MISSING_VAR ? ERRCODE_NULL_VALUE_NOT_ALLOWED : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("verificationQuery of step \"%s\": %s", run->step->name, err.message)));
	pe = get_sql_plan(tpl);
	bind_params(tpl, pe, vals, &values, &nulls);
	ret = SPI_execute_plan(pe->plan, values, nulls, false, 1);
	if (ret < 0)
		sql_refused(ret);
	if (SPI_tuptable != NULL && SPI_processed > 0 && SPI_tuptable->tupdesc->natts >= 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (isnull)
			verified = false;
		else if (SPI_gettypeid(SPI_tuptable->tupdesc, 1) == BOOLOID)
		{
			verified = DatumGetBool(d);
			got = verified ? "true" : "false";
		}
		else
		{
			char	   *end;
			char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			got = s;
			verified = s != NULL && s[0] != '\0' && strtod(s, &end) == 0.0 && *end == '\0';
		}
	}
	if (SPI_tuptable)
		SPI_freetuptable(SPI_tuptable);
	if (!verified)
	{
		ce_step_failure_override = "compensation_unverified";
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("compensation of step \"%s\" is not verified", run->step->name),
				 errdetail("Its verificationQuery returned %s.", got ? quote_literal_cstr(got) : "null"),
				 errhint("A verificationQuery verifies the compensation when it returns no row, or true or 0 in its first column.")));
	}
}

/*
 * Handlers and templates belong to the role that registered them: a step
 * uses the one the chain version's creator registered under that name,
 * else the one shared (by chainexec_admin) under that name.
 */
