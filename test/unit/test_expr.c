/*
 * test_expr.c
 *	  Unit tests of the expression language (src/pure/expr_parse.c and
 *	  expr_eval.c): parsing and precedence (through ce_expr_dump),
 *	  evaluation and coercion rules, truthiness, errors with positions,
 *	  limits, introspection.
 */
#include "unit.h"
#include "ce_pure.h"
#include "expr.h"

#include <stdio.h>
#include <string.h>

void		run_expr_tests(void);

/* A small variable table: dotted path -> value. */
typedef struct TestVar
{
	const char *path;
	CeValType	type;
	const char *text;			/* string/JSON text, number as written */
	double		num;
	bool		b;
} TestVar;

static const TestVar test_vars[] = {
	{"score", CEV_NUMBER, "8", 8, false},
	{"ten_s", CEV_STRING, "10", 0, false},
	{"neg_s", CEV_STRING, "-2.5e1", 0, false},
	{"sp_s", CEV_STRING, " 10", 0, false},
	{"abc", CEV_STRING, "abc", 0, false},
	{"n", CEV_NULL, NULL, 0, false},
	{"t", CEV_BOOL, NULL, 0, true},
	{"f", CEV_BOOL, NULL, 0, false},
	{"true_s", CEV_STRING, "true", 0, false},
	{"name", CEV_STRING, "Ada", 0, false},
	{"empty", CEV_STRING, "", 0, false},
	{"fstr", CEV_STRING, "false", 0, false},
	{"zero", CEV_NUMBER, "0", 0, false},
	{"price", CEV_NUMBER, "1.50", 1.5, false},
	{"order.id", CEV_NUMBER, "42", 42, false},
	{"order.status", CEV_STRING, "paid", 0, false},
	{"items.0.qty", CEV_NUMBER, "3", 3, false},
	{"items.1.qty", CEV_NUMBER, "0", 0, false},
	{"obj", CEV_JSON, "{\"k\": 1}", 0, false},
	{"arr", CEV_JSON, "[]", 0, false},
	{"chain.execution_id", CEV_STRING, "e-1", 0, false},
	{"output.status", CEV_STRING, "ok", 0, false},
};

static int	lookup_calls;

/* Lookup over test_vars; counts its calls (for short-circuit tests). */
static bool
test_lookup(void *arg, const char *const *path, int npath, CeValue *out)
{
	char		joined[256];
	size_t		n = 0;
	int			i;
	size_t		k;

	lookup_calls++;
	joined[0] = '\0';
	for (i = 0; i < npath; i++)
	{
		size_t		l = strlen(path[i]);

		if (n + l + 2 > sizeof(joined))
			return false;
		if (i > 0)
			joined[n++] = '.';
		memcpy(joined + n, path[i], l);
		n += l;
		joined[n] = '\0';
	}
	for (k = 0; k < sizeof(test_vars) / sizeof(test_vars[0]); k++)
	{
		const TestVar *v = &test_vars[k];

		if (strcmp(v->path, joined) != 0)
			continue;
		memset(out, 0, sizeof(*out));
		out->type = v->type;
		out->b = v->b;
		out->num = v->num;
		if (v->text)
		{
			out->str = v->text;
			out->len = strlen(v->text);
		}
		return true;
	}
	return false;
}

/* Parse and dump, or "ERR <code> <pos>: <message>". */
static const char *
dump(const char *src)
{
	CeError		err;
	CeExpr	   *e;
	CeBuf		b;

	memset(&err, 0, sizeof(err));
	ce_buf_init(&b);
	e = ce_expr_parse(src, strlen(src), &err);
	if (e == NULL)
		ce_buf_printf(&b, "ERR %d %d: %s", (int) err.code, err.pos, err.message);
	else
		ce_expr_dump(e, &b);
	return b.data;
}

/* Parse and evaluate; the result as "type:text" (or "ERR ..."). */
static const char *
eval(const char *src)
{
	CeError		err;
	CeExpr	   *e;
	CeValue		v;
	CeBuf		b;
	static const char *const names[] = {"null", "bool", "num", "str", "json"};

	memset(&err, 0, sizeof(err));
	ce_buf_init(&b);
	e = ce_expr_parse(src, strlen(src), &err);
	if (e == NULL)
	{
		ce_buf_printf(&b, "ERR %d %d: %s", (int) err.code, err.pos, err.message);
		return b.data;
	}
	if (!ce_expr_eval(e, test_lookup, NULL, &v, &err))
	{
		ce_buf_printf(&b, "EVALERR %s", err.message);
		return b.data;
	}
	ce_buf_printf(&b, "%s:", names[v.type]);
	ce_value_to_text(&v, &b);
	return b.data;
}

