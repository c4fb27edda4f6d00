/*
 * test_json.c
 *	  Unit tests of the JSON document model (json_parse.c, json_build.c).
 */
#include "unit.h"
#include "cejson.h"

#include <math.h>

void		run_json_tests(void);

/* Parse a NUL-terminated text. */
static CeJson *
parse(const char *s, CeError *err)
{
	memset(err, 0, sizeof(*err));
	return cejson_parse(s, strlen(s), err);
}

/* Parse and serialize again; "(error)" when it does not parse. */
static const char *
roundtrip(const char *s)
{
	CeError		err;
	CeJson	   *v = parse(s, &err);

	return v ? cejson_to_string(v) : "(error)";
}

/* Whether s is rejected with the given code and position. */
static bool
rejects_at(const char *s, CeErrCode code, int pos)
{
	CeError		err;
	CeJson	   *v = parse(s, &err);

	if (v != NULL)
		return false;
	if (err.code != code || err.pos != pos)
	{
		fprintf(stderr, "  [%s]: code %d pos %d: %s\n", s, err.code, err.pos,
				err.message);
		return false;
	}
	return true;
}

/* Valid documents and the DOM they give. */
static void
test_valid(void)
{
	CeError		err;
	CeJson	   *v;

	v = parse("  {\"a\": 1, \"b\": [true, false, null], \"c\": \"x\"}  ", &err);
	CHECK(v != NULL && v->type == CEJ_OBJECT && v->count == 3, "object parsed");
	CHECK(cejson_get(v, "a") && cejson_get(v, "a")->is_integer &&
		  cejson_get(v, "a")->integer == 1, "integer member");
	CHECK(cejson_get(v, "b") && cejson_get(v, "b")->count == 3 &&
		  cejson_get(v, "b")->items[0]->type == CEJ_BOOL &&
		  cejson_get(v, "b")->items[0]->boolean &&
		  !cejson_get(v, "b")->items[1]->boolean &&
		  cejson_get(v, "b")->items[2]->type == CEJ_NULL, "array members");
	CHECK_STR(cejson_get(v, "c")->str, "x", "string member");
	CHECK(cejson_get(v, "zz") == NULL, "absent member");
	CHECK(cejson_get(cejson_get(v, "b"), "a") == NULL, "get on array");

	CHECK(parse("0", &err) != NULL, "zero");
	CHECK(parse("-0", &err) != NULL, "minus zero");
	CHECK(parse("\"\"", &err) != NULL, "empty string");
	CHECK(parse("[]", &err) != NULL && parse("[]", &err)->count == 0, "empty array");
	CHECK(parse("{}", &err) != NULL && parse("{}", &err)->count == 0, "empty object");
	CHECK(parse(" \t\r\n[ 1 , 2 ]\n", &err) != NULL, "whitespace everywhere");
	CHECK(parse("null", &err)->type == CEJ_NULL, "null alone");
	CHECK(parse("true", &err)->boolean, "true alone");
}

/* Numbers: text kept, value, integer detection. */
static void
test_numbers(void)
{
	CeError		err;
	CeJson	   *v;

	v = parse("3", &err);
	CHECK(v && v->is_integer && v->integer == 3 && v->number == 3.0, "3");
	v = parse("3.0", &err);
	CHECK(v && !v->is_integer && v->number == 3.0, "3.0 is not written as integer");
	CHECK_STR(v->str, "3.0", "3.0 keeps its text");
	v = parse("-12.5e-1", &err);
	CHECK(v && fabs(v->number + 1.25) < 1e-12, "exponent value");
	CHECK_STR(v->str, "-12.5e-1", "exponent text");
	v = parse("1E+2", &err);
	CHECK(v && v->number == 100.0 && !v->is_integer, "1E+2");
	v = parse("9223372036854775807", &err);
	CHECK(v && v->is_integer && v->integer == 9223372036854775807LL, "int64 max");
	v = parse("-9223372036854775808", &err);
	CHECK(v && v->is_integer && v->integer == (-9223372036854775807LL - 1), "int64 min");
	v = parse("9223372036854775808", &err);
	CHECK(v && !v->is_integer && v->number > 9.2e18, "beyond int64 is not integer");
	v = parse("123456789012345678901234567890", &err);
	CHECK(v && !v->is_integer, "huge is not integer");
	CHECK_STR(cejson_to_string(v), "123456789012345678901234567890", "huge keeps text");
	v = parse("1e400", &err);
	CHECK(v && isinf(v->number), "1e400 parses");
	CHECK_STR(cejson_to_string(v), "1e400", "1e400 keeps text");
	v = parse("-0", &err);
	CHECK(v && v->is_integer && v->integer == 0, "-0 integer");
}

