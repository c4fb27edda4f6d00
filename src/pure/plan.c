/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  Check a chain definition (SPEC section 3) and compile it into a CePlan.
 *
 * ce_plan_build() walks the definition once, key by key, and stops at the
 * first problem, reporting it with an error code, a JSON path such as
 * steps[3].retryConfig.maxRetries and, for expressions and templates, the
 * character position.  A second pass, once every step is known, resolves
 * dependsOn and skip_to_step_N references, computes each step's
 * predecessors (SPEC "Ordering") and rejects dependency cycles.
 *
 * Choices where the SPEC leaves room:
 *	  - A "fallbackStep" without "onFailure" means onFailure "fallback"; a
 *		"fallbackStep" with another explicit "onFailure", and "onFailure"
 *		"fallback" without "fallbackStep", are errors (42P17).
 *	  - A fallback step may not have its own fallback, "dependsOn" or
 *		"parallelExecution" (it runs in place of its step).
 *	  - Step ids and names are unique across steps and fallback steps.
 *	  - Names (chain id, step name, variable names) longer than 63 bytes are
 *		invalid values (22023), like any other name that breaks its pattern.
 *	  - Within a "retryConfig", a missing "maxRetries" is 3, a missing
 *		"baseDelayMs" 1000 and a missing "maxDelayMs" 60000 (or
 *		"baseDelayMs" when that is larger).
 *	  - A "template" step that names an "instructionSet" calls that handler
 *		(SPEC: any type with instructionSet and no sql does), so it needs no
 *		"template"/"templateId"; a "wait" step ignores "instructionSet".
 *	  - At most PLAN_MAX_VARS names in one inputVariables/outputVariables.
 *
 *-------------------------------------------------------------------------
 */
#include "plan.h"
#include "failure.h"
#include "jsonschema.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PLAN_MAX_VARS	256		/* names in one variable list */
#define PLAN_PATH_LEN	CE_ERR_PATH_LEN
#define PLAN_MAX_WARNINGS	100	/* the rest are dropped; duplicates too */

/* Known keys of each object of a definition. */
static const char *const chain_keys[] = {
	"id", "name", "description", "version", "inputSchema", "outputSchema",
	"steps", "rollbackEnabled", "maxExecutionTime", "parallelStepsEnabled",
	"maxConcurrency", "successConditions", "notify", "category",
	"performanceTargets", "retryBudget", "searchPath", "metadata",
	"saveIntermediateResults", NULL
};

static const char *const step_keys[] = {
	"id", "name", "description", "type", "sql", "instructionSet",
	"templateId", "template", "inputTemplate", "inputVariables",
	"outputVariables", "conditionalExecution", "dependsOn",
	"parallelExecution", "retryConfig", "rollbackAction", "onFailure",
	"fallbackStep", "timeoutMs", "waitMs", "maxMemoryMB", "cache",
	"circuitBreaker", "verificationQuery", "metadata", NULL
};

static const char *const retry_keys[] = {
	"maxRetries", "backoffStrategy", "baseDelayMs", "backoffMs",
	"maxDelayMs", "jitter", "retryOnErrors", NULL
};

typedef enum KeyContext
{
	KC_CHAIN,
	KC_STEP,
	KC_RETRY
} KeyContext;

/* Variable name -> indices of the steps that output it (ascending). */
typedef struct VarEntry
{
	const char *name;
	int			n;
	int			cap;
	int		   *steps;
} VarEntry;

typedef struct VarMap
{
	int			cap;			/* power of two */
	VarEntry   *entries;
} VarMap;

/* State of one ce_plan_build() call. */
typedef struct PlanCtx
{
	CeError    *err;
	CeWarnings *warnings;
	CePlan	   *plan;
	/* every step and fallback step parsed so far, for uniqueness */
	int			nall;
	CeStep	  **all;
	char	  **all_paths;
} PlanCtx;

/* ----------------------------------------------------------------
 * Small helpers
 * ----------------------------------------------------------------
 */

/* snprintf that truncates silently (paths and messages are bounded). */
static void
strfmt(char *out, size_t len, const char *fmt,...) pg_attribute_printf(3, 4);