/* Parse error of src: fills *err, returns true when parsing failed. */
static bool
parse_fails(const char *src, size_t len, CeError *err)
{
	memset(err, 0, sizeof(*err));
	return ce_expr_parse(src, len, err) == NULL;
}

static void
test_parse_dump(void)
{
	CHECK_STR(dump("a"), "(var a)", "bare name");
	CHECK_STR(dump("{a}"), "(var a)", "braced name");
	CHECK_STR(dump("{ a.b }"), "(var a.b)", "braced path with spaces");
	CHECK_STR(dump("items.0.qty"), "(var items.0.qty)", "array index part");
	CHECK_STR(dump("{items.10.qty}"), "(var items.10.qty)", "braced index");
	CHECK_STR(dump("output.status"), "(var output.status)", "dotted path");
	CHECK_STR(dump("true"), "true", "true");
	CHECK_STR(dump("false"), "false", "false");
	CHECK_STR(dump("null"), "null", "null");
	CHECK_STR(dump("True"), "(var True)", "keywords are case-sensitive");
	CHECK_STR(dump("NULL"), "(var NULL)", "NULL is a name");
	CHECK_STR(dump("{null}"), "(var null)", "braced keyword is a variable");
	CHECK_STR(dump("1.50"), "(num 1.50)", "number as written");
	CHECK_STR(dump("-3"), "(num -3)", "negative number");
	CHECK_STR(dump("-2.5e-3"), "(num -2.5e-3)", "exponent");
	CHECK_STR(dump("1E+9"), "(num 1E+9)", "exponent upper case");
	CHECK_STR(dump("'it\\'s'"), "(str \"it's\")", "single-quoted escape");
	CHECK_STR(dump("\"a\\\"b\\\\c\\n\\t\""), "(str \"a\\\"b\\\\c\\n\\t\")",
			  "double-quoted escapes");
	CHECK_STR(dump("\"it's\""), "(str \"it's\")", "other quote inside");
	CHECK_STR(dump("''"), "(str \"\")", "empty string");

	/* every operator */
	CHECK_STR(dump("a == 1"), "(== (var a) (num 1))", "==");
	CHECK_STR(dump("a != 1"), "(!= (var a) (num 1))", "!=");
	CHECK_STR(dump("a > 1"), "(> (var a) (num 1))", ">");
	CHECK_STR(dump("a < 1"), "(< (var a) (num 1))", "<");
	CHECK_STR(dump("a >= 1"), "(>= (var a) (num 1))", ">=");
	CHECK_STR(dump("a <= 1"), "(<= (var a) (num 1))", "<=");
	CHECK_STR(dump("a&&b"), "(&& (var a) (var b))", "&&");
	CHECK_STR(dump("a||b"), "(|| (var a) (var b))", "||");
	CHECK_STR(dump("!a"), "(! (var a))", "!");
	CHECK_STR(dump("!!a"), "(! (! (var a)))", "!!");
	CHECK_STR(dump("a|'x'"), "(| (var a) (str \"x\"))", "default");
	CHECK_STR(dump("a ? 'x' : 'y'"), "(? (var a) (str \"x\") (str \"y\"))",
			  "ternary");
	CHECK_STR(dump("a!=b"), "(!= (var a) (var b))", "!= without spaces");
	CHECK_STR(dump("a>=-1"), "(>= (var a) (num -1))", ">= then negative");

	/* precedence */
	CHECK_STR(dump("a || b && c"), "(|| (var a) (&& (var b) (var c)))",
			  "&& binds tighter than ||");
	CHECK_STR(dump("a && b || c && d"),
			  "(|| (&& (var a) (var b)) (&& (var c) (var d)))", "and/or mix");
	CHECK_STR(dump("a && b && c"), "(&& (var a) (var b) (var c))", "n-ary and");
	CHECK_STR(dump("!a == b"), "(! (== (var a) (var b)))",
			  "! applies to the comparison");
	CHECK_STR(dump("!a && b"), "(&& (! (var a)) (var b))", "! binds tighter than &&");
	CHECK_STR(dump("(a || b) && c"), "(&& (|| (var a) (var b)) (var c))",
			  "parentheses");
	CHECK_STR(dump("a > 1 && b < 2 || c"),
			  "(|| (&& (> (var a) (num 1)) (< (var b) (num 2))) (var c))",
			  "comparisons under and/or");
	CHECK_STR(dump("a || b ? 'x' : 'y'"),
			  "(? (|| (var a) (var b)) (str \"x\") (str \"y\"))",
			  "ternary condition is an or");
	CHECK_STR(dump("a ? b : c ? d : e"),
			  "(? (var a) (var b) (? (var c) (var d) (var e)))",
			  "ternary is right-nested");
	CHECK_STR(dump("a ? b ? 1 : 2 : 3"),
			  "(? (var a) (? (var b) (num 1) (num 2)) (num 3))",
			  "ternary in the then branch");
	CHECK_STR(dump("a | b | 'c'"), "(| (var a) (var b) (str \"c\"))",
			  "n-ary default");
	CHECK_STR(dump("a ? 1 : 2 | 3"),
			  "(? (var a) (num 1) (| (num 2) (num 3)))",
			  "else branch is a full expr");
	CHECK_STR(dump("a | b ? 1 : 2"),
			  "(| (var a) (? (var b) (num 1) (num 2)))",
			  "default is lowest");
	CHECK_STR(dump("{score} >= 7 ? 'continue' : 'skip_to_step_6'"),
			  "(? (>= (var score) (num 7)) (str \"continue\") (str \"skip_to_step_6\"))",
			  "conditionalExecution routing");
	/* action words are literals, bare, braced or quoted */
	CHECK_STR(dump("skip"), "(str \"skip\")", "bare skip is a literal");
	CHECK_STR(dump("continue"), "(str \"continue\")", "bare continue");
	CHECK_STR(dump("fail"), "(str \"fail\")", "bare fail");
	CHECK_STR(dump("skip_to_step_6"), "(str \"skip_to_step_6\")",
			  "bare skip_to_step_N");
	CHECK_STR(dump("{skip_to_step_12}"), "(str \"skip_to_step_12\")",
			  "braced action word is a literal too");
	CHECK_STR(dump("{ continue }"), "(str \"continue\")", "braced with spaces");
	CHECK_STR(dump("{x} == 5 ? skip_to_step_3 : continue"),
			  "(? (== (var x) (num 5)) (str \"skip_to_step_3\") (str \"continue\"))",
			  "design document's routing, bare");
	CHECK_STR(dump("{engagement_level} == 'none' ? skip_to_step_6 : continue"),
			  "(? (== (var engagement_level) (str \"none\")) (str \"skip_to_step_6\") (str \"continue\"))",
			  "seed chain condition");
	CHECK_STR(dump("{v} == 'incomplete' && {q} < 70 ? skip_to_step_6 : continue"),
			  "(? (&& (== (var v) (str \"incomplete\")) (< (var q) (num 70))) (str \"skip_to_step_6\") (str \"continue\"))",
			  "seed chain condition with &&");
	CHECK_STR(dump("a ? (b ? fail : skip) : continue"),
			  "(? (var a) (? (var b) (str \"fail\") (str \"skip\")) (str \"continue\"))",
			  "nested actions");
	CHECK_STR(dump("mode == skip || mode != fail"),
			  "(|| (== (var mode) (str \"skip\")) (!= (var mode) (str \"fail\")))",
			  "action words as comparison operands");
	CHECK_STR(dump("!fail"), "(! (str \"fail\"))", "action word under !");
	CHECK_STR(dump("x | skip"), "(| (var x) (str \"skip\"))",
			  "action word as a default");
	CHECK_STR(dump("skip.reason"), "(var skip.reason)",
			  "a dotted path is a path");
	CHECK_STR(dump("skipped"), "(var skipped)", "longer names are names");
	CHECK_STR(dump("failure"), "(var failure)", "failure is a name");
	CHECK_STR(dump("continued"), "(var continued)", "continued is a name");
	CHECK_STR(dump("skip_to_step_"), "(var skip_to_step_)",
			  "skip_to_step_ without a number is a name");
	CHECK_STR(dump("skip_to_step_6a"), "(var skip_to_step_6a)",
			  "skip_to_step_ with a trailing letter is a name");
	CHECK_STR(dump("Skip"), "(var Skip)", "action words are case-sensitive");
	CHECK_STR(dump("  \t a \n "), "(var a)", "surrounding whitespace");
}

