/*-------------------------------------------------------------------------
 *
 * compose_plan.c
 *	  Checking and compiling the composition keys of a step: "type":
 *	  "chain" ("chain", "input"), "forEach" ("maxConcurrency") and
 *	  "repeatUntil" ("maxIterations").  Pure C (see compose_plan.h).
 *
 *-------------------------------------------------------------------------
 */
#include "ce_pure.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "compose_plan.h"
#include "plan.h"
#include "template.h"

static void
compose_error(CeError *err, CeErrCode code, const char *prefix, const char *key,
			  const char *fmt,...) pg_attribute_printf(5, 6);

static void
compose_error(CeError *err, CeErrCode code, const char *prefix, const char *key,
			  const char *fmt,...)
{
	va_list		ap;

	err->code = code;
	err->pos = 0;
	err->detail[0] = '\0';
	err->hint[0] = '\0';
	if (prefix && prefix[0])
		snprintf(err->path, sizeof(err->path), "%s.%s", prefix, key);
	else
		snprintf(err->path, sizeof(err->path), "%s", key);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* An integer key in [min, max]; *present tells whether it was given. */
static bool
get_count(const CeJson *js, const char *key, const char *prefix, int min, int max,
		  int *out, bool *present, CeError *err)
{
	const CeJson *v = cejson_get(js, key);

	*present = v != NULL;
	if (v == NULL)
		return true;
	if (v->type != CEJ_NUMBER || !v->is_integer || v->integer < min || v->integer > max)
	{
		compose_error(err, CE_ERR_INVALID, prefix, key,
					  "\"%s\" must be an integer between %d and %d", key, min, max);
		return false;
	}
	*out = (int) v->integer;
	return true;
}

/*
 * The path of "{a.b}" (or of a bare "a.b"): true with *path, *npath set
 * when text is nothing but one variable path.
 */
static bool
bare_path(const char *s, size_t len, bool braces_required,
		  const char *const **path, int *npath)
{
	CeError		perr;
	CeExpr	   *e;
	size_t		i;

	if (len >= 2 && s[0] == '{' && s[len - 1] == '}')
	{
		s++;
		len -= 2;
	}
	else if (braces_required)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] == '{' || s[i] == '}')
			return false;
	memset(&perr, 0, sizeof(perr));
	e = ce_expr_parse(s, len, &perr);
	if (e == NULL)
		return false;
	return ce_expr_is_bare_path(e, path, npath);
}

bool
ce_compose_bare_placeholder(const char *s, size_t len, const char *const **path, int *npath)
{
	return bare_path(s, len, true, path, npath);
}

/* Every string in "input" must be a valid template. */
static bool
check_input(const CeJson *v, const char *path, CeError *err)
{
	int			i;
	char		sub[CE_ERR_PATH_LEN];

	switch (v->type)
	{
		case CEJ_STRING:
			{
				CeError		terr;

				memset(&terr, 0, sizeof(terr));
				if (ce_template_parse(v->str, v->len, &terr) == NULL)
				{
					*err = terr;
					snprintf(err->path, sizeof(err->path), "%s", path);
					return false;
				}
				return true;
			}
		case CEJ_OBJECT:
			for (i = 0; i < v->count; i++)
			{
				snprintf(sub, sizeof(sub), "%s.%s", path, v->keys[i]);
				if (!check_input(v->items[i], sub, err))
					return false;
			}
			return true;
		case CEJ_ARRAY:
			for (i = 0; i < v->count; i++)
			{
				snprintf(sub, sizeof(sub), "%s[%d]", path, i);
				if (!check_input(v->items[i], sub, err))
					return false;
			}
			return true;
		default:
			return true;
	}
}

