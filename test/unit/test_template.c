/*
 * test_template.c
 *	  Unit tests of templates (src/pure/template.c): literal braces, paths,
 *	  defaults, ternaries, missing variables, error positions, the SQL
 *	  form and its parameters.
 */
#include "unit.h"
#include "ce_pure.h"
#include "expr.h"
#include "template.h"

#include <stdio.h>
#include <string.h>

void		run_template_tests(void);

/* Variables: dotted path -> value. */
typedef struct TplVar
{
	const char *path;
	CeValType	type;
	const char *text;
	double		num;
	bool		b;
} TplVar;

static const TplVar tpl_vars[] = {
	{"client_name", CEV_STRING, "Ada", 0, false},
	{"qty", CEV_NUMBER, "3", 3, false},
	{"price", CEV_NUMBER, "1.50", 1.5, false},
	{"vip", CEV_BOOL, NULL, 0, true},
	{"note", CEV_NULL, NULL, 0, false},
	{"order.id", CEV_NUMBER, "42", 42, false},
	{"order.lines.0.sku", CEV_STRING, "A-1", 0, false},
	{"tags", CEV_JSON, "[\"a\",\"b\"]", 0, false},
	{"evil", CEV_STRING, "'); DROP TABLE t; --", 0, false},
	{"braces", CEV_STRING, "{x}", 0, false},
	{"chain.execution_id", CEV_STRING, "e-7", 0, false},
};

static bool
tpl_lookup(void *arg, const char *const *path, int npath, CeValue *out)
{
	char		joined[256];
	size_t		n = 0;
	int			i;
	size_t		k;

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
	for (k = 0; k < sizeof(tpl_vars) / sizeof(tpl_vars[0]); k++)
	{
		const TplVar *v = &tpl_vars[k];

		if (strcmp(v->path, joined) != 0)
			continue;
		memset(out, 0, sizeof(*out));
		out->type = v->type;
		out->num = v->num;
		out->b = v->b;
		if (v->text)
		{
			out->str = v->text;
			out->len = strlen(v->text);
		}
		return true;
	}
	return false;
}

/* Parse and render; "ERR <code> <pos>: <message>" on failure. */
static const char *
render(const char *src)
{
	CeError		err;
	CeTemplate *t;
	CeBuf		b;
	char	   *out;
	size_t		len;

	memset(&err, 0, sizeof(err));
	ce_buf_init(&b);
	t = ce_template_parse(src, strlen(src), &err);
	if (t == NULL)
	{
		ce_buf_printf(&b, "ERR %d %d: %s", (int) err.code, err.pos, err.message);
		return b.data;
	}
	out = ce_template_render(t, tpl_lookup, NULL, &len, &err);
	if (out == NULL)
	{
		ce_buf_printf(&b, "RENDERERR %d: %s", (int) err.code, err.message);
		return b.data;
	}
	if (strlen(out) != len)
		return "length mismatch";
	return out;
}

static void
test_render(void)
{
	CHECK_STR(render(""), "", "empty template");
	CHECK_STR(render("plain text"), "plain text", "no placeholders");
	CHECK_STR(render("Dear {client_name}, hi"), "Dear Ada, hi", "one variable");
	CHECK_STR(render("{client_name}{qty}"), "Ada3", "adjacent placeholders");
	CHECK_STR(render("{ client_name }"), "Ada", "spaces in placeholder");
	CHECK_STR(render("{price}"), "1.50", "number as written");
	CHECK_STR(render("{vip}"), "true", "boolean");
	CHECK_STR(render("[{note}]"), "[]", "json null renders empty");
	CHECK_STR(render("{tags}"), "[\"a\",\"b\"]", "array as JSON");
	CHECK_STR(render("#{order.id}"), "#42", "path");
	CHECK_STR(render("{order.lines.0.sku}"), "A-1", "path with index");
	CHECK_STR(render("{chain.execution_id}"), "e-7", "built-in");
	CHECK_STR(render("{braces}"), "{x}", "values are not re-parsed");

	/* defaults */
	CHECK_STR(render("Hi {nick|'friend'}!"), "Hi friend!", "default used");
	CHECK_STR(render("Hi {client_name|'friend'}!"), "Hi Ada!", "default unused");
	CHECK_STR(render("{note|'none'}"), "none", "default for json null");
	CHECK_STR(render("{order.missing|0}"), "0", "default for unset path");
	CHECK_STR(render("{a|b|\"c\"}"), "c", "chained defaults");
	CHECK_STR(render("{x|'}'}"), "}", "brace inside quoted default");
	CHECK_STR(render("{x|'{{'}"), "{{", "double brace inside quotes stays");
	CHECK_STR(render("{x|'it\\'s'}"), "it's", "escaped quote in default");

	/* ternaries and conditions */
	CHECK_STR(render("{vip ? 'Gold' : 'Std'}"), "Gold", "ternary");
	CHECK_STR(render("{qty > 5 ? 'bulk' : 'single'}"), "single", "ternary compare");
	CHECK_STR(render("{qty >= 3 && vip}"), "true", "logic result");
	CHECK_STR(render("{missing ? 'y' : 'n'}"), "n", "ternary on unset");
	CHECK_STR(render("{ {qty} > 2 ? 'many' : 'few'}"), "many",
			  "braced variable inside placeholder");
	CHECK_STR(render("{({qty})}"), "3", "braced variable in parentheses");
	/* "{{" always starts a literal brace, even before a variable */
	CHECK_STR(render("{{qty} > 2 ? 'many' : 'few'}"),
			  "ERR 1 6: unmatched \"}\" in template", "{{ is a literal brace");

	/* literal braces */
	CHECK_STR(render("{{}}"), "{}", "escaped braces");
	CHECK_STR(render("{{qty}}"), "{qty}", "escaped placeholder");
	CHECK_STR(render("{{{qty}}}"), "{3}", "escaped around placeholder");
	CHECK_STR(render("{{\"name\": \"{client_name}\"}}"), "{\"name\": \"Ada\"}",
			  "JSON with a placeholder");
	CHECK_STR(render("a}}b{{c"), "a}b{c", "escapes in text");

	/* missing variables */
	CHECK_STR(render("Hi {nick}"), "RENDERERR 7: variable \"nick\" is not set",
			  "missing variable");
	CHECK_STR(render("{order.missing}"),
			  "RENDERERR 7: variable \"order.missing\" is not set",
			  "missing path named as written");
	CHECK_STR(render("{(nick)}"), "RENDERERR 7: variable \"nick\" is not set",
			  "parenthesised bare path");
	CHECK_STR(render("{nick == null}"), "true", "not a bare path: no error");
	CHECK_STR(render("{nick | note}"), "", "default chain ending in null");
}

