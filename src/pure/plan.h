/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  A chain definition checked and compiled into an in-memory plan
 *	  (SPEC section 3), pure C.
 *
 * Glossary:
 *	  chain      a named workflow; chain_id plus a version number names one
 *	             immutable definition (once published)
 *	  step       one entry of "steps"; steps[i] has index i (array order)
 *	             and a user-chosen positive integer id
 *	  execution  one run of a chain version (a universal_transactions row)
 *	  line       one step's record within an execution
 *	             (a universal_transaction_lines row); retries are attempts
 *	             on the same line
 *
 * ce_plan_build() checks every key and type (an unknown key is an error,
 * except inside "metadata"), unique step ids and names, dependsOn targets,
 * cycles (the message names the cycle), fallback steps, kind aliases,
 * retry settings, limits; parses every expression and template; and
 * computes each step's predecessors per SPEC "Ordering".  Errors name the
 * JSON path, e.g. steps[3].retryConfig.maxRetries (0-based array index).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_PLAN_H
#define CE_PLAN_H

#include "ce_pure.h"
#include "cejson.h"
#include "expr.h"
#include "template.h"

typedef enum CeStepKind
{
	CE_STEP_SQL,				/* alias database_operation */
	CE_STEP_FUNCTION,			/* alias instruction_set */
	CE_STEP_TEMPLATE,			/* alias template_processing */
	CE_STEP_EXTERNAL,			/* alias external_api */
	CE_STEP_WAIT,
	CE_STEP_CHAIN				/* a child execution (compose_plan.h) */
} CeStepKind;

typedef enum CeOnFailure
{
	CE_ONFAIL_FAIL,
	CE_ONFAIL_WARN,
	CE_ONFAIL_SKIP,
	CE_ONFAIL_FALLBACK,
	CE_ONFAIL_ESCALATE			/* fail the line, pause the execution */
} CeOnFailure;

typedef enum CeBackoff
{
	CE_BACKOFF_FIXED,
	CE_BACKOFF_LINEAR,
	CE_BACKOFF_EXPONENTIAL,
	CE_BACKOFF_RANDOM			/* uniform in [baseDelayMs, maxDelayMs] */
} CeBackoff;

typedef enum CeNotify
{
	CE_NOTIFY_STEPS,
	CE_NOTIFY_LIFECYCLE,
	CE_NOTIFY_NONE
} CeNotify;

typedef struct CeRetry
{
	int			maxRetries;		/* retries after the first attempt */
	CeBackoff	strategy;
	int			baseDelayMs;
	int			maxDelayMs;
	bool		jitter;			/* +-25% */
	int			nretryOn;
	char	  **retryOn;		/* failure types or SQLSTATEs; none = the
								 * transient types */
	bool		explicit_config;	/* came from retryConfig, not the
									 * kind's default */
} CeRetry;

/* Step key circuitBreaker (SPEC section 9), defaults filled in. */
typedef struct CeBreakerConfig
{
	int			failure_threshold;	/* percent of the calls in the window */
	int			minimum_throughput; /* calls in the window before it may open */
	int			window_ms;
	int			open_duration_ms;	/* open, before a probe may go through */
	int			half_open_successes;	/* probes in a row that close it */
	char	   *key;			/* NULL: the step's handler, else chain id
								 * and step name */
} CeBreakerConfig;

/* Step key cache (SPEC section 9), defaults filled in. */
typedef struct CeCacheConfig
{
	int			ttl_ms;
	int			max_entries;	/* per role, chain and step in an organization */
	int			nkey;			/* 0: the step's inputVariables, else its
								 * rendered input */
	char	  **key;			/* variable names */
} CeCacheConfig;

typedef struct CeStep CeStep;
typedef struct CeCompose CeCompose;

struct CeStep
{
	int			index;			/* position in steps[]; -1 for a fallback */
	int			id;
	char	   *name;
	char	   *description;
	CeStepKind	kind;
	const char *kind_name;		/* canonical: sql, function, template,
								 * external, wait */

	/* kind sql: the statement as a template; ce_template_sql() gives $n */
	char	   *sql;
	CeTemplate *sql_tpl;

	/* function handler name (any kind with instructionSet and no sql) */
	char	   *instruction_set;

	/* kind template */
	char	   *template_id;	/* registered template, or NULL */
	char	   *template_text;	/* inline template, or NULL */
	CeTemplate *template_tpl;	/* parsed inline template */

	char	   *input_template;
	CeTemplate *input_tpl;		/* NULL when absent */

	int			ninput_vars;
	char	  **input_vars;
	int			noutput_vars;
	char	  **output_vars;

