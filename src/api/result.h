/*-------------------------------------------------------------------------
 *
 * result.h
 *	  An execution's result (chain_result), for chain_wait, chain_await and
 *	  chain_run: two statements kept prepared per backend, run as the
 *	  caller (the header, then the count of its lines), the object built in
 *	  C.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_RESULT_H
#define CE_RESULT_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"

/*
 * The header's columns the result is built from, in this order, as a
 * select list over chainexec.universal_transactions t.
 */
#define CE_RESULT_HEADER_COLS \
	"t.organization_id, t.chain_id, t.status, t.context, t.output, t.error," \
	" t.started_at, t.finished_at, t.chain_version"

/*
 * The jsonb result of execution `id` (a uuid Datum).  SPI connected; the
 * value is copied into the memory context current at SPI_connect.
 * fresh_snapshot: the statement takes a snapshot of its own (READ
 * COMMITTED), else it runs in the caller's.  Raises 42704 when the caller
 * may not see the execution.
 */
extern Datum ce_result_in_spi(Datum id, bool fresh_snapshot);

/*
 * The result of execution `id` from its header row `row`, read by the
 * caller (CE_RESULT_HEADER_COLS from column `first`, 1-based, of desc) in
 * the active snapshot, in which the lines are counted.  SPI connected;
 * the value is copied into the memory context current at SPI_connect.
 */
extern Datum ce_result_from_header(HeapTuple row, TupleDesc desc, int first, Datum id);

#endif							/* CE_RESULT_H */
