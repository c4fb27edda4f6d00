/*-------------------------------------------------------------------------
 *
 * plan_read.c
 *	  Reading a chain definition: known keys (an unknown key is an error
 *	  with a suggestion), typed getters, names, variable lists, embedded
 *	  expressions and templates, and the compiler's errors and warnings.
 *
 * Every getter reports its problem through plan_error() with the JSON path
 * of the value, e.g. steps[3].retryConfig.maxRetries, and returns false;
 * the caller stops at the first problem.
 *
 * Choices where the SPEC leaves room:
 *	  - Names (chain id, step name, variable names) longer than 63 bytes are
 *		invalid values (22023), like any other name that breaks its pattern.
 *	  - At most PLAN_MAX_VARS names in one inputVariables/outputVariables.
 *
 *-------------------------------------------------------------------------
 */
#include "plan_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ----------------------------------------------------------------
 * Errors, warnings, paths
 * ----------------------------------------------------------------
 */

/* snprintf that truncates silently (paths and messages are bounded). */
void
plan_strfmt(char *out, size_t len, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

/* Fill err with code, path and a formatted message; clear pos and hint. */
void
plan_error(PlanCtx *ctx, CeErrCode code, const char *path,
		   const char *fmt,...)
{
	CeError    *err = ctx->err;
	va_list		ap;

	err->code = code;
	err->pos = 0;
	err->detail[0] = '\0';
	err->hint[0] = '\0';
	plan_strfmt(err->path, sizeof(err->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* Append a warning (when the caller collects them). */
void
plan_warn(PlanCtx *ctx, const char *fmt,...)
{
	CeWarnings *w = ctx->warnings;
	char		buf[CE_ERR_MSG_LEN];
	va_list		ap;

	int			i;

	if (w == NULL || w->count >= PLAN_MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (i = 0; i < w->count; i++)
		if (strcmp(w->items[i], buf) == 0)
			return;
	w->items = ce_realloc(w->items, sizeof(char *) * w->count,
						  sizeof(char *) * (w->count + 1));
	w->items[w->count++] = ce_strdup(buf);
}

/* Join a path prefix and a key: "steps[2]" + "sql" -> "steps[2].sql". */
void
plan_path_join(char *out, const char *prefix, const char *key)
{
	if (prefix[0] == '\0')
		plan_strfmt(out, PLAN_PATH_LEN, "%s", key);
	else
		plan_strfmt(out, PLAN_PATH_LEN, "%s.%s", prefix, key);
}

/* A printable copy of a JSON key (stops at NUL, at most 64 bytes). */
void
plan_key_display(char *out, size_t outlen, const char *key, size_t keylen)
{
	size_t		n = 0;

	while (n < keylen && n + 1 < outlen && n < 64 && key[n] != '\0')
	{
		out[n] = key[n];
		n++;
	}
	out[n] = '\0';
}

/* ----------------------------------------------------------------
 * Known keys, with suggestions
 * ----------------------------------------------------------------
 */

/*
 * Known keys of each object of a definition.  A new key goes into its
 * object's list here, and is read by the helper of its group: plan.c for
 * the chain, plan_step.c for a step, plan_retry.c for "retryConfig".
 */
static const char *const plan_chain_keys[] = {
	"id", "name", "description", "version", "inputSchema", "outputSchema",
	"steps", "rollbackEnabled", "maxExecutionTime", "parallelStepsEnabled",
	"maxConcurrency", "successConditions", "notify", "category",
	"performanceTargets", "retryBudget", "searchPath", "metadata",
	"saveIntermediateResults", "concurrencyLimit", NULL
};

/* Known keys of a step (and of a fallback step). */
static const char *const plan_step_keys[] = {
	"id", "name", "description", "type", "sql", "instructionSet",
	"templateId", "template", "inputTemplate", "inputVariables",
	"outputVariables", "conditionalExecution", "dependsOn",
	"parallelExecution", "retryConfig", "rollbackAction", "onFailure",
	"fallbackStep", "timeoutMs", "waitMs", "maxMemoryMB", "cache",
	"circuitBreaker", "verificationQuery", "metadata", "requiredRoles",
	"approvalThreshold", "limits",
	"chain", "input", "forEach", "maxConcurrency", "repeatUntil", "maxIterations", NULL
};

/* Known keys of a "retryConfig" object. */
static const char *const plan_retry_keys[] = {
	"maxRetries", "backoffStrategy", "baseDelayMs", "backoffMs",
	"maxDelayMs", "jitter", "retryOnErrors", NULL
};

/* Known keys of "circuitBreaker", "cache" (steps) and "retryBudget" (chain). */
static const char *const plan_breaker_keys[] = {
	"failureThreshold", "minimumThroughput", "windowMs", "openDurationMs",
	"halfOpenSuccesses", "key", NULL
};

static const char *const plan_cache_keys[] = {
	"ttlMs", "key", "maxEntries", NULL
};

static const char *const plan_budget_keys[] = {
	"maxRetries", NULL
};

/* ASCII lower case. */
int
plan_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive ASCII equality. */
bool
plan_str_ieq(const char *a, const char *b)
{
	while (*a && *b)
	{
		if (plan_lower((unsigned char) *a) != plan_lower((unsigned char) *b))
			return false;
		a++;
		b++;
	}
	return *a == *b;
}

/*
 * Edit distance (case-insensitive) between two short strings; strings
 * longer than 64 bytes get a large distance.
 */
static int
edit_distance(const char *a, const char *b)
{
	int			la = (int) strlen(a);
	int			lb = (int) strlen(b);
	int			prev[66];
	int			cur[66];
	int			i,
				j;

	if (la > 64 || lb > 64)
		return 1000;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++)
	{
		cur[0] = i;
		for (j = 1; j <= lb; j++)
		{
			int			cost = plan_lower((unsigned char) a[i - 1]) ==
				plan_lower((unsigned char) b[j - 1]) ? 0 : 1;
			int			v = prev[j - 1] + cost;

			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			cur[j] = v;
		}
		memcpy(prev, cur, sizeof(int) * (lb + 1));
	}
	return prev[lb];
}

/* Whether name is in a NULL-terminated list. */
static bool
in_list(const char *const *list, const char *name)
{
	int			i;

	for (i = 0; list[i]; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/* Whether a JSON key (with length) equals a C string. */
static bool
key_is(const char *key, size_t keylen, const char *name)
{
	return strlen(name) == keylen && memcmp(key, name, keylen) == 0;
}

/*
 * Reject any key of obj not in the context's list, with a hint naming the
 * closest known key or the object the key belongs in.
 */
bool
plan_check_keys(PlanCtx *ctx, const CeJson *obj, KeyContext kc, const char *prefix)
{
	const char *const *list = kc == KC_CHAIN ? plan_chain_keys :
		kc == KC_STEP ? plan_step_keys : kc == KC_RETRY ? plan_retry_keys :
		kc == KC_BREAKER ? plan_breaker_keys : kc == KC_CACHE ? plan_cache_keys :
		plan_budget_keys;
	int			i;

	for (i = 0; i < obj->count; i++)
	{
		const char *key = obj->keys[i];
		size_t		keylen = obj->keylens[i];
		char		disp[80];
		char		path[PLAN_PATH_LEN];
		const char *best = NULL;
		int			bestd = 1000;
		int			limit;
		int			k;
		bool		known = false;

		for (k = 0; list[k]; k++)
			if (key_is(key, keylen, list[k]))
				known = true;
		if (known)
			continue;

		plan_key_display(disp, sizeof(disp), key, keylen);
		plan_path_join(path, prefix, disp);
		plan_error(ctx, CE_ERR_INVALID, path,
				   "unknown key \"%s\" in chain definition", disp);

		/* a key of another object? */
		if ((kc == KC_CHAIN || kc == KC_STEP) && in_list(plan_retry_keys, disp))
		{
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "\"%s\" belongs inside a step's \"retryConfig\".", disp);
			return false;
		}
		if (kc == KC_CHAIN && in_list(plan_step_keys, disp))
		{
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "\"%s\" is a key of a step; put it in an element of \"steps\".", disp);
			return false;
		}
		if (kc == KC_STEP && in_list(plan_chain_keys, disp))
		{
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "\"%s\" is a key of the chain, not of a step.", disp);
			return false;
		}

		for (k = 0; list[k]; k++)
		{
			int			d = edit_distance(disp, list[k]);

			if (d < bestd)
			{
				bestd = d;
				best = list[k];
			}
		}
		limit = strlen(disp) <= 4 ? 1 : strlen(disp) <= 8 ? 2 : 3;
		if (best != NULL && bestd <= limit)
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "did you mean \"%s\"?", best);
		return false;
	}
	return true;
}

/* ----------------------------------------------------------------
 * Typed getters
 * ----------------------------------------------------------------
 */

/*
 * Get an optional string member; *out NULL when absent.  Rejects other
 * types, embedded NUL characters and (when nonempty) the empty string.
 */
bool
plan_get_string(PlanCtx *ctx, const CeJson *obj, const char *key,
				const char *prefix, bool nonempty, char **out)
{
	const CeJson *v = cejson_get(obj, key);
	char		path[PLAN_PATH_LEN];

	*out = NULL;
	if (v == NULL)
		return true;
	plan_path_join(path, prefix, key);
	if (v->type != CEJ_STRING)
	{
		plan_error(ctx, CE_ERR_INVALID, path, "\"%s\" must be a string", key);
		return false;
	}
	if (strlen(v->str) != v->len)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"%s\" must not contain a null character", key);
		return false;
	}
	if (nonempty && v->len == 0)
	{
		plan_error(ctx, CE_ERR_INVALID, path, "\"%s\" must not be empty", key);
		return false;
	}
	*out = ce_strndup(v->str, v->len);
	return true;
}

