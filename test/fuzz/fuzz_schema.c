/*
 * fuzz_schema.c
 *	  libFuzzer harness for the input schema subset (schema_check.c,
 *	  schema_validate.c, schema_pattern.c).  The input is a schema and a
 *	  value: split at the first newline when there is one, else in two
 *	  halves.  A schema that passes ce_schema_check() is
 *	  applied to the value; every violation must have a path and a message,
 *	  and applying again to the defaulted value must give the same count.
 */
#include "jsonschema.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	const char *nl = memchr(text, '\n', size);
	size_t		slen = nl ? (size_t) (nl - text) : size / 2;
	size_t		voff = nl ? slen + 1 : slen;
	CeError		err;
	CeJson	   *schema;
	CeJson	   *value;

	if (size > 65536)
		return 0;
	memset(&err, 0, sizeof(err));
	schema = cejson_parse(text, slen, &err);
	value = cejson_parse(text + voff, size - voff, &err);
	if (schema != NULL)
	{
		memset(&err, 0, sizeof(err));
		if (ce_schema_check(schema, "inputSchema", NULL, &err))
		{
			CeSchemaResult r;
			CeSchemaResult r2;
			bool		ok;
			int			i;

			if (value == NULL)
				value = cejson_new(CEJ_OBJECT);
			ok = ce_schema_apply(schema, value, NULL, &r);
			if (ok != (r.count == 0))
				abort();
			for (i = 0; i < r.count; i++)
			{
				if (r.items[i].path == NULL || r.items[i].path[0] != '$' ||
					r.items[i].message == NULL || r.items[i].message[0] == '\0')
					abort();
			}
			/* defaults are idempotent */
			if (ce_schema_apply(schema, value, NULL, &r2) != ok ||
				r2.count != r.count)
				abort();
			(void) cejson_to_string(value);
			(void) ce_schema_filter(schema, value);
		}
		else if (err.message[0] == '\0' ||
				 (err.code != CE_ERR_INVALID && err.code != CE_ERR_LIMIT) ||
				 strncmp(err.path, "inputSchema", 11) != 0)
			abort();
	}
	ce_arena_reset();
	return 0;
}
