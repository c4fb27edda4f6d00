/*-------------------------------------------------------------------------
 *
 * flow.c
 *	  Flow control across executions: the limits a step names
 *	  ("limits": ["api"]) and the chain key concurrencyLimit.
 *
 * A limit (chainexec.flow_limits, set by chain_set_limit) belongs to an
 * organization and has max_concurrent places, a token bucket of
 * per_second with burst, or both.
 *
 * Places.  Each place is a row of flow_limit_slots.  The transition that
 * runs a step holding the limit row-locks one free place with SKIP LOCKED
 * before the step runs, and keeps it until it commits or aborts: the
 * number of steps holding a limit can never exceed its places, whatever
 * the number of executors, sessions (chain_run) or nodes, and a crash
 * frees the place with the transaction.  A transition that finds no free
 * place leaves the step unrun: its line stays ready, with waits_for set to
 * the limit's name, which takes it out of the dispatch index; it holds no
 * transaction and no process.  A transition that held places wakes one
 * waiting line per place (waits_for back to NULL) before it commits; a
 * wake-up can be lost to a race (the waiter's transition had not
 * committed yet), so the executors' periodic sweep also wakes lines whose
 * limit has a free place.
 *
 * Tokens.  A token is taken by chainexec._limit_take_token, which updates
 * the limit's row: its row lock must not be held while a step runs, so
 * taking tokens is a transition of its own, just before the step's: the
 * transition that claims the line takes the tokens, commits, and the same
 * backend's next transition claims that line again and runs it (another
 * executor may run it in between: it then takes tokens of its own; tokens
 * are never shared, so a rate can only be undershot).  When the bucket is
 * empty, the line's not_before moves to when its token will come (lines
 * that wait are spaced by 1 / per_second), and it stays ready.
 *
 * A line of an execution that chain_run drives in its session waits for
 * a place by looking again a moment later (its not_before moves by
 * CE_FLOW_INLINE_NAP_MS): nobody else would wake that session.
 *
 * A limit that is not defined in the execution's organization limits
 * nothing.
 *
 * concurrencyLimit.  A chain with concurrencyLimit N has N rows in
 * chain_slots (made when a version that sets it is defined); the first
 * transition of an execution takes one whose holder is empty or has
 * finished (SKIP LOCKED on the row, so two transitions never take the
 * same), and records the execution as holder.  An execution that finds
 * none stays pending, its line waiting for "chain:<chain_id>".  An
 * execution that ends clears its holder (reopened, it takes a place
 * again) and wakes, for each place it held, a waiting line whose own
 * version's limit admits that place: versions may have different limits,
 * and a line that could not take the place would spend its wake-up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "engine.h"
#include "engine_int.h"
#include "flow.h"
#include "plancache.h"

#define CE_FLOW_MAX_HELD	16
#define CE_FLOW_NAME_LEN	80
/* chain_run looks again for a place this often */
#define CE_FLOW_INLINE_NAP_MS	20

/* Places held by the running transition: one waiting line is woken for each. */
static char held[CE_FLOW_MAX_HELD][CE_FLOW_NAME_LEN];
static pg_uuid_t held_org;
static int	nheld = 0;

/* The line whose tokens were taken, to claim next, and to run without new tokens. */
static struct
{
	bool		to_claim;
	bool		granted;
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;
	int			attempt;
} admitted;

/* ---------------------------------------------------------------------
 * Queries
 * --------------------------------------------------------------------- */

static CeQuery q_chain_slot_held = {
	"SELECT 1 FROM chainexec.chain_slots "
	"WHERE organization_id = $1 AND chain_id = $2 AND holder = $3 AND slot <= $4",
	4, {UUIDOID, TEXTOID, UUIDOID, INT4OID}};

/* A place of the chain whose holder has finished (or never was), taken. */
static CeQuery q_chain_slot_take = {
	"WITH f AS MATERIALIZED (SELECT c.slot FROM chainexec.chain_slots c "
	"      WHERE c.organization_id = $1 AND c.chain_id = $2 AND c.slot <= $4 "
	"        AND (c.holder IS NULL OR NOT EXISTS (SELECT FROM chainexec.universal_transactions t "
	"             WHERE t.organization_id = c.organization_id AND t.id = c.holder AND t.finished_at IS NULL)) "
	"      ORDER BY c.slot LIMIT 1 FOR UPDATE SKIP LOCKED) "
	"UPDATE chainexec.chain_slots s SET holder = $3 FROM f "
	"WHERE s.organization_id = $1 AND s.chain_id = $2 AND s.slot = f.slot",
	4, {UUIDOID, TEXTOID, UUIDOID, INT4OID}};

