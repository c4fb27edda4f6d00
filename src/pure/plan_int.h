/*-------------------------------------------------------------------------
 *
 * plan_int.h
 *	  Declarations shared by the parts of the definition compiler, private
 *	  to src/pure/plan*.c (the public interface is plan.h).
 *
 * The compiler is split by concern:
 *	  plan.c        ce_plan_build(): the chain-level keys, then the steps,
 *	                then the second pass
 *	  plan_read.c   reading a definition: known keys (with suggestions),
 *	                typed getters, names, expressions and templates, errors
 *	                and warnings
 *	  plan_step.c   one step (or fallback step): one helper per group of
 *	                step keys
 *	  plan_retry.c  retry settings: defaults, "retryConfig", delays, which
 *	                failures are retried
 *	  plan_resil.c  the resilience keys: "circuitBreaker" and "cache" of a
 *	                step, "retryBudget" of the chain
 *	  plan_flow.c   people in the loop and flow control: "requiredRoles",
 *	                "approvalThreshold", "limits"
 *	  plan_graph.c  the second pass: dependsOn and skip_to_step_N targets,
 *	                predecessors, cycles, data-flow warnings; steps by id
 *
 * Adding a key: list it in the key list of its object (plan_chain_keys,
 * plan_step_keys, plan_retry_keys, plan_breaker_keys, ..., all in plan_read.c, so that an unknown
 * key's hint can name the object it belongs in), then read it in the helper
 * of its group: plan.c for the chain, plan_step.c for a step, plan_retry.c
 * for "retryConfig".
 *
 * Dependencies run one way: plan.c -> plan_step.c -> plan_retry.c ->
 * plan_read.c, plan.c and plan_step.c -> plan_resil.c -> plan_read.c, and
 * plan.c -> plan_graph.c -> plan_read.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_PLAN_INT_H
#define CE_PLAN_INT_H

#include "plan.h"

#define PLAN_MAX_VARS	256		/* names in one variable list */
#define PLAN_PATH_LEN	CE_ERR_PATH_LEN
#define PLAN_MAX_WARNINGS	100	/* the rest are dropped; duplicates too */

/* Which object's keys plan_check_keys() checks. */
typedef enum KeyContext
{
	KC_CHAIN,
	KC_STEP,
	KC_RETRY,
	KC_BREAKER,
	KC_CACHE,
	KC_BUDGET
} KeyContext;

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

/* plan_read.c: errors, warnings, paths */
extern void plan_strfmt(char *out, size_t len, const char *fmt,...) pg_attribute_printf(3, 4);
extern void plan_error(PlanCtx *ctx, CeErrCode code, const char *path,
					   const char *fmt,...) pg_attribute_printf(4, 5);
extern void plan_warn(PlanCtx *ctx, const char *fmt,...) pg_attribute_printf(2, 3);
extern void plan_path_join(char *out, const char *prefix, const char *key);
extern void plan_key_display(char *out, size_t outlen, const char *key,
							 size_t keylen);
extern int	plan_lower(int c);
extern bool plan_str_ieq(const char *a, const char *b);

/* plan_read.c: keys and typed getters */
extern bool plan_check_keys(PlanCtx *ctx, const CeJson *obj, KeyContext kc,
							const char *prefix);
extern bool plan_get_string(PlanCtx *ctx, const CeJson *obj, const char *key,
							const char *prefix, bool nonempty, char **out);
extern bool plan_json_integer(const CeJson *v, long long *out);
extern bool plan_get_int(PlanCtx *ctx, const CeJson *obj, const char *key,
						 const char *prefix, long long min, long long max,
						 int *out, bool *present);
extern bool plan_get_bool(PlanCtx *ctx, const CeJson *obj, const char *key,
						  const char *prefix, bool *out);
extern bool plan_get_object(PlanCtx *ctx, const CeJson *obj, const char *key,
							const char *prefix, bool allow_bool,
							bool allow_int, CeJson **out);
extern bool plan_valid_name_chars(const char *s, bool also_dot_dash);
extern bool plan_get_var_list(PlanCtx *ctx, const CeJson *obj,
							  const char *key, const char *prefix,
							  int *nout, char ***out);

/* plan_read.c: expressions and templates */
extern bool plan_parse_template(PlanCtx *ctx, const char *text,
								const char *prefix, const char *key,
								const char *stepname, CeTemplate **tpl);
extern CeExpr *plan_parse_expr(PlanCtx *ctx, const char *text,
							   const char *path, const char *key,
							   const char *stepname);

/* plan_retry.c */
extern bool plan_parse_retry(PlanCtx *ctx, const CeJson *rc,
							 const char *prefix, CeRetry *r);

/* plan_resil.c: circuitBreaker, cache (steps), retryBudget (chain) */
extern bool plan_parse_breaker(PlanCtx *ctx, const CeJson *js,
							   const char *prefix, CeBreakerConfig **out);
extern bool plan_parse_cache(PlanCtx *ctx, const CeJson *js,
							 const char *prefix, CeCacheConfig **out);
extern bool plan_parse_budget(PlanCtx *ctx, const CeJson *def, int *out);

/* plan_step.c */
extern bool plan_parse_step(PlanCtx *ctx, const CeJson *js,
							const char *prefix, CeStep *st, bool is_fallback);

/* plan_flow.c */
extern bool plan_parse_step_flow(PlanCtx *ctx, const CeJson *js,
								 const char *prefix, CeStep *st);

/* plan_graph.c */
extern bool plan_order(PlanCtx *ctx, const CeJson *input_props);

#endif							/* CE_PLAN_INT_H */