/* Invalid documents: code, position and message. */
static void
test_invalid(void)
{
	CeError		err;

	CHECK(rejects_at("", CE_ERR_SYNTAX, 1), "empty");
	CHECK(rejects_at("   ", CE_ERR_SYNTAX, 4), "blank");
	CHECK(rejects_at("[1,]", CE_ERR_SYNTAX, 4), "trailing comma array");
	CHECK(rejects_at("{\"a\":1,}", CE_ERR_SYNTAX, 8), "trailing comma object");
	CHECK(rejects_at("{\"a\":1 \"b\":2}", CE_ERR_SYNTAX, 8), "missing comma");
	parse("{\"a\":1 \"b\":2}", &err);
	CHECK_STR(err.message, "invalid JSON: expected \",\" or \"}\", found \"\"\"",
			  "missing comma message");
	parse("[1 2]", &err);
	CHECK_STR(err.message, "invalid JSON: expected \",\" or \"]\", found \"2\"",
			  "array missing comma message");
	CHECK(rejects_at("{\"a\" 1}", CE_ERR_SYNTAX, 6), "missing colon");
	CHECK(rejects_at("{a:1}", CE_ERR_SYNTAX, 2), "unquoted key");
	CHECK(rejects_at("01", CE_ERR_SYNTAX, 1), "leading zero");
	CHECK(rejects_at("[-01]", CE_ERR_SYNTAX, 2), "negative leading zero");
	CHECK(rejects_at("1.", CE_ERR_SYNTAX, 3), "no fraction digit");
	CHECK(rejects_at(".5", CE_ERR_SYNTAX, 1), "no integer part");
	CHECK(rejects_at("1e", CE_ERR_SYNTAX, 3), "no exponent digit");
	CHECK(rejects_at("+1", CE_ERR_SYNTAX, 1), "plus sign");
	CHECK(rejects_at("-", CE_ERR_SYNTAX, 2), "lone minus");
	CHECK(rejects_at("NaN", CE_ERR_SYNTAX, 1), "NaN");
	parse("NaN", &err);
	CHECK_STR(err.message, "invalid JSON: invalid token \"NaN\"", "NaN message");
	CHECK(rejects_at("[Infinity]", CE_ERR_SYNTAX, 2), "Infinity");
	CHECK(rejects_at("-Infinity", CE_ERR_SYNTAX, 2), "-Infinity");
	CHECK(rejects_at("tru", CE_ERR_SYNTAX, 1), "truncated true");
	CHECK(rejects_at("nulll", CE_ERR_SYNTAX, 1), "nulll");
	CHECK(rejects_at("True", CE_ERR_SYNTAX, 1), "capital True");
	CHECK(rejects_at("{} x", CE_ERR_SYNTAX, 4), "trailing garbage");
	parse("{} x", &err);
	CHECK_STR(err.message, "invalid JSON: unexpected \"x\" after the value",
			  "trailing garbage message");
	CHECK(rejects_at("1 2", CE_ERR_SYNTAX, 3), "two values");
	CHECK(rejects_at("\"abc", CE_ERR_SYNTAX, 1), "unterminated string");
	CHECK(rejects_at("\"a\tb\"", CE_ERR_SYNTAX, 3), "raw tab in string");
	CHECK(rejects_at("\"a\nb\"", CE_ERR_SYNTAX, 3), "raw newline in string");
	CHECK(rejects_at("\"\\x\"", CE_ERR_SYNTAX, 2), "bad escape");
	CHECK(rejects_at("\"\\u12G4\"", CE_ERR_SYNTAX, 2), "bad hex escape");
	CHECK(rejects_at("\"\\u12\"", CE_ERR_SYNTAX, 2), "short hex escape");
	CHECK(rejects_at("\"\\ud800\"", CE_ERR_SYNTAX, 2), "lone high surrogate");
	CHECK(rejects_at("\"\\ud800\\u0041\"", CE_ERR_SYNTAX, 2), "high then non-low");
	CHECK(rejects_at("\"\\udc00\"", CE_ERR_SYNTAX, 2), "lone low surrogate");
	CHECK(rejects_at("[1] // c", CE_ERR_SYNTAX, 5), "comment");
	CHECK(rejects_at("'a'", CE_ERR_SYNTAX, 1), "single quotes");
	CHECK(rejects_at("[", CE_ERR_SYNTAX, 2), "open array");
	CHECK(rejects_at("{\"a\":", CE_ERR_SYNTAX, 6), "open object");
	CHECK(rejects_at("\"\xff\"", CE_ERR_SYNTAX, 2), "invalid UTF-8 byte");
	CHECK(rejects_at("\"\xc0\xaf\"", CE_ERR_SYNTAX, 2), "overlong UTF-8");
	CHECK(rejects_at("\"\xed\xa0\x80\"", CE_ERR_SYNTAX, 2), "UTF-8 surrogate");
	CHECK(rejects_at("\"\xe2\x82\"", CE_ERR_SYNTAX, 2), "truncated UTF-8");
	/* positions count characters, not bytes */
	CHECK(rejects_at("[\"\xc3\xa9\xc3\xa9\", x]", CE_ERR_SYNTAX, 8), "position after UTF-8");
	CHECK(rejects_at("{\"a\":\n[1,\n2,]}", CE_ERR_SYNTAX, 13), "position across lines");
	/* NUL bytes are not whitespace */
	CHECK(cejson_parse("1\0", 2, &err) == NULL && err.pos == 2, "NUL after value");
	/* NULL text */
	CHECK(cejson_parse(NULL, 0, &err) == NULL, "NULL text");
	/* NULL err does not crash */
	CHECK(cejson_parse("[", 1, NULL) == NULL, "NULL err");
	/* length is honoured: the text is not read past len */
	CHECK(cejson_parse("[1]garbage", 3, &err) != NULL, "len bounds the text");
}

