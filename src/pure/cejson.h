/*-------------------------------------------------------------------------
 *
 * cejson.h
 *	  A small JSON document model, pure C.
 *
 * Chain definitions and input schemas are checked by pure code (plan*.c,
 * schema_*.c) over this tree, not over Jsonb, so that the checks run and
 * can be fuzzed outside the server.  The server glue feeds it the text of a
 * jsonb value.  Object members keep their order; duplicate keys keep the
 * last value (as jsonb does).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CEJSON_H
#define CEJSON_H

#include "ce_pure.h"

typedef enum CeJsonType
{
	CEJ_NULL,
	CEJ_BOOL,
	CEJ_NUMBER,
	CEJ_STRING,
	CEJ_ARRAY,
	CEJ_OBJECT
} CeJsonType;

typedef struct CeJson CeJson;

struct CeJson
{
	CeJsonType	type;
	bool		boolean;
	double		number;			/* CEJ_NUMBER: the value */
	bool		is_integer;		/* CEJ_NUMBER: written without fraction or
								 * exponent and fits in int64 */
	long long	integer;		/* CEJ_NUMBER when is_integer */
	char	   *str;			/* CEJ_STRING: the value (NUL-terminated;
								 * may contain NUL, see len); CEJ_NUMBER: the
								 * number's text as written */
	size_t		len;			/* length of str */
	int			count;			/* CEJ_ARRAY / CEJ_OBJECT: members */
	char	  **keys;			/* CEJ_OBJECT: member names */
	size_t	   *keylens;		/* CEJ_OBJECT: lengths of member names */
	CeJson	  **items;			/* members */
};

/* Parse text of len bytes; NULL and err filled (with pos) on error. */
extern CeJson *cejson_parse(const char *text, size_t len, CeError *err);

/* Object member by name, NULL when absent or v is not an object. */
extern CeJson *cejson_get(const CeJson *v, const char *key);

/* Serialize compactly as JSON text into b (jsonb-compatible). */
extern void cejson_serialize(const CeJson *v, CeBuf *b);
extern char *cejson_to_string(const CeJson *v);

/* Constructors (used to apply schema defaults and build outputs). */
extern CeJson *cejson_new(CeJsonType type);
extern CeJson *cejson_new_string(const char *s, size_t len);
extern void cejson_object_set(CeJson *obj, const char *key, CeJson *val);
extern CeJson *cejson_copy(const CeJson *v);

/*
 * Added for convenience: number, integer and boolean constructors (a number
 * built here has str NULL and serializes from its value; a non-finite one
 * as null), and appending to an array (val is not copied).
 */
extern CeJson *cejson_new_number(double d);
extern CeJson *cejson_new_integer(long long i);
extern CeJson *cejson_new_bool(bool b);
extern void cejson_array_append(CeJson *arr, CeJson *val);

/* Deep equality (numbers compare by value, objects ignore member order). */
extern bool cejson_equal(const CeJson *a, const CeJson *b);

extern const char *cejson_type_name(CeJsonType t);

#endif							/* CEJSON_H */
