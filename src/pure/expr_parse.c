/*-------------------------------------------------------------------------
 *
 * expr_parse.c
 *	  The expression language's lexer and recursive-descent parser: text
 *	  to an expression tree (grammar in expr.h), pure C.
 *
 * The parser works directly on the text: lex() reads one token at the
 * current byte offset, and variable paths are read part by part so that
 * "items.0.qty" is one path rather than a name followed by a number.
 * Nesting is bounded by CE_MAX_EXPR_DEPTH (each parenthesised or ternary
 * sub-expression and each "!" counts one level); '&&', '||' and '|' chains
 * become one n-ary node, so the depth of the tree, and with it the
 * recursion of the evaluator (expr_eval.c), stays within the same bound.
 *
 * Positions in errors are 1-based character (not byte) positions, counting
 * UTF-8 sequences as one character, as PostgreSQL does.
 *
 *-------------------------------------------------------------------------
 */
#include "expr_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum TokType
{
	T_EOF,
	T_LPAREN,
	T_RPAREN,
	T_LBRACE,
	T_RBRACE,
	T_PIPE,
	T_OR,
	T_AND,
	T_NOT,
	T_EQ,
	T_NE,
	T_GT,
	T_LT,
	T_GE,
	T_LE,
	T_QUESTION,
	T_COLON,
	T_STRING,
	T_NUMBER,
	T_NAME
} TokType;

typedef struct Token
{
	TokType		type;
	size_t		start;			/* byte offsets into the text */
	size_t		end;
	char	   *str;			/* T_STRING: unescaped value */
	size_t		slen;
} Token;

typedef struct Parser
{
	const char *text;
	size_t		len;
	size_t		pos;			/* next byte to lex */
	int			depth;
	Token		tok;			/* current token */
	CeError    *err;
} Parser;

static CeExpr *parse_expr(Parser *p);

static bool
is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * ce_expr_is_action_word
 *	  Whether the len bytes at s are one of the action words of
 *	  conditionalExecution: continue, skip, fail or skip_to_step_N (N one or
 *	  more digits).  They are literals wherever they appear in an
 *	  expression, bare, braced or quoted, never variables.
 */
