/*-------------------------------------------------------------------------
 *
 * direct.h
 *	  Direct row access to an execution's header and lines (direct.c), for
 *	  the transition's own reads and writes (direct_rows.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_DIRECT_H
#define CE_DIRECT_H

#include "access/tableam.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

/* The columns read or set, by name; C_ID is "transaction_id" in the lines, "id" in the header. */
typedef enum
{
	C_ORG,
	C_ID,
	C_LINE,
	C_STATUS,
	C_ATTEMPT,
	C_NOT_BEFORE,
	C_INPUT,
	C_OUTPUT,
	C_ERROR,
	C_STARTED,
	C_FIRST_STARTED,
	C_FINISHED,
	C_DURATION,
	C_LINE_TYPE,
	C_STEP_ID,
	C_STEP_NAME,
	C_PARENT_LINE,
	C_ITERATION,
	C_WAITS_FOR,
	C_CONTEXT,
	C_CHAIN_ID,
	C_CHAIN_VERSION,
	C_OWNER,
	C_DEADLINE,
	C_PRIORITY,
	C_METADATA,
	C_PARENT_ID,
	C_IN_SESSION,
	C_SMART_CODE,
	C_COUNT
} Col;

enum
{
	T_LINES,
	T_HEADER
};

/* One table of a direct access: the relation, open, with its columns. */
typedef struct DirectRel
{
	Relation	rel;
	Relation	pkey;
	bool		lines;			/* the lines (key of three columns), else the header */
	const int  *col;
	ResultRelInfo *rri;			/* when updated */
	TupleTableSlot *found;		/* the row read or locked */
	TupleTableSlot *next;		/* its new version, or a new row */
	ExprState **defaults;		/* inserts: the columns' defaults */
} DirectRel;

/* A direct access: its snapshot, and for a write its executor state. */
typedef struct Direct
{
	const Col  *header_set;		/* the header's columns a write sets, C_COUNT-ended */
	Snapshot	snap;
	EState	   *estate;
	EPQState	epq;
	DirectRel	r[2];
} Direct;


/*
 * Begin an access (write: with an executor state, header_set the header's
 * columns it sets, C_COUNT-ended; read_around: the lines survey, which
 * reads around a held-back completion that any other access writes
 * first); open table t (T_LINES, T_HEADER); end it.
 */
extern void ce_row_begin(Direct *d, bool write, bool read_around, const Col *header_set);
extern DirectRel *ce_row_open(Direct *d, int t, LOCKMODE mode);
extern void ce_row_end(Direct *d);
/* The lines' index without iterations, open, or NULL (then the primary key serves). */
extern Relation ce_row_open_steps(void);
/* The lines' dispatch index, open, or NULL (then the statements run). */
extern Relation ce_row_open_ready(void);

/* Columns of the row found. */
static inline Datum
ce_row_value(DirectRel *r, Col c, bool *isnull)
{
	return slot_getattr(r->found, r->col[c] + 1, isnull);
}

static inline bool
ce_row_null(DirectRel *r, Col c)
{
	return slot_attisnull(r->found, r->col[c] + 1);
}

/* A boolean column; null reads as false, as in a WHERE clause. */
static inline bool
ce_row_bool(DirectRel *r, Col c)
{
	bool		isnull;
	Datum		d = ce_row_value(r, c, &isnull);

	return !isnull && DatumGetBool(d);
}

static inline char *
ce_row_text(DirectRel *r, Col c)
{
	bool		isnull;
	Datum		d = ce_row_value(r, c, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static inline int32
ce_row_int(DirectRel *r, Col c, int32 if_null)
{
	bool		isnull;
	Datum		d = ce_row_value(r, c, &isnull);

	return isnull ? if_null : DatumGetInt32(d);
}

static inline Jsonb *
ce_row_jsonb(DirectRel *r, Col c)
{
	bool		isnull;
	Datum		d = ce_row_value(r, c, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

/* Find a row by key in the access's snapshot; lock it as SELECT ... FOR would. */
extern bool ce_row_find(Direct *d, DirectRel *r, const pg_uuid_t *org, const pg_uuid_t *id,
						int line_number);
extern bool ce_row_lock(Direct *d, DirectRel *r, LockTupleMode mode, LockWaitPolicy wait);
/* Its new version: copy, set columns, write. */
extern void ce_row_new_version(DirectRel *r);
extern void ce_row_set(DirectRel *r, Col c, Datum value, bool isnull);
extern void ce_row_write(Direct *d, DirectRel *r);
/*
 * Inserts (the access begun with write): open table t for them; each new
 * row: its columns' defaults, set columns, insert.  ce_row_ours: whether
 * the row found is one the current transaction wrote.
 */
extern bool ce_row_insertable(int t);
extern DirectRel *ce_row_open_insert(Direct *d, int t, const Col *set, bool skip_header_fk);
extern void ce_row_new_row(Direct *d, DirectRel *r);
extern void ce_row_insert(Direct *d, DirectRel *r);
extern bool ce_row_ours(DirectRel *r);

#endif							/* CE_DIRECT_H */
