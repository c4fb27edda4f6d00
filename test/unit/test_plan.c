/*
 * test_plan.c
 *	  Unit tests of the definition compiler (src/pure/plan*.c): chain
 *	  definitions checked and compiled.
 *
 * A full definition in the SPEC's format (with the design documents'
 * aliases) must compile with the expected predecessors; a table of
 * malformed definitions must each fail with the expected error code and
 * JSON path.  The same table is in ../malformed_definitions.txt (SQLSTATE,
 * path, definition per line), which the SQL-level tests replay through
 * chain_define; this file checks that copy too.
 */
#include "unit.h"
#include "plan.h"
#include "cejson.h"
#include "failure.h"

#include <stdlib.h>

void		run_plan_tests(void);

/* Parse JSON text and build a plan. */
static CePlan *
build(const char *json, CeError *err, CeWarnings *w)
{
	CeJson	   *def;

	memset(err, 0, sizeof(*err));
	def = cejson_parse(json, strlen(json), err);
	if (def == NULL)
	{
		fprintf(stderr, "test_plan: bad test JSON: %s (%s)\n", err->message, json);
		return NULL;
	}
	return ce_plan_build(def, err, w);
}

/* Whether a step's preds equal the n given indices. */
static int
preds_are(const CeStep *st, int n, const int *want)
{
	int			i;

	if (st->npreds != n)
		return 0;
	for (i = 0; i < n; i++)
		if (st->preds[i] != want[i])
			return 0;
	return 1;
}

