/*-------------------------------------------------------------------------
 *
 * schema_validate.c
 *	  A value checked against a JSON Schema of the supported subset: defaults
 *	  applied, every violation collected (ce_schema_apply), and outputs
 *	  filtered to the properties a schema names (ce_schema_filter).
 *
 * "integer" accepts 3 and 3.0 but not 3.5, "number" accepts integers;
 * minLength and maxLength count characters, not bytes; pattern is an
 * unanchored search, as in JSON Schema.  A value that has the wrong type
 * gets that one violation; its other keywords are not checked.
 *
 *-------------------------------------------------------------------------
 */
#include "schema_int.h"

#include <stdarg.h>
#include <stdio.h>

#define CE_MAX_VIOLATIONS		100 /* reported by ce_schema_apply() */

/* State of one ce_schema_apply() call. */
typedef struct SchemaCtx
{
	CeRegexFn	regex;
	CeSchemaResult *result;
	int			dropped;		/* violations beyond CE_MAX_VIOLATIONS */
} SchemaCtx;

/* Number of UTF-8 characters in s (len bytes). */
static long long
utf8_chars(const char *s, size_t len)
{
	long long	n = 0;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		if (((unsigned char) s[i] & 0xC0) != 0x80)
			n++;
	}
	return n;
}

/* Record a violation at path. */
static void
add_violation(SchemaCtx *ctx, const char *path, const char *fmt,...)
			pg_attribute_printf(3, 4);

static void
add_violation(SchemaCtx *ctx, const char *path, const char *fmt,...)
{
	CeSchemaResult *r = ctx->result;
	va_list		ap;
	char		msg[CE_ERR_MSG_LEN];

	if (r->count >= CE_MAX_VIOLATIONS)
	{
		ctx->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* capacity is implicit: 8, then doubled whenever count reaches it */
	if (r->count == 0)
		r->items = ce_alloc(sizeof(CeSchemaViolation) * 8);
	else if (r->count >= 8 && (r->count & (r->count - 1)) == 0)
		r->items = ce_realloc(r->items, sizeof(CeSchemaViolation) * r->count,
							  sizeof(CeSchemaViolation) * r->count * 2);
	r->items[r->count].path = ce_strdup(path);
	r->items[r->count].message = ce_strdup(msg);
	r->count++;
}

/*
 * Path of member key below base: $.name for plain names, $["a b"] for
 * others.
 */
static char *
value_path_member(const char *base, const char *key, size_t klen)
{
	CeBuf		b;
	bool		plain = klen > 0;
	size_t		i;

	for (i = 0; i < klen && plain; i++)
	{
		char		c = key[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (i > 0 && c >= '0' && c <= '9')))
			plain = false;
	}
	ce_buf_init(&b);
	ce_buf_appends(&b, base);
	if (plain)
	{
		ce_buf_appendc(&b, '.');
		ce_buf_append(&b, key, klen);
	}
	else
	{
		ce_buf_appendc(&b, '[');
		cejson_serialize(cejson_new_string(key, klen), &b);
		ce_buf_appendc(&b, ']');
	}
	return b.data;
}

/* Whether value v has the type named by t (a string). */
static bool
type_matches_one(const CeJson *t, const CeJson *v)
{
	CeJsonType vt = v ? v->type : CEJ_NULL;

	if (t->type != CEJ_STRING)
		return false;
	if (strcmp(t->str, "integer") == 0)
		return vt == CEJ_NUMBER && number_is_integral(v);
	return strcmp(t->str, cejson_type_name(vt)) == 0;
}

/* Whether value v satisfies the "type" keyword t. */
static bool
type_matches(const CeJson *t, const CeJson *v)
{
	int			i;

	if (t->type == CEJ_STRING)
		return type_matches_one(t, v);
	if (t->type != CEJ_ARRAY)
		return true;			/* malformed: ignored */
	for (i = 0; i < t->count; i++)
	{
		if (type_matches_one(t->items[i], v))
			return true;
	}
	return false;
}

