/*
 * test_resilience.c
 *	  Unit tests of the resilience keys of a definition (SPEC section 9):
 *	  circuitBreaker, cache, retryBudget, verificationQuery,
 *	  onFailure "escalate" and backoffStrategy "random" compile to what
 *	  the engine applies, with their defaults; unknown keys, bad values and
 *	  bad types are errors naming the JSON path; the random back-off stays
 *	  between baseDelayMs and maxDelayMs.
 */
#include "unit.h"
#include "plan.h"
#include "cejson.h"

#include <stdlib.h>

void		run_resilience_tests(void);

static CePlan *
build(const char *json, CeError *err, CeWarnings *w)
{
	CeJson	   *def;

	memset(err, 0, sizeof(*err));
	def = cejson_parse(json, strlen(json), err);
	if (def == NULL)
	{
		fprintf(stderr, "test_resilience: bad test JSON: %s (%s)\n", err->message, json);
		return NULL;
	}
	return ce_plan_build(def, err, w);
}

/* A one-step chain whose step carries extra keys, with extra chain keys. */
static CePlan *
build_step(const char *chain_keys, const char *step_keys, CeError *err, CeWarnings *w)
{
	char		buf[4096];

	snprintf(buf, sizeof(buf),
			 "{\"id\":\"c1\",%s%s\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"function\","
			 "\"instructionSet\":\"h\",\"inputVariables\":[\"k\"],"
			 "\"rollbackAction\":\"DELETE FROM t WHERE k = {k}\"%s%s}]}",
			 chain_keys, chain_keys[0] ? "," : "", step_keys[0] ? "," : "", step_keys);
	return build(buf, err, w);
}

static void
bad(const char *chain_keys, const char *step_keys, const char *path, const char *what)
{
	CeError		err;
	CePlan	   *p = build_step(chain_keys, step_keys, &err, NULL);

	CHECK(p == NULL && err.code != CE_OK && strcmp(err.path, path) == 0, what);
	if (p != NULL || strcmp(err.path, path) != 0)
		fprintf(stderr, "  %s: path [%s] message [%s]\n", what, err.path, err.message);
}

