/*-------------------------------------------------------------------------
 *
 * direct.c
 *	  Direct row access to an execution's header and lines: find a row by
 *	  its primary key, read it, lock it, update it, as the SQL statement it
 *	  stands for would, the way PostgreSQL's logical replication applies a
 *	  row (table_tuple_lock, ExecSimpleRelationUpdate), without a
 *	  statement's executor start and finish, which cost more than the row
 *	  work itself.  direct_rows.c uses it for a transition's own rows.
 *
 *	  The behaviour of a statement at READ COMMITTED: a fresh snapshot that
 *	  sees the transaction's own changes; a row that qualifies in it is
 *	  locked, following a concurrent update to the row's latest version,
 *	  which the caller checks again; SKIP LOCKED where the statement has
 *	  it.  An update checks CHECK and NOT NULL constraints (prepared once
 *	  per backend), inserts index entries (none for a HOT update) and fires
 *	  row triggers (not statement triggers: there is no statement).
 *	  Row-level security does not apply: like every bookkeeping query,
 *	  these run as the extension owner, who owns the tables.
 *
 *	  Only where ce_direct_available says so: not on Citus, whose tables
 *	  are shells on the coordinator, nor outside READ COMMITTED, in a
 *	  read-only transaction or in parallel mode, nor on tables without the
 *	  0.2.0 columns; there the statements run.
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
#include "catalog/pg_index.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "optimizer/optimizer.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "rewrite/rewriteHandler.h"
#include "access/htup_details.h"
#include "catalog/pg_trigger.h"
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
#include "direct.h"

static const char *const col_names[C_COUNT] = {
	"organization_id", NULL, "line_number", "status", "attempt", "not_before", "input",
	"output", "error", "started_at", "first_started_at", "finished_at", "duration_ms",
	"line_type", "step_id", "step_name", "parent_line", "iteration", "waits_for", "context",
	"chain_id", "chain_version", "owner", "deadline", "priority", "metadata", "parent_id",
	"in_session", "smart_code"
};

/* Each column's type; 0: not used. */
static const Oid col_types[C_COUNT] = {
	UUIDOID, UUIDOID, INT4OID, TEXTOID, INT4OID, TIMESTAMPTZOID, JSONBOID,
	JSONBOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID,
	TEXTOID, INT4OID, TEXTOID, INT4OID, INT4OID, TEXTOID, JSONBOID,
	TEXTOID, INT4OID, REGROLEOID, TIMESTAMPTZOID, INT4OID, JSONBOID, UUIDOID,
	BOOLOID, TEXTOID
};

/* The columns each table must have for direct access (the 0.2.0 schema). */
#define LINE_COLUMNS(c) ((c) <= C_WAITS_FOR || (c) == C_SMART_CODE)
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
	bool		insertable;		/* and no INSERT trigger that needs a statement */
	Oid			relid;
	Oid			pkey;
	Oid			steps;			/* the lines' index without iterations */
	Oid			ready;			/* the lines' dispatch index */
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

/*
 * Per table, kept and made again like checks: the defaults of the columns
 * an insert does not set (set), evaluated for each row inserted, as an
 * INSERT evaluates them; NULL where a column has none.
 */
static struct
{
	bool		valid;
	const Col  *set;
	MemoryContext cxt;
	ExprState **exprs;			/* per attribute */
}			defaults[2];

/*
 * Per partial index of either table, kept like checks: the prepared
 * predicate an index entry's insertion tests (ii_PredicateState), else
 * planned and prepared for each row access.  Keyed by the index's oid;
 * forgotten at an invalidation of the index, of its table, of every
 * relation, or at any change of a function; a forgotten set, which the
 * transition that got the invalidation may still use, is freed when the
 * transaction ends.
 */
#define MAX_PREDICATES 8
static struct
{
	int			count;
	MemoryContext cxt;
	Oid			index[MAX_PREDICATES];
	ExprState  *state[MAX_PREDICATES];
}			predicates;

static void
predicates_forget(void)
{
	predicates.count = 0;
	if (predicates.cxt == NULL)
		return;
	if (TopTransactionContext != NULL)
		MemoryContextSetParent(predicates.cxt, TopTransactionContext);
	else
		MemoryContextDelete(predicates.cxt);
	predicates.cxt = NULL;
}