static void
test_eval(void)
{
	/* literals and variables */
	CHECK_STR(eval("1.50"), "num:1.50", "number keeps its text");
	CHECK_STR(eval("'x'"), "str:x", "string");
	CHECK_STR(eval("true"), "bool:true", "true");
	CHECK_STR(eval("null"), "null:", "null");
	CHECK_STR(eval("{price}"), "num:1.50", "variable number");
	CHECK_STR(eval("order.status"), "str:paid", "dotted path");
	CHECK_STR(eval("{items.0.qty}"), "num:3", "array index path");
	CHECK_STR(eval("obj"), "json:{\"k\": 1}", "json variable");
	CHECK_STR(eval("nosuch"), "null:", "unset is null");
	CHECK_STR(eval("order.nosuch"), "null:", "unset path is null");
	CHECK_STR(eval("chain.execution_id"), "str:e-1", "built-in path");

	/* numbers */
	CHECK_STR(eval("score == 8"), "bool:true", "num == num");
	CHECK_STR(eval("price == 1.5"), "bool:true", "1.50 == 1.5 numerically");
	CHECK_STR(eval("score > 7"), "bool:true", ">");
	CHECK_STR(eval("score < 7"), "bool:false", "<");
	CHECK_STR(eval("score >= 8"), "bool:true", ">=");
	CHECK_STR(eval("score <= 7.99"), "bool:false", "<=");
	CHECK_STR(eval("score != 8"), "bool:false", "!=");
	CHECK_STR(eval("-1 < 0"), "bool:true", "negative literal");
	CHECK_STR(eval("1e3 == 1000"), "bool:true", "exponent value");
	CHECK_STR(eval("9 < 10"), "bool:true", "numeric, not text, order");

	/* numeric-looking strings against numbers */
	CHECK_STR(eval("'10' > 9"), "bool:true", "\"10\" > 9 numerically");
	CHECK_STR(eval("9 < '10'"), "bool:true", "9 < \"10\" numerically");
	CHECK_STR(eval("ten_s == 10"), "bool:true", "string var == number");
	CHECK_STR(eval("ten_s == 10.0"), "bool:true", "\"10\" == 10.0");
	CHECK_STR(eval("neg_s < -20"), "bool:true", "\"-2.5e1\" is numeric");
	CHECK_STR(eval("sp_s == 10"), "bool:false", "\" 10\" is not numeric");
	CHECK_STR(eval("'abc' > 9"), "bool:true", "\"abc\" > 9 as text");
	CHECK_STR(eval("'abc' < 9"), "bool:false", "\"abc\" < 9 as text");
	CHECK_STR(eval("'10' > '9'"), "bool:false", "two strings compare as text");
	CHECK_STR(eval("'1.0' == '1'"), "bool:false", "strings: text equality");
	CHECK_STR(eval("'1.0' == 1"), "bool:true", "\"1.0\" == 1 numerically");
	CHECK_STR(eval("'1.' == 1"), "bool:false", "\"1.\" is not a number");

	/* text */
	CHECK_STR(eval("name == 'Ada'"), "bool:true", "text equality");
	CHECK_STR(eval("name == 'ada'"), "bool:false", "text is case-sensitive");
	CHECK_STR(eval("'abc' < 'abd'"), "bool:true", "text order");
	CHECK_STR(eval("'ab' < 'abc'"), "bool:true", "prefix is smaller");
	CHECK_STR(eval("'b' > 'abc'"), "bool:true", "bytewise order");
	CHECK_STR(eval("empty == ''"), "bool:true", "empty string equality");
	CHECK_STR(eval("'Z' < 'a'"), "bool:true", "bytewise, not collation");

	/* null */
	CHECK_STR(eval("null == null"), "bool:true", "null == null");
	CHECK_STR(eval("n == null"), "bool:true", "json null == null");
	CHECK_STR(eval("nosuch == null"), "bool:true", "unset == null");
	CHECK_STR(eval("null != 1"), "bool:true", "null != 1");
	CHECK_STR(eval("null == 0"), "bool:false", "null is not 0");
	CHECK_STR(eval("null == ''"), "bool:false", "null is not empty string");
	CHECK_STR(eval("null != null"), "bool:false", "null != null false");
	CHECK_STR(eval("null > 1"), "bool:false", "null > 1");
	CHECK_STR(eval("null < 1"), "bool:false", "null < 1");
	CHECK_STR(eval("null >= null"), "bool:false", "null >= null");
	CHECK_STR(eval("1 <= nosuch"), "bool:false", "1 <= unset");
	CHECK_STR(eval("order.id != null"), "bool:true", "set path != null");

	/* booleans */
	CHECK_STR(eval("t == true"), "bool:true", "bool == bool");
	CHECK_STR(eval("f == false"), "bool:true", "false == false");
	CHECK_STR(eval("t != f"), "bool:true", "bool != bool");
	CHECK_STR(eval("t > f"), "bool:true", "true > false");
	CHECK_STR(eval("true_s == true"), "bool:true", "\"true\" == true as text");
	CHECK_STR(eval("'false' == false"), "bool:true", "\"false\" == false as text");
	CHECK_STR(eval("'yes' == true"), "bool:false", "\"yes\" is not true");
	CHECK_STR(eval("true == 1"), "bool:false", "bool vs number as text");

	/* json */
	CHECK_STR(eval("obj == '{\"k\": 1}'"), "bool:true", "json compares as text");
	CHECK_STR(eval("arr == '[]'"), "bool:true", "array as text");

	/* logic */
	CHECK_STR(eval("t && score"), "bool:true", "&& returns a boolean");
	CHECK_STR(eval("t && zero"), "bool:false", "&& with 0");
	CHECK_STR(eval("f || name"), "bool:true", "|| returns a boolean");
	CHECK_STR(eval("f || empty"), "bool:false", "|| with empty string");
	CHECK_STR(eval("!nosuch"), "bool:true", "! of unset");
	CHECK_STR(eval("!fstr"), "bool:true", "! of \"false\"");
	CHECK_STR(eval("!obj"), "bool:false", "! of object");
	CHECK_STR(eval("!arr"), "bool:false", "empty array is truthy");
	CHECK_STR(eval("!!score"), "bool:true", "!!");
	CHECK_STR(eval("a || b && false"), "bool:false", "precedence in evaluation");
	CHECK_STR(eval("true || false && false"), "bool:true", "&& before ||");
	CHECK_STR(eval("(true || false) && false"), "bool:false", "parentheses");

	lookup_calls = 0;
	CHECK_STR(eval("false && score"), "bool:false", "short-circuit &&");
	CHECK(lookup_calls == 0, "&& does not evaluate the right side");
	lookup_calls = 0;
	CHECK_STR(eval("true || score"), "bool:true", "short-circuit ||");
	CHECK(lookup_calls == 0, "|| does not evaluate the right side");

	/* ternary */
	CHECK_STR(eval("score >= 7 ? 'continue' : 'skip_to_step_6'"), "str:continue",
			  "ternary then");
	CHECK_STR(eval("{score} < 7 ? 'continue' : 'skip_to_step_6'"),
			  "str:skip_to_step_6", "ternary else");
	CHECK_STR(eval("score == 8 ? skip_to_step_3 : continue"),
			  "str:skip_to_step_3", "bare action, then branch");
	CHECK_STR(eval("score == 5 ? skip_to_step_3 : continue"),
			  "str:continue", "bare action, else branch");
	lookup_calls = 0;
	CHECK_STR(eval("true ? skip : fail"), "str:skip", "bare skip");
	CHECK(lookup_calls == 0, "action words are never looked up");
	CHECK_STR(eval("{fail}"), "str:fail", "braced fail");
	CHECK_STR(eval("skip == 'skip' && \"continue\" == continue"), "bool:true",
			  "bare and quoted action words are equal");
	CHECK_STR(eval("nosuch ? 1 : 2"), "num:2", "ternary on null");
	CHECK_STR(eval("zero ? 1 : f ? 2 : 3"), "num:3", "nested ternary");
	CHECK_STR(eval("name ? name : 'anon'"), "str:Ada", "ternary returns value");
	lookup_calls = 0;
	CHECK_STR(eval("true ? 1 : score"), "num:1", "untaken branch");
	CHECK(lookup_calls == 0, "ternary evaluates only the taken branch");

	/* default */
	CHECK_STR(eval("nosuch | 'dflt'"), "str:dflt", "default of unset");
	CHECK_STR(eval("n | 'dflt'"), "str:dflt", "default of json null");
	CHECK_STR(eval("name | 'dflt'"), "str:Ada", "set value wins");
	CHECK_STR(eval("empty | 'dflt'"), "str:", "empty string is not null");
	CHECK_STR(eval("zero | 5"), "num:0", "0 is not null");
	CHECK_STR(eval("f | true"), "bool:false", "false is not null");
	CHECK_STR(eval("x | y | order.id"), "num:42", "chained default");
	CHECK_STR(eval("x | y"), "null:", "all null");
	CHECK_STR(eval("(nosuch | 3) > 2"), "bool:true", "default in parentheses");
	lookup_calls = 0;
	CHECK_STR(eval("1 | score"), "num:1", "default short-circuits");
	CHECK(lookup_calls == 0, "default does not evaluate the rest");
}

