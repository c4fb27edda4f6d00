/*-------------------------------------------------------------------------
 *
 * jsonschema.c
 *	  The JSON Schema subset of inputSchema/outputSchema (SPEC section 3),
 *	  pure C.
 *
 * Supported keywords: type (one name or an array of names; "integer"
 * accepts 3 and 3.0 but not 3.5, "number" accepts integers), properties,
 * required, enum, default, minLength and maxLength (counted in characters,
 * not bytes), minimum, maximum, pattern (an unanchored search, as in JSON
 * Schema) and items.  Other keywords are ignored.  A value that has the
 * wrong type gets that one violation; its other keywords are not checked.
 *
 * The built-in pattern matcher is POSIX <regex.h> (extended syntax), with
 * \d and \D accepted for [0-9] and [^0-9] as JSON Schema authors expect.
 * Because glibc's matcher cannot be interrupted, it refuses patterns that
 * could make it run away: longer than CE_MAX_PATTERN_LEN characters, with
 * back references, or whose counted repetitions expand to too large an
 * automaton.  Nothing is cached between calls.
 *
 *-------------------------------------------------------------------------
 */
#include "jsonschema.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CE_MAX_PATTERN_LEN		1000	/* characters of a pattern */
#define CE_MAX_PATTERN_COST		2000	/* atoms after expanding {m,n} */
#define CE_MAX_PATTERN_LOOPS	8	/* starred groups after expanding */
#define CE_MAX_VIOLATIONS		100 /* reported by ce_schema_apply() */

/* State of one ce_schema_apply() call. */
typedef struct SchemaCtx
{
	CeRegexFn	regex;
	CeSchemaResult *result;
	int			dropped;		/* violations beyond CE_MAX_VIOLATIONS */
} SchemaCtx;

static const char *const schema_types[] = {
	"object", "string", "number", "integer", "boolean", "array", "null"
};

/*
 * Rewrite a pattern for regcomp(): \d and \D outside bracket expressions
 * become [0-9] and [^0-9]; with anchor, the search becomes an anchored
 * match of ^.*(pattern), which glibc runs in one pass instead of trying
 * every start position (quadratic on long subjects).  Returns NULL when the
 * pattern is refused: too long, back references, counted repetitions or
 * "+" (which glibc compiles by copying the atom) expanding beyond
 * CE_MAX_PATTERN_COST atoms, more than CE_MAX_PATTERN_LOOPS starred groups
 * after that expansion (glibc's epsilon closures grow exponentially with
 * repeated loops that can match empty, as in (a*)*{20}), more than two
 * quantifiers in a row, groups
 * nested too deeply or unbalanced, or a bracket expression or escape left
 * open.
 */
