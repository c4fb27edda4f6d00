/*-------------------------------------------------------------------------
 *
 * run.c
 *	  chain_run: an execution started and driven to its end in the calling
 *	  session, one transaction per step transition (the procedure commits
 *	  after each), sleeping out back-offs and wait timers between them
 *	  while holding no snapshot; the children of its chain steps are
 *	  driven along.  The executors leave such an execution to the session
 *	  (insession.c) and take it over if the session ends first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/int.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "chainexec.h"
#include "compose.h"
#include "bridge.h"
#include "plancache.h"
#include "procedure.h"
#include "engine.h"
#include "engine_xact.h"
#include "insession.h"
#include "executor.h"
#include "jsonschema.h"
#include "events.h"
#include "execute.h"
#include "result.h"
#include "shmem.h"
#include "status.h"
#include "step.h"

PG_FUNCTION_INFO_V1(ce_chain_run);

/*
 * The queries of chain_run's own, prepared once per backend (ce_run_query):
 * a 10-step chain_run spent a seventh of its time parsing and planning them.
 */
static CeQuery q_state = {
	"SELECT t.status, "
	"EXISTS (SELECT FROM chainexec.universal_transaction_lines l "
	"        WHERE l.organization_id = $1 AND l.transaction_id = ANY($3) "
	"          AND l.status IN ('ready', 'waiting') AND l.not_before <= clock_timestamp()), "
	"EXISTS (SELECT FROM chainexec.universal_transaction_lines l "
	"        WHERE l.organization_id = $1 AND l.transaction_id = ANY($3) "
	"          AND (l.status = 'ready' OR (l.status = 'waiting' AND l.not_before < 'infinity'))) "
	"FROM chainexec.universal_transactions t WHERE t.organization_id = $1 AND t.id = $2",
	3, {UUIDOID, UUIDOID, UUIDARRAYOID}};

/* chain_result(id) through SPI, as the caller. */
static Jsonb *
fetch_result(pg_uuid_t *id)
{
	return DatumGetJsonbPCopy(ce_result_in_spi(UUIDPGetDatum(id), false));
}

/*
 * Status of an execution and whether lines of it (or of the children it
 * waits for, family: ids) are due now, through SPI.
 */
