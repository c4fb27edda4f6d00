/*-------------------------------------------------------------------------
 *
 * flow.h
 *	  Flow control across executions: the limits a step names (places and
 *	  tokens) and the chain key concurrencyLimit (see flow.c).
 *
 * Everything here runs inside a transition's transaction, with SPI
 * connected, as the extension owner, under the bookkeeping search_path,
 * except ce_flow_take_admitted and ce_flow_reset.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_FLOW_H
#define CE_FLOW_H

#include "engine_int.h"

/*
 * Whether the claimed line's execution may run under its chain's
 * concurrencyLimit: true when the chain has none, the execution has
 * started already, or it takes a free place now.  Otherwise the line waits
 * for a place (it stays ready, out of the dispatch) and the transition
 * ends there.
 */
extern bool ce_flow_admit_execution(ExecRow *ex, LineRow *line);

/*
 * Whether the step may run now under the limits it names: takes a place
 * of each limit with max_concurrent (held until the transaction ends).
 * A token of each limit with per_second is taken in a transition of its
 * own: this returns false after taking them, and the next transition of
 * this backend claims the line again (ce_flow_take_admitted).  When a
 * limit has no room the line waits (for a place: out of the dispatch; for
 * a token: until its not_before) and false is returned.  When false, the
 * transition ends without running the step.
 */
extern bool ce_flow_admit_step(ExecRow *ex, LineRow *line, const CeStep *step);

/*
 * At the end of a transition (before commit): wake one line waiting for
 * each place it held.
 */
extern void ce_flow_transition_end(ExecRow *ex);

/*
 * The lock under which a transition checks that a child execution of
 * chain_id could ever have a place, and starts it (subchain.c): held to the
 * end of the transaction, so that two transitions never both start a child
 * that waits for a place the other's parent holds.  Never waited for:
 * false when another transition holds it.
 */
extern bool ce_flow_lock_child_starts(const pg_uuid_t *org, const char *chain_id);

/* The claimed line goes again a moment later (ce_flow_lock_child_starts). */
extern void ce_flow_line_again_soon(ExecRow *ex, int line_number);

/* An execution ended: wake a line waiting for a place of its chain. */
extern void ce_flow_execution_ended(ExecRow *ex);

/*
 * Wake lines that wait for a place that is free (a wake-up lost to a
 * race, a pause, a limit changed by hand).  Returns how many.
 */
extern int	ce_flow_sweep_in_xact(void);

/*
 * The line whose tokens the last transition of this backend took, to
 * claim next (once); false when there is none.
 */
extern bool ce_flow_take_admitted(pg_uuid_t *org, pg_uuid_t *id, int *line_number);

/* Forget the places of a transition that did not commit. */
extern void ce_flow_reset(void);

#endif							/* CE_FLOW_H */