/* Nesting limit. */
static void
test_depth(void)
{
	char		buf[512];
	CeError		err;
	int			i;

	memset(buf, 0, sizeof(buf));
	for (i = 0; i < CE_MAX_JSON_DEPTH; i++)
		buf[i] = '[';
	for (i = 0; i < CE_MAX_JSON_DEPTH; i++)
		buf[CE_MAX_JSON_DEPTH + i] = ']';
	CHECK(parse(buf, &err) != NULL, "maximum depth accepted");

	memset(buf, 0, sizeof(buf));
	for (i = 0; i < CE_MAX_JSON_DEPTH + 1; i++)
		buf[i] = '[';
	for (i = 0; i < CE_MAX_JSON_DEPTH + 1; i++)
		buf[CE_MAX_JSON_DEPTH + 1 + i] = ']';
	CHECK(parse(buf, &err) == NULL && err.code == CE_ERR_LIMIT, "depth + 1 rejected");
	CHECK(err.pos == CE_MAX_JSON_DEPTH + 1, "depth error position");
	CHECK(strstr(err.message, "maximum depth") != NULL, "depth message");

	/* objects count too, and a very deep input does not recurse unboundedly */
	{
		static char deep[300001];

		for (i = 0; i < 50000; i++)
			memcpy(deep + 6 * i, "[{\"a\":", 6);
		deep[300000] = '\0';
		CHECK(parse(deep, &err) == NULL && err.code == CE_ERR_LIMIT, "very deep rejected");
	}
}

