/*-------------------------------------------------------------------------
 *
 * plan_graph.c
 *	  The second pass of the definition compiler, once every step is known:
 *	  dependsOn and skip_to_step_N targets, each step's predecessors (SPEC
 *	  "Ordering"), dependency cycles (the message names the cycle), and
 *	  data-flow warnings (variables read before, or without, a step that
 *	  sets them).
 *
 *-------------------------------------------------------------------------
 */
#include "plan_int.h"

#include <limits.h>
#include <string.h>

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
	plan_path_join(path, prefix, "conditionalExecution");
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
				plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
						 "Step %lld is a fallback step.", n);
			return false;
		}
		if (target <= self)
		{
			plan_error(ctx, CE_ERR_DEFINITION, path,
					   "step \"%s\" cannot skip to step %lld, which does not come after it",
					   st->name, n);
			ctx->err->pos = (int) (p - text) + 1;
			plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
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
	plan_strfmt(path, sizeof(path), "steps[%d].dependsOn", cyc[start]);
	plan_error(ctx, CE_ERR_DEFINITION, path, "%s", b.data);
	plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
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
bool
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

		plan_strfmt(prefix, sizeof(prefix), "steps[%d]", i);
		memset(mark, 0, n);

		/* 1. dependsOn */
		for (k = 0; k < st->ndepends_on; k++)
		{
			int			target = step_index(plan, st->depends_on[k]);

			plan_strfmt(path, sizeof(path), "%s.dependsOn", prefix);
			if (target < 0)
			{
				if (ce_plan_step_by_id(plan, st->depends_on[k]) != NULL)
				{
					plan_error(ctx, CE_ERR_DEFINITION, path,
							   "step \"%s\" depends on fallback step %d",
							   st->name, st->depends_on[k]);
					plan_strfmt(ctx->err->detail, sizeof(ctx->err->detail),
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
			plan_strfmt(path, sizeof(path), "%s.fallbackStep", prefix);
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
