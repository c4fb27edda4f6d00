/*-------------------------------------------------------------------------
 *
 * expr_eval.c
 *	  Evaluation of a parsed expression (semantics in expr.h), and what
 *	  callers ask of a tree besides: the variables it reads, whether it is
 *	  a bare path, and its debug form; pure C.
 *
 * Debug form (ce_expr_dump), one S-expression per node:
 *	  null  true  false             literals
 *	  (num 1.50)                    a number, as written
 *	  (str "it's")                  a string; " \ newline tab escaped C-style
 *	  (var order.lines.0.qty)       a variable path, braced or bare
 *	  (! x)                         not
 *	  (== a b)  (!= a b)  (> a b)  (< a b)  (>= a b)  (<= a b)
 *	  (&& a b ...)  (|| a b ...)    and / or, n-ary
 *	  (? c a b)                     c ? a : b
 *	  (| a b ...)                   default: the first non-null operand
 *
 *-------------------------------------------------------------------------
 */
#include "expr_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cmp_names[] = {"==", "!=", ">", "<", ">=", "<="};

/* ---------------------------------------------------------------------
 * Evaluation
 * ---------------------------------------------------------------------
 */

/*
 * ce_value_truthy
 *	  null and false are false; numbers are true unless 0; strings are true
 *	  unless empty or "false"; arrays and objects are true.
 */
bool
ce_value_truthy(const CeValue *v)
{
	switch (v->type)
	{
		case CEV_NULL:
			return false;
		case CEV_BOOL:
			return v->b;
		case CEV_NUMBER:
			return v->num != 0;
		case CEV_STRING:
			return !(v->len == 0 ||
					 (v->len == 5 && memcmp(v->str, "false", 5) == 0));
		case CEV_JSON:
			return true;
	}
	return false;
}

/* Shortest %g form of d that reads back as d. */
static int
format_number(double d, char *buf, size_t size)
{
	int			n = snprintf(buf, size, "%.15g", d);

	if (strtod(buf, NULL) != d)
		n = snprintf(buf, size, "%.17g", d);
	return n;
}

/*
 * The text of a value without copying when possible: *s and *len point into
 * the value, a static word or buf (at least 32 bytes).
 */
static void
value_text(const CeValue *v, char *buf, size_t bufsize,
		   const char **s, size_t *len)
{
	switch (v->type)
	{
		case CEV_NULL:
			*s = "";
			*len = 0;
			return;
		case CEV_BOOL:
			*s = v->b ? "true" : "false";
			*len = strlen(*s);
			return;
		case CEV_NUMBER:
			if (v->str != NULL && v->len > 0)
			{
				*s = v->str;
				*len = v->len;
			}
			else
			{
				int			n = format_number(v->num, buf, bufsize);

				*s = buf;
				*len = (n > 0 && (size_t) n < bufsize) ? (size_t) n : strlen(buf);
			}
			return;
		case CEV_STRING:
		case CEV_JSON:
			*s = v->str ? v->str : "";
			*len = v->str ? v->len : 0;
			return;
	}
	*s = "";
	*len = 0;
}

/*
 * ce_value_to_text
 *	  Append the text of a value: strings and JSON raw, numbers as written,
 *	  booleans true/false, null nothing.
 */
void
ce_value_to_text(const CeValue *v, CeBuf *b)
{
	char		buf[64];
	const char *s;
	size_t		len;

	value_text(v, buf, sizeof(buf), &s, &len);
	ce_buf_append(b, s, len);
}

/* Whether a string is a number as a whole; *d gets its value. */
static bool
numeric_string(const CeValue *v, double *d)
{
	if (v->str == NULL || v->len == 0)
		return false;
	if (expr_scan_number(v->str, v->len) != v->len)
		return false;
	*d = expr_number_value(v->str, v->len);
	return true;
}

/* Apply a comparison operator to the outcome of a three-way comparison. */
static bool
cmp_result(CmpOp op, int c)
{
	switch (op)
	{
		case CMP_EQ:
			return c == 0;
		case CMP_NE:
			return c != 0;
		case CMP_GT:
			return c > 0;
		case CMP_LT:
			return c < 0;
		case CMP_GE:
			return c >= 0;
		case CMP_LE:
			return c <= 0;
	}
	return false;
}

