/*-------------------------------------------------------------------------
 *
 * plan_resil.c
 *	  The resilience keys of a definition (SPEC section 9), compiled with
 *	  their defaults for the engine: "circuitBreaker" and "cache" of a
 *	  step, "retryBudget" of the chain.
 *
 * "circuitBreaker" and "cache" are objects of known keys, or booleans
 * (true: the defaults; false: none); "retryBudget" is {"maxRetries": N},
 * or N.  An unknown key is an error, as everywhere in a definition: a
 * typo must not leave a step unprotected (the known keys are listed in
 * plan_read.c).
 *
 *-------------------------------------------------------------------------
 */
#include "plan_int.h"

#include <limits.h>
#include <string.h>

/*
 * A step's object member that may be written as a boolean; *obj NULL
 * when absent or a boolean, *on whether the key is in force.
 */
static bool
get_config_object(PlanCtx *ctx, const CeJson *js, const char *key,
				  const char *prefix, KeyContext kc, const CeJson **obj,
				  bool *on)
{
	const CeJson *v = cejson_get(js, key);
	char		path[PLAN_PATH_LEN];

	*obj = NULL;
	*on = false;
	if (v == NULL)
		return true;
	plan_path_join(path, prefix, key);
	if (v->type == CEJ_BOOL)
	{
		*on = v->boolean;
		return true;
	}
	if (v->type != CEJ_OBJECT)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"%s\" must be an object or a boolean", key);
		return false;
	}
	if (!plan_check_keys(ctx, v, kc, path))
		return false;
	*obj = v;
	*on = true;
	return true;
}

/* "circuitBreaker" of a step; *out NULL when absent or false. */
bool
plan_parse_breaker(PlanCtx *ctx, const CeJson *js, const char *prefix,
				   CeBreakerConfig **out)
{
	const CeJson *v;
	bool		on;
	char		path[PLAN_PATH_LEN];
	CeBreakerConfig *cb;

	*out = NULL;
	if (!get_config_object(ctx, js, "circuitBreaker", prefix, KC_BREAKER, &v, &on))
		return false;
	if (!on)
		return true;
	cb = ce_alloc(sizeof(CeBreakerConfig));
	cb->failure_threshold = 50;
	cb->minimum_throughput = 10;
	cb->window_ms = 60000;
	cb->open_duration_ms = 30000;
	cb->half_open_successes = 3;
	cb->key = NULL;
	if (v != NULL)
	{
		plan_path_join(path, prefix, "circuitBreaker");
		if (!plan_get_int(ctx, v, "failureThreshold", path, 1, 100,
						  &cb->failure_threshold, NULL) ||
			!plan_get_int(ctx, v, "minimumThroughput", path, 1, INT_MAX,
						  &cb->minimum_throughput, NULL) ||
			!plan_get_int(ctx, v, "windowMs", path, 1, INT_MAX,
						  &cb->window_ms, NULL) ||
			!plan_get_int(ctx, v, "openDurationMs", path, 1, INT_MAX,
						  &cb->open_duration_ms, NULL) ||
			!plan_get_int(ctx, v, "halfOpenSuccesses", path, 1, 1000,
						  &cb->half_open_successes, NULL) ||
			!plan_get_string(ctx, v, "key", path, true, &cb->key))
			return false;
	}
	*out = cb;
	return true;
}

/* "cache" of a step; *out NULL when absent or false. */
bool
plan_parse_cache(PlanCtx *ctx, const CeJson *js, const char *prefix,
				 CeCacheConfig **out)
{
	const CeJson *v;
	bool		on;
	char		path[PLAN_PATH_LEN];
	CeCacheConfig *cc;

	*out = NULL;
	if (!get_config_object(ctx, js, "cache", prefix, KC_CACHE, &v, &on))
		return false;
	if (!on)
		return true;
	cc = ce_alloc(sizeof(CeCacheConfig));
	cc->ttl_ms = 3600000;
	cc->max_entries = 1000;
	cc->nkey = 0;
	cc->key = NULL;
	if (v != NULL)
	{
		plan_path_join(path, prefix, "cache");
		if (!plan_get_int(ctx, v, "ttlMs", path, 1, INT_MAX, &cc->ttl_ms, NULL) ||
			!plan_get_int(ctx, v, "maxEntries", path, 1, 100000000,
						  &cc->max_entries, NULL) ||
			!plan_get_var_list(ctx, v, "key", path, &cc->nkey, &cc->key))
			return false;
	}
	*out = cc;
	return true;
}

/* "retryBudget" of the chain: {"maxRetries": N} or N; *out -1 when absent. */
bool
plan_parse_budget(PlanCtx *ctx, const CeJson *def, int *out)
{
	const CeJson *v = cejson_get(def, "retryBudget");
	long long	n;

	*out = -1;
	if (v == NULL)
		return true;
	if (plan_json_integer(v, &n))
		return plan_get_int(ctx, def, "retryBudget", "", 0, 100000, out, NULL);
	if (v->type != CEJ_OBJECT)
	{
		plan_error(ctx, CE_ERR_INVALID, "retryBudget",
				   "\"retryBudget\" must be an object or an integer");
		plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					"Write {\"maxRetries\": N}: the retries of all the steps of an execution together.");
		return false;
	}
	if (!plan_check_keys(ctx, v, KC_BUDGET, "retryBudget"))
		return false;
	if (cejson_get(v, "maxRetries") == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, "retryBudget.maxRetries",
				   "missing required key \"maxRetries\" in \"retryBudget\"");
		return false;
	}
	return plan_get_int(ctx, v, "maxRetries", "retryBudget", 0, 100000, out, NULL);
}
