/*-------------------------------------------------------------------------
 *
 * engine_xact.c
 *	  What every transaction of the engine does first: run at READ
 *	  COMMITTED, and hold a share lock on the chainexec extension.
 *
 * Isolation: the engine was designed for READ COMMITTED.  A transition
 * reads the committed state with fresh snapshots (the header after the
 * step, the lines it makes ready) and serializes the decisions of one
 * execution with the header's row lock.  Under REPEATABLE READ or
 * SERIALIZABLE (default_transaction_isolation set for the database, the
 * role or the session calling chain_run) the same row lock would raise
 * serialization failures, and the transition, step included, would be
 * rolled back and run again.  So each transaction of the engine sets its
 * isolation explicitly, before it takes its first snapshot.
 *
 * The extension lock: DROP EXTENSION locks the extension object
 * (AccessExclusiveLock) before it drops any member.  A transaction of the
 * engine takes AccessShareLock on it before it touches any table, so a
 * DROP waits for running transitions to end and transitions that start
 * meanwhile wait for the DROP, then find the extension gone.  Without it
 * the two take table locks in different orders and deadlock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "storage/lockdefs.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "engine.h"
#include "engine_xact.h"

/* The extension's oid when last seen (InvalidOid: not yet, or gone). */
static Oid	extension_oid = InvalidOid;

/*
 * Whether the extension may have changed since extension_oid was checked
 * against the catalog: set by every relation cache invalidation this
 * backend receives.  DROP EXTENSION drops the extension's tables, and a
 * dropped relation is invalidated in every backend; so while no
 * invalidation came, the extension seen last is still there and the
 * catalog scan of pg_extension (a few percent of a step transition) is
 * skipped.  Invalidations are frequent enough (ANALYZE, any DDL, a lost
 * invalidation queue) that this only saves the scan in steady work.
 */
static bool extension_maybe_changed = true;
static bool extension_callback_registered = false;

static void
extension_inval_callback(Datum arg, Oid relid)
{
	extension_maybe_changed = true;
}

/*
 * Make the current transaction READ COMMITTED.  It must not have taken a
 * snapshot yet (SET TRANSACTION's rule).
 */
void
ce_xact_read_committed(void)
{
	Assert(!FirstSnapshotSet);
	XactIsoLevel = XACT_READ_COMMITTED;
}

/*
 * Take AccessShareLock on the chainexec extension for the rest of the
 * transaction; false when the extension is not installed (or was dropped
 * while we waited for the lock).  Call it before touching any of the
 * extension's tables.  Sets *changed (when not NULL) when the extension
 * is not the one seen last time (dropped and created again): cached
 * facts about it, such as its owner, are then stale.
 */
bool
ce_lock_extension(bool *changed)
{
	Oid			oid = extension_oid;

	if (changed)
		*changed = false;
	if (!extension_callback_registered)
	{
		CacheRegisterRelcacheCallback(extension_inval_callback, (Datum) 0);
		extension_callback_registered = true;
	}
	if (!OidIsValid(oid))
		oid = get_extension_oid("chainexec", true);
	while (OidIsValid(oid))
	{
		Oid			now;

		/*
		 * LockDatabaseObject processes invalidations once it holds the
		 * lock, so the catalog scan below sees a DROP that committed while
		 * we waited.  No scan when no invalidation came since the last one
		 * found this oid (see extension_maybe_changed).
		 */
		LockDatabaseObject(ExtensionRelationId, oid, 0, AccessShareLock);
		if (!extension_maybe_changed && oid == extension_oid)
			return true;
		extension_maybe_changed = false;
		now = get_extension_oid("chainexec", true);
		if (now == oid)
		{
			if (changed && OidIsValid(extension_oid) && extension_oid != oid)
				*changed = true;
			extension_oid = oid;
			return true;
		}
		UnlockDatabaseObject(ExtensionRelationId, oid, 0, AccessShareLock);
		oid = now;
	}
	if (changed && OidIsValid(extension_oid))
		*changed = true;
	extension_oid = InvalidOid;
	return false;
}

/*
 * Start a transaction of the engine: statement start, start, READ
 * COMMITTED, extension lock, active snapshot.  Remembers the caller's
 * memory context, which StartTransactionCommand leaves for the
 * transaction's, so that ce_engine_xact_commit gives it back, as
 * pg_cron's loop does around each of its transactions.  Returns false
 * (the transaction already committed, the caller's context restored)
 * when the extension is not installed.  Sets *changed as
 * ce_lock_extension does.
 */
/* Commit the transaction of x, ending its block if it has one. */
static void
xact_end(CeXact *x)
{
	if (x->block)
		(void) EndTransactionBlock(false);
	CommitTransactionCommand();
}

bool
ce_engine_xact_begin(CeXact *x, bool *changed)
{
	x->caller = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	/*
	 * On Citus, a background worker's transaction is a transaction block,
	 * as after BEGIN: Citus opens a transaction on the nodes it queries
	 * (and so keeps the row locks of a claim, SELECT ... FOR UPDATE, until
	 * the commit) only inside a block, a procedure or a function call; in
	 * a bare transaction each remote query commits by itself.  Once Citus
	 * mode is known (ce_citus_mode_known); claims are refused until then
	 * (ce_claim_due).
	 */
	x->block = IsBackgroundWorker && ce_citus_mode_known();
	if (x->block)
	{
		BeginTransactionBlock();
		CommitTransactionCommand();
		StartTransactionCommand();
	}
	ce_xact_read_committed();
	if (!ce_lock_extension(changed))
	{
		xact_end(x);
		MemoryContextSwitchTo(x->caller);
		return false;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	return true;
}


/*
 * Commit a transaction begun by ce_engine_xact_begin and return to the
 * caller's memory context.
 */
void
ce_engine_xact_commit(CeXact *x)
{
	PopActiveSnapshot();
	xact_end(x);
	MemoryContextSwitchTo(x->caller);
}
