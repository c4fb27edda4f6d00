/*-------------------------------------------------------------------------
 *
 * schema_check.c
 *	  Whether a JSON Schema of the supported subset is well formed
 *	  (ce_schema_check, used when a chain is defined): known types, numbers
 *	  where numbers belong, patterns that compile.
 *
 * Supported keywords: type (one name or an array of names), properties,
 * required, enum, default, minLength, maxLength, minimum, maximum, pattern
 * and items.  Other keywords are ignored.
 *
 *-------------------------------------------------------------------------
 */
#include "schema_int.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const schema_types[] = {
	"object", "string", "number", "integer", "boolean", "array", "null"
};

/* base.name for a schema path (messages of ce_schema_check). */
static char *
path_join(const char *base, const char *name)
{
	size_t		bl = strlen(base);
	size_t		nl = strlen(name);
	char	   *r = ce_alloc(bl + nl + 2);

	memcpy(r, base, bl);
	if (bl > 0)
		r[bl++] = '.';
	memcpy(r + bl, name, nl);
	r[bl + nl] = '\0';
	return r;
}

/* base[i] for a schema path. */
static char *
path_index(const char *base, int i)
{
	CeBuf		b;

	ce_buf_init(&b);
	ce_buf_printf(&b, "%s[%d]", base, i);
	return b.data;
}

/* Fill err with a CE_ERR_INVALID at path; returns false. */
static bool
schema_error(CeError *err, const char *path, const char *hint,
			 const char *fmt,...)
			pg_attribute_printf(4, 5);

static bool
schema_error(CeError *err, const char *path, const char *hint,
			 const char *fmt,...)
{
	va_list		ap;
	char		msg[CE_ERR_MSG_LEN];

	if (err == NULL)
		return false;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ce_error_set(err, CE_ERR_INVALID, "%s", msg);
	snprintf(err->path, sizeof(err->path), "%s", path);
	if (hint)
		snprintf(err->hint, sizeof(err->hint), "%s", hint);
	return false;
}

/* Whether name is one of the schema type names. */
static bool
valid_type_name(const CeJson *t)
{
	size_t		i;

	if (t->type != CEJ_STRING)
		return false;
	for (i = 0; i < sizeof(schema_types) / sizeof(schema_types[0]); i++)
	{
		if (strlen(schema_types[i]) == t->len &&
			memcmp(schema_types[i], t->str, t->len) == 0)
			return true;
	}
	return false;
}

/* Check the "type" keyword t of the schema at path. */
static bool
check_type_keyword(const CeJson *t, const char *path, CeError *err)
{
	static const char *const type_hint =
		"valid types are object, string, number, integer, boolean, array and null";
	char	   *tpath = path_join(path, "type");
	int			i;

	if (t->type == CEJ_STRING)
	{
		if (!valid_type_name(t))
			return schema_error(err, tpath, type_hint, "unknown type \"%.200s\"",
								t->str);
		return true;
	}
	if (t->type != CEJ_ARRAY)
		return schema_error(err, tpath, NULL,
							"\"type\" must be a string or an array of strings");
	if (t->count == 0)
		return schema_error(err, tpath, NULL, "\"type\" must not be an empty array");
	for (i = 0; i < t->count; i++)
	{
		const CeJson *e = t->items[i];

		if (e->type != CEJ_STRING)
			return schema_error(err, path_index(tpath, i), NULL,
								"\"type\" must be a string or an array of strings");
		if (!valid_type_name(e))
			return schema_error(err, path_index(tpath, i), type_hint,
								"unknown type \"%.200s\"", e->str);
	}
	return true;
}

/* ce_schema_check() at one level. */
static bool
check_schema(const CeJson *s, const char *path, int depth, CeRegexFn regex,
			 CeError *err)
{
	static const char *const num_keys[] = {"minimum", "maximum"};
	static const char *const len_keys[] = {"minLength", "maxLength"};
	const CeJson *v;
	int			i;

	if (depth > CE_MAX_JSON_DEPTH)
	{
		if (err)
		{
			ce_error_set(err, CE_ERR_LIMIT, "schema is nested too deeply");
			snprintf(err->path, sizeof(err->path), "%s", path);
		}
		return false;
	}
	if (s == NULL || s->type != CEJ_OBJECT)
		return schema_error(err, path, NULL, "schema must be an object, not %s",
							s ? cejson_type_name(s->type) : "null");

	if ((v = cejson_get(s, "type")) != NULL &&
		!check_type_keyword(v, path, err))
		return false;

	if ((v = cejson_get(s, "properties")) != NULL)
	{
		char	   *ppath = path_join(path, "properties");

		if (v->type != CEJ_OBJECT)
			return schema_error(err, ppath, NULL, "\"properties\" must be an object");
		for (i = 0; i < v->count; i++)
		{
			if (!check_schema(v->items[i], path_join(ppath, v->keys[i]),
							  depth + 1, regex, err))
				return false;
		}
	}

	if ((v = cejson_get(s, "required")) != NULL)
	{
		char	   *rpath = path_join(path, "required");

		if (v->type != CEJ_ARRAY)
			return schema_error(err, rpath, NULL,
								"\"required\" must be an array of strings");
		for (i = 0; i < v->count; i++)
		{
			if (v->items[i]->type != CEJ_STRING)
				return schema_error(err, path_index(rpath, i), NULL,
									"\"required\" must be an array of strings");
		}
	}

	if ((v = cejson_get(s, "enum")) != NULL)
	{
		char	   *epath = path_join(path, "enum");

		if (v->type != CEJ_ARRAY)
			return schema_error(err, epath, NULL, "\"enum\" must be an array");
		if (v->count == 0)
			return schema_error(err, epath, NULL, "\"enum\" must not be empty");
	}

	for (i = 0; i < 2; i++)
	{
		v = cejson_get(s, num_keys[i]);
		if (v != NULL && v->type != CEJ_NUMBER)
			return schema_error(err, path_join(path, num_keys[i]), NULL,
								"\"%s\" must be a number, not %s", num_keys[i],
								cejson_type_name(v->type));
	}
	for (i = 0; i < 2; i++)
	{
		v = cejson_get(s, len_keys[i]);
		if (v != NULL && nonneg_integer(v) < 0)
			return schema_error(err, path_join(path, len_keys[i]), NULL,
								"\"%s\" must be a non-negative integer",
								len_keys[i]);
	}

	if ((v = cejson_get(s, "pattern")) != NULL)
	{
		char	   *ppath = path_join(path, "pattern");

		if (v->type != CEJ_STRING)
			return schema_error(err, ppath, NULL, "\"pattern\" must be a string, not %s",
								cejson_type_name(v->type));
		if (strlen(v->str) != v->len ||
			(regex ? regex : schema_builtin_regex) (v->str, "", 0) < 0)
			return schema_error(err, ppath,
								regex ? NULL :
								"A pattern is a POSIX extended regular expression of at most 1000 characters, without back references.",
								"invalid regular expression \"%.200s\"", v->str);
	}

	if ((v = cejson_get(s, "items")) != NULL &&
		!check_schema(v, path_join(path, "items"), depth + 1, regex, err))
		return false;

	return true;
}

/*
 * ce_schema_check
 *		Check that schema is well formed; on error fill err (CE_ERR_INVALID,
 *		path such as "inputSchema.properties.qty.minimum") and return false.
 */
bool
ce_schema_check(const CeJson *schema, const char *path, CeRegexFn regex,
				CeError *err)
{
	return check_schema(schema, path ? path : "", 0, regex, err);
}
