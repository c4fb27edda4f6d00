/*-------------------------------------------------------------------------
 *
 * breaker.c
 *	  Circuit breakers (step key circuitBreaker, SPEC section 9): state
 *	  shared by every execution and executor of an organization, in the
 *	  table chainexec.circuit_breaker_state.
 *
 * A breaker is the row (organization, scope, key), scope being the role
 * that created the chain (whose handlers it calls): another role's chain
 * that uses the same key has a breaker of its own.  States:
 *
 *	  closed     calls go through; each one is counted in the window
 *	             (windowMs, a fixed window that starts again when it has
 *	             passed); a failed call that leaves at least
 *	             failureThreshold percent of at least minimumThroughput
 *	             calls failed opens the breaker
 *	  open       the step fails at once with circuit_open, without
 *	             running, until next_probe_at (openDurationMs after it
 *	             opened)
 *	  half_open  one probe call at a time goes through: it locks the row
 *	             (FOR UPDATE SKIP LOCKED: a caller that finds the row
 *	             locked is refused, as when open) for its whole transition;
 *	             halfOpenSuccesses probes in a row close the breaker, a
 *	             failed one opens it again
 *
 * Every transition is an update of the row in the step's own transition,
 * so it commits with the record of the call: a crash loses neither an
 * open breaker nor anything but the uncommitted probe, whose lock goes
 * with it.  A call under a closed breaker reads the row without a lock and
 * records its result with one short update, taken before the execution's
 * header is locked (see resilience.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "resilience.h"

/* The breaker's scope: the role that created the chain version. */
#define SCOPE \
	"(SELECT c.created_by::oid FROM chainexec.chains c " \
	"WHERE c.organization_id = $1 AND c.chain_id = $2 AND c.version = $3)"
#define BREAKER_ROW \
	"b.organization_id = $1 AND b.scope::oid = " SCOPE " AND b.key = $4"

#define BREAKER_ARGS 4, {UUIDOID, TEXTOID, INT4OID, TEXTOID}
#define BREAKER_STATE \
	"SELECT b.state, coalesce(b.next_probe_at <= now(), false) " \
	"FROM chainexec.circuit_breaker_state b WHERE " BREAKER_ROW

static CeQuery q_peek = {BREAKER_STATE, BREAKER_ARGS};

/* A probe holds the row: SKIP LOCKED tells that one is running. */
static CeQuery q_lock = {BREAKER_STATE " FOR UPDATE SKIP LOCKED", BREAKER_ARGS};

static CeQuery q_half_open = {
	"UPDATE chainexec.circuit_breaker_state b SET state = 'half_open', probe_successes = 0, "
	"changed_at = now() WHERE " BREAKER_ROW,
	BREAKER_ARGS};

static CeQuery q_create = {
	"INSERT INTO chainexec.circuit_breaker_state (organization_id, scope, key) "
	"SELECT $1, c.created_by, $4 FROM chainexec.chains c "
	"WHERE c.organization_id = $1 AND c.chain_id = $2 AND c.version = $3 "
	"ON CONFLICT (organization_id, scope, key) DO NOTHING",
	4, {UUIDOID, TEXTOID, INT4OID, TEXTOID}};

/*
 * A call under a closed breaker: $5 failed (0 or 1), $6
 * minimumThroughput, $7 failureThreshold, $8 windowMs, $9 openDurationMs.
 * Returns the new state ('open': this call opened it); no row when the
 * breaker is no longer closed (the call is not counted).
 */
#define EXPIRED "(b.window_start + $8 * interval '1 millisecond' <= now())"
#define NCALLS "(CASE WHEN " EXPIRED " THEN 1 ELSE b.calls + 1 END)"
#define NFAIL "(CASE WHEN " EXPIRED " THEN $5 ELSE b.failures + $5 END)"
#define OPENS "($5 = 1 AND " NCALLS " >= $6 AND " NFAIL " * 100 >= $7 * " NCALLS ")"
static CeQuery q_record = {
	"UPDATE chainexec.circuit_breaker_state b SET "
	"window_start = CASE WHEN " EXPIRED " THEN now() ELSE b.window_start END, "
	"calls = " NCALLS ", failures = " NFAIL ", "
	"state = CASE WHEN " OPENS " THEN 'open' ELSE 'closed' END, "
	"opened_at = CASE WHEN " OPENS " THEN now() END, "
	"next_probe_at = CASE WHEN " OPENS " THEN now() + $9 * interval '1 millisecond' END, "
	"changed_at = CASE WHEN " OPENS " THEN now() ELSE b.changed_at END "
	"WHERE " BREAKER_ROW " AND b.state = 'closed' RETURNING b.state",
	9, {UUIDOID, TEXTOID, INT4OID, TEXTOID, INT4OID, INT4OID, INT4OID, INT4OID, INT4OID}};

/* A probe succeeded: $5 halfOpenSuccesses. */
#define CLOSES "(b.probe_successes + 1 >= $5)"
static CeQuery q_probe_ok = {
	"UPDATE chainexec.circuit_breaker_state b SET "
	"probe_successes = CASE WHEN " CLOSES " THEN 0 ELSE b.probe_successes + 1 END, "
	"state = CASE WHEN " CLOSES " THEN 'closed' ELSE 'half_open' END, "
	"calls = CASE WHEN " CLOSES " THEN 0 ELSE b.calls END, "
	"failures = CASE WHEN " CLOSES " THEN 0 ELSE b.failures END, "
	"window_start = CASE WHEN " CLOSES " THEN now() ELSE b.window_start END, "
	"opened_at = CASE WHEN " CLOSES " THEN NULL ELSE b.opened_at END, "
	"next_probe_at = CASE WHEN " CLOSES " THEN NULL ELSE b.next_probe_at END, "
	"changed_at = now() "
	"WHERE " BREAKER_ROW " AND b.state = 'half_open' RETURNING b.state",
	5, {UUIDOID, TEXTOID, INT4OID, TEXTOID, INT4OID}};

