/*-------------------------------------------------------------------------
 *
 * direct.c
 *	  The rows of a step transition by direct row access: the claim of the
 *	  next line with its header, the header's lock, the survey of the lines
 *	  and the step's write (the completed line, the new context, the next
 *	  line made ready).  Each finds its rows by primary key and reads,
 *	  locks or updates them as the SQL statement it stands for would, the
 *	  way PostgreSQL's logical replication applies a row (table_tuple_lock,
 *	  ExecSimpleRelationUpdate), without a statement's executor start and
 *	  finish, which cost more than the row work itself.
 *
 *	  Same rows, values and conditions as store.c's and claim.c's
 *	  statements (q_claim_next, q_lock_header, q_lines, q_write_step),
 *	  and the same behaviour as a statement at READ COMMITTED: a fresh
 *	  snapshot that sees the transaction's own changes; a row that
 *	  qualifies in it is locked, following a concurrent update to the
 *	  row's latest version, which must qualify again; SKIP LOCKED where
 *	  the statement has it.  An update checks CHECK and NOT NULL
 *	  constraints, inserts index entries (none for a HOT update) and fires
 *	  row triggers (not statement triggers: there is no statement).  Row-level security does not apply: like every
 *	  bookkeeping query, these run as the extension owner, who owns the
 *	  tables.
 *
 *	  Not on Citus (ce_direct_available), whose tables are shells on the
 *	  coordinator: there the statements run.
 *
 *	  Runs in the caller's transaction, SPI connected, as the extension
 *	  owner (ce_bookkeeping_begin).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "optimizer/optimizer.h"
#include "utils/syscache.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "engine.h"
#include "engine_int.h"
#include "compose.h"

/* The columns read or set, by name; C_ID is "transaction_id" in the lines, "id" in the header. */
typedef enum
{
	C_ORG,
	C_ID,
	C_LINE,
	C_STATUS,
	C_ATTEMPT,
	C_NOT_BEFORE,
	C_INPUT,
	C_OUTPUT,
	C_ERROR,
	C_STARTED,
	C_FIRST_STARTED,
	C_FINISHED,
	C_DURATION,
	C_LINE_TYPE,
	C_STEP_ID,
	C_STEP_NAME,
	C_PARENT_LINE,
	C_ITERATION,
	C_WAITS_FOR,
	C_CONTEXT,
	C_CHAIN_ID,
	C_CHAIN_VERSION,
	C_OWNER,
	C_DEADLINE,
	C_PRIORITY,
	C_METADATA,
	C_PARENT_ID,
	C_IN_SESSION,
	C_COUNT
} Col;

static const char *const col_names[C_COUNT] = {
	"organization_id", NULL, "line_number", "status", "attempt", "not_before", "input",
	"output", "error", "started_at", "first_started_at", "finished_at", "duration_ms",
	"line_type", "step_id", "step_name", "parent_line", "iteration", "waits_for", "context",
	"chain_id", "chain_version", "owner", "deadline", "priority", "metadata", "parent_id",
	"in_session"
};

/* Each column's type; 0: not used. */
static const Oid col_types[C_COUNT] = {
	UUIDOID, UUIDOID, INT4OID, TEXTOID, INT4OID, TIMESTAMPTZOID, JSONBOID,
	JSONBOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID,
	TEXTOID, INT4OID, TEXTOID, INT4OID, INT4OID, TEXTOID, JSONBOID,
	TEXTOID, INT4OID, REGROLEOID, TIMESTAMPTZOID, INT4OID, JSONBOID, UUIDOID,
	BOOLOID
};

enum
{
	T_LINES,
	T_HEADER
};

/* The columns each table must have for direct access (the 0.2.0 schema). */
#define LINE_COLUMNS(c) ((c) <= C_WAITS_FOR)
#define HEADER_COLUMNS(c) ((c) == C_ORG || (c) == C_ID || (c) == C_STATUS || (c) == C_PARENT_LINE || \
						   (c) == C_OUTPUT || (c) == C_ERROR || (c) == C_STARTED || (c) == C_FINISHED || \
						   (c) >= C_CONTEXT)

static const char *const table_names[2] = {"universal_transaction_lines", "universal_transactions"};

