/*-------------------------------------------------------------------------
 *
 * json_build.c
 *	  The CeJson document model (cejson.h) apart from parsing: member
 *	  access, serialization (jsonb-compatible, numbers as written),
 *	  constructors, deep copy and deep equality.
 *
 *-------------------------------------------------------------------------
 */
#include "cejson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * cejson_get
 *		The value of member key of object v, or NULL.
 */
CeJson *
cejson_get(const CeJson *v, const char *key)
{
	size_t		klen;
	int			i;

	if (v == NULL || v->type != CEJ_OBJECT || key == NULL)
		return NULL;
	klen = strlen(key);
	for (i = 0; i < v->count; i++)
	{
		if (v->keylens[i] == klen && memcmp(v->keys[i], key, klen) == 0)
			return v->items[i];
	}
	return NULL;
}

/* Append s (len bytes) as a JSON string literal. */
static void
serialize_string(const char *s, size_t len, CeBuf *b)
{
	size_t		i;
	size_t		run = 0;

	ce_buf_appendc(b, '"');
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		const char *esc = NULL;
		char		ubuf[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c)
		{
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			default:
				snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
				esc = ubuf;
				break;
		}
		if (i > run)
			ce_buf_append(b, s + run, i - run);
		ce_buf_appends(b, esc);
		run = i + 1;
	}
	if (len > run)
		ce_buf_append(b, s + run, len - run);
	ce_buf_appendc(b, '"');
}

/* Append the text of a number value. */
static void
serialize_number(const CeJson *v, CeBuf *b)
{
	if (v->str != NULL && v->len > 0)
		ce_buf_append(b, v->str, v->len);
	else if (v->is_integer)
		ce_buf_printf(b, "%lld", v->integer);
	else if (isfinite(v->number))
	{
		char		tmp[64];

		snprintf(tmp, sizeof(tmp), "%.17g", v->number);
		ce_buf_appends(b, tmp);
	}
	else
		ce_buf_appends(b, "null");	/* JSON has no infinities */
}

/*
 * cejson_serialize
 *		Append v as compact JSON text to b.  Strings keep their UTF-8 as
 *		is; control characters are escaped; numbers keep their text.  A NULL
 *		v is written as null.
 */
void
cejson_serialize(const CeJson *v, CeBuf *b)
{
	int			i;

	if (v == NULL)
	{
		ce_buf_appends(b, "null");
		return;
	}
	switch (v->type)
	{
		case CEJ_NULL:
			ce_buf_appends(b, "null");
			break;
		case CEJ_BOOL:
			ce_buf_appends(b, v->boolean ? "true" : "false");
			break;
		case CEJ_NUMBER:
			serialize_number(v, b);
			break;
		case CEJ_STRING:
			serialize_string(v->str ? v->str : "", v->str ? v->len : 0, b);
			break;
		case CEJ_ARRAY:
			ce_buf_appendc(b, '[');
			for (i = 0; i < v->count; i++)
			{
				if (i > 0)
					ce_buf_appendc(b, ',');
				cejson_serialize(v->items[i], b);
			}
			ce_buf_appendc(b, ']');
			break;
		case CEJ_OBJECT:
			ce_buf_appendc(b, '{');
			for (i = 0; i < v->count; i++)
			{
				if (i > 0)
					ce_buf_appendc(b, ',');
				serialize_string(v->keys[i], v->keylens[i], b);
				ce_buf_appendc(b, ':');
				cejson_serialize(v->items[i], b);
			}
			ce_buf_appendc(b, '}');
			break;
	}
}

/*
 * cejson_to_string
 *		v as a NUL-terminated JSON string.
 */
char *
cejson_to_string(const CeJson *v)
{
	CeBuf		b;

	ce_buf_init(&b);
	cejson_serialize(v, &b);
	return b.data;
}

/* A zeroed value of type t. */
static CeJson *
value_of(CeJsonType t)
{
	CeJson	   *v = ce_alloc(sizeof(CeJson));

	v->type = t;
	return v;
}

/*
 * cejson_new
 *		A new value of the given type: null, false, 0, "", [] or {}.
 */
CeJson *
cejson_new(CeJsonType type)
{
	CeJson	   *v = ce_alloc(sizeof(CeJson));

	v->type = type;
	if (type == CEJ_NUMBER)
		v->is_integer = true;	/* 0 */
	else if (type == CEJ_STRING)
	{
		v->str = ce_strndup("", 0);
		v->len = 0;
	}
	return v;
}

/*
 * cejson_new_string
 *		A string value holding a copy of len bytes at s.
 */
CeJson *
cejson_new_string(const char *s, size_t len)
{
	CeJson	   *v = value_of(CEJ_STRING);

	v->str = ce_strndup(s ? s : "", s ? len : 0);
	v->len = s ? len : 0;
	return v;
}

/*
 * cejson_new_number
 *		A number value; integral values within int64 are also is_integer.
 *		A value that is not finite serializes as null.
 */
CeJson *
cejson_new_number(double d)
{
	CeJson	   *v = value_of(CEJ_NUMBER);

	v->number = d;
	if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
		(double) (long long) d == d)
	{
		v->is_integer = true;
		v->integer = (long long) d;
	}
	return v;
}

/*
 * cejson_new_integer
 *		An integer number value.
 */
CeJson *
cejson_new_integer(long long i)
{
	CeJson	   *v = value_of(CEJ_NUMBER);

	v->number = (double) i;
	v->is_integer = true;
	v->integer = i;
	return v;
}

/*
 * cejson_new_bool
 *		A boolean value.
 */
CeJson *
cejson_new_bool(bool b)
{
	CeJson	   *v = value_of(CEJ_BOOL);

	v->boolean = b;
	return v;
}