/* Parse failure of src: code, pos, message. */
static void
check_parse_error(const char *src, CeErrCode code, int pos, const char *msg,
				  const char *hint)
{
	CeError		err;
	char		name[200];

	memset(&err, 0, sizeof(err));
	snprintf(name, sizeof(name), "template error for [%s]", src);
	CHECK(ce_template_parse(src, strlen(src), &err) == NULL, name);
	CHECK(err.code == code, name);
	if (err.pos != pos)
		fprintf(stderr, "  [%s]: pos %d, want %d\n", src, err.pos, pos);
	CHECK(err.pos == pos, name);
	CHECK_STR(err.message, msg, name);
	if (hint)
		CHECK_STR(err.hint, hint, name);
}

static void
test_errors(void)
{
	CeError		err;
	CeTemplate *t;
	CeBuf		b;
	char	   *out;

	check_parse_error("a {} b", CE_ERR_SYNTAX, 3, "empty placeholder in template",
					  "write \"{{}}\" for literal braces");
	check_parse_error("{  }", CE_ERR_SYNTAX, 1, "empty placeholder in template",
					  NULL);
	check_parse_error("a } b", CE_ERR_SYNTAX, 3, "unmatched \"}\" in template",
					  "write \"}}\" for a literal brace");
	check_parse_error("{qty}}", CE_ERR_SYNTAX, 6, "unmatched \"}\" in template",
					  NULL);
	check_parse_error("x {qty", CE_ERR_SYNTAX, 3, "unterminated placeholder",
					  "write \"{{\" for a literal brace");
	check_parse_error("{'a}", CE_ERR_SYNTAX, 2, "unterminated string", NULL);
	/* expression errors are placed in the whole template */
	check_parse_error("Dear {a &&}", CE_ERR_SYNTAX, 11,
					  "unexpected end of expression", NULL);
	check_parse_error("Dear {a && && b}", CE_ERR_SYNTAX, 12,
					  "syntax error at or near \"&&\"", NULL);
	check_parse_error("line1\n{x} {a ? 'b' 'c'}", CE_ERR_SYNTAX, 20,
					  "expected \":\" in conditional expression", NULL);
	check_parse_error("\xc3\xa9\xc3\xa9 {a = 1}", CE_ERR_SYNTAX, 7,
					  "syntax error at or near \"=\"", NULL);
	check_parse_error("{\"name\": 1}", CE_ERR_SYNTAX, 8,
					  "syntax error at or near \":\"", NULL);

	/* limit */
	ce_buf_init(&b);
	while (b.len <= CE_MAX_TEMPLATE_LEN)
		ce_buf_appends(&b, "abcdefgh");
	memset(&err, 0, sizeof(err));
	CHECK(ce_template_parse(b.data, b.len, &err) == NULL, "too long template");
	CHECK(err.code == CE_ERR_LIMIT, "template length is CE_ERR_LIMIT");
	CHECK(ce_template_parse(b.data, CE_MAX_TEMPLATE_LEN, &err) != NULL,
		  "template at the limit");

	/* missing variable: err->var and code */
	memset(&err, 0, sizeof(err));
	t = ce_template_parse("x {order.ref} y", 15, &err);
	CHECK(t != NULL, "parses");
	out = ce_template_render(t, tpl_lookup, NULL, NULL, &err);
	CHECK(out == NULL, "render fails");
	CHECK(err.code == CE_ERR_MISSING_VAR, "CE_ERR_MISSING_VAR");
	CHECK_STR(err.var, "order.ref", "err->var names the path");
	CHECK_STR(err.message, "variable \"order.ref\" is not set", "message");
	/* no lookup at all: every bare variable is missing */
	out = ce_template_render(t, NULL, NULL, NULL, &err);
	CHECK(out == NULL && err.code == CE_ERR_MISSING_VAR, "NULL lookup");

	/* rendering stops once the output exceeds the limit */
	memset(&err, 0, sizeof(err));
	t = ce_template_parse("{client_name}{client_name}{client_name}", 39, &err);
	CHECK(t != NULL, "parses");
	out = ce_template_render_max(t, tpl_lookup, NULL, 8, NULL, &err);
	CHECK(out == NULL && err.code == CE_ERR_LIMIT, "render_max past the limit is CE_ERR_LIMIT");
	CHECK_STR(err.message, "template output is too large (more than 8 bytes)", "render_max message");
	out = ce_template_render_max(t, tpl_lookup, NULL, 9, NULL, &err);
	CHECK(out != NULL && strcmp(out, "AdaAdaAda") == 0, "render_max at the limit renders");
}