/*
 * Per table, kept across transactions: its oid, its primary key, the
 * column numbers (0-based; -1: none).  Forgotten at any invalidation of
 * the table (or of every relation), so that ALTER TABLE or the extension
 * made again is seen.
 */
static struct
{
	bool		valid;
	bool		usable;			/* has every column it must have, typed so */
	Oid			relid;
	Oid			pkey;
	Oid			steps;			/* the lines' index without iterations */
	int			col[C_COUNT];
}			tables[2];
static bool inval_registered = false;

/*
 * Per table, kept across transactions: the expression states of its CHECK
 * constraints, in the order of the relation's constraint list, that a
 * write gives its ResultRelInfo (ri_ConstraintExprs) instead of parsing
 * each constraint's text and preparing it again, as PostgreSQL does once
 * per statement.  Made again after any invalidation of the table (ALTER
 * TABLE ... ADD CONSTRAINT) or any change of a function (a constraint may
 * call one); freed only when made again, never inside the invalidation
 * callback, which may arrive while a constraint is being evaluated.
 */
static struct
{
	bool		valid;
	int			count;
	MemoryContext cxt;
	ExprState **exprs;
}			checks[2];

static void
tables_inval(Datum arg, Oid relid)
{
	for (int t = 0; t < 2; t++)
		if (!OidIsValid(relid) || relid == tables[t].relid)
		{
			tables[t].valid = false;
			checks[t].valid = false;
		}
}

static void
functions_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	checks[0].valid = false;
	checks[1].valid = false;
}

/* The CHECK constraints of table t's open relation rel, prepared (see checks). */
static ExprState **
table_checks(int t, Relation rel)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	int			n = constr ? constr->num_check : 0;
	MemoryContext old;

	if (n == 0)
		return NULL;
	if (checks[t].valid && checks[t].count == n)
		return checks[t].exprs;
	if (checks[t].cxt != NULL)
		MemoryContextDelete(checks[t].cxt);
	checks[t].cxt = AllocSetContextCreate(TopMemoryContext, "chainexec constraints",
										  ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(checks[t].cxt);
	checks[t].exprs = palloc(sizeof(ExprState *) * n);
	for (int i = 0; i < n; i++)
		checks[t].exprs[i] = ExecInitExpr(expression_planner(stringToNode(constr->check[i].ccbin)), NULL);
	MemoryContextSwitchTo(old);
	checks[t].count = n;
	checks[t].valid = true;
	return checks[t].exprs;
}

/* One table of a direct access: the relation, open, with its columns. */
typedef struct DirectRel
{
	Relation	rel;
	Relation	pkey;
	const int  *col;
	ResultRelInfo *rri;			/* when updated */
	TupleTableSlot *found;		/* the row read or locked */
	TupleTableSlot *next;		/* its new version */
} DirectRel;

/* A direct access: its snapshot, and for a write its executor state. */
typedef struct Direct
{
	const Col  *header_set;		/* the header's columns a write sets, C_COUNT-ended */
	Snapshot	snap;
	EState	   *estate;
	EPQState	epq;
	DirectRel	r[2];
} Direct;

static void table_load(int t);

/*
 * Whether direct access applies (call inside SPI): plain PostgreSQL; a
 * transaction at READ COMMITTED (the engine's own are), where a locked
 * row is followed to its latest version, and read-write, outside
 * parallel mode (the statements raise the errors of those cases); and
 * tables of the 0.2.0 schema (a server whose database is not updated yet
 * runs the statements, which raise the missing column's error).
 */
bool
ce_direct_available(void)
{
	if (IsolationUsesXactSnapshot() || XactReadOnly || IsInParallelMode() || ce_citus_mode())
		return false;
	for (int t = 0; t < 2; t++)
	{
		if (!tables[t].valid)
			table_load(t);
		if (!tables[t].usable)
			return false;
	}
	return true;
}

