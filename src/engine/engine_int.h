/*-------------------------------------------------------------------------
 *
 * engine_int.h
 *	  What the files of the engine share: the execution and line rows as
 *	  a transition sees them, and the one copy of each piece of
 *	  bookkeeping (store.c: reading, locking and writing rows; context.c:
 *	  values; progress.c; events.c; advance.c: readiness and the end;
 *	  transition.c: recording an attempt).  The control functions
 *	  (control.c) use the same.
 *
 * Everything here runs inside the caller's transaction, with SPI
 * connected, as the extension owner, under ce_bookkeeping_begin()'s fixed
 * search_path.  No engine file includes control.h: control.c builds on
 * the engine, never the other way round.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_ENGINE_INT_H
#define CE_ENGINE_INT_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "plan.h"
#include "status.h"
#include "step.h"

/* The execution header as a transition sees it. */
typedef struct ExecRow
{
	pg_uuid_t	org;
	pg_uuid_t	id;
	char	   *org_s;
	char	   *id_s;
	CeExecStatus status;
	char	   *chain_id;
	int			version;
	Jsonb	   *context;
	Oid			owner;
	bool		has_deadline;
	TimestampTz deadline;
	int			priority;
	bool		save_intermediate;
	int			max_retries;	/* options.maxRetries, or -1 */
	int			progress_floor; /* progress already reported (see
								 * ce_progress_refresh) */
	CePlan	   *plan;
	char	   *search_path;	/* the caller's, for the steps */
	bool		has_parent;		/* a child execution (subchain.c) */
	pg_uuid_t	parent_id;
	int			parent_line;
	bool		ancestors_locked;	/* ce_lock_ancestors done */
	bool		header_read;	/* the claim read the header (ce_claim_next) */
	bool		ran;			/* a step of it ran in this transaction
								 * (ce_exec_ran_to_end) */
	bool		not_started;	/* none of its steps has started, and it
								 * stays pending until one does (a control
								 * call, control.c) */
} ExecRow;

/* One claimed line. */
typedef struct LineRow
{
	int			line_number;
	char	   *line_type;
	int			step_id;
	char	   *step_name;
	CeLineStatus status;
	int			attempt;
	int			parent_line;
	TimestampTz started_at;
	bool		has_started;
	bool		ran_now;		/* the step ran in this transaction: its
								 * attempt started at the transaction's start */
	int			crashes;		/* attempts in a row whose executor died */
	int			iteration;		/* an iteration line's (compose.h) */
	bool		no_retry;		/* a failure that is final (iterate.c) */
} LineRow;

/* A line as advance() sees it. */
typedef struct LineInfo
{
	int			line_number;
	char		type;			/* s(tep), f(allback), c(ompensation) */
	int			step_id;
	CeLineStatus status;
	int			parent_line;
	/* a waiting forEach or repeatUntil step line: its counters (iterate.c) */
	int			iter_count;
	int			iter_done;
	int			iter_parked;
} LineInfo;

/*
 * Bookkeeping context: a GUC nesting level with search_path
 * "pg_catalog, chainexec, pg_temp" (so that no object of the caller's can
 * stand in for a catalog one), running as the extension owner.  End it
 * with ce_bookkeeping_end (or let the transaction's abort undo it).
 */
typedef struct CeBookkeeping
{
	Oid			save_user;
	int			save_sec;
	int			guc_level;
} CeBookkeeping;

extern void ce_bookkeeping_begin(CeBookkeeping *bk);
extern void ce_bookkeeping_end(CeBookkeeping *bk);

/* Whether this backend is running a step (or compensation) of execution id. */
extern int	ce_in_step_of(const pg_uuid_t *id);

