/*-------------------------------------------------------------------------
 *
 * plan_retry.c
 *	  Retry settings of a step: the defaults of each kind, the
 *	  "retryConfig" object, the delay before a retry and which failures are
 *	  retried.
 *
 * Choices where the SPEC leaves room:
 *	  - Within a "retryConfig", a missing "maxRetries" is 3, a missing
 *		"baseDelayMs" 1000 and a missing "maxDelayMs" 60000 (or
 *		"baseDelayMs" when that is larger).
 *
 *-------------------------------------------------------------------------
 */
#include "plan_int.h"
#include "failure.h"

#include <limits.h>
#include <string.h>

/* A NULL-terminated list of names as a ce_alloc'd array. */
static void
set_retry_on(CeRetry *r, const char *const *names)
{
	int			n = 0;
	int			i;

	while (names[n])
		n++;
	r->nretryOn = n;
	r->retryOn = ce_alloc(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
		r->retryOn[i] = ce_strdup(names[i]);
}

/*
 * The default retry settings of a kind (SPEC section 5, as the design
 * documents set them).
 */
void
ce_retry_default(CeStepKind kind, CeRetry *r)
{
	static const char *const sql_on[] = {"database_busy", "network_timeout", NULL};
	static const char *const tpl_on[] = {"temporary_overload", NULL};
	static const char *const ext_on[] = {"network_timeout", "api_rate_limit",
	"temporary_overload", NULL};

	memset(r, 0, sizeof(*r));
	r->strategy = CE_BACKOFF_EXPONENTIAL;
	r->baseDelayMs = 1000;
	r->maxDelayMs = 60000;
	r->jitter = false;
	r->explicit_config = false;
	switch (kind)
	{
		case CE_STEP_SQL:
			r->maxRetries = 5;
			r->baseDelayMs = 500;
			r->maxDelayMs = 10000;
			r->jitter = true;
			set_retry_on(r, sql_on);
			break;
		case CE_STEP_TEMPLATE:
			r->maxRetries = 2;
			r->strategy = CE_BACKOFF_FIXED;
			r->baseDelayMs = 1000;
			r->maxDelayMs = 1000;
			set_retry_on(r, tpl_on);
			break;
		case CE_STEP_EXTERNAL:
			r->maxRetries = 3;
			r->baseDelayMs = 1000;
			r->maxDelayMs = 30000;
			r->jitter = true;
			set_retry_on(r, ext_on);
			break;
		case CE_STEP_FUNCTION:
		case CE_STEP_WAIT:
		case CE_STEP_CHAIN:
			r->maxRetries = 0;
			break;
	}
}

/*
 * Delay before retry number attempt (1-based) without jitter: fixed base,
 * linear base * attempt, exponential base * 2^(attempt-1); never more than
 * maxDelayMs (when positive).  Computed without overflow.
 */
long
ce_retry_delay_ms(const CeRetry *r, int attempt)
{
	long long	base = r->baseDelayMs > 0 ? r->baseDelayMs : 0;
	long long	cap = r->maxDelayMs > 0 ? r->maxDelayMs : INT_MAX;
	long long	d;
	int			i;

	if (attempt < 1)
		attempt = 1;
	switch (r->strategy)
	{
		case CE_BACKOFF_LINEAR:
			d = base * (long long) attempt;	/* both < 2^31: no overflow */
			break;
		case CE_BACKOFF_EXPONENTIAL:
			d = base;
			for (i = 1; i < attempt && d < cap && d > 0; i++)
				d *= 2;
			break;
		case CE_BACKOFF_FIXED:
		default:
			d = base;
			break;
	}
	if (d > cap)
		d = cap;
	return (long) d;
}

/*
 * backoffStrategy "random": baseDelayMs + fraction * (maxDelayMs -
 * baseDelayMs + 1), fraction in [0, 1): uniform over the whole range.
 */
long
ce_retry_delay_random_ms(const CeRetry *r, double fraction)
{
	long long	base = r->baseDelayMs > 0 ? r->baseDelayMs : 0;
	long long	cap = r->maxDelayMs > base ? r->maxDelayMs : base;
	long long	d;

	if (fraction < 0.0)
		fraction = 0.0;
	d = base + (long long) (fraction * (double) (cap - base + 1));
	return (long) (d > cap ? cap : d);
}

/*
 * Whether a failure is retried under r: with no retryOnErrors, the
 * transient failure types; else a listed failure type or SQLSTATE
 * (compared case-insensitively).
 */
bool
ce_retry_matches(const CeRetry *r, const char *failure_type,
				 const char *sqlstate)
{
	int			i;

	if (r->nretryOn == 0)
		return failure_type != NULL && ce_failure_is_transient(failure_type);
	for (i = 0; i < r->nretryOn; i++)
	{
		const char *on = r->retryOn[i];

		if (failure_type != NULL && plan_str_ieq(on, failure_type))
			return true;
		if (ce_failure_word_covers(on, failure_type))
			return true;
		if (sqlstate != NULL && strlen(on) == 5 && strlen(sqlstate) == 5 &&
			plan_str_ieq(on, sqlstate))
			return true;
	}
	return false;
}

/* Parse a "retryConfig" object into r. */
bool
plan_parse_retry(PlanCtx *ctx, const CeJson *rc, const char *prefix, CeRetry *r)
{
	char		path[PLAN_PATH_LEN];
	char		ipath[PLAN_PATH_LEN];
	char	   *strategy;
	bool		has_base,
				has_backoff,
				has_max;
	int			backoff = 0;
	const CeJson *on;
	int			i;

	memset(r, 0, sizeof(*r));
	r->explicit_config = true;
	r->maxRetries = 3;
	r->strategy = CE_BACKOFF_EXPONENTIAL;
	r->baseDelayMs = 1000;
	r->maxDelayMs = 60000;
	r->jitter = false;

	if (!plan_check_keys(ctx, rc, KC_RETRY, prefix))
		return false;
	if (!plan_get_int(ctx, rc, "maxRetries", prefix, 0, 100, &r->maxRetries, NULL))
		return false;
	if (!plan_get_string(ctx, rc, "backoffStrategy", prefix, false, &strategy))
		return false;
	if (strategy != NULL)
	{
		if (strcmp(strategy, "fixed") == 0)
			r->strategy = CE_BACKOFF_FIXED;
		else if (strcmp(strategy, "linear") == 0)
			r->strategy = CE_BACKOFF_LINEAR;
		else if (strcmp(strategy, "exponential") == 0)
			r->strategy = CE_BACKOFF_EXPONENTIAL;
		else if (strcmp(strategy, "random") == 0)
			r->strategy = CE_BACKOFF_RANDOM;
		else
		{
			plan_path_join(path, prefix, "backoffStrategy");
			plan_error(ctx, CE_ERR_INVALID, path,
					   "invalid value \"%s\" for \"backoffStrategy\"", strategy);
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "Valid values are \"fixed\", \"linear\", \"exponential\" and \"random\".");
			return false;
		}
	}
	if (!plan_get_int(ctx, rc, "baseDelayMs", prefix, 0, INT_MAX, &r->baseDelayMs,
					  &has_base))
		return false;
	if (!plan_get_int(ctx, rc, "backoffMs", prefix, 0, INT_MAX, &backoff,
					  &has_backoff))
		return false;
	if (has_base && has_backoff)
	{
		plan_path_join(path, prefix, "backoffMs");
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"backoffMs\" and \"baseDelayMs\" cannot both be given");
		plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
				 "\"backoffMs\" is another name for \"baseDelayMs\"; keep one.");
		return false;
	}
	if (has_backoff)
		r->baseDelayMs = backoff;
	if (!plan_get_int(ctx, rc, "maxDelayMs", prefix, 0, INT_MAX, &r->maxDelayMs,
					  &has_max))
		return false;
	if (!has_max && r->maxDelayMs < r->baseDelayMs)
		r->maxDelayMs = r->baseDelayMs;
	if (r->maxDelayMs < r->baseDelayMs)
	{
		plan_path_join(path, prefix, "maxDelayMs");
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"maxDelayMs\" must not be less than \"%s\"",
				   has_backoff ? "backoffMs" : "baseDelayMs");
		return false;
	}
	if (!plan_get_bool(ctx, rc, "jitter", prefix, &r->jitter))
		return false;

	on = cejson_get(rc, "retryOnErrors");
	if (on != NULL)
	{
		plan_path_join(path, prefix, "retryOnErrors");
		if (on->type != CEJ_ARRAY)
		{
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"retryOnErrors\" must be an array of strings");
			return false;
		}
		r->retryOn = ce_alloc(sizeof(char *) * (on->count + 1));
		for (i = 0; i < on->count; i++)
		{
			const CeJson *it = on->items[i];

			plan_strfmt(ipath, sizeof(ipath), "%s[%d]", path, i);
			if (it->type != CEJ_STRING || it->len == 0 ||
				strlen(it->str) != it->len)
			{
				plan_error(ctx, CE_ERR_INVALID, ipath,
						   "\"retryOnErrors\" must be an array of non-empty strings");
				return false;
			}
			r->retryOn[r->nretryOn++] = ce_strndup(it->str, it->len);
		}
	}
	return true;
}
