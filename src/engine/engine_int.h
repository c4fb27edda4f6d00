/*-------------------------------------------------------------------------
 *
 * engine_int.h
 *	  What the engine (engine.c) shares with the control functions
 *	  (control.c): the execution and line rows as a transition sees them,
 *	  and the one copy of each piece of bookkeeping that both use (reading
 *	  and locking an execution, advancing it, closing its open lines,
 *	  starting its compensation, progress and ETA, events).
 *
 * Everything here runs inside the caller's transaction, with SPI
 * connected, as the extension owner, under ce_bookkeeping_begin()'s fixed
 * search_path.  engine.c does not include control.h: control.c builds on
 * the engine, never the other way round.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_ENGINE_INT_H
#define CE_ENGINE_INT_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "plan.h"
#include "step.h"

/* The execution header as a transition sees it. */
typedef struct ExecRow
{
	pg_uuid_t	org;
	pg_uuid_t	id;
	char	   *org_s;
	char	   *id_s;
	char	   *status;
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
} ExecRow;

/* One claimed line. */
typedef struct LineRow
{
	int			line_number;
	char	   *line_type;
	int			step_id;
	char	   *step_name;
	char	   *status;
	int			attempt;
	int			parent_line;
	TimestampTz started_at;
	bool		has_started;
	bool		ran_now;		/* the step ran in this transaction: its
								 * attempt started at the transaction's start */
	int			crashes;		/* attempts in a row whose executor died */
} LineRow;

/* A line as advance() sees it. */
typedef struct LineInfo
{
	int			line_number;
	char		type;			/* s(tep), f(allback), c(ompensation) */
	int			step_id;
	char	   *status;
	int			parent_line;
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
extern bool ce_in_step_of(const pg_uuid_t *id);

/* Reading and locking (ex->org and ex->id set). */
extern void ce_exec_read(ExecRow *ex);	/* header and plan, no lock */
extern void ce_exec_lock(ExecRow *ex);	/* row lock; refreshes status, context */
extern List *ce_exec_lines(ExecRow *ex);	/* LineInfo *, by line number */

/* Make ready what can run; end the execution when nothing is left. */
extern void ce_exec_advance(ExecRow *ex);

/* Close the open (pending, ready, waiting) lines not locked by others. */
extern void ce_exec_close_open_lines(ExecRow *ex, const char *status);

/* Record the end of the execution (status, output, error). */
extern void ce_exec_finish(ExecRow *ex, const char *status, Jsonb *error);

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

/*
 * Progress and ETA of the events that follow, from the lines; returns the
 * progress (percent) and sets *eta_ms (-1: unknown) when eta_ms is given.
 */
extern int	ce_progress_refresh(ExecRow *ex, long *eta_ms);

/* Queue an event (the chain's notify setting applies). */
extern void ce_exec_emit(ExecRow *ex, const char *event, const CeStep *step,
						 const char *status, int attempt);

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

/* The error object of an execution or line. */
extern Jsonb *ce_error_jsonb(const char *failure_type, const char *sqlstate,
							 const char *message, const char *detail,
							 const char *hint, int attempt);

#endif							/* CE_ENGINE_INT_H */