/* A change of a line (ce_line_update). */
typedef struct CeLineUpdate
{
	CeLineStatus status;
	int			attempt;
	bool		has_not_before;
	TimestampTz not_before;		/* when has_not_before; else kept */
	Jsonb	   *input;			/* kept when NULL; saveIntermediateResults */
	Jsonb	   *output;
	Jsonb	   *error;
	bool		started;		/* the attempt started now */
	bool		finished;		/* the line ends now */
} CeLineUpdate;

/* ---- store.c: rows ---- */

/* Columns of the current SPI_tuptable row. */
extern Datum ce_getcol(int row, int col, bool *isnull);
extern char *ce_getcol_text(int row, int col);
extern Jsonb *ce_getcol_jsonb(int row, int col);
/* A jsonb argument, or NULL (nullflag set). */
extern Datum ce_jsonb_datum_or_null(Jsonb *j, char *nullflag);
extern ArrayType *ce_int_array(List *ints);
extern void ce_extension_owner_forget(void);

/*
 * The columns of a line and of a header as the store and the claims read
 * them (ce_line_from_row: LINE_COLS from column 1; ce_header_from_row:
 * HEADER_COLS from column col0 + 1).
 */
/* The last column: attempts in a row whose executor died (ce_record_crash). */
#define LINE_COLS "organization_id, transaction_id, line_number, line_type, step_id, step_name, " \
	"status, attempt, coalesce(parent_line, 0), started_at, " \
	"CASE WHEN error->>'failure_type' = 'worker_crashed' " \
	"THEN coalesce((error->>'crashes')::int, 0) ELSE 0 END, coalesce(iteration, -1)"

/* The header as a transition reads it (ce_header_from_row). */
#define HEADER_COLS "status, chain_id, chain_version, context, owner::oid, deadline, priority, " \
	"coalesce((metadata->>'saveIntermediateResults')::boolean, true), " \
	"coalesce((metadata->'options'->>'maxRetries')::int, -1), " \
	"coalesce((metadata->>'progressFloor')::int, 0), parent_id, coalesce(parent_line, 0)"
#define HEADER_NCOLS 12
extern void ce_line_from_row(int row, LineRow *line);
extern void ce_header_from_row(int row, int col0, ExecRow *ex);

/* Claim a due line (claim.c); false: none. */
extern bool ce_claim_due(const pg_uuid_t *only, LineRow *line, ExecRow *ex);
/*
 * The due time up to which this backend's last dispatch claim (ce_claim_due
 * for any execution) looked: lines due by then that it did not take were
 * locked by a transition, which wakes the executors when it commits.
 * DT_NOBEGIN when no such claim ran since the last ce_next_due.
 */
extern TimestampTz ce_claimed_due_upto;
extern bool ce_step_line(ExecRow *ex, int step_id, bool lock, LineRow *line);
extern bool ce_claim_line_number(const pg_uuid_t *org, const pg_uuid_t *id, int line_number,
								 LineRow *line);

/* Reading and locking (ex->org and ex->id set). */
extern void ce_exec_read_header(ExecRow *ex);	/* header only, no lock */
extern void ce_exec_read(ExecRow *ex);	/* header and plan, no lock */
extern void ce_exec_lock(ExecRow *ex);	/* row lock; refreshes status, context */
extern List *ce_exec_lines(ExecRow *ex);	/* LineInfo *, by line number */

/* Writing lines. */
extern void ce_line_update(ExecRow *ex, int line_number, CeLineUpdate *u);
extern void ce_line_set_status(ExecRow *ex, int line_number, CeLineStatus status);
extern void ce_line_insert(ExecRow *ex, const char *type, const CeStep *step,
						   CeLineStatus status, int parent_line);
