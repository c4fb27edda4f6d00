/*-------------------------------------------------------------------------
 *
 * compose_plan.h
 *	  The composition keys of a step (SPEC section 9 "Composition"),
 *	  checked and compiled, pure C: "type": "chain" with "chain" and
 *	  "input", "forEach" with "maxConcurrency", "repeatUntil" with
 *	  "maxIterations".
 *
 * Glossary:
 *	  child      an execution started by a step of type "chain" of another
 *	             execution (its parent); same organization and owner
 *	  container  the step line of a forEach or repeatUntil step: it waits
 *	             while its iterations run and gathers them at the end
 *	  iteration  one run of such a step, a line of its own (line type
 *	             "iteration", column iteration = the element's index, or
 *	             the repetition's number, from 0)
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_COMPOSE_PLAN_H
#define CE_COMPOSE_PLAN_H

#include "ce_pure.h"
#include "cejson.h"
#include "expr.h"

/* repeatUntil's maxIterations when not given */
#define CE_DEFAULT_MAX_ITERATIONS	100
/* bounds of maxConcurrency and maxIterations */
#define CE_MAX_ITERATIONS_LIMIT		1000000

typedef struct CeCompose
{
	/* type "chain" */
	char	   *child_chain;	/* "chain": the child chain's id, or NULL */
	CeJson	   *child_input;	/* "input": an object whose string values
								 * are templates, or NULL */

	/* forEach */
	char	   *for_each;		/* as written, or NULL */
	int			for_each_npath;
	char	  **for_each_path;	/* the path to the array */
	int			max_concurrency;	/* 0: every element at once */

	/* repeatUntil */
	char	   *repeat_until;	/* as written, or NULL */
	CeExpr	   *repeat_expr;
	int			max_iterations;
} CeCompose;

/*
 * Read the composition keys of the step object js (path prefix, step name
 * and whether it is a chain step, a fallback step, and its onFailure is
 * "fallback").  Returns true and sets *out (NULL when the step has none of
 * them); false with err filled (path, message, hint) on an error.
 */
extern bool ce_compose_parse(const CeJson *js, const char *prefix,
							 const char *stepname, bool is_chain_kind,
							 bool is_fallback, bool on_failure_fallback,
							 CeCompose **out, CeError *err);

/* Whether a string of "input" is exactly one bare variable path "{a.b}". */
extern bool ce_compose_bare_placeholder(const char *s, size_t len,
										const char *const **path, int *npath);

#endif							/* CE_COMPOSE_PLAN_H */
