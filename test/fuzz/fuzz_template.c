/*
 * fuzz_template.c
 *	  libFuzzer harness for templates (src/pure/template.c).
 *
 * Each input is parsed as a template.  When it parses, it is rendered
 * with a lookup that returns fixed values (some variables unset, so the
 * missing-variable path runs too), its SQL form and parameters computed
 * and its variables listed.  A parse error must carry a position inside
 * the text; a render error must be a missing variable naming it or an
 * evaluation error (checked with abort()).
 */
#include "ce_pure.h"
#include "expr.h"
#include "template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed values by the first character of the last path part. */
static bool
fuzz_lookup(void *arg, const char *const *path, int npath, CeValue *out)
{
	char		c = path[npath - 1][0];

	memset(out, 0, sizeof(*out));
	switch (c % 6)
	{
		case 0:
			out->type = CEV_NUMBER;
			out->num = 3;
			out->str = "3";
			out->len = 1;
			return true;
		case 1:
			out->type = CEV_STRING;
			out->str = "'); DROP TABLE t; --";
			out->len = 20;
			return true;
		case 2:
			out->type = CEV_NULL;
			return true;
		case 3:
			out->type = CEV_JSON;
			out->str = "[1,{\"a\":null}]";
			out->len = 14;
			return true;
		case 4:
			out->type = CEV_BOOL;
			out->b = true;
			return true;
		default:
			return false;
	}
}

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
	CeTemplate *t;

	memset(&err, 0, sizeof(err));
	t = ce_template_parse((const char *) data, size, &err);
	if (t == NULL)
	{
		if (err.code != CE_ERR_SYNTAX && err.code != CE_ERR_LIMIT)
			abort();
		if (err.pos < 1 || err.pos > count_chars(data, size) + 1)
			abort();
	}
	else
	{
		size_t		len = 0;
		char	   *out;
		const char *sql;
		int			np = ce_template_nplaceholders(t);
		CeValue    *vals;
		char	  **names;
		int			n;

		if (ce_template_is_constant(t) != (np == 0))
			abort();
		out = ce_template_render(t, fuzz_lookup, NULL, &len, &err);
		if (out == NULL)
		{
			if (err.code == CE_ERR_MISSING_VAR && err.var[0] == '\0')
				abort();
			if (err.code != CE_ERR_MISSING_VAR && err.code != CE_ERR_EVAL &&
				err.code != CE_ERR_LIMIT)
				abort();
		}
		else if (out[len] != '\0')
			abort();
		sql = ce_template_sql(t);
		if (sql == NULL)
			abort();
		vals = ce_alloc(sizeof(CeValue) * (np + 1));
		(void) ce_template_params(t, fuzz_lookup, NULL, vals, &err);
		n = ce_template_variables(t, &names);
		if (n > 0 && np == 0)
			abort();
		/* without a lookup every variable is unset */
		(void) ce_template_render(t, NULL, NULL, NULL, &err);
	}
	ce_arena_reset();
	return 0;
}