#define PREDS(st, ...) \
	do { \
		static const int w_[] = {__VA_ARGS__}; \
		CHECK(preds_are((st), (int) (sizeof(w_) / sizeof(w_[0])), w_), "preds of " #st); \
	} while (0)

/* The SPEC's format, camelCase keys and the design documents' aliases. */
static const char *full_definition =
"{"
"  \"id\": \"mobile-lead-processing\","
"  \"name\": \"Mobile lead processing\","
"  \"description\": \"From a raw message to a proposal\","
"  \"version\": 1.2,"
"  \"category\": \"sales\","
"  \"inputSchema\": {\"type\": \"object\", \"required\": [\"raw_lead_message\"],"
"                   \"properties\": {\"raw_lead_message\": {\"type\": \"string\", \"minLength\": 1}}},"
"  \"outputSchema\": {\"type\": \"object\", \"properties\": {\"proposal_text\": {\"type\": \"string\"}}},"
"  \"rollbackEnabled\": true,"
"  \"maxExecutionTime\": 300000,"
"  \"maxConcurrency\": 4,"
"  \"successConditions\": [\"client_id != null\", \"{proposal_text} != ''\"],"
"  \"notify\": \"lifecycle\","
"  \"performanceTargets\": {\"p95Ms\": 5000},"
"  \"retryBudget\": 10,"
"  \"searchPath\": \"sales, public\","
"  \"metadata\": {\"owner\": \"sales\", \"anything\": [1, {\"goes\": true}]},"
"  \"steps\": ["
"    {\"id\": 1, \"name\": \"parse_lead\", \"type\": \"database_operation\","
"     \"instructionSet\": \"database-operations\","
"     \"inputTemplate\": \"Parse the lead: {raw_lead_message}\","
"     \"inputVariables\": [\"raw_lead_message\"],"
"     \"outputVariables\": [\"client_name\", \"phone\", \"budget\"],"
"     \"retryConfig\": {\"maxRetries\": 3, \"backoffStrategy\": \"exponential\", \"backoffMs\": 500}},"
"    {\"id\": 2, \"name\": \"validate_lead\", \"type\": \"instruction_set\","
"     \"instructionSet\": \"lead.validate\","
"     \"inputVariables\": [\"client_name\", \"phone\"],"
"     \"outputVariables\": [\"lead_quality\"],"
"     \"conditionalExecution\": \"lead_quality == 'poor' ? 'skip_to_step_5' : 'continue'\"},"
"    {\"id\": 3, \"name\": \"enrich_client\", \"type\": \"external_api\","
"     \"inputTemplate\": \"Find the company of {client_name}\","
"     \"inputVariables\": [\"client_name\"], \"outputVariables\": [\"company\"],"
"     \"parallelExecution\": true, \"timeoutMs\": 60000, \"onFailure\": \"warn\","
"     \"circuitBreaker\": {\"failureThreshold\": 5}, \"metadata\": {\"team\": \"data\"}},"
"    {\"id\": 4, \"name\": \"store_client\", \"type\": \"sql\","
"     \"sql\": \"INSERT INTO clients(name, phone) VALUES ({client_name}, {phone}) RETURNING id AS client_id\","
"     \"outputVariables\": [\"client_id\"],"
"     \"rollbackAction\": \"DELETE FROM clients WHERE id = {client_id}\","
"     \"dependsOn\": [2], \"maxMemoryMB\": 64, \"verificationQuery\": \"SELECT 1\", \"cache\": false},"
"    {\"id\": 5, \"name\": \"proposal\", \"type\": \"template_processing\","
"     \"template\": \"Dear {client_name}, an offer for {company|'your company'}\","
"     \"inputVariables\": [\"client_name\", \"company\"],"
"     \"outputVariables\": [\"proposal_text\"],"
"     \"onFailure\": \"fallback\","
"     \"fallbackStep\": {\"id\": 50, \"name\": \"proposal_plain\", \"type\": \"template\","
"                      \"templateId\": \"plain-proposal\", \"outputVariables\": [\"proposal_text\"]}},"
"    {\"id\": 6, \"name\": \"cool_down\", \"type\": \"wait\", \"waitMs\": 60000},"
"    {\"id\": 7, \"name\": \"notify_sales\", \"type\": \"function\","
"     \"instructionSet\": \"notify.sales\","
"     \"inputVariables\": [\"proposal_text\", \"client_id\"],"
"     \"rollbackAction\": \"undo_notify\", \"parallelExecution\": true,"
"     \"retryConfig\": {\"maxRetries\": 2, \"backoffStrategy\": \"linear\", \"baseDelayMs\": 200,"
"                     \"maxDelayMs\": 1000, \"jitter\": true, \"retryOnErrors\": [\"api_timeout\", \"40001\"]}}"
"  ]"
"}";

static void
test_full_definition(void)
{
	CeError		err;
	CeWarnings	w = {0, NULL};
	CePlan	   *p = build(full_definition, &err, &w);
	CeStep	   *s;

	CHECK(p != NULL, "full definition compiles");
	if (p == NULL)
	{
		fprintf(stderr, "  error: %s at %s\n", err.message, err.path);
		return;
	}
	CHECK(err.code == CE_OK, "no error code");
	CHECK_STR(p->id, "mobile-lead-processing", "chain id");
	CHECK_STR(p->name, "Mobile lead processing", "chain name");
	CHECK_STR(p->version_label, "1.2", "numeric version label");
	CHECK_STR(p->category, "sales", "category");
	CHECK_STR(p->search_path, "sales, public", "searchPath");
	CHECK(p->input_schema != NULL && p->output_schema != NULL, "schemas kept");
	CHECK(p->rollback_enabled, "rollbackEnabled");
	CHECK(p->max_execution_time_ms == 300000, "maxExecutionTime");
	CHECK(p->parallel_enabled, "parallelStepsEnabled defaults to true");
	CHECK(p->max_concurrency == 4, "maxConcurrency");
	CHECK(p->notify == CE_NOTIFY_LIFECYCLE, "notify");
	CHECK(p->nsuccess == 2 && p->success_expr[0] && p->success_expr[1], "success conditions parsed");
	CHECK(p->retry_budget == 10, "retryBudget integer: maxRetries");
	CHECK(p->performance_targets && p->performance_targets->type == CEJ_OBJECT, "performanceTargets kept");
	CHECK(p->metadata && cejson_get(p->metadata, "anything") != NULL, "metadata free content kept");
	CHECK(p->nsteps == 7, "seven steps");
	if (p->nsteps != 7)
		return;
	/*
	 * Its only warnings: the jump skip_to_step_5 of validate_lead skips the
	 * only steps that set company and client_id, which later steps and a
	 * success condition read.
	 */
	CHECK(w.count == 3, "three warnings for the full definition");
	if (w.count == 3)
	{
		CHECK_STR(w.items[0], "step \"proposal\" reads \"company\", which only steps that step \"validate_lead\" skips with skip_to_step_5 set: after that jump it fails with insufficient_data if it runs",
				  "warning: a step after the jump reads a skipped step's output");
		CHECK_STR(w.items[1], "step \"notify_sales\" reads \"client_id\", which only steps that step \"validate_lead\" skips with skip_to_step_5 set: after that jump it fails with insufficient_data if it runs",
				  "warning: a later step too");
		CHECK_STR(w.items[2], "success condition \"client_id != null\" reads \"client_id\", which only steps that step \"validate_lead\" skips with skip_to_step_5 set: after that jump it is null",
				  "warning: a success condition reads a skipped step's output");
	}
	else
	{
		int			wi;

		for (wi = 0; wi < w.count; wi++)
			fprintf(stderr, "  warning: %s\n", w.items[wi]);
	}

	/* kinds and aliases */
	s = &p->steps[0];
	CHECK(s->kind == CE_STEP_SQL && strcmp(s->kind_name, "sql") == 0, "database_operation is sql");
	CHECK_STR(s->instruction_set, "database-operations", "sql step without sql calls its handler");
	CHECK(s->sql == NULL && s->input_tpl != NULL, "inputTemplate parsed");
	CHECK(s->retry.explicit_config && s->retry.maxRetries == 3 &&
		  s->retry.strategy == CE_BACKOFF_EXPONENTIAL && s->retry.baseDelayMs == 500 &&
		  s->retry.maxDelayMs == 60000 && !s->retry.jitter && s->retry.nretryOn == 0,
		  "retryConfig with backoffMs alias and retryConfig defaults");
	CHECK(s->index == 0 && s->id == 1, "index and id");

	s = &p->steps[1];
	CHECK(s->kind == CE_STEP_FUNCTION && strcmp(s->kind_name, "function") == 0, "instruction_set is function");
	CHECK(s->condition_expr != NULL && s->condition_is_routing, "condition on own output is routing");
	CHECK(!s->retry.explicit_config && s->retry.maxRetries == 0, "function default: no retries");

	s = &p->steps[2];
	CHECK(s->kind == CE_STEP_EXTERNAL && strcmp(s->kind_name, "external") == 0, "external_api is external");
	CHECK(s->parallel && s->timeout_ms == 60000 && s->on_failure == CE_ONFAIL_WARN, "parallel, timeout, warn");
	CHECK(s->retry.maxRetries == 3 && s->retry.baseDelayMs == 1000 && s->retry.maxDelayMs == 30000 &&
		  s->retry.jitter && s->retry.nretryOn == 3, "external default retry");
	CHECK(s->circuit_breaker != NULL && s->circuit_breaker->failure_threshold == 5 && s->metadata != NULL,
		  "circuitBreaker compiled, metadata kept");

	s = &p->steps[3];
	CHECK(s->kind == CE_STEP_SQL && s->sql_tpl != NULL, "sql parsed");
	CHECK(s->sql_tpl && ce_template_nplaceholders(s->sql_tpl) == 2, "two placeholders");
	CHECK_STR(s->sql_tpl ? ce_template_sql(s->sql_tpl) : NULL,
			  "INSERT INTO clients(name, phone) VALUES ($1, $2) RETURNING id AS client_id",
			  "placeholders become $n");
	CHECK(!s->rollback_is_handler && s->rollback_tpl != NULL, "SQL rollbackAction parsed");
	CHECK(s->ndepends_on == 1 && s->depends_on[0] == 2, "dependsOn ids kept");
	CHECK(s->retry.maxRetries == 5 && s->retry.baseDelayMs == 500 && s->retry.maxDelayMs == 10000 &&
		  s->retry.jitter && !s->retry.explicit_config, "sql default retry");
	CHECK(s->max_memory_mb == 64 && s->verification_query && s->verification_tpl && s->cache == NULL,
		  "maxMemoryMB, verificationQuery, cache false");

	s = &p->steps[4];
	CHECK(s->kind == CE_STEP_TEMPLATE && s->template_tpl != NULL, "template_processing is template");
	CHECK(s->on_failure == CE_ONFAIL_FALLBACK && s->fallback != NULL, "fallback");
	CHECK(s->retry.maxRetries == 2 && s->retry.strategy == CE_BACKOFF_FIXED, "template default retry");
	if (s->fallback)
	{
		CHECK(s->fallback->index == -1 && s->fallback->id == 50, "fallback index -1");
		CHECK_STR(s->fallback->template_id, "plain-proposal", "fallback templateId");
		CHECK(s->fallback->retry.maxRetries == 2, "fallback gets its own kind's default");
	}

	s = &p->steps[5];
	CHECK(s->kind == CE_STEP_WAIT && s->wait_ms == 60000, "wait");

	s = &p->steps[6];
	CHECK(s->rollback_is_handler && s->rollback_tpl == NULL, "handler rollbackAction");
	CHECK(s->retry.explicit_config && s->retry.strategy == CE_BACKOFF_LINEAR && s->retry.nretryOn == 2,
		  "explicit retry config");

	/* ordering */
	CHECK(p->steps[0].npreds == 0, "first step has no preds");
	PREDS(&p->steps[1], 0);
	PREDS(&p->steps[2], 0);			/* parallel: data dependency only */
	PREDS(&p->steps[3], 1);			/* dependsOn replaces the previous step */
	PREDS(&p->steps[4], 0, 2, 3);	/* data deps + previous */
	PREDS(&p->steps[5], 4);
	PREDS(&p->steps[6], 3, 4);		/* parallel: producers of its inputs */

	CHECK(ce_plan_step_by_id(p, 50) == p->steps[4].fallback, "step_by_id finds fallbacks");
	CHECK(ce_plan_step_by_id(p, 4) == &p->steps[3], "step_by_id");
	CHECK(ce_plan_step_by_id(p, 8) == NULL, "step_by_id unknown");
}

static void
test_sequential(void)
{
	CeError		err;
	CePlan	   *p;

	p = build("{\"id\":\"seq\",\"parallelStepsEnabled\":false,\"steps\":["
			  "{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"outputVariables\":[\"x\"]},"
			  "{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"parallelExecution\":true},"
			  "{\"id\":3,\"name\":\"c\",\"type\":\"sql\",\"sql\":\"SELECT {x}\",\"dependsOn\":[1],\"inputVariables\":[\"x\"]}]}",
			  &err, NULL);
	CHECK(p != NULL, "sequential chain compiles");
	if (p == NULL)
		return;
	CHECK(!p->parallel_enabled, "parallelStepsEnabled false");
	PREDS(&p->steps[1], 0);
	PREDS(&p->steps[2], 0, 1);

	/* forward dependency is legal when it closes no cycle */
	p = build("{\"id\":\"fwd\",\"steps\":["
			  "{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[2]},"
			  "{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"parallelExecution\":true}]}",
			  &err, NULL);
	CHECK(p != NULL, "forward dependsOn compiles");
	if (p)
	{
		PREDS(&p->steps[0], 1);
		CHECK(p->steps[1].npreds == 0, "parallel step without deps has no preds");
	}

	/* outputs of a fallback step count as its step's outputs */
	p = build("{\"id\":\"fb\",\"steps\":["
			  "{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},"
			  "{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\","
			  " \"fallbackStep\":{\"id\":20,\"name\":\"b_fb\",\"type\":\"sql\",\"sql\":\"SELECT 3\",\"outputVariables\":[\"y\"]}},"
			  "{\"id\":3,\"name\":\"c\",\"type\":\"sql\",\"sql\":\"SELECT 4\",\"parallelExecution\":true},"
			  "{\"id\":4,\"name\":\"d\",\"type\":\"sql\",\"sql\":\"SELECT {y}\",\"parallelExecution\":true,\"inputVariables\":[\"y\"]}]}",
			  &err, NULL);
	CHECK(p != NULL, "fallback outputs chain compiles");
	if (p)
	{
		CHECK(p->steps[1].on_failure == CE_ONFAIL_FALLBACK,
			  "fallbackStep without onFailure means onFailure fallback");
		PREDS(&p->steps[3], 1);
		CHECK(p->steps[2].npreds == 0, "parallel step with no inputs");
	}

	/* saveIntermediateResults: the default of the option, true unless set */
	p = build("{\"id\":\"t\",\"saveIntermediateResults\":false,\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}", &err, NULL);
	CHECK(p != NULL && !p->save_intermediate, "saveIntermediateResults false");
	p = build("{\"id\":\"t\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}", &err, NULL);
	CHECK(p != NULL && p->save_intermediate, "saveIntermediateResults defaults to true");

	/* a template step that names an instructionSet needs no template */
	p = build("{\"id\":\"t\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"template_processing\","
			  "\"instructionSet\":\"proposal-generation\",\"inputTemplate\":\"x\"}]}", &err, NULL);
	CHECK(p != NULL && p->steps[0].instruction_set != NULL, "template step with instructionSet");

	/* skip_to_step_N forward is accepted, also as a bare action word */
	p = build("{\"id\":\"s\",\"steps\":["
			  "{\"id\":10,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"conditionalExecution\":\"skip_to_step_30\"},"
			  "{\"id\":20,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"conditionalExecution\":\"continue\"},"
			  "{\"id\":30,\"name\":\"c\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}", &err, NULL);
	CHECK(p != NULL, "skip_to_step forward accepted");
	if (p)
		CHECK(!p->steps[0].condition_is_routing, "action word is not routing");

	/*
	 * The design documents' routing, bare action words: a condition that
	 * reads the step's own output is routing; one that reads another
	 * step's is taken before the step runs.  The action words are not
	 * variables, so they neither make it routing nor count as reads.
	 */
	p = build("{\"id\":\"r\",\"steps\":["
			  "{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1 AS x\",\"outputVariables\":[\"x\"]},"
			  "{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 1 AS q, 2 AS s\",\"outputVariables\":[\"q\",\"s\"],"
			  "\"conditionalExecution\":\"{s} == 'incomplete' && {q} < 70 ? skip_to_step_4 : continue\"},"
			  "{\"id\":3,\"name\":\"c\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"conditionalExecution\":\"{x} == 5 ? skip_to_step_4 : continue\"},"
			  "{\"id\":4,\"name\":\"d\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}", &err, NULL);
	CHECK(p != NULL, "bare action words in conditions accepted");
	if (p)
	{
		char	  **vars;

		CHECK(p->steps[1].condition_is_routing, "own outputs with bare actions: routing");
		CHECK(!p->steps[2].condition_is_routing, "another step's output: before the step");
		CHECK(ce_expr_variables(p->steps[2].condition_expr, &vars) == 1 &&
			  strcmp(vars[0], "x") == 0, "the condition reads only x");
		PREDS(&p->steps[2], 1);
	}
}

typedef struct BadCase
{
	CeErrCode	code;
	const char *path;
	const char *what;
	const char *json;
} BadCase;

static const BadCase bad_cases[] = {
	{CE_ERR_INVALID, "", "definition is an array",
	"[]"},
	{CE_ERR_INVALID, "id", "missing chain id",
	"{\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "id", "chain id is a number",
	"{\"id\":5,\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "id", "chain id with capitals and space",
	"{\"id\":\"Bad Id\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "id", "chain id too long",
	"{\"id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "stepz", "unknown chain key",
	"{\"id\":\"c1\",\"stepz\":[],\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "sql", "step key at chain level",
	"{\"id\":\"c1\",\"sql\":\"SELECT 1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps", "missing steps",
	"{\"id\":\"c1\"}"},
	{CE_ERR_INVALID, "steps", "empty steps",
	"{\"id\":\"c1\",\"steps\":[]}"},
	{CE_ERR_INVALID, "steps", "steps is an object",
	"{\"id\":\"c1\",\"steps\":{}}"},
	{CE_ERR_INVALID, "steps[0]", "step is a number",
	"{\"id\":\"c1\",\"steps\":[1]}"},
	{CE_ERR_INVALID, "steps[0].retryConfg", "unknown step key (typo)",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfg\":{}}]}"},
	{CE_ERR_INVALID, "steps[0].id", "missing step id",
	"{\"id\":\"c1\",\"steps\":[{\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].id", "step id zero",
	"{\"id\":\"c1\",\"steps\":[{\"id\":0,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].id", "step id a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":\"1\",\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].id", "step id fractional",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1.5,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].name", "missing step name",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].name", "invalid step name",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"Bad-Name\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].name", "step name too long",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_DUPLICATE, "steps[1].id", "duplicate step id",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},{\"id\":1,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_DUPLICATE, "steps[1].name", "duplicate step name",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},{\"id\":2,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 2\"}]}"},
	{CE_ERR_INVALID, "steps[0].type", "missing type",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].type", "unknown type",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"query\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].sql", "sql step without sql",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\"}]}"},
	{CE_ERR_INVALID, "steps[0].sql", "sql not a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":5}]}"},
	{CE_ERR_INVALID, "steps[0].sql", "sql empty",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"\"}]}"},
	{CE_ERR_INVALID, "steps[0].instructionSet", "function without instructionSet",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"function\"}]}"},
	{CE_ERR_INVALID, "steps[0].template", "template step without template",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"template\"}]}"},
	{CE_ERR_INVALID, "steps[0].templateId", "template and templateId",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"template\",\"template\":\"x\",\"templateId\":\"t\"}]}"},
	{CE_ERR_INVALID, "steps[0].waitMs", "wait without waitMs",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"wait\"}]}"},
	{CE_ERR_INVALID, "steps[0].waitMs", "negative waitMs",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"wait\",\"waitMs\":-1}]}"},
	{CE_ERR_SYNTAX, "steps[0].sql", "unterminated placeholder in sql",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT {a\"}]}"},
	{CE_ERR_SYNTAX, "steps[0].inputTemplate", "lone brace in inputTemplate",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"inputTemplate\":\"x } y\"}]}"},
	{CE_ERR_SYNTAX, "steps[0].template", "unterminated placeholder in template",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"template_processing\",\"template\":\"Hi {name\"}]}"},
	{CE_ERR_SYNTAX, "steps[0].conditionalExecution", "incomplete condition",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"conditionalExecution\":\"{qty} >\"}]}"},
	{CE_ERR_SYNTAX, "steps[0].rollbackAction", "bad rollback SQL",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"rollbackAction\":\"DELETE FROM t WHERE id = {x\"}]}"},
	{CE_ERR_SYNTAX, "successConditions[1]", "bad success condition",
	"{\"id\":\"c1\",\"successConditions\":[\"a == 1\",\"a == == 1\"],\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "successConditions", "successConditions a string",
	"{\"id\":\"c1\",\"successConditions\":\"a == 1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "successConditions[0]", "success condition not a string",
	"{\"id\":\"c1\",\"successConditions\":[true],\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "steps[0].conditionalExecution", "condition not a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"conditionalExecution\":true}]}"},
	{CE_ERR_INVALID, "steps[0].inputVariables", "inputVariables a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"inputVariables\":\"x\"}]}"},
	{CE_ERR_INVALID, "steps[0].inputVariables[0]", "invalid variable name",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"inputVariables\":[\"1x\"]}]}"},
	{CE_ERR_INVALID, "steps[0].outputVariables[1]", "variable name a number",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"outputVariables\":[\"ok\",3]}]}"},
	{CE_ERR_RESERVED, "steps[0].outputVariables[0]", "reserved output variable",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"outputVariables\":[\"chain\"]}]}"},
	{CE_ERR_RESERVED, "steps[0].inputVariables[1]", "reserved input variable",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"inputVariables\":[\"x\",\"chain\"]}]}"},
	{CE_ERR_RESERVED, "steps[0].outputVariables[1]", "action word skip as output variable",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"outputVariables\":[\"x\",\"skip\"]}]}"},
	{CE_ERR_RESERVED, "steps[0].inputVariables[0]", "action word continue as input variable",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"inputVariables\":[\"continue\"]}]}"},
	{CE_ERR_RESERVED, "steps[0].outputVariables[0]", "action word skip_to_step_N as output variable",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"outputVariables\":[\"skip_to_step_2\"]}]}"},
	{CE_ERR_RESERVED, "steps[0].fallbackStep.outputVariables[0]", "action word fail as fallback output",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"fallbackStep\":{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"outputVariables\":[\"fail\"]}}]}"},
	{CE_ERR_REFERENCE, "steps[0].conditionalExecution", "bare skip_to_step_N to an unknown step",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"conditionalExecution\":\"{x} == 5 ? skip_to_step_9 : continue\"},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\"}]}"},
	{CE_ERR_INVALID, "saveIntermediateResults", "saveIntermediateResults not a boolean",
	"{\"id\":\"c1\",\"saveIntermediateResults\":\"no\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_REFERENCE, "steps[1].dependsOn", "dependsOn unknown step",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"dependsOn\":[7]}]}"},
	{CE_ERR_INVALID, "steps[1].dependsOn", "dependsOn not an array",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"dependsOn\":1}]}"},
	{CE_ERR_INVALID, "steps[1].dependsOn[0]", "dependsOn entry a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"dependsOn\":[\"1\"]}]}"},
	{CE_ERR_DEFINITION, "steps[0].dependsOn", "step depends on itself",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[1]}]}"},
	{CE_ERR_DEFINITION, "steps[0].dependsOn", "two-step cycle",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[2]},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"dependsOn\":[1]}]}"},
	{CE_ERR_DEFINITION, "steps[0].dependsOn", "forward dependency closing an implicit cycle",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[3]},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\"},{\"id\":3,\"name\":\"c\",\"type\":\"sql\",\"sql\":\"SELECT 3\"}]}"},
	{CE_ERR_DEFINITION, "steps[1].dependsOn", "dependsOn a fallback step",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"onFailure\":\"fallback\",\"fallbackStep\":{\"id\":9,\"name\":\"a_fb\",\"type\":\"sql\",\"sql\":\"SELECT 9\"}},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"dependsOn\":[9]}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig", "retryConfig a number",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":3}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.maxRetries", "maxRetries a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"maxRetries\":\"3\"}}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.maxRetries", "maxRetries out of range",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"maxRetries\":101}}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.backoffStrategy", "unknown backoff strategy",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"backoffStrategy\":\"chaotic\"}}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.maxDelayMs", "maxDelayMs below baseDelayMs",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"baseDelayMs\":5000,\"maxDelayMs\":1000}}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.maxRetry", "unknown retryConfig key",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"maxRetry\":3}}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.retryOnErrors[0]", "empty retryOnErrors entry",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"retryOnErrors\":[\"\"]}}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.backoffMs", "backoffMs and baseDelayMs",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"baseDelayMs\":100,\"backoffMs\":100}}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.backoffMs", "negative backoffMs",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"backoffMs\":-5}}]}"},
	{CE_ERR_INVALID, "steps[0].retryConfig.jitter", "jitter a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"jitter\":\"yes\"}}]}"},
	{CE_ERR_INVALID, "steps[0].onFailure", "unknown onFailure",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"onFailure\":\"ignore\"}]}"},
	{CE_ERR_DEFINITION, "steps[0].fallbackStep", "fallback without fallbackStep",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"onFailure\":\"fallback\"}]}"},
	{CE_ERR_DEFINITION, "steps[0].fallbackStep", "fallbackStep with onFailure warn",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"onFailure\":\"warn\",\"fallbackStep\":{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\"}}]}"},
	{CE_ERR_DUPLICATE, "steps[0].fallbackStep.id", "fallback step id clash",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"fallbackStep\":{\"id\":1,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}}]}"},
	{CE_ERR_DUPLICATE, "steps[1].fallbackStep.name", "fallback step name clash",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"fallbackStep\":{\"id\":3,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 3\"}}]}"},
	{CE_ERR_DEFINITION, "steps[0].fallbackStep.onFailure", "fallback of a fallback",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"fallbackStep\":{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"onFailure\":\"fallback\"}}]}"},
	{CE_ERR_DEFINITION, "steps[0].fallbackStep.dependsOn", "fallback step with dependsOn",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"fallbackStep\":{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"dependsOn\":[1]}}]}"},
	{CE_ERR_INVALID, "steps[0].fallbackStep.bogus", "unknown key in fallback step",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"fallbackStep\":{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"bogus\":1}}]}"},
	{CE_ERR_INVALID, "steps[0].fallbackStep", "fallbackStep a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"fallbackStep\":\"b\"}]}"},
	{CE_ERR_REFERENCE, "steps[0].conditionalExecution", "skip to unknown step",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"conditionalExecution\":\"x ? 'skip_to_step_9' : 'continue'\"},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\"}]}"},
	{CE_ERR_DEFINITION, "steps[1].conditionalExecution", "skip backwards",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2\",\"conditionalExecution\":\"skip_to_step_1\"}]}"},
	{CE_ERR_INVALID, "steps[0].timeoutMs", "zero timeoutMs",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"timeoutMs\":0}]}"},
	{CE_ERR_INVALID, "steps[0].maxMemoryMB", "maxMemoryMB a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"maxMemoryMB\":\"big\"}]}"},
	{CE_ERR_INVALID, "steps[0].parallelExecution", "parallelExecution a string",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"parallelExecution\":\"true\"}]}"},
	{CE_ERR_INVALID, "steps[0].cache", "cache a number",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"cache\":5}]}"},
	{CE_ERR_INVALID, "steps[0].metadata", "step metadata an array",
	"{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"metadata\":[]}]}"},
	{CE_ERR_INVALID, "maxExecutionTime", "negative maxExecutionTime",
	"{\"id\":\"c1\",\"maxExecutionTime\":-1,\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "maxConcurrency", "zero maxConcurrency",
	"{\"id\":\"c1\",\"maxConcurrency\":0,\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "rollbackEnabled", "rollbackEnabled a string",
	"{\"id\":\"c1\",\"rollbackEnabled\":\"yes\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "parallelStepsEnabled", "parallelStepsEnabled a number",
	"{\"id\":\"c1\",\"parallelStepsEnabled\":1,\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "notify", "unknown notify",
	"{\"id\":\"c1\",\"notify\":\"all\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "version", "version an array",
	"{\"id\":\"c1\",\"version\":[1],\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "inputSchema", "inputSchema a string",
	"{\"id\":\"c1\",\"inputSchema\":\"object\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "metadata", "chain metadata an array",
	"{\"id\":\"c1\",\"metadata\":[],\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "retryBudget", "retryBudget a string",
	"{\"id\":\"c1\",\"retryBudget\":\"x\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "description", "description a number",
	"{\"id\":\"c1\",\"description\":5,\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "searchPath", "empty searchPath",
	"{\"id\":\"c1\",\"searchPath\":\"\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "inputSchema.type", "unknown type in inputSchema",
	"{\"id\":\"c1\",\"inputSchema\":{\"type\":\"strng\"},\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
	{CE_ERR_INVALID, "outputSchema.properties.a.minLength", "bad keyword in outputSchema",
	"{\"id\":\"c1\",\"outputSchema\":{\"type\":\"object\",\"properties\":{\"a\":{\"minLength\":\"x\"}}},\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}"},
};

