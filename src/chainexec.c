/*-------------------------------------------------------------------------
 *
 * chainexec.c
 *	  Module entry point: _PG_init, settings (GUCs).
 *
 * chainexec runs multi-step workflows ("chains") inside the database.  The
 * SQL-visible settings are defined first, so that chain_run works in any
 * session even when the library is not preloaded; the shared memory and
 * background workers exist only under shared_preload_libraries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/uuid.h"

#include "chainexec.h"
#include "compat.h"
#include "step.h"
#include "bridge.h"

PG_MODULE_MAGIC;

char	   *ce_database = NULL;
int			ce_max_workers = 2;
int			ce_poll_interval = 1000;
bool		ce_enabled = true;
char	   *ce_notify_channel = NULL;
bool		ce_notify_public = false;
int			ce_max_context_bytes = 1024 * 1024;
int			ce_max_crash_attempts = 3;
int			ce_max_chain_depth = 8;
int			ce_step_grace_period = 5000;
int			ce_group_commit = 1;
int			ce_group_commit_window = 5;
char	   *ce_organization_id = NULL;
static char *ce_internal = NULL;
bool		ce_preloaded = false;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(ce_current_organization);

/*
 * chainexec.current_organization() RETURNS uuid: the organization (tenant)
 * the session works in, chainexec.organization_id, or the all-zero
 * default when it is empty.  In C, so that the queries and row-level
 * security policies that call it neither plan a SQL function's body at
 * every statement nor, inlined, hold a CASE of STABLE functions (which
 * Citus refuses in the conditions of an UPDATE).
 */
Datum
ce_current_organization(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *org = palloc(sizeof(pg_uuid_t));

	ce_current_org(org);
	PG_RETURN_UUID_P(org);
}

static bool
check_organization_id(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;
	int			i;
	int			hex = 0;

	if (s == NULL || s[0] == '\0')
		return true;
	for (i = 0; s[i] != '\0'; i++)
	{
		if (isxdigit((unsigned char) s[i]))
			hex++;
		else if (s[i] == '-' && (i == 8 || i == 13 || i == 18 || i == 23))
			continue;
		else
			break;
	}
	/* 32 hex digits, hyphenated 8-4-4-4-12 or not at all */
	if (i != 32 && i != 36)
		hex = 0;
	if (s[i] != '\0' || hex != 32)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("invalid organization id \"%s\"", s);
		GUC_check_errhint("An organization id is a uuid, such as 00000000-0000-0000-0000-000000000000.");
		return false;
	}
	return true;
}

static bool
check_notify_channel(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errmsg("chainexec.notify_channel must have 1 to %d characters", NAMEDATALEN - 1);
		return false;
	}
	return true;
}

/*
 * Define the settings.  The ones that shape the background workers are
 * PGC_POSTMASTER and only meaningful under shared_preload_libraries.
 */
static void
CeGucInit(void)
{
	/*
	 * The settings that shape the background workers exist only under
	 * shared_preload_libraries: a PGC_POSTMASTER setting cannot be defined
	 * after start-up, and chain_run must work without preloading.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("chainexec.database",
								   gettext_noop("Database whose chains the background workers run."),
								   NULL,
								   &ce_database,
								   "postgres",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);

		DefineCustomIntVariable("chainexec.max_workers",
								gettext_noop("Number of executor background workers."),
								NULL,
								&ce_max_workers,
								2, 0, 64,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
	}

	DefineCustomIntVariable("chainexec.poll_interval",
							gettext_noop("Longest time an idle executor sleeps before checking timers and retries."),
							gettext_noop("New work wakes executors at once; this bounds the wait for due timers."),
							&ce_poll_interval,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("chainexec.enabled",
							 gettext_noop("Whether the executors dispatch work."),
							 NULL,
							 &ce_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("chainexec.notify_channel",
							   gettext_noop("NOTIFY channel on which execution events are sent."),
							   NULL,
							   &ce_notify_channel,
							   "chainexec",
							   PGC_SIGHUP,
							   0,
							   check_notify_channel, NULL, NULL);

	DefineCustomBoolVariable("chainexec.notify_public",
							 gettext_noop("Whether execution events go to chainexec.notify_channel itself, which every role can LISTEN to."),
							 gettext_noop("Off: each event goes to its owner role's and its organization's admin channel "
										  "(see chainexec.chain_listen()).  On only where every role may see every event."),
							 &ce_notify_public,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("chainexec.max_context_bytes",
							gettext_noop("Largest size of an execution's variables (its context)."),
							NULL,
							&ce_max_context_bytes,
							1024 * 1024, 1024, 256 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chainexec.max_crash_attempts",
							gettext_noop("Attempts of a step that may end their executor before the step fails."),
							gettext_noop("An attempt whose executor died (terminated, killed, out of memory, crashed) "
										 "counts with failure type worker_crashed; after this many in a row the "
										 "step fails and its onFailure applies."),
							&ce_max_crash_attempts,
							3, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chainexec.max_chain_depth",
							gettext_noop("How deep child executions (steps of type \"chain\") may nest."),
							gettext_noop("A step that would start a child deeper than this fails with "
										 "failure type validation_failed; a root execution has depth 0."),
							&ce_max_chain_depth,
							8, 1, 64,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chainexec.step_grace_period",
							gettext_noop("Time a step may keep running after its timeout or a cancel before its executor is terminated."),
							gettext_noop("A step that ignores its timeoutMs or chain_cancel (by catching the cancel) "
										 "would keep its executor forever; after this grace the launcher terminates "
										 "the executor and the attempt counts as worker_crashed."),
							&ce_step_grace_period,
							5000, 100, 24 * 60 * 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chainexec.group_commit",
							gettext_noop("Most step transitions an executor commits in one transaction; 1 commits each alone."),
							gettext_noop("Each transition of a group runs in a subtransaction of its own and stays "
										 "all-or-nothing; the group commits once, so a WAL flush serves them all, "
										 "and each waits for the group's commit."),
							&ce_group_commit,
							1, 1, 16,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chainexec.group_commit_window",
							gettext_noop("Time after which a group of step transitions starts no new one and commits."),
							gettext_noop("The first transition of a group waits at most this long, plus the last "
										 "transition, for its commit."),
							&ce_group_commit_window,
							5, 0, 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("chainexec.organization_id",
							   gettext_noop("Organization (tenant) the session works in; empty means the default organization."),
							   NULL,
							   &ce_organization_id,
							   "",
							   PGC_USERSET,
							   0,
							   check_organization_id, NULL, NULL);

	DefineCustomStringVariable("chainexec.internal",
							   gettext_noop("Set by chainexec itself for internal maintenance."),
							   NULL,
							   &ce_internal,
							   "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
}

/*
 * Module load.  Settings first; then, only when preloaded, shared memory
 * and the launcher.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	CeGucInit();
	CeStepInit();

	if (process_shared_preload_libraries_in_progress)
	{
		ce_preloaded = true;
		CeShmemInit();
		CeLauncherRegister();
	}

	MarkGUCPrefixReserved("chainexec");
}
