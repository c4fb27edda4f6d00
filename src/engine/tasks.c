/*-------------------------------------------------------------------------
 *
 * tasks.c
 *	  People in the loop: external steps with requiredRoles and
 *	  approvalThreshold.
 *
 * Only members of one of a step's requiredRoles (and of chainexec_admin)
 * complete or fail it, whoever owns the execution: the owner who is
 * neither gets 42501 too.  Every decision is a row of step_approvals
 * (role = the calling role, time, output or message).  With
 * approvalThreshold N the step completes when N distinct roles have
 * approved the same attempt; their outputs (each filtered by the step's
 * outputVariables) are merged in the order of the calls, a later value
 * replacing an earlier one.  One rejection (chain_step_fail) fails the
 * attempt (its retries and onFailure apply).  A role decides once per
 * attempt.
 *
 * When the step starts waiting, its line records the roles as they
 * resolve then (required_roles) and approvals_needed, which the view
 * chainexec.tasks reads.  The right to decide is checked against the
 * step's requiredRoles, resolved at the call.
 *
 * Everything runs inside the caller's transaction with SPI connected, as
 * the extension owner, under the bookkeeping search_path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "chainexec.h"
#include "engine.h"
#include "engine_int.h"
#include "tasks.h"

static CeQuery q_task_set = {
	"UPDATE chainexec.universal_transaction_lines SET required_roles = $4::pg_catalog.regrole[], "
	"approvals_needed = $5 "
	"WHERE organization_id = $1 AND transaction_id = $2 AND line_number = $3",
	5, {UUIDOID, UUIDOID, INT4OID, OIDARRAYOID, INT4OID}};

static CeQuery q_task_decided = {
	"SELECT decision FROM chainexec.step_approvals WHERE organization_id = $1 AND transaction_id = $2 "
	"AND line_number = $3 AND attempt = $4 AND role = $5::pg_catalog.regrole",
	5, {UUIDOID, UUIDOID, INT4OID, INT4OID, OIDOID}};

static CeQuery q_task_insert = {
	"INSERT INTO chainexec.step_approvals (organization_id, transaction_id, line_number, attempt, "
	"role, decision, seq, output, message) "
	"SELECT $1, $2, $3, $4, $5::pg_catalog.regrole, $6, coalesce(max(seq), 0) + 1, $7, $8 "
	"FROM chainexec.step_approvals WHERE organization_id = $1 AND transaction_id = $2 "
	"AND line_number = $3 AND attempt = $4",
	8, {UUIDOID, UUIDOID, INT4OID, INT4OID, OIDOID, TEXTOID, JSONBOID, TEXTOID}};

static CeQuery q_task_approved = {
	"SELECT coalesce(jsonb_object_agg(e.key, e.value ORDER BY a.seq), '{}') "
	"FROM chainexec.step_approvals a "
	"LEFT JOIN LATERAL jsonb_each(coalesce(a.output, '{}')) e ON true "
	"WHERE a.organization_id = $1 AND a.transaction_id = $2 AND a.line_number = $3 "
	"AND a.attempt = $4 AND a.decision = 'approved'",
	4, {UUIDOID, UUIDOID, INT4OID, INT4OID}};

static CeQuery q_task_count = {
	"SELECT count(*) FROM chainexec.step_approvals WHERE organization_id = $1 AND transaction_id = $2 "
	"AND line_number = $3 AND attempt = $4 AND decision = 'approved'",
	4, {UUIDOID, UUIDOID, INT4OID, INT4OID}};

void
ce_task_start(ExecRow *ex, LineRow *line, const CeStep *step)
{
	Datum	   *oids;
	Datum		v[5];
	int			i;
	int			n = 0;

	if (step->nrequired_roles == 0)
		return;
	oids = palloc(sizeof(Datum) * step->nrequired_roles);
	for (i = 0; i < step->nrequired_roles; i++)
	{
		Oid			r = get_role_oid(step->required_roles[i], true);

		if (OidIsValid(r))
			oids[n++] = ObjectIdGetDatum(r);
	}
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line->line_number);
	v[3] = PointerGetDatum(construct_array(oids, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	v[4] = Int32GetDatum(Max(step->approval_threshold, 1));
	ce_run_query(&q_task_set, v, NULL, false, 0);
}

/* Whether role caller may decide on the step (it has requiredRoles). */
static bool
may_decide(const CeStep *step, Oid caller)
{
	Oid			admin = get_role_oid("chainexec_admin", true);
	int			i;

	if (OidIsValid(admin) && is_member_of_role(caller, admin))
		return true;
	for (i = 0; i < step->nrequired_roles; i++)
	{
		Oid			r = get_role_oid(step->required_roles[i], true);

		if (OidIsValid(r) && is_member_of_role(caller, r))
			return true;
	}
	return false;
}