/* Run one malformed definition; returns true when it failed as expected. */
static int
check_bad(const char *json, CeErrCode code, const char *sqlstate,
		  const char *path, const char *what)
{
	CeError		err;
	CeJson	   *def;
	CePlan	   *p;
	int			ok;

	memset(&err, 0, sizeof(err));
	def = cejson_parse(json, strlen(json), &err);
	if (def == NULL)
	{
		unit_failed++;
		fprintf(stderr, "FAIL %s: test JSON does not parse: %s\n", what, err.message);
		return 0;
	}
	p = ce_plan_build(def, &err, NULL);
	ok = p == NULL &&
		(sqlstate ? strcmp(ce_errcode_sqlstate(err.code), sqlstate) == 0 : err.code == code) &&
		strcmp(err.path, path) == 0 &&
		err.message[0] != '\0' &&
		(err.code != CE_ERR_SYNTAX || err.pos > 0);
	if (ok)
		unit_passed++;
	else
	{
		unit_failed++;
		fprintf(stderr, "FAIL %s: got %s code %s path [%s] pos %d: %s; want %s [%s]\n",
				what, p ? "a plan" : "error", ce_errcode_sqlstate(err.code),
				err.path, err.pos, err.message,
				sqlstate ? sqlstate : ce_errcode_sqlstate(code), path);
	}
	return ok;
}