/* Compare two values under op (semantics in expr.h). */
static bool
compare_values(const CeValue *a, const CeValue *b, CmpOp op)
{
	double		x;
	double		y;
	bool		numeric = false;

	if (a->type == CEV_NULL || b->type == CEV_NULL)
	{
		bool		both = (a->type == CEV_NULL && b->type == CEV_NULL);

		if (op == CMP_EQ)
			return both;
		if (op == CMP_NE)
			return !both;
		return false;
	}
	if (a->type == CEV_BOOL && b->type == CEV_BOOL)
		return cmp_result(op, (int) a->b - (int) b->b);
	if (a->type == CEV_NUMBER && b->type == CEV_NUMBER)
	{
		x = a->num;
		y = b->num;
		numeric = true;
	}
	else if (a->type == CEV_NUMBER && b->type == CEV_STRING &&
			 numeric_string(b, &y))
	{
		x = a->num;
		numeric = true;
	}
	else if (a->type == CEV_STRING && b->type == CEV_NUMBER &&
			 numeric_string(a, &x))
	{
		y = b->num;
		numeric = true;
	}
	if (numeric)
	{
		if (x < y)
			return cmp_result(op, -1);
		if (x > y)
			return cmp_result(op, 1);
		if (x == y)
			return cmp_result(op, 0);
		/* unordered (NaN): only != holds */
		return op == CMP_NE;
	}
	else
	{
		char		bufa[64];
		char		bufb[64];
		const char *sa;
		const char *sb;
		size_t		la;
		size_t		lb;
		int			c;

		value_text(a, bufa, sizeof(bufa), &sa, &la);
		value_text(b, bufb, sizeof(bufb), &sb, &lb);
		c = memcmp(sa, sb, la < lb ? la : lb);
		if (c == 0)
			c = (la < lb) ? -1 : (la > lb) ? 1 : 0;
		return cmp_result(op, c);
	}
}

static void
set_bool(CeValue *out, bool b)
{
	memset(out, 0, sizeof(*out));
	out->type = CEV_BOOL;
	out->b = b;
}

/* Evaluate one node; depth guards against a tree not made by the parser. */
static bool
eval_node(const CeExpr *e, CeLookupFn lookup, void *arg, CeValue *out,
		  CeError *err, int depth)
{
	CeValue		a;
	CeValue		b;
	int			i;

	if (depth > 2 * CE_MAX_EXPR_DEPTH + 8)
	{
		ce_error_set(err, CE_ERR_LIMIT, "expression is nested too deeply");
		return false;
	}
	switch (e->kind)
	{
		case EK_NULL:
			memset(out, 0, sizeof(*out));
			out->type = CEV_NULL;
			return true;
		case EK_BOOL:
		case EK_NUM:
		case EK_STR:
			*out = e->val;
			return true;
		case EK_VAR:
			memset(out, 0, sizeof(*out));
			if (lookup == NULL ||
				!lookup(arg, (const char *const *) e->path, e->npath, out))
			{
				memset(out, 0, sizeof(*out));
				out->type = CEV_NULL;
			}
			return true;
		case EK_NOT:
			if (!eval_node(e->args[0], lookup, arg, &a, err, depth + 1))
				return false;
			set_bool(out, !ce_value_truthy(&a));
			return true;
		case EK_CMP:
			if (!eval_node(e->args[0], lookup, arg, &a, err, depth + 1) ||
				!eval_node(e->args[1], lookup, arg, &b, err, depth + 1))
				return false;
			set_bool(out, compare_values(&a, &b, e->op));
			return true;
		case EK_AND:
		case EK_OR:
			for (i = 0; i < e->nargs; i++)
			{
				bool		t;

				if (!eval_node(e->args[i], lookup, arg, &a, err, depth + 1))
					return false;
				t = ce_value_truthy(&a);
				if (e->kind == EK_AND && !t)
				{
					set_bool(out, false);
					return true;
				}
				if (e->kind == EK_OR && t)
				{
					set_bool(out, true);
					return true;
				}
			}
			set_bool(out, e->kind == EK_AND);
			return true;
		case EK_TERNARY:
			if (!eval_node(e->args[0], lookup, arg, &a, err, depth + 1))
				return false;
			return eval_node(e->args[ce_value_truthy(&a) ? 1 : 2],
							 lookup, arg, out, err, depth + 1);
		case EK_DEFAULT:
			for (i = 0; i < e->nargs; i++)
			{
				if (!eval_node(e->args[i], lookup, arg, out, err, depth + 1))
					return false;
				if (out->type != CEV_NULL)
					return true;
			}
			return true;
	}
	ce_error_set(err, CE_ERR_EVAL, "unknown expression node");
	return false;
}