bool
ce_task_check_caller(ExecRow *ex, const CeStep *step, int step_id, Oid caller,
					 bool may_control, bool ok)
{
	StringInfoData roles;
	int			i;

	if (step == NULL || step->nrequired_roles == 0)
	{
		if (!may_control)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("execution %s does not exist", ex->id_s),
					 errhint("It may belong to another organization or role, or have been removed by chain_cleanup().")));
		return false;
	}
	if (may_decide(step, caller))
		return true;
	initStringInfo(&roles);
	for (i = 0; i < step->nrequired_roles; i++)
	{
		if (i > 0)
			appendStringInfoString(&roles, i == step->nrequired_roles - 1 ? " or " : ", ");
		appendStringInfo(&roles, "\"%s\"", step->required_roles[i]);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s step %d of execution %s", ok ? "complete" : "fail",
					step_id, ex->id_s),
			 errhint("Only members of %s (or of chainexec_admin) may complete or fail it.", roles.data)));
	return false;
}

/* The attempt's decision by caller must not exist yet. */
static void
check_not_decided(ExecRow *ex, LineRow *line, Oid caller)
{
	Datum		v[5];

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line->line_number);
	v[3] = Int32GetDatum(line->attempt);
	v[4] = ObjectIdGetDatum(caller);
	ce_run_query(&q_task_decided, v, NULL, false, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role \"%s\" has already decided on step %d of execution %s",
						GetUserNameFromId(caller, false), line->step_id, ex->id_s),
				 errhint("Each role decides once: approvalThreshold counts distinct roles.")));
}

static void
record(ExecRow *ex, LineRow *line, Oid caller, const char *decision, Jsonb *output, const char *message)
{
	Datum		v[8];
	char		nulls[8] = "        ";

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line->line_number);
	v[3] = Int32GetDatum(line->attempt);
	v[4] = ObjectIdGetDatum(caller);
	v[5] = CStringGetTextDatum(decision);
	v[6] = ce_jsonb_datum_or_null(output, &nulls[6]);
	if (message)
		v[7] = CStringGetTextDatum(message);
	else
		nulls[7] = 'n';
	ce_run_query(&q_task_insert, v, nulls, false, 0);
}

Jsonb *
ce_task_approve(ExecRow *ex, LineRow *line, const CeStep *step, Oid caller, Jsonb *output)
{
	Datum		v[4];
	bool		isnull;
	int64		n;

	check_not_decided(ex, line, caller);
	record(ex, line, caller, "approved", output, NULL);
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = UUIDPGetDatum(&ex->id);
	v[2] = Int32GetDatum(line->line_number);
	v[3] = Int32GetDatum(line->attempt);
	ce_run_query(&q_task_count, v, NULL, false, 1);
	n = DatumGetInt64(ce_getcol(0, 1, &isnull));
	if (n < Max(step->approval_threshold, 1))
		return NULL;
	ce_run_query(&q_task_approved, v, NULL, false, 1);
	return ce_getcol_jsonb(0, 1);
}

void
ce_task_reject(ExecRow *ex, LineRow *line, Oid caller, const char *message)
{
	check_not_decided(ex, line, caller);
	record(ex, line, caller, "rejected", NULL, message);
}