static CeQuery q_line_waits_for = {
	"UPDATE chainexec.universal_transaction_lines SET waits_for = $4 "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	4, {UUIDOID, UUIDOID, INT4OID, TEXTOID}};

/* The other lines of an execution that waited for a place of its chain. */
static CeQuery q_exec_unwait = {
	"UPDATE chainexec.universal_transaction_lines SET waits_for = NULL "
	"WHERE organization_id = $1 AND transaction_id = $2 AND waits_for = $3",
	3, {UUIDOID, UUIDOID, TEXTOID}};

static CeQuery q_line_not_before = {
	"UPDATE chainexec.universal_transaction_lines SET not_before = greatest(not_before, $4) "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	4, {UUIDOID, UUIDOID, INT4OID, TIMESTAMPTZOID}};

static CeQuery q_limits_of = {
	"SELECT name, coalesce(max_concurrent, 0), per_second IS NOT NULL FROM chainexec.flow_limits "
	"WHERE organization_id = $1 AND name = ANY ($2) ORDER BY name",
	2, {UUIDOID, TEXTARRAYOID}};

static CeQuery q_take_place = {
	"SELECT slot FROM chainexec.flow_limit_slots WHERE organization_id = $1 AND name = $2 "
	"AND slot <= $3 ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED",
	3, {UUIDOID, TEXTOID, INT4OID}};

static CeQuery q_take_token = {
	"SELECT chainexec._limit_take_token($1, $2)",
	2, {UUIDOID, TEXTOID}};

/*
 * Wake up to $3 lines waiting for $2, in dispatch order.  (The lines to
 * change are picked once, in a materialized CTE: a subquery in FROM could
 * be run again for each row of the join, and pick more.)
 */
static CeQuery q_wake = {
	"WITH w AS MATERIALIZED (SELECT transaction_id, line_number FROM chainexec.universal_transaction_lines "
	"      WHERE organization_id = $1 AND waits_for = $2 AND status = 'ready' "
	"      ORDER BY priority DESC, not_before LIMIT $3 FOR UPDATE SKIP LOCKED) "
	"UPDATE chainexec.universal_transaction_lines l SET waits_for = NULL FROM w "
	"WHERE l.organization_id = $1 AND l.transaction_id = w.transaction_id "
	"AND l.line_number = w.line_number",
	3, {UUIDOID, TEXTOID, INT8OID}};

static CeQuery q_waiting_groups = {
	"SELECT organization_id, waits_for, count(*) FROM chainexec.universal_transaction_lines "
	"WHERE waits_for IS NOT NULL AND status = 'ready' GROUP BY 1, 2 LIMIT 1000",
	0, {0}};

/* Free places of a limit (a missing limit, or one without places: all free). */
static CeQuery q_limit_room = {
	"SELECT coalesce((SELECT CASE WHEN l.max_concurrent IS NULL THEN 1000000 ELSE "
	"  (SELECT count(*) FROM chainexec.flow_limit_slots s "
	"    WHERE s.organization_id = l.organization_id AND s.name = l.name "
	"      AND s.slot <= l.max_concurrent AND NOT chainexec._xid_in_progress(s.xmax)) END "
	"  FROM chainexec.flow_limits l WHERE l.organization_id = $1 AND l.name = $2), 1000000)",
	2, {UUIDOID, TEXTOID}};

/*
 * The free places of a chain, in order: no holder, or one that has ended
 * (an execution that ended before its holder was cleared), and no
 * transition taking them.
 */
static CeQuery q_chain_free_slots = {
	"SELECT c.slot FROM chainexec.chain_slots c "
	"WHERE c.organization_id = $1 AND c.chain_id = $2 AND NOT chainexec._xid_in_progress(c.xmax) "
	"AND (c.holder IS NULL OR NOT EXISTS (SELECT FROM chainexec.universal_transactions t "
	"     WHERE t.organization_id = c.organization_id AND t.id = c.holder AND t.finished_at IS NULL)) "
	"ORDER BY c.slot LIMIT 1000",
	2, {UUIDOID, TEXTOID}};

/* An ended execution gives its places up: the places it held. */
static CeQuery q_chain_slots_release = {
	"UPDATE chainexec.chain_slots SET holder = NULL "
	"WHERE organization_id = $1 AND chain_id = $2 AND holder = $3 RETURNING slot",
	3, {UUIDOID, TEXTOID, UUIDOID}};