static void
strfmt(char *out, size_t len, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

/* Fill err with code, path and a formatted message; clear pos and hint. */
static void
plan_error(PlanCtx *ctx, CeErrCode code, const char *path,
		   const char *fmt,...) pg_attribute_printf(4, 5);

static void
plan_error(PlanCtx *ctx, CeErrCode code, const char *path,
		   const char *fmt,...)
{
	CeError    *err = ctx->err;
	va_list		ap;

	err->code = code;
	err->pos = 0;
	err->detail[0] = '\0';
	err->hint[0] = '\0';
	strfmt(err->path, sizeof(err->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* Append a warning (when the caller collects them). */
static void
plan_warn(PlanCtx *ctx, const char *fmt,...) pg_attribute_printf(2, 3);

static void
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
static void
path_join(char *out, const char *prefix, const char *key)
{
	if (prefix[0] == '\0')
		strfmt(out, PLAN_PATH_LEN, "%s", key);
	else
		strfmt(out, PLAN_PATH_LEN, "%s.%s", prefix, key);
}

/* A printable copy of a JSON key (stops at NUL, at most 64 bytes). */
static void
key_display(char *out, size_t outlen, const char *key, size_t keylen)
{
	size_t		n = 0;

	while (n < keylen && n + 1 < outlen && n < 64 && key[n] != '\0')
	{
		out[n] = key[n];
		n++;
	}
	out[n] = '\0';
}

/* ASCII lower case. */
static int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive ASCII equality. */
static bool
str_ieq(const char *a, const char *b)
{
	while (*a && *b)
	{
		if (lower((unsigned char) *a) != lower((unsigned char) *b))
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
			int			cost = lower((unsigned char) a[i - 1]) ==
				lower((unsigned char) b[j - 1]) ? 0 : 1;
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
static bool
check_keys(PlanCtx *ctx, const CeJson *obj, KeyContext kc, const char *prefix)
{
	const char *const *list = kc == KC_CHAIN ? chain_keys :
		kc == KC_STEP ? step_keys : retry_keys;
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

		key_display(disp, sizeof(disp), key, keylen);
		path_join(path, prefix, disp);
		plan_error(ctx, CE_ERR_INVALID, path,
				   "unknown key \"%s\" in chain definition", disp);

		/* a key of another object? */
		if (kc != KC_RETRY && in_list(retry_keys, disp))
		{
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "\"%s\" belongs inside a step's \"retryConfig\".", disp);
			return false;
		}
		if (kc == KC_CHAIN && in_list(step_keys, disp))
		{
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "\"%s\" is a key of a step; put it in an element of \"steps\".", disp);
			return false;
		}
		if (kc == KC_STEP && in_list(chain_keys, disp))
		{
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
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
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "did you mean \"%s\"?", best);
		return false;
	}
	return true;
}

/*
 * Get an optional string member; *out NULL when absent.  Rejects other
 * types, embedded NUL characters and (when nonempty) the empty string.
 */
static bool
get_string(PlanCtx *ctx, const CeJson *obj, const char *key,
		   const char *prefix, bool nonempty, char **out)
{
	const CeJson *v = cejson_get(obj, key);
	char		path[PLAN_PATH_LEN];

	*out = NULL;
	if (v == NULL)
		return true;
	path_join(path, prefix, key);
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
static bool
json_integer(const CeJson *v, long long *out)
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
static bool
get_int(PlanCtx *ctx, const CeJson *obj, const char *key, const char *prefix,
		long long min, long long max, int *out, bool *present)
{
	const CeJson *v = cejson_get(obj, key);
	char		path[PLAN_PATH_LEN];
	long long	n;

	if (present)
		*present = false;
	if (v == NULL)
		return true;
	path_join(path, prefix, key);
	if (!json_integer(v, &n))
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
static bool
get_bool(PlanCtx *ctx, const CeJson *obj, const char *key, const char *prefix,
		 bool *out)
{
	const CeJson *v = cejson_get(obj, key);
	char		path[PLAN_PATH_LEN];

	if (v == NULL)
		return true;
	if (v->type != CEJ_BOOL)
	{
		path_join(path, prefix, key);
		plan_error(ctx, CE_ERR_INVALID, path, "\"%s\" must be a boolean", key);
		return false;
	}
	*out = v->boolean;
	return true;
}

/* Get an optional object member, kept as a copy (*out NULL when absent). */
static bool
get_object(PlanCtx *ctx, const CeJson *obj, const char *key,
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
		!(allow_int && json_integer(v, &n)))
	{
		path_join(path, prefix, key);
		plan_error(ctx, CE_ERR_INVALID, path, "\"%s\" must be %s", key,
				   allow_bool ? "an object or a boolean" :
				   allow_int ? "an object or an integer" : "an object");
		return false;
	}
	*out = cejson_copy(v);
	return true;
}

/*
 * Whether s matches [a-z0-9_]+ (step names; also_dot_dash adds "." and
 * "-" for chain ids).
 */
static bool
valid_name_chars(const char *s, bool also_dot_dash)
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
		strfmt(where, sizeof(where), "\"%s\" of step \"%s\"", key, stepname);
	else
		strfmt(where, sizeof(where), "\"%s\"", key);
	at[0] = '\0';
	if (err->pos > 0)
		strfmt(at, sizeof(at), " at position %d", err->pos);
	strfmt(msg, sizeof(msg), "%s in %s%s: %s",
			 err->code == CE_ERR_SYNTAX ? "syntax error" : "error",
			 where, at, err->message);
	memcpy(err->message, msg, sizeof(err->message));
	strfmt(err->path, sizeof(err->path), "%s", path);
	if (err->code == CE_OK)
		err->code = CE_ERR_SYNTAX;
}

/* Parse a template member; *tpl NULL when text is NULL. */
static bool
parse_template(PlanCtx *ctx, const char *text, const char *prefix,
			   const char *key, const char *stepname, CeTemplate **tpl)
{
	char		path[PLAN_PATH_LEN];

	*tpl = NULL;
	if (text == NULL)
		return true;
	path_join(path, prefix, key);
	if (strlen(text) > CE_MAX_TEMPLATE_LEN)
	{
		plan_error(ctx, CE_ERR_LIMIT, path,
				   "\"%s\" of step \"%s\" is too long", key, stepname);
		strfmt(ctx->err->detail, sizeof(ctx->err->detail),
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
static CeExpr *
parse_expr(PlanCtx *ctx, const char *text, const char *path, const char *key,
		   const char *stepname)
{
	CeExpr	   *e;

	if (strlen(text) > CE_MAX_EXPR_LEN)
	{
		plan_error(ctx, CE_ERR_LIMIT, path, "expression in \"%s\" is too long",
				   key);
		strfmt(ctx->err->detail, sizeof(ctx->err->detail),
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
static bool
get_var_list(PlanCtx *ctx, const CeJson *obj, const char *key,
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
	path_join(path, prefix, key);
	if (v->type != CEJ_ARRAY)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"%s\" must be an array of strings", key);
		return false;
	}
	if (v->count > PLAN_MAX_VARS)
	{
		plan_error(ctx, CE_ERR_LIMIT, path, "too many names in \"%s\"", key);
		strfmt(ctx->err->detail, sizeof(ctx->err->detail),
				 "A step lists at most %d variables.", PLAN_MAX_VARS);
		return false;
	}
	names = ce_alloc(sizeof(char *) * (v->count + 1));
	for (i = 0; i < v->count; i++)
	{
		const CeJson *it = v->items[i];
		bool		dup = false;

		strfmt(ipath, sizeof(ipath), "%s[%d]", path, i);
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

			key_display(disp, sizeof(disp), it->str, it->len);
			plan_error(ctx, CE_ERR_INVALID, ipath,
					   "invalid variable name \"%s\" in \"%s\"", disp, key);
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "A variable name starts with a letter or \"_\" and "
					 "continues with letters, digits and \"_\", at most %d "
					 "characters.", CE_MAX_NAME_LEN);
			return false;
		}
		if (strcmp(it->str, "chain") == 0)
		{
			plan_error(ctx, CE_ERR_RESERVED, ipath,
					   "variable name \"chain\" is reserved");
			strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "The name \"chain\" holds the built-in variables "
					 "such as chain.execution_id.");
			return false;
		}
		if (ce_expr_is_action_word(it->str, it->len))
		{
			plan_error(ctx, CE_ERR_RESERVED, ipath,
					   "variable name \"%s\" is reserved", it->str);
			strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "continue, skip, fail and skip_to_step_N are action "
					 "words: expressions read them as literals, never as "
					 "variables.");
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
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

/* ----------------------------------------------------------------
 * Retry settings
 * ----------------------------------------------------------------
 */

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

		if (failure_type != NULL && str_ieq(on, failure_type))
			return true;
		if (ce_failure_word_covers(on, failure_type))
			return true;
		if (sqlstate != NULL && strlen(on) == 5 && strlen(sqlstate) == 5 &&
			str_ieq(on, sqlstate))
			return true;
	}
	return false;
}

/* Parse a "retryConfig" object into r. */
static bool
parse_retry(PlanCtx *ctx, const CeJson *rc, const char *prefix, CeRetry *r)
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

	if (!check_keys(ctx, rc, KC_RETRY, prefix))
		return false;
	if (!get_int(ctx, rc, "maxRetries", prefix, 0, 100, &r->maxRetries, NULL))
		return false;
	if (!get_string(ctx, rc, "backoffStrategy", prefix, false, &strategy))
		return false;
	if (strategy != NULL)
	{
		if (strcmp(strategy, "fixed") == 0)
			r->strategy = CE_BACKOFF_FIXED;
		else if (strcmp(strategy, "linear") == 0)
			r->strategy = CE_BACKOFF_LINEAR;
		else if (strcmp(strategy, "exponential") == 0)
			r->strategy = CE_BACKOFF_EXPONENTIAL;
		else
		{
			path_join(path, prefix, "backoffStrategy");
			plan_error(ctx, CE_ERR_INVALID, path,
					   "invalid value \"%s\" for \"backoffStrategy\"", strategy);
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "Valid values are \"fixed\", \"linear\" and \"exponential\".");
			return false;
		}
	}
	if (!get_int(ctx, rc, "baseDelayMs", prefix, 0, INT_MAX, &r->baseDelayMs,
				 &has_base))
		return false;
	if (!get_int(ctx, rc, "backoffMs", prefix, 0, INT_MAX, &backoff,
				 &has_backoff))
		return false;
	if (has_base && has_backoff)
	{
		path_join(path, prefix, "backoffMs");
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"backoffMs\" and \"baseDelayMs\" cannot both be given");
		strfmt(ctx->err->hint, sizeof(ctx->err->hint),
				 "\"backoffMs\" is another name for \"baseDelayMs\"; keep one.");
		return false;
	}
	if (has_backoff)
		r->baseDelayMs = backoff;
	if (!get_int(ctx, rc, "maxDelayMs", prefix, 0, INT_MAX, &r->maxDelayMs,
				 &has_max))
		return false;
	if (!has_max && r->maxDelayMs < r->baseDelayMs)
		r->maxDelayMs = r->baseDelayMs;
	if (r->maxDelayMs < r->baseDelayMs)
	{
		path_join(path, prefix, "maxDelayMs");
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"maxDelayMs\" must not be less than \"%s\"",
				   has_backoff ? "backoffMs" : "baseDelayMs");
		return false;
	}
	if (!get_bool(ctx, rc, "jitter", prefix, &r->jitter))
		return false;

	on = cejson_get(rc, "retryOnErrors");
	if (on != NULL)
	{
		path_join(path, prefix, "retryOnErrors");
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

			strfmt(ipath, sizeof(ipath), "%s[%d]", path, i);
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

/* ----------------------------------------------------------------
 * Steps
 * ----------------------------------------------------------------
 */

/* Canonical kind name of an enum value. */
static const char *
kind_name(CeStepKind k)
{
	switch (k)
	{
		case CE_STEP_SQL:
			return "sql";
		case CE_STEP_FUNCTION:
			return "function";
		case CE_STEP_TEMPLATE:
			return "template";
		case CE_STEP_EXTERNAL:
			return "external";
		case CE_STEP_WAIT:
			return "wait";
	}
	return "sql";
}

/* Step kind by name or alias; false when unknown. */
bool
ce_step_kind_from_name(const char *name, CeStepKind *kind)
{
	static const struct
	{
		const char *name;
		CeStepKind	kind;
	}			kinds[] = {
		{"sql", CE_STEP_SQL},
		{"database_operation", CE_STEP_SQL},
		{"function", CE_STEP_FUNCTION},
		{"instruction_set", CE_STEP_FUNCTION},
		{"template", CE_STEP_TEMPLATE},
		{"template_processing", CE_STEP_TEMPLATE},
		{"external", CE_STEP_EXTERNAL},
		{"external_api", CE_STEP_EXTERNAL},
		{"wait", CE_STEP_WAIT},
	};
	size_t		i;

	if (name == NULL)
		return false;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
		{
			if (kind)
				*kind = kinds[i].kind;
			return true;
		}
	return false;
}

/* Valid chain id: [a-z0-9_.-]{1,63}. */
bool
ce_valid_chain_id(const char *s)
{
	return s != NULL && strlen(s) <= CE_MAX_NAME_LEN &&
		valid_name_chars(s, true);
}

/* A step key with no effect for the step's kind: a warning. */
static void
warn_irrelevant(PlanCtx *ctx, const CeJson *js, const CeStep *st,
				const char *key)
{
	if (cejson_get(js, key) != NULL)
		plan_warn(ctx, "\"%s\" has no effect on step \"%s\" of type \"%s\"",
				  key, st->name, st->kind_name);
}

/*
 * Register a step's id and name, rejecting duplicates among the steps and
 * fallback steps seen so far.
 */
static bool
register_step(PlanCtx *ctx, CeStep *st, const char *prefix)
{
	char		path[PLAN_PATH_LEN];
	int			i;

	for (i = 0; i < ctx->nall; i++)
	{
		if (ctx->all[i]->id == st->id)
		{
			path_join(path, prefix, "id");
			plan_error(ctx, CE_ERR_DUPLICATE, path, "duplicate step id %d",
					   st->id);
			strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "Step \"%s\" (%s) already has id %d.",
					 ctx->all[i]->name, ctx->all_paths[i], st->id);
			return false;
		}
		if (strcmp(ctx->all[i]->name, st->name) == 0)
		{
			path_join(path, prefix, "name");
			plan_error(ctx, CE_ERR_DUPLICATE, path,
					   "duplicate step name \"%s\"", st->name);
			strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "The step at %s has the same name.", ctx->all_paths[i]);
			return false;
		}
	}
	if ((ctx->nall & (ctx->nall - 1)) == 0)
	{
		int			ncap = ctx->nall == 0 ? 8 : ctx->nall * 2;

		ctx->all = ce_realloc(ctx->all, sizeof(CeStep *) * ctx->nall,
							  sizeof(CeStep *) * ncap);
		ctx->all_paths = ce_realloc(ctx->all_paths, sizeof(char *) * ctx->nall,
									sizeof(char *) * ncap);
	}
	ctx->all[ctx->nall] = st;
	ctx->all_paths[ctx->nall] = ce_strdup(prefix);
	ctx->nall++;
	return true;
}