extern void ce_line_park_timer(ExecRow *ex, int line_number);
/* Close lines (not locked by others) with a final status. */
extern void ce_lines_close(ExecRow *ex, List *line_numbers, CeLineStatus status, Jsonb *error);
extern void ce_lines_promote(ExecRow *ex, List *line_numbers);
/* A step's completion and new context, written with the promotion (store.c). */
extern void ce_line_complete(ExecRow *ex, int line_number, CeLineUpdate *u, Jsonb *context);
extern void ce_store_hold_begin(void);
extern void ce_store_hold_end(void);
extern void ce_store_hold_reset(void);
struct CeQuery;
/* Before any bookkeeping query (query.c): write what is held back, unless q reads around it. */
extern void ce_store_before_query(const struct CeQuery *q);
/*
 * direct.c: a transition's rows by direct row access, where it applies
 * (not on Citus): the same as q_claim_next, q_header, q_lock_header,
 * q_lines (without the held-back completion) and q_write_step.
 */
extern bool ce_direct_available(void);
extern bool ce_direct_claim_next(ExecRow *ex, int line_number, bool own_session, LineRow *line);
extern int	ce_direct_claim_ready(const pg_uuid_t *pivot, bool other_than, ExecRow *ex, LineRow *line);
/* The line a transition runs: a follow-on, else the dispatch's (claim.c). */
extern bool ce_claim_transition_line(const pg_uuid_t *only_execution, LineRow *line, ExecRow *ex);
extern bool ce_direct_read_header(ExecRow *ex);
extern bool ce_direct_lock_header(ExecRow *ex);
extern List *ce_direct_lines(ExecRow *ex);
extern void ce_direct_write_step(const Datum *v, const char *n, int promote, int exec_status);
extern void ce_direct_write_header(ExecRow *ex, CeExecStatus status, bool finish, Jsonb *output,
								   Jsonb *error, Jsonb *context);
extern void ce_direct_write_context(ExecRow *ex, Jsonb *context);
extern bool ce_exec_status_held(ExecRow *ex, CeExecStatus status);
extern bool ce_store_take_promoted(pg_uuid_t *org, pg_uuid_t *id, int *line_number);
extern bool ce_claim_next(ExecRow *ex, int line_number, bool own_session, LineRow *line);
extern void ce_fail_line_plain(const pg_uuid_t *org, const pg_uuid_t *id, int line_number,
							   Jsonb *error);

/* Writing the header. */
extern void ce_exec_set_status(ExecRow *ex, CeExecStatus status);
extern void ce_exec_set_status_context(ExecRow *ex, CeExecStatus status, Jsonb *context);
extern void ce_exec_set_status_error(ExecRow *ex, CeExecStatus status, Jsonb *error);
extern void ce_exec_write_end(ExecRow *ex, CeExecStatus status, Jsonb *output, Jsonb *error);
extern bool ce_exec_ran_to_end(const ExecRow *ex, CeExecStatus status);

/* ---- advance.c: readiness and the end ---- */

/*
 * Make ready what can run; end the execution when nothing is left.
 * own_line: the line of the running transition (0: none).
 */
extern void ce_advance(ExecRow *ex, int own_line);

/* Close the open (pending, ready, waiting) lines not locked by others. */
extern void ce_close_open_lines(ExecRow *ex, int own_line, CeLineStatus status);

/* Record the end of the execution (status, output, error). */
extern void ce_exec_finish(ExecRow *ex, CeExecStatus status, Jsonb *output, Jsonb *error);

/* The execution failed or timed out: compensate, or end it. */
extern void ce_fail_execution(ExecRow *ex, CeExecStatus status, Jsonb *error, int own_line);


/*
 * Completed step and fallback lines whose step has a rollbackAction,
 * newest first, as pairs (line number, step id); with to_step > 0 only
 * those that completed after step to_step did.
 */
extern List *ce_rollback_candidates(ExecRow *ex, int to_step);

/*
 * Start compensating: one compensation line per candidate (first ready,
 * others pending), status compensating (error, when given, recorded),
 * event compensation_started.
 */
extern void ce_start_compensation(ExecRow *ex, List *candidates, Jsonb *error);

/* ---- progress.c ---- */

/*
 * Progress and ETA of the events that follow, from the lines; returns the
 * progress (percent) and sets *eta_ms (-1: unknown) when eta_ms is given.
 */
