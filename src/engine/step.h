/*-------------------------------------------------------------------------
 *
 * step.h
 *	  Running one step (or one compensation) inside a subtransaction, as
 *	  the execution's owner role.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_STEP_H
#define CE_STEP_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"
#include "utils/resowner.h"

#include "bridge.h"
#include "plan.h"

/* SQLSTATE of raise_failure(): class CE, "chainexec failure". */
#define ERRCODE_CE_FAILURE	MAKE_SQLSTATE('C','E','F','0','1')

typedef struct CeStepRun
{
	/* in */
	const CePlan *plan;
	const CeStep *step;
	Oid			owner;
	pg_uuid_t	org;
	CeLookupCtx *lookup;		/* variables */
	char	   *rendered_input; /* inputTemplate, rendered, or NULL */
	bool		compensation;	/* run rollbackAction instead of the step */
	const char *search_path;	/* the caller's search_path, used when the
								 * chain sets no searchPath (NULL: keep) */
	TimestampTz deadline;		/* the execution's deadline, or 0: bounds
								 * the step like timeoutMs */

	/* out: success */
	bool		ok;
	bool		cached;			/* a cache hit: the step did not run */
	Jsonb	   *outputs;		/* object of variables the step set */
	int64		rowcount;		/* sql: rows processed; -1 otherwise */
	char	   *text;			/* template: the rendered text */

	/* out: failure */
	char	   *failure_type;
	char		sqlstate[6];
	char	   *message;
	char	   *detail;
	char	   *hint;

	/* subtransaction still open after success (caller ends it) */
	bool		subxact_open;
	ResourceOwner outer_owner;
	MemoryContext outer_cxt;
} CeStepRun;

/*
 * Run the step (or its rollbackAction).  On success the subtransaction is
 * left open (subxact_open) so that the caller can still undo the step's
 * effects; end it with ce_step_release() or ce_step_rollback().
 */
extern void ce_step_run(CeStepRun *run);
extern void ce_step_release(CeStepRun *run);
extern void ce_step_rollback(CeStepRun *run);

/* Set a failure without running anything (e.g. insufficient_data). */
extern void ce_step_fail(CeStepRun *run, const char *failure_type,
						 const char *sqlstate, const char *fmt,...) pg_attribute_printf(4, 5);

/*
 * A template's error as the run's failure: a variable that is not set is
 * insufficient_data (22004), any other error validation_failed.
 */
extern void ce_step_fail_template(CeStepRun *run, const CeError *err);

/* Steps run in a background executor's session (set by the executor). */
extern bool ce_step_isolated_session;

/* The declared outputVariables of out (all of it when none are declared). */
extern Jsonb *ce_step_declared_outputs(const CeStep *step, Jsonb *out);

/* Install the step sandbox's hooks (from _PG_init). */
extern void CeStepInit(void);

/* After an error out of a transition: the executor's own identity again. */
extern void ce_step_reset_session(void);

/* Drop the prepared statements of steps (when cached plans are dropped). */
extern void ce_step_cache_reset(void);

#endif							/* CE_STEP_H */
