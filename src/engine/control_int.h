/*-------------------------------------------------------------------------
 *
 * control_int.h
 *	  What the files of the control functions share: opening a control
 *	  call on an execution (control.c) and its arguments; control.c holds
 *	  the calls that change the execution's course, external.c the
 *	  results of external steps.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_CONTROL_INT_H
#define CE_CONTROL_INT_H

#include "postgres.h"
#include "fmgr.h"

#include "engine_int.h"

/* An open control call: the execution's header, read (and locked) for it. */
typedef struct Ctl
{
	ExecRow		ex;
	CeBookkeeping bk;
	List	   *lines;			/* LineInfo *, read on demand */
	bool		may_control;	/* the caller controls the execution (owner
								 * or chainexec_admin), not only its tasks */
} Ctl;

/* The execution id (argument 0) and a step id (argument n); not null. */
extern Datum ce_ctl_uuid_arg(FunctionCallInfo fcinfo);
extern int	ce_ctl_step_arg(FunctionCallInfo fcinfo, int n);

/*
 * Start a control call on the execution (SPI, bookkeeping, the caller's
 * right to it, the header, locked when change); with decider also for a
 * caller who may only decide on one of its tasks (c->may_control says
 * which).  verb names the call in errors.  ce_ctl_close ends it.
 */
extern void ce_ctl_open_as(Ctl *c, Datum id, bool change, const char *verb, bool decider);
extern void ce_ctl_close(Ctl *c);

/* The latest line of a step, locked (an error if running or missing). */
extern void ce_ctl_step_line(Ctl *c, int step_id, LineRow *line);

#endif							/* CE_CONTROL_INT_H */