/*
 * Check and compile one step (or fallback step, is_fallback) at JSON path
 * prefix into st.
 */
/*
 * A handler or template name must be one that chain_register_handler and
 * chain_register_template accept: 1 to 128 of [A-Za-z0-9_.-].
 */
static bool
check_registered_name(PlanCtx *ctx, const char *prefix, const char *key,
					  const char *name)
{
	size_t		i;
	size_t		len;
	char		path[CE_ERR_PATH_LEN];

	if (name == NULL)
		return true;
	len = strlen(name);
	for (i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			break;
	}
	if (len == 0 || len > 128 || i < len)
	{
		path_join(path, prefix, key);
		plan_error(ctx, CE_ERR_INVALID, path, "invalid name \"%s\" in \"%s\"",
				   name, key);
		strfmt(ctx->err->hint, sizeof(ctx->err->hint),
			   "A handler or template name has 1 to 128 letters, digits, \"_\", \".\" or \"-\".");
		return false;
	}
	return true;
}

static bool
parse_step(PlanCtx *ctx, const CeJson *js, const char *prefix, CeStep *st,
		   bool is_fallback)
{
	char		path[PLAN_PATH_LEN];
	char		sub[PLAN_PATH_LEN];
	char	   *type;
	char	   *onfail;
	const CeJson *v;
	bool		present;
	bool		onfail_given = false;
	int			i;

	if (js->type != CEJ_OBJECT)
	{
		plan_error(ctx, CE_ERR_INVALID, prefix,
				   is_fallback ? "\"fallbackStep\" must be an object" :
				   "each element of \"steps\" must be an object");
		return false;
	}
	if (!check_keys(ctx, js, KC_STEP, prefix))
		return false;

	/* id */
	path_join(path, prefix, "id");
	if (cejson_get(js, "id") == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "missing required key \"id\" in step");
		return false;
	}
	if (!get_int(ctx, js, "id", prefix, 1, INT_MAX, &st->id, NULL))
		return false;

	/* name */
	path_join(path, prefix, "name");
	if (cejson_get(js, "name") == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "missing required key \"name\" in step %d", st->id);
		return false;
	}
	if (!get_string(ctx, js, "name", prefix, true, &st->name))
		return false;
	if (strlen(st->name) > CE_MAX_NAME_LEN || !valid_name_chars(st->name, false))
	{
		char		disp[80];
		char		sugg[80];
		size_t		k;
		bool		ok = true;

		key_display(disp, sizeof(disp), st->name, strlen(st->name));
		plan_error(ctx, CE_ERR_INVALID, path, "invalid step name \"%s\"", disp);
		if (strlen(st->name) > CE_MAX_NAME_LEN)
			strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "A step name has at most %d characters.", CE_MAX_NAME_LEN);
		/* suggest the lower-case, underscored spelling when there is one */
		key_display(sugg, sizeof(sugg), st->name, strlen(st->name));
		for (k = 0; sugg[k]; k++)
		{
			sugg[k] = (char) lower((unsigned char) sugg[k]);
			if (sugg[k] == '-' || sugg[k] == ' ' || sugg[k] == '.')
				sugg[k] = '_';
			if (!((sugg[k] >= 'a' && sugg[k] <= 'z') ||
				  (sugg[k] >= '0' && sugg[k] <= '9') || sugg[k] == '_'))
				ok = false;
		}
		if (ok && strlen(st->name) <= CE_MAX_NAME_LEN)
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "A step name consists of lower-case letters, digits and "
					 "\"_\", e.g. \"%s\".", sugg);
		else
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "A step name consists of lower-case letters, digits and "
					 "\"_\".");
		return false;
	}
	if (!register_step(ctx, st, prefix))
		return false;

	if (!get_string(ctx, js, "description", prefix, false, &st->description))
		return false;

	/* type */
	path_join(path, prefix, "type");
	if (cejson_get(js, "type") == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "missing required key \"type\" in step \"%s\"", st->name);
		strfmt(ctx->err->hint, sizeof(ctx->err->hint),
				 "Valid types are \"sql\", \"function\", \"template\", "
				 "\"external\" and \"wait\".");
		return false;
	}
	if (!get_string(ctx, js, "type", prefix, false, &type))
		return false;
	if (!ce_step_kind_from_name(type, &st->kind))
	{
		char		disp[80];

		key_display(disp, sizeof(disp), type, strlen(type));
		plan_error(ctx, CE_ERR_INVALID, path, "unknown step type \"%s\"", disp);
		strfmt(ctx->err->hint, sizeof(ctx->err->hint),
				 "Valid types are \"sql\", \"function\", \"template\", "
				 "\"external\" and \"wait\" (or \"database_operation\", "
				 "\"instruction_set\", \"template_processing\", "
				 "\"external_api\").");
		return false;
	}
	st->kind_name = kind_name(st->kind);

	/* texts */
	if (!get_string(ctx, js, "sql", prefix, true, &st->sql) ||
		!get_string(ctx, js, "instructionSet", prefix, true,
					&st->instruction_set) ||
		!get_string(ctx, js, "templateId", prefix, true, &st->template_id) ||
		!get_string(ctx, js, "template", prefix, false, &st->template_text) ||
		!get_string(ctx, js, "inputTemplate", prefix, false,
					&st->input_template) ||
		!get_string(ctx, js, "conditionalExecution", prefix, true,
					&st->condition) ||
		!get_string(ctx, js, "rollbackAction", prefix, true,
					&st->rollback_action) ||
		!get_string(ctx, js, "verificationQuery", prefix, true,
					&st->verification_query))
		return false;

	/* handler and template names: as chain_register_handler/_template accept */
	if (!check_registered_name(ctx, prefix, "instructionSet", st->instruction_set) ||
		!check_registered_name(ctx, prefix, "templateId", st->template_id))
		return false;

	if (!get_var_list(ctx, js, "inputVariables", prefix, &st->ninput_vars,
					  &st->input_vars) ||
		!get_var_list(ctx, js, "outputVariables", prefix, &st->noutput_vars,
					  &st->output_vars))
		return false;

	/* dependsOn: ids as written, resolved once all steps are known */
	v = cejson_get(js, "dependsOn");
	if (v != NULL)
	{
		path_join(path, prefix, "dependsOn");
		if (is_fallback)
		{
			plan_error(ctx, CE_ERR_DEFINITION, path,
					   "fallback step \"%s\" cannot have \"dependsOn\"",
					   st->name);
			strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "A fallback step runs in place of its step, when that "
					 "step has failed.");
			return false;
		}
		if (v->type != CEJ_ARRAY)
		{
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"dependsOn\" must be an array of step ids");
			return false;
		}
		if (v->count > CE_MAX_STEPS)
		{
			plan_error(ctx, CE_ERR_LIMIT, path, "too many entries in \"dependsOn\"");
			return false;
		}
		st->depends_on = ce_alloc(sizeof(int) * (v->count + 1));
		for (i = 0; i < v->count; i++)
		{
			long long	n;
			int			j;
			bool		dup = false;

			strfmt(sub, sizeof(sub), "%s[%d]", path, i);
			if (!json_integer(v->items[i], &n) || n < 1 || n > INT_MAX)
			{
				plan_error(ctx, CE_ERR_INVALID, sub,
						   "\"dependsOn\" must be an array of step ids");
				strfmt(ctx->err->detail, sizeof(ctx->err->detail),
						 "A step id is a positive integer.");
				return false;
			}
			for (j = 0; j < st->ndepends_on; j++)
				if (st->depends_on[j] == (int) n)
					dup = true;
			if (!dup)
				st->depends_on[st->ndepends_on++] = (int) n;
		}
	}

	if (cejson_get(js, "parallelExecution") != NULL && is_fallback)
	{
		path_join(path, prefix, "parallelExecution");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "fallback step \"%s\" cannot have \"parallelExecution\"",
				   st->name);
		return false;
	}
	if (!get_bool(ctx, js, "parallelExecution", prefix, &st->parallel))
		return false;

	/* retry */
	v = cejson_get(js, "retryConfig");
	if (v != NULL)
	{
		path_join(path, prefix, "retryConfig");
		if (v->type != CEJ_OBJECT)
		{
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"retryConfig\" must be an object");
			return false;
		}
		if (!parse_retry(ctx, v, path, &st->retry))
			return false;
	}
	else
		ce_retry_default(st->kind, &st->retry);

	/* numbers */
	if (!get_int(ctx, js, "timeoutMs", prefix, 1, INT_MAX, &st->timeout_ms,
				 NULL) ||
		!get_int(ctx, js, "waitMs", prefix, 0, INT_MAX, &st->wait_ms,
				 &present) ||
		!get_int(ctx, js, "maxMemoryMB", prefix, 1, INT_MAX,
				 &st->max_memory_mb, NULL))
		return false;

	if (!get_object(ctx, js, "cache", prefix, true, false, &st->cache) ||
		!get_object(ctx, js, "circuitBreaker", prefix, true, false,
					&st->circuit_breaker) ||
		!get_object(ctx, js, "metadata", prefix, false, false, &st->metadata))
		return false;

	/* kind requirements */
	switch (st->kind)
	{
		case CE_STEP_SQL:
			if (st->sql == NULL && st->instruction_set == NULL)
			{
				path_join(path, prefix, "sql");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" of type \"sql\" needs \"sql\" or \"instructionSet\"",
						   st->name);
				return false;
			}
			break;
		case CE_STEP_FUNCTION:
			if (st->instruction_set == NULL)
			{
				path_join(path, prefix, "instructionSet");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" of type \"function\" needs \"instructionSet\"",
						   st->name);
				strfmt(ctx->err->hint, sizeof(ctx->err->hint),
						 "Name a handler registered with chain_register_handler().");
				return false;
			}
			break;
		case CE_STEP_TEMPLATE:
			if (st->template_text != NULL && st->template_id != NULL)
			{
				path_join(path, prefix, "templateId");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" has both \"template\" and \"templateId\"",
						   st->name);
				strfmt(ctx->err->hint, sizeof(ctx->err->hint),
						 "Give an inline \"template\" or the \"templateId\" of a registered one, not both.");
				return false;
			}
			if (st->template_text == NULL && st->template_id == NULL &&
				st->instruction_set == NULL)
			{
				path_join(path, prefix, "template");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" of type \"template\" needs \"template\" or \"templateId\"",
						   st->name);
				return false;
			}
			break;
		case CE_STEP_WAIT:
			if (!present)
			{
				path_join(path, prefix, "waitMs");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" of type \"wait\" needs \"waitMs\"",
						   st->name);
				return false;
			}
			break;
		case CE_STEP_EXTERNAL:
			break;
	}

	/* keys that make no sense for the kind: warnings */
	if (st->kind != CE_STEP_WAIT)
		warn_irrelevant(ctx, js, st, "waitMs");
	if (st->kind != CE_STEP_SQL)
		warn_irrelevant(ctx, js, st, "sql");
	if (st->kind != CE_STEP_TEMPLATE)
	{
		warn_irrelevant(ctx, js, st, "template");
		warn_irrelevant(ctx, js, st, "templateId");
	}
	if (st->kind == CE_STEP_WAIT)
	{
		warn_irrelevant(ctx, js, st, "instructionSet");
		warn_irrelevant(ctx, js, st, "inputTemplate");
		warn_irrelevant(ctx, js, st, "timeoutMs");
		warn_irrelevant(ctx, js, st, "maxMemoryMB");
		st->instruction_set = NULL;
	}
	if (st->kind == CE_STEP_SQL && st->sql != NULL &&
		st->instruction_set != NULL)
	{
		plan_warn(ctx, "\"instructionSet\" of step \"%s\" is ignored because the step has \"sql\"",
				  st->name);
		st->instruction_set = NULL;
	}

	/* parse texts */
	if (!parse_template(ctx, st->sql, prefix, "sql", st->name, &st->sql_tpl) ||
		!parse_template(ctx, st->template_text, prefix, "template", st->name,
						&st->template_tpl) ||
		!parse_template(ctx, st->input_template, prefix, "inputTemplate",
						st->name, &st->input_tpl))
		return false;

	if (st->rollback_action != NULL)
	{
		const char *p;

		st->rollback_is_handler = true;
		for (p = st->rollback_action; *p; p++)
			if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
				  (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
				  *p == '-'))
				st->rollback_is_handler = false;
		if (!st->rollback_is_handler &&
			!parse_template(ctx, st->rollback_action, prefix, "rollbackAction",
							st->name, &st->rollback_tpl))
			return false;
	}

	if (st->condition != NULL)
	{
		char	  **vars;
		int			nvars;
		int			j,
					k;

		path_join(path, prefix, "conditionalExecution");
		st->condition_expr = parse_expr(ctx, st->condition, path,
										"conditionalExecution", st->name);
		if (st->condition_expr == NULL)
			return false;
		nvars = ce_expr_variables(st->condition_expr, &vars);
		for (j = 0; j < nvars; j++)
			for (k = 0; k < st->noutput_vars; k++)
				if (strcmp(vars[j], st->output_vars[k]) == 0)
					st->condition_is_routing = true;
	}

	/* onFailure and fallbackStep */
	if (!get_string(ctx, js, "onFailure", prefix, false, &onfail))
		return false;
	st->on_failure = CE_ONFAIL_FAIL;
	if (onfail != NULL)
	{
		onfail_given = true;
		if (strcmp(onfail, "fail") == 0)
			st->on_failure = CE_ONFAIL_FAIL;
		else if (strcmp(onfail, "warn") == 0)
			st->on_failure = CE_ONFAIL_WARN;
		else if (strcmp(onfail, "skip") == 0)
			st->on_failure = CE_ONFAIL_SKIP;
		else if (strcmp(onfail, "fallback") == 0)
			st->on_failure = CE_ONFAIL_FALLBACK;
		else
		{
			char		disp[80];

			key_display(disp, sizeof(disp), onfail, strlen(onfail));
			path_join(path, prefix, "onFailure");
			plan_error(ctx, CE_ERR_INVALID, path,
					   "invalid value \"%s\" for \"onFailure\"", disp);
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "Valid values are \"fail\", \"warn\", \"skip\" and \"fallback\".");
			return false;
		}
	}
	v = cejson_get(js, "fallbackStep");
	if (is_fallback && (st->on_failure == CE_ONFAIL_FALLBACK || v != NULL))
	{
		path_join(path, prefix, v != NULL ? "fallbackStep" : "onFailure");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "fallback step \"%s\" cannot have a fallback step of its own",
				   st->name);
		return false;
	}
	if (v != NULL)
	{
		path_join(path, prefix, "fallbackStep");
		if (onfail_given && st->on_failure != CE_ONFAIL_FALLBACK)
		{
			plan_error(ctx, CE_ERR_DEFINITION, path,
					   "step \"%s\" has a \"fallbackStep\" but \"onFailure\" is \"%s\"",
					   st->name, onfail);
			strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					 "Set \"onFailure\" to \"fallback\" or remove \"fallbackStep\".");
			return false;
		}
		st->on_failure = CE_ONFAIL_FALLBACK;
		st->fallback = ce_alloc(sizeof(CeStep));
		st->fallback->index = -1;
		if (!parse_step(ctx, v, path, st->fallback, true))
			return false;
	}
	else if (st->on_failure == CE_ONFAIL_FALLBACK)
	{
		path_join(path, prefix, "fallbackStep");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "step \"%s\" has \"onFailure\" \"fallback\" but no \"fallbackStep\"",
				   st->name);
		return false;
	}
	return true;
}