/* "integer", "string or null", "string, integer or null" */
static char *
type_list(const CeJson *t)
{
	CeBuf		b;
	int			i;
	int			n = 0;

	ce_buf_init(&b);
	if (t->type == CEJ_STRING)
	{
		ce_buf_appends(&b, t->str);
		return b.data;
	}
	for (i = 0; i < t->count; i++)
		if (t->items[i]->type == CEJ_STRING)
			n++;
	for (i = 0; i < t->count && n > 0; i++)
	{
		if (t->items[i]->type != CEJ_STRING)
			continue;
		ce_buf_appends(&b, t->items[i]->str);
		n--;
		if (n == 1)
			ce_buf_appends(&b, " or ");
		else if (n > 1)
			ce_buf_appends(&b, ", ");
	}
	return b.data;
}

/* Compare number a with bound b: <0, 0, >0. */
static int
number_cmp(const CeJson *a, const CeJson *b)
{
	if (a->is_integer && b->is_integer)
		return a->integer < b->integer ? -1 : a->integer > b->integer;
	return a->number < b->number ? -1 : a->number > b->number;
}

/* Apply defaults below value, in place (see ce_schema_apply()). */
static void
apply_defaults(const CeJson *schema, CeJson *value, int depth)
{
	const CeJson *props;
	const CeJson *items;
	int			i;

	if (depth > CE_MAX_JSON_DEPTH || value == NULL ||
		schema == NULL || schema->type != CEJ_OBJECT)
		return;
	if (value->type == CEJ_OBJECT &&
		(props = keyword(schema, "properties", CEJ_OBJECT)) != NULL)
	{
		for (i = 0; i < props->count; i++)
		{
			const CeJson *ps = props->items[i];
			int			m = find_member(value, props->keys[i], props->keylens[i]);
			const CeJson *def;

			if (ps->type != CEJ_OBJECT)
				continue;
			if (m < 0 && (def = cejson_get(ps, "default")) != NULL &&
				strlen(props->keys[i]) == props->keylens[i])
			{
				cejson_object_set(value, props->keys[i], cejson_copy(def));
				m = find_member(value, props->keys[i], props->keylens[i]);
			}
			if (m >= 0)
				apply_defaults(ps, value->items[m], depth + 1);
		}
	}
	if (value->type == CEJ_ARRAY &&
		(items = keyword(schema, "items", CEJ_OBJECT)) != NULL)
	{
		for (i = 0; i < value->count; i++)
			apply_defaults(items, value->items[i], depth + 1);
	}
}

/* Validate value against schema at path, collecting violations. */
static void
validate(SchemaCtx *ctx, const CeJson *schema, const CeJson *value,
		 const char *path, int depth)
{
	const CeJson *t;
	const CeJson *k;
	CeJsonType	vt = value ? value->type : CEJ_NULL;
	int			i;

	if (depth > CE_MAX_JSON_DEPTH || schema == NULL ||
		schema->type != CEJ_OBJECT)
		return;

	if ((t = cejson_get(schema, "type")) != NULL && !type_matches(t, value))
	{
		add_violation(ctx, path, "must be of type %s, not %s", type_list(t),
					  cejson_type_name(vt));
		return;
	}

	if ((k = keyword(schema, "enum", CEJ_ARRAY)) != NULL && k->count > 0)
	{
		bool		found = false;

		for (i = 0; i < k->count && !found; i++)
			found = cejson_equal(k->items[i], value);
		if (!found)
		{
			CeBuf		b;

			ce_buf_init(&b);
			for (i = 0; i < k->count; i++)
			{
				if (i > 0)
					ce_buf_appends(&b, ", ");
				if (b.len > 300)
				{
					ce_buf_appends(&b, "...");
					break;
				}
				cejson_serialize(k->items[i], &b);
			}
			add_violation(ctx, path, "must be one of: %.600s", b.data);
		}
	}

	if (vt == CEJ_NUMBER)
	{
		if ((k = keyword(schema, "minimum", CEJ_NUMBER)) != NULL &&
			number_cmp(value, k) < 0)
			add_violation(ctx, path, "must be at least %.100s",
						  cejson_to_string(k));
		if ((k = keyword(schema, "maximum", CEJ_NUMBER)) != NULL &&
			number_cmp(value, k) > 0)
			add_violation(ctx, path, "must be at most %.100s",
						  cejson_to_string(k));
	}

	if (vt == CEJ_STRING)
	{
		long long	nchars = utf8_chars(value->str, value->len);
		long long	lim;

		if ((lim = nonneg_integer(cejson_get(schema, "minLength"))) >= 0 &&
			nchars < lim)
			add_violation(ctx, path, "must have at least %lld character%s",
						  lim, lim == 1 ? "" : "s");
		if ((lim = nonneg_integer(cejson_get(schema, "maxLength"))) >= 0 &&
			nchars > lim)
			add_violation(ctx, path, "must have at most %lld character%s",
						  lim, lim == 1 ? "" : "s");
		if ((k = keyword(schema, "pattern", CEJ_STRING)) != NULL)
		{
			int			rc = (ctx->regex ? ctx->regex : schema_builtin_regex)
				(k->str, value->str, value->len);

			if (rc == 0)
				add_violation(ctx, path, "must match pattern \"%.200s\"", k->str);
			else if (rc < 0)
				add_violation(ctx, path,
							  "cannot be checked: invalid pattern \"%.200s\"",
							  k->str);
		}
	}

	if (vt == CEJ_OBJECT)
	{
		if ((k = keyword(schema, "required", CEJ_ARRAY)) != NULL)
		{
			for (i = 0; i < k->count; i++)
			{
				const CeJson *r = k->items[i];

				if (r->type == CEJ_STRING &&
					find_member(value, r->str, r->len) < 0)
					add_violation(ctx, value_path_member(path, r->str, r->len),
								  "is required");
			}
		}
		if ((k = keyword(schema, "properties", CEJ_OBJECT)) != NULL)
		{
			for (i = 0; i < k->count; i++)
			{
				int			m = find_member(value, k->keys[i], k->keylens[i]);

				if (m >= 0)
					validate(ctx, k->items[i], value->items[m],
							 value_path_member(path, k->keys[i], k->keylens[i]),
							 depth + 1);
			}
		}
	}

	if (vt == CEJ_ARRAY && (k = keyword(schema, "items", CEJ_OBJECT)) != NULL)
	{
		for (i = 0; i < value->count; i++)
		{
			CeBuf		b;

			ce_buf_init(&b);
			ce_buf_printf(&b, "%s[%d]", path, i);
			validate(ctx, k, value->items[i], b.data, depth + 1);
		}
	}
}