/*
 * Grow an array of elements of size elsz from n to n + 1 entries; the
 * server's repalloc() does not take NULL, so an empty one is allocated.
 */
static void *
grow_one(void *p, size_t elsz, int n)
{
	if (p == NULL || n == 0)
		return ce_alloc(elsz * (n + 1));
	return ce_realloc(p, elsz * n, elsz * (n + 1));
}

/*
 * cejson_array_append
 *		Append val (not copied) to array arr.
 */
void
cejson_array_append(CeJson *arr, CeJson *val)
{
	if (arr == NULL || arr->type != CEJ_ARRAY)
		return;
	arr->items = grow_one(arr->items, sizeof(CeJson *), arr->count);
	arr->items[arr->count++] = val;
}

/*
 * cejson_object_set
 *		Set member key of obj to val (not copied): replaces the value of an
 *		existing member in place, or appends a new member.
 */
void
cejson_object_set(CeJson *obj, const char *key, CeJson *val)
{
	size_t		klen;
	int			i;
	int			n;

	if (obj == NULL || obj->type != CEJ_OBJECT || key == NULL)
		return;
	klen = strlen(key);
	for (i = 0; i < obj->count; i++)
	{
		if (obj->keylens[i] == klen && memcmp(obj->keys[i], key, klen) == 0)
		{
			obj->items[i] = val;
			return;
		}
	}
	n = obj->count;
	obj->keys = grow_one(obj->keys, sizeof(char *), n);
	obj->keylens = grow_one(obj->keylens, sizeof(size_t), n);
	obj->items = grow_one(obj->items, sizeof(CeJson *), n);
	obj->keys[n] = ce_strndup(key, klen);
	obj->keylens[n] = klen;
	obj->items[n] = val;
	obj->count = n + 1;
}

/*
 * cejson_copy
 *		A deep copy of v (NULL for NULL).
 */
CeJson *
cejson_copy(const CeJson *v)
{
	CeJson	   *c;
	int			i;

	if (v == NULL)
		return NULL;
	c = ce_alloc(sizeof(CeJson));
	*c = *v;
	c->keys = NULL;
	c->keylens = NULL;
	c->items = NULL;
	if (v->str != NULL)
		c->str = ce_strndup(v->str, v->len);
	if ((v->type == CEJ_ARRAY || v->type == CEJ_OBJECT) && v->count > 0)
	{
		c->items = ce_alloc(sizeof(CeJson *) * v->count);
		for (i = 0; i < v->count; i++)
			c->items[i] = cejson_copy(v->items[i]);
		if (v->type == CEJ_OBJECT)
		{
			c->keys = ce_alloc(sizeof(char *) * v->count);
			c->keylens = ce_alloc(sizeof(size_t) * v->count);
			for (i = 0; i < v->count; i++)
			{
				c->keys[i] = ce_strndup(v->keys[i], v->keylens[i]);
				c->keylens[i] = v->keylens[i];
			}
		}
	}
	else
		c->count = (v->type == CEJ_ARRAY || v->type == CEJ_OBJECT) ? 0 : v->count;
	return c;
}

/* Whether two number values are equal by value. */
static bool
number_equal(const CeJson *a, const CeJson *b)
{
	if (a->is_integer && b->is_integer)
		return a->integer == b->integer;
	if (isnan(a->number) && isnan(b->number))
		return true;			/* only constructed values can be NaN */
	if (a->number != b->number)
		return false;
	/* beyond double's range both may be infinite: compare the text then */
	if (!isfinite(a->number) && a->str != NULL && b->str != NULL)
		return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
	return true;
}

/* Index of member key (klen bytes) in obj, or -1. */
static int
object_find(const CeJson *obj, const char *key, size_t klen)
{
	int			i;

	for (i = 0; i < obj->count; i++)
	{
		if (obj->keylens[i] == klen && memcmp(obj->keys[i], key, klen) == 0)
			return i;
	}
	return -1;
}

/*
 * cejson_equal
 *		Deep equality: numbers by value (1 equals 1.0), objects regardless of
 *		member order.  NULL pointers equal only each other.
 */
bool
cejson_equal(const CeJson *a, const CeJson *b)
{
	int			i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case CEJ_NULL:
			return true;
		case CEJ_BOOL:
			return a->boolean == b->boolean;
		case CEJ_NUMBER:
			return number_equal(a, b);
		case CEJ_STRING:
			return a->len == b->len &&
				(a->len == 0 || memcmp(a->str, b->str, a->len) == 0);
		case CEJ_ARRAY:
			if (a->count != b->count)
				return false;
			for (i = 0; i < a->count; i++)
			{
				if (!cejson_equal(a->items[i], b->items[i]))
					return false;
			}
			return true;
		case CEJ_OBJECT:
			if (a->count != b->count)
				return false;
			for (i = 0; i < a->count; i++)
			{
				int			j;

				/* same position first: the common case is the same order */
				if (a->keylens[i] == b->keylens[i] &&
					memcmp(a->keys[i], b->keys[i], a->keylens[i]) == 0)
					j = i;
				else
					j = object_find(b, a->keys[i], a->keylens[i]);
				if (j < 0 || !cejson_equal(a->items[i], b->items[j]))
					return false;
			}
			return true;
	}
	return false;
}

/*
 * cejson_type_name
 *		The JSON Schema name of a type: null, boolean, number, string, array
 *		or object.
 */
const char *
cejson_type_name(CeJsonType t)
{
	switch (t)
	{
		case CEJ_NULL:
			return "null";
		case CEJ_BOOL:
			return "boolean";
		case CEJ_NUMBER:
			return "number";
		case CEJ_STRING:
			return "string";
		case CEJ_ARRAY:
			return "array";
		case CEJ_OBJECT:
			return "object";
	}
	return "unknown";
}
