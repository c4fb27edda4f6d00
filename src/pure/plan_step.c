/*-------------------------------------------------------------------------
 *
 * plan_step.c
 *	  One step of a chain definition (or a fallback step) checked and
 *	  compiled into a CeStep: one helper per group of step keys.
 *
 * Choices where the SPEC leaves room:
 *	  - A "fallbackStep" without "onFailure" means onFailure "fallback"; a
 *		"fallbackStep" with another explicit "onFailure", and "onFailure"
 *		"fallback" without "fallbackStep", are errors (42P17).
 *	  - A fallback step may not have its own fallback, "dependsOn" or
 *		"parallelExecution" (it runs in place of its step).
 *	  - Step ids and names are unique across steps and fallback steps.
 *	  - A "template" step that names an "instructionSet" calls that handler
 *		(SPEC: any type with instructionSet and no sql does), so it needs no
 *		"template"/"templateId"; a "wait" step ignores "instructionSet".
 *
 *-------------------------------------------------------------------------
 */
#include "plan_int.h"
#include "compose_plan.h"

#include <limits.h>
#include <string.h>

/* ----------------------------------------------------------------
 * Kinds, names, registration
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
		case CE_STEP_CHAIN:
			return "chain";
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
		{"chain", CE_STEP_CHAIN},
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
			plan_path_join(path, prefix, "id");
			plan_error(ctx, CE_ERR_DUPLICATE, path, "duplicate step id %d",
					   st->id);
			plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					 "Step \"%s\" (%s) already has id %d.",
					 ctx->all[i]->name, ctx->all_paths[i], st->id);
			return false;
		}
		if (strcmp(ctx->all[i]->name, st->name) == 0)
		{
			plan_path_join(path, prefix, "name");
			plan_error(ctx, CE_ERR_DUPLICATE, path,
					   "duplicate step name \"%s\"", st->name);
			plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
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
		plan_path_join(path, prefix, key);
		plan_error(ctx, CE_ERR_INVALID, path, "invalid name \"%s\" in \"%s\"",
				   name, key);
		plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
			   "A handler or template name has 1 to 128 letters, digits, \"_\", \".\" or \"-\".");
		return false;
	}
	return true;
}


/* ----------------------------------------------------------------
 * One step, one helper per group of keys
 *
 * plan_parse_step() calls the helpers in this order; the first problem
 * stops it, so the order is the order in which errors are reported.
 * ----------------------------------------------------------------
 */

/* "id" and "name" (both required), registered as unique; "description". */
static bool
parse_step_identity(PlanCtx *ctx, const CeJson *js, const char *prefix,
					CeStep *st)
{
	char		path[PLAN_PATH_LEN];

	/* id */
	plan_path_join(path, prefix, "id");
	if (cejson_get(js, "id") == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "missing required key \"id\" in step");
		return false;
	}
	if (!plan_get_int(ctx, js, "id", prefix, 1, INT_MAX, &st->id, NULL))
		return false;

	/* name */
	plan_path_join(path, prefix, "name");
	if (cejson_get(js, "name") == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "missing required key \"name\" in step %d", st->id);
		return false;
	}
	if (!plan_get_string(ctx, js, "name", prefix, true, &st->name))
		return false;
	if (strlen(st->name) > CE_MAX_NAME_LEN ||
		!plan_valid_name_chars(st->name, false))
	{
		char		disp[80];
		char		sugg[80];
		size_t		k;
		bool		ok = true;

		plan_key_display(disp, sizeof(disp), st->name, strlen(st->name));
		plan_error(ctx, CE_ERR_INVALID, path, "invalid step name \"%s\"", disp);
		if (strlen(st->name) > CE_MAX_NAME_LEN)
			plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
						"A step name has at most %d characters.", CE_MAX_NAME_LEN);
		/* suggest the lower-case, underscored spelling when there is one */
		plan_key_display(sugg, sizeof(sugg), st->name, strlen(st->name));
		for (k = 0; sugg[k]; k++)
		{
			sugg[k] = (char) plan_lower((unsigned char) sugg[k]);
			if (sugg[k] == '-' || sugg[k] == ' ' || sugg[k] == '.')
				sugg[k] = '_';
			if (!((sugg[k] >= 'a' && sugg[k] <= 'z') ||
				  (sugg[k] >= '0' && sugg[k] <= '9') || sugg[k] == '_'))
				ok = false;
		}
		if (ok && strlen(st->name) <= CE_MAX_NAME_LEN)
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
						"A step name consists of lower-case letters, digits and "
						"\"_\", e.g. \"%s\".", sugg);
		else
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
						"A step name consists of lower-case letters, digits and "
						"\"_\".");
		return false;
	}
	if (!register_step(ctx, st, prefix))
		return false;

	return plan_get_string(ctx, js, "description", prefix, false,
						   &st->description);
}

