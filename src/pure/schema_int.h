/*-------------------------------------------------------------------------
 *
 * schema_int.h
 *	  Declarations shared by the parts of the JSON Schema subset, private to
 *	  src/pure/schema_*.c (the interface is jsonschema.h): reading a
 *	  schema's keywords, and the built-in pattern matcher.
 *
 * The parts: schema_check.c (is a schema well formed), schema_validate.c
 * (defaults, validation, filtering of a value), schema_pattern.c (the
 * "pattern" keyword's rewriting and matcher).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_SCHEMA_INT_H
#define CE_SCHEMA_INT_H

#include "jsonschema.h"

#include <math.h>
#include <string.h>

/* Index of member key (klen bytes) of object obj, or -1. */
static inline int
find_member(const CeJson *obj, const char *key, size_t klen)
{
	int			i;

	if (obj == NULL || obj->type != CEJ_OBJECT)
		return -1;
	for (i = 0; i < obj->count; i++)
	{
		if (obj->keylens[i] == klen && memcmp(obj->keys[i], key, klen) == 0)
			return i;
	}
	return -1;
}

/* Member of an object schema, only when it has the wanted type. */
static inline const CeJson *
keyword(const CeJson *schema, const char *name, CeJsonType type)
{
	const CeJson *v = cejson_get(schema, name);

	return (v != NULL && v->type == type) ? v : NULL;
}

/* Whether a number value is integral ("integer" accepts 3.0). */
static inline bool
number_is_integral(const CeJson *v)
{
	double		d = v->number;

	if (v->is_integer)
		return true;
	if (!isfinite(d))
		return false;
	if (d >= 9.2e18 || d <= -9.2e18)
		return true;			/* doubles this large have no fraction */
	return (double) (long long) d == d;
}

/* A schema number as a non-negative integer, or -1 when it is not one. */
static inline long long
nonneg_integer(const CeJson *v)
{
	if (v == NULL || v->type != CEJ_NUMBER || !number_is_integral(v))
		return -1;
	if (v->is_integer)
		return v->integer >= 0 ? v->integer : -1;
	if (v->number < 0)
		return -1;
	if (v->number >= 9.2e18)
		return 9200000000000000000LL;
	return (long long) v->number;
}

/* The built-in matcher (schema_pattern.c), a CeRegexFn. */
extern int	schema_builtin_regex(const char *pattern, const char *subject,
								 size_t subject_len);

#endif							/* CE_SCHEMA_INT_H */
