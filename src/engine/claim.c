/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  Claiming work: which line a transition runs.  A follow-on (the next
 *	  step of the execution a transition just moved on) unless another
 *	  organization has ready work; the executors' dispatch
 *	  query (organizations in turn, then priority and due time), its
 *	  per-organization form on Citus, the claims within one execution
 *	  (chain_run), and the claims of a given line: the next step of the
 *	  execution a transition just moved on, with its header (ce_claim_next),
 *	  a line whose limit tokens were taken (flow.c), the latest line of a
 *	  step (control calls).  Every claim locks the line FOR UPDATE SKIP
 *	  LOCKED, so two transitions never run one line.
 *
 *	  Runs in the caller's transaction, SPI connected, as the extension
 *	  owner; the rows are read by store.c's row readers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "engine.h"
#include "engine_int.h"
#include "flow.h"

/*
 * The dispatch query of the executors (with q_claim_ready_after, the only
 * queries that claim ready lines of any execution): never a line of an
 * execution that a chain_run session drives (insession.c), nor one that
 * waits for a place of a limit (flow.c).  Organizations in turn: an
 * executor claims from the organization after the one it served last
 * (q_claim_ready_after), and starts again from the first when there is
 * none; within an organization, by priority, then due time.  A variant for
 * one organization is the same query with "organization_id = $1".
 */
static CeQuery q_claim_ready = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines l "
	"WHERE status = 'ready' AND waits_for IS NULL AND not_before <= now() "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = l.organization_id AND t.id = l.transaction_id) "
	"ORDER BY organization_id, priority DESC, not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 0, {0}};
static CeQuery q_claim_ready_after = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines l "
	"WHERE status = 'ready' AND waits_for IS NULL AND not_before <= now() AND organization_id > $1 "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = l.organization_id AND t.id = l.transaction_id) "
	"ORDER BY organization_id, priority DESC, not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 1, {UUIDOID}};

/* The organization this backend's dispatch served last. */
static bool dispatch_served = false;

TimestampTz ce_claimed_due_upto = DT_NOBEGIN;
static pg_uuid_t dispatch_last_org;
/*
 * Claims within one execution (chain_run, _run_one) also take a line that
 * is not due yet once the execution is past its deadline, so that the
 * transition ends it (status timeout): chain_run has no deadline sweep.
 */
#define PAST_DEADLINE "EXISTS (SELECT FROM chainexec.universal_transactions t " \
	"WHERE t.organization_id = $1 AND t.id = $2 AND t.deadline <= now() " \
	"AND t.status IN ('pending', 'running', 'waiting'))"
static CeQuery q_claim_ready_exec = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status = 'ready' AND waits_for IS NULL "
	"AND (not_before <= now() OR " PAST_DEADLINE ") "
	"ORDER BY priority DESC, not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 2, {UUIDOID, UUIDOID}};
static CeQuery q_claim_waiting = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines l "
	"WHERE status = 'waiting' AND not_before <= now() "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = l.organization_id AND t.id = l.transaction_id) "
	"ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 0, {0}};
static CeQuery q_claim_waiting_exec = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND status = 'waiting' "
	"AND (not_before <= now() OR " PAST_DEADLINE ") "
	"ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 2, {UUIDOID, UUIDOID}};


/* The latest step or fallback line of a step; SKIP LOCKED: a running one is not returned. */
#define STEP_LINE_SQL(lock) \
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines " \
	"WHERE organization_id = $1 AND transaction_id = $2 AND step_id = $3 " \
	"AND line_type IN ('step', 'fallback') ORDER BY line_number DESC LIMIT 1" lock
static CeQuery q_step_line = {STEP_LINE_SQL(""), 3, {UUIDOID, UUIDOID, INT4OID}};
static CeQuery q_step_line_lock = {STEP_LINE_SQL(" FOR UPDATE SKIP LOCKED"), 3, {UUIDOID, UUIDOID, INT4OID}};

static CeQuery q_claim_line = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3 "
	"AND status IN ('ready', 'waiting') FOR UPDATE SKIP LOCKED", 3, {UUIDOID, UUIDOID, INT4OID}};

