/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The chainexec launcher: starts the executors and keeps them running.
 *
 * The launcher is a static background worker registered by _PG_init under
 * shared_preload_libraries.  Like PostgreSQL's logical replication
 * launcher it connects to no database, only to the shared catalogs: that
 * lets it wait for chainexec.database to be created (saying so once in the
 * log, then checking every few seconds) instead of failing to start over
 * and over.  Once the database exists it publishes its oid, starts
 * chainexec.max_workers executors as dynamic background workers connected
 * to it (bgw_notify_pid = the launcher, so that the postmaster signals it
 * when one stops), and starts a new executor whenever one exits — at most
 * one start per executor slot every CE_RESTART_DELAY_MS.
 *
 * The launcher is also the executors' watchdog (ce_watchdog, shmem.c): it
 * terminates an executor whose step still runs chainexec.step_grace_period
 * after its timeout or a cancel, so that no step can hold an executor by
 * ignoring them; it wakes when the next such time falls, not by polling.
 *
 * Everything that needs the database itself is done by the executors
 * (executor.c): checking that the extension is installed, the start-up
 * recovery report, and sweeping executions past their deadline.
 *
 * When the launcher exits it terminates its executors, so that the
 * launcher the postmaster restarts starts from a clean slate.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "chainexec.h"
#include "launcher.h"
#include "shmem.h"

/* Static launcher: restart delay after it exits, in seconds */
#define CE_LAUNCHER_RESTART_S	5
/* Shortest time between two starts of the same executor slot */
#define CE_RESTART_DELAY_MS		5000
/* How often to look again for a missing database, or retry a start */
#define CE_RETRY_MS				5000
/* Longest sleep when all is well (stops are signalled anyway) */
#define CE_LAUNCHER_NAP_MS		60000

/* The launcher's view of one executor slot */
typedef struct LauncherExecutor
{
	BackgroundWorkerHandle *handle; /* NULL when not started */
	TimestampTz last_start;		/* 0: never started */
	bool		exited;			/* stopped since its last start */
} LauncherExecutor;

static MemoryContext LauncherContext = NULL;
static LauncherExecutor *executors = NULL;
static int	nexecutors = 0;
static bool database_missing_logged = false;
static bool register_failed_logged = false;

static void launcher_exit(int code, Datum arg);
static Oid	launcher_find_database(bool *refuses);
static bool launcher_start_executor(int index, Oid dbid);
static long launcher_tend_executors(void);

/*
 * A worker of the chainexec library running function, of type type
 * (pg_stat_activity.backend_type), connected to a database, started once
 * recovery has finished and restarted after restart seconds.
 */
static void
describe_worker(BackgroundWorker *worker, const char *function, const char *type, int restart)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "chainexec");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
}

/*
 * Register the launcher.  Called from _PG_init under
 * shared_preload_libraries; with chainexec.max_workers = 0 there is
 * nothing to launch.
 */
void
CeLauncherRegister(void)
{
	BackgroundWorker worker;

	if (ce_max_workers <= 0)
		return;

	describe_worker(&worker, "ce_launcher_main", "chainexec launcher", CE_LAUNCHER_RESTART_S);
	snprintf(worker.bgw_name, BGW_MAXLEN, "chainexec launcher");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/*
 * At exit: stop the executors this launcher started and withdraw from the
 * shared state.
 */
static void
launcher_exit(int code, Datum arg)
{
	int			i;

	for (i = 0; i < nexecutors; i++)
	{
		if (executors[i].handle != NULL)
			TerminateBackgroundWorker(executors[i].handle);
	}
	ce_shmem_set_launcher(0);
}

/*
 * Look up chainexec.database in the shared catalog pg_database, in a
 * transaction of its own.  Without a database of its own the launcher
 * cannot use the catalog's indexes, so it scans the heap, as the
 * autovacuum launcher does.  Returns InvalidOid when the database does
 * not exist, is being dropped, or does not accept connections (then
 * *refuses is set).
 */
static Oid
launcher_find_database(bool *refuses)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	Oid			dbid = InvalidOid;

	*refuses = false;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (strcmp(NameStr(db->datname), ce_database) != 0)
			continue;
		if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
			break;
		if (!db->datallowconn)
		{
			*refuses = true;
			break;
		}
		dbid = db->oid;
		break;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	CommitTransactionCommand();
	MemoryContextSwitchTo(oldcxt);
	return dbid;
}

/*
 * Register executor number `index` as a dynamic background worker
 * connected to database dbid.  Its handle is kept in LauncherContext.
 * Returns false when the postmaster has no free worker slot.
 */
static bool
launcher_start_executor(int index, Oid dbid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	MemoryContext oldcxt;
	bool		ok;

	describe_worker(&worker, "ce_executor_main", "chainexec executor", BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN, "chainexec executor %d", index + 1);
	worker.bgw_main_arg = Int32GetDatum(index);
	memcpy(worker.bgw_extra, &dbid, sizeof(Oid));
	worker.bgw_notify_pid = MyProcPid;

	oldcxt = MemoryContextSwitchTo(LauncherContext);
	ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(oldcxt);

	executors[index].last_start = GetCurrentTimestamp();
	if (!ok)
	{
		if (!register_failed_logged)
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("could not start chainexec executor %d", index + 1),
					 errdetail("No background worker slot is free; chainexec needs %d plus one for its launcher.",
							   ce_max_workers),
					 errhint("Raise max_worker_processes.  chainexec keeps trying every %d seconds.",
							 CE_RETRY_MS / 1000)));
		register_failed_logged = true;
		return false;
	}
	executors[index].handle = handle;
	return true;
}