/*
 * ce_schema_apply
 *		Apply the schema's defaults to value in place, then validate it,
 *		collecting every violation (up to CE_MAX_VIOLATIONS, then a last
 *		one that says how many more there were) into *result.
 */
bool
ce_schema_apply(const CeJson *schema, CeJson *value, CeRegexFn regex,
				CeSchemaResult *result)
{
	SchemaCtx	ctx;
	CeSchemaResult local;

	if (result == NULL)
		result = &local;
	result->count = 0;
	result->items = NULL;
	ctx.regex = regex;
	ctx.result = result;
	ctx.dropped = 0;

	apply_defaults(schema, value, 0);
	validate(&ctx, schema, value, "$", 0);
	if (ctx.dropped > 0)
	{
		int			dropped = ctx.dropped;

		/* room for one more: the cap is below a power of two */
		result->items[result->count].path = ce_strdup("$");
		result->items[result->count].message = ce_alloc(96);
		snprintf(result->items[result->count].message, 96,
				 "and %d more violation%s", dropped, dropped == 1 ? "" : "s");
		result->count++;
	}
	return result->count == 0;
}

/*
 * ce_schema_filter
 *		A copy of value keeping only the members that the schema's
 *		"properties" name (top level only); any other value, or a schema
 *		without properties, gives a plain copy.
 */
CeJson *
ce_schema_filter(const CeJson *schema, const CeJson *value)
{
	const CeJson *props = keyword(schema, "properties", CEJ_OBJECT);
	CeJson	   *r;
	int			i;
	int			n = 0;

	if (props == NULL || value == NULL || value->type != CEJ_OBJECT)
		return cejson_copy(value);
	r = cejson_new(CEJ_OBJECT);
	r->keys = ce_alloc(sizeof(char *) * (value->count + 1));
	r->keylens = ce_alloc(sizeof(size_t) * (value->count + 1));
	r->items = ce_alloc(sizeof(CeJson *) * (value->count + 1));
	for (i = 0; i < value->count; i++)
	{
		if (find_member(props, value->keys[i], value->keylens[i]) < 0)
			continue;
		r->keys[n] = ce_strndup(value->keys[i], value->keylens[i]);
		r->keylens[n] = value->keylens[i];
		r->items[n] = cejson_copy(value->items[i]);
		n++;
	}
	r->count = n;
	return r;
}