	char	   *condition;		/* conditionalExecution text, or NULL */
	CeExpr	   *condition_expr;
	bool		condition_is_routing;	/* reads one of output_vars: taken
										 * after the step ran */

	int			ndepends_on;
	int		   *depends_on;		/* step ids as written */
	bool		parallel;		/* parallelExecution */

	CeRetry		retry;

	char	   *rollback_action;	/* NULL when absent */
	bool		rollback_is_handler;	/* a handler name, not SQL */
	CeTemplate *rollback_tpl;	/* SQL form when not a handler */

	CeOnFailure on_failure;
	CeStep	   *fallback;		/* onFailure fallback: the fallbackStep */
	CeCompose  *compose;		/* type "chain", forEach, repeatUntil
								 * (compose_plan.h); NULL when none */

	int			timeout_ms;		/* 0 = none */
	int			wait_ms;		/* kind wait */
	int			max_memory_mb;	/* 0 = none */
	char	   *verification_query;
	CeTemplate *verification_tpl;	/* parsed verificationQuery, or NULL */
	CeJson	   *metadata;		/* may be NULL */
	CeCacheConfig *cache;		/* NULL: no cache */
	CeBreakerConfig *circuit_breaker;	/* NULL: no breaker */

	/* people in the loop (external steps) and flow control */
	int			nrequired_roles;	/* requiredRoles: who completes or fails it */
	char	  **required_roles;
	int			approval_threshold; /* approvals by distinct roles; 1 with
									 * requiredRoles, else 0 */
	int			nlimits;		/* limits: names of the organization's limits */
	char	  **limits;

	/*
	 * Computed: indices of the steps that must have finished before this
	 * one becomes ready (SPEC "Ordering" rules 1-3, or strictly the
	 * previous step when parallelStepsEnabled is false).  Sorted, unique.
	 */
	int			npreds;
	int		   *preds;
};

typedef struct CePlan
{
	char	   *id;
	char	   *name;
	char	   *description;
	char	   *version_label;
	char	   *category;
	CeJson	   *input_schema;	/* NULL when absent */
	CeJson	   *output_schema;
	int			nsteps;
	CeStep	   *steps;			/* nsteps entries, array order */
	bool		rollback_enabled;
	int			max_execution_time_ms;	/* 0 = none */
	bool		parallel_enabled;	/* parallelStepsEnabled, default true */
	bool		save_intermediate;	/* saveIntermediateResults, default true:
									 * the default of chain_execute's option */
	int			max_concurrency;	/* 0 = unlimited */
	int			concurrency_limit;	/* concurrencyLimit: executions at once
									 * per organization; 0 = unlimited */
	int			nsuccess;
	char	  **success_text;
	CeExpr	  **success_expr;
	CeNotify	notify;			/* default steps */
	char	   *search_path;
	CeJson	   *performance_targets;
	int			retry_budget;	/* retryBudget.maxRetries; -1: none */
	CeJson	   *metadata;
} CePlan;

/* Non-fatal findings, for chain_validate's "warnings". */
typedef struct CeWarnings
{
	int			count;
	char	  **items;
} CeWarnings;

/*
 * Check and compile a definition.  Returns NULL with err filled (path,
 * code, message, pos for expression/template errors) on the first error.
 * warnings may be NULL.
 */
extern CePlan *ce_plan_build(const CeJson *def, CeError *err,
							 CeWarnings *warnings);

/* Step by id (searches fallbacks too); NULL when unknown. */
extern CeStep *ce_plan_step_by_id(const CePlan *plan, int id);

/* Canonical kind name <-> enum; aliases accepted by the parser. */
extern bool ce_step_kind_from_name(const char *name, CeStepKind *kind);

/* The default retry settings of a kind (SPEC section 5). */
extern void ce_retry_default(CeStepKind kind, CeRetry *r);

/*
 * Delay in ms before retry number attempt (1 = first retry) under r,
 * without jitter; the caller applies jitter with a random fraction in
 * [-0.25, 0.25].
 */
extern long ce_retry_delay_ms(const CeRetry *r, int attempt);

/*
 * The delay of backoffStrategy "random": uniform in [baseDelayMs,
 * maxDelayMs], fraction being a random number in [0, 1).
 */
extern long ce_retry_delay_random_ms(const CeRetry *r, double fraction);

/* Whether a failure (type, sqlstate) is retried under r. */
extern bool ce_retry_matches(const CeRetry *r, const char *failure_type,
							 const char *sqlstate);

/* Valid chain id: [a-z0-9_.-]{1,63}. */
extern bool ce_valid_chain_id(const char *s);

#endif							/* CE_PLAN_H */