/* ----------------------------------------------------------------
 * Variable map (outputs -> producing steps)
 * ----------------------------------------------------------------
 */

/* FNV-1a hash of a string. */
static unsigned int
hash_str(const char *s)
{
	unsigned int h = 2166136261u;

	while (*s)
	{
		h ^= (unsigned char) *s++;
		h *= 16777619u;
	}
	return h;
}

/* The entry of name (created when create), or NULL. */
static VarEntry *
varmap_find(VarMap *m, const char *name, bool create)
{
	unsigned int i = hash_str(name) & (unsigned int) (m->cap - 1);

	for (;;)
	{
		VarEntry   *e = &m->entries[i];

		if (e->name == NULL)
		{
			if (!create)
				return NULL;
			e->name = name;
			return e;
		}
		if (strcmp(e->name, name) == 0)
			return e;
		i = (i + 1) & (unsigned int) (m->cap - 1);
	}
}

/* Record that step index idx outputs name. */
static void
varmap_add(VarMap *m, const char *name, int idx)
{
	VarEntry   *e = varmap_find(m, name, true);

	if (e->n > 0 && e->steps[e->n - 1] == idx)
		return;
	if (e->n == e->cap)
	{
		int			ncap = e->cap ? e->cap * 2 : 4;

		e->steps = ce_realloc(e->steps, sizeof(int) * e->cap,
							  sizeof(int) * ncap);
		e->cap = ncap;
	}
	e->steps[e->n++] = idx;
}