/*
 * Lines waiting for a place of the chain ($2, its key) whose execution's
 * own version admits place $3 or a later one (its concurrencyLimit at
 * least $3), in the order they are woken; their limit.
 */
static CeQuery q_chain_waiters = {
	"SELECT l.transaction_id, l.line_number, v.lim "
	"FROM chainexec.universal_transaction_lines l "
	"JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id "
	"CROSS JOIN LATERAL (SELECT (c.definition->>'concurrencyLimit')::numeric::int AS lim FROM chainexec.chains c "
	"     WHERE c.organization_id = t.organization_id AND c.chain_id = t.chain_id AND c.version = t.chain_version "
	"       AND jsonb_typeof(c.definition->'concurrencyLimit') = 'number') v "
	"WHERE l.organization_id = $1 AND l.waits_for = $2 AND l.status = 'ready' AND v.lim >= $3 "
	"ORDER BY l.priority DESC, l.not_before LIMIT $4 FOR UPDATE OF l SKIP LOCKED",
	4, {UUIDOID, TEXTOID, INT4OID, INT4OID}};

static CeQuery q_line_unwait = {
	"UPDATE chainexec.universal_transaction_lines SET waits_for = NULL "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	3, {UUIDOID, UUIDOID, INT4OID}};

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/*
 * The line waits for a place of what.  chain_run's session, which has no
 * one to wake it, looks again a moment later instead.
 */
static void
line_waits_for(ExecRow *ex, LineRow *line, const char *what)
{
	Datum		v[4];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line->line_number);
	if (ce_inline_runner)
	{
		v[3] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CE_FLOW_INLINE_NAP_MS));
		ce_run_query(&q_line_not_before, v, NULL, false, 0);
		return;
	}
	v[3] = CStringGetTextDatum(what);
	ce_run_query(&q_line_waits_for, v, NULL, false, 0);
}

static int
wake(const pg_uuid_t *org, const char *what, int64 n)
{
	Datum		v[3];

	if (n <= 0)
		return 0;
	v[0] = UUIDPGetDatum((pg_uuid_t *) org);
	v[1] = CStringGetTextDatum(what);
	v[2] = Int64GetDatum(n);
	ce_run_query(&q_wake, v, NULL, false, 0);
	if (SPI_processed > 0)
		ce_wake_executors((int) Min(SPI_processed, 64));
	return (int) SPI_processed;
}

static char *
chain_key(const char *chain_id)
{
	return psprintf("chain:%s", chain_id);
}

static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return x < y ? -1 : x > y;
}

/*
 * Places slots[0..nslots) of chain chain_id are free: wake, for each, the
 * first waiting line (by priority, then due time) whose execution's own
 * version admits it (its concurrencyLimit at least the place), one line per
 * execution.  A line of a version whose limit is lower than every free
 * place is not woken for them: it could not take one, and waking it would
 * spend the wake-up that a line of another version could use.
 */
static int
wake_chain(const pg_uuid_t *org, const char *chain_id, int *slots, int nslots)
{
	Datum		v[4];
	char	   *key = chain_key(chain_id);
	bool	   *used;
	pg_uuid_t  *ids;
	int		   *lines;
	int			nwake = 0;
	uint64		n;
	uint64		i;

	if (nslots <= 0)
		return 0;
	qsort(slots, nslots, sizeof(int), cmp_int);
	v[0] = UUIDPGetDatum((pg_uuid_t *) org);
	v[1] = CStringGetTextDatum(key);
	v[2] = Int32GetDatum(slots[0]);
	v[3] = Int32GetDatum(Min(nslots, 1000) * 4);
	ce_run_query(&q_chain_waiters, v, NULL, false, 0);
	n = SPI_processed;
	used = palloc0(sizeof(bool) * nslots);
	ids = palloc(sizeof(pg_uuid_t) * Min(n, (uint64) nslots) + 1);
	lines = palloc(sizeof(int) * Min(n, (uint64) nslots) + 1);
	for (i = 0; i < n && nwake < nslots; i++)
	{
		bool		isnull;
		pg_uuid_t  *id = DatumGetUUIDP(ce_getcol(i, 1, &isnull));
		int			lim = DatumGetInt32(ce_getcol(i, 3, &isnull));
		int			j;
		int			k;

		for (k = 0; k < nwake; k++)
			if (memcmp(&ids[k], id, sizeof(pg_uuid_t)) == 0)
				break;
		if (k < nwake)
			continue;			/* its execution has a place coming */
		for (j = 0; j < nslots && (used[j] || slots[j] > lim); j++)
			;
		if (j == nslots)
			continue;
		used[j] = true;
		memcpy(&ids[nwake], id, sizeof(pg_uuid_t));
		lines[nwake] = DatumGetInt32(ce_getcol(i, 2, &isnull));
		nwake++;
	}
	for (i = 0; i < (uint64) nwake; i++)
	{
		v[1] = UUIDPGetDatum(&ids[i]);
		v[2] = Int32GetDatum(lines[i]);
		ce_run_query(&q_line_unwait, v, NULL, false, 0);
	}
	if (nwake > 0)
		ce_wake_executors(Min(nwake, 64));
	return nwake;
}