/* "type" (required): a kind name or alias. */
static bool
parse_step_type(PlanCtx *ctx, const CeJson *js, const char *prefix,
				CeStep *st)
{
	char		path[PLAN_PATH_LEN];
	char	   *type;

	plan_path_join(path, prefix, "type");
	if (cejson_get(js, "type") == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "missing required key \"type\" in step \"%s\"", st->name);
		plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					"Valid types are \"sql\", \"function\", \"template\", "
					"\"external\", \"wait\" and \"chain\".");
		return false;
	}
	if (!plan_get_string(ctx, js, "type", prefix, false, &type))
		return false;
	if (!ce_step_kind_from_name(type, &st->kind))
	{
		char		disp[80];

		plan_key_display(disp, sizeof(disp), type, strlen(type));
		plan_error(ctx, CE_ERR_INVALID, path, "unknown step type \"%s\"", disp);
		plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					"Valid types are \"sql\", \"function\", \"template\", "
					"\"external\", \"wait\" and \"chain\" (or \"database_operation\", "
					"\"instruction_set\", \"template_processing\", "
					"\"external_api\").");
		return false;
	}
	st->kind_name = kind_name(st->kind);
	return true;
}

/*
 * The texts (sql, handler and template names, templates, condition,
 * rollback, verification) as strings, and the variable lists.  Templates
 * and the condition are parsed later, once the kind's rules have run.
 */
static bool
parse_step_texts(PlanCtx *ctx, const CeJson *js, const char *prefix,
				 CeStep *st)
{
	if (!plan_get_string(ctx, js, "sql", prefix, true, &st->sql) ||
		!plan_get_string(ctx, js, "instructionSet", prefix, true,
						 &st->instruction_set) ||
		!plan_get_string(ctx, js, "templateId", prefix, true,
						 &st->template_id) ||
		!plan_get_string(ctx, js, "template", prefix, false,
						 &st->template_text) ||
		!plan_get_string(ctx, js, "inputTemplate", prefix, false,
						 &st->input_template) ||
		!plan_get_string(ctx, js, "conditionalExecution", prefix, true,
						 &st->condition) ||
		!plan_get_string(ctx, js, "rollbackAction", prefix, true,
						 &st->rollback_action) ||
		!plan_get_string(ctx, js, "verificationQuery", prefix, true,
						 &st->verification_query))
		return false;

	/* handler and template names: as chain_register_handler/_template accept */
	if (!check_registered_name(ctx, prefix, "instructionSet", st->instruction_set) ||
		!check_registered_name(ctx, prefix, "templateId", st->template_id))
		return false;

	return plan_get_var_list(ctx, js, "inputVariables", prefix,
							 &st->ninput_vars, &st->input_vars) &&
		plan_get_var_list(ctx, js, "outputVariables", prefix,
						  &st->noutput_vars, &st->output_vars);
}

/*
 * "dependsOn" (ids as written, resolved by plan_order() once all steps are
 * known) and "parallelExecution"; a fallback step may have neither.
 */