/*
 * Whether a step's outputs are open-ended: it declares no outputVariables
 * but may still set variables (rows of a query, keys a handler returns).
 */
static bool
outputs_open(const CeStep *st)
{
	if (st->noutput_vars > 0)
		return false;
	if (st->kind == CE_STEP_WAIT)
		return false;
	if (st->kind == CE_STEP_TEMPLATE && st->instruction_set == NULL)
		return false;
	return true;
}

/* ----------------------------------------------------------------
 * Second pass: references, ordering, cycles
 * ----------------------------------------------------------------
 */

/* Index of the (top-level) step with id, -1 when none. */
static int
step_index(const CePlan *plan, int id)
{
	int			i;

	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].id == id)
			return i;
	return -1;
}

/*
 * Check every skip_to_step_N in a condition: N must be a step that comes
 * after index self in array order.
 */
static bool
check_skip_targets(PlanCtx *ctx, const CeStep *st, int self,
				   const char *prefix)
{
	static const char pat[] = "skip_to_step_";
	const char *text = st->condition;
	const char *p = text;
	char		path[PLAN_PATH_LEN];

	if (text == NULL)
		return true;
	path_join(path, prefix, "conditionalExecution");
	while ((p = strstr(p, pat)) != NULL)
	{
		const char *q = p + sizeof(pat) - 1;
		const char *digits = q;
		long long	n = 0;
		int			target;
		bool		word_start;

		word_start = p == text ||
			!((p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= 'a' && p[-1] <= 'z') ||
			  (p[-1] >= '0' && p[-1] <= '9') || p[-1] == '_');
		while (*q >= '0' && *q <= '9')
		{
			if (n < 10000000000LL)
				n = n * 10 + (*q - '0');
			q++;
		}
		if (!word_start || q == digits ||
			(*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || *q == '_')
		{
			p = q > p ? q : p + 1;
			continue;
		}
		target = n <= INT_MAX ? step_index(ctx->plan, (int) n) : -1;
		if (target < 0)
		{
			plan_error(ctx, CE_ERR_REFERENCE, path,
					   "step \"%s\" skips to unknown step %lld", st->name, n);
			ctx->err->pos = (int) (p - text) + 1;
			if (n <= INT_MAX && ce_plan_step_by_id(ctx->plan, (int) n) != NULL)
				strfmt(ctx->err->detail, sizeof(ctx->err->detail),
						 "Step %lld is a fallback step.", n);
			return false;
		}
		if (target <= self)
		{
			plan_error(ctx, CE_ERR_DEFINITION, path,
					   "step \"%s\" cannot skip to step %lld, which does not come after it",
					   st->name, n);
			ctx->err->pos = (int) (p - text) + 1;
			strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "skip_to_step_N only skips forward, in the order of \"steps\".");
			return false;
		}
		p = q;
	}
	return true;
}