static void
test_truthy_text(void)
{
	CeValue		v;
	CeBuf		b;

	memset(&v, 0, sizeof(v));
	v.type = CEV_NULL;
	CHECK(!ce_value_truthy(&v), "null is falsy");
	v.type = CEV_BOOL;
	v.b = true;
	CHECK(ce_value_truthy(&v), "true is truthy");
	v.b = false;
	CHECK(!ce_value_truthy(&v), "false is falsy");
	v.type = CEV_NUMBER;
	v.num = 0;
	CHECK(!ce_value_truthy(&v), "0 is falsy");
	v.num = -0.5;
	CHECK(ce_value_truthy(&v), "-0.5 is truthy");
	v.type = CEV_STRING;
	v.str = "false";
	v.len = 5;
	CHECK(!ce_value_truthy(&v), "\"false\" is falsy");
	v.str = "falsey";
	v.len = 5;					/* not NUL-terminated: "false" */
	CHECK(!ce_value_truthy(&v), "uses len, not NUL");
	v.len = 6;
	CHECK(ce_value_truthy(&v), "\"falsey\" is truthy");
	v.len = 0;
	CHECK(!ce_value_truthy(&v), "empty string is falsy");
	v.str = "0";
	v.len = 1;
	CHECK(ce_value_truthy(&v), "string \"0\" is truthy");
	v.type = CEV_JSON;
	v.str = "{}";
	v.len = 2;
	CHECK(ce_value_truthy(&v), "object is truthy");

	ce_buf_init(&b);
	memset(&v, 0, sizeof(v));
	v.type = CEV_NUMBER;
	v.num = 0.1;
	ce_value_to_text(&v, &b);
	CHECK_STR(b.data, "0.1", "number without text formats shortest");
	b.len = 0;
	v.num = 1e21;
	ce_value_to_text(&v, &b);
	CHECK_STR(b.data, "1e+21", "large number");
	b.len = 0;
	v.str = "1.50";
	v.len = 4;
	ce_value_to_text(&v, &b);
	CHECK_STR(b.data, "1.50", "number as written");
	b.len = 0;
	v.type = CEV_BOOL;
	v.b = false;
	ce_value_to_text(&v, &b);
	CHECK_STR(b.data, "false", "bool text");
	b.len = 0;
	v.type = CEV_NULL;
	ce_value_to_text(&v, &b);
	b.data[b.len] = '\0';
	CHECK_STR(b.data, "", "null text is empty");
	v.type = CEV_STRING;
	v.str = "abcdef";
	v.len = 3;
	ce_value_to_text(&v, &b);
	CHECK_STR(b.data, "abc", "string text uses len");
}

