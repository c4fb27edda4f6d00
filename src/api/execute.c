/*-------------------------------------------------------------------------
 *
 * execute.c
 *	  Starting executions: chain_execute (the worker runs it after commit;
 *	  chain_run, in run.c, runs it in the calling session), the child
 *	  executions of chain steps, raise_failure for handlers, and _run_one
 *	  for tests.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/int.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "chainexec.h"
#include "compose.h"
#include "bridge.h"
#include "plancache.h"
#include "procedure.h"
#include "engine.h"
#include "engine_xact.h"
#include "insession.h"
#include "executor.h"
#include "jsonschema.h"
#include "events.h"
#include "execute.h"
#include "shmem.h"
#include "status.h"
#include "step.h"

PG_FUNCTION_INFO_V1(ce_chain_execute);
PG_FUNCTION_INFO_V1(ce_raise_failure);
PG_FUNCTION_INFO_V1(ce_run_one);

/* Options of chain_execute / chain_run. */
typedef struct ExecOptions
{
	int			timeout_ms;		/* 0: none */
	int			max_retries;	/* -1: keep the steps' */
	bool		skip_validation;
	int			priority;
	char	   *idempotency_key;
	bool		has_run_at;
	TimestampTz run_at;
	int			version;		/* 0: the active one */
	bool		save_intermediate;
	bool		save_intermediate_given;	/* else the chain's setting */
} ExecOptions;

static const char *const option_names[] = {
	"timeout", "maxRetries", "skipValidation", "priority", "idempotencyKey",
	"runAt", "version", "saveIntermediateResults", NULL
};

static int
option_int(JsonbValue *v, const char *name, int min, int max)
{
	char	   *s;
	int64		n;
	char	   *end;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be an integer", name)));
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	n = strtoll(s, &end, 10);
	if (*end != '\0' || n < min || n > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be an integer between %d and %d", name, min, max)));
	return (int) n;
}

static bool
option_bool(JsonbValue *v, const char *name)
{
	if (v->type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a boolean", name)));
	return v->val.boolean;
}

static void
parse_options(Jsonb *opts, ExecOptions *o)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	memset(o, 0, sizeof(*o));
	o->max_retries = -1;
	o->save_intermediate = true;
	if (opts == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(opts) || JB_ROOT_IS_SCALAR(opts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));

	it = JsonbIteratorInit(&opts->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;
		int			i;
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		for (i = 0; option_names[i]; i++)
			if (strcmp(key, option_names[i]) == 0)
				known = true;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\"", key),
					 errhint("Options are timeout, maxRetries, skipValidation, priority, idempotencyKey, runAt, version and saveIntermediateResults.")));
		tok = JsonbIteratorNext(&it, &v, true);
		if (v.type == jbvNull)
			continue;
		if (strcmp(key, "timeout") == 0)
			o->timeout_ms = option_int(&v, key, 1, INT_MAX);
		else if (strcmp(key, "maxRetries") == 0)
			o->max_retries = option_int(&v, key, 0, 100);
		else if (strcmp(key, "skipValidation") == 0)
			o->skip_validation = option_bool(&v, key);
		else if (strcmp(key, "priority") == 0)
			o->priority = option_int(&v, key, -1000000, 1000000);
		else if (strcmp(key, "version") == 0)
			o->version = option_int(&v, key, 1, INT_MAX);
		else if (strcmp(key, "saveIntermediateResults") == 0)
		{
			o->save_intermediate = option_bool(&v, key);
			o->save_intermediate_given = true;
		}
		else if (strcmp(key, "idempotencyKey") == 0)
		{
			if (v.type != jbvString || v.val.string.len == 0 || v.val.string.len > 255)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"idempotencyKey\" must be a string of 1 to 255 characters")));
			o->idempotency_key = pnstrdup(v.val.string.val, v.val.string.len);
		}
		else if (strcmp(key, "runAt") == 0)
		{
			if (v.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"runAt\" must be a timestamp string")));
			o->run_at = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																CStringGetDatum(pnstrdup(v.val.string.val, v.val.string.len)),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
			if (TIMESTAMP_NOT_FINITE(o->run_at))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"runAt\" must be a finite timestamp")));
			o->has_run_at = true;
		}
	}
}

