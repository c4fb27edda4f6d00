/*-------------------------------------------------------------------------
 *
 * template.c
 *	  Templates with {placeholders}: parsing, rendering and the SQL form
 *	  (rules in template.h), pure C.
 *
 * A parsed template is a list of segments, each either literal text (with
 * {{ and }} already turned into single braces) or a placeholder holding a
 * parsed expression.  The SQL form, literal text with $1..$n in place of
 * the placeholders, is built once at parse time.
 *
 *-------------------------------------------------------------------------
 */
#include "ce_pure.h"
#include "template.h"

#include <stdio.h>
#include <string.h>

typedef struct TplSegment
{
	const char *text;			/* literal: unescaped text */
	size_t		len;
	CeExpr	   *expr;			/* placeholder: its expression, else NULL */
} TplSegment;

struct CeTemplate
{
	TplSegment *segs;
	int			nsegs;
	int			nplaceholders;
	char	   *sql;			/* SQL form, NUL-terminated */
};

/* Append a segment to t, growing the array as needed. */
static void
add_segment(CeTemplate *t, int *cap, const char *text, size_t len,
			CeExpr *expr)
{
	if (t->nsegs == *cap)
	{
		int			ncap = *cap ? *cap * 2 : 8;

		t->segs = ce_realloc(t->segs, sizeof(TplSegment) * *cap,
							 sizeof(TplSegment) * ncap);
		*cap = ncap;
	}
	t->segs[t->nsegs].text = text;
	t->segs[t->nsegs].len = len;
	t->segs[t->nsegs].expr = expr;
	t->nsegs++;
	if (expr != NULL)
		t->nplaceholders++;
}

/* Fill err with a syntax error at byte offset off of text. */
static void
tpl_error(CeError *err, const char *text, size_t off, const char *msg,
		  const char *hint)
{
	ce_error_set(err, CE_ERR_SYNTAX, "%s", msg);
	err->pos = ce_char_pos(text, off);
	err->detail[0] = '\0';
	snprintf(err->hint, sizeof(err->hint), "%s", hint ? hint : "");
}

/*
 * Find the } that closes the placeholder whose { is at byte open; quoted
 * strings are skipped (with backslash escapes) and nested braces counted.
 * Returns the offset of the closing brace, or (size_t) -1 with err set.
 */
static size_t
find_close(const char *text, size_t len, size_t open, CeError *err)
{
	size_t		i = open + 1;
	int			depth = 1;

	while (i < len)
	{
		char		c = text[i];

		if (c == '\'' || c == '"')
		{
			size_t		qstart = i;

			i++;
			while (i < len && text[i] != c)
				i += (text[i] == '\\') ? 2 : 1;
			if (i >= len)
			{
				tpl_error(err, text, qstart, "unterminated string", NULL);
				return (size_t) -1;
			}
		}
		else if (c == '{')
			depth++;
		else if (c == '}')
		{
			if (--depth == 0)
				return i;
		}
		i++;
	}
	tpl_error(err, text, open, "unterminated placeholder",
			  "write \"{{\" for a literal brace");
	return (size_t) -1;
}

/*
 * ce_template_parse
 *	  Parse len bytes of template text.  NULL and err (CE_ERR_SYNTAX with
 *	  the position in the whole template, or CE_ERR_LIMIT) on failure.
 */
CeTemplate *
ce_template_parse(const char *text, size_t len, CeError *err)
{
	CeTemplate *t;
	CeError		dummy;
	CeBuf		lit;
	CeBuf		sql;
	int			cap = 0;
	size_t		i = 0;

	if (err == NULL)
		err = &dummy;
	if (len > CE_MAX_TEMPLATE_LEN)
	{
		ce_error_set(err, CE_ERR_LIMIT, "template is too long");
		snprintf(err->detail, sizeof(err->detail),
				 "The template has %zu bytes; the limit is %d.",
				 len, CE_MAX_TEMPLATE_LEN);
		err->hint[0] = '\0';
		err->pos = 1;
		return NULL;
	}
	t = ce_alloc(sizeof(CeTemplate));
	ce_buf_init(&lit);
	ce_buf_init(&sql);
	while (i < len)
	{
		char		c = text[i];

		if (c == '{' && i + 1 < len && text[i + 1] == '{')
		{
			ce_buf_appendc(&lit, '{');
			i += 2;
		}
		else if (c == '}' && i + 1 < len && text[i + 1] == '}')
		{
			ce_buf_appendc(&lit, '}');
			i += 2;
		}
		else if (c == '}')
		{
			tpl_error(err, text, i, "unmatched \"}\" in template",
					  "write \"}}\" for a literal brace");
			return NULL;
		}
		else if (c == '{')
		{
			size_t		close = find_close(text, len, i, err);
			size_t		b;
			CeExpr	   *e;

			if (close == (size_t) -1)
				return NULL;
			for (b = i + 1; b < close; b++)
				if (text[b] != ' ' && text[b] != '\t' && text[b] != '\n' &&
					text[b] != '\r')
					break;
			if (b == close)
			{
				tpl_error(err, text, i, "empty placeholder in template",
						  "write \"{{}}\" for literal braces");
				return NULL;
			}
			e = ce_expr_parse(text + i + 1, close - i - 1, err);
			if (e == NULL)
			{
				/* make the position one in the whole template */
				if (err->pos > 0)
					err->pos += ce_char_pos(text, i + 1) - 1;
				return NULL;
			}
			if (lit.len > 0)
			{
				add_segment(t, &cap, ce_strndup(lit.data, lit.len), lit.len,
							NULL);
				ce_buf_append(&sql, lit.data, lit.len);
				lit.len = 0;
				lit.data[0] = '\0';
			}
			add_segment(t, &cap, NULL, 0, e);
			ce_buf_printf(&sql, "$%d", t->nplaceholders);
			i = close + 1;
		}
		else
		{
			size_t		s = i;

			while (i < len && text[i] != '{' && text[i] != '}')
				i++;
			ce_buf_append(&lit, text + s, i - s);
		}
	}
	if (lit.len > 0)
	{
		add_segment(t, &cap, ce_strndup(lit.data, lit.len), lit.len, NULL);
		ce_buf_append(&sql, lit.data, lit.len);
	}
	t->sql = sql.data;
	return t;
}

