/*-------------------------------------------------------------------------
 *
 * status.h
 *	  The statuses of executions and of their lines: one enum each, one
 *	  name table each (the names stored in universal_transactions.status
 *	  and universal_transaction_lines.status), and the groups the state
 *	  machine asks about (terminal, live, open, active).  SQL reads the
 *	  same tables through chainexec._statuses() (status.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_STATUS_H
#define CE_STATUS_H

#include "postgres.h"

/* An execution (universal_transactions.status). */
typedef enum CeExecStatus
{
	CE_EXEC_PENDING,			/* created, no step started */
	CE_EXEC_RUNNING,
	CE_EXEC_WAITING,			/* every active line waits (timer, external) */
	CE_EXEC_PAUSED,
	CE_EXEC_COMPENSATING,		/* running rollbackActions */
	CE_EXEC_COMPLETED,			/* terminal from here on */
	CE_EXEC_FAILED,
	CE_EXEC_CANCELLED,
	CE_EXEC_TIMEOUT,
	CE_EXEC_COMPENSATED
} CeExecStatus;

#define CE_EXEC_NSTATUSES (CE_EXEC_COMPENSATED + 1)

/* A line (universal_transaction_lines.status). */
typedef enum CeLineStatus
{
	CE_LINE_PENDING,			/* waits for its predecessors (or a resume) */
	CE_LINE_READY,				/* due at not_before */
	CE_LINE_RUNNING,
	CE_LINE_WAITING,			/* a timer or an external result */
	CE_LINE_COMPLETED,			/* final from here on */
	CE_LINE_FAILED,
	CE_LINE_SKIPPED,
	CE_LINE_CANCELLED,
	CE_LINE_COMPENSATED
} CeLineStatus;

#define CE_LINE_NSTATUSES (CE_LINE_COMPENSATED + 1)

/* A status: its stored name and the groups it is in. */
typedef struct CeStatusInfo
{
	const char *name;
	bool		terminal;
	bool		live;			/* executions: pending, running, waiting */
	bool		open;			/* lines: pending, ready, waiting */
	bool		active;			/* lines: ready, waiting, running */
} CeStatusInfo;

/* The one table of each kind, in enum order (status.c). */
extern const CeStatusInfo ce_exec_statuses[CE_EXEC_NSTATUSES];
extern const CeStatusInfo ce_line_statuses[CE_LINE_NSTATUSES];

/* The stored name of a status. */
#define ce_exec_status_name(s)	(ce_exec_statuses[(s)].name)
#define ce_line_status_name(s)	(ce_line_statuses[(s)].name)

/* An execution that has ended: nothing changes it any more but cleanup. */
#define ce_exec_status_is_terminal(s)	(ce_exec_statuses[(s)].terminal)
/* Pending, running or waiting: steps may still run and be made ready. */
#define ce_exec_status_is_live(s)	(ce_exec_statuses[(s)].live)
/* A line that has ended (completed, failed, skipped, cancelled, compensated). */
#define ce_line_status_is_terminal(s)	(ce_line_statuses[(s)].terminal)
/* Pending, ready or waiting: a line not yet run, or not yet ended. */
#define ce_line_status_is_open(s)	(ce_line_statuses[(s)].open)
/* Ready, waiting or running: a line that holds a place (maxConcurrency). */
#define ce_line_status_is_active(s)	(ce_line_statuses[(s)].active)

/* A stored name as a status; an error for a name that is none. */
extern CeExecStatus ce_exec_status_from_name(const char *name);
extern CeLineStatus ce_line_status_from_name(const char *name);

/*
 * The status whose name is the len bytes at name (not terminated), or -1
 * when none is.  No error: the tables' CHECK constraints ask.
 */
extern int	ce_exec_status_lookup(const char *name, int len);
extern int	ce_line_status_lookup(const char *name, int len);

#endif							/* CE_STATUS_H */