static void
tables_inval(Datum arg, Oid relid)
{
	for (int t = 0; t < 2; t++)
		if (!OidIsValid(relid) || relid == tables[t].relid)
		{
			tables[t].valid = false;
			checks[t].valid = false;
			defaults[t].valid = false;
			predicates_forget();
		}
	for (int i = 0; i < predicates.count; i++)
		if (predicates.index[i] == relid)
			predicates_forget();
}

static void
functions_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	for (int t = 0; t < 2; t++)
	{
		checks[t].valid = false;
		defaults[t].valid = false;
	}
	predicates_forget();
}

/*
 * Give the partial indexes of rri, just opened, their prepared predicates
 * (see predicates), preparing those not kept yet from a copy: the planner
 * shares Const values with its input, which the statement's memory holds.
 */
static void
index_predicates(ResultRelInfo *rri)
{
	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		IndexInfo  *info = rri->ri_IndexRelationInfo[i];
		Oid			oid = RelationGetRelid(rri->ri_IndexRelationDescs[i]);
		int			k = 0;
		MemoryContext old;

		if (info->ii_Predicate == NIL || info->ii_PredicateState != NULL)
			continue;
		while (k < predicates.count && predicates.index[k] != oid)
			k++;
		if (k == predicates.count)
		{
			if (k == MAX_PREDICATES)
				continue;		/* left to the executor, per statement */
			if (predicates.cxt == NULL)
				predicates.cxt = AllocSetContextCreate(TopMemoryContext, "chainexec index predicates",
													   ALLOCSET_SMALL_SIZES);
			old = MemoryContextSwitchTo(predicates.cxt);
			predicates.state[k] = ExecInitQual((List *) expression_planner((Expr *) copyObject(info->ii_Predicate)), NULL);
			MemoryContextSwitchTo(old);
			predicates.index[k] = oid;
			predicates.count++;
		}
		info->ii_PredicateState = predicates.state[k];
	}
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

static void table_load(int t);

/* The predicate an index must have: none, the steps index's, the dispatch index's. */
typedef enum
{
	PRED_NONE,
	PRED_STEPS,
	PRED_READY
} Pred;

/* Whether e is "column col <op> 'value'" (op: F_TEXTEQ, F_TEXTNE) on text. */
static bool
is_text_test(Node *e, int col, Oid op, const char *value)
{
	OpExpr	   *o = IsA(e, OpExpr) ? (OpExpr *) e : NULL;
	Var		   *var = o && list_length(o->args) == 2 && IsA(linitial(o->args), Var) ?
		linitial(o->args) : NULL;
	Const	   *val = var && IsA(lsecond(o->args), Const) ? lsecond(o->args) : NULL;

	return val != NULL && get_opcode(o->opno) == op && var->varattno == col + 1 &&
		!val->constisnull && val->consttype == TEXTOID &&
		strcmp(TextDatumGetCString(val->constvalue), value) == 0;
}

/*
 * Whether index indexid of rel is a valid btree on exactly the columns
 * cols (nkeys of them, of the column numbers col), with the default
 * operator classes, no expression, ascending but the keys desc says
 * (NULL: none; nulls first or last alike, the key columns are NOT NULL),
 * with the predicate pred: PRED_STEPS "line_type <> 'iteration'" (the
 * lines' steps index), PRED_READY "status = 'ready' AND waits_for IS NULL"
 * (the dispatch index).
 */
static bool
index_keys_are(Relation rel, Oid indexid, const int *col, const Col *cols, int nkeys,
			   const bool *desc, Pred pred)
{
	Relation	index;
	bool		ok;

	if (!OidIsValid(indexid))
		return false;
	index = index_open(indexid, AccessShareLock);
	ok = index->rd_rel->relam == BTREE_AM_OID && index->rd_index->indisvalid &&
		index->rd_index->indrelid == RelationGetRelid(rel) &&
		IndexRelationGetNumberOfKeyAttributes(index) == nkeys &&
		RelationGetIndexExpressions(index) == NIL;
	for (int i = 0; ok && i < nkeys; i++)
		ok = index->rd_index->indkey.values[i] == col[cols[i]] + 1 &&
			index->rd_opfamily[i] == get_opclass_family(GetDefaultOpClass(col_types[cols[i]], BTREE_AM_OID)) &&
			(index->rd_indoption[i] & INDOPTION_DESC) == (desc && desc[i] ? INDOPTION_DESC : 0);
	if (ok)
	{
		List	   *p = RelationGetIndexPredicate(index);

		if (pred == PRED_NONE)
			ok = p == NIL;
		else if (pred == PRED_STEPS)
			ok = list_length(p) == 1 && is_text_test(linitial(p), col[C_LINE_TYPE], F_TEXTNE, "iteration");
		else
		{
			Node	   *a = list_length(p) == 2 ? linitial(p) : NULL;
			Node	   *b = list_length(p) == 2 ? lsecond(p) : NULL;
			NullTest   *nt;

			if (a && IsA(a, NullTest))
			{
				Node	   *t = a;

				a = b;
				b = t;
			}
			nt = b && IsA(b, NullTest) ? (NullTest *) b : NULL;
			ok = nt != NULL && nt->nulltesttype == IS_NULL && !nt->argisrow && IsA(nt->arg, Var) &&
				((Var *) nt->arg)->varattno == col[C_WAITS_FOR] + 1 &&
				is_text_test(a, col[C_STATUS], F_TEXTEQ,
							 ce_line_status_name(CE_LINE_READY));
		}
	}
	index_close(index, AccessShareLock);
	return ok;
}

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

