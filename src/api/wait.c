/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  chain_wait(execution_id uuid, timeout_ms int DEFAULT NULL): block
 *	  until an execution ends, or the timeout passes, and return its
 *	  result (chain_result).  CALL chain_await(execution_id, timeout_ms,
 *	  result) does the same holding no snapshot while it waits.
 *
 * An execution has ended when its status is terminal: completed, failed,
 * cancelled, timeout or compensated.  A paused execution, or one waiting
 * for an external step, has not ended: chain_wait keeps waiting (bound it
 * with timeout_ms).  On timeout the result is returned as it stands, with
 * a status that is not terminal.
 *
 * How it waits: each look at the status is a query with a fresh snapshot
 * (in READ COMMITTED a new one for each look), which also reads the header
 * columns the result is built from: the look that sees the execution
 * ended gives the result, its lines counted in the same snapshot.  Between looks it sleeps on a condition variable
 * that is broadcast after the commit of every transaction that ends an
 * execution (ce_finished_at_commit); a finish counter read before the look
 * makes sure no broadcast is missed, and sleeps are capped at one second
 * anyway.  Without shared memory (library not preloaded) it polls every
 * 100 ms.
 *
 * The wait gives way to a lock request: its transaction holds a lock on
 * the execution tables (ACCESS SHARE, from its looks) until it ends, so a
 * request for a lock that conflicts with it (TRUNCATE, ALTER TABLE,
 * VACUUM FULL, LOCK TABLE, an ALTER EXTENSION UPDATE; REINDEX, on the
 * tables' indexes, which the looks lock too) waits for the wait,
 * and every executor's next transition queues behind that request: nothing
 * would end the execution, and PostgreSQL's deadlock detector cannot see
 * the cycle (the wait sleeps on a condition variable, not on a lock).  So
 * at each look, at least once a second, a wait that blocks such a request,
 * once it has waited deadlock_timeout, returns the result as it stands, as
 * on timeout, with a warning.
 * chain_await holds no lock while it waits.
 *
 * In REPEATABLE READ and SERIALIZABLE transactions the snapshot never
 * changes, so an execution that has not ended in it never will: that is an
 * error rather than a silent wait until the timeout.  So is waiting
 * without a timeout when no executor serves this database: nothing would
 * ever end the execution.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chainexec.h"
#include "engine_xact.h"
#include "executor.h"
#include "procedure.h"
#include "result.h"
#include "status.h"

/* Longest single sleep, a safety net against lost wake-ups */
#define CE_WAIT_MAX_NAP_MS		1000
/* Poll interval when the library is not preloaded */
#define CE_WAIT_POLL_MS			100

PG_FUNCTION_INFO_V1(ce_chain_wait);

/* What one look at the execution found */
typedef struct WaitLook
{
	bool		found;			/* the row is visible */
	bool		terminal;		/* its status is terminal */
	bool		in_current_xact;	/* last written by this transaction */
	bool		created_now;	/* created_at is this transaction's start */
	char	   *status;			/* in the caller's memory context */
} WaitLook;

static void wait_look(SPIPlanPtr plan, Datum id, MemoryContext cxt, WaitLook *look);

/* The arguments of chain_wait and chain_await */
typedef struct WaitArgs
{
	pg_uuid_t	id;
	char	   *id_text;
	bool		has_timeout;
	TimestampTz deadline;		/* when has_timeout */
} WaitArgs;

/* Read and check the arguments: an execution id, a time limit >= 0. */
static void
wait_args(FunctionCallInfo fcinfo, WaitArgs *a)
{
	int32		timeout_ms = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("execution id must not be null")));
	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"timeout_ms\" must not be negative"),
				 errhint("Pass NULL to wait without a time limit.")));
	memcpy(&a->id, PG_GETARG_UUID_P(0), sizeof(a->id));
	a->id_text = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&a->id)));
	a->has_timeout = !PG_ARGISNULL(1);
	a->deadline = a->has_timeout ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms) : 0;
}

/*
 * Refuse to wait without a time limit for an execution that nothing would
 * move on: no executor serves this database.
 */
static void
wait_check_served(const char *id_text, const char *status)
{
	if (ce_executors_configured_for(MyDatabaseId))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot wait for execution %s: no background executor serves database \"%s\"",
					id_text, get_database_name(MyDatabaseId)),
			 errdetail("The execution is %s, and nothing would make it end.", status),
			 errhint("Load chainexec through shared_preload_libraries with chainexec.database set to this database, pass a timeout, or run chains with chain_run().")));
}

