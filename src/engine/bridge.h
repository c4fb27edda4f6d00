/*-------------------------------------------------------------------------
 *
 * bridge.h
 *	  The bridge between the pure modules and the server: errors, regular
 *	  expressions, conversions between Jsonb and the pure modules' values,
 *	  variable lookup (bridge.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_BRIDGE_H
#define CE_BRIDGE_H

#include "postgres.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "cejson.h"
#include "expr.h"
#include "plan.h"

/* ereport(ERROR) a CeError from a pure module, with its SQLSTATE. */
extern void ce_raise(const CeError *err, const char *context_fmt,...) pg_attribute_noreturn();

/*
 * The inputSchema pattern matcher of the server (a CeRegexFn): PostgreSQL's
 * regular expressions, which a cancel or a statement_timeout interrupts.
 */
extern int	ce_pg_regex(const char *pattern, const char *subject, size_t subject_len);

/* Parse a jsonb into a CeJson tree (in CurrentMemoryContext). */
extern CeJson *ce_jsonb_to_cejson(Jsonb *jb);
extern Jsonb *ce_cejson_to_jsonb(const CeJson *v);
extern Jsonb *ce_text_to_jsonb(const char *text);

/* Variable lookup over an execution's context plus the chain.* built-ins. */
typedef struct CeLookupCtx
{
	Jsonb	   *context;		/* the variables */
	Jsonb	   *extra;			/* further variables checked first, or NULL
								 * (a step's fresh outputs) */
	const char *execution_id;
	const char *chain_id;
	int			chain_version;
	int			step_id;
	const char *step_name;
	int			attempt;
	const char *organization_id;
	Jsonb	   *failure;		/* a compensation's cause: {"step", "type",
								 * "message"} (chain.failure.*), or NULL */
} CeLookupCtx;

extern bool ce_lookup(void *arg, const char *const *path, int npath, CeValue *out);

/* A CeValue as a new Jsonb value (JSON null for CEV_NULL). */
extern Jsonb *ce_value_to_jsonb(const CeValue *v);

/* The current organization (chainexec.organization_id, or all zeros). */
extern void ce_current_org(pg_uuid_t *org);
extern char *ce_uuid_to_cstring(const pg_uuid_t *u);

#endif							/* CE_BRIDGE_H */