/* Whether new rows of table t can be inserted directly (ce_direct_available first). */
bool
ce_row_insertable(int t)
{
	return tables[t].insertable;
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
	/*
	 * Statement triggers and triggers with transition tables on UPDATE need
	 * a statement: then the statements run.
	 */
	if (rel->trigdesc != NULL &&
		(rel->trigdesc->trig_update_before_statement || rel->trigdesc->trig_update_after_statement ||
		 rel->trigdesc->trig_update_old_table || rel->trigdesc->trig_update_new_table))
		tables[t].usable = false;
	tables[t].insertable = tables[t].usable && !(rel->trigdesc != NULL &&
												 (rel->trigdesc->trig_insert_before_statement ||
												  rel->trigdesc->trig_insert_after_statement ||
												  rel->trigdesc->trig_insert_new_table));
	tables[t].pkey = RelationGetPrimaryKeyIndex(rel);
	tables[t].steps = InvalidOid;
	tables[t].ready = InvalidOid;
	if (tables[t].usable)
	{
		static const Col lines_key[] = {C_ORG, C_ID, C_LINE};
		static const Col ready_key[] = {C_ORG, C_PRIORITY, C_NOT_BEFORE};
		static const bool ready_desc[] = {false, true, false};
		Oid			steps = t == T_LINES ? get_relname_relid("universal_transaction_lines_steps", nsp) :
			InvalidOid;
		Oid			ready = t == T_LINES ? get_relname_relid("universal_transaction_lines_ready", nsp) :
			InvalidOid;

		/* the key the lookups name: (organization_id, id) or (..., transaction_id, line_number) */
		if (!index_keys_are(rel, tables[t].pkey, tables[t].col, lines_key, t == T_LINES ? 3 : 2,
							NULL, PRED_NONE))
			tables[t].usable = false;
		if (OidIsValid(steps) &&
			index_keys_are(rel, steps, tables[t].col, lines_key, 3, NULL, PRED_STEPS))
			tables[t].steps = steps;
		if (OidIsValid(ready) &&
			index_keys_are(rel, ready, tables[t].col, ready_key, 3, ready_desc, PRED_READY))
			tables[t].ready = ready;
	}
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

void
ce_row_begin(Direct *d, bool write, bool read_around, const Col *header_set)
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

/*
 * Leave out of the result relation's copy of the triggers those of
 * function fn (of foreign key fk, or of any with InvalidOid).
 */
static void
drop_triggers(TriggerDesc *td, Oid fn, Oid fk)
{
	int			kept = 0;

	td->trig_insert_after_row = td->trig_update_after_row = false;
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *tg = &td->triggers[i];

		if (tg->tgfoid == fn && (!OidIsValid(fk) || tg->tgconstraint == fk))
			continue;
		td->trig_insert_after_row |= TRIGGER_TYPE_MATCHES(tg->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_AFTER, TRIGGER_TYPE_INSERT);
		td->trig_update_after_row |= TRIGGER_TYPE_MATCHES(tg->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_AFTER, TRIGGER_TYPE_UPDATE);
		td->triggers[kept++] = *tg;
	}
	td->numtriggers = kept;
}