/*
 * The deadline start + ms, or an error (22008) when it would fall past the
 * largest timestamp: a timestamp out of range must never be stored (the
 * row could then be neither read back nor dumped).
 */
static TimestampTz
deadline_after(TimestampTz start, int ms, const char *option)
{
	TimestampTz t;

	if (pg_add_s64_overflow(start, (int64) ms * INT64CONST(1000), &t) || !IS_VALID_TIMESTAMP(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("deadline of the execution is out of range"),
				 errdetail("The start time %s plus %s of %d ms is past the largest timestamp.",
						   timestamptz_to_str(start), option, ms),
				 errhint("Use an earlier \"runAt\" or a shorter \"%s\".", option)));
	return t;
}

/* Bookkeeping queries of chain_execute, prepared once per backend. */
static CeQuery q_versions = {
	"SELECT version, status FROM chainexec.chains "
								"WHERE organization_id = $1 AND chain_id = $2",
	2, {UUIDOID, TEXTOID}};

static CeQuery q_idempotent = {
	"SELECT id FROM chainexec.universal_transactions "
								"WHERE organization_id = $1 AND chain_id = $2 AND owner = $4 "
								"AND idempotency_key = $3",
	4, {UUIDOID, TEXTOID, TEXTOID, OIDOID}};

/* An execution's header; with an idempotency key, a speculative insert. */
#define INSERT_HEADER_SQL \
	"INSERT INTO chainexec.universal_transactions " \
	"(organization_id, chain_id, chain_version, status, input, context, owner, priority, " \
	" idempotency_key, deadline, smart_code, metadata, in_session) " \
	"VALUES ($1, $2, $3, 'pending', $4, $5, $6::regrole, $7, $8, $9, $10, $11, $12) "
#define INSERT_HEADER_TYPES \
	{UUIDOID, TEXTOID, INT4OID, JSONBOID, JSONBOID, OIDOID, INT4OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, JSONBOID, BOOLOID}

static CeQuery q_insert_header = {
	INSERT_HEADER_SQL
	"ON CONFLICT (organization_id, chain_id, owner, idempotency_key) "
	"WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id",
	12, INSERT_HEADER_TYPES};

static CeQuery q_insert_header_plain = {
	INSERT_HEADER_SQL "RETURNING id",
	12, INSERT_HEADER_TYPES};

/* A child execution's parent link (subchain.c). */
static CeQuery q_set_parent = {
	"UPDATE chainexec.universal_transactions SET parent_id = $3, parent_line = $4 "
	"WHERE organization_id = $1 AND id = $2",
	4, {UUIDOID, UUIDOID, UUIDOID, INT4OID}};

static CeQuery q_insert_lines = {
	"INSERT INTO chainexec.universal_transaction_lines "
									"(organization_id, transaction_id, line_number, line_type, step_id, step_name, "
									" status, priority, not_before, smart_code) "
									"SELECT $1, $2, u.n, 'step', u.sid, u.name, u.status, $3, $4, u.smart "
									"FROM unnest($5, $6, $7, $8, $9) AS u(n, sid, name, status, smart)",
	9, {UUIDOID, UUIDOID, INT4OID, TIMESTAMPTZOID, INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID}};

