/*-------------------------------------------------------------------------
 *
 * explain.h
 *	  The shape of a chain, for people: chain_explain (the plan as text, as
 *	  EXPLAIN shows a query) and chain_graph (the DAG in Mermaid or DOT).
 *
 * Glossary (see plan.h): a chain version compiles to a plan of steps;
 * each step's predecessors (plan.h "preds") are what must finish before
 * it is ready.  Here:
 *	  stage          steps whose predecessors all lie in earlier stages:
 *	                 the steps of one stage may run at once (a parallel
 *	                 group when it has more than one)
 *	  direct preds   the predecessors left after removing those implied by
 *	                 another one (a transitive reduction), as drawn
 *	  critical path  the chain of predecessors with the longest estimated
 *	                 (or, for an execution, actual) duration; ties go to
 *	                 the longer path in steps
 *
 * Everything is read with SPI as the calling role, so row-level security
 * decides which chains, executions and history it sees.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_EXPLAIN_H
#define CE_EXPLAIN_H

#include "postgres.h"
#include "utils/uuid.h"

#include "plan.h"

/* One step of a plan (or a fallback step), analysed. */
typedef struct CeShapeStep
{
	const CeStep *step;
	int			stage;			/* 1-based; a fallback: its step's */
	int			ndirect;
	int		   *direct;			/* indices into CeShape.steps, array order */
	bool		critical;
	int			skip_target;	/* skip_to_step_N's N, else 0 */

	/* history (chain) or the execution's line */
	bool		has_est;
	double		est_ms;			/* average duration of completed lines */
	long		runs;			/* how many */
	bool		has_line;		/* an execution's line exists */
	char	   *status;			/* its status */
	int			attempt;
	bool		has_duration;
	double		duration_ms;	/* first start to end (or now) */

	/* computed: earliest finish on the longest path ending here */
	double		finish_ms;
	int			path_steps;
	int			crit_pred;		/* index of the predecessor on it, -1 */
} CeShapeStep;

/* A compensation line of an execution. */
typedef struct CeShapeCompensation
{
	int			step_id;
	char	   *status;
} CeShapeCompensation;

typedef struct CeShape
{
	char	   *chain_id;
	int			version;
	char	   *chain_status;	/* draft, active, ... */
	CePlan	   *plan;
	int			nsteps;			/* plan->nsteps */
	CeShapeStep *steps;			/* nsteps entries, array order */
	CeShapeStep *fallbacks;		/* nsteps entries; .step NULL when none */
	int			nstages;
	double		critical_ms;	/* estimated (or actual) duration of the path */
	int			critical_unknown;	/* steps on the path without history */
	int			ncritical;
	int		   *critical;		/* indices, in path order */

	/* an execution's graph */
	bool		is_execution;
	char	   *execution_id;
	char	   *execution_status;
	int			ncompensations;
	CeShapeCompensation *compensations;
} CeShape;

/*
 * Load and analyse a chain version (version 0: the active one, else the
 * latest) of the session's organization, with its history.  SPI connected,
 * fixed search_path, as the caller.  Raises 42704 when the caller sees no
 * such chain.
 */
extern CeShape *ce_shape_chain(const char *chain_id, int version);

/*
 * Load and analyse an execution the caller can see, with its lines;
 * NULL when it sees none.  Same conditions.
 */
extern CeShape *ce_shape_execution(const pg_uuid_t *execution);

/* Duration for people: "850 ms", "12.3 s", "4 min 5 s". */
extern char *ce_shape_duration(double ms);

/*
 * Connect to SPI and set the fixed search_path ("pg_catalog, chainexec,
 * pg_temp"); end it.  ce_shape_result ends it too, and returns txt as a
 * text in outer after SPI_finish.
 */
extern int	ce_shape_path_begin(void);
extern void ce_shape_path_end(int level);
extern text *ce_shape_result(int level, const char *txt, MemoryContext outer);

#endif							/* CE_EXPLAIN_H */