static char *
execution_state(pg_uuid_t *org, pg_uuid_t *id, ArrayType *family, bool *due_now, bool *any_ready)
{
	Datum		args[3];
	int			ret;
	bool		isnull;
	char	   *status;
	Datum		d;

	args[0] = UUIDPGetDatum(org);
	args[1] = UUIDPGetDatum(id);
	args[2] = PointerGetDatum(family);
	ret = ce_run_query(&q_state, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "execution vanished");
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*due_now = DatumGetBool(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	*any_ready = DatumGetBool(d);
	return status;
}

/*
 * Begin a transaction of chain_run's loop (SPI_commit has just started
 * it): READ COMMITTED, whatever default_transaction_isolation says, and
 * the extension share-locked (engine_xact.c).
 */
static void
inline_xact_begin(void)
{
	ce_xact_read_committed();
	if (!ce_lock_extension(NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"chainexec\" was dropped while chain_run was running")));

	/*
	 * On Citus, the nodes that run a query for this session see its
	 * organization only through a SET LOCAL, which Citus sends along
	 * (citus.propagate_set_commands = 'local'); chain_run cannot be called
	 * in a transaction block, so the organization is a session setting:
	 * set it again, locally, in each of chain_run's transactions.
	 */
	if (ce_organization_id && ce_organization_id[0] && ce_citus_mode())
	{
		char	   *cmd = psprintf("SET LOCAL chainexec.organization_id = %s",
								   quote_literal_cstr(ce_organization_id));

		if (SPI_execute(cmd, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not set chainexec.organization_id locally");
		pfree(cmd);
	}
}

/*
 * The loop of chain_run: transitions of one execution, a commit after each,
 * sleeping out back-offs and timers with no snapshot held, until the
 * execution ends or only someone else can move it on.  Leaves SPI
 * connected (non-atomic) in a fresh transaction.
 */
/* The live executions of the family of root (root first), as an array. */
static ArrayType *
family_array(pg_uuid_t *org, pg_uuid_t *root, List **ids)
{
	List	   *fam = ce_family(org, root);
	Datum	   *d = palloc(sizeof(Datum) * (list_length(fam) + 1));
	ListCell   *lc;
	int			n = 0;

	d[n++] = UUIDPGetDatum(root);
	foreach(lc, fam)
	{
		if (memcmp(lfirst(lc), root, sizeof(pg_uuid_t)) != 0)
			d[n++] = UUIDPGetDatum(lfirst(lc));
	}
	if (ids)
	{
		int			i;

		*ids = NIL;
		for (i = 1; i < n; i++)
			*ids = lappend(*ids, DatumGetUUIDP(d[i]));
	}
	return construct_array(d, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
}

static bool
uuid_listed(List *l, pg_uuid_t *u)
{
	ListCell   *lc;

	foreach(lc, l)
		if (memcmp(lfirst(lc), u, sizeof(pg_uuid_t)) == 0)
			return true;
	return false;
}

/*
 * One transition of each live child execution of the root that this
 * session drives (steps of type "chain" of a chain_run execution run in
 * the session too).  Returns whether any did something; *driven collects
 * the children (session-locked).
 */
static bool
run_children(pg_uuid_t *org, pg_uuid_t *root, List **driven)
{
	List	   *kids;
	ListCell   *lc;
	bool		any = false;
	int			level;
	MemoryContext cxt = CurrentMemoryContext;

	PushActiveSnapshot(GetTransactionSnapshot());
	level = ce_fixed_search_path();
	(void) family_array(org, root, &kids);
	AtEOXact_GUC(false, level);
	PopActiveSnapshot();
	foreach(lc, kids)
	{
		pg_uuid_t  *kid = lfirst(lc);
		CeTransitionResult r;

		if (!uuid_listed(*driven, kid))
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
			pg_uuid_t  *copy = palloc(sizeof(pg_uuid_t));

			memcpy(copy, kid, sizeof(pg_uuid_t));
			*driven = lappend(*driven, copy);
			MemoryContextSwitchTo(old);
			ce_session_drive(copy);
		}
		PushActiveSnapshot(GetTransactionSnapshot());
		r = ce_transition_in_xact(kid, org);
		PopActiveSnapshot();
		SPI_commit();
		inline_xact_begin();
		MemoryContextSwitchTo(cxt);
		if (r == CE_TR_DONE)
			any = true;
	}
	return any;
}

static void
run_inline(pg_uuid_t *org_p, pg_uuid_t *id_p, List **driven)
{
	pg_uuid_t	org = *org_p;
	pg_uuid_t	id = *id_p;

	SPI_connect_ext(SPI_OPT_NONATOMIC);
	SPI_commit();
	inline_xact_begin();

	for (;;)
	{
		CeTransitionResult r;
		char	   *status;
		bool		due_now;
		bool		any_ready;
		TimestampTz next;
		long		sleep_ms;
		int			level;

		CHECK_FOR_INTERRUPTS();
		PushActiveSnapshot(GetTransactionSnapshot());
		r = ce_transition_in_xact(&id, &org);
		PopActiveSnapshot();
		SPI_commit();
		inline_xact_begin();
		if (r == CE_TR_DONE)
			continue;
		if (run_children(&org, &id, driven))
			continue;

		PushActiveSnapshot(GetTransactionSnapshot());
		level = ce_fixed_search_path();
		status = execution_state(&org, &id, family_array(&org, &id, NULL), &due_now, &any_ready);
		if (ce_exec_status_is_terminal(ce_exec_status_from_name(status)) || !any_ready)
		{
			AtEOXact_GUC(false, level);
			PopActiveSnapshot();
			break;				/* ended, or only someone else can go on */
		}
		if (due_now)
		{
			/* a due line is locked by an executor: give it a moment */
			sleep_ms = 2;
		}
		else
		{
			next = ce_next_due_in_xact(&id, &org);
			if (next == DT_NOEND)
				sleep_ms = 100;
			else
			{
				long		secs;
				int			usecs;

				TimestampDifference(GetCurrentTimestamp(), next, &secs, &usecs);
				sleep_ms = secs * 1000 + usecs / 1000 + 1;
			}
		}
		AtEOXact_GUC(false, level);
		PopActiveSnapshot();
		SPI_commit();
		sleep_ms = Min(Max(sleep_ms, 1), 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		inline_xact_begin();
	}

}

/*
 * CALL chain_run(chain_id text, input jsonb, options jsonb, INOUT result jsonb)
 *
 * Runs the execution to its end in this session, one transaction per step
 * transition.  Between transactions it sleeps out back-offs and wait
 * timers holding no snapshot.  Returns early, with status waiting, when
 * only someone else can move the execution on (an external step).
 */
Datum
ce_chain_run(PG_FUNCTION_ARGS)
{
	pg_uuid_t	org;
	pg_uuid_t	id;
	Jsonb	   *result = NULL;
	MemoryContext callcxt = CurrentMemoryContext;
	volatile bool driving = false;
	List	   *volatile driven = NIL;

	ce_procedure_check_nonatomic(fcinfo, "chain_run", "chain_run commits after every step.",
								 "Call it outside BEGIN ... COMMIT, or start the chain with chainexec.chain_execute().");

	ce_inline_runner = true;
	PG_TRY();
	{
		/* the executors leave the execution to this session (insession.c) */
		if (ce_start_execution(fcinfo, &org, &id))
		{
			ce_session_drive(&id);
			driving = true;
		}
		run_inline(&org, &id, (List **) &driven);
		if (driving)
		{
			ListCell   *lc;

			/* ended, or waits for someone else: the workers go on */
			ce_session_hand_over(&org, &id);
			foreach(lc, driven)
				ce_session_hand_over(&org, lfirst(lc));
		}
	}
	PG_FINALLY();
	{
		ListCell   *lc;

		ce_inline_runner = false;
		if (driving)
			ce_session_release(&id);
		foreach(lc, driven)
			ce_session_release(lfirst(lc));
	}
	PG_END_TRY();

	PushActiveSnapshot(GetTransactionSnapshot());
	result = fetch_result(&id);
	PopActiveSnapshot();
	PG_RETURN_DATUM(ce_procedure_result(callcxt, result));
}