/* One malformed input: expected code, position and message. */
typedef struct BadCase
{
	const char *src;
	CeErrCode	code;
	int			pos;
	const char *message;
} BadCase;

static void
test_errors(void)
{
	static const BadCase cases[] = {
		{"a && && b", CE_ERR_SYNTAX, 6, "syntax error at or near \"&&\""},
		{"&& a", CE_ERR_SYNTAX, 1, "syntax error at or near \"&&\""},
		{"a ==", CE_ERR_SYNTAX, 5, "unexpected end of expression"},
		{"'abc", CE_ERR_SYNTAX, 1, "unterminated string"},
		{"x == \"abc", CE_ERR_SYNTAX, 6, "unterminated string"},
		{"a ? 'x'", CE_ERR_SYNTAX, 8, "expected \":\" in conditional expression"},
		{"a ? 'x' 'y'", CE_ERR_SYNTAX, 9, "expected \":\" in conditional expression"},
		{"(a == 1", CE_ERR_SYNTAX, 8, "unexpected end of expression"},
		{"a == 1)", CE_ERR_SYNTAX, 7, "syntax error at or near \")\""},
		{"a = 1", CE_ERR_SYNTAX, 3, "syntax error at or near \"=\""},
		{"a & b", CE_ERR_SYNTAX, 3, "syntax error at or near \"&\""},
		{"a b", CE_ERR_SYNTAX, 3, "syntax error at or near \"b\""},
		{"{a", CE_ERR_SYNTAX, 3, "unexpected end of expression"},
		{"{}", CE_ERR_SYNTAX, 2, "syntax error at or near \"}\""},
		{"{'a'}", CE_ERR_SYNTAX, 2, "syntax error at or near \"'a'\""},
		{"a.", CE_ERR_SYNTAX, 3, "unexpected end of expression"},
		{"a..b", CE_ERR_SYNTAX, 2, "syntax error at or near \"..\""},
		{"a. b", CE_ERR_SYNTAX, 2, "syntax error at or near \". \""},
		{"a == 1 == 2", CE_ERR_SYNTAX, 8, "syntax error at or near \"==\""},
		{"a @ b", CE_ERR_SYNTAX, 3, "syntax error at or near \"@\""},
		{"'\xc3\xa9t\xc3\xa9' == @", CE_ERR_SYNTAX, 10,
		"syntax error at or near \"@\""},	/* character, not byte, position */
		{"'a\\qb'", CE_ERR_SYNTAX, 3, "invalid escape sequence \"\\q\" in string"},
		{"", CE_ERR_SYNTAX, 1, "empty expression"},
		{"   ", CE_ERR_SYNTAX, 4, "empty expression"},
		{"!", CE_ERR_SYNTAX, 2, "unexpected end of expression"},
		{"a |", CE_ERR_SYNTAX, 4, "unexpected end of expression"},
		{"1.", CE_ERR_SYNTAX, 2, "syntax error at or near \".\""},
		{"- 1", CE_ERR_SYNTAX, 1, "syntax error at or near \"-\""},
		{"a ? : b", CE_ERR_SYNTAX, 5, "syntax error at or near \":\""},
		{"items.0x", CE_ERR_SYNTAX, 7, "syntax error at or near \"0x\""},
	};
	CeError		err;
	size_t		i;
	char		name[200];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		bool		failed = parse_fails(cases[i].src, strlen(cases[i].src), &err);

		snprintf(name, sizeof(name), "error for [%s]", cases[i].src);
		CHECK(failed, name);
		CHECK(err.code == cases[i].code, name);
		if (err.pos != cases[i].pos)
			fprintf(stderr, "  [%s]: pos %d, want %d\n", cases[i].src, err.pos,
					cases[i].pos);
		CHECK(err.pos == cases[i].pos, name);
		CHECK_STR(err.message, cases[i].message, name);
	}

	/* hints */
	parse_fails("a = 1", 5, &err);
	CHECK_STR(err.hint, "use \"==\" to compare", "hint for =");
	parse_fails("a == 1 < 2", 10, &err);
	CHECK(strstr(err.hint, "cannot be chained") != NULL, "hint for chained comparison");
	parse_fails("(a", 2, &err);
	CHECK_STR(err.hint, "the \"(\" at position 1 is not closed", "hint for (");

	/* only len bytes are read */
	CHECK(!parse_fails("a == 1 garbage", 6, &err), "len bounds the text");
	/* a NUL byte is an error, not an end */
	CHECK(parse_fails("a\0b", 3, &err), "NUL byte rejected");
	CHECK(err.pos == 2, "NUL byte position");
	CHECK(parse_fails("'a\0b'", 5, &err), "NUL in string rejected");
	/* a control character */
	CHECK(parse_fails("a\x01", 2, &err), "control character rejected");
	CHECK_STR(err.message, "syntax error at or near character 0x01",
			  "control character message");
	/* err may be NULL */
	CHECK(ce_expr_parse("a ==", 4, NULL) == NULL, "NULL err allowed");
}