/*
 * Make sure every executor slot has a running (or starting) executor.
 * Returns how long the launcher may sleep before it must look again.
 */
static long
launcher_tend_executors(void)
{
	long		nap = CE_LAUNCHER_NAP_MS;
	bool		need = false;
	bool		all_started = true;
	bool		refuses;
	TimestampTz now;
	Oid			dbid;
	int			i;

	for (i = 0; i < nexecutors; i++)
	{
		pid_t		pid;

		if (executors[i].handle == NULL)
		{
			need = true;
			continue;
		}
		switch (GetBackgroundWorkerPid(executors[i].handle, &pid))
		{
			case BGWH_STARTED:
			case BGWH_NOT_YET_STARTED:
				break;
			case BGWH_POSTMASTER_DIED:
				proc_exit(1);
				break;
			case BGWH_STOPPED:
				pfree(executors[i].handle);
				executors[i].handle = NULL;
				executors[i].exited = true;
				ereport(LOG,
						(errmsg("chainexec executor %d exited", i + 1)));
				need = true;
				break;
		}
	}
	if (!need)
		return nap;

	/*
	 * Executors stop when the database is dropped: look it up before every
	 * start.
	 */
	dbid = launcher_find_database(&refuses);
	ce_shmem_set_database(dbid);
	if (!OidIsValid(dbid))
	{
		if (!database_missing_logged && refuses)
			ereport(LOG,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("chainexec database \"%s\" does not accept connections", ce_database),
					 errdetail("The chainexec launcher waits for it and looks again every %d seconds.",
							   CE_RETRY_MS / 1000),
					 errhint("Allow connections with ALTER DATABASE ... ALLOW_CONNECTIONS true, or set chainexec.database to another database.")));
		else if (!database_missing_logged)
			ereport(LOG,
					(errcode(ERRCODE_UNDEFINED_DATABASE),
					 errmsg("chainexec database \"%s\" does not exist", ce_database),
					 errdetail("The chainexec launcher waits for it and looks again every %d seconds.",
							   CE_RETRY_MS / 1000),
					 errhint("Create the database, or set chainexec.database to the database where the chainexec extension is installed.")));
		database_missing_logged = true;
		return CE_RETRY_MS;
	}
	if (database_missing_logged)
		ereport(LOG,
				(errmsg("chainexec database \"%s\" found; starting executors",
						ce_database)));
	database_missing_logged = false;

	now = GetCurrentTimestamp();
	for (i = 0; i < nexecutors; i++)
	{
		TimestampTz allowed;

		if (executors[i].handle != NULL)
			continue;
		allowed = TimestampTzPlusMilliseconds(executors[i].last_start,
											  CE_RESTART_DELAY_MS);
		if (executors[i].last_start != 0 && now < allowed)
		{
			nap = Min(nap, Max(TimestampDifferenceMilliseconds(now, allowed), 1));
			continue;
		}
		if (executors[i].exited)
			ereport(LOG,
					(errmsg("restarting chainexec executor %d", i + 1)));
		executors[i].exited = false;
		if (!launcher_start_executor(i, dbid))
			nap = Min(nap, CE_RETRY_MS);
	}

	/* Say it again only after every executor could be started once. */
	for (i = 0; i < nexecutors; i++)
	{
		if (executors[i].handle == NULL)
			all_started = false;
	}
	if (all_started)
		register_failed_logged = false;
	return nap;
}

/*
 * Launcher entry point.  The loop has worker_spi's shape: handle
 * termination and configuration reload, do the work, then sleep on the
 * latch, which the postmaster sets when an executor starts or stops.
 */
void
ce_launcher_main(Datum main_arg)
{
	MemoryContext loop_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	/*
	 * A background worker ignores SIGHUP from its fork until it installs
	 * its handler here, so a reload signalled meanwhile (ALTER SYSTEM and
	 * pg_reload_conf() right after CREATE EXTENSION started the executors)
	 * was lost: the process kept the settings it was forked with until the
	 * next reload.  Read the configuration files once now, as a reload
	 * would (the executors do the same).
	 */
	ConfigReloadPending = true;
	BackgroundWorkerUnblockSignals();

	/* Shared catalogs only: pg_database is all the launcher reads. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LauncherContext = AllocSetContextCreate(TopMemoryContext,
											"chainexec launcher",
											ALLOCSET_DEFAULT_SIZES);
	loop_context = AllocSetContextCreate(LauncherContext,
										 "chainexec launcher loop",
										 ALLOCSET_DEFAULT_SIZES);
	nexecutors = ce_max_workers;
	executors = MemoryContextAllocZero(LauncherContext,
									   sizeof(LauncherExecutor) * Max(nexecutors, 1));

	before_shmem_exit(launcher_exit, (Datum) 0);
	ce_shmem_set_launcher(MyProcPid);

	ereport(LOG,
			(errmsg("chainexec launcher started"),
			 errdetail("It runs %d executors for database \"%s\".",
					   nexecutors, ce_database)));

	for (;;)
	{
		long		nap;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(loop_context);
		MemoryContextSwitchTo(loop_context);
		pgstat_report_activity(STATE_RUNNING, "checking executors");
		nap = launcher_tend_executors();
		/* ... and sleep no longer than until the next watchdog time */
		nap = ce_watchdog(nap);
		pgstat_report_activity(STATE_IDLE, "idle");
		MemoryContextSwitchTo(LauncherContext);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