static bool
parse_step_ordering(PlanCtx *ctx, const CeJson *js, const char *prefix,
					CeStep *st, bool is_fallback)
{
	char		path[PLAN_PATH_LEN];
	char		sub[PLAN_PATH_LEN];
	const CeJson *v;
	int			i;

	v = cejson_get(js, "dependsOn");
	if (v != NULL)
	{
		plan_path_join(path, prefix, "dependsOn");
		if (is_fallback)
		{
			plan_error(ctx, CE_ERR_DEFINITION, path,
					   "fallback step \"%s\" cannot have \"dependsOn\"",
					   st->name);
			plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
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

			plan_strfmt(sub, sizeof(sub), "%s[%d]", path, i);
			if (!plan_json_integer(v->items[i], &n) || n < 1 || n > INT_MAX)
			{
				plan_error(ctx, CE_ERR_INVALID, sub,
						   "\"dependsOn\" must be an array of step ids");
				plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
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
		plan_path_join(path, prefix, "parallelExecution");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "fallback step \"%s\" cannot have \"parallelExecution\"",
				   st->name);
		return false;
	}
	return plan_get_bool(ctx, js, "parallelExecution", prefix, &st->parallel);
}

/* "retryConfig", or the kind's default retry settings. */
static bool
parse_step_retry(PlanCtx *ctx, const CeJson *js, const char *prefix,
				 CeStep *st)
{
	char		path[PLAN_PATH_LEN];
	const CeJson *v = cejson_get(js, "retryConfig");

	if (v == NULL)
	{
		ce_retry_default(st->kind, &st->retry);
		return true;
	}
	plan_path_join(path, prefix, "retryConfig");
	if (v->type != CEJ_OBJECT)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"retryConfig\" must be an object");
		return false;
	}
	return plan_parse_retry(ctx, v, path, &st->retry);
}

/* The numeric limits: "timeoutMs", "waitMs", "maxMemoryMB". */
static bool
parse_step_limits(PlanCtx *ctx, const CeJson *js, const char *prefix,
				  CeStep *st)
{
	return plan_get_int(ctx, js, "timeoutMs", prefix, 1, INT_MAX,
						&st->timeout_ms, NULL) &&
		plan_get_int(ctx, js, "waitMs", prefix, 0, INT_MAX, &st->wait_ms,
					 NULL) &&
		plan_get_int(ctx, js, "maxMemoryMB", prefix, 1, INT_MAX,
					 &st->max_memory_mb, NULL);
}

/*
 * The policy objects: "cache" and "circuitBreaker" compiled for the
 * engine (plan_resil.c), "metadata" kept as JSON.
 */
static bool
parse_step_policies(PlanCtx *ctx, const CeJson *js, const char *prefix,
					CeStep *st)
{
	return plan_parse_cache(ctx, js, prefix, &st->cache) &&
		plan_parse_breaker(ctx, js, prefix, &st->circuit_breaker) &&
		plan_get_object(ctx, js, "metadata", prefix, false, false,
						&st->metadata);
}

/* The keys each kind requires. */
static bool
check_step_kind(PlanCtx *ctx, const CeJson *js, const char *prefix,
				const CeStep *st)
{
	char		path[PLAN_PATH_LEN];

	switch (st->kind)
	{
		case CE_STEP_SQL:
			if (st->sql == NULL && st->instruction_set == NULL)
			{
				plan_path_join(path, prefix, "sql");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" of type \"sql\" needs \"sql\" or \"instructionSet\"",
						   st->name);
				return false;
			}
			break;
		case CE_STEP_FUNCTION:
			if (st->instruction_set == NULL)
			{
				plan_path_join(path, prefix, "instructionSet");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" of type \"function\" needs \"instructionSet\"",
						   st->name);
				plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
							"Name a handler registered with chain_register_handler().");
				return false;
			}
			break;
		case CE_STEP_TEMPLATE:
			if (st->template_text != NULL && st->template_id != NULL)
			{
				plan_path_join(path, prefix, "templateId");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" has both \"template\" and \"templateId\"",
						   st->name);
				plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
							"Give an inline \"template\" or the \"templateId\" of a registered one, not both.");
				return false;
			}
			if (st->template_text == NULL && st->template_id == NULL &&
				st->instruction_set == NULL)
			{
				plan_path_join(path, prefix, "template");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" of type \"template\" needs \"template\" or \"templateId\"",
						   st->name);
				return false;
			}
			break;
		case CE_STEP_WAIT:
			/* parse_step_limits() has checked its value */
			if (cejson_get(js, "waitMs") == NULL)
			{
				plan_path_join(path, prefix, "waitMs");
				plan_error(ctx, CE_ERR_INVALID, path,
						   "step \"%s\" of type \"wait\" needs \"waitMs\"",
						   st->name);
				return false;
			}
			break;
		case CE_STEP_EXTERNAL:
		case CE_STEP_CHAIN:
			break;
	}
	return true;
}

