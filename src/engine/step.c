/*-------------------------------------------------------------------------
 *
 * step.c
 *	  Run one step, or one step's rollbackAction, inside an internal
 *	  subtransaction as the execution's owner role.
 *
 * The subtransaction follows the PL handlers' idiom: begin; on error
 * switch back to the outer memory context, copy and flush the error, roll
 * back and release the subtransaction, restore the resource owner.  On
 * success the subtransaction stays open so that the caller can still undo
 * the step (when the execution was cancelled meanwhile); the caller ends
 * it with ce_step_release() or ce_step_rollback().
 *
 * Step settings (timeoutMs as statement_timeout, maxMemoryMB as work_mem,
 * the chain's searchPath, else the caller's search_path) are set at a new
 * GUC nesting level inside the subtransaction and popped when the step
 * ends, together with any setting the step itself changed: nothing a step
 * SETs outlives it (the bookkeeping around it runs as the extension owner).
 *
 * The sandbox: user code (a sql step, a handler, a SQL rollback action)
 * runs as a security-restricted operation of the owner, as PostgreSQL runs
 * a table owner's code in VACUUM or REFRESH MATERIALIZED VIEW, so that
 * nothing it leaves behind runs later as someone else: deferred triggers,
 * temporary tables and types, LISTEN, PREPARE, cursors WITH HOLD, SET ROLE
 * are refused by PostgreSQL; temporary objects of the other kinds
 * (functions, operators, ...) fail the step here.  In a background
 * executor the session user becomes the owner too, and session advisory
 * locks and sequence state are dropped after each step.  A handler's
 * function is checked from pg_proc before each call; a sql step's text is
 * one statement that names only its placeholders' parameters.
 *
 * Expects: a transaction, SPI connected, CurrentMemoryContext a context
 * that lives until the end of the transition.
 *
 * The parts: step_sandbox.c (the identity, the hooks, the leftovers check),
 * step_sql.c (sql steps and SQL rollback actions), step_handler.c (handler
 * and template steps); step_int.h declares what they share.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"

#include "executor/spi.h"

#include "miscadmin.h"

#include "utils/timeout.h"

#include "failure.h"
#include "shmem.h"

#include "step_int.h"

void
ce_step_fail(CeStepRun *run, const char *failure_type, const char *sqlstate,
			 const char *fmt,...)
{
	va_list		ap;
	char		buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	run->ok = false;
	run->failure_type = pstrdup(failure_type);
	strlcpy(run->sqlstate, sqlstate ? sqlstate : "", sizeof(run->sqlstate));
	run->message = pstrdup(buf);
}

void
ce_step_fail_template(CeStepRun *run, const CeError *err)
{
	if (err->code == CE_ERR_MISSING_VAR)
		ce_step_fail(run, "insufficient_data", "22004", "%s", err->message);
	else
		ce_step_fail(run, "validation_failed", ce_errcode_sqlstate(err->code), "%s", err->message);
}

static void
set_step_guc(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * What the run is to run: a SQL template with its parameters' values, or
 * a handler function.  False when there is nothing more to do: a template
 * step ran (it needs no subtransaction), or the run failed already.
 */
static bool
choose_action(CeStepRun *run, const CeTemplate **sql_tpl, CeValue **vals,
			  const char **handler, Oid *handler_fn)
{
	const CeStep *step = run->step;

	if (run->compensation)
	{
		if (step->rollback_is_handler)
			*handler = step->rollback_action;
		else
			*sql_tpl = step->rollback_tpl;
	}
	else if (step->kind == CE_STEP_TEMPLATE && step->instruction_set == NULL)
	{
		ce_step_run_template(run);
		return false;
	}
	else if (step->sql_tpl != NULL)
		*sql_tpl = step->sql_tpl;
	else if (step->instruction_set != NULL)
		*handler = step->instruction_set;
	else
	{
		ce_step_fail(run, "invalid_input", "22023", "step \"%s\" has nothing to run", step->name);
		return false;
	}

	if (*sql_tpl)
	{
		CeError		err;
		int			n = ce_template_nplaceholders(*sql_tpl);

		memset(&err, 0, sizeof(err));
		*vals = palloc0(sizeof(CeValue) * Max(n, 1));
		if (!ce_template_params(*sql_tpl, ce_lookup, run->lookup, *vals, &err))
		{
			ce_step_fail_template(run, &err);
			return false;
		}
	}
	else
	{
		*handler_fn = ce_step_lookup_handler(run, *handler);
		if (!OidIsValid(*handler_fn))
		{
			ce_step_fail(run, "resource_not_found", "42704",
						 "handler \"%s\" is not registered", *handler);
			run->hint = pstrdup("Register it with chainexec.chain_register_handler().");
			return false;
		}
	}
	return true;
}

