/*-------------------------------------------------------------------------
 *
 * drop.c
 *	  DROP EXTENSION chainexec: remove what belongs to chainexec outside
 *	  the extension, before the extension goes.
 *
 * The pg_cron jobs that chain_schedule made (recorded in
 * chainexec.schedules) are rows of pg_cron's table, not members of
 * chainexec: left behind they would call functions that no longer exist,
 * every time they fire.  An event trigger on ddl_command_start for DROP
 * EXTENSION (chainexec_drop_extension, a member of the extension, so it
 * goes with it) unschedules them when the statement drops chainexec, in
 * the statement's transaction: if the DROP fails, they stay.
 *
 * What stays, by design: the role chainexec_admin (roles belong to the
 * cluster, and chainexec in another database may use it), the schema
 * chainexec (PostgreSQL keeps the schema an extension was created in),
 * and $PGDATA/chainexec.inflight (inflight.c; the server's, not the
 * database's).  The running executors wait for the extension to come
 * back (engine_xact.c makes the DROP wait for their transitions).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(ce_on_drop_extension);

/*
 * Whether the DROP statement drops the extension chainexec.
 */
static bool
drops_chainexec(Node *parsetree)
{
	DropStmt   *stmt;
	ListCell   *lc;

	if (parsetree == NULL || !IsA(parsetree, DropStmt))
		return false;
	stmt = (DropStmt *) parsetree;
	if (stmt->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *name = lfirst(lc);

		if (IsA(name, String) && strcmp(strVal(name), "chainexec") == 0)
			return true;
	}
	return false;
}

/*
 * chainexec._on_drop_extension() RETURNS event_trigger, fired at
 * ddl_command_start of DROP EXTENSION: when the statement drops chainexec
 * and pg_cron is installed, unschedule the pg_cron jobs chainexec made
 * (those of the dropping role only, unless it is a superuser, as pg_cron
 * allows).
 */
Datum
ce_on_drop_extension(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	int			level;
	int			ret;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"_on_drop_extension\" must be fired by an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!drops_chainexec(trigdata->parsetree))
		PG_RETURN_VOID();
	if (!OidIsValid(get_extension_oid("pg_cron", true)))
		PG_RETURN_VOID();

	SPI_connect();
	/* no function or operator of the dropping session may stand in */
	level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	ret = SPI_execute(superuser() ?
					  "SELECT cron.unschedule(j.jobid) FROM cron.job j "
					  "WHERE j.jobid IN (SELECT s.cron_job_id FROM chainexec.schedules s)" :
					  "SELECT cron.unschedule(j.jobid) FROM cron.job j "
					  "WHERE j.jobid IN (SELECT s.cron_job_id FROM chainexec.schedules s) "
					  "AND j.username = current_user",
					  false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not unschedule chainexec's pg_cron jobs: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
		ereport(NOTICE,
				(errmsg("unscheduled %llu pg_cron job%s of chainexec",
						(unsigned long long) SPI_processed, SPI_processed == 1 ? "" : "s")));
	AtEOXact_GUC(false, level);
	SPI_finish();
	PG_RETURN_VOID();
}