/* Whether a JSON number is integral and fits in long long; sets *out. */
bool
plan_json_integer(const CeJson *v, long long *out)
{
	if (v->type != CEJ_NUMBER)
		return false;
	if (v->is_integer)
	{
		*out = v->integer;
		return true;
	}
	/* 5.0 or 1e3: integral values written otherwise */
	if (v->number >= -9.0e18 && v->number <= 9.0e18 &&
		(double) (long long) v->number == v->number)
	{
		*out = (long long) v->number;
		return true;
	}
	return false;
}

/*
 * Get an optional integer member in [min, max]; *present tells whether it
 * was given (*out unchanged when absent).
 */
bool
plan_get_int(PlanCtx *ctx, const CeJson *obj, const char *key, const char *prefix,
			 long long min, long long max, int *out, bool *present)
{
	const CeJson *v = cejson_get(obj, key);
	char		path[PLAN_PATH_LEN];
	long long	n;

	if (present)
		*present = false;
	if (v == NULL)
		return true;
	plan_path_join(path, prefix, key);
	if (!plan_json_integer(v, &n))
	{
		plan_error(ctx, CE_ERR_INVALID, path, "\"%s\" must be an integer", key);
		return false;
	}
	if (n < min || n > max)
	{
		if (max != INT_MAX)
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"%s\" must be between %lld and %lld", key, min, max);
		else if (n > max)
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"%s\" must be at most %d", key, INT_MAX);
		else if (min == 1)
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"%s\" must be greater than zero", key);
		else if (min == 0)
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"%s\" must not be negative", key);
		else
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"%s\" must be at least %lld", key, min);
		return false;
	}
	*out = (int) n;
	if (present)
		*present = true;
	return true;
}