/* Strings: escapes decoded, serializer escapes, round trips. */
static void
test_strings(void)
{
	CeError		err;
	CeJson	   *v;

	v = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", &err);
	CHECK(v && v->len == 12 && memcmp(v->str, "a\"b\\c/d\b\f\n\r\t", 12) == 0,
		  "simple escapes decoded");
	CHECK_STR(cejson_to_string(v), "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\"",
			  "simple escapes serialized");

	v = parse("\"\\u00e9\\u20AC\\ud83d\\ude00\"", &err);
	CHECK_STR(v ? v->str : NULL, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\\u escapes to UTF-8");
	CHECK(v && v->len == 9, "decoded length");
	CHECK_STR(cejson_to_string(v), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
			  "UTF-8 serialized as is");

	v = parse("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", &err);
	CHECK(v && v->len == 10 && memcmp(v->str, "caf\xc3\xa9 \xf0\x9f\x98\x80", 10) == 0,
		  "raw UTF-8 passes through");

	v = parse("\"a\\u0000b\"", &err);
	CHECK(v && v->len == 3 && v->str[1] == '\0' && v->str[2] == 'b', "\\u0000 kept with len");
	CHECK_STR(cejson_to_string(v), "\"a\\u0000b\"", "NUL serialized as \\u0000");

	v = parse("\"\\u0001\\u001f\\u007f\"", &err);
	CHECK_STR(cejson_to_string(v), "\"\\u0001\\u001f\x7f\"", "control characters escaped");

	v = cejson_new_string("x\x02y", 3);
	CHECK_STR(cejson_to_string(v), "\"x\\u0002y\"", "constructed string escaped");

	CHECK_STR(roundtrip("{\"k\\\"ey\":\"v\\\\\"}"), "{\"k\\\"ey\":\"v\\\\\"}",
			  "key escapes round trip");
	CHECK_STR(roundtrip(" { \"a\" : [ 1 , 2.50 , -3e2 ] , \"b\" : { } } "),
			  "{\"a\":[1,2.50,-3e2],\"b\":{}}", "compact serialization");
}

/* Duplicate keys: last value, first position. */
static void
test_duplicates(void)
{
	CeError		err;
	CeJson	   *v;
	CeBuf		b;
	int			i;

	v = parse("{\"a\":1,\"b\":2,\"a\":3}", &err);
	CHECK(v && v->count == 2, "duplicate folded");
	CHECK(v && cejson_get(v, "a")->integer == 3, "last value wins");
	CHECK_STR(cejson_to_string(v), "{\"a\":3,\"b\":2}", "first position kept");

	/* many keys (hashed path), with duplicates */
	ce_buf_init(&b);
	ce_buf_appendc(&b, '{');
	for (i = 0; i < 200; i++)
		ce_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i % 50, i);
	ce_buf_appendc(&b, '}');
	v = cejson_parse(b.data, b.len, &err);
	CHECK(v && v->count == 50, "hashed duplicate folding");
	CHECK(v && cejson_get(v, "k7")->integer == 157, "hashed last value wins");
	CHECK(v && v->keylens[7] == 2 && memcmp(v->keys[7], "k7", 2) == 0,
		  "hashed first position kept");

	/* keys differing only after a NUL are distinct */
	v = parse("{\"a\\u0000x\":1,\"a\\u0000y\":2}", &err);
	CHECK(v && v->count == 2, "keys with NUL distinct");
}