/*
 * Whether every step that sets variable name (its outputVariables or its
 * fallback's) lies in [lo, hi) of array order; false when none sets it or
 * the input schema declares it.
 */
static bool
set_only_within(VarMap *map, const CeJson *input_props, const char *name,
				int lo, int hi)
{
	VarEntry   *e = varmap_find(map, name, false);
	int			j;

	if (e == NULL || e->n == 0 ||
		(input_props != NULL && cejson_get(input_props, name) != NULL))
		return false;
	for (j = 0; j < e->n; j++)
		if (e->steps[j] < lo || e->steps[j] >= hi)
			return false;
	return true;
}

/*
 * Warn when a step after a skip_to_step_N jump, or a success condition,
 * reads a variable that only the steps the jump skips set: when the jump
 * is taken the step fails with insufficient_data (its onFailure applies)
 * and the condition sees null.  The design documents' chains do both, so
 * chain_validate says so.
 */
static void
warn_skipped_reads(PlanCtx *ctx, VarMap *map, const CeJson *input_props)
{
	static const char pat[] = "skip_to_step_";
	CePlan	   *plan = ctx->plan;
	int			i;

	for (i = 0; i < plan->nsteps; i++)
	{
		const CeStep *st = &plan->steps[i];
		const char *text = st->condition;
		const char *p = text;
		int			seen[8];
		int			nseen = 0;

		if (text == NULL)
			continue;
		while ((p = strstr(p, pat)) != NULL && nseen < 8)
		{
			const char *q = p + sizeof(pat) - 1;
			long long	n = 0;
			int			target;
			int			lo;
			int			r,
						k,
						c;

			while (*q >= '0' && *q <= '9')
			{
				if (n < 10000000000LL)
					n = n * 10 + (*q - '0');
				q++;
			}
			if (q == p + sizeof(pat) - 1 || n > INT_MAX)
			{
				p = q;
				continue;
			}
			p = q;
			target = step_index(plan, (int) n);
			if (target <= i)
				continue;
			for (k = 0; k < nseen && seen[k] != target; k++)
				;
			if (k < nseen)
				continue;
			seen[nseen++] = target;
			/* a routing decision skips the steps after it; else it too */
			lo = st->condition_is_routing ? i + 1 : i;
			if (lo >= target)
				continue;
			for (r = target; r < plan->nsteps; r++)
			{
				const CeStep *rd = &plan->steps[r];

				for (k = 0; k < rd->ninput_vars; k++)
					if (set_only_within(map, input_props, rd->input_vars[k], lo, target))
						plan_warn(ctx, "step \"%s\" reads \"%s\", which only steps that step \"%s\" skips with skip_to_step_%lld set: "
								  "after that jump it fails with insufficient_data if it runs",
								  rd->name, rd->input_vars[k], st->name, n);
			}
			for (c = 0; c < plan->nsuccess; c++)
			{
				char	  **vars;
				int			nv = ce_expr_variables(plan->success_expr[c], &vars);

				for (k = 0; k < nv; k++)
					if (set_only_within(map, input_props, vars[k], lo, target))
						plan_warn(ctx, "success condition \"%s\" reads \"%s\", which only steps that step \"%s\" skips with skip_to_step_%lld set: "
								  "after that jump it is null",
								  plan->success_text[c], vars[k], st->name, n);
			}
		}
	}
}

/* Report the cycle cyc[0] -> ... -> cyc[n-1] -> cyc[0]. */
static void
report_cycle(PlanCtx *ctx, const int *cyc, int n)
{
	CePlan	   *plan = ctx->plan;
	CeBuf		b;
	char		path[PLAN_PATH_LEN];
	int			start = 0;
	int			k;

	/* start at the step whose dependsOn points forward (or to itself) */
	for (k = 0; k < n; k++)
		if (cyc[(k + 1) % n] >= cyc[k])
		{
			start = k;
			break;
		}
	ce_buf_init(&b);
	ce_buf_appends(&b, "dependency cycle among steps: ");
	for (k = 0; k <= n; k++)
	{
		if (k > 0)
			ce_buf_appends(&b, " -> ");
		if (k > 8 && k < n)
		{
			ce_buf_appends(&b, "...");
			k = n - 1;
			continue;
		}
		ce_buf_printf(&b, "\"%s\"", plan->steps[cyc[(start + k) % n]].name);
	}
	strfmt(path, sizeof(path), "steps[%d].dependsOn", cyc[start]);
	plan_error(ctx, CE_ERR_DEFINITION, path, "%s", b.data);
	strfmt(ctx->err->detail, sizeof(ctx->err->detail),
			 "A step waits for the steps in its \"dependsOn\", for earlier "
			 "steps that set its \"inputVariables\", and, unless it has "
			 "\"dependsOn\" or \"parallelExecution\", for the step before it.");
}

/* Find a cycle in the preds graph (iterative DFS); false when one exists. */
static bool
check_cycles(PlanCtx *ctx)
{
	CePlan	   *plan = ctx->plan;
	int			n = plan->nsteps;
	char	   *color = ce_alloc(n);
	int		   *stack = ce_alloc(sizeof(int) * n);
	int		   *next = ce_alloc(sizeof(int) * n);
	int			s;

	for (s = 0; s < n; s++)
	{
		int			sp = 0;

		if (color[s] != 0)
			continue;
		stack[sp++] = s;
		color[s] = 1;
		next[s] = 0;
		while (sp > 0)
		{
			int			u = stack[sp - 1];
			CeStep	   *st = &plan->steps[u];

			if (next[u] < st->npreds)
			{
				int			v = st->preds[next[u]++];

				if (color[v] == 0)
				{
					color[v] = 1;
					next[v] = 0;
					stack[sp++] = v;
				}
				else if (color[v] == 1)
				{
					int			k = sp - 1;

					while (stack[k] != v)
						k--;
					report_cycle(ctx, &stack[k], sp - k);
					return false;
				}
			}
			else
			{
				color[u] = 2;
				sp--;
			}
		}
	}
	return true;
}

/*
 * Data dependencies come from inputVariables only (SPEC "Ordering").  Warn
 * about a step that reads a variable in its SQL, templates or condition
 * without listing it, when no earlier step that sets it is sure to have
 * finished first: the step may then run before the value exists.
 */
