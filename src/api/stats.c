/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  chain_stats(window_seconds): the operational numbers of this database,
 *	  one row per organization (the view chainexec.stats): backlog (ready
 *	  lines, the age of the oldest), running lines and executor slots busy
 *	  (read from the shared-memory slots of the executors and of CALL
 *	  chain_run sessions), waiting lines, due timers, and lines ended and
 *	  failed per second over a recent window.
 *
 * Tenancy: superusers and members of chainexec_admin or pg_monitor see
 * every organization (the numbers are counts, no values); any other role
 * sees the numbers of what row-level security lets it read: the executions
 * its role (or a role it is a member of) owns, in the session's
 * organization.  The first read the tables as the extension's owner, the
 * others as themselves.  The session's organization always has a row.
 *
 * Cost: one scan of the lines and one of the executions per call (there is
 * no index on end times, and adding one would cost every transition); the
 * waiting lines are found by their index.  Meant for a scrape every few
 * seconds, not for a loop.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "explain.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(ce_chain_stats);

#define STATS_COLS 15

/*
 * $1 uuid[]: executions of the executors' running slots (one element per
 * slot), $2 uuid[]: those of chain_run sessions, $3 the window in seconds,
 * $4 uuid[] and $5 int[]: the execution and line number of every running
 * slot.  The session's organization always has a row.  A running line is
 * still ready in its table (its transition commits when the step ends):
 * it counts as running, not as ready.
 */
static const char *const q_stats =
"WITH w AS (SELECT now() - $3 * interval '1 second' AS since), "
"running AS (SELECT DISTINCT e, n FROM unnest($4, $5) AS r(e, n)), "
"lines AS ("
"  SELECT organization_id, "
"    count(*) FILTER (WHERE status = 'ready' AND not_before <= now() AND r.e IS NULL) AS ready, "
"    count(*) FILTER (WHERE status = 'ready' AND not_before > now() AND r.e IS NULL) AS delayed, "
"    count(*) FILTER (WHERE status = 'waiting') AS waiting, "
"    count(*) FILTER (WHERE status = 'waiting' AND not_before <= now()) AS timers_due, "
"    extract(epoch FROM now() - min(not_before) FILTER (WHERE status = 'ready' AND not_before <= now() AND r.e IS NULL))::float8 AS oldest, "
"    count(*) FILTER (WHERE finished_at >= (SELECT since FROM w) "
"                        OR (status = 'ready' AND error IS NOT NULL AND started_at >= (SELECT since FROM w))) AS ended, "
"    count(*) FILTER (WHERE (status = 'failed' AND finished_at >= (SELECT since FROM w)) "
"                        OR (status = 'ready' AND error IS NOT NULL AND started_at >= (SELECT since FROM w))) AS failed "
"  FROM chainexec.universal_transaction_lines "
"  LEFT JOIN running r ON r.e = transaction_id AND r.n = line_number "
"  GROUP BY organization_id), "
"timers AS ("
"  SELECT l.organization_id, count(*) AS n "
"  FROM chainexec.universal_transaction_lines l "
"  JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id "
"  JOIN chainexec.chains c ON c.organization_id = t.organization_id AND c.chain_id = t.chain_id "
"                         AND c.version = t.chain_version "
"  WHERE l.status = 'waiting' AND EXISTS ("
"    SELECT FROM jsonb_array_elements(c.definition->'steps') s "
"    WHERE (s->>'id' = l.step_id::text AND s->>'type' = 'wait') "
"       OR (s->'fallbackStep'->>'id' = l.step_id::text AND s->'fallbackStep'->>'type' = 'wait')) "
"  GROUP BY 1), "
"execs AS ("
"  SELECT organization_id, "
"    count(*) AS active, "
"    sum(cardinality(array_positions($1, id))) AS executors_busy, "
"    sum(cardinality(array_positions($2, id))) AS sessions_busy "
"  FROM chainexec.universal_transactions "
"  WHERE status IN ('pending', 'running', 'waiting', 'paused', 'compensating') "
"  GROUP BY organization_id), "
"orgs AS (SELECT organization_id FROM lines UNION SELECT organization_id FROM execs UNION SELECT chainexec.current_organization()) "
"SELECT o.organization_id, coalesce(e.active, 0), coalesce(l.ready, 0), coalesce(l.delayed, 0), "
"  coalesce(e.executors_busy + e.sessions_busy, 0), "
"  coalesce(l.waiting, 0) - coalesce(t.n, 0), coalesce(t.n, 0), "
"  coalesce(l.oldest, 0), coalesce(l.timers_due, 0), "
"  coalesce(l.ended, 0)::float8 / $3, coalesce(l.failed, 0)::float8 / $3, "
"  coalesce(e.executors_busy, 0)::int, coalesce(e.sessions_busy, 0)::int "
"FROM orgs o LEFT JOIN lines l USING (organization_id) LEFT JOIN timers t USING (organization_id) "
"LEFT JOIN execs e USING (organization_id) ORDER BY o.organization_id";