/*
 * Keys that have no effect for the kind: warnings.  A wait step drops its
 * "instructionSet"; an sql step with "sql" drops its "instructionSet".
 */
static void
warn_step_kind(PlanCtx *ctx, const CeJson *js, CeStep *st)
{
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
}

/* Parse the templates: "sql", "template", "inputTemplate". */
static bool
parse_step_templates(PlanCtx *ctx, const char *prefix, CeStep *st)
{
	return plan_parse_template(ctx, st->sql, prefix, "sql", st->name,
							   &st->sql_tpl) &&
		plan_parse_template(ctx, st->template_text, prefix, "template",
							st->name, &st->template_tpl) &&
		plan_parse_template(ctx, st->input_template, prefix, "inputTemplate",
							st->name, &st->input_tpl);
}

/*
 * "rollbackAction": a handler name when it has only name characters, else
 * a template; "verificationQuery": a template.
 */
static bool
parse_step_rollback(PlanCtx *ctx, const char *prefix, CeStep *st)
{
	const char *p;

	/* verificationQuery: SQL run after the compensation */
	if (!plan_parse_template(ctx, st->verification_query, prefix,
							 "verificationQuery", st->name, &st->verification_tpl))
		return false;
	if (st->verification_query != NULL && st->rollback_action == NULL)
		plan_warn(ctx, "\"verificationQuery\" of step \"%s\" has no effect: the step has no \"rollbackAction\"",
				  st->name);
	if (st->rollback_action == NULL)
		return true;
	st->rollback_is_handler = true;
	for (p = st->rollback_action; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			  (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
			  *p == '-'))
			st->rollback_is_handler = false;
	if (st->rollback_is_handler)
		return true;
	return plan_parse_template(ctx, st->rollback_action, prefix,
							   "rollbackAction", st->name, &st->rollback_tpl);
}

/*
 * "conditionalExecution": parsed; a routing decision when it reads one of
 * the step's own outputVariables.
 */
static bool
parse_step_condition(PlanCtx *ctx, const char *prefix, CeStep *st)
{
	char		path[PLAN_PATH_LEN];
	char	  **vars;
	int			nvars;
	int			j,
				k;

	if (st->condition == NULL)
		return true;
	plan_path_join(path, prefix, "conditionalExecution");
	st->condition_expr = plan_parse_expr(ctx, st->condition, path,
										 "conditionalExecution", st->name);
	if (st->condition_expr == NULL)
		return false;
	nvars = ce_expr_variables(st->condition_expr, &vars);
	for (j = 0; j < nvars; j++)
		for (k = 0; k < st->noutput_vars; k++)
			if (strcmp(vars[j], st->output_vars[k]) == 0)
				st->condition_is_routing = true;
	return true;
}

/*
 * "onFailure" and "fallbackStep" (parsed recursively as a fallback step).
 * A "fallbackStep" without "onFailure" means "fallback"; a fallback step
 * has no fallback of its own.
 */