/* The version to run: the given one (active or deprecated) or the active one. */
static int
find_version(const pg_uuid_t *org, const char *chain_id, int version)
{
	Datum		args[2];
	int			ret;
	uint64		i;
	int			active = 0;
	char	   *status = NULL;

	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = CStringGetTextDatum(chain_id);
	ret = ce_run_query(&q_versions, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read chain versions");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("chain \"%s\" does not exist", chain_id),
				 ce_organization_id && ce_organization_id[0] ?
				 errdetail("It was looked for in organization %s (chainexec.organization_id).",
						   ce_uuid_to_cstring(org)) :
				 errdetail("It was looked for in the default organization (chainexec.organization_id is not set)."),
				 errhint("Set chainexec.organization_id to the organization that defined the chain, or define it with chainexec.chain_define().")));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			v = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *s = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (strcmp(s, "active") == 0)
			active = v;
		if (v == version)
			status = s;
	}
	if (version == 0)
	{
		if (active == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("chain \"%s\" has no active version", chain_id),
					 errhint("Publish a version with chainexec.chain_publish().")));
		return active;
	}
	if (status == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("version %d of chain \"%s\" does not exist", version, chain_id)));
	if (strcmp(status, "active") != 0 && strcmp(status, "deprecated") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("version %d of chain \"%s\" is %s and cannot be executed", version, chain_id, status),
				 errhint("Only active and deprecated versions run.")));
	return version;
}

/* An existing execution of owner with the same idempotency key, or false. */
static bool
find_idempotent(const pg_uuid_t *org, const char *chain_id, const char *key, Oid owner,
				pg_uuid_t *id)
{
	Datum		args[4];
	int			ret;
	bool		isnull;

	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = CStringGetTextDatum(chain_id);
	args[2] = CStringGetTextDatum(key);
	args[3] = ObjectIdGetDatum(owner);
	ret = ce_run_query(&q_idempotent, args, NULL, false, 1);
	if (ret != SPI_OK_SELECT || SPI_processed == 0)
		return false;
	memcpy(id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
		   sizeof(pg_uuid_t));
	return true;
}

/*
 * The input of a new execution, checked as every context is
 * (ce_context_merge) and against the chain's inputSchema unless skipped:
 * the context it starts with (the schema's defaults applied).
 */
static Jsonb *
checked_input(CePlan *plan, const char *chain_id, Jsonb *input, bool skip_validation)
{
	char	   *subject = psprintf("chain \"%s\"", chain_id);
	CeJson	   *in;
	CeSchemaResult r;
	int			i;

	(void) ce_context_merge_or_error(NULL, input, "input", subject);
	in = ce_jsonb_to_cejson(input);
	if (plan->input_schema == NULL || skip_validation)
		return input;
	memset(&r, 0, sizeof(r));
	if (!ce_schema_apply(plan->input_schema, in, ce_pg_regex, &r))
	{
		StringInfoData det;

		initStringInfo(&det);
		for (i = 0; i < r.count; i++)
			appendStringInfo(&det, "%s%s %s", i ? "; " : "", r.items[i].path, r.items[i].message);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("input of chain \"%s\" does not match its input schema", chain_id),
				 errdetail("%d problem%s: %s.", r.count, r.count == 1 ? "" : "s", det.data),
				 errhint("chainexec.chain_validate() lists the problems as JSON.")));
	}
	/* defaults may have made it larger: the same check again */
	return ce_context_merge_or_error(NULL, ce_cejson_to_jsonb(in), "input", subject);
}

/*
 * The lines of a new execution: one per step; the ones with no
 * predecessors are ready (within maxConcurrency).  Returns how many.
 */