/* ---------------------------------------------------------------------
 * concurrencyLimit
 * --------------------------------------------------------------------- */

/* locktag field4 of the admission locks ("CF"; advisory locks use 1 and 2, chain_run 0x4345) */
#define CE_ADMISSION_LOCK_FIELD4	0x4346
/* locktag field4 of the child-start locks of a limited chain ("CG") */
#define CE_CHILD_START_LOCK_FIELD4	0x4347
/* a line whose execution's place another transition is taking goes again this much later */
#define CE_ADMISSION_RETRY_MS	20

/*
 * The execution's admission lock, until the end of the transaction, if no
 * other transition holds it: one transition of an execution at a time
 * takes its place.  Never waited for: the transition that holds it may be
 * waiting for this one's line (to clear its waits_for).
 */
static bool
lock_admission(const pg_uuid_t *execution)
{
	LOCKTAG		tag;
	uint32		k1;
	uint32		k2;

	/* the random bits of a version 7 uuid */
	memcpy(&k1, execution->data + 8, sizeof(k1));
	memcpy(&k2, execution->data + 12, sizeof(k2));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, k1, k2, CE_ADMISSION_LOCK_FIELD4);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

bool
ce_flow_admit_execution(ExecRow *ex, LineRow *line)
{
	Datum		v[4];
	char	   *key;

	/*
	 * Every step of a live execution needs the place, not only its first:
	 * a stopped execution gives its place up (finished_at), and once
	 * reopened (chain_resume, chain_retry_step, chain_skip_step) it goes on
	 * only when it has one again.  Its own place is found first.
	 */
	/*
	 * Compensations too: an execution that compensates after a failure
	 * still holds its place; one that chain_rollback reopened once it had
	 * ended gave it up, and takes one again.
	 */
	if (ex->plan == NULL || ex->plan->concurrency_limit <= 0 ||
		!(ce_exec_status_is_live(ex->status) || ex->status == CE_EXEC_COMPENSATING))
		return true;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = CStringGetTextDatum(ex->chain_id);
	v[2] = UUIDPGetDatum(&ex->id);
	v[3] = Int32GetDatum(ex->plan->concurrency_limit);
	ce_run_query(&q_chain_slot_held, v, NULL, false, 1);
	if (SPI_processed > 0)
		return true;

	/*
	 * Another transition of the execution (a parallel line) may be taking
	 * its place right now: its take, not yet committed, would be skipped
	 * (SKIP LOCKED), and this line would wait for a place the execution
	 * holds, woken by nothing.  Then this line goes again a moment later,
	 * when that take has committed; else look again and take one.
	 */
	if (!lock_admission(&ex->id))
	{
		v[1] = UUIDPGetDatum(&ex->id);
		v[2] = Int32GetDatum(line->line_number);
		v[3] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CE_ADMISSION_RETRY_MS));
		ce_run_query(&q_line_not_before, v, NULL, false, 0);
		ce_wake_executors(1);
		return false;
	}
	ce_run_query(&q_chain_slot_held, v, NULL, false, 1);
	if (SPI_processed > 0)
		return true;
	ce_run_query(&q_chain_slot_take, v, NULL, false, 0);
	key = chain_key(ex->chain_id);
	if (SPI_processed == 0)
	{
		line_waits_for(ex, line, key);
		return false;
	}
	/* admitted: lines of the execution that waited for it may go */
	v[2] = CStringGetTextDatum(key);
	v[1] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_exec_unwait, v, NULL, false, 0);
	if (SPI_processed > 0)
		ce_wake_executors((int) Min(SPI_processed, 64));

	/*
	 * The place is taken in a transition of its own, committed before the
	 * step runs (this backend claims the line again next): taken in the
	 * step's transaction, it stayed invisible for the whole step, and the
	 * execution's parallel lines, which found neither the place nor the
	 * admission lock, went again every CE_ADMISSION_RETRY_MS until the
	 * step ended, one after the other instead of side by side.
	 */
	admitted.to_claim = true;
	admitted.granted = false;
	admitted.org = ex->org;
	admitted.id = ex->id;
	admitted.line_number = line->line_number;
	admitted.attempt = line->attempt;
	return false;
}

