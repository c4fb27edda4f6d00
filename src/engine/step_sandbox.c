/*-------------------------------------------------------------------------
 *
 * step_sandbox.c
 *	  The step sandbox: the identity a step runs under (the owner, as a
 *	  security-restricted operation; in an executor, the session user
 *	  too), the hooks that watch what user code does while a step runs
 *	  (objects it creates, LOAD), the check of what it leaves behind, and
 *	  the reset of the executor's session after a step or an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/objectaccess.h"

#include "commands/sequence.h"
#include "executor/spi.h"

#include "miscadmin.h"

#include "tcop/utility.h"

#include "utils/syscache.h"

#include "step_int.h"

/*
 * Set by the executors: steps run in a background session that serves
 * every owner, so the step also takes the owner's session identity and
 * nothing it leaves in the session (advisory locks, sequence state)
 * outlives it.  Off in chain_run, whose steps run in the caller's session.
 */
bool		ce_step_isolated_session = false;

/* Whether the executor's own (authenticated) user is a superuser. */
static bool auth_is_superuser = true;

/* While user code of a step runs (the hooks below look at it). */
bool ce_step_active = false;

/* Objects created while the step ran, checked when it ends. */
List *ce_step_created = NIL;
MemoryContext ce_step_created_cxt = NULL;

/* A failure type for the error being raised, instead of its SQLSTATE's. */
const char *ce_step_failure_override = NULL;

/* The step is turning its outputs into jsonb: an error is the data's. */
bool ce_step_converting_outputs = false;

static object_access_hook_type prev_object_access_hook = NULL;

/*
 * Remember each object a step creates: temporary ones are refused when
 * the step ends (step_check_leftovers), whatever kind they are.
 */
static void
step_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				   int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_POST_CREATE && ce_step_active && subId == 0 &&
		ce_step_created_cxt != NULL && is_objectclass_supported(classId))
	{
		MemoryContext old = MemoryContextSwitchTo(ce_step_created_cxt);
		ObjectAddress *a = palloc(sizeof(ObjectAddress));

		a->classId = classId;
		a->objectId = objectId;
		a->objectSubId = 0;
		ce_step_created = lappend(ce_step_created, a);
		MemoryContextSwitchTo(old);
	}
}

static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/*
 * Refuse LOAD inside a step: a library's hooks would stay in the session
 * and run for every later step and transition.  (PostgreSQL refuses the
 * other session-lasting commands in a security-restricted operation.)
 */
static void
step_process_utility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	if (ce_step_active && IsA(pstmt->utilityStmt, LoadStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a step cannot load a library"),
				 errdetail("The library would stay loaded in the session after the step.")));
	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/* Install the hooks of the step sandbox (from _PG_init). */
void
CeStepInit(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = step_object_access;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = step_process_utility;
}

/*
 * Raise an error if the step left something in the session that would
 * outlive it: a temporary object of any kind (a function or operator in
 * pg_temp would be found before the catalog's by the next step of another
 * owner), or, in an executor, the temporary namespace itself.  Raised
 * inside the step's subtransaction, whose rollback removes them.
 * (SECURITY_RESTRICTED_OPERATION already refuses temporary tables and
 * types, LISTEN, PREPARE, cursors WITH HOLD, deferred triggers, SET ROLE
 * and SET SESSION AUTHORIZATION.)
 */
void
ce_step_check_leftovers(bool had_temp_namespace)
{
	ListCell   *lc;
	Oid			tempns;
	Oid			temptoast;

	CommandCounterIncrement();
	foreach(lc, ce_step_created)
	{
		ObjectAddress *a = (ObjectAddress *) lfirst(lc);
		int			cache = get_object_catcache_oid(a->classId);
		Oid			nsp;

		if (cache < 0 || !SearchSysCacheExists1(cache, ObjectIdGetDatum(a->objectId)))
			continue;
		nsp = get_object_namespace(a);
		if (OidIsValid(nsp) && isAnyTempNamespace(nsp))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("a step cannot create temporary objects"),
					 errdetail("The step created %s.", getObjectDescription(a, true)),
					 errhint("Temporary objects would outlive the step in the session; use a permanent schema.")));
	}
	GetTempNamespaceState(&tempns, &temptoast);
	if (ce_step_isolated_session && !had_temp_namespace && OidIsValid(tempns))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a step cannot create temporary objects"),
				 errdetail("The step created the temporary schema of a background executor.")));
}

/*
 * Enter the owner's identity for the step.  In an executor, the session
 * user becomes the owner too (session_user, is_superuser, RLS policies
 * on session_user see the owner); everywhere the step runs as a
 * security-restricted operation, as PostgreSQL runs a table owner's code
 * in VACUUM or REFRESH MATERIALIZED VIEW.  Call inside the step's
 * subtransaction.
 */
void
ce_step_enter_owner(Oid owner, Oid save_user, int save_sec)
{
	if (ce_step_isolated_session)
	{
		/* known in a transaction, used after an error too */
		auth_is_superuser = superuser_arg(GetAuthenticatedUserId());
		/* the session user may change only outside any restriction */
		SetUserIdAndSecContext(save_user, 0);
		SetSessionAuthorization(owner, superuser_arg(owner));
	}
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * Back to the session's own identity after a step, and, in an executor,
 * drop the session state a step can leave whatever it is allowed to do:
 * session advisory locks (the executor takes none of its own) and the
 * sequences' currval/lastval.
 */
void
ce_step_leave_owner(Oid save_user, int save_sec)
{
	if (ce_step_isolated_session)
	{
		SetUserIdAndSecContext(save_user, 0);
		if (GetSessionUserId() != GetAuthenticatedUserId())
			SetSessionAuthorization(GetAuthenticatedUserId(), auth_is_superuser);
		LockReleaseSession(USER_LOCKMETHOD);
		ResetSequenceCaches();
	}
	SetUserIdAndSecContext(save_user, save_sec);
}

/*
 * After an error thrown out of a transition: give the executor session
 * its own identity back, whatever step was running (no transaction).
 */
void
ce_step_reset_session(void)
{
	ce_step_active = false;
	ce_step_converting_outputs = false;
	ce_step_failure_override = NULL;
	ce_step_created = NIL;
	if (!ce_step_isolated_session)
		return;
	if (GetSessionUserId() != GetAuthenticatedUserId())
		SetSessionAuthorization(GetAuthenticatedUserId(), auth_is_superuser);
	LockReleaseSession(USER_LOCKMETHOD);
	ResetSequenceCaches();
}

