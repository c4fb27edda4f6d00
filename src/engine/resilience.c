/*-------------------------------------------------------------------------
 *
 * resilience.c
 *	  The resilience keys around a step's run (see resilience.h): the
 *	  cache and the breaker in order, the retry budget of an execution,
 *	  escalation to a person (onFailure "escalate") and the context a
 *	  compensation runs with.
 *
 * Retry budget (chain key retryBudget.maxRetries): the retries an
 * execution has used are counted from its step and fallback lines, under
 * the header's lock that every failed attempt takes, so parallel steps
 * never overrun it together: a line that is due again (ready or, paused,
 * pending) after attempt n has used n retries, any other n - 1.
 *
 * Escalation: the failed line's error carries "escalated": true and the
 * execution is paused.  chain_resume reopens every escalated line (a new
 * first attempt); chain_retry_step and chain_skip_step settle one, and
 * the execution goes on when none is left; chain_cancel of an escalated
 * execution with rollbackEnabled compensates, with the escalated step's
 * failure as the cause.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "bridge.h"
#include "resilience.h"

static CeQuery q_retries_used = {
	"SELECT coalesce(sum(CASE WHEN status IN ('ready', 'pending') AND attempt > 0 THEN attempt "
	"ELSE greatest(attempt - 1, 0) END), 0)::int "
	"FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_type IN ('step', 'fallback')",
	2, {UUIDOID, UUIDOID}};

#define ESCALATED \
	"organization_id = $1 AND transaction_id = $2 AND line_type IN ('step', 'fallback') " \
	"AND status = 'failed' AND coalesce((error->>'escalated')::boolean, false)"

static CeQuery q_escalated_count = {
	"SELECT count(*)::int FROM chainexec.universal_transaction_lines WHERE " ESCALATED,
	2, {UUIDOID, UUIDOID}};

static CeQuery q_escalated_reopen = {
	"UPDATE chainexec.universal_transaction_lines SET status = 'pending', attempt = 0, error = NULL, "
	"finished_at = NULL, duration_ms = NULL, first_started_at = NULL, deadline = NULL "
	"WHERE " ESCALATED,
	2, {UUIDOID, UUIDOID}};

static CeQuery q_escalated_cause = {
	"SELECT (error - 'escalated') || jsonb_build_object('step', step_name, 'stepId', step_id) "
	"FROM chainexec.universal_transaction_lines WHERE " ESCALATED " ORDER BY line_number LIMIT 1",
	2, {UUIDOID, UUIDOID}};

static CeQuery q_failure = {
	"SELECT jsonb_build_object('step', error->'step', 'type', error->'failure_type', "
	"'message', error->'message') "
	"FROM chainexec.universal_transactions WHERE organization_id = $1 AND id = $2 "
	"AND jsonb_typeof(error) = 'object'",
	2, {UUIDOID, UUIDOID}};

/* Run q with the execution's keys as $1 and $2. */
static void
exec_query(ExecRow *ex, CeQuery *q, int limit)
{
	Datum		v[2];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(q, v, NULL, false, limit);
}

static int
int_result(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt32(d);
}

static Jsonb *
jsonb_result(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed == 0)
		return NULL;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

CeResilDecision
ce_resil_before(ExecRow *ex, const CeStep *step, CeStepRun *run, CeResilState *rs)
{
	memset(rs, 0, sizeof(*rs));
	if (step->cache)
	{
		rs->cache_key = ce_cache_key(step, run);
		if (ce_cache_lookup(ex, step, rs->cache_key, run))
			return CE_RESIL_CACHED;
	}
	if (step->circuit_breaker && !ce_breaker_admit(ex, step, rs, run))
		return CE_RESIL_OPEN;
	return CE_RESIL_RUN;
}

void
ce_resil_after(ExecRow *ex, const CeStep *step, CeStepRun *run, CeResilState *rs)
{
	if (rs->breaker_mode != CE_BREAKER_NONE)
		ce_breaker_record(ex, step, rs, run->ok);
	if (rs->cache_key)
		ce_cache_store(ex, step, rs->cache_key, run);
}

void
ce_resil_events(ExecRow *ex, const CeStep *step, CeResilState *rs, int attempt)
{
	if (rs->event == NULL)
		return;
	ce_step_emit_state(ex, rs->event, step,
					   strcmp(rs->event, "circuit_opened") == 0 ? "open" : "closed", attempt);
	rs->event = NULL;
}

bool
ce_retry_allowed(ExecRow *ex, CeStepRun *run, bool compensation)
{
	if (compensation)
		return true;
	if (run->failure_type && strcmp(run->failure_type, "circuit_open") == 0)
		return false;
	if (ex->plan->retry_budget < 0)
		return true;
	exec_query(ex, &q_retries_used, 1);
	return int_result() < ex->plan->retry_budget;
}

bool
ce_retry_compensation_extra(CeStepRun *run)
{
	return run->failure_type && strcmp(run->failure_type, "compensation_unverified") == 0;
}

Jsonb *
ce_escalated_error(Jsonb *error)
{
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(error),
											  JsonbPGetDatum(ce_text_to_jsonb("{\"escalated\":true}"))));
}

int
ce_escalated_count(ExecRow *ex)
{
	exec_query(ex, &q_escalated_count, 1);
	return int_result();
}

void
ce_escalated_reopen(ExecRow *ex)
{
	exec_query(ex, &q_escalated_reopen, 0);
}

Jsonb *
ce_escalated_cause(ExecRow *ex)
{
	exec_query(ex, &q_escalated_cause, 1);
	return jsonb_result();
}

Jsonb *
ce_compensation_failure(ExecRow *ex)
{
	exec_query(ex, &q_failure, 1);
	return jsonb_result();
}