/* Number of placeholders. */
int
ce_template_nplaceholders(const CeTemplate *t)
{
	return t->nplaceholders;
}

/* True when the template has no placeholders. */
bool
ce_template_is_constant(const CeTemplate *t)
{
	return t->nplaceholders == 0;
}

/*
 * Evaluate one placeholder.  A bare path whose variable is unset fails with
 * CE_ERR_MISSING_VAR naming the path as written.
 */
static bool
eval_placeholder(const CeExpr *e, CeLookupFn lookup, void *arg,
				 CeValue *out, CeError *err)
{
	const char *const *path;
	int			npath;

	if (ce_expr_is_bare_path(e, &path, &npath))
	{
		memset(out, 0, sizeof(*out));
		if (lookup == NULL || !lookup(arg, path, npath, out))
		{
			CeBuf		name;
			int			i;

			ce_buf_init(&name);
			for (i = 0; i < npath; i++)
			{
				if (i > 0)
					ce_buf_appendc(&name, '.');
				ce_buf_appends(&name, path[i]);
			}
			ce_error_set(err, CE_ERR_MISSING_VAR, "variable \"%s\" is not set",
						 name.data);
			snprintf(err->var, sizeof(err->var), "%s", name.data);
			err->detail[0] = '\0';
			snprintf(err->hint, sizeof(err->hint),
					 "give it a default with {%s|'...'}", name.data);
			err->pos = 0;
			return false;
		}
		return true;
	}
	return ce_expr_eval(e, lookup, arg, out, err);
}

/*
 * ce_template_render
 *	  Render into a new NUL-terminated string (ce_alloc'd).
 */
char *
ce_template_render(const CeTemplate *t, CeLookupFn lookup, void *arg,
				   size_t *outlen, CeError *err)
{
	return ce_template_render_max(t, lookup, arg, (size_t) -1, outlen, err);
}

/*
 * ce_template_render_max
 *	  Render, giving up once the output exceeds maxlen bytes.
 */
char *
ce_template_render_max(const CeTemplate *t, CeLookupFn lookup, void *arg,
					   size_t maxlen, size_t *outlen, CeError *err)
{
	CeBuf		b;
	CeValue		v;
	CeError		dummy;
	int			i;

	if (err == NULL)
		err = &dummy;
	ce_buf_init(&b);
	for (i = 0; i < t->nsegs; i++)
	{
		const TplSegment *s = &t->segs[i];

		if (s->expr == NULL)
		{
			ce_buf_append(&b, s->text, s->len);
			continue;
		}
		if (!eval_placeholder(s->expr, lookup, arg, &v, err))
			return NULL;
		ce_value_to_text(&v, &b);
		if (b.len > maxlen)
		{
			ce_error_set(err, CE_ERR_LIMIT,
						 "template output is too large (more than %zu bytes)", maxlen);
			return NULL;
		}
	}
	if (outlen)
		*outlen = b.len;
	return b.data;
}

/* The SQL form: literal text with $1..$n for the placeholders. */
const char *
ce_template_sql(const CeTemplate *t)
{
	return t->sql;
}

/*
 * ce_template_params
 *	  Evaluate the placeholders, in order, into vals[0..nplaceholders-1].
 */
bool
ce_template_params(const CeTemplate *t, CeLookupFn lookup, void *arg,
				   CeValue *vals, CeError *err)
{
	int			i;
	int			k = 0;
	CeError		dummy;

	if (err == NULL)
		err = &dummy;
	for (i = 0; i < t->nsegs; i++)
	{
		if (t->segs[i].expr == NULL)
			continue;
		if (!eval_placeholder(t->segs[i].expr, lookup, arg, &vals[k], err))
			return false;
		k++;
	}
	return true;
}

/*
 * ce_template_variables
 *	  The variables read by the placeholders: first path parts, without
 *	  duplicates, in order of first appearance.
 */
int
ce_template_variables(const CeTemplate *t, char ***names)
{
	char	  **all = NULL;
	int			n = 0;
	int			cap = 0;
	int			i;
	int			j;
	int			k;

	for (i = 0; i < t->nsegs; i++)
	{
		char	  **vars;
		int			nv;

		if (t->segs[i].expr == NULL)
			continue;
		nv = ce_expr_variables(t->segs[i].expr, &vars);
		for (j = 0; j < nv; j++)
		{
			for (k = 0; k < n; k++)
				if (strcmp(all[k], vars[j]) == 0)
					break;
			if (k < n)
				continue;
			if (n == cap)
			{
				int			ncap = cap ? cap * 2 : 8;

				all = ce_realloc(all, sizeof(char *) * cap,
								 sizeof(char *) * ncap);
				cap = ncap;
			}
			all[n++] = vars[j];
		}
	}
	if (all == NULL)
		all = ce_alloc(sizeof(char *));
	*names = all;
	return n;
}
