/*
 * fuzz_json.c
 *	  libFuzzer harness for the JSON parser and serializer (json_parse.c,
 *	  json_build.c): whatever parses must serialize to text that parses
 *	  again to an equal value and serializes identically; a copy must be
 *	  equal too.
 */
#include "cejson.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CeError		err;
	CeJson	   *v;

	memset(&err, 0, sizeof(err));
	v = cejson_parse((const char *) data, size, &err);
	if (v == NULL)
	{
		/* an error has a code, a message and a position within the text */
		if (err.code == CE_OK || err.message[0] == '\0' || err.pos < 1 ||
			(size_t) err.pos > size + 1)
			abort();
	}
	else
	{
		char	   *s = cejson_to_string(v);
		CeError		err2;
		CeJson	   *w;

		memset(&err2, 0, sizeof(err2));
		w = cejson_parse(s, strlen(s), &err2);
		if (w == NULL || !cejson_equal(v, w) || !cejson_equal(w, v))
			abort();
		if (strcmp(cejson_to_string(w), s) != 0)
			abort();
		if (!cejson_equal(cejson_copy(v), v))
			abort();
	}
	ce_arena_reset();
	return 0;
}
