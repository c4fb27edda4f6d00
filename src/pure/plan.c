/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  Check a chain definition (SPEC section 3) and compile it into a CePlan:
 *	  the entry point and the chain-level keys.
 *
 * ce_plan_build() walks the definition once, key by key, and stops at the
 * first problem, reporting it with an error code, a JSON path such as
 * steps[3].retryConfig.maxRetries and, for expressions and templates, the
 * character position.  Each step is compiled by plan_step.c; a second pass
 * (plan_graph.c), once every step is known, resolves dependsOn and
 * skip_to_step_N references, computes each step's predecessors (SPEC
 * "Ordering") and rejects dependency cycles.  plan_int.h lists the parts.
 *
 *-------------------------------------------------------------------------
 */
#include "plan_int.h"
#include "jsonschema.h"

#include <limits.h>
#include <string.h>

/* Valid chain id: [a-z0-9_.-]{1,63}. */
bool
ce_valid_chain_id(const char *s)
{
	return s != NULL && strlen(s) <= CE_MAX_NAME_LEN &&
		plan_valid_name_chars(s, true);
}

/* "id" (required), the descriptive strings and "version". */
static bool
parse_chain_identity(PlanCtx *ctx, const CeJson *def, CePlan *plan)
{
	CeError    *err = ctx->err;
	const CeJson *v;

	/* id */
	if (cejson_get(def, "id") == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, "id",
				   "missing required key \"id\" in chain definition");
		return false;
	}
	if (!plan_get_string(ctx, def, "id", "", false, &plan->id))
		return false;
	if (!ce_valid_chain_id(plan->id))
	{
		char		disp[80];

		plan_key_display(disp, sizeof(disp), plan->id, strlen(plan->id));
		plan_error(ctx, CE_ERR_INVALID, "id", "invalid chain id \"%s\"", disp);
		plan_strfmt(err->hint, sizeof(err->hint),
					"A chain id consists of 1 to %d lower-case letters, digits, "
					"\"_\", \".\" and \"-\".", CE_MAX_NAME_LEN);
		return false;
	}

	if (!plan_get_string(ctx, def, "name", "", false, &plan->name) ||
		!plan_get_string(ctx, def, "description", "", false,
						 &plan->description) ||
		!plan_get_string(ctx, def, "category", "", false, &plan->category) ||
		!plan_get_string(ctx, def, "searchPath", "", true, &plan->search_path))
		return false;

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
			plan_error(ctx, CE_ERR_INVALID, "version",
					   "\"version\" must be a string or a number");
			return false;
		}
	}
	return true;
}

/* Check one schema of the chain (key "inputSchema" or "outputSchema"). */
static bool
check_chain_schema(PlanCtx *ctx, const CeJson *schema, const char *key)
{
	CeError    *err = ctx->err;

	if (schema == NULL || ce_schema_check(schema, key, NULL, err))
		return true;
	if (err->path[0] == '\0')
		plan_strfmt(err->path, sizeof(err->path), "%s", key);
	if (err->code == CE_OK)
		err->code = CE_ERR_INVALID;
	return false;
}

/*
 * "inputSchema" and "outputSchema", checked as JSON Schemas.  *input_props
 * is the input schema's "properties" (empty when it has none), NULL when
 * there is no input schema or its "properties" is not an object.
 */
static bool
parse_chain_schemas(PlanCtx *ctx, const CeJson *def, CePlan *plan,
					const CeJson **input_props)
{
	*input_props = NULL;
	if (!plan_get_object(ctx, def, "inputSchema", "", false, false,
						 &plan->input_schema) ||
		!plan_get_object(ctx, def, "outputSchema", "", false, false,
						 &plan->output_schema))
		return false;
	if (!check_chain_schema(ctx, plan->input_schema, "inputSchema") ||
		!check_chain_schema(ctx, plan->output_schema, "outputSchema"))
		return false;
	if (plan->input_schema != NULL)
	{
		const CeJson *props = cejson_get(plan->input_schema, "properties");

		if (props == NULL)
			*input_props = cejson_new(CEJ_OBJECT);
		else if (props->type == CEJ_OBJECT)
			*input_props = props;
	}
	return true;
}

/*
 * The chain's settings: flags and limits, "notify", and the objects kept
 * as JSON ("performanceTargets", "metadata"), and "retryBudget" (plan_resil.c).
 */
