/*-------------------------------------------------------------------------
 *
 * events.h
 *	  Execution events sent with NOTIFY in the transaction of the
 *	  transition that caused them (SPEC section 7).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_EVENTS_H
#define CE_EVENTS_H

#include "postgres.h"

#include "utils/uuid.h"

#include "plan.h"

typedef struct CeEvent
{
	const char *event;			/* chain_started, step_completed, ... */
	const pg_uuid_t *org;		/* the execution's organization */
	Oid			owner;			/* and owner role: who may receive it */
	const char *execution_id;
	const char *chain_id;
	int			step_id;		/* 0: none */
	const char *step_name;		/* NULL: none */
	const char *status;
	int			attempt;
	int			progress;		/* 0-100 */
	long		eta_ms;			/* -1: unknown */
} CeEvent;

/* Whether an event passes the chain's notify setting. */
extern bool ce_event_wanted(CeNotify level, const char *event);

/* Queue the event's NOTIFY (sent when the transaction commits). */
extern void ce_notify(CeNotify level, const CeEvent *ev);

/* Queue a payload on the channels of the execution's readers. */
extern void ce_notify_send(const pg_uuid_t *org, Oid owner, const char *event,
						   const char *payload);

/* chain_started of a new execution (chain_execute). */
extern void ce_emit_chain_started(const pg_uuid_t *org, Oid owner, const pg_uuid_t *id,
								  const char *chain_id, int version, CeNotify notify);

#endif							/* CE_EVENTS_H */