static void
test_limits(void)
{
	CeBuf		b;
	CeError		err;
	int			i;

	/* 63 nested parentheses inside the top-level expression: accepted */
	ce_buf_init(&b);
	for (i = 0; i < CE_MAX_EXPR_DEPTH - 1; i++)
		ce_buf_appendc(&b, '(');
	ce_buf_appendc(&b, 'a');
	for (i = 0; i < CE_MAX_EXPR_DEPTH - 1; i++)
		ce_buf_appendc(&b, ')');
	CHECK(!parse_fails(b.data, b.len, &err), "nesting at the limit parses");

	ce_buf_init(&b);
	for (i = 0; i < CE_MAX_EXPR_DEPTH; i++)
		ce_buf_appendc(&b, '(');
	ce_buf_appendc(&b, 'a');
	for (i = 0; i < CE_MAX_EXPR_DEPTH; i++)
		ce_buf_appendc(&b, ')');
	CHECK(parse_fails(b.data, b.len, &err), "nesting beyond the limit fails");
	CHECK(err.code == CE_ERR_LIMIT, "depth is CE_ERR_LIMIT");
	CHECK_STR(err.message, "expression is nested too deeply", "depth message");
	CHECK(err.pos == CE_MAX_EXPR_DEPTH + 1, "depth error position");

	ce_buf_init(&b);
	for (i = 0; i < 1000; i++)
		ce_buf_appendc(&b, '!');
	ce_buf_appendc(&b, 'a');
	CHECK(parse_fails(b.data, b.len, &err), "deep ! fails");
	CHECK(err.code == CE_ERR_LIMIT, "deep ! is CE_ERR_LIMIT");

	ce_buf_init(&b);
	for (i = 0; i < 1000; i++)
		ce_buf_appends(&b, "a ? b : ");
	ce_buf_appendc(&b, 'c');
	CHECK(parse_fails(b.data, b.len, &err), "deep ternary fails");
	CHECK(err.code == CE_ERR_LIMIT, "deep ternary is CE_ERR_LIMIT");

	/* long flat chains are fine (n-ary nodes) */
	ce_buf_init(&b);
	ce_buf_appendc(&b, 'a');
	for (i = 0; i < 500; i++)
		ce_buf_appends(&b, " && a");
	CHECK(!parse_fails(b.data, b.len, &err), "long && chain parses");

	/* length */
	ce_buf_init(&b);
	while (b.len < CE_MAX_EXPR_LEN - 1)
		ce_buf_appends(&b, "a");
	CHECK(!parse_fails(b.data, CE_MAX_EXPR_LEN, &err) ||
		  err.code != CE_ERR_LIMIT, "length at the limit is not a limit error");
	ce_buf_appends(&b, "aaaa");
	CHECK(parse_fails(b.data, CE_MAX_EXPR_LEN + 1, &err), "too long fails");
	CHECK(err.code == CE_ERR_LIMIT, "length is CE_ERR_LIMIT");

	/* path parts */
	CHECK(!parse_fails("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p", 31, &err),
		  "16 path parts");
	CHECK(parse_fails("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", 33, &err),
		  "17 path parts fail");
	CHECK(err.code == CE_ERR_LIMIT, "path parts is CE_ERR_LIMIT");
}

