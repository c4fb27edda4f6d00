/*-------------------------------------------------------------------------
 *
 * step_int.h
 *	  What the files that run a step share: step.c runs the step in its
 *	  subtransaction; step_sandbox.c keeps the identity and the watch over
 *	  user code; step_sql.c and step_handler.c run each kind of step.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_STEP_INT_H
#define CE_STEP_INT_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "utils/resowner.h"

#include "step.h"
#include "template.h"

/* ---- step.c ---- */

/* In a PG_CATCH: roll back the internal subtransaction, return the error. */
extern ErrorData *ce_step_abort_subxact(MemoryContext oldcxt, ResourceOwner oldowner);

/* ---- step_sandbox.c ---- */

/* While user code of a step runs (the sandbox's hooks look at it). */
extern bool ce_step_active;

/* Objects created while the step ran, checked when it ends. */
extern List *ce_step_created;
extern MemoryContext ce_step_created_cxt;

/* A failure type for the error being raised, instead of its SQLSTATE's. */
extern const char *ce_step_failure_override;

/* The step is turning its outputs into jsonb: an error is the data's. */
extern bool ce_step_converting_outputs;

extern void ce_step_enter_owner(Oid owner, Oid save_user, int save_sec);
extern void ce_step_leave_owner(Oid save_user, int save_sec);
extern void ce_step_check_leftovers(bool had_temp_namespace);

/* ---- step_sql.c ---- */

/* Run a SQL template (sql step or SQL rollback action) with its values. */
extern void ce_step_run_sql(CeStepRun *run, const CeTemplate *tpl, CeValue *vals);

/* Run a compensation's verificationQuery; an error when it does not verify. */
extern void ce_step_verify_compensation(CeStepRun *run);

/* ---- step_handler.c ---- */

/* The handler function registered under name, for the run's chain. */
extern Oid	ce_step_lookup_handler(const CeStepRun *run, const char *name);
extern void ce_step_call_handler(CeStepRun *run, const char *name, Oid fn);
/* Run a template step (its rendering bounded, errors are the step's). */
extern void ce_step_run_template(CeStepRun *run);

#endif							/* CE_STEP_INT_H */
