/*-------------------------------------------------------------------------
 *
 * compose.h
 *	  Composition (SPEC section 9): child executions (steps of type
 *	  "chain", subchain.c) and iterations (forEach and repeatUntil,
 *	  iterate.c), built on the engine's bookkeeping (engine_int.h).
 *
 * Glossary (see compose_plan.h): a child execution has a parent (column
 * parent_id, parent_line: the parent's line that waits for it); the
 * container line of an iterating step waits while its iteration lines
 * (line type "iteration") run; its output holds the counters
 * {"iterations": {"first", "count", "next", "done", "parked"}} until it
 * completes: lines first .. first + count - 1 are the elements of a
 * forEach in order; next counts the iterations made ready so far, done
 * those that finished, parked those a pause set back to pending.
 *
 * Locking: a transition locks the headers of its execution's ancestors,
 * root first, before its own (ce_lock_ancestors, from the engine's header
 * lock), so that a child's last transition (which moves its parent on) and
 * a cancel of the parent (which cancels the child) take the same locks in
 * the same order.
 *
 * Everything here runs inside a transition or control call: SPI
 * connected, as the extension owner, the bookkeeping search_path.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_COMPOSE_H
#define CE_COMPOSE_H

#include "engine_int.h"
#include "compose_plan.h"

/* Whether a line (LineRow *) is an iteration line. */
#define CE_IS_ITERATION(l) \
	((l)->line_type != NULL && strcmp((l)->line_type, "iteration") == 0)

/* Whether the step runs as iterations (forEach or repeatUntil). */
static inline bool
ce_step_iterates(const CeStep *step)
{
	return step->compose != NULL &&
		(step->compose->for_each != NULL || step->compose->repeat_until != NULL);
}

/* --- iterate.c --- */

/*
 * The container's first transition: make its iteration lines (the first
 * ones ready), and wait.  The header is not locked yet.  Returns false
 * with run's failure set when the step cannot start (items not an array).
 */
extern bool ce_container_start(ExecRow *ex, LineRow *line, const CeStep *step,
							   CeLookupCtx *lk, CeStepRun *run, int attempt);

/* The variables an iteration line binds ({"item", "index"}), or NULL. */
extern Jsonb *ce_iteration_vars(ExecRow *ex, LineRow *line);

/* What an iteration line records as its input: its variables and input. */
extern Jsonb *ce_iteration_input(Jsonb *vars, Jsonb *input);

/*
 * For a compensation of an iteration: that element's variables and
 * outputs; NULL for other compensations.
 */
extern Jsonb *ce_compensation_vars(ExecRow *ex, LineRow *line);

/*
 * An iteration ended: it succeeded (subtransaction still open), or failed
 * for good (after its retries; header locked).  Records it, and goes on
 * with the container (the next iterations, or the container's end).
 */
extern void ce_iteration_succeeded(ExecRow *ex, LineRow *line, const CeStep *step,
								   CeStepRun *run, int attempt, Jsonb *input);
extern void ce_iteration_failed(ExecRow *ex, LineRow *line, const CeStep *step,
								CeStepRun *run, int attempt, Jsonb *input, Jsonb *error);

/* An iteration claimed while its execution is paused (back to pending). */
extern void ce_iteration_park(ExecRow *ex, LineRow *line);

/*
 * From advance: make parked iterations ready again once the execution
 * runs; resumed (chain_resume): also those the pause held back.
 */
extern void ce_iterations_advance(ExecRow *ex, List *lines, bool resumed);

/* A stopped execution reopens: its forEach steps but own_line go on (no element again). */
extern void ce_containers_reopen(ExecRow *ex, int own_line, bool failed_too);

/* Close a container's iterations for skip or retry; false: one is running. */
extern bool ce_container_settle(ExecRow *ex, int lineno);

/* Close the open iteration lines of the execution (not locked by others). */
extern void ce_iterations_close(ExecRow *ex, CeLineStatus status);

/* A container's counters (output->'iterations') into li. */
extern void ce_container_counters(Jsonb *iterations, LineInfo *li);

/* The share of a container's iterations that finished, in [0, 1). */
extern double ce_container_fraction(const LineInfo *li);

/* --- subchain.c --- */

/* The parent of a child execution (subchain.c fills it, execute.c records it). */
typedef struct CeParentLink
{
	pg_uuid_t	org;			/* the parent's organization (the child's) */
	pg_uuid_t	id;				/* the parent execution */
	int			line;			/* its line that waits for the child */
	int			step_id;
	const char *step_name;
	const char *chain_id;		/* the parent's chain */
	int			depth;			/* the child's depth (root: 0) */
	bool		in_session;		/* the parent is driven by chain_run */
	int			priority;		/* the parent's, inherited */
	Jsonb	   *ancestors;		/* ids, root first, the parent last */
} CeParentLink;

/*
 * Record a child execution of chain_id's active version, owned by owner,
 * in the parent's organization, as chain_execute would (the same checks
 * and errors).  Defined with chain_execute (src/api/execute.c).  SPI
 * connected, as the extension owner, fixed search_path.
 */
extern void ce_execution_create_child(const char *chain_id, Jsonb *input, Oid owner,
									  const CeParentLink *parent, pg_uuid_t *id);

/*
 * A step of type "chain": start its child execution and wait for it.
 * Returns false with run's failure set when the child cannot start.
 * The header is not locked yet.
 */
extern bool ce_child_start(ExecRow *ex, LineRow *line, const CeStep *step,
						   CeLookupCtx *lk, CeStepRun *run, int attempt, Jsonb *input);

/* The child of a waiting chain line (its timeoutMs passed, it is skipped or retried): cancel it. */
extern void ce_child_cancel_for_line(ExecRow *ex, LineRow *line, const char *reason);

/*
 * The execution ended (or started compensating): cancel its live
 * children (and theirs); and, when it is a child, move its parent's line
 * on (completed: the child's outputs; otherwise its failure).
 */
extern void ce_children_cancel(ExecRow *ex);
extern void ce_child_finished(ExecRow *ex, CeExecStatus status, Jsonb *output, Jsonb *error);

/* Lock the headers of the execution's ancestors, root first (once). */
extern void ce_lock_ancestors(ExecRow *ex);

/*
 * Whether executions a and b are of one family (the same root: a parent,
 * its children, theirs).  SPI connected.
 */
extern bool ce_same_family(const pg_uuid_t *org, const pg_uuid_t *a, const pg_uuid_t *b);

/*
 * chain_run: the live executions an in-session run drives (the root and
 * its descendants), root first.  SPI connected.
 */
extern List *ce_family(const pg_uuid_t *org, const pg_uuid_t *root);

#endif							/* CE_COMPOSE_H */
