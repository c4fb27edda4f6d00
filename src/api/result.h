/*-------------------------------------------------------------------------
 *
 * result.h
 *	  An execution's result (chain_result), for chain_wait, chain_await and
 *	  chain_run: one statement kept prepared per backend, run as the caller.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_RESULT_H
#define CE_RESULT_H

#include "postgres.h"

/*
 * The jsonb result of execution `id` (a uuid Datum).  SPI connected; the
 * value is copied into the memory context current at SPI_connect.
 * fresh_snapshot: the statement takes a snapshot of its own (READ
 * COMMITTED), else it runs in the caller's.  Raises 42704 when the caller
 * may not see the execution.
 */
extern Datum ce_result_in_spi(Datum id, bool fresh_snapshot);

#endif							/* CE_RESULT_H */