static int
insert_lines(pg_uuid_t *org, pg_uuid_t *id, CePlan *plan, int version, int priority,
			 TimestampTz start)
{
	Datum	   *d_line = palloc(sizeof(Datum) * plan->nsteps);
	Datum	   *d_sid = palloc(sizeof(Datum) * plan->nsteps);
	Datum	   *d_name = palloc(sizeof(Datum) * plan->nsteps);
	Datum	   *d_status = palloc(sizeof(Datum) * plan->nsteps);
	Datum	   *d_smart = palloc(sizeof(Datum) * plan->nsteps);
	int		   *step_ids = palloc(sizeof(int) * plan->nsteps);
	char	  **names = palloc(sizeof(char *) * plan->nsteps);
	bool	   *is_ready = palloc(sizeof(bool) * plan->nsteps);
	char	  **smart = palloc(sizeof(char *) * plan->nsteps);
	Datum		lv[9];
	int			ready = 0;
	int			i;

	for (i = 0; i < plan->nsteps; i++)
	{
		CeStep	   *s = &plan->steps[i];

		is_ready[i] = s->npreds == 0 &&
			(plan->max_concurrency == 0 || ready < plan->max_concurrency);
		if (is_ready[i])
			ready++;
		step_ids[i] = s->id;
		names[i] = s->name;
		smart[i] = ce_smart_code("STEP", s->name, version);
	}
	if (ce_direct_insert_lines(org, id, priority, start, plan->nsteps, step_ids, names, is_ready, smart))
		return ready;
	for (i = 0; i < plan->nsteps; i++)
	{
		d_line[i] = Int32GetDatum(i + 1);
		d_sid[i] = Int32GetDatum(step_ids[i]);
		d_name[i] = CStringGetTextDatum(names[i]);
		d_status[i] = CStringGetTextDatum(ce_line_status_name(is_ready[i] ? CE_LINE_READY : CE_LINE_PENDING));
		d_smart[i] = CStringGetTextDatum(smart[i]);
	}
	lv[0] = UUIDPGetDatum(org);
	lv[1] = UUIDPGetDatum(id);
	lv[2] = Int32GetDatum(priority);
	lv[3] = TimestampTzGetDatum(start);
	lv[4] = PointerGetDatum(construct_array(d_line, plan->nsteps, INT4OID, 4, true, TYPALIGN_INT));
	lv[5] = PointerGetDatum(construct_array(d_sid, plan->nsteps, INT4OID, 4, true, TYPALIGN_INT));
	lv[6] = PointerGetDatum(construct_array(d_name, plan->nsteps, TEXTOID, -1, false, TYPALIGN_INT));
	lv[7] = PointerGetDatum(construct_array(d_status, plan->nsteps, TEXTOID, -1, false, TYPALIGN_INT));
	lv[8] = PointerGetDatum(construct_array(d_smart, plan->nsteps, TEXTOID, -1, false, TYPALIGN_INT));
	if (ce_run_query(&q_insert_lines, lv, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record execution lines");
	return ready;
}

/*
 * Record an execution and its lines; returns false when an execution with
 * the same idempotency key exists (its id in *id).  Runs with SPI
 * connected, as the extension owner; owner is the caller's role.
 */
static bool
create_execution(const char *chain_id, Jsonb *input, Jsonb *options, Oid owner,
				 pg_uuid_t *org, pg_uuid_t *id, const CeParentLink *parent)
{
	ExecOptions o;
	int			version;
	CePlan	   *plan;
	Jsonb	   *context;
	TimestampTz start;
	StringInfoData meta;
	int			ret;
	bool		isnull;
	int			ready = 0;
	Datum		v[13];
	char		n[14] = "             ";

	parse_options(options, &o);
	if (parent)
	{
		/* a child execution: its parent's organization and priority */
		*org = parent->org;
		o.priority = parent->priority;
	}
	else
		ce_current_org(org);

	if (!ce_valid_chain_id(chain_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid chain id \"%s\"", chain_id),
				 errhint("A chain id has 1 to 63 characters among a-z, 0-9, \"_\", \".\" and \"-\".")));

	version = find_version(org, chain_id, o.version);

	if (o.idempotency_key && find_idempotent(org, chain_id, o.idempotency_key, owner, id))
		return false;

	plan = ce_plan_get(org, chain_id, version);
	if (!o.save_intermediate_given)
		o.save_intermediate = plan->save_intermediate;

	context = checked_input(plan, chain_id, input, o.skip_validation);

	start = o.has_run_at ? o.run_at : GetCurrentTransactionStartTimestamp();

	initStringInfo(&meta);
	appendStringInfo(&meta, "{\"saveIntermediateResults\":%s,\"options\":",
					 o.save_intermediate ? "true" : "false");
	if (options)
		JsonbToCString(&meta, &options->root, VARSIZE(options));
	else
		appendStringInfoString(&meta, "{}");
	if (parent)
	{
		/* the parent link (subchain.c); ancestors root first */
		appendStringInfoString(&meta, ",\"parent\":{\"executionId\":");
		escape_json(&meta, ce_uuid_to_cstring(&parent->id));
		appendStringInfo(&meta, ",\"line\":%d,\"stepId\":%d,\"stepName\":", parent->line, parent->step_id);
		escape_json(&meta, parent->step_name);
		appendStringInfoString(&meta, ",\"chainId\":");
		escape_json(&meta, parent->chain_id);
		appendStringInfo(&meta, "},\"depth\":%d,\"ancestors\":", parent->depth);
		JsonbToCString(&meta, &parent->ancestors->root, VARSIZE(parent->ancestors));
	}
	appendStringInfoChar(&meta, '}');

	v[0] = UUIDPGetDatum(org);
	v[1] = CStringGetTextDatum(chain_id);
	v[2] = Int32GetDatum(version);
	v[3] = JsonbPGetDatum(input);
	v[4] = JsonbPGetDatum(context);
	v[5] = ObjectIdGetDatum(owner);
	v[6] = Int32GetDatum(o.priority);
	if (o.idempotency_key)
		v[7] = CStringGetTextDatum(o.idempotency_key);
	else
		n[7] = 'n';
	if (o.timeout_ms > 0 || plan->max_execution_time_ms > 0)
		v[8] = TimestampTzGetDatum(deadline_after(start, o.timeout_ms > 0 ? o.timeout_ms : plan->max_execution_time_ms,
												  o.timeout_ms > 0 ? "timeout" : "maxExecutionTime"));
	else
		n[8] = 'n';
	v[9] = CStringGetTextDatum(ce_smart_code("RUN", chain_id, version));
	v[10] = JsonbPGetDatum(ce_text_to_jsonb(meta.data));
	/* chain_run drives it (insession.c); a child, when it drives the parent */
	v[11] = BoolGetDatum(parent ? parent->in_session : ce_inline_runner);
	v[12] = TimestampTzGetDatum(start);

	ret = ce_run_query(o.idempotency_key ? &q_insert_header : &q_insert_header_plain, v, n, false, 0);
	if (ret != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record execution");
	if (SPI_processed == 0)
	{
		/* a concurrent caller with the same key won */
		if (!find_idempotent(org, chain_id, o.idempotency_key, owner, id))
			elog(ERROR, "idempotency key conflict without a row");
		return false;
	}
	memcpy(id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
		   sizeof(pg_uuid_t));
	if (parent)
	{
		Datum		pv[4];

		pv[0] = UUIDPGetDatum(org);
		pv[1] = UUIDPGetDatum(id);
		pv[2] = UUIDPGetDatum((pg_uuid_t *) &parent->id);
		pv[3] = Int32GetDatum(parent->line);
		ce_run_query(&q_set_parent, pv, NULL, false, 0);
	}

	ready = insert_lines(org, id, plan, version, o.priority, start);

	ce_emit_chain_started(org, owner, id, chain_id, version, plan->notify);
	ce_wake_executors(ready);
	return true;
}

void
ce_execution_create_child(const char *chain_id, Jsonb *input, Oid owner,
						  const CeParentLink *parent, pg_uuid_t *id)
{
	pg_uuid_t	org;

	(void) create_execution(chain_id, input, NULL, owner, &org, id, parent);
}

/* Create an execution as the caller; shared by chain_execute and chain_run. */
bool
ce_start_execution(FunctionCallInfo fcinfo, pg_uuid_t *org, pg_uuid_t *id)
{
	char	   *chain_id;
	Jsonb	   *input;
	Jsonb	   *options;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;
	bool		created;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("chain id must not be null")));
	chain_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	input = PG_ARGISNULL(1) ? ce_text_to_jsonb("{}") : PG_GETARG_JSONB_P(1);
	options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);

	/* a concurrent DROP EXTENSION waits for us (engine_xact.c) */
	if (!ce_lock_extension(NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"chainexec\" is not installed in this database")));
	SPI_connect();
	/* a fixed search_path while we run as the extension owner */
	save_nestlevel = ce_fixed_search_path();
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		created = create_execution(chain_id, input, options, save_user, org, id, NULL);
	}
	PG_CATCH();
	{
		SetUserIdAndSecContext(save_user, save_sec);
		PG_RE_THROW();
	}
	PG_END_TRY();
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	return created;
}