/*
 * The line this backend's last transition made ready, with its execution's
 * header (HEADER_COLS) read in the same statement: the next step of an
 * execution claimed without the dispatch query (ce_claim_next).  The same
 * conditions as the dispatch query's; $4: the caller drives the execution
 * in its session (chain_run), else its lines are not the executors'.
 * "waits_for IS NULL" is a column (free), tested by the caller: in the
 * WHERE clause (even outside the subquery, where the planner pushes it
 * down), the conditions imply the predicate of the small ready index, and
 * the planner scans that index for the organization instead of using the
 * primary key.
 */
static CeQuery q_claim_next = {
	"SELECT l.*, h.* FROM (SELECT " LINE_COLS ", waits_for IS NULL AS free "
	"FROM chainexec.universal_transaction_lines "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3 "
	"AND status = 'ready' AND not_before <= now() FOR UPDATE SKIP LOCKED) l, "
	"(SELECT " HEADER_COLS " FROM chainexec.universal_transactions "
	"WHERE organization_id = $1 AND id = $2 AND ($4 OR NOT in_session)) h",
	4, {UUIDOID, UUIDOID, INT4OID, BOOLOID}};


static bool
claim_line(CeQuery *q, const pg_uuid_t *only, LineRow *line, pg_uuid_t *org, pg_uuid_t *id)
{
	Datum		args[2];
	bool		isnull;

	if (only)
	{
		args[0] = UUIDPGetDatum(org);
		args[1] = UUIDPGetDatum((pg_uuid_t *) only);
	}
	ce_run_query(q, only ? args : NULL, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	memcpy(org, DatumGetUUIDP(ce_getcol(0, 1, &isnull)), sizeof(pg_uuid_t));
	memcpy(id, DatumGetUUIDP(ce_getcol(0, 2, &isnull)), sizeof(pg_uuid_t));
	ce_line_from_row(0, line);
	return true;
}

/*
 * Citus mode (SPEC section 9 "Scale-out"): once chainexec.citus_distribute()
 * has distributed the lines table, Citus refuses FOR UPDATE SKIP LOCKED on
 * more than one shard, so the executors find the organizations with due
 * work (a multi-shard read without locks), then claim with router queries
 * that name one organization, in turn from the one after the organization
 * served last.  Checked again every CITUS_RECHECK_MS, so that executors
 * started before the tables were distributed switch by themselves.
 */
#define CITUS_RECHECK_MS 10000
static int	citus_mode = -1;
static TimestampTz citus_checked;
static bool citus_served = false;
static pg_uuid_t citus_last_org;

/*
 * Node-local dispatch: an executor serves first the organizations whose
 * lines are placed on its own node ("here"), so that its claims are local
 * router queries; the others only when none of those has work it can
 * claim (the node is idle), and, so that no organization waits for ever
 * behind the work of busy nodes (a node without executors, say), in every
 * CITUS_SPREAD_EVERY-th round, which takes every organization in turn
 * alike.  A node that holds no shard of the lines (the coordinator,
 * usually) counts every organization as here.  Placements are kept per
 * process and forgotten at each check of Citus mode, so that a moved
 * shard is seen within CITUS_RECHECK_MS.
 */
#define CITUS_SPREAD_EVERY 8
static HTAB *org_here = NULL;
static int	node_holds = -1;	/* this node holds shards of the lines; -1: unknown */
static uint32 citus_rounds = 0;

typedef struct OrgHere
{
	pg_uuid_t	org;
	bool		here;
} OrgHere;

#define LOCAL_GROUP "(SELECT groupid FROM pg_catalog.pg_dist_local_group)"
#define LINES_REGCLASS "'chainexec.universal_transaction_lines'::pg_catalog.regclass"

static CeQuery q_orgs_with_work = {
	"SELECT DISTINCT organization_id FROM chainexec.universal_transaction_lines "
	"WHERE status IN ('ready', 'waiting') AND not_before <= now() "
	"ORDER BY organization_id LIMIT 10000", 0, {0}};
static CeQuery q_claim_ready_org = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines l "
	"WHERE l.organization_id = $1 AND status = 'ready' AND waits_for IS NULL AND not_before <= now() "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = $1 AND t.id = l.transaction_id) "
	"ORDER BY priority DESC, not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 1, {UUIDOID}};
static CeQuery q_claim_waiting_org = {
	"SELECT " LINE_COLS " FROM chainexec.universal_transaction_lines l "
	"WHERE l.organization_id = $1 AND status = 'waiting' AND not_before <= now() "
	"AND NOT EXISTS (SELECT FROM chainexec.universal_transactions t WHERE t.in_session "
	"AND t.organization_id = $1 AND t.id = l.transaction_id) "
	"ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED", 1, {UUIDOID}};