static void
test_introspection(void)
{
	CeError		err;
	CeExpr	   *e;
	char	  **names;
	int			n;
	const char *const *path;
	int			npath;

	memset(&err, 0, sizeof(err));
	e = ce_expr_parse("{b.x} > 1 && a || b.y == c ? d : 'lit' | a", 42, &err);
	CHECK(e != NULL, "parses");
	n = ce_expr_variables(e, &names);
	CHECK(n == 4, "four variables");
	if (n == 4)
	{
		CHECK_STR(names[0], "b", "first variable");
		CHECK_STR(names[1], "a", "second variable");
		CHECK_STR(names[2], "c", "third variable");
		CHECK_STR(names[3], "d", "fourth variable");
	}
	e = ce_expr_parse("1 == 'x'", 8, &err);
	CHECK(ce_expr_variables(e, &names) == 0, "no variables");

	e = ce_expr_parse("{order.lines.0}", 15, &err);
	CHECK(ce_expr_is_bare_path(e, &path, &npath), "braced path is bare");
	CHECK(npath == 3, "three parts");
	if (npath == 3)
	{
		CHECK_STR(path[0], "order", "part 0");
		CHECK_STR(path[2], "0", "part 2");
	}
	e = ce_expr_parse("order.id", 8, &err);
	CHECK(ce_expr_is_bare_path(e, &path, &npath) && npath == 2, "bare path");
	e = ce_expr_parse("(order)", 7, &err);
	CHECK(ce_expr_is_bare_path(e, &path, &npath), "parenthesised path");
	e = ce_expr_parse("order | 1", 9, &err);
	CHECK(!ce_expr_is_bare_path(e, &path, &npath), "default is not bare");
	e = ce_expr_parse("null", 4, &err);
	CHECK(!ce_expr_is_bare_path(e, &path, &npath), "keyword is not bare");
}

void
run_expr_tests(void)
{
	test_parse_dump();
	test_eval();
	test_truthy_text();
	test_errors();
	test_limits();
	test_introspection();
}
