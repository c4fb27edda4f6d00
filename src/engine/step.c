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
 * The sandbox: user code (a sql step, a handler, a SQL rollback action)
 * runs as a security-restricted operation of the owner, as PostgreSQL runs
 * a table owner's code in VACUUM or REFRESH MATERIALIZED VIEW, so that
 * nothing it leaves behind runs later as someone else: deferred triggers,
 * temporary tables and types, LISTEN, PREPARE, cursors WITH HOLD, SET ROLE
 * are refused by PostgreSQL; temporary objects of the other kinds
 * (functions, operators, ...) fail the step here.  In a background
 * executor the session user becomes the owner too, and session advisory
 * locks and sequence state are dropped after each step.  A handler's
 * function is checked from pg_proc before each call; a sql step's text is
 * one statement that names only its placeholders' parameters.
 *
 * Expects: a transaction, SPI connected, CurrentMemoryContext a context
 * that lives until the end of the transition.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/parse_param.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "compat.h"
#include "engine.h"
#include "failure.h"
#include "shmem.h"
#include "step.h"
#include "template.h"

/*
 * Set by the executors: steps run in a background session that serves
 * every owner, so the step also takes the owner's session identity and
 * nothing it leaves in the session (advisory locks, sequence state)
 * outlives it.  Off in chain_run, whose steps run in the caller's session.
 */
bool		ce_step_isolated_session = false;

/* Whether the executor's own (authenticated) user is a superuser. */
static bool auth_is_superuser = true;

/* While user code of a step runs (the hooks below look at it). */
static bool step_active = false;

/* Objects created while the step ran, checked when it ends. */
static List *step_created = NIL;
static MemoryContext step_created_cxt = NULL;

/* A failure type for the error being raised, instead of its SQLSTATE's. */
static const char *failure_override = NULL;

/* The step is turning its outputs into jsonb: an error is the data's. */
static bool converting_outputs = false;

static object_access_hook_type prev_object_access_hook = NULL;

/*
 * Remember each object a step creates: temporary ones are refused when
 * the step ends (step_check_leftovers), whatever kind they are.
 */
static void
step_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				   int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_POST_CREATE && step_active && subId == 0 &&
		step_created_cxt != NULL && is_objectclass_supported(classId))
	{
		MemoryContext old = MemoryContextSwitchTo(step_created_cxt);
		ObjectAddress *a = palloc(sizeof(ObjectAddress));

		a->classId = classId;
		a->objectId = objectId;
		a->objectSubId = 0;
		step_created = lappend(step_created, a);
		MemoryContextSwitchTo(old);
	}
}

static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/*
 * Refuse LOAD inside a step: a library's hooks would stay in the session
 * and run for every later step and transition.  (PostgreSQL refuses the
 * other session-lasting commands in a security-restricted operation.)
 */
static void
step_process_utility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	if (step_active && IsA(pstmt->utilityStmt, LoadStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a step cannot load a library"),
				 errdetail("The library would stay loaded in the session after the step.")));
	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/* Install the hooks of the step sandbox (from _PG_init). */
void
CeStepInit(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = step_object_access;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = step_process_utility;
}

/*
 * Raise an error if the step left something in the session that would
 * outlive it: a temporary object of any kind (a function or operator in
 * pg_temp would be found before the catalog's by the next step of another
 * owner), or, in an executor, the temporary namespace itself.  Raised
 * inside the step's subtransaction, whose rollback removes them.
 * (SECURITY_RESTRICTED_OPERATION already refuses temporary tables and
 * types, LISTEN, PREPARE, cursors WITH HOLD, deferred triggers, SET ROLE
 * and SET SESSION AUTHORIZATION.)
 */
static void
step_check_leftovers(bool had_temp_namespace)
{
	ListCell   *lc;
	Oid			tempns;
	Oid			temptoast;

	CommandCounterIncrement();
	foreach(lc, step_created)
	{
		ObjectAddress *a = (ObjectAddress *) lfirst(lc);
		int			cache = get_object_catcache_oid(a->classId);
		Oid			nsp;

		if (cache < 0 || !SearchSysCacheExists1(cache, ObjectIdGetDatum(a->objectId)))
			continue;
		nsp = get_object_namespace(a);
		if (OidIsValid(nsp) && isAnyTempNamespace(nsp))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("a step cannot create temporary objects"),
					 errdetail("The step created %s.", getObjectDescription(a, true)),
					 errhint("Temporary objects would outlive the step in the session; use a permanent schema.")));
	}
	GetTempNamespaceState(&tempns, &temptoast);
	if (ce_step_isolated_session && !had_temp_namespace && OidIsValid(tempns))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a step cannot create temporary objects"),
				 errdetail("The step created the temporary schema of a background executor.")));
}

/*
 * Enter the owner's identity for the step.  In an executor, the session
 * user becomes the owner too (session_user, is_superuser, RLS policies
 * on session_user see the owner); everywhere the step runs as a
 * security-restricted operation, as PostgreSQL runs a table owner's code
 * in VACUUM or REFRESH MATERIALIZED VIEW.  Call inside the step's
 * subtransaction.
 */
