/*-------------------------------------------------------------------------
 *
 * engine_xact.h
 *	  The start of every transaction of the engine: READ COMMITTED and a
 *	  share lock on the chainexec extension (see engine_xact.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_ENGINE_XACT_H
#define CE_ENGINE_XACT_H

#include "postgres.h"

/* Make the current transaction (no snapshot taken yet) READ COMMITTED. */
extern void ce_xact_read_committed(void);

/*
 * Share-lock the extension object until the end of the transaction; false
 * when it is not installed.  *changed (if not NULL): it is not the
 * extension seen last time, so cached facts about it are stale.
 */
extern bool ce_lock_extension(bool *changed);

/* StartTransactionCommand, READ COMMITTED, ce_lock_extension. */
/* A transaction of the engine's own (a worker's loop, not a SQL call) */
typedef struct CeXact
{
	MemoryContext caller;		/* CurrentMemoryContext when it began */
	bool		block;			/* a transaction block (Citus) */
} CeXact;

extern bool ce_engine_xact_begin(CeXact *x, bool *changed);
extern void ce_engine_xact_commit(CeXact *x);

#endif							/* CE_ENGINE_XACT_H */