/*
 * ce_expr_eval
 *	  Evaluate an expression; unset variables are null.
 */
bool
ce_expr_eval(const CeExpr *e, CeLookupFn lookup, void *arg, CeValue *out,
			 CeError *err)
{
	return eval_node(e, lookup, arg, out, err, 0);
}

/* ---------------------------------------------------------------------
 * Introspection
 * ---------------------------------------------------------------------
 */

/* Collect the first parts of the paths under e into names (no duplicates). */
static void
collect_vars(const CeExpr *e, char ***names, int *n, int *cap)
{
	int			i;

	if (e->kind == EK_VAR)
	{
		for (i = 0; i < *n; i++)
			if (strcmp((*names)[i], e->path[0]) == 0)
				return;
		if (*n == *cap)
		{
			int			ncap = *cap ? *cap * 2 : 8;

			*names = ce_realloc(*names, sizeof(char *) * *cap,
								sizeof(char *) * ncap);
			*cap = ncap;
		}
		(*names)[(*n)++] = (char *) e->path[0];
		return;
	}
	for (i = 0; i < e->nargs; i++)
		collect_vars(e->args[i], names, n, cap);
}

/*
 * ce_expr_variables
 *	  The first part of each variable path read, in order of appearance.
 */
int
ce_expr_variables(const CeExpr *e, char ***names)
{
	int			n = 0;
	int			cap = 0;

	*names = NULL;
	if (e != NULL)
		collect_vars(e, names, &n, &cap);
	if (*names == NULL)
		*names = ce_alloc(sizeof(char *));
	return n;
}

/*
 * ce_expr_is_bare_path
 *	  True when the expression is one variable path, braced or not.
 */
bool
ce_expr_is_bare_path(const CeExpr *e, const char *const **path, int *npath)
{
	if (e == NULL || e->kind != EK_VAR)
		return false;
	*path = (const char *const *) e->path;
	*npath = e->npath;
	return true;
}

/* Append a string in double quotes with C-style escapes. */
static void
dump_string(CeBuf *b, const char *s, size_t len)
{
	size_t		i;

	ce_buf_appendc(b, '"');
	for (i = 0; i < len; i++)
	{
		if (s[i] == '"' || s[i] == '\\')
		{
			ce_buf_appendc(b, '\\');
			ce_buf_appendc(b, s[i]);
		}
		else if (s[i] == '\n')
			ce_buf_appends(b, "\\n");
		else if (s[i] == '\t')
			ce_buf_appends(b, "\\t");
		else
			ce_buf_appendc(b, s[i]);
	}
	ce_buf_appendc(b, '"');
}

/*
 * ce_expr_dump
 *	  Append the S-expression form of the AST (format in the file header).
 */
void
ce_expr_dump(const CeExpr *e, CeBuf *b)
{
	int			i;

	switch (e->kind)
	{
		case EK_NULL:
			ce_buf_appends(b, "null");
			return;
		case EK_BOOL:
			ce_buf_appends(b, e->val.b ? "true" : "false");
			return;
		case EK_NUM:
			ce_buf_appends(b, "(num ");
			ce_buf_append(b, e->val.str, e->val.len);
			ce_buf_appendc(b, ')');
			return;
		case EK_STR:
			ce_buf_appends(b, "(str ");
			dump_string(b, e->val.str, e->val.len);
			ce_buf_appendc(b, ')');
			return;
		case EK_VAR:
			ce_buf_appends(b, "(var ");
			for (i = 0; i < e->npath; i++)
			{
				if (i > 0)
					ce_buf_appendc(b, '.');
				ce_buf_appends(b, e->path[i]);
			}
			ce_buf_appendc(b, ')');
			return;
		case EK_NOT:
			ce_buf_appends(b, "(!");
			break;
		case EK_CMP:
			ce_buf_appendc(b, '(');
			ce_buf_appends(b, cmp_names[e->op]);
			break;
		case EK_AND:
			ce_buf_appends(b, "(&&");
			break;
		case EK_OR:
			ce_buf_appends(b, "(||");
			break;
		case EK_TERNARY:
			ce_buf_appends(b, "(?");
			break;
		case EK_DEFAULT:
			ce_buf_appends(b, "(|");
			break;
	}
	for (i = 0; i < e->nargs; i++)
	{
		ce_buf_appendc(b, ' ');
		ce_expr_dump(e->args[i], b);
	}
	ce_buf_appendc(b, ')');
}