/*
 * How long to sleep before the next look, in ms: until the deadline (0 or
 * less when it has passed), at most CE_WAIT_MAX_NAP_MS, and
 * CE_WAIT_POLL_MS when there is no shared memory to be woken through.
 */
static long
wait_nap(const WaitArgs *a)
{
	long		nap = CE_WAIT_MAX_NAP_MS;

	if (a->has_timeout)
	{
		nap = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), a->deadline);
		if (nap <= 0)
			return 0;
	}
	return Min(nap, ce_shmem_available() ? CE_WAIT_MAX_NAP_MS : CE_WAIT_POLL_MS);
}

/*
 * Read the execution's header row (as the caller, so row-level security
 * applies) in the active snapshot; copies the status into cxt.  When the
 * execution has ended, the row stays in SPI_tuptable.
 */
static void
wait_look(SPIPlanPtr plan, Datum id, MemoryContext cxt, WaitLook *look)
{
	Datum		values[1];
	int			rc;
	bool		isnull;
	Datum		d;

	memset(look, 0, sizeof(*look));
	values[0] = id;
	rc = SPI_execute_plan(plan, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chain_wait: SPI_execute_plan failed: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return;
	}
	look->found = true;

	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	look->in_current_xact = !isnull &&
		TransactionIdIsCurrentTransactionId(DatumGetTransactionId(d));

	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	look->status = MemoryContextStrdup(cxt, isnull ? "" : TextDatumGetCString(d));
	look->terminal = ce_exec_status_is_terminal(ce_exec_status_from_name(look->status));

	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	look->created_now = !isnull && DatumGetBool(d);

	/* the result is built from this row (LOOK_RESULT_COL on) */
	if (!look->terminal)
		SPI_freetuptable(SPI_tuptable);
}

/*
 * The statements of chain_wait and chain_await, prepared once per backend
 * with a generic plan (SPI_keepplan; the plan cache plans them again when
 * what they depend on changes, or when the role they run as does).  They
 * run as the caller: row-level security applies.
 */