static void
test_sql(void)
{
	CeError		err;
	CeTemplate *t;
	CeValue		vals[4];
	const char *src = "INSERT INTO r(order_id, qty, note) VALUES ({order_id|evil}, "
		"{qty}::int, '{{\"a\":1}}') RETURNING id";
	char	  **names;
	int			n;

	memset(&err, 0, sizeof(err));
	t = ce_template_parse(src, strlen(src), &err);
	CHECK(t != NULL, "SQL template parses");
	if (t == NULL)
		return;
	CHECK(ce_template_nplaceholders(t) == 2, "two placeholders");
	CHECK(!ce_template_is_constant(t), "not constant");
	CHECK_STR(ce_template_sql(t),
			  "INSERT INTO r(order_id, qty, note) VALUES ($1, $2::int, "
			  "'{\"a\":1}') RETURNING id", "SQL form");
	memset(vals, 0, sizeof(vals));
	CHECK(ce_template_params(t, tpl_lookup, NULL, vals, &err), "params");
	CHECK(vals[0].type == CEV_STRING, "param 1 is a string");
	CHECK(vals[0].len == 20 && memcmp(vals[0].str, "'); DROP TABLE t; --", 20) == 0,
		  "injection text stays a parameter value");
	CHECK(vals[1].type == CEV_NUMBER && vals[1].num == 3, "param 2 is 3");
	CHECK(strstr(ce_template_sql(t), "DROP") == NULL, "value not in SQL text");

	n = ce_template_variables(t, &names);
	CHECK(n == 3, "three variables");
	if (n == 3)
	{
		CHECK_STR(names[0], "order_id", "var 0");
		CHECK_STR(names[1], "evil", "var 1");
		CHECK_STR(names[2], "qty", "var 2");
	}

	/* the injection string as a direct placeholder */
	t = ce_template_parse("DELETE FROM t WHERE name = {evil}", 33, &err);
	CHECK_STR(ce_template_sql(t), "DELETE FROM t WHERE name = $1", "SQL of evil");
	CHECK(ce_template_params(t, tpl_lookup, NULL, vals, &err), "params of evil");
	CHECK(vals[0].len == 20 && memcmp(vals[0].str, "'); DROP TABLE t; --", 20) == 0,
		  "evil parameter value");

	/* null binds null, missing variable fails */
	t = ce_template_parse("SELECT {note}, {x|null}, {qty}", 30, &err);
	CHECK_STR(ce_template_sql(t), "SELECT $1, $2, $3", "SQL numbering");
	CHECK(ce_template_params(t, tpl_lookup, NULL, vals, &err), "params with null");
	CHECK(vals[0].type == CEV_NULL && vals[1].type == CEV_NULL, "null values");
	t = ce_template_parse("SELECT {nosuch.v}", 17, &err);
	memset(&err, 0, sizeof(err));
	CHECK(!ce_template_params(t, tpl_lookup, NULL, vals, &err), "missing param");
	CHECK(err.code == CE_ERR_MISSING_VAR, "missing param code");
	CHECK_STR(err.var, "nosuch.v", "missing param var");

	/* constant SQL */
	t = ce_template_parse("SELECT '{{}}'::jsonb", 20, &err);
	CHECK(ce_template_is_constant(t), "constant");
	CHECK(ce_template_nplaceholders(t) == 0, "no placeholders");
	CHECK_STR(ce_template_sql(t), "SELECT '{}'::jsonb", "constant SQL form");
	CHECK(ce_template_variables(t, &names) == 0, "no variables");
	t = ce_template_parse("", 0, &err);
	CHECK(t != NULL && ce_template_sql(t)[0] == '\0', "empty SQL");
}

void
run_template_tests(void)
{
	test_render();
	test_errors();
	test_sql();
}
