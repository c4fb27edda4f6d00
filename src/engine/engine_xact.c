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
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "storage/lockdefs.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "engine_xact.h"

/* The extension's oid when last seen (InvalidOid: not yet, or gone). */
static Oid	extension_oid = InvalidOid;

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
	if (!OidIsValid(oid))
		oid = get_extension_oid("chainexec", true);
	while (OidIsValid(oid))
	{
		Oid			now;

		/*
		 * LockDatabaseObject processes invalidations once it holds the
		 * lock, so the catalog scan below sees a DROP that committed while
		 * we waited.  One scan per call when nothing changed.
		 */
		LockDatabaseObject(ExtensionRelationId, oid, 0, AccessShareLock);
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
bool
ce_engine_xact_begin(CeXact *x, bool *changed)
{
	x->caller = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	ce_xact_read_committed();
	if (!ce_lock_extension(changed))
	{
		CommitTransactionCommand();
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
	CommitTransactionCommand();
	MemoryContextSwitchTo(x->caller);
}
