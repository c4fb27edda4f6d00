/*-------------------------------------------------------------------------
 *
 * jsonschema.h
 *	  The JSON Schema subset of inputSchema/outputSchema (SPEC section 3),
 *	  pure C.
 *
 * Keywords: type (object, string, number, integer, boolean, array; or an
 * array of those), properties, required, enum, default, minLength,
 * maxLength, minimum, maximum, pattern (POSIX extended regular expression
 * through <regex.h> standalone; the server glue may supply its own
 * matcher), items.  Other keywords are ignored (title, description, ...).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_JSONSCHEMA_H
#define CE_JSONSCHEMA_H

#include "ce_pure.h"
#include "cejson.h"

typedef struct CeSchemaViolation
{
	char	   *path;			/* "$" for the root, "$.order.qty",
								 * "$.items[2]" */
	char	   *message;		/* lower case, e.g. "is required",
								 * "must be of type integer, not string",
								 * "must be at least 1" */
} CeSchemaViolation;

typedef struct CeSchemaResult
{
	int			count;
	CeSchemaViolation *items;
} CeSchemaResult;

/*
 * Regular expression matcher: returns 1 match, 0 no match, -1 when the
 * pattern is invalid.  NULL selects the built-in (regex.h) one.
 */
typedef int (*CeRegexFn) (const char *pattern, const char *subject,
						  size_t subject_len);

/*
 * Check that a schema is well formed (used when a chain is defined):
 * known types, numbers where numbers belong, patterns that compile.
 * path is the schema's JSON path for messages, e.g. "inputSchema".
 */
extern bool ce_schema_check(const CeJson *schema, const char *path,
							CeRegexFn regex, CeError *err);

/*
 * Apply defaults (in place: missing properties that have a "default" get a
 * copy of it, recursively into nested objects that exist or were
 * defaulted), then validate, collecting every violation into *result.
 * Returns true when there are none.
 */
extern bool ce_schema_apply(const CeJson *schema, CeJson *value,
							CeRegexFn regex, CeSchemaResult *result);

/*
 * pattern rewritten for another POSIX extended matcher (\d and \D
 * expanded; not anchored: an unanchored search), or NULL when the built-in
 * matcher would refuse it (see CE_MAX_PATTERN_LEN and the other limits).
 */
extern char *ce_schema_prepare_pattern(const char *pattern);

/*
 * Keep only the properties the (object) schema names, for outputSchema
 * filtering of outputs; returns a new value.
 */
extern CeJson *ce_schema_filter(const CeJson *schema, const CeJson *value);

#endif							/* CE_JSONSCHEMA_H */
