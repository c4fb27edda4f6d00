/*-------------------------------------------------------------------------
 *
 * group.h
 *	  Grouped commit: several step transitions of different executions in
 *	  one transaction, each in a subtransaction (see group.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_GROUP_H
#define CE_GROUP_H

#include "postgres.h"

#include "engine.h"

/* chainexec.group_commit's largest value (see group.c) */
#define CE_GROUP_MAX	16

struct ExecRow;
struct LineRow;
struct CeStep;

/*
 * Run up to max transitions in one transaction, none started once
 * window_ms have passed since the first; max 1 is ce_transition(NULL).
 * CE_TR_DONE when at least one ran.  An error thrown by one transition
 * rolls back only it; the others commit, then it is thrown again, so that
 * the executor records it on the line as after ce_transition.
 */
extern CeTransitionResult ce_transition_group(int max, int window_ms);

/*
 * Called by the transition once it knows the claimed line's step: whether
 * the line may run inside the group being built (always true outside a
 * group).  False: the group undoes the claim and ends; the line runs
 * first in the next transaction.
 */
extern bool ce_group_admits(const struct ExecRow *ex, const struct LineRow *line,
							const struct CeStep *step);

/* After an error thrown out of a group: the next transitions run alone. */
extern void ce_group_after_error(int max);

#endif							/* CE_GROUP_H */
