/*-------------------------------------------------------------------------
 *
 * flow_sql.c
 *	  Small SQL-callable helpers of the limits (chainexec.limits,
 *	  chain_set_limit, chain_drop_limit).
 *
 * _xid_in_progress(xid): whether a transaction is in progress.  A place
 * of a limit (a row of flow_limit_slots) is held while the transition
 * that row-locked it runs: its xmax is then the xid of a transaction in
 * progress.  The view chainexec.limits counts held places this way,
 * without locking anything itself (it works in a read-only transaction).
 *
 * _limit_wake(org, name): the lines waiting for a place of a limit try
 * again, and the executors are woken when the calling transaction commits
 * (chain_set_limit and chain_drop_limit call it: the limit changed).  In C
 * because only C code writes executions and lines.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/procarray.h"

#include "shmem.h"

PG_FUNCTION_INFO_V1(ce_xid_in_progress);
PG_FUNCTION_INFO_V1(ce_limit_wake);

/* _xid_in_progress(xid) RETURNS boolean */
Datum
ce_xid_in_progress(PG_FUNCTION_ARGS)
{
	TransactionId xid = DatumGetTransactionId(PG_GETARG_DATUM(0));

	if (!TransactionIdIsNormal(xid))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(TransactionIdIsInProgress(xid));
}

/*
 * _limit_wake(org uuid, name text) RETURNS bigint: how many lines.  Runs
 * as its caller (the implementation of chain_set_limit or chain_drop_limit,
 * as the extension owner, with the bookkeeping search_path); PUBLIC may
 * not execute it.
 */
Datum
ce_limit_wake(PG_FUNCTION_ARGS)
{
	Oid			types[2] = {UUIDOID, TEXTOID};
	Datum		values[2];
	int			ret;
	uint64		n;

	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args("UPDATE chainexec.universal_transaction_lines SET waits_for = NULL "
								"WHERE organization_id OPERATOR(pg_catalog.=) $1 "
								"AND waits_for OPERATOR(pg_catalog.=) $2",
								2, types, values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "could not wake the lines waiting for a limit: %s", SPI_result_code_string(ret));
	n = SPI_processed;
	SPI_finish();
	if (n > 0)
		ce_wakeup_at_commit();
	PG_RETURN_INT64((int64) n);
}