static SPIPlanPtr
wait_plan(SPIPlanPtr *plan, const char *sql)
{
	Oid			argtypes[1] = {UUIDOID};

	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare_cursor(sql, 1, argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (p == NULL)
			elog(ERROR, "chain_wait: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "chain_wait: SPI_keepplan failed");
		*plan = p;
	}
	return *plan;
}

static SPIPlanPtr look_plan = NULL;
static SPIPlanPtr status_plan = NULL;

/*
 * The look: what the wait decides on, then the header's columns the
 * result is built from when the execution has ended (LOOK_RESULT_COL on).
 */
#define LOOK_SQL "SELECT t.xmin, t.status, t.created_at OPERATOR(pg_catalog.>=) pg_catalog.now(), " \
	CE_RESULT_HEADER_COLS \
	" FROM chainexec.universal_transactions t" \
	" WHERE t.organization_id OPERATOR(pg_catalog.=) chainexec.current_organization()" \
	" AND t.id OPERATOR(pg_catalog.=) $1"
#define LOOK_RESULT_COL 4
#define STATUS_SQL "SELECT status FROM chainexec.universal_transactions" \
	" WHERE organization_id OPERATOR(pg_catalog.=) chainexec.current_organization()" \
	" AND id OPERATOR(pg_catalog.=) $1"

/*
 * Whether a process waits for a lock, conflicting with one this
 * transaction holds, on relation relid: the processes waiting for a lock
 * are those whose waitLock is that lock, which they set and clear holding
 * the lock's partition lock, taken here in shared mode.  (LockHasWaiters
 * cannot tell: the weak locks a look takes are held on the fast path,
 * without a shared lock object.)
 */
static bool
wait_rel_blocks(Oid relid)
{
	LOCKTAG		tag;
	int			held = 0;
	LWLock	   *partition;
	bool		waiting = false;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	for (LOCKMODE mode = AccessShareLock; mode <= AccessExclusiveLock; mode++)
		if (LockHeldByMe(&tag, mode))
			held |= LOCKBIT_ON(mode);
	if (held == 0)
		return false;
	partition = LockHashPartitionLock(LockTagHashCode(&tag));
	LWLockAcquire(partition, LW_SHARED);
	for (uint32 p = 0; p < ProcGlobal->allProcCount && !waiting; p++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[p];
		LOCK	   *lock = proc->waitLock;

		TimestampTz since;

		if (proc == MyProc || lock == NULL ||
			memcmp(&lock->tag, &tag, sizeof(LOCKTAG)) != 0)
			continue;

		/*
		 * Only a request that has waited deadlock_timeout, as long as
		 * PostgreSQL waits before it looks for a deadlock: anyone may ask
		 * for a lock on these tables (some commands take it before they
		 * check the rights), and a request given up at once (lock_timeout)
		 * must not make the waits return.
		 */
		since = (TimestampTz) pg_atomic_read_u64(&proc->waitStart);
		if (since == 0 || !TimestampDifferenceExceeds(since, GetCurrentTimestamp(), DeadlockTimeout))
			continue;
		for (LOCKMODE mode = AccessShareLock; mode <= AccessExclusiveLock; mode++)
			if ((held & LOCKBIT_ON(mode)) && DoLockModesConflict(mode, proc->waitLockMode))
				waiting = true;
	}
	LWLockRelease(partition);
	return waiting;
}

/* Whether a process waits for a lock this transaction holds on an index of rel */
static bool
wait_indexes_block(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		waiting = false;

	foreach(lc, indexes)
		if (wait_rel_blocks(lfirst_oid(lc)))
		{
			waiting = true;
			break;
		}
	list_free(indexes);
	return waiting;
}

/*
 * Whether a lock request waits for a lock this transaction holds on one of
 * the execution tables (see the file comment): then the wait gives way.
 * Names the table in *table.  The locks are those of a table, of its
 * indexes (a REINDEX holds SHARE on the table, which the executors queue
 * behind, while it waits for ACCESS EXCLUSIVE on each index), and of its
 * TOAST table and that table's index (the looks read them for large
 * values).  Every one is locked with the table: a table this transaction
 * holds no lock on is skipped, and opened without a lock otherwise.
 */
static bool
wait_blocks_a_lock(const char **table)
{
	static const char *const tables[] = {"universal_transactions", "universal_transaction_lines"};
	Oid			nsp = get_namespace_oid("chainexec", true);

	if (!OidIsValid(nsp))
		return false;
	for (int i = 0; i < lengthof(tables); i++)
	{
		Oid			relid = get_relname_relid(tables[i], nsp);
		bool		waiting;
		Relation	rel;
		Oid			toast;

		if (!OidIsValid(relid) || !CheckRelationOidLockedByMe(relid, AccessShareLock, true))
			continue;
		waiting = wait_rel_blocks(relid);
		if (!waiting)
		{
			rel = relation_open(relid, NoLock);
			toast = rel->rd_rel->reltoastrelid;
			waiting = wait_indexes_block(rel);
			relation_close(rel, NoLock);
			if (!waiting && OidIsValid(toast) &&
				CheckRelationOidLockedByMe(toast, AccessShareLock, true))
			{
				waiting = wait_rel_blocks(toast);
				if (!waiting)
				{
					rel = relation_open(toast, NoLock);
					waiting = wait_indexes_block(rel);
					relation_close(rel, NoLock);
				}
			}
		}
		if (waiting)
		{
			*table = tables[i];
			return true;
		}
	}
	return false;
}

/*
 * chain_wait(execution_id uuid, timeout_ms int DEFAULT NULL) RETURNS jsonb
 */
Datum
ce_chain_wait(PG_FUNCTION_ARGS)
{
	WaitArgs	a;
	Datum		id;
	SPIPlanPtr	plan;
	MemoryContext loop_context;
	MemoryContext spi_context;
	WaitLook	look;
	Datum		result;
	const char *blocked = NULL;

	wait_args(fcinfo, &a);
	id = UUIDPGetDatum(&a.id);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chain_wait: SPI_connect failed");
	spi_context = CurrentMemoryContext;
	plan = wait_plan(&look_plan, LOOK_SQL);

	/*
	 * The result counts the execution's lines: lock their table now, after
	 * the header's, not only once the wait has decided to return.  A request
	 * that locked the lines first and then waits for the header's table
	 * (LOCK TABLE or TRUNCATE of both, ALTER EXTENSION UPDATE) would
	 * otherwise make the result wait for the request that the wait gives
	 * way to: a deadlock, one of the two cancelled.  Held, the lock makes
	 * the request wait for this one, which gives way to it.
	 */
	(void) RangeVarGetRelid(makeRangeVar("chainexec", "universal_transactions", -1),
							AccessShareLock, true);
	(void) RangeVarGetRelid(makeRangeVar("chainexec", "universal_transaction_lines", -1),
							AccessShareLock, true);

	loop_context = AllocSetContextCreate(spi_context,
										 "chain_wait loop",
										 ALLOCSET_SMALL_SIZES);

	for (;;)
	{
		uint64		generation;
		long		nap;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(loop_context);

		/*
		 * Read the counter first: a finish after it wakes the sleep below.
		 * Each look in a snapshot of its own (READ COMMITTED: a new one),
		 * in which the result is built when the execution has ended.
		 */
		generation = ce_finished_generation();
		CommandCounterIncrement();
		PushActiveSnapshot(GetTransactionSnapshot());
		wait_look(plan, id, loop_context, &look);

		if (!look.found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("execution %s does not exist", a.id_text)));
		if (look.terminal)
		{
			result = ce_result_from_header(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										   LOOK_RESULT_COL, id);
			PopActiveSnapshot();
			break;
		}
		PopActiveSnapshot();

		/*
		 * Rows this transaction wrote are locked by it: nobody else can move
		 * the execution on before it commits.
		 */
		if (look.in_current_xact && look.created_now)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot wait for execution %s created in the current transaction",
							a.id_text),
					 errhint("Commit the transaction that called chain_execute() first.")));
		if (look.in_current_xact)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot wait for execution %s changed in the current transaction",
							a.id_text),
					 errdetail("The execution is locked until the transaction ends."),
					 errhint("Commit the transaction first.")));
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
					 errmsg("cannot wait for execution %s in a %s transaction", a.id_text,
							XactIsoLevel == XACT_SERIALIZABLE ? "SERIALIZABLE" : "REPEATABLE READ"),
					 errdetail("The execution is %s, and the transaction's snapshot would never show it end.",
							   look.status),
					 errhint("Call chain_wait() in a READ COMMITTED transaction.")));
		if (!a.has_timeout)
			wait_check_served(a.id_text, look.status);

		if (wait_blocks_a_lock(&blocked))
		{
			ereport(WARNING,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("chain_wait returns before execution %s has ended: another session waits for a lock on chainexec.%s",
							a.id_text, blocked),
					 errdetail("The execution is %s.  This transaction holds its lock on the table until it ends, and the executors cannot move the execution on behind the other session's request.",
							   look.status),
					 errhint("End this transaction, and wait with CALL chainexec.chain_await(), which holds no lock while it waits.")));
			result = ce_result_in_spi(id, true);
			break;
		}

		nap = wait_nap(&a);
		if (nap <= 0)
		{
			/* timed out: the result as it stands */
			result = ce_result_in_spi(id, true);
			break;
		}

		(void) ce_finished_sleep(generation, nap);
	}

	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * CALL chain_await(execution_id uuid, timeout_ms int DEFAULT NULL,
 *					INOUT result jsonb DEFAULT NULL)
 *
 * chain_wait as a procedure that holds no snapshot while it waits: it
 * commits the CALL's transaction first, then each look at the execution
 * is a short READ COMMITTED transaction of its own, committed before the
 * sleep, as chain_run does between steps.  A session waiting for a person
 * for days thus never holds back vacuum (its backend_xmin stays empty
 * between looks).  Returns chain_result when the execution has ended or
 * the timeout has passed.
 */