/* Constructors, set, copy, equal, type names. */
static void
test_build(void)
{
	CeError		err;
	CeJson	   *o = cejson_new(CEJ_OBJECT);
	CeJson	   *a = cejson_new(CEJ_ARRAY);
	CeJson	   *c;
	CeJson	   *p;

	cejson_object_set(o, "x", cejson_new_integer(1));
	cejson_object_set(o, "y", cejson_new_string("hi", 2));
	cejson_object_set(o, "x", cejson_new_bool(true));
	CHECK(o->count == 2, "set replaces");
	CHECK_STR(cejson_to_string(o), "{\"x\":true,\"y\":\"hi\"}", "set keeps position");
	cejson_array_append(a, cejson_new_number(2.5));
	cejson_array_append(a, cejson_new_number(4.0));
	cejson_array_append(a, cejson_new(CEJ_NULL));
	cejson_array_append(a, cejson_new_number(NAN));
	cejson_object_set(o, "z", a);
	CHECK_STR(cejson_to_string(o),
			  "{\"x\":true,\"y\":\"hi\",\"z\":[2.5,4,null,null]}",
			  "constructed numbers serialized");
	CHECK_STR(cejson_to_string(cejson_new(CEJ_STRING)), "\"\"", "new string");
	CHECK_STR(cejson_to_string(cejson_new(CEJ_NUMBER)), "0", "new number");
	CHECK_STR(cejson_to_string(cejson_new(CEJ_OBJECT)), "{}", "new object");
	CHECK_STR(cejson_to_string(NULL), "null", "NULL serializes as null");

	c = cejson_copy(o);
	CHECK(c != o && cejson_equal(c, o), "copy equal");
	cejson_object_set(c, "x", cejson_new_bool(false));
	CHECK(cejson_get(o, "x")->boolean, "copy is deep (object)");
	cejson_array_append(cejson_get(c, "z"), cejson_new(CEJ_NULL));
	CHECK(cejson_get(o, "z")->count == 4, "copy is deep (array)");
	CHECK(!cejson_equal(c, o), "changed copy differs");
	CHECK(cejson_copy(NULL) == NULL, "copy NULL");

	p = parse("{\"a\":[1,{\"b\":null}],\"c\":\"s\"}", &err);
	CHECK(cejson_equal(p, parse("{\"c\":\"s\",\"a\":[1.0,{\"b\":null}]}", &err)),
		  "equal ignores order, numbers by value");
	CHECK(!cejson_equal(p, parse("{\"c\":\"s\",\"a\":[{\"b\":null},1]}", &err)),
		  "array order matters");
	CHECK(!cejson_equal(p, parse("{\"c\":\"s\"}", &err)), "missing member");
	CHECK(!cejson_equal(p, parse("{\"c\":\"s\",\"d\":[1,{\"b\":null}]}", &err)),
		  "different key");
	CHECK(cejson_equal(parse("1e2", &err), parse("100", &err)), "1e2 == 100");
	CHECK(!cejson_equal(parse("1", &err), parse("\"1\"", &err)), "1 != \"1\"");
	CHECK(!cejson_equal(parse("\"a\"", &err), parse("\"ab\"", &err)), "string length");
	CHECK(!cejson_equal(parse("true", &err), parse("false", &err)), "booleans");
	CHECK(cejson_equal(parse("null", &err), parse("null", &err)), "nulls");
	CHECK(!cejson_equal(parse("9007199254740993", &err), parse("9007199254740992", &err)),
		  "large integers compare exactly");
	CHECK(!cejson_equal(parse("1e400", &err), parse("2e400", &err)),
		  "out of range numbers compare by text");

	CHECK_STR(cejson_type_name(CEJ_NULL), "null", "type null");
	CHECK_STR(cejson_type_name(CEJ_BOOL), "boolean", "type boolean");
	CHECK_STR(cejson_type_name(CEJ_NUMBER), "number", "type number");
	CHECK_STR(cejson_type_name(CEJ_STRING), "string", "type string");
	CHECK_STR(cejson_type_name(CEJ_ARRAY), "array", "type array");
	CHECK_STR(cejson_type_name(CEJ_OBJECT), "object", "type object");
}

/* Serialize then parse again gives an equal value. */
static void
test_reparse(void)
{
	static const char *docs[] = {
		"{\"a\":[1,2,{\"b\":\"\\u0003\\n\"}],\"c\":null,\"d\":-1.5e-7}",
		"[\"\xf0\x9f\x98\x80\",\"\\ud83d\\ude00\",\"\\\\\\\"\"]",
		"{\"\":{\"\":[]}}",
	};
	int			i;

	for (i = 0; i < 3; i++)
	{
		CeError		err;
		CeJson	   *v = parse(docs[i], &err);
		char	   *s = v ? cejson_to_string(v) : NULL;
		CeJson	   *w = s ? parse(s, &err) : NULL;

		CHECK(v && w && cejson_equal(v, w), "reparse equal");
		CHECK(w && strcmp(cejson_to_string(w), s) == 0, "serialization stable");
	}
}

void
run_json_tests(void)
{
	test_valid();
	test_numbers();
	test_invalid();
	test_depth();
	test_strings();
	test_duplicates();
	test_build();
	test_reparse();
}