/*
 * The execution ended: it gives its places up (its holder cleared in the
 * transaction that ends it, so that a reopened execution never finds as its
 * own a place another one has taken since), and a line waiting for a place
 * that its version admits is woken for each.
 */
bool
ce_flow_lock_child_starts(const pg_uuid_t *org, const char *chain_id)
{
	LOCKTAG		tag;
	uint32		k1;
	uint32		k2;

	k1 = hash_bytes((const unsigned char *) org->data, sizeof(org->data));
	k2 = hash_bytes((const unsigned char *) chain_id, strlen(chain_id));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, k1, k2, CE_CHILD_START_LOCK_FIELD4);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

void
ce_flow_line_again_soon(ExecRow *ex, int line_number)
{
	Datum		v[4];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line_number);
	v[3] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CE_ADMISSION_RETRY_MS));
	ce_run_query(&q_line_not_before, v, NULL, false, 0);
	ce_wake_executors(1);
}

void
ce_flow_execution_ended(ExecRow *ex)
{
	Datum		v[3];
	int		   *slots;
	int			n;
	int			i;

	if (ex->chain_id == NULL)
		return;
	if (ex->plan == NULL)
		ex->plan = ce_plan_get(&ex->org, ex->chain_id, ex->version);
	if (ex->plan == NULL || ex->plan->concurrency_limit <= 0)
		return;
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = CStringGetTextDatum(ex->chain_id);
	v[2] = UUIDPGetDatum(&ex->id);
	ce_run_query(&q_chain_slots_release, v, NULL, false, 0);
	n = (int) SPI_processed;
	if (n == 0)
		return;
	slots = palloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		slots[i] = DatumGetInt32(ce_getcol(i, 1, &isnull));
	}
	(void) wake_chain(&ex->org, ex->chain_id, slots, n);
}

/* ---------------------------------------------------------------------
 * Step limits
 * --------------------------------------------------------------------- */

bool
ce_flow_admit_step(ExecRow *ex, LineRow *line, const CeStep *step)
{
	Datum	   *names;
	Datum		v[4];
	int			i;
	int			n;
	char	  **lname;
	int		   *places;
	bool	   *has_rate;
	bool		rated = false;
	bool		granted;

	if (step->nlimits == 0)
		return true;

	names = palloc(sizeof(Datum) * step->nlimits);
	for (i = 0; i < step->nlimits; i++)
		names[i] = CStringGetTextDatum(step->limits[i]);
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = PointerGetDatum(construct_array(names, step->nlimits, TEXTOID, -1, false, TYPALIGN_INT));
	ce_run_query(&q_limits_of, v, NULL, false, 0);
	n = (int) SPI_processed;
	lname = palloc(sizeof(char *) * Max(n, 1));
	places = palloc(sizeof(int) * Max(n, 1));
	has_rate = palloc(sizeof(bool) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		lname[i] = ce_getcol_text(i, 1);
		places[i] = DatumGetInt32(ce_getcol(i, 2, &isnull));
		has_rate[i] = DatumGetBool(ce_getcol(i, 3, &isnull));
		rated |= has_rate[i];
	}

	granted = admitted.granted && admitted.line_number == line->line_number &&
		admitted.attempt == line->attempt &&
		memcmp(&admitted.org, &ex->org, sizeof(pg_uuid_t)) == 0 &&
		memcmp(&admitted.id, &ex->id, sizeof(pg_uuid_t)) == 0;
	admitted.granted = false;

	if (rated && !granted)
	{
		TimestampTz retry = 0;

		for (i = 0; i < n; i++)
		{
			bool		isnull;
			Datum		r;

			if (!has_rate[i])
				continue;
			v[0] = UUIDPGetDatum(&ex->org);
			v[1] = CStringGetTextDatum(lname[i]);
			ce_run_query(&q_take_token, v, NULL, false, 1);
			r = ce_getcol(0, 1, &isnull);
			if (!isnull && DatumGetTimestampTz(r) > retry)
				retry = DatumGetTimestampTz(r);
		}
		if (retry != 0)
		{
			/* no token: try again when it comes; what was taken is lost */
			v[0] = UUIDPGetDatum(&ex->org);
			v[1] = UUIDPGetDatum(&ex->id);
			v[2] = Int32GetDatum(line->line_number);
			v[3] = TimestampTzGetDatum(retry);
			ce_run_query(&q_line_not_before, v, NULL, false, 0);
			return false;
		}
		admitted.to_claim = true;
		admitted.granted = true;
		admitted.org = ex->org;
		admitted.id = ex->id;
		admitted.line_number = line->line_number;
		admitted.attempt = line->attempt;
		return false;
	}

	for (i = 0; i < n; i++)
	{
		if (places[i] == 0)
			continue;
		v[0] = UUIDPGetDatum(&ex->org);
		v[1] = CStringGetTextDatum(lname[i]);
		v[2] = Int32GetDatum(places[i]);
		ce_run_query(&q_take_place, v, NULL, false, 1);
		if (SPI_processed == 0)
		{
			/* no room: wait for a place; the places taken go with the commit */
			line_waits_for(ex, line, lname[i]);
			nheld = 0;
			return false;
		}
		if (nheld < CE_FLOW_MAX_HELD)
		{
			strlcpy(held[nheld], lname[i], CE_FLOW_NAME_LEN);
			held_org = ex->org;
			nheld++;
		}
	}
	return true;
}