PG_FUNCTION_INFO_V1(ce_chain_await);
Datum
ce_chain_await(PG_FUNCTION_ARGS)
{
	WaitArgs	a;
	MemoryContext callcxt = CurrentMemoryContext;
	Datum		result;

	ce_procedure_check_nonatomic(fcinfo, "chain_await",
								 "chain_await commits between its looks at the execution.",
								 "Call it outside BEGIN ... COMMIT, or use chainexec.chain_wait().");
	wait_args(fcinfo, &a);

	SPI_connect_ext(SPI_OPT_NONATOMIC);
	SPI_commit();

	for (;;)
	{
		Datum		values[1];
		uint64		generation;
		char	   *status;
		long		nap;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		ce_xact_read_committed();

		/* Read the counter first: a finish after it wakes the sleep below. */
		generation = ce_finished_generation();
		values[0] = UUIDPGetDatum(&a.id);
		PushActiveSnapshot(GetTransactionSnapshot());
		rc = SPI_execute_plan(wait_plan(&status_plan, STATUS_SQL), values, NULL, true, 1);
		PopActiveSnapshot();
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "chain_await: SPI_execute failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("execution %s does not exist", a.id_text)));
		status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		if (ce_exec_status_is_terminal(ce_exec_status_from_name(status)))
			break;
		if (!a.has_timeout)
			wait_check_served(a.id_text, status);
		nap = wait_nap(&a);
		if (nap <= 0)
			break;

		/* no snapshot while asleep: the look's transaction ends first */
		SPI_commit();
		(void) ce_finished_sleep(generation, nap);
	}

	PushActiveSnapshot(GetTransactionSnapshot());
	result = ce_result_in_spi(UUIDPGetDatum(&a.id), true);
	PopActiveSnapshot();
	PG_RETURN_DATUM(ce_procedure_result(callcxt, DatumGetJsonbP(result)));
}