static void
table_load(int t)
{
	Oid			relid;
	Relation	rel;
	TupleDesc	desc;
	Oid			nsp;

	if (!inval_registered)
	{
		CacheRegisterRelcacheCallback(tables_inval, (Datum) 0);
		CacheRegisterSyscacheCallback(PROCOID, functions_inval, (Datum) 0);
		inval_registered = true;
	}
	nsp = get_namespace_oid("chainexec", false);
	relid = get_relname_relid(table_names[t], nsp);
	if (!OidIsValid(relid))
		elog(ERROR, "chainexec table \"%s\" is missing", table_names[t]);
	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	tables[t].usable = true;
	for (int c = 0; c < C_COUNT; c++)
	{
		bool		needed = t == T_LINES ? LINE_COLUMNS(c) : HEADER_COLUMNS(c);

		tables[t].col[c] = -1;
		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (!att->attisdropped && att->atttypid == col_types[c] &&
				strcmp(NameStr(att->attname),
					   c == C_ID ? (t == T_LINES ? "transaction_id" : "id") : col_names[c]) == 0)
				tables[t].col[c] = a;
		}
		if (needed && tables[t].col[c] < 0)
			tables[t].usable = false;
	}
	tables[t].pkey = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(tables[t].pkey))
		tables[t].usable = false;
	tables[t].steps = t == T_LINES ? get_relname_relid("universal_transaction_lines_steps", nsp) : InvalidOid;
	table_close(rel, NoLock);
	tables[t].relid = relid;
	tables[t].valid = true;
}

/*
 * write: an update (with an executor state); read_around: the lines
 * survey, which reads around a held-back completion (store.c, pending),
 * that any other access writes first.
 */
static RangeTblEntry *rte_for(Direct *d, int t);

static const Col context_set[] = {C_CONTEXT, C_COUNT};
static const Col context_status_set[] = {C_CONTEXT, C_STATUS, C_STARTED, C_COUNT};

static void
direct_begin_set(Direct *d, bool write, bool read_around, const Col *header_set)
{
	memset(d, 0, sizeof(*d));
	d->header_set = header_set;
	if (!write && !read_around)
		ce_store_before_query(NULL);
	/* like a statement at READ COMMITTED: a new snapshot that sees our own changes */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	d->snap = GetActiveSnapshot();
	if (write)
	{
		MemoryContext old;

		d->estate = CreateExecutorState();
		d->estate->es_output_cid = GetCurrentCommandId(true);
		old = MemoryContextSwitchTo(d->estate->es_query_cxt);
		ExecInitRangeTable(d->estate, list_make2(rte_for(d, T_LINES), rte_for(d, T_HEADER)));
		MemoryContextSwitchTo(old);
		EvalPlanQualInit(&d->epq, d->estate, NULL, NIL, -1);
	}
}

static void
direct_begin(Direct *d, bool write, bool read_around)
{
	direct_begin_set(d, write, read_around, context_set);
}

/*
 * Table t as the write's range table entry: with the columns the write
 * sets, for UPDATE OF triggers and the index entries' "unchanged" hint.
 */
static RangeTblEntry *
rte_for(Direct *d, int t)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	static const Col lines_set[] = {C_STATUS, C_ATTEMPT, C_NOT_BEFORE, C_INPUT, C_OUTPUT, C_ERROR,
	C_STARTED, C_FIRST_STARTED, C_FINISHED, C_DURATION};

	rte->rtekind = RTE_RELATION;
	rte->relid = tables[t].relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	if (t == T_LINES)
	{
		for (int i = 0; i < lengthof(lines_set); i++)
			rte->updatedCols = bms_add_member(rte->updatedCols, tables[t].col[lines_set[i]] + 1 -
											  FirstLowInvalidHeapAttributeNumber);
	}
	else
	{
		for (const Col *c = d->header_set; *c != C_COUNT; c++)
			rte->updatedCols = bms_add_member(rte->updatedCols, tables[t].col[*c] + 1 -
											  FirstLowInvalidHeapAttributeNumber);
	}
	return rte;
}

