/*-------------------------------------------------------------------------
 *
 * insession.c
 *	  Executions driven by CALL chain_run stay in the calling session
 *	  (SPEC §9): the background executors never claim their lines while
 *	  the session drives them.
 *
 * chain_run creates its execution with universal_transactions.in_session
 * set, and the dispatch queries of the executors (store.c) skip the
 * lines of such executions.  The driving session holds a session-level
 * lock on the execution (an advisory lock tag of chainexec's own, so it
 * never meets the caller's pg_advisory_lock keys) for as long as it
 * drives it.
 *
 * When the session stops driving the execution, the execution is handed
 * to the background workers: chain_run clears the flag when it returns
 * (the execution ended, or waits for an external result that someone
 * else will bring); when chain_run fails, is cancelled, or the session
 * dies (its lock then goes with it), the executors' periodic sweep
 * (ce_sweep_sessions) finds the flag set and the lock free, clears the
 * flag, and the remaining steps run on the workers, within
 * chainexec.poll_interval (as they did before 0.2 when chain_run was
 * interrupted).  Those steps no longer see the session's temporary tables
 * and settings: a step that needs them fails like any step, and its
 * onFailure applies.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "chainexec.h"
#include "engine.h"
#include "engine_xact.h"
#include "insession.h"
#include "shmem.h"

/* locktag field4 of chainexec's session locks ("CE"); advisory locks use 1 and 2 */
#define CE_SESSION_LOCK_FIELD4	0x4345

static void
session_locktag(LOCKTAG *tag, const pg_uuid_t *execution)
{
	uint32		k1;
	uint32		k2;

	memcpy(&k1, execution->data, sizeof(k1));
	memcpy(&k2, execution->data + sizeof(k1), sizeof(k2));
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, k1, k2, CE_SESSION_LOCK_FIELD4);
}

/*
 * This session drives the execution (chain_run, right after creating it):
 * hold its session lock until ce_session_release or the end of the
 * session.
 */
void
ce_session_drive(const pg_uuid_t *execution)
{
	LOCKTAG		tag;

	session_locktag(&tag, execution);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
}

/* This session no longer drives the execution. */
void
ce_session_release(const pg_uuid_t *execution)
{
	LOCKTAG		tag;

	session_locktag(&tag, execution);
	(void) LockRelease(&tag, ExclusiveLock, true);
}

/* Whether a session drives the execution (holds its lock). */
static bool
session_driven(const pg_uuid_t *execution)
{
	LOCKTAG		tag;

	session_locktag(&tag, execution);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ExclusiveLock, false);
	return false;
}

/* Bookkeeping runs as the extension owner, with a fixed search_path. */
#define BOOKKEEPING_BEGIN(level, save_user, save_sec) \
	do { \
		(level) = NewGUCNestLevel(); \
		(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, \
								 GUC_ACTION_SAVE, true, 0, false); \
		GetUserIdAndSecContext(&(save_user), &(save_sec)); \
		SetUserIdAndSecContext(ce_extension_owner(), (save_sec) | SECURITY_LOCAL_USERID_CHANGE); \
	} while (0)
#define BOOKKEEPING_END(level, save_user, save_sec) \
	do { \
		AtEOXact_GUC(false, (level)); \
		SetUserIdAndSecContext((save_user), (save_sec)); \
	} while (0)

static CeQuery q_hand_over = {
	"UPDATE chainexec.universal_transactions SET in_session = false "
	"WHERE organization_id = $1 AND id = $2 AND in_session",
	2, {UUIDOID, UUIDOID}};

/*
 * Hand the execution to the workers (chain_run returns), in the current
 * transaction; wakes the executors at commit when some of its lines are
 * due.  SPI may be connected or not.
 */
void
ce_session_hand_over(const pg_uuid_t *org, const pg_uuid_t *execution)
{
	Datum		args[2];
	int			level;
	Oid			save_user;
	int			save_sec;

	SPI_connect();
	BOOKKEEPING_BEGIN(level, save_user, save_sec);
	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = UUIDPGetDatum((pg_uuid_t *) execution);
	if (ce_run_query(&q_hand_over, args, NULL, false, 0) == SPI_OK_UPDATE &&
		SPI_processed > 0)
		ce_wakeup_at_commit();
	BOOKKEEPING_END(level, save_user, save_sec);
	SPI_finish();
}

/* Executions a session drives (a kept plan: swept every poll interval). */
static CeQuery q_in_session = {
	"SELECT organization_id, id FROM chainexec.universal_transactions WHERE in_session LIMIT 1000",
	0, {0}};

/*
 * Hand to the workers the executions whose driving session is gone
 * (chain_run failed or was cancelled, or the session died).  Returns how
 * many.  Runs its own transaction.
 */
int
ce_sweep_sessions(void)
{
	CeXact		xact;
	int			n = 0;
	int			level;
	Oid			save_user;
	int			save_sec;
	List	   *found = NIL;
	ListCell   *lc;
	uint64		i;

	if (!ce_engine_xact_begin(&xact, NULL))
		return 0;
	SPI_connect();
	BOOKKEEPING_BEGIN(level, save_user, save_sec);
	if (ce_run_query(&q_in_session, NULL, NULL, true, 0) == SPI_OK_SELECT)
	{
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			pg_uuid_t  *pair = palloc(sizeof(pg_uuid_t) * 2);

			memcpy(&pair[0], DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)),
				   sizeof(pg_uuid_t));
			memcpy(&pair[1], DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)),
				   sizeof(pg_uuid_t));
			found = lappend(found, pair);
		}
	}
	foreach(lc, found)
	{
		pg_uuid_t  *pair = lfirst(lc);
		Datum		args[2];

		if (session_driven(&pair[1]))
			continue;
		args[0] = UUIDPGetDatum(&pair[0]);
		args[1] = UUIDPGetDatum(&pair[1]);
		if (ce_run_query(&q_hand_over, args, NULL, false, 0) == SPI_OK_UPDATE &&
			SPI_processed > 0)
		{
			n++;
			ce_wakeup_at_commit();
		}
	}
	BOOKKEEPING_END(level, save_user, save_sec);
	SPI_finish();
	ce_engine_xact_commit(&xact);
	if (n > 0)
		ereport(LOG,
				(errmsg("chainexec: %d execution%s whose chain_run session ended handed to the executors",
						n, n == 1 ? "" : "s")));
	return n;
}
