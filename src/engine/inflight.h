/*-------------------------------------------------------------------------
 *
 * inflight.h
 *	  Attempts in flight, recorded where they survive the executor's death
 *	  and the server's crash-restart (see inflight.c).
 *
 * The engine owns this interface (a transition records the attempt it
 * runs); the worker layer implements and recovers it (src/worker/inflight.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_INFLIGHT_H
#define CE_INFLIGHT_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/uuid.h"

/* Executor start: open the file, for executor slot `slot`. */
extern void ce_inflight_open(int slot);

/* Right before running a step; and once its transition has ended. */
extern void ce_inflight_begin(const pg_uuid_t *org, const pg_uuid_t *execution,
							  int line, int attempt);
extern void ce_inflight_end(void);

/*
 * A claimed line's attempt that an executor left when it exited mid-step,
 * not recorded yet (numbered after after_attempt): true, with its number
 * and start, once (see inflight.c).
 */
extern bool ce_inflight_take_orphan(const pg_uuid_t *org, const pg_uuid_t *execution,
									int line, int after_attempt, int *attempt,
									TimestampTz *started_at);

/*
 * Executor start: record the attempts dead executors left in our slot, or
 * in every slot (all_slots: the start-up recovery, before any executor
 * claims work).  record(...) returns true when the line was locked by
 * another transaction, so it recorded nothing.
 */
extern void ce_inflight_recover(bool all_slots,
								bool (*record) (const pg_uuid_t *org, const pg_uuid_t *execution,
												int line, int attempt, TimestampTz started_at));

#endif							/* CE_INFLIGHT_H */