static void
test_malformed_table(void)
{
	size_t		i;
	CeBuf		b;
	int			n = 0;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
	{
		check_bad(bad_cases[i].json, bad_cases[i].code, NULL, bad_cases[i].path,
				  bad_cases[i].what);
		n++;
	}
	CHECK(n >= 45, "at least 45 malformed definitions");

	/* more steps than CE_MAX_STEPS */
	ce_buf_init(&b);
	ce_buf_appends(&b, "{\"id\":\"big\",\"steps\":[");
	for (i = 1; i <= CE_MAX_STEPS + 1; i++)
		ce_buf_printf(&b, "%s{\"id\":%d,\"name\":\"s%d\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}",
					  i > 1 ? "," : "", (int) i, (int) i);
	ce_buf_appends(&b, "]}");
	check_bad(b.data, CE_ERR_LIMIT, NULL, "steps", "too many steps");
}

/* Replay ../malformed_definitions.txt: SQLSTATE \t path \t JSON. */
static void
test_malformed_file(void)
{
	FILE	   *f = fopen("../malformed_definitions.txt", "r");
	static char line[200000];
	int			n = 0,
				good = 0;

	CHECK(f != NULL, "open ../malformed_definitions.txt");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f))
	{
		char	   *tab1,
				   *tab2;
		size_t		len = strlen(line);

		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		tab1 = strchr(line, '\t');
		tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		if (tab2 == NULL)
		{
			unit_failed++;
			fprintf(stderr, "FAIL malformed_definitions.txt line %d: not three fields\n", n + 1);
			continue;
		}
		*tab1 = '\0';
		*tab2 = '\0';
		n++;
		good += check_bad(tab2 + 1, CE_OK, line, tab1 + 1, "malformed_definitions.txt");
		ce_arena_reset();
	}
	fclose(f);
	CHECK(n >= 45 && good == n, "every line of malformed_definitions.txt fails as expected");
	CHECK(n == (int) (sizeof(bad_cases) / sizeof(bad_cases[0])) + 1,
		  "the data file holds the same cases as the table");
}

