/*
 * test_schema.c
 *	  Unit tests of the input schema subset (schema_check.c,
 *	  schema_validate.c, schema_pattern.c).
 */
#include "unit.h"
#include "jsonschema.h"

void		run_schema_tests(void);

/* Parse a NUL-terminated JSON text (NULL when it does not parse). */
static CeJson *
J(const char *s)
{
	CeError		err;
	CeJson	   *v = cejson_parse(s, strlen(s), &err);

	if (v == NULL)
		fprintf(stderr, "bad test JSON [%s]: %s\n", s, err.message);
	return v;
}

/* ce_schema_check of a schema text; returns the error path or "ok". */
static const char *
check(const char *schema, CeError *err)
{
	memset(err, 0, sizeof(*err));
	if (ce_schema_check(J(schema), "inputSchema", NULL, err))
		return "ok";
	return err->path;
}

/* "path: message; path: message" of ce_schema_apply on texts. */
static const char *
apply(const char *schema, const char *value)
{
	CeSchemaResult r;
	CeBuf		b;
	int			i;

	if (ce_schema_apply(J(schema), J(value), NULL, &r))
		return r.count == 0 ? "ok" : "(true with violations)";
	ce_buf_init(&b);
	for (i = 0; i < r.count; i++)
		ce_buf_printf(&b, "%s%s: %s", i ? "; " : "", r.items[i].path,
					  r.items[i].message);
	return b.data;
}

/* The value after defaults were applied, serialized. */
static const char *
defaulted(const char *schema, const char *value)
{
	CeSchemaResult r;
	CeJson	   *v = J(value);

	ce_schema_apply(J(schema), v, NULL, &r);
	return cejson_to_string(v);
}

/* A test matcher: "x" matches only subjects starting with x; "!" is invalid. */
static int
fake_regex(const char *pattern, const char *subject, size_t len)
{
	if (strcmp(pattern, "!") == 0)
		return -1;
	return len > 0 && subject[0] == 'x';
}

