/*-------------------------------------------------------------------------
 *
 * cleanup.c
 *	  chain_cleanup: delete the finished executions older than a retention
 *	  interval (their lines and children go with them, by the foreign
 *	  keys), in the caller's organization.
 *
 * Who may delete: a member of chainexec_admin deletes every such
 * execution of the organization; anyone else only those whose owner role
 * they are a member of (as for control.c's calls).  The queries run as the
 * extension owner under the fixed search_path (ce_bookkeeping_begin): no
 * operator or function of the caller's takes part.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "control.h"
#include "engine.h"
#include "engine_int.h"

PG_FUNCTION_INFO_V1(ce_chain_cleanup);

static CeQuery q_cleanup_owners = {
	"SELECT DISTINCT owner::oid FROM chainexec.universal_transactions "
	"WHERE organization_id = $1 AND finished_at IS NOT NULL AND finished_at < now() - $2",
	2, {UUIDOID, INTERVALOID}};
static CeQuery q_cleanup = {
	"WITH gone AS (DELETE FROM chainexec.universal_transactions t "
	"  WHERE t.finished_at IS NOT NULL AND t.finished_at < now() - $2 AND t.organization_id = $1 "
	"    AND ($3::oid[] IS NULL OR t.owner::oid = ANY ($3::oid[])) RETURNING 1) "
	"SELECT count(*) FROM gone",
	3, {UUIDOID, INTERVALOID, OIDARRAYOID}};

/* chain_cleanup(older_than interval) RETURNS bigint */
Datum
ce_chain_cleanup(PG_FUNCTION_ARGS)
{
	Oid			caller = GetUserId();
	CeBookkeeping bk;
	pg_uuid_t	org;
	Datum		v[3];
	char		nulls[3] = {' ', ' ', ' '};
	Oid			admin;
	bool		isnull;
	int64		n;
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	if (PG_ARGISNULL(0) ||
		DatumGetInt32(DirectFunctionCall2(interval_cmp, PG_GETARG_DATUM(0), IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention must be a non-negative interval")));
	ce_current_org(&org);
	SPI_connect();
	ce_bookkeeping_begin(&bk);
	v[0] = UUIDPGetDatum(&org);
	v[1] = PG_GETARG_DATUM(0);
	admin = get_role_oid("chainexec_admin", true);
	if (OidIsValid(admin) && is_member_of_role(caller, admin))
		nulls[2] = 'n';
	else
	{
		Datum	   *owners;
		int			k = 0;

		ce_run_query(&q_cleanup_owners, v, NULL, true, 0);
		owners = palloc(sizeof(Datum) * (SPI_processed + 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 1, &isnull));

			if (is_member_of_role(caller, owner))
				owners[k++] = ObjectIdGetDatum(owner);
		}
		v[2] = PointerGetDatum(construct_array(owners, k, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	}
	ce_run_query(&q_cleanup, v, nulls, false, 1);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ce_bookkeeping_end(&bk);
	SPI_finish();
	PG_RETURN_INT64(n);
}