/* Get an optional boolean member (*out unchanged when absent). */
bool
plan_get_bool(PlanCtx *ctx, const CeJson *obj, const char *key, const char *prefix,
			  bool *out)
{
	const CeJson *v = cejson_get(obj, key);
	char		path[PLAN_PATH_LEN];

	if (v == NULL)
		return true;
	if (v->type != CEJ_BOOL)
	{
		plan_path_join(path, prefix, key);
		plan_error(ctx, CE_ERR_INVALID, path, "\"%s\" must be a boolean", key);
		return false;
	}
	*out = v->boolean;
	return true;
}

/* Get an optional object member, kept as a copy (*out NULL when absent). */
bool
plan_get_object(PlanCtx *ctx, const CeJson *obj, const char *key,
				const char *prefix, bool allow_bool, bool allow_int, CeJson **out)
{
	const CeJson *v = cejson_get(obj, key);
	char		path[PLAN_PATH_LEN];
	long long	n;

	*out = NULL;
	if (v == NULL)
		return true;
	if (v->type != CEJ_OBJECT &&
		!(allow_bool && v->type == CEJ_BOOL) &&
		!(allow_int && plan_json_integer(v, &n)))
	{
		plan_path_join(path, prefix, key);
		plan_error(ctx, CE_ERR_INVALID, path, "\"%s\" must be %s", key,
				   allow_bool ? "an object or a boolean" :
				   allow_int ? "an object or an integer" : "an object");
		return false;
	}
	*out = cejson_copy(v);
	return true;
}