bool
ce_expr_is_action_word(const char *s, size_t len)
{
	static const char prefix[] = "skip_to_step_";
	size_t		np = sizeof(prefix) - 1;
	size_t		i;

	if ((len == 8 && memcmp(s, "continue", 8) == 0) ||
		(len == 4 && memcmp(s, "skip", 4) == 0) ||
		(len == 4 && memcmp(s, "fail", 4) == 0))
		return true;
	if (len <= np || memcmp(s, prefix, np) != 0)
		return false;
	for (i = np; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* A string literal node holding the len bytes at s (copied). */
static CeExpr *new_node(ExprKind kind);

static CeExpr *
string_node(const char *s, size_t len)
{
	CeExpr	   *e = new_node(EK_STR);

	e->val.type = CEV_STRING;
	e->val.str = ce_strndup(s, len);
	e->val.len = len;
	return e;
}

/*
 * Length of the number -?digits(.digits)?([eE][+-]?digits)? at s, or 0
 * when s does not start with one.
 */
size_t
expr_scan_number(const char *s, size_t len)
{
	size_t		i = 0;
	size_t		save;

	if (i < len && s[i] == '-')
		i++;
	if (i >= len || !is_digit(s[i]))
		return 0;
	while (i < len && is_digit(s[i]))
		i++;
	if (i + 1 < len && s[i] == '.' && is_digit(s[i + 1]))
	{
		i++;
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		save = i;
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i < len && is_digit(s[i]))
		{
			while (i < len && is_digit(s[i]))
				i++;
		}
		else
			i = save;
	}
	return i;
}

/* strtod() of len bytes (which expr_scan_number accepted). */
double
expr_number_value(const char *s, size_t len)
{
	char		small[64];
	char	   *copy = small;

	if (len >= sizeof(small))
		copy = ce_alloc(len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	return strtod(copy, NULL);
}

/*
 * Report a syntax error at byte offset off.  The "near" text is the bytes
 * [off, end), shortened to 60 bytes on a character boundary.
 */
static void
syntax_error_near(Parser *p, size_t off, size_t end)
{
	size_t		n = end - off;

	if (off >= p->len)
	{
		ce_error_set(p->err, CE_ERR_SYNTAX, "unexpected end of expression");
		p->err->pos = ce_char_pos(p->text, p->len);
		return;
	}
	if (n > 60)
	{
		n = 60;
		while (n > 0 && ((unsigned char) p->text[off + n] & 0xC0) == 0x80)
			n--;
	}
	if (n == 1 && (unsigned char) p->text[off] < 0x20)
		ce_error_set(p->err, CE_ERR_SYNTAX,
					 "syntax error at or near character 0x%02x",
					 (unsigned char) p->text[off]);
	else
		ce_error_set(p->err, CE_ERR_SYNTAX, "syntax error at or near \"%.*s\"",
					 (int) n, p->text + off);
	p->err->pos = ce_char_pos(p->text, off);
}

/* Syntax error at the current token. */
static void
syntax_error_tok(Parser *p)
{
	syntax_error_near(p, p->tok.start, p->tok.end);
}

/* Length in bytes of the (UTF-8) character at off. */
static size_t
char_len_at(const Parser *p, size_t off)
{
	size_t		n = 1;

	while (off + n < p->len && ((unsigned char) p->text[off + n] & 0xC0) == 0x80)
		n++;
	return n;
}

/*
 * Lex a quoted string starting at p->pos; fill p->tok.  The first pass
 * checks the string and finds its end, the second copies it unescaped.
 */
static bool
lex_string(Parser *p)
{
	const char *t = p->text;
	size_t		start = p->pos;
	char		quote = t[start];
	size_t		i = start + 1;
	char	   *out;
	size_t		n = 0;

	for (;;)
	{
		if (i >= p->len)
		{
			ce_error_set(p->err, CE_ERR_SYNTAX, "unterminated string");
			p->err->pos = ce_char_pos(t, start);
			return false;
		}
		if (t[i] == quote)
			break;
		if (t[i] == '\0')
		{
			ce_error_set(p->err, CE_ERR_SYNTAX, "zero byte in string");
			p->err->pos = ce_char_pos(t, i);
			return false;
		}
		if (t[i] == '\\')
		{
			char		c = (i + 1 < p->len) ? t[i + 1] : '\0';

			if (i + 1 >= p->len)
			{
				ce_error_set(p->err, CE_ERR_SYNTAX, "unterminated string");
				p->err->pos = ce_char_pos(t, start);
				return false;
			}
			if (c != '\'' && c != '"' && c != '\\' && c != 'n' && c != 't')
			{
				ce_error_set(p->err, CE_ERR_SYNTAX,
							 "invalid escape sequence \"\\%.*s\" in string",
							 (int) char_len_at(p, i + 1), t + i + 1);
				p->err->pos = ce_char_pos(t, i);
				snprintf(p->err->hint, sizeof(p->err->hint),
						 "supported escapes are \\' \\\" \\\\ \\n \\t");
				return false;
			}
			i += 2;
			continue;
		}
		i++;
	}
	out = ce_alloc(i - start);
	for (i = start + 1; t[i] != quote; i++)
	{
		if (t[i] == '\\')
		{
			i++;
			out[n++] = (t[i] == 'n') ? '\n' : (t[i] == 't') ? '\t' : t[i];
		}
		else
			out[n++] = t[i];
	}
	p->tok.type = T_STRING;
	p->tok.start = start;
	p->tok.end = i + 1;
	p->tok.str = out;
	p->tok.slen = n;
	p->pos = i + 1;
	return true;
}

/* Read the next token into p->tok. */
static bool
lex(Parser *p)
{
	const char *t = p->text;
	size_t		i = p->pos;
	size_t		n;
	char		c;
	char		c2;

	while (i < p->len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' ||
						  t[i] == '\r' || t[i] == '\f' || t[i] == '\v'))
		i++;
	p->pos = i;
	p->tok.start = i;
	p->tok.str = NULL;
	if (i >= p->len)
	{
		p->tok.type = T_EOF;
		p->tok.end = i;
		return true;
	}
	c = t[i];
	c2 = (i + 1 < p->len) ? t[i + 1] : '\0';
	n = 1;
	switch (c)
	{
		case '(':
			p->tok.type = T_LPAREN;
			break;
		case ')':
			p->tok.type = T_RPAREN;
			break;
		case '{':
			p->tok.type = T_LBRACE;
			break;
		case '}':
			p->tok.type = T_RBRACE;
			break;
		case '?':
			p->tok.type = T_QUESTION;
			break;
		case ':':
			p->tok.type = T_COLON;
			break;
		case '|':
			if (c2 == '|')
			{
				p->tok.type = T_OR;
				n = 2;
			}
			else
				p->tok.type = T_PIPE;
			break;
		case '&':
			if (c2 != '&')
			{
				syntax_error_near(p, i, i + 1);
				snprintf(p->err->hint, sizeof(p->err->hint),
						 "use \"&&\" for a logical and");
				return false;
			}
			p->tok.type = T_AND;
			n = 2;
			break;
		case '=':
			if (c2 != '=')
			{
				syntax_error_near(p, i, i + 1);
				snprintf(p->err->hint, sizeof(p->err->hint),
						 "use \"==\" to compare");
				return false;
			}
			p->tok.type = T_EQ;
			n = 2;
			break;
		case '!':
			if (c2 == '=')
			{
				p->tok.type = T_NE;
				n = 2;
			}
			else
				p->tok.type = T_NOT;
			break;
		case '>':
			if (c2 == '=')
			{
				p->tok.type = T_GE;
				n = 2;
			}
			else
				p->tok.type = T_GT;
			break;
		case '<':
			if (c2 == '=')
			{
				p->tok.type = T_LE;
				n = 2;
			}
			else
				p->tok.type = T_LT;
			break;
		case '\'':
		case '"':
			return lex_string(p);
		default:
			if (is_name_start(c))
			{
				while (i + n < p->len && is_name_char(t[i + n]))
					n++;
				p->tok.type = T_NAME;
			}
			else if ((n = expr_scan_number(t + i, p->len - i)) > 0)
				p->tok.type = T_NUMBER;
			else
			{
				syntax_error_near(p, i, i + char_len_at(p, i));
				return false;
			}
			break;
	}
	p->tok.end = i + n;
	p->pos = i + n;
	return true;
}

static CeExpr *
new_node(ExprKind kind)
{
	CeExpr	   *e = ce_alloc(sizeof(CeExpr));

	e->kind = kind;
	return e;
}

/* Append an operand to an n-ary node. */
static void
add_arg(CeExpr *e, CeExpr *a, int *cap)
{
	if (e->nargs == *cap)
	{
		int			ncap = *cap ? *cap * 2 : 4;

		e->args = ce_realloc(e->args, sizeof(CeExpr *) * *cap,
							 sizeof(CeExpr *) * ncap);
		*cap = ncap;
	}
	e->args[e->nargs++] = a;
}

/* Enter one nesting level; false (and err) beyond CE_MAX_EXPR_DEPTH. */
static bool
enter(Parser *p)
{
	if (++p->depth > CE_MAX_EXPR_DEPTH)
	{
		ce_error_set(p->err, CE_ERR_LIMIT,
					 "expression is nested too deeply");
		snprintf(p->err->detail, sizeof(p->err->detail),
				 "The limit is %d levels of nesting.", CE_MAX_EXPR_DEPTH);
		p->err->pos = ce_char_pos(p->text, p->tok.start);
		return false;
	}
	return true;
}

/*
 * Parse a variable path whose first part is the name token [start, end);
 * the parts that follow are read directly from the text.
 */
static CeExpr *
parse_path(Parser *p, size_t start, size_t end)
{
	const char *t = p->text;
	CeExpr	   *e = new_node(EK_VAR);
	const char *parts[CE_MAX_PATH_PARTS];
	int			n = 0;
	size_t		i;

	parts[n++] = ce_strndup(t + start, end - start);
	i = end;
	while (i < p->len && t[i] == '.')
	{
		size_t		ps = i + 1;
		size_t		pe = ps;

		if (pe < p->len && is_name_start(t[pe]))
		{
			while (pe < p->len && is_name_char(t[pe]))
				pe++;
		}
		else if (pe < p->len && is_digit(t[pe]))
		{
			while (pe < p->len && is_digit(t[pe]))
				pe++;
			if (pe < p->len && is_name_char(t[pe]))
			{
				syntax_error_near(p, ps, pe + 1);
				snprintf(p->err->hint, sizeof(p->err->hint),
						 "a path part is a name or an array index");
				return NULL;
			}
		}
		else
		{
			if (pe >= p->len)
				syntax_error_near(p, pe, pe);
			else
				syntax_error_near(p, i, pe + char_len_at(p, pe));
			return NULL;
		}
		if (n >= CE_MAX_PATH_PARTS)
		{
			ce_error_set(p->err, CE_ERR_LIMIT,
						 "variable path has more than %d parts",
						 CE_MAX_PATH_PARTS);
			p->err->pos = ce_char_pos(t, start);
			return NULL;
		}
		parts[n++] = ce_strndup(t + ps, pe - ps);
		i = pe;
	}
	e->npath = n;
	e->path = ce_alloc(sizeof(char *) * (n + 1));
	memcpy(e->path, parts, sizeof(char *) * n);
	p->pos = i;
	if (!lex(p))
		return NULL;
	return e;
}

/* primary := '(' expr ')' | '{' path '}' | path | string | number | kw */
static CeExpr *
parse_primary(Parser *p)
{
	CeExpr	   *e;
	Token		tok = p->tok;

	switch (tok.type)
	{
		case T_LPAREN:
			if (!lex(p))
				return NULL;
			e = parse_expr(p);
			if (e == NULL)
				return NULL;
			if (p->tok.type != T_RPAREN)
			{
				syntax_error_tok(p);
				snprintf(p->err->hint, sizeof(p->err->hint),
						 "the \"(\" at position %d is not closed",
						 ce_char_pos(p->text, tok.start));
				return NULL;
			}
			if (!lex(p))
				return NULL;
			return e;
		case T_LBRACE:
			if (!lex(p))
				return NULL;
			if (p->tok.type != T_NAME)
			{
				syntax_error_tok(p);
				snprintf(p->err->hint, sizeof(p->err->hint),
						 "braces in an expression hold a variable name or path");
				return NULL;
			}
			if (!(p->tok.end < p->len && p->text[p->tok.end] == '.') &&
				ce_expr_is_action_word(p->text + p->tok.start,
									   p->tok.end - p->tok.start))
			{
				/* {skip_to_step_6}: an action word, not a variable */
				e = string_node(p->text + p->tok.start,
								p->tok.end - p->tok.start);
				if (!lex(p))
					return NULL;
			}
			else
				e = parse_path(p, p->tok.start, p->tok.end);
			if (e == NULL)
				return NULL;
			if (p->tok.type != T_RBRACE)
			{
				syntax_error_tok(p);
				snprintf(p->err->hint, sizeof(p->err->hint),
						 "the \"{\" at position %d is not closed",
						 ce_char_pos(p->text, tok.start));
				return NULL;
			}
			if (!lex(p))
				return NULL;
			return e;
		case T_NAME:
			{
				size_t		n = tok.end - tok.start;
				const char *s = p->text + tok.start;
				bool		dotted = tok.end < p->len && p->text[tok.end] == '.';

				if (!dotted && n == 4 && memcmp(s, "null", 4) == 0)
					e = new_node(EK_NULL);
				else if (!dotted && n == 4 && memcmp(s, "true", 4) == 0)
				{
					e = new_node(EK_BOOL);
					e->val.type = CEV_BOOL;
					e->val.b = true;
				}
				else if (!dotted && n == 5 && memcmp(s, "false", 5) == 0)
				{
					e = new_node(EK_BOOL);
					e->val.type = CEV_BOOL;
					e->val.b = false;
				}
				else if (!dotted && ce_expr_is_action_word(s, n))
					e = string_node(s, n);
				else
					return parse_path(p, tok.start, tok.end);
				if (!lex(p))
					return NULL;
				return e;
			}
		case T_STRING:
			e = new_node(EK_STR);
			e->val.type = CEV_STRING;
			e->val.str = tok.str;
			e->val.len = tok.slen;
			if (!lex(p))
				return NULL;
			return e;
		case T_NUMBER:
			e = new_node(EK_NUM);
			e->val.type = CEV_NUMBER;
			e->val.str = ce_strndup(p->text + tok.start, tok.end - tok.start);
			e->val.len = tok.end - tok.start;
			e->val.num = expr_number_value(e->val.str, e->val.len);
			if (!lex(p))
				return NULL;
			return e;
		default:
			syntax_error_tok(p);
			return NULL;
	}
}

static bool
is_cmp(TokType t)
{
	return t == T_EQ || t == T_NE || t == T_GT || t == T_LT ||
		t == T_GE || t == T_LE;
}

/* cmp := primary ( op primary )? */
static CeExpr *
parse_cmp(Parser *p)
{
	CeExpr	   *a = parse_primary(p);
	CeExpr	   *e;
	CeExpr	   *b;
	TokType		t;

	if (a == NULL)
		return NULL;
	if (!is_cmp(p->tok.type))
		return a;
	t = p->tok.type;
	if (!lex(p))
		return NULL;
	b = parse_primary(p);
	if (b == NULL)
		return NULL;
	e = new_node(EK_CMP);
	e->op = (t == T_EQ) ? CMP_EQ : (t == T_NE) ? CMP_NE : (t == T_GT) ? CMP_GT :
		(t == T_LT) ? CMP_LT : (t == T_GE) ? CMP_GE : CMP_LE;
	e->args = ce_alloc(sizeof(CeExpr *) * 2);
	e->args[0] = a;
	e->args[1] = b;
	e->nargs = 2;
	if (is_cmp(p->tok.type))
	{
		syntax_error_tok(p);
		snprintf(p->err->hint, sizeof(p->err->hint),
				 "comparisons cannot be chained; combine them with \"&&\"");
		return NULL;
	}
	return e;
}

/* not := '!' not | cmp */
static CeExpr *
parse_not(Parser *p)
{
	CeExpr	   *e;
	CeExpr	   *a;

	if (p->tok.type != T_NOT)
		return parse_cmp(p);
	if (!enter(p))
		return NULL;
	if (!lex(p))
		return NULL;
	a = parse_not(p);
	if (a == NULL)
		return NULL;
	p->depth--;
	e = new_node(EK_NOT);
	e->args = ce_alloc(sizeof(CeExpr *));
	e->args[0] = a;
	e->nargs = 1;
	return e;
}

/* and := not ( '&&' not )*   and   or := and ( '||' and )* */
static CeExpr *
parse_logical(Parser *p, bool is_or)
{
	TokType		optok = is_or ? T_OR : T_AND;
	CeExpr	   *a = is_or ? parse_logical(p, false) : parse_not(p);
	CeExpr	   *e;
	int			cap = 0;

	if (a == NULL)
		return NULL;
	if (p->tok.type != optok)
		return a;
	e = new_node(is_or ? EK_OR : EK_AND);
	add_arg(e, a, &cap);
	while (p->tok.type == optok)
	{
		if (!lex(p))
			return NULL;
		a = is_or ? parse_logical(p, false) : parse_not(p);
		if (a == NULL)
			return NULL;
		add_arg(e, a, &cap);
	}
	return e;
}

/* ternary := or ( '?' expr ':' expr )? */
static CeExpr *
parse_ternary(Parser *p)
{
	CeExpr	   *c = parse_logical(p, true);
	CeExpr	   *a;
	CeExpr	   *b;
	CeExpr	   *e;

	if (c == NULL)
		return NULL;
	if (p->tok.type != T_QUESTION)
		return c;
	if (!lex(p))
		return NULL;
	a = parse_expr(p);
	if (a == NULL)
		return NULL;
	if (p->tok.type != T_COLON)
	{
		ce_error_set(p->err, CE_ERR_SYNTAX,
					 "expected \":\" in conditional expression");
		p->err->pos = ce_char_pos(p->text, p->tok.start);
		return NULL;
	}
	if (!lex(p))
		return NULL;
	b = parse_expr(p);
	if (b == NULL)
		return NULL;
	e = new_node(EK_TERNARY);
	e->args = ce_alloc(sizeof(CeExpr *) * 3);
	e->args[0] = c;
	e->args[1] = a;
	e->args[2] = b;
	e->nargs = 3;
	return e;
}

/* expr := default := ternary ( '|' ternary )* */
static CeExpr *
parse_expr(Parser *p)
{
	CeExpr	   *a;
	CeExpr	   *e;
	int			cap = 0;

	if (!enter(p))
		return NULL;
	a = parse_ternary(p);
	if (a == NULL)
		return NULL;
	if (p->tok.type == T_PIPE)
	{
		e = new_node(EK_DEFAULT);
		add_arg(e, a, &cap);
		while (p->tok.type == T_PIPE)
		{
			if (!lex(p))
				return NULL;
			a = parse_ternary(p);
			if (a == NULL)
				return NULL;
			add_arg(e, a, &cap);
		}
		a = e;
	}
	p->depth--;
	return a;
}

/*
 * ce_expr_parse
 *	  Parse len bytes of text into an AST (allocated with ce_alloc).
 */
CeExpr *
ce_expr_parse(const char *text, size_t len, CeError *err)
{
	Parser		p;
	CeExpr	   *e;
	CeError		dummy;

	if (err == NULL)
		err = &dummy;
	err->detail[0] = '\0';
	err->hint[0] = '\0';
	memset(&p, 0, sizeof(p));
	p.text = text;
	p.len = len;
	p.err = err;
	if (len > CE_MAX_EXPR_LEN)
	{
		ce_error_set(err, CE_ERR_LIMIT, "expression is too long");
		snprintf(err->detail, sizeof(err->detail),
				 "The expression has %zu bytes; the limit is %d.",
				 len, CE_MAX_EXPR_LEN);
		err->pos = 1;
		return NULL;
	}
	if (!lex(&p))
		return NULL;
	if (p.tok.type == T_EOF)
	{
		ce_error_set(err, CE_ERR_SYNTAX, "empty expression");
		err->pos = ce_char_pos(text, len);
		return NULL;
	}
	e = parse_expr(&p);
	if (e == NULL)
		return NULL;
	if (p.tok.type != T_EOF)
	{
		syntax_error_tok(&p);
		return NULL;
	}
	return e;
}