/* Well-formedness checks. */
static void
test_check(void)
{
	CeError		err;

	CHECK_STR(check("{\"type\":\"object\",\"properties\":{\"qty\":{\"type\":\"integer\","
					"\"minimum\":1,\"maximum\":10},\"name\":{\"type\":[\"string\",\"null\"],"
					"\"minLength\":1,\"maxLength\":5,\"pattern\":\"^[a-z]+$\"},"
					"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}},"
					"\"required\":[\"qty\"],\"title\":\"ignored\",\"x-other\":1}", &err),
			  "ok", "well formed schema");
	CHECK_STR(check("{}", &err), "ok", "empty schema");

	CHECK_STR(check("{\"properties\":{\"qty\":{\"minimum\":\"1\"}}}", &err),
			  "inputSchema.properties.qty.minimum", "minimum not a number: path");
	CHECK(err.code == CE_ERR_INVALID, "minimum not a number: code");
	CHECK_STR(err.message, "\"minimum\" must be a number, not string",
			  "minimum not a number: message");
	CHECK_STR(check("{\"maximum\":null}", &err), "inputSchema.maximum", "maximum null");
	CHECK_STR(check("{\"type\":\"strng\"}", &err), "inputSchema.type", "unknown type");
	CHECK_STR(err.message, "unknown type \"strng\"", "unknown type message");
	CHECK(strstr(err.hint, "integer") != NULL, "unknown type hint");
	CHECK_STR(check("{\"type\":[\"string\",\"nope\"]}", &err), "inputSchema.type[1]",
			  "unknown type in array");
	CHECK_STR(check("{\"type\":[]}", &err), "inputSchema.type", "empty type array");
	CHECK_STR(check("{\"type\":7}", &err), "inputSchema.type", "type a number");
	CHECK_STR(check("{\"type\":[\"string\",1]}", &err), "inputSchema.type[1]",
			  "type array with a number");
	CHECK_STR(check("{\"properties\":[]}", &err), "inputSchema.properties",
			  "properties not an object");
	CHECK_STR(check("{\"properties\":{\"a\":{\"properties\":{\"b\":3}}}}", &err),
			  "inputSchema.properties.a.properties.b", "nested property not a schema");
	CHECK_STR(err.message, "schema must be an object, not number", "not a schema message");
	CHECK_STR(check("{\"required\":\"a\"}", &err), "inputSchema.required",
			  "required not an array");
	CHECK_STR(check("{\"required\":[\"a\",2]}", &err), "inputSchema.required[1]",
			  "required with a number");
	CHECK_STR(check("{\"enum\":{}}", &err), "inputSchema.enum", "enum not an array");
	CHECK_STR(check("{\"enum\":[]}", &err), "inputSchema.enum", "enum empty");
	CHECK_STR(check("{\"minLength\":-1}", &err), "inputSchema.minLength", "minLength negative");
	CHECK_STR(check("{\"maxLength\":1.5}", &err), "inputSchema.maxLength", "maxLength fraction");
	CHECK_STR(check("{\"maxLength\":\"3\"}", &err), "inputSchema.maxLength", "maxLength string");
	CHECK_STR(check("{\"maxLength\":3.0}", &err), "ok", "maxLength 3.0");
	CHECK_STR(check("{\"pattern\":\"(a\"}", &err), "inputSchema.pattern", "pattern does not compile");
	CHECK_STR(err.message, "invalid regular expression \"(a\"", "pattern message");
	CHECK_STR(check("{\"pattern\":5}", &err), "inputSchema.pattern", "pattern not a string");
	CHECK_STR(check("{\"pattern\":\"(a)\\\\1\"}", &err), "inputSchema.pattern",
			  "back references refused");
	CHECK_STR(check("{\"pattern\":\"((a{1000}){1000}){1000}\"}", &err), "inputSchema.pattern",
			  "exploding repetition refused");
	CHECK_STR(check("{\"pattern\":\"((a{,1000}){,1000}){,1000}\"}", &err), "inputSchema.pattern",
			  "exploding {,n} repetition refused");
	CHECK_STR(check("{\"pattern\":\"(#++++++++++++++++++++++*+++a|b-*\"}", &err),
			  "inputSchema.pattern", "stacked + refused (each copies the atom)");
	CHECK_STR(check("{\"pattern\":\"^[a-z]+@[a-z]+\\\\.[a-z]{2,}$\"}", &err), "ok",
			  "ordinary + accepted");
	CHECK_STR(check("{\"pattern\":\"c???????????????????????????????????????\"}", &err),
			  "inputSchema.pattern", "stacked quantifiers refused");
	CHECK_STR(check("{\"pattern\":\"a.*?b\"}", &err), "ok", "lazy-looking *? accepted");
	CHECK_STR(check("{\"pattern\":\"a)\"}", &err), "inputSchema.pattern", "unmatched )");
	CHECK_STR(check("{\"pattern\":\"((a*)*){100}\"}", &err), "inputSchema.pattern",
			  "repeated nested loops refused");
	CHECK_STR(check("{\"pattern\":\"ab|()*{22,}\"}", &err), "inputSchema.pattern",
			  "repeated empty loop refused");
	CHECK_STR(check("{\"pattern\":\"(x(y)*z){1,8}\"}", &err), "ok",
			  "a few repeated loops accepted");
	CHECK_STR(apply("{\"pattern\":\"^(ab){2}c{,2}$\"}", "\"ababcc\""), "ok",
			  "exact and {,n} counts");
	CHECK_STR(check("{\"pattern\":\"a{10}b{20}[[:alpha:]]{3,5}\"}", &err), "ok",
			  "modest repetition accepted");
	CHECK_STR(check("{\"pattern\":\"[a\"}", &err), "inputSchema.pattern", "open bracket");
	CHECK_STR(check("{\"items\":[{}]}", &err), "inputSchema.items", "items not a schema");
	CHECK_STR(check("{\"items\":{\"items\":{\"type\":\"bad\"}}}", &err),
			  "inputSchema.items.items.type", "nested items");
	CHECK_STR(check("[]", &err), "inputSchema", "schema an array");

	/* a custom matcher decides what compiles */
	memset(&err, 0, sizeof(err));
	CHECK(!ce_schema_check(J("{\"pattern\":\"!\"}"), "s", fake_regex, &err) &&
		  strcmp(err.path, "s.pattern") == 0, "custom matcher invalid");
	CHECK(ce_schema_check(J("{\"pattern\":\"(a\"}"), "s", fake_regex, &err),
		  "custom matcher used instead of regex.h");
	CHECK(!ce_schema_check(J("{\"type\":1}"), "s", NULL, NULL), "NULL err");
}