/* Open table t (T_LINES, T_HEADER); for an update with its indexes. */
static DirectRel *
direct_open(Direct *d, int t, LOCKMODE mode)
{
	DirectRel  *r = &d->r[t];

	if (r->rel != NULL)
		return r;
	if (!tables[t].valid)
		table_load(t);
	r->rel = table_open(tables[t].relid, mode);
	if (!tables[t].valid)
	{
		/* invalidated while we waited for the lock */
		table_close(r->rel, mode);
		table_load(t);
		r->rel = table_open(tables[t].relid, mode);
	}
	/* checked by ce_direct_available, unless changed since */
	if (!tables[t].usable || (d->estate != NULL && tables[t].relid != exec_rt_fetch(t + 1, d->estate)->relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chainexec table \"%s\" changed during a transition", table_names[t]),
				 errhint("Run the transition again.")));
	r->col = tables[t].col;
	r->pkey = index_open(tables[t].pkey, AccessShareLock);
	r->found = table_slot_create(r->rel, d->estate ? &d->estate->es_tupleTable : NULL);
	if (d->estate != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(d->estate->es_query_cxt);

		r->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(r->rri, r->rel, t + 1, NULL, 0);
		r->rri->ri_ConstraintExprs = table_checks(t, r->rel);
		d->estate->es_opened_result_relations = lappend(d->estate->es_opened_result_relations, r->rri);
		ExecOpenIndices(r->rri, false);
		r->next = table_slot_create(r->rel, &d->estate->es_tupleTable);
		MemoryContextSwitchTo(old);
	}
	return r;
}

static void
direct_end(Direct *d)
{
	if (d->estate != NULL)
	{
		AfterTriggerEndQuery(d->estate);
		EvalPlanQualEnd(&d->epq);
		ExecCloseResultRelations(d->estate);
		ExecCloseRangeTableRelations(d->estate);
	}
	for (int t = 0; t < 2; t++)
	{
		DirectRel  *r = &d->r[t];

		if (r->rel == NULL)
			continue;
		if (d->estate == NULL)
			ExecDropSingleTupleTableSlot(r->found);
		index_close(r->pkey, NoLock);
		table_close(r->rel, NoLock);
	}
	if (d->estate != NULL)
	{
		ExecResetTupleTable(d->estate->es_tupleTable, false);
		FreeExecutorState(d->estate);
	}
	PopActiveSnapshot();
	/* the next statements see what was written */
	if (d->estate != NULL)
		CommandCounterIncrement();
}

static Datum
col_value(DirectRel *r, Col c, bool *isnull)
{
	return slot_getattr(r->found, r->col[c] + 1, isnull);
}

static bool
col_null(DirectRel *r, Col c)
{
	bool		isnull;

	(void) col_value(r, c, &isnull);
	return isnull;
}

/* A boolean column; null reads as false, as in a WHERE clause. */
static bool
col_bool(DirectRel *r, Col c)
{
	bool		isnull;
	Datum		d = col_value(r, c, &isnull);

	return !isnull && DatumGetBool(d);
}