static bool
parse_chain_settings(PlanCtx *ctx, const CeJson *def, CePlan *plan)
{
	char	   *notify;

	plan->parallel_enabled = true;
	plan->save_intermediate = true;
	plan->notify = CE_NOTIFY_STEPS;
	if (!plan_get_bool(ctx, def, "rollbackEnabled", "",
					   &plan->rollback_enabled) ||
		!plan_get_bool(ctx, def, "saveIntermediateResults", "",
					   &plan->save_intermediate) ||
		!plan_get_int(ctx, def, "maxExecutionTime", "", 0, INT_MAX,
					  &plan->max_execution_time_ms, NULL) ||
		!plan_get_bool(ctx, def, "parallelStepsEnabled", "",
					   &plan->parallel_enabled) ||
		!plan_get_int(ctx, def, "maxConcurrency", "", 1, INT_MAX,
					  &plan->max_concurrency, NULL) ||
		!plan_get_int(ctx, def, "concurrencyLimit", "", 1, 10000,
					  &plan->concurrency_limit, NULL))
		return false;
	if (!plan_get_string(ctx, def, "notify", "", false, &notify))
		return false;
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

			plan_key_display(disp, sizeof(disp), notify, strlen(notify));
			plan_error(ctx, CE_ERR_INVALID, "notify",
					   "invalid value \"%s\" for \"notify\"", disp);
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
						"Valid values are \"steps\", \"lifecycle\" and \"none\".");
			return false;
		}
	}
	return plan_get_object(ctx, def, "performanceTargets", "", false, false,
						   &plan->performance_targets) &&
		plan_parse_budget(ctx, def, &plan->retry_budget) &&
		plan_get_object(ctx, def, "metadata", "", false, false,
						&plan->metadata);
}

/* "successConditions": an array of expressions, each parsed. */
static bool
parse_success_conditions(PlanCtx *ctx, const CeJson *def, CePlan *plan)
{
	const CeJson *v = cejson_get(def, "successConditions");
	char		path[PLAN_PATH_LEN];
	int			i;

	if (v == NULL)
		return true;
	if (v->type != CEJ_ARRAY)
	{
		plan_error(ctx, CE_ERR_INVALID, "successConditions",
				   "\"successConditions\" must be an array of strings");
		return false;
	}
	plan->success_text = ce_alloc(sizeof(char *) * (v->count + 1));
	plan->success_expr = ce_alloc(sizeof(CeExpr *) * (v->count + 1));
	for (i = 0; i < v->count; i++)
	{
		const CeJson *it = v->items[i];
		char		key[64];

		plan_strfmt(path, sizeof(path), "successConditions[%d]", i);
		if (it->type != CEJ_STRING || strlen(it->str) != it->len)
		{
			plan_error(ctx, CE_ERR_INVALID, path,
					   "\"successConditions\" must be an array of strings");
			return false;
		}
		plan->success_text[i] = ce_strndup(it->str, it->len);
		plan_strfmt(key, sizeof(key), "successConditions[%d]", i);
		plan->success_expr[i] = plan_parse_expr(ctx, plan->success_text[i],
												path, key, NULL);
		if (plan->success_expr[i] == NULL)
			return false;
		plan->nsuccess++;
	}
	return true;
}

/* "steps" (required, 1 to CE_MAX_STEPS), each compiled by plan_step.c. */
static bool
parse_chain_steps(PlanCtx *ctx, const CeJson *def, CePlan *plan)
{
	const CeJson *v = cejson_get(def, "steps");
	int			i;

	if (v == NULL)
	{
		plan_error(ctx, CE_ERR_INVALID, "steps",
				   "missing required key \"steps\" in chain definition");
		return false;
	}
	if (v->type != CEJ_ARRAY || v->count == 0)
	{
		plan_error(ctx, CE_ERR_INVALID, "steps",
				   "\"steps\" must be a non-empty array");
		return false;
	}
	if (v->count > CE_MAX_STEPS)
	{
		plan_error(ctx, CE_ERR_LIMIT, "steps", "too many steps");
		plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					"The chain has %d steps; at most %d are allowed.",
					v->count, CE_MAX_STEPS);
		return false;
	}
	plan->nsteps = v->count;
	plan->steps = ce_alloc(sizeof(CeStep) * v->count);
	for (i = 0; i < v->count; i++)
	{
		char		prefix[PLAN_PATH_LEN];

		plan_strfmt(prefix, sizeof(prefix), "steps[%d]", i);
		plan->steps[i].index = i;
		if (!plan_parse_step(ctx, v->items[i], prefix, &plan->steps[i], false))
			return false;
	}
	return true;
}

/*
 * Check and compile a definition (see plan.h).  The parts run in this
 * order; the first problem stops the build, so the order is the order in
 * which errors are reported.
 */
CePlan *
ce_plan_build(const CeJson *def, CeError *err, CeWarnings *warnings)
{
	CeError		dummy;
	PlanCtx		ctx;
	CePlan	   *plan;
	const CeJson *input_props = NULL;

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
	if (!plan_check_keys(&ctx, def, KC_CHAIN, "") ||
		!parse_chain_identity(&ctx, def, plan) ||
		!parse_chain_schemas(&ctx, def, plan, &input_props) ||
		!parse_chain_settings(&ctx, def, plan) ||
		!parse_success_conditions(&ctx, def, plan) ||
		!parse_chain_steps(&ctx, def, plan) ||
		!plan_order(&ctx, input_props))
		return NULL;

	err->code = CE_OK;
	return plan;
}