static void
warn_unordered_reads(PlanCtx *ctx, VarMap *map)
{
	CePlan	   *plan = ctx->plan;
	int			n = plan->nsteps;
	char	   *reach = ce_alloc((size_t) n * n);	/* reach[i*n+j]: j before i */
	int		   *stack = ce_alloc(sizeof(int) * (n + 1));
	int			i;

	for (i = 0; i < n; i++)
	{
		int			top = 0;
		int			k;

		for (k = 0; k < plan->steps[i].npreds; k++)
			stack[top++] = plan->steps[i].preds[k];
		while (top > 0)
		{
			int			j = stack[--top];

			if (reach[(size_t) i * n + j])
				continue;
			reach[(size_t) i * n + j] = 1;
			for (k = 0; k < plan->steps[j].npreds && top < n; k++)
				if (!reach[(size_t) i * n + plan->steps[j].preds[k]])
					stack[top++] = plan->steps[j].preds[k];
		}
	}

	for (i = 0; i < n; i++)
	{
		CeStep	   *st = &plan->steps[i];
		char	  **names[4];
		int			counts[4] = {0, 0, 0, 0};
		int			g;

		if (st->sql_tpl)
			counts[0] = ce_template_variables(st->sql_tpl, &names[0]);
		if (st->template_tpl)
			counts[1] = ce_template_variables(st->template_tpl, &names[1]);
		if (st->input_tpl)
			counts[2] = ce_template_variables(st->input_tpl, &names[2]);
		if (st->condition_expr && !st->condition_is_routing)
			counts[3] = ce_expr_variables(st->condition_expr, &names[3]);

		for (g = 0; g < 4; g++)
		{
			int			k;

			for (k = 0; k < counts[g]; k++)
			{
				const char *v = names[g][k];
				VarEntry   *e;
				int			j;
				int			setter = -1;
				bool		ordered = false;
				bool		listed = false;

				if (strcmp(v, "chain") == 0)
					continue;
				for (j = 0; j < st->ninput_vars; j++)
					if (strcmp(st->input_vars[j], v) == 0)
						listed = true;
				if (listed)
					continue;
				e = varmap_find(map, v, false);
				if (e == NULL)
					continue;
				for (j = 0; j < e->n && e->steps[j] < i; j++)
				{
					if (setter < 0)
						setter = e->steps[j];
					if (reach[(size_t) i * n + e->steps[j]])
						ordered = true;
				}
				if (setter >= 0 && !ordered)
					plan_warn(ctx, "step \"%s\" reads \"%s\", which step \"%s\" sets, but does not list it in \"inputVariables\", so it may run before \"%s\"",
							  st->name, v, plan->steps[setter].name, plan->steps[setter].name);
			}
		}
	}
}

/*
 * Resolve references and compute predecessors (SPEC "Ordering"), then
 * reject cycles and collect data-flow warnings.
 */
static bool
plan_order(PlanCtx *ctx, const CeJson *input_props)
{
	CePlan	   *plan = ctx->plan;
	int			n = plan->nsteps;
	char	   *mark = ce_alloc(n + 1);
	int		   *open_before = ce_alloc(sizeof(int) * (n + 1));
	VarMap		map;
	int			total = 0;
	int			i,
				j,
				k;
	char		prefix[PLAN_PATH_LEN];
	char		path[PLAN_PATH_LEN];

	/* outputs -> producers */
	for (i = 0; i < n; i++)
	{
		total += plan->steps[i].noutput_vars;
		if (plan->steps[i].fallback)
			total += plan->steps[i].fallback->noutput_vars;
	}
	map.cap = 16;
	while (map.cap < total * 2)
		map.cap *= 2;
	map.entries = ce_alloc(sizeof(VarEntry) * map.cap);
	for (i = 0; i < n; i++)
	{
		CeStep	   *st = &plan->steps[i];

		for (k = 0; k < st->noutput_vars; k++)
			varmap_add(&map, st->output_vars[k], i);
		if (st->fallback)
			for (k = 0; k < st->fallback->noutput_vars; k++)
				varmap_add(&map, st->fallback->output_vars[k], i);
	}
	/* open_before[i]: some step before i may set undeclared variables */
	for (i = 0; i < n; i++)
		open_before[i + 1] = open_before[i] ||
			outputs_open(&plan->steps[i]) ||
			(plan->steps[i].fallback && outputs_open(plan->steps[i].fallback));

	for (i = 0; i < n; i++)
	{
		CeStep	   *st = &plan->steps[i];
		int			np = 0;

		strfmt(prefix, sizeof(prefix), "steps[%d]", i);
		memset(mark, 0, n);

		/* 1. dependsOn */
		for (k = 0; k < st->ndepends_on; k++)
		{
			int			target = step_index(plan, st->depends_on[k]);

			strfmt(path, sizeof(path), "%s.dependsOn", prefix);
			if (target < 0)
			{
				if (ce_plan_step_by_id(plan, st->depends_on[k]) != NULL)
				{
					plan_error(ctx, CE_ERR_DEFINITION, path,
							   "step \"%s\" depends on fallback step %d",
							   st->name, st->depends_on[k]);
					strfmt(ctx->err->detail, sizeof(ctx->err->detail),
							 "A fallback step runs only in place of its step; depend on that step instead.");
				}
				else
					plan_error(ctx, CE_ERR_REFERENCE, path,
							   "step \"%s\" depends on unknown step %d",
							   st->name, st->depends_on[k]);
				return false;
			}
			mark[target] = 1;
		}

		/* 2. data dependencies on earlier steps */
		for (k = 0; k < st->ninput_vars; k++)
		{
			VarEntry   *e = varmap_find(&map, st->input_vars[k], false);
			bool		set_before = false;

			if (e != NULL)
				for (j = 0; j < e->n && e->steps[j] < i; j++)
				{
					mark[e->steps[j]] = 1;
					set_before = true;
				}
			/* also a forward dependsOn target that sets it */
			if (e != NULL && !set_before)
				for (j = 0; j < e->n; j++)
					if (mark[e->steps[j]])
						set_before = true;
			if (!set_before && !open_before[i] && input_props != NULL &&
				cejson_get(input_props, st->input_vars[k]) == NULL)
				plan_warn(ctx, "step \"%s\" reads \"%s\", which no earlier step sets and the input schema does not declare",
						  st->name, st->input_vars[k]);
		}

		/* 3. the previous step */
		if (i > 0 &&
			(!plan->parallel_enabled ||
			 (st->ndepends_on == 0 && !st->parallel)))
			mark[i - 1] = 1;

		for (j = 0; j < n; j++)
			if (mark[j])
				np++;
		st->preds = ce_alloc(sizeof(int) * (np + 1));
		for (j = 0; j < n; j++)
			if (mark[j])
				st->preds[st->npreds++] = j;

		if (!check_skip_targets(ctx, st, i, prefix))
			return false;
		if (st->fallback)
		{
			strfmt(path, sizeof(path), "%s.fallbackStep", prefix);
			if (!check_skip_targets(ctx, st->fallback, i, path))
				return false;
		}
	}
	if (!check_cycles(ctx))
		return false;
	warn_unordered_reads(ctx, &map);
	warn_skipped_reads(ctx, &map, input_props);
	return true;
}

/* ----------------------------------------------------------------
 * The chain
 * ----------------------------------------------------------------
 */

