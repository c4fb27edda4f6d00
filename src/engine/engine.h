/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  The engine's entry points for the executors and chain_run: one step
 *	  transition as one transaction (transition.c), timers and deadlines
 *	  (timers.c), the store's query helpers (store.c).
 *
 * Used by the background executors (executor.c) and by chain_run (the
 * in-session procedure).  Every function here starts and commits its own
 * transaction(s): call it with no transaction open.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_ENGINE_H
#define CE_ENGINE_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

typedef enum CeTransitionResult
{
	CE_TR_NONE,					/* nothing was due */
	CE_TR_DONE,					/* one line was processed (committed) */
	CE_TR_GONE					/* the extension is not installed */
} CeTransitionResult;

/*
 * Claim one due line (of any execution, or only of *only_execution),
 * run it, record it, advance its execution and notify, in one
 * transaction.  Errors of the step itself are recorded, not thrown; an
 * error thrown out of here is a bookkeeping failure (the transaction is
 * rolled back and the line stays due).
 */
extern CeTransitionResult ce_transition(const pg_uuid_t *only_execution);

/*
 * After an error thrown out of ce_transition (its transaction aborted):
 * the line it had claimed, if any (the record is cleared), and the
 * recording of that error on the line as an attempt that failed with
 * failure type internal_error (plain: just mark the line and its
 * execution failed).  ce_transition_fail_line runs its own transaction.
 */
extern bool ce_transition_take_claim(pg_uuid_t *org, pg_uuid_t *id, int *line_number);
extern void ce_transition_fail_line(const pg_uuid_t *org, const pg_uuid_t *id,
									int line_number, const char *sqlstate,
									const char *message, bool plain);

/*
 * The earliest time at which a line becomes due (retry back-off, runAt,
 * wait timer, external deadline) or an execution reaches its deadline;
 * DT_NOEND when there is none.  Runs its own transaction.
 */
extern TimestampTz ce_next_due(const pg_uuid_t *only_execution);

/*
 * End executions past their maxExecutionTime (status timeout).  Returns
 * how many.  Runs its own transaction.
 */
extern int	ce_sweep_deadlines(void);

/*
 * Recovery at start-up: executions a crash left mid-flight need nothing,
 * as their lines are still ready; this reports them once at LOG.
 */
extern void ce_recover_report(void);

/*
 * Record on its line an attempt whose executor died (inflight.c found it).
 * Runs its own transaction.  True when the line was locked by another
 * transaction, so nothing was recorded.
 */
extern bool ce_record_crash(const pg_uuid_t *org, const pg_uuid_t *execution,
							int line, int attempt, TimestampTz started_at);

/*
 * The same, inside the caller's transaction (which must have an active
 * snapshot); chain_run commits between calls itself.  only_org names the
 * organization of only_execution.
 */
extern CeTransitionResult ce_transition_in_xact(const pg_uuid_t *only_execution,
												const pg_uuid_t *only_org);
extern TimestampTz ce_next_due_in_xact(const pg_uuid_t *only_execution,
									   const pg_uuid_t *only_org);
extern int	ce_sweep_deadlines_in_xact(void);

/* True while chain_run drives an execution in this session (no wake-ups). */
extern bool ce_inline_runner;

/* Wake n executors at commit (not when chain_run drives the execution). */
extern void ce_wake_executors(int n);

/*
 * A new execution's step lines (execute.c), inserted by direct row access
 * (direct_rows.c) after its header, in the same transaction: line i + 1
 * for step_ids[i], named names[i], ready or pending, smart code smart[i],
 * with the execution's priority and not_before.  False, with nothing
 * written, where direct access does not apply: then the statement runs.
 */
extern bool ce_direct_insert_lines(const pg_uuid_t *org, const pg_uuid_t *id, int priority,
								   TimestampTz not_before, int n, const int *step_ids,
								   char *const *names, const bool *ready, char *const *smart);

/*
 * A bookkeeping query of chainexec, prepared once per backend with a
 * generic plan (on Citus, a plan of the plan cache's choice) and kept;
 * ce_run_query() executes it through SPI.
 */
typedef struct CeQuery
{
	const char *sql;
	int			nargs;
	Oid			types[16];
	struct _SPI_plan *plan;
	bool		citus;			/* plan prepared in Citus mode */
	int			extra;			/* parameters added to the plan (clock) */
} CeQuery;

/* Whether chainexec's tables are distributed by Citus (SPI connected). */
extern bool ce_citus_mode(void);
/* The last answer of ce_citus_mode in this process (no query). */
extern bool ce_citus_mode_known(void);
/* Whether an organization's lines are on this node (Citus; else true, no query). */
extern bool ce_citus_org_here(const pg_uuid_t *org);

extern int	ce_run_query(CeQuery *q, Datum *values, const char *nulls,
						 bool read_only, long count);

/*
 * Start a GUC nesting level with the bookkeeping's fixed search_path,
 * "pg_catalog, chainexec, pg_temp": no object of the caller's (or of a
 * step's) can stand in for a catalog one.  End it with AtEOXact_GUC.
 */
extern int	ce_fixed_search_path(void);

/*
 * The ETA of an execution of the chain version that has not started (the
 * step averages of its history, as its events will report), or -1.  SPI
 * connected, bookkeeping search_path.
 */
extern long ce_eta_new_execution(const pg_uuid_t *org, const char *chain_id, int version);

/* The extension's owner, who does the bookkeeping (SPI must be connected). */
extern Oid	ce_extension_owner(void);

/*
 * Variables merged into an execution's context under the context's rules,
 * the one check of every path that writes a context (chain_execute's input,
 * a step's outputs, chain_step_complete's and chain_skip_step's outputs):
 * a JSON object, no top-level "chain" (the built-ins' name), at most
 * chainexec.max_context_bytes in all.  kind is "input" or "output"; subject
 * names whose ("chain \"x\"", "step \"y\""); context may be NULL.
 * Returns the merged context, or NULL with err set.
 */
typedef struct CeContextError
{
	const char *sqlstate;
	char	   *message;
	char	   *detail;
	char	   *hint;
} CeContextError;

extern Jsonb *ce_context_merge(Jsonb *context, Jsonb *vars, const char *kind,
							   const char *subject, CeContextError *err);

/* ce_context_merge, raising its error. */
extern Jsonb *ce_context_merge_or_error(Jsonb *context, Jsonb *vars, const char *kind,
										const char *subject);

/* A smart code: CHAINEXEC.<KIND>.<NAME>.V<version>. */
extern char *ce_smart_code(const char *kind, const char *name, int version);

#endif							/* CE_ENGINE_H */
