/*-------------------------------------------------------------------------
 *
 * resilience.h
 *	  The resilience step keys of SPEC section 9 as the engine applies
 *	  them: circuit breakers (breaker.c), the step-result cache (cache.c),
 *	  the retry budget, escalation to a person and the compensation
 *	  context (resilience.c).
 *
 * Everything here runs inside a transition's (or a control call's)
 * transaction, with SPI connected, as the extension owner, under the
 * bookkeeping's fixed search_path.
 *
 * Around the run of a step (not a compensation), in one transition:
 *
 *	  ce_resil_before   a cache hit completes the step without running it;
 *	                    an open breaker fails it with circuit_open;
 *	                    otherwise the step runs
 *	  ce_resil_after    right after the run, before the execution's header
 *	                    is locked: the breaker records the call, the cache
 *	                    keeps a successful result
 *	  ce_resil_events   after the line is recorded: circuit_opened,
 *	                    circuit_closed
 *
 * A breaker's row is locked only by a probe call (half-open), for the
 * length of its transition, and by the short update that records a call:
 * recording comes before the header lock, so a probe holding the breaker
 * row and waiting for a header never waits on a transition that holds
 * that header and waits for the breaker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_RESILIENCE_H
#define CE_RESILIENCE_H

#include "postgres.h"
#include "utils/jsonb.h"

#include "engine.h"
#include "engine_int.h"
#include "step.h"

/* What ce_resil_before decided. */
typedef enum CeResilDecision
{
	CE_RESIL_RUN,				/* run the step */
	CE_RESIL_CACHED,			/* a cache hit: run->ok, run->outputs set */
	CE_RESIL_OPEN				/* circuit open: run failed (circuit_open) */
} CeResilDecision;

typedef enum CeBreakerMode
{
	CE_BREAKER_NONE,			/* no breaker on the step */
	CE_BREAKER_CLOSED,			/* a call under a closed breaker */
	CE_BREAKER_PROBE			/* a probe call (the row is locked) */
} CeBreakerMode;

typedef struct CeResilState
{
	/* breaker */
	CeBreakerMode breaker_mode;
	char	   *breaker_key;
	bool		breaker_row;	/* the row existed before the call */
	const char *event;			/* circuit_opened, circuit_closed, or NULL */
	/* cache */
	char	   *cache_key;		/* JSON array text, or NULL: no cache */
} CeResilState;

extern CeResilDecision ce_resil_before(ExecRow *ex, const CeStep *step, CeStepRun *run,
									   CeResilState *rs);
extern void ce_resil_after(ExecRow *ex, const CeStep *step, CeStepRun *run, CeResilState *rs);
extern void ce_resil_events(ExecRow *ex, const CeStep *step, CeResilState *rs, int attempt);

/* breaker.c */
extern char *ce_breaker_key(ExecRow *ex, const CeStep *step);
extern bool ce_breaker_admit(ExecRow *ex, const CeStep *step, CeResilState *rs, CeStepRun *run);
extern void ce_breaker_record(ExecRow *ex, const CeStep *step, CeResilState *rs, bool ok);

/* cache.c */
extern char *ce_cache_key(const CeStep *step, CeStepRun *run);
extern bool ce_cache_lookup(ExecRow *ex, const CeStep *step, const char *key, CeStepRun *run);
extern void ce_cache_store(ExecRow *ex, const CeStep *step, const char *key, CeStepRun *run);

/*
 * Retries: whether a failed attempt may be retried at all, whatever its
 * retry settings say: never after circuit_open, never once the
 * execution's retryBudget is spent (the header must be locked: parallel
 * steps count against one budget).  A compensation always may.
 */
extern bool ce_retry_allowed(ExecRow *ex, CeStepRun *run, bool compensation);

/* Whether a failure matches a compensation's retries beyond r's own list. */
extern bool ce_retry_compensation_extra(CeStepRun *run);

/*
 * Escalation (onFailure "escalate"): the line's error marked as
 * escalated; the number of escalated lines still failed; reopening them
 * (chain_resume); the compensation after chain_cancel.
 */
extern Jsonb *ce_escalated_error(Jsonb *error);
extern int	ce_escalated_count(ExecRow *ex);
extern void ce_escalated_reopen(ExecRow *ex);
extern Jsonb *ce_escalated_cause(ExecRow *ex);

/*
 * The compensation context: {"step", "type", "message"} from the
 * execution's error (why the saga runs), or NULL.
 */
extern Jsonb *ce_compensation_failure(ExecRow *ex);

#endif							/* CE_RESILIENCE_H */