/* ----------------------------------------------------------------
 * Names, variable lists, expressions, templates
 * ----------------------------------------------------------------
 */

/*
 * Whether s matches [a-z0-9_]+ (step names; also_dot_dash adds "." and
 * "-" for chain ids).
 */
bool
plan_valid_name_chars(const char *s, bool also_dot_dash)
{
	const char *p;

	if (*s == '\0')
		return false;
	for (p = s; *p; p++)
	{
		char		c = *p;

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
			continue;
		if (also_dot_dash && (c == '.' || c == '-'))
			continue;
		return false;
	}
	return true;
}

/* Whether s is a variable name: [A-Za-z_][A-Za-z0-9_]*. */
static bool
valid_var_name(const char *s)
{
	const char *p = s;

	if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_'))
		return false;
	for (p++; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			  (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

/*
 * Report a parse error of an expression or template found in key "key" of
 * step stepname (NULL for chain-level), keeping the parser's code, pos,
 * detail and hint.
 */
static void
parse_error(PlanCtx *ctx, const char *path, const char *key,
			const char *stepname)
{
	CeError    *err = ctx->err;
	char		msg[CE_ERR_MSG_LEN];
	char		where[CE_ERR_MSG_LEN];
	char		at[32];

	if (stepname)
		plan_strfmt(where, sizeof(where), "\"%s\" of step \"%s\"", key, stepname);
	else
		plan_strfmt(where, sizeof(where), "\"%s\"", key);
	at[0] = '\0';
	if (err->pos > 0)
		plan_strfmt(at, sizeof(at), " at position %d", err->pos);
	plan_strfmt(msg, sizeof(msg), "%s in %s%s: %s",
			 err->code == CE_ERR_SYNTAX ? "syntax error" : "error",
			 where, at, err->message);
	memcpy(err->message, msg, sizeof(err->message));
	plan_strfmt(err->path, sizeof(err->path), "%s", path);
	if (err->code == CE_OK)
		err->code = CE_ERR_SYNTAX;
}

/* Parse a template member; *tpl NULL when text is NULL. */
bool
plan_parse_template(PlanCtx *ctx, const char *text, const char *prefix,
					const char *key, const char *stepname, CeTemplate **tpl)
{
	char		path[PLAN_PATH_LEN];

	*tpl = NULL;
	if (text == NULL)
		return true;
	plan_path_join(path, prefix, key);
	if (strlen(text) > CE_MAX_TEMPLATE_LEN)
	{
		plan_error(ctx, CE_ERR_LIMIT, path,
				   "\"%s\" of step \"%s\" is too long", key, stepname);
		plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
				 "A template has at most %d characters.", CE_MAX_TEMPLATE_LEN);
		return false;
	}
	*tpl = ce_template_parse(text, strlen(text), ctx->err);
	if (*tpl == NULL)
	{
		parse_error(ctx, path, key, stepname);
		return false;
	}
	return true;
}

/* Parse an expression; the error names key and path. */
CeExpr *
plan_parse_expr(PlanCtx *ctx, const char *text, const char *path, const char *key,
				const char *stepname)
{
	CeExpr	   *e;

	if (strlen(text) > CE_MAX_EXPR_LEN)
	{
		plan_error(ctx, CE_ERR_LIMIT, path, "expression in \"%s\" is too long",
				   key);
		plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
				 "An expression has at most %d characters.", CE_MAX_EXPR_LEN);
		return NULL;
	}
	e = ce_expr_parse(text, strlen(text), ctx->err);
	if (e == NULL)
		parse_error(ctx, path, key, stepname);
	return e;
}

/*
 * Get a list of variable names (inputVariables/outputVariables), without
 * duplicates.  "chain" and the action words (continue, skip, fail,
 * skip_to_step_N) are reserved.
 */
bool
plan_get_var_list(PlanCtx *ctx, const CeJson *obj, const char *key,
				  const char *prefix, int *nout, char ***out)
{
	const CeJson *v = cejson_get(obj, key);
	char		path[PLAN_PATH_LEN];
	char		ipath[PLAN_PATH_LEN];
	int			i,
				j,
				n = 0;
	char	  **names;

	*nout = 0;
	*out = NULL;
	if (v == NULL)
		return true;
	plan_path_join(path, prefix, key);
	if (v->type != CEJ_ARRAY)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"%s\" must be an array of strings", key);
		return false;
	}
	if (v->count > PLAN_MAX_VARS)
	{
		plan_error(ctx, CE_ERR_LIMIT, path, "too many names in \"%s\"", key);
		plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
				 "A step lists at most %d variables.", PLAN_MAX_VARS);
		return false;
	}
	names = ce_alloc(sizeof(char *) * (v->count + 1));
	for (i = 0; i < v->count; i++)
	{
		const CeJson *it = v->items[i];
		bool		dup = false;

		plan_strfmt(ipath, sizeof(ipath), "%s[%d]", path, i);
		if (it->type != CEJ_STRING)
		{
			plan_error(ctx, CE_ERR_INVALID, ipath,
					   "\"%s\" must be an array of strings", key);
			return false;
		}
		if (strlen(it->str) != it->len || !valid_var_name(it->str) ||
			it->len > CE_MAX_NAME_LEN)
		{
			char		disp[80];

			plan_key_display(disp, sizeof(disp), it->str, it->len);
			plan_error(ctx, CE_ERR_INVALID, ipath,
					   "invalid variable name \"%s\" in \"%s\"", disp, key);
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "A variable name starts with a letter or \"_\" and "
					 "continues with letters, digits and \"_\", at most %d "
					 "characters.", CE_MAX_NAME_LEN);
			return false;
		}
		if (strcmp(it->str, "chain") == 0)
		{
			plan_error(ctx, CE_ERR_RESERVED, ipath,
					   "variable name \"chain\" is reserved");
			plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "The name \"chain\" holds the built-in variables "
					 "such as chain.execution_id.");
			return false;
		}
		if (ce_expr_is_action_word(it->str, it->len))
		{
			plan_error(ctx, CE_ERR_RESERVED, ipath,
					   "variable name \"%s\" is reserved", it->str);
			plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "continue, skip, fail and skip_to_step_N are action "
					 "words: expressions read them as literals, never as "
					 "variables.");
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "Rename the variable.");
			return false;
		}
		for (j = 0; j < n; j++)
			if (strcmp(names[j], it->str) == 0)
				dup = true;
		if (!dup)
			names[n++] = ce_strndup(it->str, it->len);
	}
	*nout = n;
	*out = names;
	return true;
}