/* Whether chainexec's tables are distributed by Citus (call inside SPI). */
bool
ce_citus_mode(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		isnull;

	if (citus_mode >= 0 && !TimestampDifferenceExceeds(citus_checked, now, CITUS_RECHECK_MS))
		return citus_mode == 1;
	citus_checked = now;
	citus_mode = 0;
	node_holds = -1;
	if (org_here != NULL)
	{
		hash_destroy(org_here);
		org_here = NULL;
	}
	if (SPI_execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_extension "
					"WHERE extname OPERATOR(pg_catalog.=) 'citus')", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1 && DatumGetBool(ce_getcol(0, 1, &isnull)) &&
		SPI_execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid "
					"OPERATOR(pg_catalog.=) 'chainexec.universal_transaction_lines'::pg_catalog.regclass)",
					true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1 && DatumGetBool(ce_getcol(0, 1, &isnull)))
		citus_mode = 1;
	return citus_mode == 1;
}

bool
ce_citus_mode_known(void)
{
	return citus_mode == 1;
}

/*
 * Whether organization o's lines are placed on this node, or this node
 * holds none (see org_here above); true outside Citus mode.  Runs a query
 * on the first call per organization after each check of Citus mode.
 */
bool
ce_citus_org_here(const pg_uuid_t *o)
{
	OrgHere    *e;
	bool		found;
	bool		isnull;

	if (citus_mode != 1)
		return true;
	if (node_holds < 0)
	{
		if (SPI_execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_placement p, pg_catalog.pg_dist_shard s "
						"WHERE s.shardid OPERATOR(pg_catalog.=) p.shardid AND s.logicalrelid "
						"OPERATOR(pg_catalog.=) " LINES_REGCLASS " AND p.groupid OPERATOR(pg_catalog.=) "
						LOCAL_GROUP ")", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			return true;
		node_holds = DatumGetBool(ce_getcol(0, 1, &isnull)) ? 1 : 0;
	}
	if (node_holds == 0)
		return true;
	if (org_here == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(OrgHere);
		ctl.hcxt = TopMemoryContext;
		org_here = hash_create("chainexec organizations here", 256, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(org_here, o, HASH_FIND, NULL);
	if (e != NULL)
		return e->here;
	{
		Oid			type = UUIDOID;
		Datum		arg = UUIDPGetDatum((pg_uuid_t *) o);
		bool		here;

		if (SPI_execute_with_args("SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_placement p "
								  "WHERE p.shardid OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column("
								  LINES_REGCLASS ", $1) AND p.groupid OPERATOR(pg_catalog.=) " LOCAL_GROUP ")",
								  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			return true;
		here = DatumGetBool(ce_getcol(0, 1, &isnull));
		if (hash_get_num_entries(org_here) >= 10000)
		{
			hash_destroy(org_here);
			org_here = NULL;
			return here;
		}
		e = hash_search(org_here, o, HASH_ENTER, &found);
		e->here = here;
		return here;
	}
}

/* Claim with a router query of organization *o (ready lines first). */
static bool
claim_line_org(const pg_uuid_t *o, LineRow *line, pg_uuid_t *org, pg_uuid_t *id)
{
	Datum		arg = UUIDPGetDatum((pg_uuid_t *) o);
	CeQuery    *qs[2] = {&q_claim_ready_org, &q_claim_waiting_org};
	bool		isnull;

	for (int i = 0; i < 2; i++)
	{
		ce_run_query(qs[i], &arg, NULL, false, 1);
		if (SPI_processed == 0)
			continue;
		memcpy(org, DatumGetUUIDP(ce_getcol(0, 1, &isnull)), sizeof(pg_uuid_t));
		memcpy(id, DatumGetUUIDP(ce_getcol(0, 2, &isnull)), sizeof(pg_uuid_t));
		ce_line_from_row(0, line);
		return true;
	}
	return false;
}

/* Citus mode: the organizations with due work, in turn after the last served. */
static bool
claim_due_per_org(LineRow *line, pg_uuid_t *org, pg_uuid_t *id)
{
	int			n,
				start = -1;
	pg_uuid_t  *orgs;
	bool	   *here;
	bool		spread;
	bool		isnull;

	ce_run_query(&q_orgs_with_work, NULL, NULL, true, 0);
	n = (int) SPI_processed;
	if (n == 0)
		return false;
	orgs = palloc(sizeof(pg_uuid_t) * n);
	for (int i = 0; i < n; i++)
	{
		memcpy(&orgs[i], DatumGetUUIDP(ce_getcol(i, 1, &isnull)), sizeof(pg_uuid_t));
		if (citus_served && start < 0 &&
			memcmp(&orgs[i], &citus_last_org, sizeof(pg_uuid_t)) > 0)
			start = i;
	}
	if (start < 0)
		start = 0;
	/* here first, then the others; every organization alike in a spread round */
	spread = (++citus_rounds % CITUS_SPREAD_EVERY) == 0;
	here = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
		here[i] = spread || ce_citus_org_here(&orgs[i]);
	for (int pass = 0; pass < 2; pass++)
	{
		for (int k = 0; k < n; k++)
		{
			int			i = (start + k) % n;

			if (here[i] != (pass == 0))
				continue;
			if (claim_line_org(&orgs[i], line, org, id))
			{
				citus_served = true;
				citus_last_org = orgs[i];
				pfree(orgs);
				pfree(here);
				return true;
			}
		}
	}
	pfree(orgs);
	pfree(here);
	return false;
}

/*
 * The dispatch query's claim of a ready line (organizations in turn) by
 * direct row access, with the line's header (ex->header_read); -1 where
 * it does not apply (then the statements run).
 */
static int
claim_ready_direct(LineRow *line, ExecRow *ex)
{
	if (!ce_direct_available())
		return -1;
	return ce_direct_claim_ready(dispatch_served ? &dispatch_last_org : NULL, false, ex, line);
}

/*
 * Fairness (SPEC section 9, flow control): before an executor claims the
 * next step of the execution it just moved on (a follow-on, transition.c),
 * of organization *org, it serves another organization's ready work if
 * there is any, in turn: the first organization after *org, else the first
 * one before it.  1: claimed (ex, line, as the dispatch claim); 0: there is
 * none, follow on; -1: not by direct access (on Citus, whose per-node
 * dispatch has its own turns), follow on.
 */
static int
claim_other_org(const pg_uuid_t *org, LineRow *line, ExecRow *ex)
{
	int			r;

	if (ce_citus_mode_known() || !ce_direct_available())
		return -1;
	r = ce_direct_claim_ready(org, true, ex, line);
	if (r == 1)
	{
		dispatch_served = true;
		dispatch_last_org = ex->org;
	}
	return r;
}

/*
 * Claim one due line: a ready one first, else a waiting one whose timer
 * came due; of any execution, or only of execution only (in ex->org).
 * ex->org and ex->id are set, and the header read when ex->header_read.
 */
bool
ce_claim_due(const pg_uuid_t *only, LineRow *line, ExecRow *ex)
{
	pg_uuid_t  *org = &ex->org;
	pg_uuid_t  *id = &ex->id;

	if (only == NULL && ce_citus_mode())
	{
		/*
		 * A worker's claim holds its lock only inside a transaction block
		 * (ce_engine_xact_begin): not in the first transaction after Citus
		 * mode was found.
		 */
		if (IsBackgroundWorker && !IsTransactionBlock())
			return false;
		return claim_due_per_org(line, org, id);
	}
	if (only == NULL)
	{
		int			direct;
		bool		found;

		/* due means not_before <= now(): what the claims below look at */
		ce_claimed_due_upto = GetCurrentTransactionStartTimestamp();
		direct = claim_ready_direct(line, ex);
		found = direct == 1;

		if (direct < 0 && dispatch_served)
		{
			Datum		arg = UUIDPGetDatum(&dispatch_last_org);
			bool		isnull;

			ce_run_query(&q_claim_ready_after, &arg, NULL, false, 1);
			if (SPI_processed == 1)
			{
				memcpy(org, DatumGetUUIDP(ce_getcol(0, 1, &isnull)), sizeof(pg_uuid_t));
				memcpy(id, DatumGetUUIDP(ce_getcol(0, 2, &isnull)), sizeof(pg_uuid_t));
				ce_line_from_row(0, line);
				found = true;
			}
		}
		if (found || (direct < 0 && claim_line(&q_claim_ready, NULL, line, org, id)))
		{
			dispatch_served = true;
			dispatch_last_org = *org;
			return true;
		}
		return claim_line(&q_claim_waiting, NULL, line, org, id);
	}
	return claim_line(&q_claim_ready_exec, only, line, org, id) ||
		claim_line(&q_claim_waiting_exec, only, line, org, id);
}

/*
 * How many next steps of the executions it moved on an executor claims in
 * a row before it asks the dispatch query again: the dispatch query takes
 * lines by priority, so this bounds how long the organization's work of
 * higher priority waits for it.  Other organizations' ready work does not
 * wait for a follow-on: it is served first (claim_other_org).
 */
#define CE_FOLLOW_ON_MAX 8
static int	follow_on = 0;

/*
 * Claim the line a transition runs: the one whose tokens this backend's
 * last transition took (flow.c); else, unless another organization has
 * ready work (claim_other_org), the first line its last transition made
 * ready, if due, free and (Citus) ce_citus_org_here, with its header (a
 * key lookup, not the dispatch query: a follow-on); else ce_claim_due.
 */
bool
ce_claim_transition_line(const pg_uuid_t *only_execution, LineRow *line, ExecRow *ex)
{
	pg_uuid_t	org;
	pg_uuid_t	id;
	int			line_number;

	if (ce_flow_take_admitted(&org, &id, &line_number) &&
		(only_execution == NULL || memcmp(&id, only_execution, sizeof(pg_uuid_t)) == 0) &&
		ce_claim_line_number(&org, &id, line_number, line))
	{
		ex->org = org;
		ex->id = id;
		return true;
	}
	if (ce_store_take_promoted(&org, &id, &line_number) &&
		(only_execution ? memcmp(&id, only_execution, sizeof(pg_uuid_t)) == 0 :
		 follow_on < CE_FOLLOW_ON_MAX && ce_citus_org_here(&org)))
	{
		/* another organization's ready work first */
		if (only_execution == NULL && claim_other_org(&org, line, ex) == 1)
		{
			follow_on = 0;
			return true;
		}
		ex->org = org;
		ex->id = id;
		if (ce_claim_next(ex, line_number, only_execution != NULL, line))
		{
			follow_on++;
			return true;
		}
		ex->header_read = false;
	}
	follow_on = 0;
	return ce_claim_due(only_execution, line, ex);
}

/* Claim line line_number of an execution if it is ready or waiting. */
bool
ce_claim_line_number(const pg_uuid_t *org, const pg_uuid_t *id, int line_number, LineRow *line)
{
	Datum		args[3];

	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = UUIDPGetDatum((pg_uuid_t *) id);
	args[2] = Int32GetDatum(line_number);
	ce_run_query(&q_claim_line, args, NULL, false, 1);
	if (SPI_processed != 1)
		return false;
	ce_line_from_row(0, line);
	return true;
}

/*
 * Claim line line_number of execution ex->id (org and id set) if it is due
 * for the executors (or, with own_session, for the session driving it),
 * and read its header in the same statement (ex->header_read).
 */
bool
ce_claim_next(ExecRow *ex, int line_number, bool own_session, LineRow *line)
{
	Datum		args[4];
	bool		isnull;

	if (ce_direct_available())
		return ce_direct_claim_next(ex, line_number, own_session, line);
	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	args[2] = Int32GetDatum(line_number);
	args[3] = BoolGetDatum(own_session);
	ce_run_query(&q_claim_next, args, NULL, false, 1);
	if (SPI_processed != 1 || !DatumGetBool(ce_getcol(0, 13, &isnull)))
		return false;
	ce_line_from_row(0, line);
	ce_header_from_row(0, 13, ex);
	return true;
}

/*
 * The latest step or fallback line of step step_id; with lock, locked, and
 * none when another transaction holds it (its step is running).
 */
bool
ce_step_line(ExecRow *ex, int step_id, bool lock, LineRow *line)
{
	Datum		args[3];

	args[0] = UUIDPGetDatum(&ex->org);
	args[1] = UUIDPGetDatum(&ex->id);
	args[2] = Int32GetDatum(step_id);
	ce_run_query(lock ? &q_step_line_lock : &q_step_line, args, NULL, !lock, 1);
	if (SPI_processed == 0)
		return false;
	ce_line_from_row(0, line);
	return true;
}
