/*-------------------------------------------------------------------------
 *
 * ce_pure.h
 *	  Common ground of chainexec's pure C modules: allocation and errors.
 *
 * The pure modules (json_*.c, expr_*.c, template.c, schema_*.c, plan*.c,
 * failure.c) call nothing of the server but the allocator, so that they can
 * be unit-tested and fuzzed outside it.  Built inside the server, ce_alloc()
 * is palloc0() in CurrentMemoryContext; built with -DCE_STANDALONE it is a
 * malloc-backed arena that ce_arena_reset() frees as a whole.
 *
 * Errors are returned, never thrown: a function that can fail fills a
 * CeError and returns NULL/false.  The server glue turns a CeError into an
 * ereport() with the SQLSTATE that ce_errcode_sqlstate() names.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_PURE_H
#define CE_PURE_H

#include <stdbool.h>
#include <stddef.h>

#ifndef CE_STANDALONE
#include "postgres.h"
#define ce_alloc(sz)	palloc0(sz)
extern void *ce_realloc(void *p, size_t oldsz, size_t newsz);	/* p may be NULL; new bytes zeroed */
#define ce_free(p)		pfree(p)
#else
#define pg_attribute_printf(f, a) __attribute__((format(printf, f, a)))
extern void *ce_alloc(size_t sz);	/* zeroed; freed by ce_arena_reset() */
extern void *ce_realloc(void *p, size_t oldsz, size_t newsz);
#define ce_free(p)		((void) (p))
extern void ce_arena_reset(void);
#endif

extern char *ce_strndup(const char *s, size_t len);
extern char *ce_strdup(const char *s);

/*
 * Error categories.  Each maps to one SQLSTATE in the server glue
 * (ce_errcode_sqlstate(), in ce_pure.c, as five characters).
 */
typedef enum CeErrCode
{
	CE_OK = 0,
	CE_ERR_SYNTAX,				/* 42601 syntax_error: JSON, expression or
								 * template text that does not parse */
	CE_ERR_INVALID,				/* 22023 invalid_parameter_value: wrong type,
								 * out of range, bad enum value, unknown key,
								 * missing required key */
	CE_ERR_DUPLICATE,			/* 42710 duplicate_object: step id or name
								 * used twice */
	CE_ERR_REFERENCE,			/* 42704 undefined_object: dependsOn /
								 * skip_to_step names an unknown step */
	CE_ERR_DEFINITION,			/* 42P17 invalid_object_definition: cycle,
								 * structural problems */
	CE_ERR_LIMIT,				/* 54000 program_limit_exceeded: size,
								 * depth, count limits */
	CE_ERR_MISSING_VAR,			/* 22004 null_value_not_allowed: a template
								 * variable is unset and has no default
								 * (failure type insufficient_data at run
								 * time) */
	CE_ERR_EVAL,				/* 22000 data_exception: evaluation problem */
	CE_ERR_RESERVED,			/* 42939 reserved_name: the name "chain" */
	CE_ERR_SCHEMA				/* 22023: input does not satisfy the input
								 * schema (message holds all violations) */
} CeErrCode;

#define CE_ERR_MSG_LEN 1024
#define CE_ERR_PATH_LEN 256

typedef struct CeError
{
	CeErrCode	code;
	int			pos;			/* 1-based character position in the text
								 * being parsed, 0 when not applicable */
	char		path[CE_ERR_PATH_LEN];	/* JSON path, e.g.
										 * steps[3].retryConfig.maxRetries */
	char		message[CE_ERR_MSG_LEN];	/* lower case, no final period */
	char		detail[CE_ERR_MSG_LEN];		/* full sentences, may be empty */
	char		hint[CE_ERR_MSG_LEN];		/* may be empty */
	char		var[128];		/* CE_ERR_MISSING_VAR: the variable's name */
} CeError;

extern void ce_error_set(CeError *err, CeErrCode code, const char *fmt,...)
			pg_attribute_printf(3, 4);
extern const char *ce_errcode_sqlstate(CeErrCode code);

/* 1-based character position of byte offset off (UTF-8 aware). */
extern int	ce_char_pos(const char *text, size_t off);

/* A growable string buffer, pure. */
typedef struct CeBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} CeBuf;

extern void ce_buf_init(CeBuf *b);
extern void ce_buf_append(CeBuf *b, const char *s, size_t len);
extern void ce_buf_appends(CeBuf *b, const char *s);
extern void ce_buf_appendc(CeBuf *b, char c);
extern void ce_buf_printf(CeBuf *b, const char *fmt,...) pg_attribute_printf(2, 3);

/* Limits shared by the pure modules. */
#define CE_MAX_JSON_DEPTH		64		/* nesting of JSON values */
#define CE_MAX_EXPR_DEPTH		64		/* nesting of expressions */
#define CE_MAX_EXPR_LEN			4096	/* characters of one expression */
#define CE_MAX_TEMPLATE_LEN		65536	/* characters of one template */
#define CE_MAX_DEFINITION_BYTES	(1024 * 1024)
#define CE_MAX_STEPS			500
#define CE_MAX_NAME_LEN			63
#define CE_MAX_PATH_PARTS		16

#endif							/* CE_PURE_H */