/* Check and compile a definition (see plan.h). */
CePlan *
ce_plan_build(const CeJson *def, CeError *err, CeWarnings *warnings)
{
	CeError		dummy;
	PlanCtx		ctx;
	CePlan	   *plan;
	const CeJson *v;
	const CeJson *input_props = NULL;
	char	   *notify;
	char		path[PLAN_PATH_LEN];
	int			i;

	if (err == NULL)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	memset(&ctx, 0, sizeof(ctx));
	ctx.err = err;
	ctx.warnings = warnings;
	plan = ce_alloc(sizeof(CePlan));
	ctx.plan = plan;

	if (def == NULL || def->type != CEJ_OBJECT)
	{
		plan_error(&ctx, CE_ERR_INVALID, "",
				   "a chain definition must be a JSON object");
		return NULL;
	}
	if (!check_keys(&ctx, def, KC_CHAIN, ""))
		return NULL;

	/* id */
	if (cejson_get(def, "id") == NULL)
	{
		plan_error(&ctx, CE_ERR_INVALID, "id",
				   "missing required key \"id\" in chain definition");
		return NULL;
	}
	if (!get_string(&ctx, def, "id", "", false, &plan->id))
		return NULL;
	if (!ce_valid_chain_id(plan->id))
	{
		char		disp[80];

		key_display(disp, sizeof(disp), plan->id, strlen(plan->id));
		plan_error(&ctx, CE_ERR_INVALID, "id", "invalid chain id \"%s\"", disp);
		strfmt(err->hint, sizeof(err->hint),
				 "A chain id consists of 1 to %d lower-case letters, digits, "
				 "\"_\", \".\" and \"-\".", CE_MAX_NAME_LEN);
		return NULL;
	}

	if (!get_string(&ctx, def, "name", "", false, &plan->name) ||
		!get_string(&ctx, def, "description", "", false, &plan->description) ||
		!get_string(&ctx, def, "category", "", false, &plan->category) ||
		!get_string(&ctx, def, "searchPath", "", true, &plan->search_path))
		return NULL;

	v = cejson_get(def, "version");
	if (v != NULL)
	{
		if (v->type == CEJ_STRING && strlen(v->str) == v->len)
			plan->version_label = ce_strndup(v->str, v->len);
		else if (v->type == CEJ_NUMBER)
			plan->version_label = v->str ? ce_strndup(v->str, v->len) :
				ce_strdup("");
		else
		{
			plan_error(&ctx, CE_ERR_INVALID, "version",
					   "\"version\" must be a string or a number");
			return NULL;
		}
	}

	/* schemas */
	if (!get_object(&ctx, def, "inputSchema", "", false, false,
					&plan->input_schema) ||
		!get_object(&ctx, def, "outputSchema", "", false, false,
					&plan->output_schema))
		return NULL;
	if (plan->input_schema != NULL &&
		!ce_schema_check(plan->input_schema, "inputSchema", NULL, err))
	{
		if (err->path[0] == '\0')
			strfmt(err->path, sizeof(err->path), "inputSchema");
		if (err->code == CE_OK)
			err->code = CE_ERR_INVALID;
		return NULL;
	}
	if (plan->output_schema != NULL &&
		!ce_schema_check(plan->output_schema, "outputSchema", NULL, err))
	{
		if (err->path[0] == '\0')
			strfmt(err->path, sizeof(err->path), "outputSchema");
		if (err->code == CE_OK)
			err->code = CE_ERR_INVALID;
		return NULL;
	}
	if (plan->input_schema != NULL)
	{
		input_props = cejson_get(plan->input_schema, "properties");
		if (input_props != NULL && input_props->type != CEJ_OBJECT)
			input_props = NULL;
		else if (input_props == NULL)
			input_props = cejson_new(CEJ_OBJECT);
	}

	/* settings */
	plan->parallel_enabled = true;
	plan->save_intermediate = true;
	plan->notify = CE_NOTIFY_STEPS;
	if (!get_bool(&ctx, def, "rollbackEnabled", "", &plan->rollback_enabled) ||
		!get_bool(&ctx, def, "saveIntermediateResults", "",
				  &plan->save_intermediate) ||
		!get_int(&ctx, def, "maxExecutionTime", "", 0, INT_MAX,
				 &plan->max_execution_time_ms, NULL) ||
		!get_bool(&ctx, def, "parallelStepsEnabled", "",
				  &plan->parallel_enabled) ||
		!get_int(&ctx, def, "maxConcurrency", "", 1, INT_MAX,
				 &plan->max_concurrency, NULL))
		return NULL;
	if (!get_string(&ctx, def, "notify", "", false, &notify))
		return NULL;
	if (notify != NULL)
	{
		if (strcmp(notify, "steps") == 0)
			plan->notify = CE_NOTIFY_STEPS;
		else if (strcmp(notify, "lifecycle") == 0)
			plan->notify = CE_NOTIFY_LIFECYCLE;
		else if (strcmp(notify, "none") == 0)
			plan->notify = CE_NOTIFY_NONE;
		else
		{
			char		disp[80];

			key_display(disp, sizeof(disp), notify, strlen(notify));
			plan_error(&ctx, CE_ERR_INVALID, "notify",
					   "invalid value \"%s\" for \"notify\"", disp);
			strfmt(err->hint, sizeof(err->hint),
					 "Valid values are \"steps\", \"lifecycle\" and \"none\".");
			return NULL;
		}
	}
	if (!get_object(&ctx, def, "performanceTargets", "", false, false,
					&plan->performance_targets) ||
		!get_object(&ctx, def, "retryBudget", "", false, true,
					&plan->retry_budget) ||
		!get_object(&ctx, def, "metadata", "", false, false, &plan->metadata))
		return NULL;

	/* successConditions */
	v = cejson_get(def, "successConditions");
	if (v != NULL)
	{
		if (v->type != CEJ_ARRAY)
		{
			plan_error(&ctx, CE_ERR_INVALID, "successConditions",
					   "\"successConditions\" must be an array of strings");
			return NULL;
		}
		plan->success_text = ce_alloc(sizeof(char *) * (v->count + 1));
		plan->success_expr = ce_alloc(sizeof(CeExpr *) * (v->count + 1));
		for (i = 0; i < v->count; i++)
		{
			const CeJson *it = v->items[i];
			char		key[64];

			strfmt(path, sizeof(path), "successConditions[%d]", i);
			if (it->type != CEJ_STRING || strlen(it->str) != it->len)
			{
				plan_error(&ctx, CE_ERR_INVALID, path,
						   "\"successConditions\" must be an array of strings");
				return NULL;
			}
			plan->success_text[i] = ce_strndup(it->str, it->len);
			strfmt(key, sizeof(key), "successConditions[%d]", i);
			plan->success_expr[i] = parse_expr(&ctx, plan->success_text[i],
											   path, key, NULL);
			if (plan->success_expr[i] == NULL)
				return NULL;
			plan->nsuccess++;
		}
	}

	/* steps */
	v = cejson_get(def, "steps");
	if (v == NULL)
	{
		plan_error(&ctx, CE_ERR_INVALID, "steps",
				   "missing required key \"steps\" in chain definition");
		return NULL;
	}
	if (v->type != CEJ_ARRAY || v->count == 0)
	{
		plan_error(&ctx, CE_ERR_INVALID, "steps",
				   "\"steps\" must be a non-empty array");
		return NULL;
	}
	if (v->count > CE_MAX_STEPS)
	{
		plan_error(&ctx, CE_ERR_LIMIT, "steps", "too many steps");
		strfmt(err->detail, sizeof(err->detail),
				 "The chain has %d steps; at most %d are allowed.",
				 v->count, CE_MAX_STEPS);
		return NULL;
	}
	plan->nsteps = v->count;
	plan->steps = ce_alloc(sizeof(CeStep) * v->count);
	for (i = 0; i < v->count; i++)
	{
		char		prefix[PLAN_PATH_LEN];

		strfmt(prefix, sizeof(prefix), "steps[%d]", i);
		plan->steps[i].index = i;
		if (!parse_step(&ctx, v->items[i], prefix, &plan->steps[i], false))
			return NULL;
	}

	if (!plan_order(&ctx, input_props))
		return NULL;

	err->code = CE_OK;
	return plan;
}

/* Step by id, searching fallback steps too; NULL when unknown. */
CeStep *
ce_plan_step_by_id(const CePlan *plan, int id)
{
	int			i;

	if (plan == NULL)
		return NULL;
	for (i = 0; i < plan->nsteps; i++)
	{
		CeStep	   *st = &plan->steps[i];

		if (st->id == id)
			return st;
		if (st->fallback != NULL && st->fallback->id == id)
			return st->fallback;
	}
	return NULL;
}