/* Messages, hints and positions. */
static void
test_messages(void)
{
	CeError		err;
	CePlan	   *p;

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfg\":{}}]}",
			  &err, NULL);
	CHECK(p == NULL, "typo rejected");
	CHECK_STR(err.message, "unknown key \"retryConfg\" in chain definition", "unknown key message");
	CHECK_STR(err.hint, "did you mean \"retryConfig\"?", "did-you-mean hint");

	p = build("{\"id\":\"c\",\"stepss\":[],\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}",
			  &err, NULL);
	CHECK_STR(err.hint, "did you mean \"steps\"?", "hint at chain level");

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"zzzzqqq\":1}]}",
			  &err, NULL);
	CHECK(p == NULL && err.hint[0] == '\0', "no hint for a far-off key");

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"maxRetries\":1}]}",
			  &err, NULL);
	CHECK(p == NULL && strstr(err.hint, "retryConfig") != NULL, "hint: key belongs in retryConfig");

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"maxRetries\":\"x\"}}]}",
			  &err, NULL);
	CHECK_STR(err.message, "\"maxRetries\" must be an integer", "type error names the type");
	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"retryConfig\":{\"maxRetries\":-1}}]}",
			  &err, NULL);
	CHECK_STR(err.message, "\"maxRetries\" must be between 0 and 100", "range message");
	p = build("{\"id\":\"c\",\"steps\":[]}", &err, NULL);
	CHECK_STR(err.message, "\"steps\" must be a non-empty array", "empty steps message");

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"validate\",\"type\":\"sql\",\"sql\":\"SELECT 1\","
			  "\"conditionalExecution\":\"a == == b\"}]}", &err, NULL);
	CHECK(p == NULL && err.code == CE_ERR_SYNTAX, "condition syntax error code from the parser");
	CHECK(err.pos == 6, "condition syntax error position");
	CHECK(strncmp(err.message, "syntax error in \"conditionalExecution\" of step \"validate\" at position 6: ",
				  strlen("syntax error in \"conditionalExecution\" of step \"validate\" at position 6: ")) == 0,
		  "condition syntax error message prefix");

	p = build("{\"id\":\"c\",\"steps\":["
			  "{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[2]},"
			  "{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[3]},"
			  "{\"id\":3,\"name\":\"c\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[1]}]}", &err, NULL);
	CHECK(p == NULL && err.code == CE_ERR_DEFINITION, "three-step cycle");
	CHECK_STR(err.message, "dependency cycle among steps: \"a\" -> \"b\" -> \"c\" -> \"a\"", "cycle named");
	CHECK_STR(err.path, "steps[0].dependsOn", "cycle path");

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[1]}]}",
			  &err, NULL);
	CHECK_STR(err.message, "dependency cycle among steps: \"a\" -> \"a\"", "self-dependency is a cycle");

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"},"
			  "{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"dependsOn\":[7]}]}", &err, NULL);
	CHECK(strstr(err.message, "7") != NULL, "unknown dependsOn target named");

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\","
			  "\"conditionalExecution\":\"'skip_to_step_4'\"}]}", &err, NULL);
	CHECK(p == NULL && err.code == CE_ERR_REFERENCE && err.pos == 2, "skip target position");

	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"Parse-Lead\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}",
			  &err, NULL);
	CHECK(p == NULL && strstr(err.hint, "\"parse_lead\"") != NULL, "step name hint suggests a spelling");

	/* a NULL warnings pointer and a NULL error pointer are fine */
	p = build("{\"id\":\"c\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"waitMs\":5}]}",
			  &err, NULL);
	CHECK(p != NULL, "irrelevant key is not an error");
	CHECK(ce_plan_build(NULL, NULL, NULL) == NULL, "NULL definition");
}

