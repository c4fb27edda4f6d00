/*-------------------------------------------------------------------------
 *
 * tasks.h
 *	  People in the loop: external steps with requiredRoles and
 *	  approvalThreshold (see tasks.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_TASKS_H
#define CE_TASKS_H

#include "engine_int.h"

/* A step with requiredRoles starts waiting: record its roles on the line. */
extern void ce_task_start(ExecRow *ex, LineRow *line, const CeStep *step);

/*
 * Whether role caller decides on step step_id as one of its requiredRoles
 * (true), or controls it as the execution's owner or chainexec_admin
 * (false: the step has no requiredRoles).  Raises 42501 (the hint names
 * the roles) when the step has requiredRoles and caller is a member of
 * none of them nor of chainexec_admin, and 42704 (the execution does not
 * exist) when it has none and caller may not control it.
 */
extern bool ce_task_check_caller(ExecRow *ex, const CeStep *step, int step_id, Oid caller,
								 bool may_control, bool ok);

/*
 * Record caller's approval (output: its declared outputs) of the waiting
 * line's attempt; returns the approvals' outputs merged in call order
 * when they reach the step's approvalThreshold, else NULL.
 */
extern Jsonb *ce_task_approve(ExecRow *ex, LineRow *line, const CeStep *step, Oid caller,
							  Jsonb *output);

/* Record caller's rejection of the waiting line's attempt. */
extern void ce_task_reject(ExecRow *ex, LineRow *line, Oid caller, const char *message);

#endif							/* CE_TASKS_H */