static bool
parse_step_failure(PlanCtx *ctx, const CeJson *js, const char *prefix,
				   CeStep *st, bool is_fallback)
{
	char		path[PLAN_PATH_LEN];
	char	   *onfail;
	bool		onfail_given = false;
	const CeJson *v;

	if (!plan_get_string(ctx, js, "onFailure", prefix, false, &onfail))
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
		else if (strcmp(onfail, "escalate") == 0)
			st->on_failure = CE_ONFAIL_ESCALATE;
		else
		{
			char		disp[80];

			plan_key_display(disp, sizeof(disp), onfail, strlen(onfail));
			plan_path_join(path, prefix, "onFailure");
			plan_error(ctx, CE_ERR_INVALID, path,
					   "invalid value \"%s\" for \"onFailure\"", disp);
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
						"Valid values are \"fail\", \"warn\", \"skip\", \"fallback\" and \"escalate\".");
			return false;
		}
	}
	v = cejson_get(js, "fallbackStep");
	if (is_fallback && (st->on_failure == CE_ONFAIL_FALLBACK || v != NULL))
	{
		plan_path_join(path, prefix, v != NULL ? "fallbackStep" : "onFailure");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "fallback step \"%s\" cannot have a fallback step of its own",
				   st->name);
		return false;
	}
	if (v != NULL)
	{
		plan_path_join(path, prefix, "fallbackStep");
		if (onfail_given && st->on_failure != CE_ONFAIL_FALLBACK)
		{
			plan_error(ctx, CE_ERR_DEFINITION, path,
					   "step \"%s\" has a \"fallbackStep\" but \"onFailure\" is \"%s\"",
					   st->name, onfail);
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
						"Set \"onFailure\" to \"fallback\" or remove \"fallbackStep\".");
			return false;
		}
		st->on_failure = CE_ONFAIL_FALLBACK;
		st->fallback = ce_alloc(sizeof(CeStep));
		st->fallback->index = -1;
		return plan_parse_step(ctx, v, path, st->fallback, true);
	}
	if (st->on_failure == CE_ONFAIL_FALLBACK)
	{
		plan_path_join(path, prefix, "fallbackStep");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "step \"%s\" has \"onFailure\" \"fallback\" but no \"fallbackStep\"",
				   st->name);
		return false;
	}
	return true;
}

/* type "chain", forEach, repeatUntil (compose_plan.c), once onFailure is known */
static bool
parse_step_compose(PlanCtx *ctx, const CeJson *js, const char *prefix,
				   CeStep *st, bool is_fallback)
{
	return ce_compose_parse(js, prefix, st->name, st->kind == CE_STEP_CHAIN, is_fallback,
							st->on_failure == CE_ONFAIL_FALLBACK, &st->compose, ctx->err);
}

/*
 * Check and compile one step (or fallback step, is_fallback) at JSON path
 * prefix into st.  A new step key goes into plan_step_keys and into the
 * helper of its group (or a new helper called here, at the point where its
 * errors should be reported).
 */
bool
plan_parse_step(PlanCtx *ctx, const CeJson *js, const char *prefix,
				CeStep *st, bool is_fallback)
{
	if (js->type != CEJ_OBJECT)
	{
		plan_error(ctx, CE_ERR_INVALID, prefix,
				   is_fallback ? "\"fallbackStep\" must be an object" :
				   "each element of \"steps\" must be an object");
		return false;
	}
	if (!plan_check_keys(ctx, js, KC_STEP, prefix))
		return false;

	/* read the keys */
	if (!parse_step_identity(ctx, js, prefix, st) ||
		!parse_step_type(ctx, js, prefix, st) ||
		!parse_step_texts(ctx, js, prefix, st) ||
		!parse_step_ordering(ctx, js, prefix, st, is_fallback) ||
		!parse_step_retry(ctx, js, prefix, st) ||
		!parse_step_limits(ctx, js, prefix, st) ||
		!parse_step_policies(ctx, js, prefix, st))
		return false;

	/* the kind's rules */
	if (!check_step_kind(ctx, js, prefix, st) ||
		!plan_parse_step_flow(ctx, js, prefix, st))
		return false;
	warn_step_kind(ctx, js, st);

	/* compile the texts, then the failure handling */
	return parse_step_templates(ctx, prefix, st) &&
		parse_step_rollback(ctx, prefix, st) &&
		parse_step_condition(ctx, prefix, st) &&
		parse_step_failure(ctx, js, prefix, st, is_fallback) &&
		parse_step_compose(ctx, js, prefix, st, is_fallback);
}