/* Validation: types. */
static void
test_types(void)
{
	CHECK_STR(apply("{\"type\":\"integer\"}", "3"), "ok", "integer 3");
	CHECK_STR(apply("{\"type\":\"integer\"}", "3.0"), "ok", "integer 3.0");
	CHECK_STR(apply("{\"type\":\"integer\"}", "1e2"), "ok", "integer 1e2");
	CHECK_STR(apply("{\"type\":\"integer\"}", "3.5"),
			  "$: must be of type integer, not number", "integer 3.5");
	CHECK_STR(apply("{\"type\":\"integer\"}", "\"3\""),
			  "$: must be of type integer, not string", "integer string");
	CHECK_STR(apply("{\"type\":\"number\"}", "3"), "ok", "number accepts integers");
	CHECK_STR(apply("{\"type\":\"number\"}", "-0.5"), "ok", "number fraction");
	CHECK_STR(apply("{\"type\":\"number\"}", "true"),
			  "$: must be of type number, not boolean", "number boolean");
	CHECK_STR(apply("{\"type\":\"boolean\"}", "false"), "ok", "boolean");
	CHECK_STR(apply("{\"type\":\"array\"}", "{}"),
			  "$: must be of type array, not object", "array object");
	CHECK_STR(apply("{\"type\":\"object\"}", "[]"),
			  "$: must be of type object, not array", "object array");
	CHECK_STR(apply("{\"type\":\"string\"}", "null"),
			  "$: must be of type string, not null", "string null");
	CHECK_STR(apply("{\"type\":[\"string\",\"null\"]}", "null"), "ok", "type array null");
	CHECK_STR(apply("{\"type\":[\"string\",\"null\"]}", "\"a\""), "ok", "type array string");
	CHECK_STR(apply("{\"type\":[\"string\",\"null\"]}", "1"),
			  "$: must be of type string or null, not number", "type array two");
	CHECK_STR(apply("{\"type\":[\"string\",\"integer\",\"null\"]}", "1.5"),
			  "$: must be of type string, integer or null, not number", "type array three");
	CHECK_STR(apply("{\"type\":[\"integer\",\"boolean\"]}", "2"), "ok", "type array integer");
	/* a type mismatch is the only violation for that value */
	CHECK_STR(apply("{\"type\":\"string\",\"minLength\":3,\"enum\":[\"abc\"]}", "5"),
			  "$: must be of type string, not number", "type mismatch alone");
}

/* Validation: keywords. */
static void
test_keywords(void)
{
	CHECK_STR(apply("{\"minimum\":1}", "0"), "$: must be at least 1", "minimum");
	CHECK_STR(apply("{\"minimum\":1}", "1"), "ok", "minimum inclusive");
	CHECK_STR(apply("{\"minimum\":0.5}", "0.25"), "$: must be at least 0.5", "minimum fraction");
	CHECK_STR(apply("{\"maximum\":10}", "10.5"), "$: must be at most 10", "maximum");
	CHECK_STR(apply("{\"maximum\":10}", "10"), "ok", "maximum inclusive");
	CHECK_STR(apply("{\"maximum\":9007199254740992}", "9007199254740993"),
			  "$: must be at most 9007199254740992", "maximum exact for int64");
	CHECK_STR(apply("{\"minimum\":1}", "\"0\""), "ok", "minimum ignores strings");

	CHECK_STR(apply("{\"enum\":[\"a\",\"b\"]}", "\"c\""), "$: must be one of: \"a\", \"b\"",
			  "enum");
	CHECK_STR(apply("{\"enum\":[\"a\",\"b\"]}", "\"b\""), "ok", "enum match");
	CHECK_STR(apply("{\"enum\":[1,null,{\"k\":[true]}]}", "{\"k\":[true]}"), "ok",
			  "enum deep match");
	CHECK_STR(apply("{\"enum\":[1,2]}", "1.0"), "ok", "enum numbers by value");
	CHECK_STR(apply("{\"enum\":[1,2]}", "\"1\""), "$: must be one of: 1, 2", "enum type strict");

	/* lengths count characters */
	CHECK_STR(apply("{\"maxLength\":5}", "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\""), "ok",
			  "5 two-byte characters");
	CHECK_STR(apply("{\"maxLength\":5}", "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
					"\xf0\x9f\x98\x80\xf0\x9f\x98\x80x\""),
			  "$: must have at most 5 characters", "6 characters, 21 bytes");
	CHECK_STR(apply("{\"minLength\":2}", "\"\xc3\xa9\""),
			  "$: must have at least 2 characters", "minLength one character of two bytes");
	CHECK_STR(apply("{\"minLength\":1}", "\"\""), "$: must have at least 1 character",
			  "minLength singular");
	CHECK_STR(apply("{\"minLength\":1,\"maxLength\":1}", "\"\\u20ac\""), "ok",
			  "escaped euro is one character");

	/* patterns: unanchored search */
	CHECK_STR(apply("{\"pattern\":\"b+\"}", "\"abbc\""), "ok", "pattern unanchored");
	CHECK_STR(apply("{\"pattern\":\"^x\"}", "\"ax\""), "$: must match pattern \"^x\"",
			  "pattern anchored");
	CHECK_STR(apply("{\"pattern\":\"^[0-9]{3}-[a-z]+$\"}", "\"123-abc\""), "ok",
			  "pattern extended syntax");
	CHECK_STR(apply("{\"pattern\":\"^\\\\d{5}$\"}", "\"12345\""), "ok", "\\d is a digit");
	CHECK_STR(apply("{\"pattern\":\"^\\\\d{5}$\"}", "\"1234d\""),
			  "$: must match pattern \"^\\d{5}$\"", "\\d not a letter d");
	CHECK_STR(apply("{\"pattern\":\"^a(b|c)$\"}", "\"ac\""), "ok", "pattern alternation");
	CHECK_STR(apply("{\"pattern\":\"c$\"}", "\"ab\\u0000c\""), "ok", "subject with NUL");
	CHECK_STR(apply("{\"pattern\":\"^x\"}", "5"), "ok", "pattern ignores numbers");
	CHECK_STR(apply("{\"pattern\":\"(\"}", "\"a\""),
			  "$: cannot be checked: invalid pattern \"(\"", "invalid pattern at apply");
	{
		CeSchemaResult r;

		CHECK(!ce_schema_apply(J("{\"pattern\":\"y\"}"), J("\"y\""), fake_regex, &r) &&
			  r.count == 1, "custom matcher at apply (no match)");
		CHECK(ce_schema_apply(J("{\"pattern\":\"y\"}"), J("\"xy\""), fake_regex, &r),
			  "custom matcher at apply (match)");
	}
}

