/*-------------------------------------------------------------------------
 *
 * direct_rows.c
 *	  A transition's own rows by direct row access (direct.c): the claim
 *	  of the next line with its header, the header read and locked, the
 *	  survey of the lines, the step's write (the completed line, the new
 *	  context and status, the next line made ready), the execution's start
 *	  and end.  Each stands for a statement of store.c or claim.c, named
 *	  at each function, with its rows, values and conditions.
 *
 *	  Runs in the caller's transaction, SPI connected, as the extension
 *	  owner, where ce_direct_available says so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "engine.h"
#include "engine_int.h"
#include "compose.h"
#include "direct.h"

static const Col context_set[] = {C_CONTEXT, C_COUNT};
static const Col context_status_set[] = {C_CONTEXT, C_STATUS, C_STARTED, C_COUNT};

/* ---------------------------------------------------------------------
 * jsonb fields, as the statements' ->, ->> and casts read them
 * --------------------------------------------------------------------- */

static Datum
field(PGFunction fn, Jsonb *j, const char *key, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	if (j == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	InitFunctionCallInfoData(*fcinfo, NULL, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(j);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(key);
	fcinfo->args[1].isnull = false;
	result = fn(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/* j -> key */
static Jsonb *
field_jsonb(Jsonb *j, const char *key)
{
	bool		isnull;
	Datum		d = field(jsonb_object_field, j, key, &isnull);

	return isnull ? NULL : DatumGetJsonbP(d);
}

/* j ->> key, or NULL */
static char *
field_text(Jsonb *j, const char *key)
{
	bool		isnull;
	Datum		d = field(jsonb_object_field_text, j, key, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* coalesce((j ->> key)::int, if_null) */
static int32
field_int(Jsonb *j, const char *key, int32 if_null)
{
	char	   *s = field_text(j, key);

	return s == NULL ? if_null : DatumGetInt32(DirectFunctionCall1(int4in, CStringGetDatum(s)));
}

/* ---------------------------------------------------------------------
 * The rows as the engine reads them
 * --------------------------------------------------------------------- */

/* The header in r->found, as ce_header_from_row reads HEADER_COLS. */
static void
header_from_found(DirectRel *r, ExecRow *ex)
{
	bool		isnull;
	Datum		v;
	Jsonb	   *metadata = ce_row_jsonb(r, C_METADATA);
	char	   *save = field_text(metadata, "saveIntermediateResults");

	ex->status = ce_exec_status_from_name(ce_row_text(r, C_STATUS));
	ex->chain_id = ce_row_text(r, C_CHAIN_ID);
	ex->version = ce_row_int(r, C_CHAIN_VERSION, 0);
	ex->context = ce_row_jsonb(r, C_CONTEXT);
	ex->owner = DatumGetObjectId(ce_row_value(r, C_OWNER, &isnull));
	v = ce_row_value(r, C_DEADLINE, &isnull);
	ex->has_deadline = !isnull;
	ex->deadline = isnull ? 0 : DatumGetTimestampTz(v);
	ex->priority = ce_row_int(r, C_PRIORITY, 0);
	ex->save_intermediate = save == NULL ? true : DatumGetBool(DirectFunctionCall1(boolin, CStringGetDatum(save)));
	ex->max_retries = field_int(field_jsonb(metadata, "options"), "maxRetries", -1);
	ex->progress_floor = field_int(metadata, "progressFloor", 0);
	v = ce_row_value(r, C_PARENT_ID, &isnull);
	ex->has_parent = !isnull;
	if (!isnull)
		memcpy(&ex->parent_id, DatumGetUUIDP(v), sizeof(pg_uuid_t));
	ex->parent_line = ce_row_int(r, C_PARENT_LINE, 0);
	ex->org_s = ce_uuid_to_cstring(&ex->org);
	ex->id_s = ce_uuid_to_cstring(&ex->id);
	ex->header_read = true;
}

/* The line in r->found, as ce_line_from_row reads LINE_COLS. */
static void
line_from_found(DirectRel *r, LineRow *line)
{
	bool		isnull;
	Datum		v;
	Jsonb	   *error = ce_row_jsonb(r, C_ERROR);
	char	   *failure = field_text(error, "failure_type");

	line->line_number = ce_row_int(r, C_LINE, 0);
	line->line_type = ce_row_text(r, C_LINE_TYPE);
	line->step_id = ce_row_int(r, C_STEP_ID, 0);
	line->step_name = ce_row_text(r, C_STEP_NAME);
	line->status = ce_line_status_from_name(ce_row_text(r, C_STATUS));
	line->attempt = ce_row_int(r, C_ATTEMPT, 0);
	line->parent_line = ce_row_int(r, C_PARENT_LINE, 0);
	v = ce_row_value(r, C_STARTED, &isnull);
	line->has_started = !isnull;
	line->started_at = isnull ? 0 : DatumGetTimestampTz(v);
	line->crashes = failure != NULL && strcmp(failure, "worker_crashed") == 0 ?
		field_int(error, "crashes", 0) : 0;
	line->iteration = ce_row_int(r, C_ITERATION, -1);
}

static bool
found_status_is(DirectRel *r, CeLineStatus status)
{
	return ce_line_status_from_name(ce_row_text(r, C_STATUS)) == status;
}

static bool
found_due(DirectRel *r)
{
	bool		isnull;
	Datum		v = ce_row_value(r, C_NOT_BEFORE, &isnull);

	return !isnull && DatumGetTimestampTz(v) <= GetCurrentTransactionStartTimestamp();
}

/* q_claim_next's conditions on the line: ready and due. */
static bool
claimable(DirectRel *r)
{
	return found_status_is(r, CE_LINE_READY) && found_due(r);
}

/*
 * q_claim_next (claim.c): lock line line_number of ex's execution, if
 * ready and due, SKIP LOCKED; read the execution's header unless the
 * execution is driven by a chain_run session other than the caller's.
 * True with both read when the line is also free (no limit holds it).
 */
bool
ce_direct_claim_next(ExecRow *ex, int line_number, bool own_session, LineRow *line)
{
	Direct		d;
	DirectRel  *h;
	DirectRel  *l;
	bool		ok = false;

	ce_row_begin(&d, false, false, context_set);
	h = ce_row_open(&d, T_HEADER, AccessShareLock);
	l = ce_row_open(&d, T_LINES, RowShareLock);
	if (ce_row_find(&d, h, &ex->org, &ex->id, 0) &&
		(own_session || !ce_row_bool(h, C_IN_SESSION)) &&
		ce_row_find(&d, l, &ex->org, &ex->id, line_number) && claimable(l) &&
		ce_row_lock(&d, l, LockTupleExclusive, LockWaitSkip) && claimable(l))
	{
		ok = ce_row_null(l, C_WAITS_FOR);
		if (ok)
		{
			line_from_found(l, line);
			header_from_found(h, ex);
		}
	}
	else
		ok = false;
	ce_row_end(&d);
	return ok;
}

/* ---------------------------------------------------------------------
 * The dispatch claim
 *
 * The dispatch index holds an entry for every line that was ever ready
 * since its last vacuum: claims take lines from the head of each
 * organization's range, so the entries of the lines done lie at the head,
 * dead, until a vacuum of the index removes them.  VACUUM skips the
 * indexes of a table whose dead rows fill fewer than 2 % of its pages, so
 * with a large history they stay: a scan from an organization's head
 * stepped over 55 more index pages per 10,000 steps run (executor CPU per
 * step 1.3 times that after a vacuum, 80,000 steps on).
 *
 * So each backend surveys the index at most every 100 ms: for every
 * organization in it (64 at most), where its visible entries begin, the
 * priority and due time of the first (hints).  Its claims start there, in
 * the organizations' turn: the organization's higher priorities from
 * their head (usually empty), its hinted priority from the hinted due time
 * (the hint moves on to the first entry visible each time), its lower
 * priorities from their head.  Only when that finds nothing does a claim
 * scan from the heads, as before.  A line that became ready with an
 * earlier due time than its organization's hint (a transaction that began
 * before the survey, a place released under a limit, a session's
 * execution handed over), or in an organization that had no work at the
 * survey, waits for the next survey, 100 ms at most, while other work is
 * there to claim.
 * --------------------------------------------------------------------- */

#define HINT_ORGS 64
#define HINT_MS 100

typedef struct ReadyHint
{
	pg_uuid_t	org;
	int32		priority;
	TimestampTz not_before;
} ReadyHint;

static ReadyHint hints[HINT_ORGS];	/* by organization */
static int	n_hints = 0;
static TimestampTz hints_taken = 0;

/* Remember where org's live entries begin (the first entry visible). */
static void
hint_record(const pg_uuid_t *org, int32 priority, TimestampTz not_before)
{
	int			i = 0;

	while (i < n_hints && memcmp(hints[i].org.data, org->data, UUID_LEN) < 0)
		i++;
	if (i < n_hints && memcmp(hints[i].org.data, org->data, UUID_LEN) == 0)
	{
		hints[i].priority = priority;
		hints[i].not_before = not_before;
		return;
	}
	if (n_hints == HINT_ORGS)
		return;
	memmove(&hints[i + 1], &hints[i], sizeof(ReadyHint) * (n_hints - i));
	hints[i].org = *org;
	hints[i].priority = priority;
	hints[i].not_before = not_before;
	n_hints++;
}

/*
 * One scan of the dispatch index with keys key: the first line that is
 * ready, free and due and whose execution no chain_run session drives,
 * locked FOR UPDATE SKIP LOCKED, with its header (ex, line); without ex,
 * backward and only to learn whether there is such a line, none locked.
 * record: the scan starts at its organization's hint: move the hint to
 * the first entry visible.
 */
static bool
ready_scan(Direct *d, DirectRel *h, DirectRel *l, Relation ready, ScanKeyData *key, int nkeys,
		   bool record, ExecRow *ex, LineRow *line)
{
	ScanDirection dir = ex ? ForwardScanDirection : BackwardScanDirection;
	IndexScanDesc scan;
	bool		claimed = false;
	bool		seen = false;
	pg_uuid_t	last_org;

	scan = index_beginscan(l->rel, ready, d->snap, nkeys, 0);
	index_rescan(scan, nkeys ? key : NULL, nkeys, NULL, 0);
	while (index_getnext_slot(scan, dir, l->found))
	{
		pg_uuid_t	org;
		pg_uuid_t	id;
		bool		isnull;

		memcpy(&org, DatumGetUUIDP(ce_row_value(l, C_ORG, &isnull)), sizeof(pg_uuid_t));
		if (record && (!seen || memcmp(org.data, last_org.data, UUID_LEN) != 0))
		{
			Datum		nb = ce_row_value(l, C_NOT_BEFORE, &isnull);

			if (!isnull)
				hint_record(&org, ce_row_int(l, C_PRIORITY, 0), DatumGetTimestampTz(nb));
			seen = true;
			last_org = org;
		}
		if (!claimable(l) || !ce_row_null(l, C_WAITS_FOR))
			continue;
		memcpy(&id, DatumGetUUIDP(ce_row_value(l, C_ID, &isnull)), sizeof(pg_uuid_t));
		if (!ce_row_find(d, h, &org, &id, 0) || ce_row_bool(h, C_IN_SESSION))
			continue;
		if (ex == NULL)
		{
			claimed = true;
			break;
		}
		if (!ce_row_lock(d, l, LockTupleExclusive, LockWaitSkip) || !claimable(l) ||
			!ce_row_null(l, C_WAITS_FOR))
			continue;
		ex->org = org;
		ex->id = id;
		line_from_found(l, line);
		header_from_found(h, ex);
		claimed = true;
		break;
	}
	index_endscan(scan);
	return claimed;
}

/* A scan of the organizations after *after and before *before, when given. */
static bool
claim_ready_scan(Direct *d, DirectRel *h, DirectRel *l, Relation ready,
				 const pg_uuid_t *after, const pg_uuid_t *before, ExecRow *ex, LineRow *line)
{
	ScanKeyData key[2];
	int			nkeys = 0;

	if (after)
		ScanKeyInit(&key[nkeys++], 1, BTGreaterStrategyNumber, F_UUID_GT, UUIDPGetDatum((pg_uuid_t *) after));
	if (before)
		ScanKeyInit(&key[nkeys++], 1, BTLessStrategyNumber, F_UUID_LT, UUIDPGetDatum((pg_uuid_t *) before));
	return ready_scan(d, h, l, ready, key, nkeys, false, ex, line);
}

/*
 * Take the hints afresh: for each organization in the dispatch index, in
 * order, where its visible entries begin (one scan from its head each, of
 * the organizations after the last one found), so that the claims from
 * the hints serve every organization that had work, in turn.
 */
static void
hints_survey(Direct *d, DirectRel *h, DirectRel *l, Relation ready)
{
	ScanKeyData key;
	pg_uuid_t	after;

	n_hints = 0;
	hints_taken = GetCurrentTimestamp();
	for (int k = 0; k < HINT_ORGS; k++)
	{
		IndexScanDesc scan;
		bool		found;
		bool		isnull;

		if (k > 0)
			ScanKeyInit(&key, 1, BTGreaterStrategyNumber, F_UUID_GT, UUIDPGetDatum(&after));
		scan = index_beginscan(l->rel, ready, d->snap, k > 0 ? 1 : 0, 0);
		index_rescan(scan, k > 0 ? &key : NULL, k > 0 ? 1 : 0, NULL, 0);
		found = index_getnext_slot(scan, ForwardScanDirection, l->found);
		if (found)
		{
			Datum		nb = ce_row_value(l, C_NOT_BEFORE, &isnull);

			memcpy(&after, DatumGetUUIDP(ce_row_value(l, C_ORG, &isnull)), sizeof(pg_uuid_t));
			if (!ce_row_null(l, C_NOT_BEFORE))
				hint_record(&after, ce_row_int(l, C_PRIORITY, 0), DatumGetTimestampTz(nb));
		}
		index_endscan(scan);
		if (!found)
			break;
	}
}

/*
 * Claim a line of hint's organization from where the hint says its live
 * entries begin: its higher priorities, the hinted one from the hinted due
 * time (the hint moves on), its lower ones.
 */
static bool
claim_hinted(Direct *d, DirectRel *h, DirectRel *l, Relation ready, ReadyHint *hint,
			 ExecRow *ex, LineRow *line)
{
	ScanKeyData key[3];
	pg_uuid_t	org = hint->org;
	int32		priority = hint->priority;

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(&org));
	ScanKeyInit(&key[1], 2, BTGreaterStrategyNumber, F_INT4GT, Int32GetDatum(priority));
	if (ready_scan(d, h, l, ready, key, 2, false, ex, line))
		return true;
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(priority));
	ScanKeyInit(&key[2], 3, BTGreaterEqualStrategyNumber, F_TIMESTAMPTZ_GE,
				TimestampTzGetDatum(hint->not_before));
	if (ready_scan(d, h, l, ready, key, 3, true, ex, line))
		return true;
	ScanKeyInit(&key[1], 2, BTLessStrategyNumber, F_INT4LT, Int32GetDatum(priority));
	return ready_scan(d, h, l, ready, key, 2, false, ex, line);
}

/*
 * The claims from the hints, in the dispatch order: the organizations
 * after *pivot, then from the first (other_than: but *pivot's).
 */
static bool
claim_from_hints(Direct *d, DirectRel *h, DirectRel *l, Relation ready, const pg_uuid_t *pivot,
				 bool other_than, ExecRow *ex, LineRow *line)
{
	int			start = 0;

	if (GetCurrentTimestamp() - hints_taken >= HINT_MS * INT64CONST(1000))
		hints_survey(d, h, l, ready);
	if (pivot != NULL)
		while (start < n_hints && memcmp(hints[start].org.data, pivot->data, UUID_LEN) <= 0)
			start++;
	for (int k = 0; k < n_hints; k++)
	{
		ReadyHint  *hint = &hints[(start + k) % n_hints];

		if (other_than && memcmp(hint->org.data, pivot->data, UUID_LEN) == 0)
			continue;
		if (claim_hinted(d, h, l, ready, hint, ex, line))
			return true;
	}
	return false;
}

/*
 * q_claim_ready_after, then q_claim_ready (claim.c): the first line in the
 * dispatch index's order (organization, priority descending, due time)
 * that is ready, free and due and whose execution no chain_run session
 * drives, locked FOR UPDATE SKIP LOCKED, with its execution's header (ex,
 * org and id set): of an organization after *pivot, else of any (pivot
 * NULL: of any).  other_than: of an organization after *pivot, else before
 * it (never *pivot's).  From the hints first (see above).  1: claimed; 0:
 * none; -1: the dispatch index is not the extension's, run the statements.
 */
int
ce_direct_claim_ready(const pg_uuid_t *pivot, bool other_than, ExecRow *ex, LineRow *line)
{
	Direct		d;
	DirectRel  *h;
	DirectRel  *l;
	Relation	ready;
	int			claimed;

	ce_row_begin(&d, false, false, context_set);
	h = ce_row_open(&d, T_HEADER, AccessShareLock);
	l = ce_row_open(&d, T_LINES, RowShareLock);
	ready = ce_row_open_ready();
	if (ready == NULL)
	{
		ce_row_end(&d);
		return -1;
	}
	if (claim_from_hints(&d, h, l, ready, pivot, other_than, ex, line))
		claimed = true;
	else
	{
		if (pivot != NULL && claim_ready_scan(&d, h, l, ready, pivot, NULL, ex, line))
			claimed = true;
		else if (!other_than)
			claimed = claim_ready_scan(&d, h, l, ready, NULL, NULL, ex, line);
		else
		{
			/*
			 * Before *pivot: a backward look from it first, which ends at
			 * once when there is no other organization (a forward scan
			 * from the start would step over the index entries of *pivot's
			 * lines done since the index's last vacuum), then the first in
			 * turn.
			 */
			claimed = claim_ready_scan(&d, h, l, ready, NULL, pivot, NULL, NULL) &&
				claim_ready_scan(&d, h, l, ready, NULL, pivot, ex, line);
		}
	}
	index_close(ready, NoLock);
	ce_row_end(&d);
	return claimed ? 1 : 0;
}

/* q_header (store.c): ex's header, no lock; false: none. */
bool
ce_direct_read_header(ExecRow *ex)
{
	Direct		d;
	DirectRel  *h;
	bool		ok;

	ce_row_begin(&d, false, false, context_set);
	h = ce_row_open(&d, T_HEADER, AccessShareLock);
	ok = ce_row_find(&d, h, &ex->org, &ex->id, 0);
	if (ok)
		header_from_found(h, ex);
	ce_row_end(&d);
	return ok;
}

/* q_lock_header (store.c): lock ex's header FOR NO KEY UPDATE, refresh status and context. */
bool
ce_direct_lock_header(ExecRow *ex)
{
	Direct		d;
	DirectRel  *h;
	bool		ok;

	ce_row_begin(&d, false, false, context_set);
	h = ce_row_open(&d, T_HEADER, RowShareLock);
	ok = ce_row_find(&d, h, &ex->org, &ex->id, 0) &&
		ce_row_lock(&d, h, LockTupleNoKeyExclusive, LockWaitBlock);
	if (ok)
	{
		ex->status = ce_exec_status_from_name(ce_row_text(h, C_STATUS));
		ex->context = ce_row_jsonb(h, C_CONTEXT);
	}
	ce_row_end(&d);
	return ok;
}

/*
 * q_lines (store.c): the lines of ex's execution but iterations, by line
 * number, as LineInfo; a waiting step line with its iteration counters.
 */
List *
ce_direct_lines(ExecRow *ex)
{
	Direct		d;
	DirectRel  *l;
	ScanKeyData key[2];
	IndexScanDesc scan;
	Relation	steps = NULL;
	List	   *res = NIL;

	ce_row_begin(&d, false, true, context_set);
	l = ce_row_open(&d, T_LINES, AccessShareLock);
	/* the index that leaves out a forEach's iteration lines, if there */
	steps = ce_row_open_steps();
	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(&ex->org));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(&ex->id));
	scan = index_beginscan(l->rel, steps ? steps : l->pkey, d.snap, 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, l->found))
	{
		char	   *type = ce_row_text(l, C_LINE_TYPE);
		LineInfo   *li;

		if (strcmp(type, "iteration") == 0)
			continue;
		li = palloc0(sizeof(LineInfo));
		li->line_number = ce_row_int(l, C_LINE, 0);
		li->type = type[0];
		li->step_id = ce_row_int(l, C_STEP_ID, 0);
		li->status = ce_line_status_from_name(ce_row_text(l, C_STATUS));
		li->parent_line = ce_row_int(l, C_PARENT_LINE, 0);
		if (li->status == CE_LINE_WAITING && strcmp(type, "step") == 0)
			ce_container_counters(field_jsonb(ce_row_jsonb(l, C_OUTPUT), "iterations"), li);
		res = lappend(res, li);
	}
	index_endscan(scan);
	if (steps != NULL)
		index_close(steps, NoLock);
	ce_row_end(&d);
	return res;
}

/*
 * q_write_step (store.c): v and n are its parameters and null flags ($1
 * organization, $2 execution, $3 line, $4 status, $5 attempt, $6 due time
 * or null to keep, $7 input or null to keep, $8 output, $9 error, $10
 * started, $11 finished, $12 context or null when unchanged); promote:
 * the line to make ready if still pending and not an iteration, 0 for
 * none; exec_status: the execution's new status (a CeExecStatus, with
 * q_set_status's started_at), -1 for none.
 */
void
ce_direct_write_step(const Datum *v, const char *n, int promote, int exec_status)
{
	Direct		d;
	DirectRel  *l;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz clock;
	bool		started = DatumGetBool(v[9]);
	bool		finished = DatumGetBool(v[10]);
	const pg_uuid_t *org = DatumGetUUIDP(v[0]);
	const pg_uuid_t *id = DatumGetUUIDP(v[1]);

	ce_row_begin(&d, true, false, exec_status >= 0 ? context_status_set : context_set);
	AfterTriggerBeginQuery();
	l = ce_row_open(&d, T_LINES, RowExclusiveLock);
	if (ce_row_find(&d, l, org, id, DatumGetInt32(v[2])) &&
		ce_row_lock(&d, l, LockTupleNoKeyExclusive, LockWaitBlock))
	{
		/* the statement's clock_timestamp(): read after any wait for the row */
		clock = GetCurrentTimestamp();
		ce_row_new_version(l);
		ce_row_set(l, C_STATUS, v[3], false);
		ce_row_set(l, C_ATTEMPT, v[4], false);
		if (n[5] != 'n')
			ce_row_set(l, C_NOT_BEFORE, v[5], false);
		if (n[6] != 'n')
			ce_row_set(l, C_INPUT, v[6], false);
		ce_row_set(l, C_OUTPUT, v[7], n[7] == 'n');
		ce_row_set(l, C_ERROR, v[8], n[8] == 'n');
		if (started)
		{
			ce_row_set(l, C_STARTED, TimestampTzGetDatum(now), false);
			if (ce_row_null(l, C_FIRST_STARTED))
				ce_row_set(l, C_FIRST_STARTED, TimestampTzGetDatum(now), false);
		}
		if (finished)
		{
			bool		isnull;
			Datum		was = ce_row_value(l, C_STARTED, &isnull);
			TimestampTz from = started ? now : isnull ? clock : DatumGetTimestampTz(was);

			ce_row_set(l, C_FINISHED, TimestampTzGetDatum(clock), false);
			ce_row_set(l, C_DURATION, Float8GetDatum((double) (clock - from) / 1000.0), false);
		}
		else
		{
			ce_row_set(l, C_FINISHED, (Datum) 0, true);
			ce_row_set(l, C_DURATION, (Datum) 0, true);
		}
		ce_row_write(&d, l);
	}

	if (n[11] != 'n' || exec_status >= 0)
	{
		DirectRel  *h = ce_row_open(&d, T_HEADER, RowExclusiveLock);

		if (ce_row_find(&d, h, org, id, 0) &&
			ce_row_lock(&d, h, LockTupleNoKeyExclusive, LockWaitBlock))
		{
			ce_row_new_version(h);
			if (n[11] != 'n')
				ce_row_set(h, C_CONTEXT, v[11], false);
			if (exec_status >= 0)
			{
				ce_row_set(h, C_STATUS, CStringGetTextDatum(ce_exec_status_name((CeExecStatus) exec_status)),
						false);
				if (ce_row_null(h, C_STARTED))
					ce_row_set(h, C_STARTED, TimestampTzGetDatum(now), false);
			}
			ce_row_write(&d, h);
		}
	}

	if (promote > 0 && ce_row_find(&d, l, org, id, promote))
	{
		char	   *type = ce_row_text(l, C_LINE_TYPE);

		if (found_status_is(l, CE_LINE_PENDING) && strcmp(type, "iteration") != 0 &&
			ce_row_lock(&d, l, LockTupleNoKeyExclusive, LockWaitBlock) &&
			found_status_is(l, CE_LINE_PENDING))
		{
			bool		isnull;
			TimestampTz due = DatumGetTimestampTz(ce_row_value(l, C_NOT_BEFORE, &isnull));

			ce_row_new_version(l);
			ce_row_set(l, C_STATUS, CStringGetTextDatum(ce_line_status_name(CE_LINE_READY)), false);
			ce_row_set(l, C_NOT_BEFORE, TimestampTzGetDatum(Max(due, now)), false);
			ce_row_write(&d, l);
		}
	}
	ce_row_end(&d);
}

/*
 * store.c's q_set_status (start: also started_at = coalesce(started_at,
 * now())) and q_finish_exec (finish: status, output, error = coalesce(error,
 * the old one), finished_at = clock_timestamp(), and started_at =
 * coalesce(started_at, now()) when it ends in its first transition,
 * ce_exec_ran_to_end): the header of ex; with context, the new context
 * too (the held-back completion's, store.c).
 */
void
ce_direct_write_header(ExecRow *ex, CeExecStatus status, bool finish, Jsonb *output, Jsonb *error,
					   Jsonb *context)
{
	static const Col start_set[] = {C_STATUS, C_STARTED, C_COUNT};
	static const Col start_context_set[] = {C_STATUS, C_STARTED, C_CONTEXT, C_COUNT};
	static const Col finish_set[] = {C_STATUS, C_OUTPUT, C_ERROR, C_FINISHED, C_STARTED, C_COUNT};
	static const Col finish_context_set[] = {C_STATUS, C_OUTPUT, C_ERROR, C_FINISHED, C_STARTED, C_CONTEXT, C_COUNT};
	Direct		d;
	DirectRel  *h;

	/* a held-back completion first, as before any statement */
	ce_store_before_query(NULL);
	ce_row_begin(&d, true, false, !finish ? (context ? start_context_set : start_set) :
				 context ? finish_context_set : finish_set);
	AfterTriggerBeginQuery();
	h = ce_row_open(&d, T_HEADER, RowExclusiveLock);
	if (ce_row_find(&d, h, &ex->org, &ex->id, 0) &&
		ce_row_lock(&d, h, LockTupleNoKeyExclusive, LockWaitBlock))
	{
		ce_row_new_version(h);
		ce_row_set(h, C_STATUS, CStringGetTextDatum(ce_exec_status_name(status)), false);
		if (context != NULL)
			ce_row_set(h, C_CONTEXT, JsonbPGetDatum(context), false);
		if (finish)
		{
			ce_row_set(h, C_OUTPUT, output ? JsonbPGetDatum(output) : (Datum) 0, output == NULL);
			if (error != NULL)
				ce_row_set(h, C_ERROR, JsonbPGetDatum(error), false);
			ce_row_set(h, C_FINISHED, TimestampTzGetDatum(GetCurrentTimestamp()), false);
		}
		if ((!finish || ce_exec_ran_to_end(ex, status)) && ce_row_null(h, C_STARTED))
			ce_row_set(h, C_STARTED, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
		ce_row_write(&d, h);
	}
	ce_row_end(&d);
}

/* store.c's q_set_context: ex's header gets context. */
void
ce_direct_write_context(ExecRow *ex, Jsonb *context)
{
	Direct		d;
	DirectRel  *h;

	/* a held-back completion first, as before any statement */
	ce_store_before_query(NULL);
	ce_row_begin(&d, true, false, context_set);
	AfterTriggerBeginQuery();
	h = ce_row_open(&d, T_HEADER, RowExclusiveLock);
	if (ce_row_find(&d, h, &ex->org, &ex->id, 0) &&
		ce_row_lock(&d, h, LockTupleNoKeyExclusive, LockWaitBlock))
	{
		ce_row_new_version(h);
		ce_row_set(h, C_CONTEXT, JsonbPGetDatum(context), false);
		ce_row_write(&d, h);
	}
	ce_row_end(&d);
}

/*
 * q_insert_lines (execute.c): the step lines of execution (org, id), whose
 * header the current transaction has just inserted; see engine.h.  The
 * check of the lines' foreign key to the header is left out when the
 * header is found and is the transaction's own (ce_row_open_insert).
 */
bool
ce_direct_insert_lines(const pg_uuid_t *org, const pg_uuid_t *id, int priority,
					   TimestampTz not_before, int n, const int *step_ids,
					   char *const *names, const bool *ready, char *const *smart)
{
	static const Col line_set[] = {C_ORG, C_ID, C_LINE, C_LINE_TYPE, C_STEP_ID, C_STEP_NAME,
	C_STATUS, C_PRIORITY, C_NOT_BEFORE, C_SMART_CODE, C_COUNT};
	static const Col none[] = {C_COUNT};
	Direct		d;
	DirectRel  *h;
	DirectRel  *l;
	bool		ours;
	Datum		status[2];

	if (!ce_direct_available() || !ce_row_insertable(T_LINES))
		return false;
	ce_row_begin(&d, false, false, none);
	h = ce_row_open(&d, T_HEADER, AccessShareLock);
	ours = ce_row_find(&d, h, org, id, 0) && ce_row_ours(h);
	ce_row_end(&d);

	ce_row_begin(&d, true, false, none);
	AfterTriggerBeginQuery();
	l = ce_row_open_insert(&d, T_LINES, line_set, ours);
	status[0] = CStringGetTextDatum(ce_line_status_name(CE_LINE_PENDING));
	status[1] = CStringGetTextDatum(ce_line_status_name(CE_LINE_READY));
	for (int i = 0; i < n; i++)
	{
		ce_row_new_row(&d, l);
		ce_row_set(l, C_ORG, UUIDPGetDatum(org), false);
		ce_row_set(l, C_ID, UUIDPGetDatum(id), false);
		ce_row_set(l, C_LINE, Int32GetDatum(i + 1), false);
		ce_row_set(l, C_LINE_TYPE, CStringGetTextDatum("step"), false);
		ce_row_set(l, C_STEP_ID, Int32GetDatum(step_ids[i]), false);
		ce_row_set(l, C_STEP_NAME, CStringGetTextDatum(names[i]), false);
		ce_row_set(l, C_STATUS, status[ready[i] ? 1 : 0], false);
		ce_row_set(l, C_PRIORITY, Int32GetDatum(priority), false);
		ce_row_set(l, C_NOT_BEFORE, TimestampTzGetDatum(not_before), false);
		ce_row_set(l, C_SMART_CODE, CStringGetTextDatum(smart[i]), false);
		ce_row_insert(&d, l);
	}
	ce_row_end(&d);
	return true;
}