static char *
col_text(DirectRel *r, Col c)
{
	bool		isnull;
	Datum		d = col_value(r, c, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static int32
col_int(DirectRel *r, Col c, int32 if_null)
{
	bool		isnull;
	Datum		d = col_value(r, c, &isnull);

	return isnull ? if_null : DatumGetInt32(d);
}

static Jsonb *
col_jsonb(DirectRel *r, Col c)
{
	bool		isnull;
	Datum		d = col_value(r, c, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

/*
 * The row of key (org, id[, line_number]) in snapshot d->snap, into
 * r->found; false: none.
 */
static bool
find_row(Direct *d, DirectRel *r, const pg_uuid_t *org, const pg_uuid_t *id, int line_number)
{
	ScanKeyData key[3];
	int			nkeys = r->col[C_LINE] >= 0 ? 3 : 2;
	IndexScanDesc scan;
	bool		found;

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum((pg_uuid_t *) org));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum((pg_uuid_t *) id));
	if (nkeys == 3)
		ScanKeyInit(&key[2], 3, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(line_number));
	scan = index_beginscan(r->rel, r->pkey, d->snap, nkeys, 0);
	index_rescan(scan, key, nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, r->found);
	index_endscan(scan);
	return found;
}

/*
 * Lock the row in r->found as SELECT ... FOR <mode> would at READ
 * COMMITTED: a row updated since the snapshot is followed to its latest
 * version, which r->found then holds, and which the caller checks again.
 * False: skipped (wait LockWaitSkip and locked by another transaction), or
 * deleted meanwhile.
 */
static bool
lock_found(Direct *d, DirectRel *r, LockTupleMode mode, LockWaitPolicy wait)
{
	TM_FailureData tmfd;
	TM_Result	res;

	res = table_tuple_lock(r->rel, &r->found->tts_tid, d->snap, r->found,
						   GetCurrentCommandId(false), mode, wait,
						   TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
	switch (res)
	{
		case TM_Ok:
			return true;
		case TM_WouldBlock:
		case TM_Deleted:
		case TM_SelfModified:
			return false;
		default:
			elog(ERROR, "unexpected result %d locking a row of \"%s\"", (int) res,
				 RelationGetRelationName(r->rel));
	}
	return false;
}

/* The new version of r->found: a copy of its columns, set by set_col, written by write_row. */
static void
new_version(DirectRel *r)
{
	slot_getallattrs(r->found);
	ExecClearTuple(r->next);
	memcpy(r->next->tts_values, r->found->tts_values, sizeof(Datum) * r->found->tts_nvalid);
	memcpy(r->next->tts_isnull, r->found->tts_isnull, sizeof(bool) * r->found->tts_nvalid);
}

static void
set_col(DirectRel *r, Col c, Datum value, bool isnull)
{
	r->next->tts_values[r->col[c]] = isnull ? (Datum) 0 : value;
	r->next->tts_isnull[r->col[c]] = isnull;
}

static void
write_row(Direct *d, DirectRel *r)
{
	ExecStoreVirtualTuple(r->next);
	ExecSimpleRelationUpdate(r->rri, d->estate, &d->epq, r->found, r->next);
}

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
	Jsonb	   *metadata = col_jsonb(r, C_METADATA);
	char	   *save = field_text(metadata, "saveIntermediateResults");

	ex->status = ce_exec_status_from_name(col_text(r, C_STATUS));
	ex->chain_id = col_text(r, C_CHAIN_ID);
	ex->version = col_int(r, C_CHAIN_VERSION, 0);
	ex->context = col_jsonb(r, C_CONTEXT);
	ex->owner = DatumGetObjectId(col_value(r, C_OWNER, &isnull));
	v = col_value(r, C_DEADLINE, &isnull);
	ex->has_deadline = !isnull;
	ex->deadline = isnull ? 0 : DatumGetTimestampTz(v);
	ex->priority = col_int(r, C_PRIORITY, 0);
	ex->save_intermediate = save == NULL ? true : DatumGetBool(DirectFunctionCall1(boolin, CStringGetDatum(save)));
	ex->max_retries = field_int(field_jsonb(metadata, "options"), "maxRetries", -1);
	ex->progress_floor = field_int(metadata, "progressFloor", 0);
	v = col_value(r, C_PARENT_ID, &isnull);
	ex->has_parent = !isnull;
	if (!isnull)
		memcpy(&ex->parent_id, DatumGetUUIDP(v), sizeof(pg_uuid_t));
	ex->parent_line = col_int(r, C_PARENT_LINE, 0);
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
	Jsonb	   *error = col_jsonb(r, C_ERROR);
	char	   *failure = field_text(error, "failure_type");

	line->line_number = col_int(r, C_LINE, 0);
	line->line_type = col_text(r, C_LINE_TYPE);
	line->step_id = col_int(r, C_STEP_ID, 0);
	line->step_name = col_text(r, C_STEP_NAME);
	line->status = ce_line_status_from_name(col_text(r, C_STATUS));
	line->attempt = col_int(r, C_ATTEMPT, 0);
	line->parent_line = col_int(r, C_PARENT_LINE, 0);
	v = col_value(r, C_STARTED, &isnull);
	line->has_started = !isnull;
	line->started_at = isnull ? 0 : DatumGetTimestampTz(v);
	line->crashes = failure != NULL && strcmp(failure, "worker_crashed") == 0 ?
		field_int(error, "crashes", 0) : 0;
	line->iteration = col_int(r, C_ITERATION, -1);
}

static bool
found_status_is(DirectRel *r, CeLineStatus status)
{
	return ce_line_status_from_name(col_text(r, C_STATUS)) == status;
}

static bool
found_due(DirectRel *r)
{
	bool		isnull;
	Datum		v = col_value(r, C_NOT_BEFORE, &isnull);

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

	direct_begin(&d, false, false);
	h = direct_open(&d, T_HEADER, AccessShareLock);
	l = direct_open(&d, T_LINES, RowShareLock);
	if (find_row(&d, h, &ex->org, &ex->id, 0) &&
		(own_session || !col_bool(h, C_IN_SESSION)) &&
		find_row(&d, l, &ex->org, &ex->id, line_number) && claimable(l) &&
		lock_found(&d, l, LockTupleExclusive, LockWaitSkip) && claimable(l))
	{
		ok = col_null(l, C_WAITS_FOR);
		if (ok)
		{
			line_from_found(l, line);
			header_from_found(h, ex);
		}
	}
	else
		ok = false;
	direct_end(&d);
	return ok;
}

/* q_header (store.c): ex's header, no lock; false: none. */
bool
ce_direct_read_header(ExecRow *ex)
{
	Direct		d;
	DirectRel  *h;
	bool		ok;

	direct_begin(&d, false, false);
	h = direct_open(&d, T_HEADER, AccessShareLock);
	ok = find_row(&d, h, &ex->org, &ex->id, 0);
	if (ok)
		header_from_found(h, ex);
	direct_end(&d);
	return ok;
}

/* q_lock_header (store.c): lock ex's header FOR NO KEY UPDATE, refresh status and context. */
bool
ce_direct_lock_header(ExecRow *ex)
{
	Direct		d;
	DirectRel  *h;
	bool		ok;

	direct_begin(&d, false, false);
	h = direct_open(&d, T_HEADER, RowShareLock);
	ok = find_row(&d, h, &ex->org, &ex->id, 0) &&
		lock_found(&d, h, LockTupleNoKeyExclusive, LockWaitBlock);
	if (ok)
	{
		ex->status = ce_exec_status_from_name(col_text(h, C_STATUS));
		ex->context = col_jsonb(h, C_CONTEXT);
	}
	direct_end(&d);
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

	direct_begin(&d, false, true);
	l = direct_open(&d, T_LINES, AccessShareLock);
	/* the index that leaves out a forEach's iteration lines, if there */
	if (OidIsValid(tables[T_LINES].steps))
	{
		steps = index_open(tables[T_LINES].steps, AccessShareLock);
		if (!steps->rd_index->indisvalid || steps->rd_index->indrelid != tables[T_LINES].relid)
		{
			index_close(steps, AccessShareLock);
			steps = NULL;
		}
	}
	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(&ex->org));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(&ex->id));
	scan = index_beginscan(l->rel, steps ? steps : l->pkey, d.snap, 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, l->found))
	{
		char	   *type = col_text(l, C_LINE_TYPE);
		LineInfo   *li;

		if (strcmp(type, "iteration") == 0)
			continue;
		li = palloc0(sizeof(LineInfo));
		li->line_number = col_int(l, C_LINE, 0);
		li->type = type[0];
		li->step_id = col_int(l, C_STEP_ID, 0);
		li->status = ce_line_status_from_name(col_text(l, C_STATUS));
		li->parent_line = col_int(l, C_PARENT_LINE, 0);
		if (li->status == CE_LINE_WAITING && strcmp(type, "step") == 0)
			ce_container_counters(field_jsonb(col_jsonb(l, C_OUTPUT), "iterations"), li);
		res = lappend(res, li);
	}
	index_endscan(scan);
	if (steps != NULL)
		index_close(steps, NoLock);
	direct_end(&d);
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

	direct_begin_set(&d, true, false, exec_status >= 0 ? context_status_set : context_set);
	AfterTriggerBeginQuery();
	l = direct_open(&d, T_LINES, RowExclusiveLock);
	if (find_row(&d, l, org, id, DatumGetInt32(v[2])) &&
		lock_found(&d, l, LockTupleNoKeyExclusive, LockWaitBlock))
	{
		/* the statement's clock_timestamp(): read after any wait for the row */
		clock = GetCurrentTimestamp();
		new_version(l);
		set_col(l, C_STATUS, v[3], false);
		set_col(l, C_ATTEMPT, v[4], false);
		if (n[5] != 'n')
			set_col(l, C_NOT_BEFORE, v[5], false);
		if (n[6] != 'n')
			set_col(l, C_INPUT, v[6], false);
		set_col(l, C_OUTPUT, v[7], n[7] == 'n');
		set_col(l, C_ERROR, v[8], n[8] == 'n');
		if (started)
		{
			set_col(l, C_STARTED, TimestampTzGetDatum(now), false);
			if (col_null(l, C_FIRST_STARTED))
				set_col(l, C_FIRST_STARTED, TimestampTzGetDatum(now), false);
		}
		if (finished)
		{
			bool		isnull;
			Datum		was = col_value(l, C_STARTED, &isnull);
			TimestampTz from = started ? now : isnull ? clock : DatumGetTimestampTz(was);

			set_col(l, C_FINISHED, TimestampTzGetDatum(clock), false);
			set_col(l, C_DURATION, Float8GetDatum((double) (clock - from) / 1000.0), false);
		}
		else
		{
			set_col(l, C_FINISHED, (Datum) 0, true);
			set_col(l, C_DURATION, (Datum) 0, true);
		}
		write_row(&d, l);
	}

	if (n[11] != 'n' || exec_status >= 0)
	{
		DirectRel  *h = direct_open(&d, T_HEADER, RowExclusiveLock);

		if (find_row(&d, h, org, id, 0) &&
			lock_found(&d, h, LockTupleNoKeyExclusive, LockWaitBlock))
		{
			new_version(h);
			if (n[11] != 'n')
				set_col(h, C_CONTEXT, v[11], false);
			if (exec_status >= 0)
			{
				set_col(h, C_STATUS, CStringGetTextDatum(ce_exec_status_name((CeExecStatus) exec_status)),
						false);
				if (col_null(h, C_STARTED))
					set_col(h, C_STARTED, TimestampTzGetDatum(now), false);
			}
			write_row(&d, h);
		}
	}

	if (promote > 0 && find_row(&d, l, org, id, promote))
	{
		char	   *type = col_text(l, C_LINE_TYPE);

		if (found_status_is(l, CE_LINE_PENDING) && strcmp(type, "iteration") != 0 &&
			lock_found(&d, l, LockTupleNoKeyExclusive, LockWaitBlock) &&
			found_status_is(l, CE_LINE_PENDING))
		{
			bool		isnull;
			TimestampTz due = DatumGetTimestampTz(col_value(l, C_NOT_BEFORE, &isnull));

			new_version(l);
			set_col(l, C_STATUS, CStringGetTextDatum(ce_line_status_name(CE_LINE_READY)), false);
			set_col(l, C_NOT_BEFORE, TimestampTzGetDatum(Max(due, now)), false);
			write_row(&d, l);
		}
	}
	direct_end(&d);
}