bool
ce_compose_parse(const CeJson *js, const char *prefix, const char *stepname,
				 bool is_chain_kind, bool is_fallback, bool on_failure_fallback,
				 CeCompose **out, CeError *err)
{
	const CeJson *chain = cejson_get(js, "chain");
	const CeJson *input = cejson_get(js, "input");
	const CeJson *fe = cejson_get(js, "forEach");
	const CeJson *ru = cejson_get(js, "repeatUntil");
	CeCompose  *c;
	bool		has_mc;
	bool		has_mi;
	int			mc = 0;
	int			mi = CE_DEFAULT_MAX_ITERATIONS;

	*out = NULL;
	if (!get_count(js, "maxConcurrency", prefix, 1, CE_MAX_ITERATIONS_LIMIT, &mc, &has_mc, err) ||
		!get_count(js, "maxIterations", prefix, 1, CE_MAX_ITERATIONS_LIMIT, &mi, &has_mi, err))
		return false;

	if (!is_chain_kind && (chain != NULL || input != NULL))
	{
		compose_error(err, CE_ERR_INVALID, prefix, chain ? "chain" : "input",
					  "\"%s\" is only for steps of type \"chain\" (step \"%s\")",
					  chain ? "chain" : "input", stepname);
		return false;
	}
	if (has_mc && fe == NULL)
	{
		compose_error(err, CE_ERR_INVALID, prefix, "maxConcurrency",
					  "\"maxConcurrency\" of step \"%s\" needs \"forEach\"", stepname);
		snprintf(err->hint, sizeof(err->hint),
				 "A step's \"maxConcurrency\" bounds how many elements of its \"forEach\" run at once; the chain's bounds its steps.");
		return false;
	}
	if (has_mi && ru == NULL)
	{
		compose_error(err, CE_ERR_INVALID, prefix, "maxIterations",
					  "\"maxIterations\" of step \"%s\" needs \"repeatUntil\"", stepname);
		return false;
	}
	if (fe != NULL && ru != NULL)
	{
		compose_error(err, CE_ERR_DEFINITION, prefix, "repeatUntil",
					  "step \"%s\" cannot have both \"forEach\" and \"repeatUntil\"", stepname);
		snprintf(err->hint, sizeof(err->hint),
				 "Repeat a step of a sub-chain (type \"chain\") for each element instead.");
		return false;
	}
	if ((fe != NULL || ru != NULL) && (is_fallback || on_failure_fallback))
	{
		compose_error(err, CE_ERR_DEFINITION, prefix, fe ? "forEach" : "repeatUntil",
					  is_fallback ? "fallback step \"%s\" cannot have \"%s\"" :
					  "step \"%s\" with \"%s\" cannot have onFailure \"fallback\"",
					  stepname, fe ? "forEach" : "repeatUntil");
		snprintf(err->hint, sizeof(err->hint),
				 "onFailure applies to each iteration: use \"fail\", \"warn\" or \"skip\".");
		return false;
	}
	if (!is_chain_kind && fe == NULL && ru == NULL)
		return true;

	c = ce_alloc(sizeof(CeCompose));
	c->max_concurrency = mc;
	c->max_iterations = mi;

	if (is_chain_kind)
	{
		if (chain == NULL)
		{
			compose_error(err, CE_ERR_INVALID, prefix, "chain",
						  "step \"%s\" of type \"chain\" needs \"chain\"", stepname);
			snprintf(err->hint, sizeof(err->hint),
					 "Name the chain to run as a child execution, e.g. \"chain\": \"check-stock\".");
			return false;
		}
		if (chain->type != CEJ_STRING || !ce_valid_chain_id(chain->str))
		{
			compose_error(err, CE_ERR_INVALID, prefix, "chain",
						  "\"chain\" of step \"%s\" must be a chain id", stepname);
			snprintf(err->hint, sizeof(err->hint),
					 "A chain id has 1 to 63 characters among a-z, 0-9, \"_\", \".\" and \"-\".");
			return false;
		}
		c->child_chain = ce_strndup(chain->str, chain->len);
		if (input != NULL)
		{
			char		path[CE_ERR_PATH_LEN];

			if (input->type != CEJ_OBJECT)
			{
				compose_error(err, CE_ERR_INVALID, prefix, "input",
							  "\"input\" of step \"%s\" must be an object", stepname);
				return false;
			}
			snprintf(path, sizeof(path), "%s%sinput", prefix, prefix[0] ? "." : "");
			if (!check_input(input, path, err))
				return false;
			c->child_input = cejson_copy(input);
		}
	}

	if (fe != NULL)
	{
		const char *const *path;
		int			npath;

		if (fe->type != CEJ_STRING || !bare_path(fe->str, fe->len, false, &path, &npath))
		{
			compose_error(err, CE_ERR_INVALID, prefix, "forEach",
						  "\"forEach\" of step \"%s\" must name a variable", stepname);
			snprintf(err->hint, sizeof(err->hint),
					 "Write the path to a JSON array, e.g. \"forEach\": \"{items}\" or \"{order.lines}\".");
			return false;
		}
		c->for_each = ce_strndup(fe->str, fe->len);
		c->for_each_npath = npath;
		c->for_each_path = (char **) path;
	}

	if (ru != NULL)
	{
		CeError		perr;

		if (ru->type != CEJ_STRING)
		{
			compose_error(err, CE_ERR_INVALID, prefix, "repeatUntil",
						  "\"repeatUntil\" of step \"%s\" must be an expression", stepname);
			return false;
		}
		memset(&perr, 0, sizeof(perr));
		c->repeat_expr = ce_expr_parse(ru->str, ru->len, &perr);
		if (c->repeat_expr == NULL)
		{
			compose_error(err, perr.code, prefix, "repeatUntil",
						  "syntax error in \"repeatUntil\" of step \"%s\": %.900s",
						  stepname, perr.message);
			err->pos = perr.pos;
			return false;
		}
		c->repeat_until = ce_strndup(ru->str, ru->len);
	}
	*out = c;
	return true;
}