void
run_resilience_tests(void)
{
	CeError		err;
	CeWarnings	w;
	CePlan	   *p;
	CeStep	   *s;
	CeRetry		r;
	int			i;
	long		lo = 1000000,
				hi = -1;

	/* defaults */
	p = build_step("", "\"circuitBreaker\":{},\"cache\":{}", &err, NULL);
	CHECK(p != NULL, "empty circuitBreaker and cache objects compile");
	if (p)
	{
		s = &p->steps[0];
		CHECK(s->circuit_breaker && s->circuit_breaker->failure_threshold == 50 &&
			  s->circuit_breaker->minimum_throughput == 10 && s->circuit_breaker->window_ms == 60000 &&
			  s->circuit_breaker->open_duration_ms == 30000 && s->circuit_breaker->half_open_successes == 3 &&
			  s->circuit_breaker->key == NULL, "circuitBreaker defaults");
		CHECK(s->cache && s->cache->ttl_ms == 3600000 && s->cache->max_entries == 1000 && s->cache->nkey == 0,
			  "cache defaults");
		CHECK(p->retry_budget == -1, "no retryBudget: -1");
		CHECK(s->verification_tpl == NULL, "no verificationQuery");
	}

	/* explicit values */
	p = build_step("\"retryBudget\":{\"maxRetries\":7}",
				   "\"circuitBreaker\":{\"failureThreshold\":20,\"minimumThroughput\":4,\"windowMs\":1000,"
				   "\"openDurationMs\":500,\"halfOpenSuccesses\":2,\"key\":\"payments\"},"
				   "\"cache\":{\"ttlMs\":100,\"key\":[\"k\",\"j\"],\"maxEntries\":5},"
				   "\"verificationQuery\":\"SELECT count(*) FROM t WHERE k = {k}\",\"onFailure\":\"escalate\","
				   "\"retryConfig\":{\"maxRetries\":2,\"backoffStrategy\":\"random\",\"baseDelayMs\":100,\"maxDelayMs\":300}",
				   &err, NULL);
	CHECK(p != NULL, "every resilience key compiles");
	if (p)
	{
		s = &p->steps[0];
		CHECK(p->retry_budget == 7, "retryBudget.maxRetries");
		CHECK(s->circuit_breaker->failure_threshold == 20 && s->circuit_breaker->minimum_throughput == 4 &&
			  s->circuit_breaker->window_ms == 1000 && s->circuit_breaker->open_duration_ms == 500 &&
			  s->circuit_breaker->half_open_successes == 2, "circuitBreaker numbers");
		CHECK_STR(s->circuit_breaker->key, "payments", "circuitBreaker.key");
		CHECK(s->cache->ttl_ms == 100 && s->cache->max_entries == 5 && s->cache->nkey == 2, "cache numbers");
		CHECK_STR(s->cache->key[1], "j", "cache.key");
		CHECK(s->verification_tpl != NULL, "verificationQuery parsed as a SQL template");
		CHECK(s->on_failure == CE_ONFAIL_ESCALATE, "onFailure escalate");
		CHECK(s->retry.strategy == CE_BACKOFF_RANDOM, "backoffStrategy random");
	}

	/* the older spellings: booleans and an integer budget */
	p = build_step("\"retryBudget\":3", "\"circuitBreaker\":true,\"cache\":false", &err, NULL);
	CHECK(p != NULL && p->retry_budget == 3 && p->steps[0].circuit_breaker != NULL &&
		  p->steps[0].cache == NULL, "retryBudget integer, circuitBreaker true, cache false");

	/* errors */
	bad("", "\"circuitBreaker\":{\"threshold\":5}", "steps[0].circuitBreaker.threshold", "unknown circuitBreaker key");
	bad("", "\"cache\":{\"ttl\":60}", "steps[0].cache.ttl", "unknown cache key");
	bad("", "\"circuitBreaker\":{\"failureThreshold\":0}", "steps[0].circuitBreaker.failureThreshold", "failureThreshold 0");
	bad("", "\"circuitBreaker\":{\"failureThreshold\":101}", "steps[0].circuitBreaker.failureThreshold", "failureThreshold 101");
	bad("", "\"circuitBreaker\":{\"minimumThroughput\":0}", "steps[0].circuitBreaker.minimumThroughput", "minimumThroughput 0");
	bad("", "\"circuitBreaker\":{\"openDurationMs\":-1}", "steps[0].circuitBreaker.openDurationMs", "negative openDurationMs");
	bad("", "\"circuitBreaker\":{\"halfOpenSuccesses\":0}", "steps[0].circuitBreaker.halfOpenSuccesses", "halfOpenSuccesses 0");
	bad("", "\"circuitBreaker\":{\"key\":\"\"}", "steps[0].circuitBreaker.key", "empty breaker key");
	bad("", "\"circuitBreaker\":5", "steps[0].circuitBreaker", "circuitBreaker a number");
	bad("", "\"cache\":{\"ttlMs\":0}", "steps[0].cache.ttlMs", "ttlMs 0");
	bad("", "\"cache\":{\"maxEntries\":0}", "steps[0].cache.maxEntries", "maxEntries 0");
	bad("", "\"cache\":{\"key\":\"k\"}", "steps[0].cache.key", "cache.key a string");
	bad("\"retryBudget\":{\"max\":3}", "", "retryBudget.max", "unknown retryBudget key");
	bad("\"retryBudget\":{\"maxRetries\":-1}", "", "retryBudget.maxRetries", "negative retryBudget");
	bad("\"retryBudget\":\"x\"", "", "retryBudget", "retryBudget a string");
	bad("", "\"onFailure\":\"page\"", "steps[0].onFailure", "unknown onFailure");
	bad("", "\"retryConfig\":{\"backoffStrategy\":\"chaotic\"}", "steps[0].retryConfig.backoffStrategy", "unknown backoffStrategy");
	bad("", "\"verificationQuery\":\"SELECT {\"", "steps[0].verificationQuery", "verificationQuery with a bad template");

	/* a verificationQuery without rollbackAction is kept, with a warning */
	memset(&w, 0, sizeof(w));
	p = build("{\"id\":\"c1\",\"steps\":[{\"id\":1,\"name\":\"a\",\"type\":\"sql\",\"sql\":\"SELECT 1\","
			  "\"verificationQuery\":\"SELECT true\"}]}", &err, &w);
	CHECK(p != NULL && w.count == 1 && strstr(w.items[0], "verificationQuery") != NULL,
		  "verificationQuery without rollbackAction: a warning");

	/* random back-off: uniform between base and max */
	memset(&r, 0, sizeof(r));
	r.strategy = CE_BACKOFF_RANDOM;
	r.baseDelayMs = 200;
	r.maxDelayMs = 700;
	CHECK(ce_retry_delay_random_ms(&r, 0.0) == 200, "random back-off at fraction 0: baseDelayMs");
	CHECK(ce_retry_delay_random_ms(&r, 0.999999) <= 700 && ce_retry_delay_random_ms(&r, 0.999999) >= 699,
		  "random back-off near fraction 1: maxDelayMs");
	for (i = 0; i < 1000; i++)
	{
		long		d = ce_retry_delay_random_ms(&r, (double) rand() / ((double) RAND_MAX + 1));

		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	CHECK(lo >= 200 && hi <= 700 && hi - lo > 400, "random back-off: 1000 draws stay within [200, 700] and spread");
	r.maxDelayMs = 200;
	CHECK(ce_retry_delay_random_ms(&r, 0.5) == 200, "random back-off with maxDelayMs = baseDelayMs: that delay");
}