/* Objects, arrays, paths and collecting every violation. */
static void
test_collect(void)
{
	const char *schema =
		"{\"type\":\"object\",\"required\":[\"order\",\"client\",\"email\"],"
		"\"properties\":{"
		"\"order\":{\"type\":\"object\",\"required\":[\"id\"],\"properties\":{"
		"\"qty\":{\"type\":\"integer\",\"minimum\":1},"
		"\"id\":{\"type\":\"string\"}}},"
		"\"items\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":2}},"
		"\"kind\":{\"enum\":[\"a\",\"b\"]},"
		"\"odd key\":{\"type\":\"string\"},"
		"\"client\":{\"type\":\"string\"}}}";

	CHECK_STR(apply(schema, "{\"order\":{\"qty\":0},\"items\":[\"ok\",\"toolong\",3],"
					"\"kind\":\"c\",\"odd key\":1}"),
			  "$.client: is required; $.email: is required; "
			  "$.order.id: is required; $.order.qty: must be at least 1; "
			  "$.items[1]: must have at most 2 characters; "
			  "$.items[2]: must be of type string, not number; "
			  "$.kind: must be one of: \"a\", \"b\"; "
			  "$[\"odd key\"]: must be of type string, not number",
			  "all violations collected with paths");
	CHECK_STR(apply(schema, "{\"order\":{\"id\":\"o1\",\"qty\":2},\"client\":\"c\","
					"\"email\":null,\"extra\":1}"),
			  "ok", "valid input (null present counts, extra keys allowed)");
	CHECK_STR(apply(schema, "[]"), "$: must be of type object, not array", "root type");
	CHECK_STR(apply("{\"required\":[\"a\"]}", "5"), "ok", "required ignores non-objects");
	{
		CeSchemaResult r;

		CHECK(!ce_schema_apply(J("{\"type\":\"string\"}"), NULL, NULL, &r) &&
			  r.count == 1 && strcmp(r.items[0].message,
									 "must be of type string, not null") == 0,
			  "NULL value is null");
		CHECK(ce_schema_apply(J("{\"type\":\"string\"}"), J("\"s\""), NULL, NULL),
			  "NULL result");
	}
	/* many violations are capped */
	{
		CeSchemaResult r;
		CeBuf		b;
		int			i;

		ce_buf_init(&b);
		ce_buf_appendc(&b, '[');
		for (i = 0; i < 150; i++)
			ce_buf_appends(&b, i ? ",1" : "1");
		ce_buf_appendc(&b, ']');
		CHECK(!ce_schema_apply(J("{\"items\":{\"type\":\"string\"}}"), J(b.data), NULL, &r),
			  "many violations");
		CHECK(r.count == 101, "capped at 100 plus a summary");
		CHECK_STR(r.count == 101 ? r.items[100].message : NULL, "and 50 more violations",
				  "summary message");
		CHECK_STR(r.count == 101 ? r.items[99].path : NULL, "$[99]", "last reported path");
	}
}

