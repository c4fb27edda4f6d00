/*-------------------------------------------------------------------------
 *
 * template.h
 *	  Templates with {placeholders} (SPEC section 3 "Templates"), pure C.
 *
 * A template is literal text with placeholders.  A placeholder is an
 * expression (expr.h) in single braces: {var}, {a.b.c}, {var|'default'},
 * {cond ? 'x' : 'y'}.  {{ and }} stand for literal braces.  A lone } or an
 * unterminated { is a syntax error with its position.  Inside a
 * placeholder, braces within quoted strings do not count.
 *
 * Rendering (ce_template_render): each placeholder's value is rendered as
 * text (strings raw, numbers as written, booleans true/false, arrays and
 * objects as JSON, null as the empty string).  A placeholder that is a bare
 * variable path whose variable is unset fails with CE_ERR_MISSING_VAR and
 * err->var naming the variable (as written, e.g. "order.id").
 *
 * SQL form (ce_template_sql): the literal text with each placeholder
 * replaced by $1, $2, ... in order; ce_template_params() evaluates the
 * placeholders into values to bind, never spliced into the SQL text.  The
 * same unset-variable rule applies.  A null value binds SQL NULL.
 *
 * Braces in literal text: every { and } outside a placeholder must be
 * doubled, in SQL steps too.  A SQL literal such as '{"a":1}' or an array
 * literal '{1,2}' is written '{{"a":1}}' and '{{1,2}}' (the SQL form then
 * holds the single braces).  A placeholder is never spliced into the SQL
 * text, so do not quote it: write WHERE id = {id}, not WHERE id = '{id}'
 * (the latter is the literal string '$1'); add a cast where the type
 * matters, e.g. {qty}::int.
 *
 * Errors: an unterminated placeholder, an empty one ({}) and a lone } are
 * CE_ERR_SYNTAX with the hint to double the brace; a placeholder whose
 * expression does not parse reports the expression's error with err->pos
 * the character position in the whole template.  A template longer than
 * CE_MAX_TEMPLATE_LEN bytes is CE_ERR_LIMIT.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_TEMPLATE_H
#define CE_TEMPLATE_H

#include "ce_pure.h"
#include "expr.h"

typedef struct CeTemplate CeTemplate;	/* opaque */

extern CeTemplate *ce_template_parse(const char *text, size_t len,
									 CeError *err);

/* Number of placeholders. */
extern int	ce_template_nplaceholders(const CeTemplate *t);

/* True when the template has no placeholders (plain text). */
extern bool ce_template_is_constant(const CeTemplate *t);

/* Render into a new NUL-terminated string; NULL and err on failure. */
extern char *ce_template_render(const CeTemplate *t, CeLookupFn lookup,
								void *arg, size_t *outlen, CeError *err);

/*
 * The same, but stop as soon as the output exceeds maxlen bytes: NULL and
 * err CE_ERR_LIMIT, without building the rest (a 64 KB template of
 * placeholders over a large variable would otherwise expand to gigabytes
 * before any limit is checked).
 */
extern char *ce_template_render_max(const CeTemplate *t, CeLookupFn lookup,
									void *arg, size_t maxlen, size_t *outlen,
									CeError *err);

/* The SQL text with $n in place of the placeholders (NUL-terminated). */
extern const char *ce_template_sql(const CeTemplate *t);

/* Evaluate the placeholders into vals[0..nplaceholders-1]. */
extern bool ce_template_params(const CeTemplate *t, CeLookupFn lookup,
							   void *arg, CeValue *vals, CeError *err);

/* The variables the template reads (first path parts, no duplicates). */
extern int	ce_template_variables(const CeTemplate *t, char ***names);

#endif							/* CE_TEMPLATE_H */