static char *
prepare_pattern(const char *pattern, bool anchor)
{
	size_t		len = strlen(pattern);
	size_t		i = 0;
	double		sums[33];		/* atom count of each open group */
	double		loops[33];		/* starred groups in each open group */
	double		last_loops = 0; /* starred groups in the last atom */
	bool		last_group = false; /* the last atom is a group */
	int			depth = 0;
	double		last = 0;		/* cost of the last atom or group */
	int			quants = 0;		/* quantifiers in a row */
	CeBuf		b;

	if (len > CE_MAX_PATTERN_LEN)
		return NULL;
	ce_buf_init(&b);
	if (anchor)
		ce_buf_appends(&b, "^.*(");
	sums[0] = 0;
	loops[0] = 0;
	while (i < len)
	{
		char		c = pattern[i];
		bool		quant = false;

		if (c == '\\')
		{
			char		n = pattern[i + 1];

			if (n == '\0' || (n >= '1' && n <= '9'))
				return NULL;
			if (n == 'd')
				ce_buf_appends(&b, "[0-9]");
			else if (n == 'D')
				ce_buf_appends(&b, "[^0-9]");
			else
				ce_buf_append(&b, pattern + i, 2);
			i += 2;
			last = 1;
			last_loops = 0;
			last_group = false;
			sums[depth] += 1;
		}
		else if (c == '[')
		{
			size_t		j = i + 1;

			if (j < len && pattern[j] == '^')
				j++;
			if (j < len && pattern[j] == ']')
				j++;
			while (j < len && pattern[j] != ']')
			{
				if (pattern[j] == '[' && j + 1 < len &&
					(pattern[j + 1] == ':' || pattern[j + 1] == '.' ||
					 pattern[j + 1] == '='))
				{
					char		d = pattern[j + 1];
					size_t		k = j + 2;

					while (k + 1 < len && !(pattern[k] == d && pattern[k + 1] == ']'))
						k++;
					if (k + 1 >= len)
						return NULL;
					j = k + 2;
				}
				else
					j++;
			}
			if (j >= len)
				return NULL;
			ce_buf_append(&b, pattern + i, j + 1 - i);
			i = j + 1;
			last = 1;
			last_loops = 0;
			last_group = false;
			sums[depth] += 1;
		}
		else if (c == '(')
		{
			if (depth + 1 >= (int) (sizeof(sums) / sizeof(sums[0])))
				return NULL;
			sums[++depth] = 0;
			loops[depth] = 0;
			ce_buf_appendc(&b, c);
			i++;
		}
		else if (c == ')')
		{
			if (depth == 0)
				return NULL;	/* unmatched: regcomp refuses it too */
			last = sums[depth] > 1 ? sums[depth] : 1;
			last_loops = loops[depth];
			depth--;
			sums[depth] += last;
			loops[depth] += last_loops;
			last_group = true;
			ce_buf_appendc(&b, c);
			i++;
		}
		else if (c == '{')
		{
			size_t		j = i + 1;
			double		lo = 0;
			double		hi = -1;
			bool		ok = false;

			while (j < len && pattern[j] >= '0' && pattern[j] <= '9')
			{
				if (lo < 1e6)
					lo = lo * 10 + (pattern[j] - '0');
				j++;
			}
			if (j > i + 1 && j < len && pattern[j] == '}')
			{
				hi = lo;		/* {m} */
				ok = true;
			}
			else if (j < len && pattern[j] == ',')	/* glibc takes {,n} too */
			{
				j++;
				if (j < len && pattern[j] >= '0' && pattern[j] <= '9')
				{
					hi = 0;
					while (j < len && pattern[j] >= '0' && pattern[j] <= '9')
					{
						if (hi < 1e6)
							hi = hi * 10 + (pattern[j] - '0');
						j++;
					}
				}
				ok = (j < len && pattern[j] == '}');
			}
			if (ok)
			{
				/* glibc copies the atom max(m,n) times, m+1 for {m,} */
				double		rep = hi >= 0 ? (hi > lo ? hi : lo) : lo + 1;

				if (rep < 1)
					rep = 1;
				sums[depth] += last * (rep - 1);
				last *= rep;
				loops[depth] += last_loops * (rep - 1);
				last_loops *= rep;
				if (hi < 0 && last_group)
				{
					loops[depth] += 1;
					last_loops += 1;
				}
				quant = true;
				ce_buf_append(&b, pattern + i, j + 1 - i);
				i = j + 1;
			}
			else
			{
				ce_buf_appendc(&b, c);
				i++;
				last = 1;
				last_loops = 0;
				last_group = false;
				sums[depth] += 1;
			}
		}
		else if (c == '+')
		{
			/* glibc compiles x+ as xx*: the atom is copied */
			ce_buf_appendc(&b, c);
			i++;
			sums[depth] += last;
			last *= 2;
			loops[depth] += last_loops;
			last_loops *= 2;
			if (last_group)
			{
				loops[depth] += 1;
				last_loops += 1;
			}
			quant = true;
		}
		else
		{
			ce_buf_appendc(&b, c);
			i++;
			if (c == '*' || c == '?')
			{
				if (c == '*' && last_group)
				{
					loops[depth] += 1;
					last_loops += 1;
				}
				quant = true;
			}
			else if (c != '|' && c != '^' && c != '$')
			{
				last = 1;
				last_loops = 0;
				last_group = false;
				sums[depth] += 1;
			}
		}
		if (sums[depth] > CE_MAX_PATTERN_COST || last > CE_MAX_PATTERN_COST ||
			loops[depth] > CE_MAX_PATTERN_LOOPS)
			return NULL;
		/* a**?... makes glibc's epsilon closures explode: allow "*?" only */
		quants = quant ? quants + 1 : 0;
		if (quants > 2)
			return NULL;
	}
	while (depth > 0)
	{
		sums[depth - 1] += sums[depth];
		loops[depth - 1] += loops[depth];
		depth--;
	}
	if (sums[0] > CE_MAX_PATTERN_COST || loops[0] > CE_MAX_PATTERN_LOOPS)
		return NULL;
	if (anchor)
		ce_buf_appendc(&b, ')');
	return b.data;
}

/*
 * A pattern rewritten for a POSIX extended matcher other than the built-in
 * one (\d and \D expanded, not anchored), or NULL when prepare_pattern()
 * refuses it.
 */
char *
ce_schema_prepare_pattern(const char *pattern)
{
	return prepare_pattern(pattern, false);
}

/*
 * The built-in matcher (POSIX extended, see prepare_pattern()): 1 when
 * pattern matches somewhere in subject, 0 when not, -1 when the pattern is
 * invalid or refused.
 */
static int
builtin_regex(const char *pattern, const char *subject, size_t subject_len)
{
	regex_t		re;
	char	   *prepared;
	int			rc;
	int			eflags = 0;
	regmatch_t	m[1];

	/* '.' does not match NUL, so a subject with NUL is searched plainly */
	prepared = prepare_pattern(pattern,
							   memchr(subject, '\0', subject_len) == NULL);
	if (prepared == NULL)
		return -1;
	if (regcomp(&re, prepared, REG_EXTENDED | REG_NOSUB) != 0)
		return -1;
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t) subject_len;
#ifdef REG_STARTEND
	eflags = REG_STARTEND;		/* the subject may contain NUL */
#endif
	rc = regexec(&re, subject, 1, m, eflags);
	regfree(&re);
	return rc == 0 ? 1 : 0;
}

/* Index of member key (klen bytes) of object obj, or -1. */
static int
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
static const CeJson *
keyword(const CeJson *schema, const char *name, CeJsonType type)
{
	const CeJson *v = cejson_get(schema, name);

	return (v != NULL && v->type == type) ? v : NULL;
}

/* Whether a number value is integral ("integer" accepts 3.0). */
static bool
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
static long long
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
			(regex ? regex : builtin_regex) (v->str, "", 0) < 0)
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
			int			rc = (ctx->regex ? ctx->regex : builtin_regex)
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