/* Whether the current role sees every organization's numbers. */
static bool
stats_sees_all(void)
{
	Oid			me = GetUserId();
	Oid			admin = get_role_oid("chainexec_admin", true);

	return superuser() || has_privs_of_role(me, ROLE_PG_MONITOR) ||
		(OidIsValid(admin) && is_member_of_role(me, admin));
}

static Oid
extension_owner(void)
{
	bool		isnull;

	if (SPI_execute("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'chainexec'", true, 1)
		!= SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"chainexec\" is not installed in this database")));
	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * chain_stats(window_seconds int DEFAULT 60) RETURNS TABLE (...)
 */
Datum
ce_chain_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			window_s = PG_ARGISNULL(0) ? 60 : PG_GETARG_INT32(0);
	CeRunningLine *running;
	int			nrunning;
	int			executors;
	int			executors_alive;
	Datum	   *exec_ids;
	Datum	   *session_ids;
	int			nexec = 0;
	int			nsession = 0;
	Datum		args[5];
	Oid			types[5] = {UUIDARRAYOID, UUIDARRAYOID, INT4OID, UUIDARRAYOID, INT4ARRAYOID};
	Datum	   *all_ids;
	Datum	   *all_lines;
	int			level;
	bool		all;
	Oid			save_user;
	int			save_sec;
	char	   *dbname;
	uint64		r;
	int			i;

	if (window_s < 1 || window_s > 86400)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window must be between 1 and 86400 seconds, not %d", window_s)));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	/* the slots first: a copy taken under the lock */
	nrunning = ce_running_lines(&running, &executors, &executors_alive);
	exec_ids = palloc(sizeof(Datum) * Max(nrunning, 1));
	all_ids = palloc(sizeof(Datum) * Max(nrunning, 1));
	all_lines = palloc(sizeof(Datum) * Max(nrunning, 1));
	session_ids = palloc(sizeof(Datum) * Max(nrunning, 1));
	for (i = 0; i < nrunning; i++)
	{
		pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

		memcpy(u, &running[i].execution, sizeof(pg_uuid_t));
		all_ids[i] = UUIDPGetDatum(u);
		all_lines[i] = Int32GetDatum(running[i].line);
		if (running[i].executor)
			exec_ids[nexec++] = UUIDPGetDatum(u);
		else
			session_ids[nsession++] = UUIDPGetDatum(u);
	}
	args[0] = PointerGetDatum(construct_array(exec_ids, nexec, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	args[1] = PointerGetDatum(construct_array(session_ids, nsession, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	args[2] = Int32GetDatum(window_s);
	args[3] = PointerGetDatum(construct_array(all_ids, nrunning, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	args[4] = PointerGetDatum(construct_array(all_lines, nrunning, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	dbname = get_database_name(MyDatabaseId);
	all = stats_sees_all();

	level = ce_shape_path_begin();
	GetUserIdAndSecContext(&save_user, &save_sec);
	if (all)
		SetUserIdAndSecContext(extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_with_args(q_stats, 5, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the statistics");
	SetUserIdAndSecContext(save_user, save_sec);
	ce_shape_path_end(level);

	for (r = 0; r < SPI_processed; r++)
	{
		Datum		values[STATS_COLS];
		bool		nulls[STATS_COLS];
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int			c;

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(dbname);
		/* organization_id, then twelve numbers, in the query's order */
		for (c = 1; c <= 13; c++)
		{
			bool		isnull;

			values[c] = SPI_getbinval(tup, desc, c, &isnull);
			nulls[c] = isnull;
		}
		values[14] = Int32GetDatum(executors);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
