/*-------------------------------------------------------------------------
 *
 * plan_flow.c
 *	  The step keys of people in the loop and flow control:
 *	  "requiredRoles", "approvalThreshold" (external steps) and "limits".
 *
 * requiredRoles: 1 to 32 role names (a role name has 1 to 63 characters;
 * whether the role exists is checked by chain_define, which can look);
 * approvalThreshold: 1 to 100 approvals by distinct roles, default 1, only
 * with requiredRoles.  limits: 1 to 16 limit names as chain_set_limit
 * accepts them ([a-z0-9_.-]{1,63}).  No duplicates in either list.
 *
 *-------------------------------------------------------------------------
 */
#include "plan_int.h"

#include <string.h>

#define PLAN_MAX_ROLES		32
#define PLAN_MAX_LIMITS		16
#define PLAN_MAX_THRESHOLD	100

/* A list of distinct names; limit_names: as chain_set_limit accepts them. */
static bool
get_name_list(PlanCtx *ctx, const CeJson *js, const char *key, const char *prefix,
			  int max, bool limit_names, int *nout, char ***out)
{
	const CeJson *v = cejson_get(js, key);
	char		path[PLAN_PATH_LEN];
	char		ipath[PLAN_PATH_LEN];
	int			i,
				j;

	*nout = 0;
	*out = NULL;
	if (v == NULL)
		return true;
	plan_path_join(path, prefix, key);
	if (v->type != CEJ_ARRAY || v->count == 0)
	{
		plan_error(ctx, CE_ERR_INVALID, path,
				   "\"%s\" must be a non-empty array of strings", key);
		return false;
	}
	if (v->count > max)
	{
		plan_error(ctx, CE_ERR_LIMIT, path, "too many names in \"%s\"", key);
		plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					"A step lists at most %d.", max);
		return false;
	}
	*out = ce_alloc(sizeof(char *) * v->count);
	for (i = 0; i < v->count; i++)
	{
		const CeJson *it = v->items[i];
		bool		ok;

		plan_strfmt(ipath, sizeof(ipath), "%s[%d]", path, i);
		if (it->type != CEJ_STRING)
		{
			plan_error(ctx, CE_ERR_INVALID, ipath,
					   "\"%s\" must be a non-empty array of strings", key);
			return false;
		}
		ok = strlen(it->str) == it->len && it->len >= 1 && it->len <= 63;
		if (ok && limit_names)
		{
			const char *p;

			for (p = it->str; *p; p++)
				if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
					  *p == '_' || *p == '.' || *p == '-'))
					ok = false;
		}
		if (!ok)
		{
			char		disp[80];

			plan_key_display(disp, sizeof(disp), it->str, it->len);
			plan_error(ctx, CE_ERR_INVALID, ipath,
					   limit_names ? "invalid limit name \"%s\"" : "invalid role name \"%s\"", disp);
			plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint), "%s",
						limit_names ?
						"A limit name has 1 to 63 characters among a-z, 0-9, \"_\", \".\" and \"-\"." :
						"A role name has 1 to 63 characters.");
			return false;
		}
		for (j = 0; j < *nout; j++)
			if (strcmp((*out)[j], it->str) == 0)
			{
				plan_error(ctx, CE_ERR_DUPLICATE, ipath,
						   "\"%s\" names \"%s\" twice", key, it->str);
				return false;
			}
		(*out)[(*nout)++] = ce_strdup(it->str);
	}
	return true;
}

/*
 * "requiredRoles", "approvalThreshold" and "limits" of a step whose kind
 * is known.
 */
bool
plan_parse_step_flow(PlanCtx *ctx, const CeJson *js, const char *prefix, CeStep *st)
{
	char		path[PLAN_PATH_LEN];
	bool		has_threshold = false;

	if (!get_name_list(ctx, js, "requiredRoles", prefix, PLAN_MAX_ROLES, false,
					   &st->nrequired_roles, &st->required_roles) ||
		!get_name_list(ctx, js, "limits", prefix, PLAN_MAX_LIMITS, true,
					   &st->nlimits, &st->limits) ||
		!plan_get_int(ctx, js, "approvalThreshold", prefix, 1, PLAN_MAX_THRESHOLD,
					  &st->approval_threshold, &has_threshold))
		return false;
	if (st->nrequired_roles > 0 && st->kind != CE_STEP_EXTERNAL)
	{
		plan_path_join(path, prefix, "requiredRoles");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "step \"%s\" of type \"%s\" cannot have \"requiredRoles\"",
				   st->name, st->kind_name);
		plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					"Only an external step waits for people to complete it.");
		return false;
	}
	if (st->nrequired_roles > 0 && st->instruction_set != NULL)
	{
		plan_path_join(path, prefix, "requiredRoles");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "step \"%s\" cannot have both \"requiredRoles\" and \"instructionSet\"",
				   st->name);
		plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
					"An external step with an instructionSet calls its handler instead of waiting.");
		return false;
	}
	if (has_threshold && st->nrequired_roles == 0)
	{
		plan_path_join(path, prefix, "approvalThreshold");
		plan_error(ctx, CE_ERR_DEFINITION, path,
				   "step \"%s\" has \"approvalThreshold\" but no \"requiredRoles\"",
				   st->name);
		plan_strfmt(ctx->err->hint, sizeof(ctx->err->hint),
					"Name the roles whose members approve it in \"requiredRoles\".");
		return false;
	}
	if (!has_threshold)
		st->approval_threshold = st->nrequired_roles > 0 ? 1 : 0;
	return true;
}