/* Open table t (T_LINES, T_HEADER); for an update with its indexes. */
DirectRel *
ce_row_open(Direct *d, int t, LOCKMODE mode)
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
	r->lines = t == T_LINES;
	r->pkey = index_open(tables[t].pkey, AccessShareLock);
	r->found = table_slot_create(r->rel, d->estate ? &d->estate->es_tupleTable : NULL);
	if (d->estate != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(d->estate->es_query_cxt);

		r->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(r->rri, r->rel, t + 1, NULL, 0);

		/*
		 * A direct write never changes a foreign key's columns: the check
		 * of an updated row whose key is unchanged, which PostgreSQL makes
		 * when the transaction wrote the old version (a header updated
		 * twice in a transition: a query each time), could not fail, and
		 * is left out, unless a BEFORE UPDATE row trigger could change it.
		 */
		if (r->rri->ri_TrigDesc && !r->rri->ri_TrigDesc->trig_update_before_row)
			drop_triggers(r->rri->ri_TrigDesc, F_RI_FKEY_CHECK_UPD, InvalidOid);
		r->rri->ri_ConstraintExprs = table_checks(t, r->rel);
		d->estate->es_opened_result_relations = lappend(d->estate->es_opened_result_relations, r->rri);
		ExecOpenIndices(r->rri, false);
		index_predicates(r->rri);
		r->next = table_slot_create(r->rel, &d->estate->es_tupleTable);
		MemoryContextSwitchTo(old);
	}
	return r;
}

void
ce_row_end(Direct *d)
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

/* The row of key (org, id[, line_number]) in snapshot d->snap, into r->found; false: none. */
bool
ce_row_find(Direct *d, DirectRel *r, const pg_uuid_t *org, const pg_uuid_t *id, int line_number)
{
	ScanKeyData key[3];
	int			nkeys = r->lines ? 3 : 2;
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
 * deleted meanwhile.  A version the current transaction wrote (the latest:
 * the snapshot sees our writes) no other can see, lock or change: it is
 * not locked again, which would add a multixact if a subtransaction wrote it.
 */
bool
ce_row_lock(Direct *d, DirectRel *r, LockTupleMode mode, LockWaitPolicy wait)
{
	TM_FailureData tmfd;
	TM_Result	res;

	if (ce_row_ours(r))
		return true;
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
		case TM_Invisible:
			/* a newer version made by a trigger of the current write */
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
					 errmsg("row of \"%s\" to be locked was already modified by an operation triggered by the current command",
							RelationGetRelationName(r->rel)),
					 errhint("Consider using an AFTER trigger instead of a BEFORE trigger to propagate changes to other rows.")));
			break;
		default:
			elog(ERROR, "unexpected result %d locking a row of \"%s\"", (int) res,
				 RelationGetRelationName(r->rel));
	}
	return false;
}

/* The new version of r->found: a copy of its columns, set by ce_row_set, written by ce_row_write. */
void
ce_row_new_version(DirectRel *r)
{
	slot_getallattrs(r->found);
	ExecClearTuple(r->next);
	memcpy(r->next->tts_values, r->found->tts_values, sizeof(Datum) * r->found->tts_nvalid);
	memcpy(r->next->tts_isnull, r->found->tts_isnull, sizeof(bool) * r->found->tts_nvalid);
}

void
ce_row_set(DirectRel *r, Col c, Datum value, bool isnull)
{
	r->next->tts_values[r->col[c]] = isnull ? (Datum) 0 : value;
	r->next->tts_isnull[r->col[c]] = isnull;
}

void
ce_row_write(Direct *d, DirectRel *r)
{
	ExecStoreVirtualTuple(r->next);
	ExecSimpleRelationUpdate(r->rri, d->estate, &d->epq, r->found, r->next);
}

static Relation
open_index(Oid indexid)
{
	Relation	index;

	if (!OidIsValid(indexid))
		return NULL;
	index = index_open(indexid, AccessShareLock);
	/* checked when the table was loaded; an invalidation since reloads it */
	if (!index->rd_index->indisvalid)
	{
		index_close(index, AccessShareLock);
		return NULL;
	}
	return index;
}

Relation
ce_row_open_steps(void)
{
	return open_index(tables[T_LINES].steps);
}

Relation
ce_row_open_ready(void)
{
	return open_index(tables[T_LINES].ready);
}