/* A probe failed: open again for $5 openDurationMs. */
static CeQuery q_probe_fail = {
	"UPDATE chainexec.circuit_breaker_state b SET state = 'open', probe_successes = 0, "
	"opened_at = now(), next_probe_at = now() + $5 * interval '1 millisecond', changed_at = now() "
	"WHERE " BREAKER_ROW " AND b.state = 'half_open'",
	5, {UUIDOID, TEXTOID, INT4OID, TEXTOID, INT4OID}};

/*
 * The breaker's key: circuitBreaker.key, else the step's handler, else
 * chain id and step name ("chain:step").
 */
char *
ce_breaker_key(ExecRow *ex, const CeStep *step)
{
	if (step->circuit_breaker->key)
		return step->circuit_breaker->key;
	if (step->sql == NULL && step->instruction_set)
		return step->instruction_set;
	return psprintf("%s:%s", ex->chain_id, step->name);
}

static void
row_args(ExecRow *ex, CeResilState *rs, Datum *v)
{
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = CStringGetTextDatum(ex->chain_id);
	v[2] = Int32GetDatum(ex->version);
	v[3] = CStringGetTextDatum(rs->breaker_key);
}

/* state and "due for a probe" of the row SPI returned */
static void
read_state(char **state, bool *due)
{
	bool		isnull;

	*state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*due = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

static bool
refuse(ExecRow *ex, const CeStep *step, CeResilState *rs, CeStepRun *run)
{
	rs->breaker_mode = CE_BREAKER_NONE;
	ce_step_fail(run, "circuit_open", "55000", "circuit breaker \"%s\" is open", rs->breaker_key);
	run->detail = psprintf("Step \"%s\" did not run.", step->name);
	run->hint = pstrdup("A probe call goes through after openDurationMs; chainexec.chain_circuit_reset() closes the breaker.");
	return false;
}

/*
 * Whether the step may run under its breaker (rs->breaker_mode says how);
 * when not, the run has failed with circuit_open.
 */
bool
ce_breaker_admit(ExecRow *ex, const CeStep *step, CeResilState *rs, CeStepRun *run)
{
	Datum		v[4];
	char	   *state;
	bool		due;

	rs->breaker_key = ce_breaker_key(ex, step);
	row_args(ex, rs, v);
	ce_run_query(&q_peek, v, NULL, false, 1);
	if (SPI_processed == 0)
	{
		rs->breaker_mode = CE_BREAKER_CLOSED;
		rs->breaker_row = false;
		return true;
	}
	rs->breaker_row = true;
	read_state(&state, &due);
	if (strcmp(state, "closed") == 0)
	{
		rs->breaker_mode = CE_BREAKER_CLOSED;
		return true;
	}
	if (strcmp(state, "open") == 0 && !due)
		return refuse(ex, step, rs, run);

	/* due for a probe, or half-open: one probe at a time */
	ce_run_query(&q_lock, v, NULL, false, 1);
	if (SPI_processed == 0)
		return refuse(ex, step, rs, run);
	read_state(&state, &due);
	if (strcmp(state, "closed") == 0)
	{
		rs->breaker_mode = CE_BREAKER_CLOSED;
		return true;
	}
	if (strcmp(state, "open") == 0)
	{
		if (!due)
			return refuse(ex, step, rs, run);
		ce_run_query(&q_half_open, v, NULL, false, 0);
	}
	rs->breaker_mode = CE_BREAKER_PROBE;
	return true;
}

/* Record the result of a call the breaker let through. */
void
ce_breaker_record(ExecRow *ex, const CeStep *step, CeResilState *rs, bool ok)
{
	const CeBreakerConfig *cb = step->circuit_breaker;
	Datum		v[9];

	row_args(ex, rs, v);
	if (rs->breaker_mode == CE_BREAKER_CLOSED)
	{
		if (!rs->breaker_row)
			ce_run_query(&q_create, v, NULL, false, 0);
		v[4] = Int32GetDatum(ok ? 0 : 1);
		v[5] = Int32GetDatum(cb->minimum_throughput);
		v[6] = Int32GetDatum(cb->failure_threshold);
		v[7] = Int32GetDatum(cb->window_ms);
		v[8] = Int32GetDatum(cb->open_duration_ms);
		ce_run_query(&q_record, v, NULL, false, 0);
		if (SPI_processed > 0 && !ok)
		{
			char	   *state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (strcmp(state, "open") == 0)
				rs->event = "circuit_opened";
		}
	}
	else if (rs->breaker_mode == CE_BREAKER_PROBE)
	{
		if (ok)
		{
			v[4] = Int32GetDatum(cb->half_open_successes);
			ce_run_query(&q_probe_ok, v, NULL, false, 0);
			if (SPI_processed > 0 &&
				strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "closed") == 0)
				rs->event = "circuit_closed";
		}
		else
		{
			v[4] = Int32GetDatum(cb->open_duration_ms);
			ce_run_query(&q_probe_fail, v, NULL, false, 0);
			if (SPI_processed > 0)
				rs->event = "circuit_opened";
		}
	}
	rs->breaker_mode = CE_BREAKER_NONE;
}