/*
 * The step's settings (search_path, work_mem) at the current GUC nesting
 * level, and its time limit in ms (0: none): timeoutMs, or less when the
 * execution's deadline comes first.
 */
static int
apply_step_settings(CeStepRun *run)
{
	const CeStep *step = run->step;
	int			timeout_ms;

	if (run->plan->search_path)
		set_step_guc("search_path", run->plan->search_path);
	else if (run->search_path)
		set_step_guc("search_path", run->search_path);
	if (step->max_memory_mb > 0)
		set_step_guc("work_mem", psprintf("%dMB", step->max_memory_mb));
	timeout_ms = step->timeout_ms;
	if (run->deadline != 0)
	{
		/* the execution's deadline bounds the step too */
		long		secs;
		int			usecs;
		int64		left;

		TimestampDifference(GetCurrentTimestamp(), run->deadline, &secs, &usecs);
		left = (int64) secs * 1000 + usecs / 1000 + 1;
		if (timeout_ms == 0 || left < timeout_ms)
			timeout_ms = (int) Min(left, INT_MAX);
	}
	return timeout_ms;
}

/*
 * The failure of a run from the error that ended its subtransaction:
 * SQLSTATE, texts, and the failure type (raise_failure's own, the one a
 * check set, a data error of the outputs, else from the SQLSTATE, a
 * cancel at or after the step's time limit being its timeout).
 */
static void
record_step_error(CeStepRun *run, ErrorData *edata, const char *override,
				  bool data_error, bool timed_out, TimestampTz timeout_at)
{
	run->ok = false;
	strlcpy(run->sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(run->sqlstate));
	run->message = edata->message ? pstrdup(edata->message) : pstrdup("unknown error");
	run->detail = edata->detail ? pstrdup(edata->detail) : NULL;
	run->hint = edata->hint ? pstrdup(edata->hint) : NULL;
	if (edata->sqlerrcode == ERRCODE_CE_FAILURE && edata->detail &&
		strncmp(edata->detail, "failure type: ", 14) == 0)
	{
		run->failure_type = pstrdup(edata->detail + 14);
		run->detail = NULL;
	}
	else if (override)
		run->failure_type = pstrdup(override);
	else if (data_error)
	{
		/* what the step returned cannot become variables */
		run->failure_type = pstrdup("validation_failed");
		run->message = psprintf("output of step \"%s\" cannot become variables: %s",
								run->step->name, run->message);
	}
	else
	{
		/*
		 * ProcessInterrupts() resets the timeout's indicator when it raises
		 * the cancel, so a 57014 at or after the step's deadline is the
		 * step's own timeout too.
		 */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && timeout_at != 0 &&
			GetCurrentTimestamp() >= timeout_at)
			timed_out = true;
		run->failure_type = pstrdup(ce_failure_type_for_sqlstate(run->sqlstate, timed_out));
	}
}

/*
 * In the PG_CATCH of an internal subtransaction begun in oldcxt under
 * oldowner: roll it back and return the error, copied into oldcxt (the PL
 * handlers' idiom).
 */
ErrorData *
ce_step_abort_subxact(MemoryContext oldcxt, ResourceOwner oldowner)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(oldcxt);
	edata = CopyErrorData();
	FlushErrorState();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return edata;
}

/*
 * Run the step in an internal subtransaction as its owner; on success the
 * subtransaction stays open (see step.h).
 */