/* The defaults of table t's columns but those of set (see defaults). */
static ExprState **
table_defaults(int t, Relation rel, const Col *set)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;

	if (defaults[t].valid && defaults[t].set == set)
		return defaults[t].exprs;
	if (defaults[t].cxt != NULL)
		MemoryContextDelete(defaults[t].cxt);
	defaults[t].cxt = AllocSetContextCreate(TopMemoryContext, "chainexec defaults",
											ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(defaults[t].cxt);
	defaults[t].exprs = palloc0(sizeof(ExprState *) * desc->natts);
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		bool		given = false;
		Node	   *expr;

		for (const Col *c = set; *c != C_COUNT; c++)
			given |= tables[t].col[*c] == a;
		/* stored generated columns: computed by the insert */
		if (given || att->attisdropped || att->attgenerated)
			continue;
		expr = build_column_default(rel, a + 1);
		/* no default: null, coerced to a domain type as INSERT does (its CHECKs hold) */
		if (expr == NULL && get_typtype(att->atttypid) == TYPTYPE_DOMAIN)
			expr = coerce_to_domain((Node *) makeConst(att->atttypid, -1, att->attcollation, att->attlen,
													   (Datum) 0, true, att->attbyval),
									InvalidOid, -1, att->atttypid, COERCION_IMPLICIT,
									COERCE_IMPLICIT_CAST, -1, false);
		if (expr != NULL)
			defaults[t].exprs[a] = ExecInitExpr(expression_planner((Expr *) expr), NULL);
	}
	MemoryContextSwitchTo(old);
	defaults[t].set = set;
	defaults[t].valid = true;
	return defaults[t].exprs;
}

/*
 * Open table t for inserts of rows whose columns set are given
 * (C_COUNT-ended).  skip_header_fk: the rows are lines of a header that
 * the current transaction inserted (the caller checked it, ce_row_ours),
 * so the check of the lines' foreign key to their header, one query per
 * row, could not fail (the header exists, and no other transaction can
 * see it, let alone delete it) and is left out, unless the lines have a
 * BEFORE INSERT row trigger; every other trigger fires.
 */
DirectRel *
ce_row_open_insert(Direct *d, int t, const Col *set, bool skip_header_fk)
{
	DirectRel  *r = ce_row_open(d, t, RowExclusiveLock);
	TriggerDesc *td = r->rri->ri_TrigDesc;
	Oid			fk = InvalidOid;
	ListCell   *lc;

	if (!tables[t].insertable)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chainexec table \"%s\" changed during a transition", table_names[t]),
				 errhint("Run the transition again.")));
	r->defaults = table_defaults(t, r->rel, set);
	/*
	 * A BEFORE row trigger may change a row's keys, or delete the header,
	 * after the caller checked it: then every check runs.
	 */
	if (!skip_header_fk || t != T_LINES || td == NULL || td->trig_insert_before_row)
		return r;
	foreach(lc, RelationGetFKeyList(r->rel))
	{
		ForeignKeyCacheInfo *f = lfirst(lc);

		if (f->confrelid == tables[T_HEADER].relid && f->nkeys == 2 &&
			f->conkey[0] == tables[T_LINES].col[C_ORG] + 1 &&
			f->conkey[1] == tables[T_LINES].col[C_ID] + 1 &&
			f->confkey[0] == tables[T_HEADER].col[C_ORG] + 1 &&
			f->confkey[1] == tables[T_HEADER].col[C_ID] + 1)
			fk = f->conoid;
	}
	if (OidIsValid(fk))
		drop_triggers(td, F_RI_FKEY_CHECK_INS, fk);
	return r;
}

/* A new row to insert into r: every column its default (or null). */
void
ce_row_new_row(Direct *d, DirectRel *r)
{
	ExprContext *econtext = GetPerTupleExprContext(d->estate);
	int			natts = RelationGetDescr(r->rel)->natts;

	ExecClearTuple(r->next);
	for (int a = 0; a < natts; a++)
	{
		r->next->tts_values[a] = (Datum) 0;
		r->next->tts_isnull[a] = true;
		if (r->defaults[a] != NULL)
			r->next->tts_values[a] = ExecEvalExprSwitchContext(r->defaults[a], econtext,
															   &r->next->tts_isnull[a]);
	}
}

/* Insert the new row as an INSERT would (constraints, indexes, row triggers). */
void
ce_row_insert(Direct *d, DirectRel *r)
{
	ExecStoreVirtualTuple(r->next);
	ExecSimpleRelationInsert(r->rri, d->estate, r->next);
	ResetPerTupleExprContext(d->estate);
}

/* Whether the current transaction wrote the row found. */
bool
ce_row_ours(DirectRel *r)
{
	bool		should_free;
	HeapTuple	tuple = ExecFetchSlotHeapTuple(r->found, false, &should_free);
	bool		ours = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data));

	if (should_free)
		heap_freetuple(tuple);
	return ours;
}