static void
test_warnings(void)
{
	CeError		err;
	CeWarnings	w = {0, NULL};
	CePlan	   *p;
	int			i,
				found_wait = 0,
				found_var = 0;

	p = build("{\"id\":\"w\",\"inputSchema\":{\"type\":\"object\",\"properties\":{\"raw\":{\"type\":\"string\"}}},"
			  "\"steps\":["
			  "{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT {raw}\",\"waitMs\":5,"
			  " \"inputVariables\":[\"raw\"],\"outputVariables\":[\"x\"]},"
			  "{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT {x}\",\"inputVariables\":[\"x\",\"missing\"]}]}",
			  &err, &w);
	CHECK(p != NULL, "chain with warnings compiles");
	for (i = 0; i < w.count; i++)
	{
		if (strstr(w.items[i], "waitMs") != NULL)
			found_wait++;
		if (strcmp(w.items[i], "step \"b\" reads \"missing\", which no earlier step sets and the input schema does not declare") == 0)
			found_var++;
	}
	CHECK(w.count == 2, "two warnings");
	CHECK(found_wait == 1, "warning for waitMs on a sql step");
	CHECK(found_var == 1, "warning for an undeclared input variable");

	/* no schema: no variable warnings */
	w.count = 0;
	p = build("{\"id\":\"w\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"inputVariables\":[\"v\"]}]}",
			  &err, &w);
	CHECK(p != NULL && w.count == 0, "no warning without an input schema");
}

