/*-------------------------------------------------------------------------
 *
 * expr_int.h
 *	  The expression tree, shared by the parser (expr_parse.c) and the
 *	  evaluator (expr_eval.c); private to them (the interface is expr.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_EXPR_INT_H
#define CE_EXPR_INT_H

#include "ce_pure.h"
#include "expr.h"

typedef enum ExprKind
{
	EK_NULL,
	EK_BOOL,
	EK_NUM,
	EK_STR,
	EK_VAR,
	EK_NOT,
	EK_CMP,
	EK_AND,
	EK_OR,
	EK_TERNARY,
	EK_DEFAULT
} ExprKind;

typedef enum CmpOp
{
	CMP_EQ,
	CMP_NE,
	CMP_GT,
	CMP_LT,
	CMP_GE,
	CMP_LE
} CmpOp;

struct CeExpr
{
	ExprKind	kind;
	CmpOp		op;				/* EK_CMP */
	CeValue		val;			/* literals */
	const char **path;			/* EK_VAR: NUL-terminated parts */
	int			npath;
	struct CeExpr **args;		/* operands */
	int			nargs;
};

/*
 * Length of the number -?digits(.digits)?([eE][+-]?digits)? at s, or 0
 * when s does not start with one; and its value.  The parser reads number
 * literals with them, the evaluator numeric-looking strings.
 */
extern size_t expr_scan_number(const char *s, size_t len);
extern double expr_number_value(const char *s, size_t len);

#endif							/* CE_EXPR_INT_H */