/*
 * chain_execute(chain_id text, input jsonb, options jsonb) RETURNS uuid
 */
Datum
ce_chain_execute(PG_FUNCTION_ARGS)
{
	pg_uuid_t	org;
	pg_uuid_t  *id = palloc0(sizeof(pg_uuid_t));

	if (ce_start_execution(fcinfo, &org, id) && !ce_executors_serve_database(MyDatabaseId))
	{
		if (ce_executors_configured_for(MyDatabaseId))
			ereport(WARNING,
					(errmsg("chainexec executors are paused"),
					 errdetail("The execution was recorded and will run when chainexec.enabled is on again.")));
		else
			ereport(WARNING,
					(errmsg("no chainexec executor serves database \"%s\"",
							get_database_name(MyDatabaseId)),
					 errdetail("The execution was recorded and will run when an executor serves this database."),
					 errhint("Add chainexec to shared_preload_libraries and set chainexec.database, or run chains in-session with CALL chainexec.chain_run().")));
	}
	PG_RETURN_UUID_P(id);
}

/*
 * raise_failure(failure_type text, message text): raise an error that
 * carries a failure type, matched by retryOnErrors.
 */
Datum
ce_raise_failure(PG_FUNCTION_ARGS)
{
	char	   *type;
	char	   *msg;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("failure type must not be null")));
	type = text_to_cstring(PG_GETARG_TEXT_PP(0));
	msg = PG_ARGISNULL(1) ? type : text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (type[0] == '\0' || strlen(type) > 63 || strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(type))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid failure type \"%s\"", type),
				 errhint("A failure type has 1 to 63 characters among a-z, 0-9 and \"_\", such as \"api_timeout\".")));
	ereport(ERROR,
			(errcode(ERRCODE_CE_FAILURE),
			 errmsg("%s", msg),
			 errdetail("failure type: %s", type)));
	PG_RETURN_VOID();
}

/*
 * _run_one(execution_id uuid) RETURNS boolean: one step transition of the
 * execution (of the current organization) inside the caller's transaction,
 * for tests and debugging: nothing commits in between, and back-offs and
 * timers are not waited for (a line is due when not_before <= now()).
 * Returns whether a line was due and processed.  Superuser only.
 */
Datum
ce_run_one(PG_FUNCTION_ARGS)
{
	pg_uuid_t	org;
	pg_uuid_t	id;
	bool		done;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _run_one"),
				 errdetail("Only superusers may run single transitions.")));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("execution id must not be null")));
	memcpy(&id, PG_GETARG_UUID_P(0), sizeof(pg_uuid_t));
	ce_current_org(&org);

	/*
	 * A snapshot that sees what the caller's transaction wrote so far, an
	 * earlier call in the same statement included: the transition's reads
	 * run in it (with the statement's own, a forEach's iterations made by
	 * the call before were claimed but their items not found).
	 */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	done = ce_transition_in_xact(&id, &org) == CE_TR_DONE;
	PopActiveSnapshot();
	PG_RETURN_BOOL(done);
}