/* Defaults. */
static void
test_defaults(void)
{
	const char *schema =
		"{\"type\":\"object\",\"required\":[\"mode\",\"opts\"],\"properties\":{"
		"\"mode\":{\"type\":\"string\",\"default\":\"fast\"},"
		"\"n\":{\"type\":\"integer\"},"
		"\"opts\":{\"type\":\"object\",\"default\":{},\"properties\":{"
		"\"retries\":{\"type\":\"integer\",\"default\":3},"
		"\"deep\":{\"default\":{\"x\":1},\"properties\":{\"y\":{\"default\":2}}}}},"
		"\"list\":{\"type\":\"array\",\"items\":{\"properties\":{\"z\":{\"default\":true}}}}}}";

	CHECK_STR(defaulted(schema, "{}"),
			  "{\"mode\":\"fast\",\"opts\":{\"retries\":3,\"deep\":{\"x\":1,\"y\":2}}}",
			  "defaults applied recursively into defaulted objects");
	CHECK_STR(defaulted(schema, "{\"mode\":\"slow\",\"opts\":{\"retries\":0}}"),
			  "{\"mode\":\"slow\",\"opts\":{\"retries\":0,\"deep\":{\"x\":1,\"y\":2}}}",
			  "existing values kept, nested defaults added");
	CHECK_STR(defaulted(schema, "{\"opts\":null}"), "{\"opts\":null,\"mode\":\"fast\"}",
			  "null present is not replaced");
	CHECK_STR(defaulted(schema, "{\"list\":[{},{\"z\":false},3]}"),
			  "{\"list\":[{\"z\":true},{\"z\":false},3],\"mode\":\"fast\","
			  "\"opts\":{\"retries\":3,\"deep\":{\"x\":1,\"y\":2}}}",
			  "defaults inside array items");
	CHECK_STR(apply(schema, "{}"), "ok", "required satisfied by defaults");
	CHECK_STR(apply("{\"properties\":{\"n\":{\"type\":\"integer\",\"default\":\"x\"}}}", "{}"),
			  "$.n: must be of type integer, not string", "defaults are validated too");
	CHECK_STR(defaulted(schema, "[1]"), "[1]", "no defaults into non-objects");
	{
		/* the default is copied, not shared */
		CeJson	   *s = J(schema);
		CeJson	   *v1 = J("{}");
		CeSchemaResult r;

		ce_schema_apply(s, v1, NULL, &r);
		cejson_object_set(cejson_get(v1, "opts"), "retries", cejson_new_integer(9));
		CHECK(cejson_get(cejson_get(cejson_get(cejson_get(s, "properties"), "opts"),
									"properties"), "retries") != NULL &&
			  cejson_get(cejson_get(cejson_get(cejson_get(cejson_get(s, "properties"), "opts"),
											   "properties"), "retries"), "default")->integer == 3,
			  "schema default untouched");
	}
}

/* Output filtering. */
static void
test_filter(void)
{
	CeJson	   *s = J("{\"properties\":{\"a\":{},\"c\":{}}}");
	CeJson	   *v = J("{\"a\":1,\"b\":{\"c\":2},\"c\":[3]}");
	CeJson	   *f = ce_schema_filter(s, v);

	CHECK_STR(cejson_to_string(f), "{\"a\":1,\"c\":[3]}", "filter keeps named");
	cejson_object_set(cejson_get(f, "c") ? f : f, "a", cejson_new_integer(5));
	CHECK(cejson_get(v, "a")->integer == 1, "filter copies");
	CHECK_STR(cejson_to_string(ce_schema_filter(J("{}"), v)),
			  "{\"a\":1,\"b\":{\"c\":2},\"c\":[3]}", "no properties: copy");
	CHECK_STR(cejson_to_string(ce_schema_filter(s, J("[1]"))), "[1]", "non-object: copy");
	CHECK_STR(cejson_to_string(ce_schema_filter(s, J("{\"b\":1}"))), "{}", "nothing kept");
	cejson_object_set(ce_schema_filter(s, J("{\"b\":1}")), "x", cejson_new_integer(1));
	CHECK(1, "set on an empty filtered object");
}

void
run_schema_tests(void)
{
	test_check();
	test_types();
	test_keywords();
	test_collect();
	test_defaults();
	test_filter();
}