extern int	ce_progress_refresh(ExecRow *ex, long *eta_ms);
extern void ce_progress_from_lines(ExecRow *ex, List *lines);
/* The progress of the events that follow, and their ETA (-1: unknown). */
extern int	ce_progress_current(long *eta_ms);
/* A new transition: nothing known yet. */
extern void ce_progress_reset(void);
/* The execution completed: 100%. */
extern void ce_progress_complete(void);
/* A backend's step averages of ex's chain version are stale. */
extern void ce_eta_forget(ExecRow *ex);

/*
 * Queue an event of the execution, or of one of its steps with its line's
 * status and attempt (the chain's notify setting applies).
 */
extern void ce_exec_emit(ExecRow *ex, const char *event, CeExecStatus status);
extern void ce_step_emit(ExecRow *ex, const char *event, const CeStep *step,
						 CeLineStatus status, int attempt);
extern void ce_step_emit_state(ExecRow *ex, const char *event, const CeStep *step,
							   const char *state, int attempt);

/* ---- route.c ---- */

/* What a step's condition decides: run it, skip it, fail it, skip to a step. */
typedef enum CondAction
{
	COND_RUN,
	COND_SKIP,
	COND_FAIL,
	COND_SKIP_TO
} CondAction;

/*
 * Evaluate the step's condition: true runs it, false skips it, and the
 * strings "continue", "skip", "fail", "skip_to_step_N" (*skip_to = N).
 */
extern CondAction ce_eval_condition(const CeStep *step, CeLookupCtx *lk, int *skip_to);

/* Skip every pending or ready step line after step index from_index, up to the step target_id. */
extern void ce_skip_to_step(ExecRow *ex, int from_index, int target_id);

/* ---- context.c ---- */

/*
 * A step's outputs merged into context (NULL: checked as a context of
 * their own); NULL when they do not fit, with the step rolled back and
 * run's failure (validation_failed) set.
 */
extern Jsonb *ce_context_merge_outputs(Jsonb *context, const CeStep *step, CeStepRun *run);

/* The variables a step sees (step NULL: the execution's own). */
extern void ce_lookup_init(ExecRow *ex, const CeStep *step, int attempt, CeLookupCtx *lk);

/* The variables (lk) and the run of an attempt of a step, ready to run. */
extern void ce_step_setup(ExecRow *ex, const CeStep *step, int attempt,
						  CeLookupCtx *lk, CeStepRun *run);

/*
 * The result of an attempt from outside (an external step's result):
 * recorded as the engine records a step's (retry, onFailure, outputs).
 */
extern void ce_line_succeeded(ExecRow *ex, LineRow *line, const CeStep *step,
							  CeStepRun *run, int attempt);
extern void ce_line_failed(ExecRow *ex, LineRow *line, const CeStep *step,
						   CeStepRun *run, int attempt);

/* Write the context of the execution (ex->context becomes it). */
extern void ce_exec_set_context(ExecRow *ex, Jsonb *context);

/* timers.c: count an attempt whose executor died, on a line this transition claimed */
extern bool ce_record_orphan(const pg_uuid_t *org, const pg_uuid_t *execution,
							 LineRow *line);

/* The error object of an execution or line. */
extern Jsonb *ce_error_jsonb(const char *failure_type, const char *sqlstate,
							 const char *message, const char *detail,
							 const char *hint, int attempt);
/* ... of a failed run; with "step"/"stepId" added for an execution. */
extern Jsonb *ce_run_error_jsonb(CeStepRun *run, int attempt);
extern Jsonb *ce_execution_error(Jsonb *line_error, const CeStep *step);

/* A line's input ({"input": rendered}, NULL when none) and output. */
extern Jsonb *ce_input_jsonb(const char *rendered);
extern Jsonb *ce_output_jsonb(CeStepRun *run);

#endif							/* CE_ENGINE_INT_H */
