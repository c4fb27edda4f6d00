/*
 * fuzz_expr.c
 *	  libFuzzer harness for the expression language (src/pure/expr_parse.c,
 *	  expr_eval.c).
 *
 * Each input is parsed as an expression.  When it parses, the AST is
 * dumped, its variables listed and it is evaluated with a lookup that
 * returns fixed values chosen by the first letter of the path; the result
 * is rendered as text and tested for truthiness.  When it does not parse,
 * the error must be a syntax or limit error with a position inside the
 * text (checked with abort(), so a violation is reported as a crash).
 */
#include "ce_pure.h"
#include "expr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed values by the first character of the first path part. */
static bool
fuzz_lookup(void *arg, const char *const *path, int npath, CeValue *out)
{
	char		c = path[0][0];

	memset(out, 0, sizeof(*out));
	switch (c % 8)
	{
		case 0:
			out->type = CEV_NUMBER;
			out->num = 12.5;
			out->str = "12.50";
			out->len = 5;
			return true;
		case 1:
			out->type = CEV_STRING;
			out->str = "10";
			out->len = 2;
			return true;
		case 2:
			out->type = CEV_STRING;
			out->str = "abc";
			out->len = 3;
			return true;
		case 3:
			out->type = CEV_NULL;
			return true;
		case 4:
			out->type = CEV_BOOL;
			out->b = (npath % 2) == 0;
			return true;
		case 5:
			out->type = CEV_JSON;
			out->str = "{\"k\":[1,2]}";
			out->len = 11;
			return true;
		case 6:
			/* a number without text: the renderer formats it */
			out->type = CEV_NUMBER;
			out->num = -0.1 * npath;
			return true;
		default:
			return false;
	}
}

/* Number of UTF-8 characters in data (continuation bytes not counted). */
static int
count_chars(const uint8_t *data, size_t size)
{
	size_t		i;
	int			n = 0;

	for (i = 0; i < size; i++)
		if ((data[i] & 0xC0) != 0x80)
			n++;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CeError		err;
	CeExpr	   *e;

	memset(&err, 0, sizeof(err));
	e = ce_expr_parse((const char *) data, size, &err);
	if (e == NULL)
	{
		if (err.code != CE_ERR_SYNTAX && err.code != CE_ERR_LIMIT)
			abort();
		if (err.pos < 1 || err.pos > count_chars(data, size) + 1)
			abort();
		if (err.message[0] == '\0')
			abort();
	}
	else
	{
		CeBuf		b;
		CeValue		v;
		char	  **names;
		int			n;
		int			i;
		const char *const *path;
		int			npath;

		ce_buf_init(&b);
		ce_expr_dump(e, &b);
		if (b.len == 0)
			abort();
		n = ce_expr_variables(e, &names);
		for (i = 0; i < n; i++)
			if (names[i] == NULL || names[i][0] == '\0')
				abort();
		if (ce_expr_is_bare_path(e, &path, &npath) &&
			(npath < 1 || npath > CE_MAX_PATH_PARTS))
			abort();
		if (ce_expr_eval(e, fuzz_lookup, NULL, &v, &err))
		{
			ce_buf_init(&b);
			ce_value_to_text(&v, &b);
			(void) ce_value_truthy(&v);
		}
		/* no lookup at all: every variable is null */
		if (ce_expr_eval(e, NULL, NULL, &v, &err))
			(void) ce_value_truthy(&v);
	}
	ce_arena_reset();
	return 0;
}