void
ce_flow_transition_end(ExecRow *ex)
{
	int			i;
	int			n = nheld;

	nheld = 0;
	for (i = 0; i < n; i++)
		(void) wake(&held_org, held[i], 1);
}

void
ce_flow_reset(void)
{
	nheld = 0;
}

bool
ce_flow_take_admitted(pg_uuid_t *org, pg_uuid_t *id, int *line_number)
{
	if (!admitted.to_claim)
		return false;
	admitted.to_claim = false;
	*org = admitted.org;
	*id = admitted.id;
	*line_number = admitted.line_number;
	return true;
}

/* ---------------------------------------------------------------------
 * The sweep
 * --------------------------------------------------------------------- */

int
ce_flow_sweep_in_xact(void)
{
	int			ngroups;
	int			i;
	int			woken = 0;
	pg_uuid_t  *orgs;
	char	  **keys;
	int64	   *waiting;

	ce_run_query(&q_waiting_groups, NULL, NULL, false, 0);
	ngroups = (int) SPI_processed;
	if (ngroups == 0)
		return 0;
	orgs = palloc(sizeof(pg_uuid_t) * ngroups);
	keys = palloc(sizeof(char *) * ngroups);
	waiting = palloc(sizeof(int64) * ngroups);
	for (i = 0; i < ngroups; i++)
	{
		bool		isnull;

		memcpy(&orgs[i], DatumGetUUIDP(ce_getcol(i, 1, &isnull)), sizeof(pg_uuid_t));
		keys[i] = ce_getcol_text(i, 2);
		waiting[i] = DatumGetInt64(ce_getcol(i, 3, &isnull));
	}
	for (i = 0; i < ngroups; i++)
	{
		Datum		v[2];
		bool		isnull;
		int64		room;

		v[0] = UUIDPGetDatum(&orgs[i]);
		if (strncmp(keys[i], "chain:", 6) == 0)
		{
			int		   *slots;
			int			nslots;
			int			j;

			v[1] = CStringGetTextDatum(keys[i] + 6);
			ce_run_query(&q_chain_free_slots, v, NULL, false, 0);
			nslots = (int) SPI_processed;
			slots = palloc(sizeof(int) * (nslots + 1));
			for (j = 0; j < nslots; j++)
				slots[j] = DatumGetInt32(ce_getcol(j, 1, &isnull));
			woken += wake_chain(&orgs[i], keys[i] + 6, slots, nslots);
			continue;
		}
		else
		{
			v[1] = CStringGetTextDatum(keys[i]);
			ce_run_query(&q_limit_room, v, NULL, false, 1);
		}
		room = SPI_processed == 1 ? DatumGetInt64(ce_getcol(0, 1, &isnull)) : 0;
		woken += wake(&orgs[i], keys[i], Min(room, waiting[i]));
	}
	return woken;
}