void
ce_step_run(CeStepRun *run)
{
	const CeTemplate *sql_tpl = NULL;
	const char *handler = NULL;
	Oid			handler_fn = InvalidOid;
	CeValue    *vals = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	Oid			save_user;
	int			save_sec;
	int			gucnest;
	volatile bool timeout_armed = false;
	volatile bool cancel_open = false;
	volatile TimestampTz timeout_at = 0;
	int			timeout_ms;
	Oid			tempns;
	Oid			temptoast;

	run->ok = false;
	run->rowcount = -1;
	run->subxact_open = false;

	/* Decide what to run, and evaluate parameters (pure, no subxact). */
	if (!choose_action(run, &sql_tpl, &vals, &handler, &handler_fn))
		return;

	GetUserIdAndSecContext(&save_user, &save_sec);
	GetTempNamespaceState(&tempns, &temptoast);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		gucnest = NewGUCNestLevel();
		ce_step_enter_owner(run->owner, save_user, save_sec);
		ce_step_created = NIL;
		ce_step_created_cxt = oldcxt;
		ce_step_failure_override = NULL;
		ce_step_converting_outputs = false;
		ce_step_active = true;
		timeout_ms = apply_step_settings(run);
		if (timeout_ms > 0)
		{
			timeout_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
			enable_timeout_after(STATEMENT_TIMEOUT, timeout_ms);
			timeout_armed = true;
		}
		/* a cancel that arrived before the step is not for it, unless it was sent for its line */
		QueryCancelPending = false;
		if (ce_running_step_begin(timeout_at))
		{
			QueryCancelPending = true;
			InterruptPending = true;
		}
		RESUME_CANCEL_INTERRUPTS();
		cancel_open = true;

		if (sql_tpl)
			ce_step_run_sql(run, sql_tpl, vals);
		else
			ce_step_call_handler(run, handler, handler_fn);
		if (run->compensation && run->step->verification_tpl)
			ce_step_verify_compensation(run);

		HOLD_CANCEL_INTERRUPTS();
		cancel_open = false;
		ce_running_step_end();
		if (timeout_armed)
		{
			disable_timeout(STATEMENT_TIMEOUT, false);
			timeout_armed = false;
		}
		ce_step_active = false;
		ce_step_check_leftovers(OidIsValid(tempns));
		ce_step_created = NIL;
		/* settings the step changed (SET, set_config) end with it */
		AtEOXact_GUC(false, gucnest);
		ce_step_leave_owner(save_user, save_sec);
		MemoryContextSwitchTo(oldcxt);
		run->ok = true;
		run->subxact_open = true;
		run->outer_owner = oldowner;
		run->outer_cxt = oldcxt;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		timed_out = false;

		const char *override = ce_step_failure_override;
		bool		data_error = ce_step_converting_outputs;

		ce_step_active = false;
		ce_step_created = NIL;
		ce_step_failure_override = NULL;
		ce_step_converting_outputs = false;
		if (cancel_open)
		{
			HOLD_CANCEL_INTERRUPTS();
			ce_running_step_end();
		}

		if (timeout_armed)
		{
			timed_out = get_timeout_indicator(STATEMENT_TIMEOUT, true);
			disable_timeout(STATEMENT_TIMEOUT, false);
		}
		SetUserIdAndSecContext(save_user, save_sec);
		edata = ce_step_abort_subxact(oldcxt, oldowner);
		/* the rollback restored the user, not the session user */
		ce_step_leave_owner(save_user, save_sec);

		record_step_error(run, edata, override, data_error, timed_out, timeout_at);
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

void
ce_step_release(CeStepRun *run)
{
	if (!run->subxact_open)
		return;
	ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(run->outer_cxt);
	CurrentResourceOwner = run->outer_owner;
	run->subxact_open = false;
}

void
ce_step_rollback(CeStepRun *run)
{
	if (!run->subxact_open)
		return;
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(run->outer_cxt);
	CurrentResourceOwner = run->outer_owner;
	run->subxact_open = false;
}
