/*-------------------------------------------------------------------------
 *
 * expr.h
 *	  The expression language of conditionalExecution, successConditions
 *	  and template placeholders (SPEC section 3 "Expressions"), pure C.
 *
 * Grammar, lowest precedence first:
 *
 *	  expr    := default
 *	  default := ternary ( '|' ternary )*      -- a | b: a unless a is null
 *	  ternary := or ( '?' expr ':' expr )?
 *	  or      := and ( '||' and )*
 *	  and     := not ( '&&' not )*
 *	  not     := '!' not | cmp
 *	  cmp     := primary ( ('=='|'!='|'>'|'<'|'>='|'<=') primary )?
 *	  primary := '(' expr ')' | '{' path '}' | path | string | number
 *	           | 'true' | 'false' | 'null' | action
 *	  action  := 'continue' | 'skip' | 'fail' | 'skip_to_step_' digits
 *	                                           -- bare or braced: a string
 *	                                           -- literal, never a variable
 *	  path    := name ( '.' name )*            -- name: [A-Za-z_][A-Za-z0-9_]*
 *	                                           -- a part may also be a
 *	                                           -- non-negative array index
 *	  string  := '…' | "…"  with backslash escapes \' \" \\ \n \t
 *
 * Semantics: numbers compare numerically; a numeric-looking string compares
 * as a number against a number; otherwise both sides compare as text; null
 * equals only null; every ordering comparison with null is false; unset
 * variables are null.  Truthiness: null and false are false; numbers are
 * true unless 0; strings are true unless empty or "false"; arrays and
 * objects are true.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_EXPR_H
#define CE_EXPR_H

#include "ce_pure.h"

typedef enum CeValType
{
	CEV_NULL,
	CEV_BOOL,
	CEV_NUMBER,
	CEV_STRING,
	CEV_JSON					/* an array or object, as JSON text */
} CeValType;

/*
 * A value.  For CEV_NUMBER, num is the value and str/len its text as
 * written (renderers print the text, so 1.50 stays 1.50); for CEV_STRING
 * and CEV_JSON, str/len hold the text.  str need not be NUL-terminated.
 */
typedef struct CeValue
{
	CeValType	type;
	bool		b;
	double		num;
	const char *str;
	size_t		len;
} CeValue;

/*
 * Variable lookup.  path has npath parts (e.g. {"order","lines","0","qty"}).
 * Return true and fill *out when the variable is set (a JSON null counts
 * as set, type CEV_NULL), false when it is unset.
 */
typedef bool (*CeLookupFn) (void *arg, const char *const *path, int npath,
							CeValue *out);

typedef struct CeExpr CeExpr;	/* opaque AST */

/*
 * Parse len bytes of text.  On error returns NULL with err->code
 * CE_ERR_SYNTAX (or CE_ERR_LIMIT for depth/length) and err->pos the
 * 1-based character position of the problem.
 */
extern CeExpr *ce_expr_parse(const char *text, size_t len, CeError *err);

/*
 * Evaluate.  Never fails on unset variables (they are null).  Returns false
 * only on an internal limit (err filled).  Strings in *out may point into
 * the AST, into values returned by lookup, or into memory from ce_alloc.
 */
extern bool ce_expr_eval(const CeExpr *e, CeLookupFn lookup, void *arg,
						 CeValue *out, CeError *err);

extern bool ce_value_truthy(const CeValue *v);

/*
 * Whether len bytes at s are an action word (continue, skip, fail,
 * skip_to_step_N): a literal in expressions, so never a variable name.
 */
extern bool ce_expr_is_action_word(const char *s, size_t len);

/* Render a value as text (null renders as the empty string). */
extern void ce_value_to_text(const CeValue *v, CeBuf *b);

/*
 * The variables an expression reads: the first part of each path, without
 * duplicates, in order of first appearance.  Returns the count; *names is
 * ce_alloc'd.
 */
extern int	ce_expr_variables(const CeExpr *e, char ***names);

/*
 * When the expression is nothing but one variable path (optionally in
 * braces), return true and set *path and *npath; used by templates to report
 * an unset variable that has no default.
 */
extern bool ce_expr_is_bare_path(const CeExpr *e, const char *const **path,
								 int *npath);

/* Debug form of the AST, for unit tests: e.g. (== (var a.b) (num 1)). */
extern void ce_expr_dump(const CeExpr *e, CeBuf *b);

#endif							/* CE_EXPR_H */
