/*
 * test_compose.c
 *	  Unit tests of compose_plan.c: the composition keys of a step (type
 *	  "chain" with "chain" and "input", "forEach" with "maxConcurrency",
 *	  "repeatUntil" with "maxIterations"), compiled or refused with the
 *	  JSON path of the key.
 */
#include "unit.h"
#include "plan.h"
#include "compose_plan.h"
#include "cejson.h"

void		run_compose_tests(void);

static CePlan *
build(const char *json, CeError *err)
{
	CeJson	   *def;

	memset(err, 0, sizeof(*err));
	def = cejson_parse(json, strlen(json), err);
	if (def == NULL)
	{
		fprintf(stderr, "test_compose: bad test JSON: %s (%s)\n", err->message, json);
		return NULL;
	}
	return ce_plan_build(def, err, NULL);
}

/* A definition of one step with the given keys must fail at path. */
static void
refused(const char *step_keys, const char *path, const char *name)
{
	char		json[2048];
	CeError		err;
	CePlan	   *p;

	snprintf(json, sizeof(json), "{\"id\": \"c\", \"steps\": [{\"id\": 1, \"name\": \"a\", %s}]}", step_keys);
	p = build(json, &err);
	CHECK(p == NULL, name);
	if (p == NULL)
		CHECK_STR(err.path, path, name);
}

void
run_compose_tests(void)
{
	CeError		err;
	CePlan	   *p;
	const CeStep *s;
	const char *const *path;
	int			npath;

	p = build("{\"id\": \"c\", \"steps\": ["
			  "{\"id\": 1, \"name\": \"sub\", \"type\": \"chain\", \"chain\": \"child-x\","
			  " \"input\": {\"a\": \"{x}\", \"b\": [\"n={n}\", 3], \"c\": {\"d\": \"{e.f}\"}}},"
			  "{\"id\": 2, \"name\": \"each\", \"type\": \"sql\", \"sql\": \"SELECT {item}::int AS v\","
			  " \"forEach\": \"{order.lines}\", \"maxConcurrency\": 8, \"outputVariables\": [\"v\"]},"
			  "{\"id\": 3, \"name\": \"poll\", \"type\": \"wait\", \"waitMs\": 10, \"repeatUntil\": \"done == true\"}]}",
			  &err);
	CHECK(p != NULL, "a chain step, a forEach and a repeatUntil compile");
	if (p != NULL)
	{
		s = &p->steps[0];
		CHECK(s->kind == CE_STEP_CHAIN && strcmp(s->kind_name, "chain") == 0, "type chain");
		CHECK(s->compose && strcmp(s->compose->child_chain, "child-x") == 0, "the child chain's id");
		CHECK(s->compose && s->compose->child_input && s->compose->child_input->type == CEJ_OBJECT, "input kept");
		CHECK(s->retry.maxRetries == 0, "a chain step is not retried by default");
		s = &p->steps[1];
		CHECK(s->compose && s->compose->for_each_npath == 2 &&
			  strcmp(s->compose->for_each_path[0], "order") == 0 &&
			  strcmp(s->compose->for_each_path[1], "lines") == 0, "forEach path order.lines");
		CHECK(s->compose && s->compose->max_concurrency == 8, "maxConcurrency 8");
		CHECK(s->compose && s->compose->repeat_expr == NULL, "no repeatUntil on the forEach step");
		s = &p->steps[2];
		CHECK(s->compose && s->compose->repeat_expr != NULL, "repeatUntil parsed");
		CHECK(s->compose && s->compose->max_iterations == CE_DEFAULT_MAX_ITERATIONS, "maxIterations defaults to 100");
		CHECK(p->steps[0].compose && p->steps[1].compose && p->steps[2].compose, "composition on all three");
	}
	p = build("{\"id\": \"c\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1\"}]}", &err);
	CHECK(p != NULL && p->steps[0].compose == NULL, "a plain step has no composition");

	CHECK(ce_compose_bare_placeholder("{a.b}", 5, &path, &npath) && npath == 2, "{a.b} is a bare placeholder");
	CHECK(!ce_compose_bare_placeholder("x {a}", 5, &path, &npath), "text around it is a template");
	CHECK(!ce_compose_bare_placeholder("{a|'d'}", 7, &path, &npath), "a default makes it a template");
	CHECK(!ce_compose_bare_placeholder("{a} {b}", 7, &path, &npath), "two placeholders make a template");

	refused("\"type\": \"chain\"", "steps[0].chain", "type chain needs chain");
	refused("\"type\": \"chain\", \"chain\": \"Bad Id\"", "steps[0].chain", "the child chain id is checked");
	refused("\"type\": \"chain\", \"chain\": \"x\", \"input\": [1]", "steps[0].input", "input must be an object");
	refused("\"type\": \"chain\", \"chain\": \"x\", \"input\": {\"a\": \"{unclosed\"}", "steps[0].input.a",
			"a bad template in input names its key");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"chain\": \"x\"", "steps[0].chain", "chain on a sql step");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"maxConcurrency\": 2", "steps[0].maxConcurrency",
			"maxConcurrency needs forEach");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"maxIterations\": 2", "steps[0].maxIterations",
			"maxIterations needs repeatUntil");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"forEach\": \"{x}\", \"maxConcurrency\": 0",
			"steps[0].maxConcurrency", "maxConcurrency at least 1");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"forEach\": \"{x}\", \"repeatUntil\": \"y\"",
			"steps[0].repeatUntil", "not both");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"forEach\": \"{x} == 1\"", "steps[0].forEach",
			"forEach must be a path");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"forEach\": 3", "steps[0].forEach", "forEach must be a string");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"repeatUntil\": \"(a\"", "steps[0].repeatUntil",
			"a syntax error in repeatUntil");
	refused("\"type\": \"sql\", \"sql\": \"SELECT 1\", \"forEach\": \"{x}\", \"onFailure\": \"fallback\","
			" \"fallbackStep\": {\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 2\"}",
			"steps[0].forEach", "forEach with a fallback");
}