static void
step_enter_owner(Oid owner, Oid save_user, int save_sec)
{
	if (ce_step_isolated_session)
	{
		/* known in a transaction, used after an error too */
		auth_is_superuser = superuser_arg(GetAuthenticatedUserId());
		/* the session user may change only outside any restriction */
		SetUserIdAndSecContext(save_user, 0);
		SetSessionAuthorization(owner, superuser_arg(owner));
	}
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * Back to the session's own identity after a step, and, in an executor,
 * drop the session state a step can leave whatever it is allowed to do:
 * session advisory locks (the executor takes none of its own) and the
 * sequences' currval/lastval.
 */
static void
step_leave_owner(Oid save_user, int save_sec)
{
	if (ce_step_isolated_session)
	{
		SetUserIdAndSecContext(save_user, 0);
		if (GetSessionUserId() != GetAuthenticatedUserId())
			SetSessionAuthorization(GetAuthenticatedUserId(), auth_is_superuser);
		LockReleaseSession(USER_LOCKMETHOD);
		ResetSequenceCaches();
	}
	SetUserIdAndSecContext(save_user, save_sec);
}

/*
 * After an error thrown out of a transition: give the executor session
 * its own identity back, whatever step was running (no transaction).
 */
void
ce_step_reset_session(void)
{
	step_active = false;
	converting_outputs = false;
	failure_override = NULL;
	step_created = NIL;
	if (!ce_step_isolated_session)
		return;
	if (GetSessionUserId() != GetAuthenticatedUserId())
		SetSessionAuthorization(GetAuthenticatedUserId(), auth_is_superuser);
	LockReleaseSession(USER_LOCKMETHOD);
	ResetSequenceCaches();
}

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
	ret = SPI_execute_plan(pe->plan, values, nulls, false, 0);
	if (ret < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	run->rowcount = (int64) SPI_processed;
	if (SPI_tuptable != NULL && SPI_processed > 0 && !run->compensation)
	{
		converting_outputs = true;
		run->outputs = first_row_outputs(SPI_tuptable, run->step->noutput_vars, run->step->output_vars);
		converting_outputs = false;
	}
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
		failure_override = "invalid_input";
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s of handler \"%s\" cannot be called as a handler",
						format_procedure(fn), name),
				 errdetail("A handler takes one jsonb and returns jsonb; %s.", what),
				 errhint("Declare it as FUNCTION name(jsonb) RETURNS jsonb and register it again.")));
	}
}

/* Call a handler function with the step's argument (as the owner). */
static void
call_handler(CeStepRun *run, const char *name, Oid fn)
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
	converting_outputs = true;
	run->outputs = filter_object(res, run->step->noutput_vars, run->step->output_vars);
	converting_outputs = false;
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

/*
 * Render a template step in a subtransaction of its own (it runs no user
 * code): text that cannot become variables (a "\u0000" or a number out of
 * jsonb's range in a JSON object it renders) fails the step with
 * validation_failed instead of the transition.
 */
static void
run_template_guarded(CeStepRun *run)
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
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
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
	Oid			tempns;
	Oid			temptoast;

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
		run_template_guarded(run);
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
	GetTempNamespaceState(&tempns, &temptoast);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		gucnest = NewGUCNestLevel();
		step_enter_owner(run->owner, save_user, save_sec);
		step_created = NIL;
		step_created_cxt = oldcxt;
		failure_override = NULL;
		converting_outputs = false;
		step_active = true;
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
		ce_running_step_begin(timeout_at);
		RESUME_CANCEL_INTERRUPTS();
		cancel_open = true;

		if (sql_tpl)
			run_sql(run, sql_tpl, vals);
		else
			call_handler(run, handler, handler_fn);

		HOLD_CANCEL_INTERRUPTS();
		cancel_open = false;
		ce_running_step_end();
		if (timeout_armed)
		{
			disable_timeout(STATEMENT_TIMEOUT, false);
			timeout_armed = false;
		}
		step_active = false;
		step_check_leftovers(OidIsValid(tempns));
		step_created = NIL;
		/* settings the step changed (SET, set_config) end with it */
		AtEOXact_GUC(false, gucnest);
		step_leave_owner(save_user, save_sec);
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

		const char *override = failure_override;
		bool		data_error = converting_outputs;

		step_active = false;
		step_created = NIL;
		failure_override = NULL;
		converting_outputs = false;
		if (cancel_open)
		{
			HOLD_CANCEL_INTERRUPTS();
			ce_running_step_end();
		}

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
		/* the rollback restored the user, not the session user */
		step_leave_owner(save_user, save_sec);

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
		else if (override)
			run->failure_type = pstrdup(override);
		else if (data_error)
		{
			/* what the step returned cannot become variables */
			run->failure_type = pstrdup("validation_failed");
			run->message = psprintf("output of step \"%s\" cannot become variables: %s",
									step->name, run->message);
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