static void
test_retry(void)
{
	CeRetry		r;
	CeStepKind	k;

	ce_retry_default(CE_STEP_SQL, &r);
	CHECK(r.maxRetries == 5 && r.strategy == CE_BACKOFF_EXPONENTIAL && r.baseDelayMs == 500 &&
		  r.maxDelayMs == 10000 && r.jitter && !r.explicit_config, "sql default");
	CHECK(ce_retry_delay_ms(&r, 1) == 500, "exponential 1");
	CHECK(ce_retry_delay_ms(&r, 2) == 1000, "exponential 2");
	CHECK(ce_retry_delay_ms(&r, 5) == 8000, "exponential 5");
	CHECK(ce_retry_delay_ms(&r, 6) == 10000, "exponential capped");
	CHECK(ce_retry_delay_ms(&r, 2000000000) == 10000, "huge attempt, no overflow");
	CHECK(ce_retry_matches(&r, "database_busy", "40001"), "sql retries database_busy");
	CHECK(ce_retry_matches(&r, "network_timeout", NULL), "sql retries network_timeout");
	CHECK(!ce_retry_matches(&r, "temporary_overload", "53300"), "sql does not retry overload");

	ce_retry_default(CE_STEP_TEMPLATE, &r);
	CHECK(r.maxRetries == 2 && r.strategy == CE_BACKOFF_FIXED && ce_retry_delay_ms(&r, 2) == 1000,
		  "template default fixed 1 s");
	CHECK(ce_retry_matches(&r, "temporary_overload", "53300"), "template retries overload");

	ce_retry_default(CE_STEP_EXTERNAL, &r);
	CHECK(r.maxRetries == 3 && r.maxDelayMs == 30000 && r.jitter &&
		  ce_retry_matches(&r, "api_rate_limit", NULL) && !ce_retry_matches(&r, "database_busy", "40001"),
		  "external default");
	ce_retry_default(CE_STEP_FUNCTION, &r);
	CHECK(r.maxRetries == 0, "function default none");
	ce_retry_default(CE_STEP_WAIT, &r);
	CHECK(r.maxRetries == 0, "wait default none");

	/* no retryOnErrors: the transient types */
	r.nretryOn = 0;
	CHECK(ce_retry_matches(&r, "database_busy", "40P01"), "transient retried");
	CHECK(!ce_retry_matches(&r, "invalid_input", "22P02"), "permanent not retried");

	memset(&r, 0, sizeof(r));
	r.strategy = CE_BACKOFF_LINEAR;
	r.baseDelayMs = 300;
	r.maxDelayMs = 1000;
	CHECK(ce_retry_delay_ms(&r, 3) == 900 && ce_retry_delay_ms(&r, 4) == 1000, "linear and cap");
	r.baseDelayMs = 2000000000;
	r.maxDelayMs = 2100000000;
	CHECK(ce_retry_delay_ms(&r, 2000000000) == 2100000000, "linear without overflow");
	r.strategy = CE_BACKOFF_FIXED;
	CHECK(ce_retry_delay_ms(&r, 7) == 2000000000, "fixed");
	{
		char	   *on[] = {"api_timeout", "40001"};

		r.nretryOn = 2;
		r.retryOn = on;
		CHECK(ce_retry_matches(&r, "api_timeout", NULL), "listed failure type");
		CHECK(ce_retry_matches(&r, "database_busy", "40001"), "listed SQLSTATE");
		CHECK(!ce_retry_matches(&r, "database_busy", "40P01"), "unlisted SQLSTATE");
		CHECK(!ce_retry_matches(&r, "network_timeout", NULL), "list replaces the transient default");
	}
	{
		/* the design documents' words in retryOnErrors (seed chains) */
		char	   *on[] = {"timeout", "extraction_failed"};
		char	   *db[] = {"database_timeout", "Connection_Error"};
		char	   *api[] = {"api_timeout", "quota_exceeded"};

		r.nretryOn = 2;
		r.retryOn = on;
		CHECK(ce_retry_matches(&r, "execution_timeout", "57014"), "timeout covers the step's own timeout");
		CHECK(ce_retry_matches(&r, "network_timeout", "08006"), "timeout covers network_timeout");
		CHECK(ce_retry_matches(&r, "api_timeout", NULL), "timeout covers api_timeout");
		CHECK(ce_retry_matches(&r, "timeout", NULL), "timeout raised by name");
		CHECK(ce_retry_matches(&r, "extraction_failed", NULL), "a custom type by name");
		CHECK(!ce_retry_matches(&r, "query_canceled", "57014"), "a cancel is not a timeout");
		CHECK(!ce_retry_matches(&r, "database_busy", "40001"), "timeout does not cover database_busy");
		r.retryOn = db;
		CHECK(ce_retry_matches(&r, "execution_timeout", "57014"), "database_timeout covers the step's timeout");
		CHECK(ce_retry_matches(&r, "database_busy", "55P03"), "database_timeout covers a lock timeout");
		CHECK(ce_retry_matches(&r, "network_timeout", "08006"), "connection_error covers class 08, any case");
		CHECK(!ce_retry_matches(&r, "api_timeout", NULL), "database words do not cover api_timeout");
		r.retryOn = api;
		CHECK(ce_retry_matches(&r, "api_rate_limit", NULL), "quota_exceeded covers api_rate_limit");
		CHECK(!ce_retry_matches(&r, "execution_timeout", "57014"), "api words do not cover the step's timeout");
	}

	CHECK(ce_step_kind_from_name("database_operation", &k) && k == CE_STEP_SQL, "alias sql");
	CHECK(ce_step_kind_from_name("instruction_set", &k) && k == CE_STEP_FUNCTION, "alias function");
	CHECK(ce_step_kind_from_name("template_processing", &k) && k == CE_STEP_TEMPLATE, "alias template");
	CHECK(ce_step_kind_from_name("external_api", &k) && k == CE_STEP_EXTERNAL, "alias external");
	CHECK(ce_step_kind_from_name("wait", &k) && k == CE_STEP_WAIT, "wait");
	CHECK(!ce_step_kind_from_name("SQL", &k) && !ce_step_kind_from_name("", &k), "unknown kinds");

	CHECK(ce_valid_chain_id("order-fulfilment.v2_x"), "valid chain id");
	CHECK(!ce_valid_chain_id("") && !ce_valid_chain_id("Order") && !ce_valid_chain_id("a b") &&
		  !ce_valid_chain_id(NULL), "invalid chain ids");
	CHECK(ce_valid_chain_id("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "63 characters");
	CHECK(!ce_valid_chain_id("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "64 characters");
}

/* A step reading, unlisted, a variable that a step not before it sets. */
static int
count_warnings_like(const char *json, const char *needle)
{
	CeError		err;
	CeWarnings	w = {0, NULL};
	int			i;
	int			n = 0;

	if (build(json, &err, &w) == NULL)
		return -1;
	for (i = 0; i < w.count; i++)
		if (strstr(w.items[i], needle) != NULL)
			n++;
	return n;
}

static void
test_unordered_reads(void)
{
	/* parallel step reads {total} in its template: not ordered after "price" */
	CHECK(count_warnings_like("{\"id\":\"w\",\"steps\":["
							  "{\"id\":1,\"name\":\"price\",\"type\":\"sql\",\"sql\":\"SELECT 1 AS total\",\"outputVariables\":[\"total\"]},"
							  "{\"id\":2,\"name\":\"mail\",\"type\":\"template\",\"template\":\"costs {total}\",\"parallelExecution\":true}]}",
							  "may run before \"price\"") == 1,
		  "an unlisted read of a parallel step is warned about");
	/* listed: ordered by rule 2, no warning */
	CHECK(count_warnings_like("{\"id\":\"w\",\"steps\":["
							  "{\"id\":1,\"name\":\"price\",\"type\":\"sql\",\"sql\":\"SELECT 1 AS total\",\"outputVariables\":[\"total\"]},"
							  "{\"id\":2,\"name\":\"mail\",\"type\":\"template\",\"template\":\"costs {total}\",\"parallelExecution\":true,\"inputVariables\":[\"total\"]}]}",
							  "may run before") == 0,
		  "a listed read is not warned about");
	/* sequential: the previous step runs first, no warning */
	CHECK(count_warnings_like("{\"id\":\"w\",\"steps\":["
							  "{\"id\":1,\"name\":\"price\",\"type\":\"sql\",\"sql\":\"SELECT 1 AS total\",\"outputVariables\":[\"total\"]},"
							  "{\"id\":2,\"name\":\"mail\",\"type\":\"sql\",\"sql\":\"SELECT {total}::int AS t\"}]}",
							  "may run before") == 0,
		  "a read ordered through the previous step is not warned about");
	/* a condition counts too; transitively ordered through dependsOn */
	CHECK(count_warnings_like("{\"id\":\"w\",\"steps\":["
							  "{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1 AS x\",\"outputVariables\":[\"x\"]},"
							  "{\"id\":2,\"name\":\"b\",\"type\":\"sql\",\"sql\":\"SELECT 2 AS y\",\"dependsOn\":[1]},"
							  "{\"id\":3,\"name\":\"c\",\"type\":\"sql\",\"sql\":\"SELECT 3\",\"dependsOn\":[2],\"conditionalExecution\":\"{x} > 0\"},"
							  "{\"id\":4,\"name\":\"d\",\"type\":\"sql\",\"sql\":\"SELECT 4\",\"parallelExecution\":true,\"conditionalExecution\":\"{x} > 0\"}]}",
							  "may run before \"a\"") == 1,
		  "conditions count; ordering through dependsOn chains is seen");
}

/* requiredRoles, approvalThreshold, limits, concurrencyLimit */
static void
test_flow_keys(void)
{
	CeError		err;
	CePlan	   *p;

	p = build("{\"id\":\"f\",\"concurrencyLimit\":3,\"steps\":["
			  "{\"id\":1,\"name\":\"ok\",\"type\":\"external\",\"requiredRoles\":[\"finance\",\"head\"],\"approvalThreshold\":2},"
			  "{\"id\":2,\"name\":\"call\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"limits\":[\"api\",\"db.main\"]},"
			  "{\"id\":3,\"name\":\"one\",\"type\":\"external\",\"requiredRoles\":[\"finance\"]}]}", &err, NULL);
	CHECK(p != NULL, "requiredRoles, approvalThreshold, limits and concurrencyLimit compile");
	if (p == NULL)
		return;
	CHECK(p->concurrency_limit == 3, "concurrencyLimit");
	CHECK(p->steps[0].nrequired_roles == 2 && strcmp(p->steps[0].required_roles[1], "head") == 0,
		  "requiredRoles kept in order");
	CHECK(p->steps[0].approval_threshold == 2, "approvalThreshold");
	CHECK(p->steps[1].nlimits == 2 && strcmp(p->steps[1].limits[1], "db.main") == 0, "limits kept");
	CHECK(p->steps[2].approval_threshold == 1, "approvalThreshold defaults to 1 with requiredRoles");
	CHECK(p->steps[1].nrequired_roles == 0 && p->steps[1].approval_threshold == 0 && p->concurrency_limit == 3,
		  "no requiredRoles: no threshold");

	check_bad("{\"id\":\"f\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"requiredRoles\":[\"x\"]}]}",
			  CE_ERR_DEFINITION, NULL, "steps[0].requiredRoles", "requiredRoles on a sql step");
	check_bad("{\"id\":\"f\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"external\",\"approvalThreshold\":2}]}",
			  CE_ERR_DEFINITION, NULL, "steps[0].approvalThreshold", "approvalThreshold without requiredRoles");
	check_bad("{\"id\":\"f\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"external\",\"requiredRoles\":[\"x\"],\"approvalThreshold\":0}]}",
			  CE_ERR_INVALID, NULL, "steps[0].approvalThreshold", "approvalThreshold 0");
	check_bad("{\"id\":\"f\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"external\",\"requiredRoles\":[]}]}",
			  CE_ERR_INVALID, NULL, "steps[0].requiredRoles", "empty requiredRoles");
	check_bad("{\"id\":\"f\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"external\",\"requiredRoles\":[\"x\",\"x\"]}]}",
			  CE_ERR_DUPLICATE, NULL, "steps[0].requiredRoles[1]", "a role named twice");
	check_bad("{\"id\":\"f\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"limits\":[\"Bad Name\"]}]}",
			  CE_ERR_INVALID, NULL, "steps[0].limits[0]", "an invalid limit name");
	check_bad("{\"id\":\"f\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\",\"limits\":\"api\"}]}",
			  CE_ERR_INVALID, NULL, "steps[0].limits", "limits not an array");
	check_bad("{\"id\":\"f\",\"concurrencyLimit\":0,\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\"}]}",
			  CE_ERR_INVALID, NULL, "concurrencyLimit", "concurrencyLimit 0");
}

void
run_plan_tests(void)
{
	test_unordered_reads();
	test_full_definition();
	test_sequential();
	test_malformed_table();
	test_malformed_file();
	test_messages();
	test_warnings();
	test_retry();
	test_flow_keys();
}