/*
 * store.c's q_set_status (start: also started_at = coalesce(started_at,
 * now())) and q_finish_exec (finish: status, output, error = coalesce(error,
 * the old one), finished_at = clock_timestamp()): the header of ex; with
 * context, the new context too (the held-back completion's, store.c).
 */
void
ce_direct_write_header(ExecRow *ex, CeExecStatus status, bool finish, Jsonb *output, Jsonb *error,
					   Jsonb *context)
{
	static const Col start_set[] = {C_STATUS, C_STARTED, C_COUNT};
	static const Col finish_set[] = {C_STATUS, C_OUTPUT, C_ERROR, C_FINISHED, C_COUNT};
	static const Col finish_context_set[] = {C_STATUS, C_OUTPUT, C_ERROR, C_FINISHED, C_CONTEXT, C_COUNT};
	Direct		d;
	DirectRel  *h;

	/* a held-back completion first, as before any statement */
	ce_store_before_query(NULL);
	direct_begin_set(&d, true, false, !finish ? start_set : context ? finish_context_set : finish_set);
	AfterTriggerBeginQuery();
	h = direct_open(&d, T_HEADER, RowExclusiveLock);
	if (find_row(&d, h, &ex->org, &ex->id, 0) &&
		lock_found(&d, h, LockTupleNoKeyExclusive, LockWaitBlock))
	{
		new_version(h);
		set_col(h, C_STATUS, CStringGetTextDatum(ce_exec_status_name(status)), false);
		if (context != NULL)
			set_col(h, C_CONTEXT, JsonbPGetDatum(context), false);
		if (finish)
		{
			set_col(h, C_OUTPUT, output ? JsonbPGetDatum(output) : (Datum) 0, output == NULL);
			if (error != NULL)
				set_col(h, C_ERROR, JsonbPGetDatum(error), false);
			set_col(h, C_FINISHED, TimestampTzGetDatum(GetCurrentTimestamp()), false);
		}
		else if (col_null(h, C_STARTED))
			set_col(h, C_STARTED, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
		write_row(&d, h);
	}
	direct_end(&d);
}
