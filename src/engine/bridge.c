/*-------------------------------------------------------------------------
 *
 * bridge.c
 *	  The bridge between the pure modules (src/pure) and the server: their
 *	  errors raised as PostgreSQL errors, PostgreSQL's regular expressions
 *	  for inputSchema patterns, Jsonb to and from CeJson, variable lookup
 *	  over an execution's Jsonb context, and small conversions (the
 *	  current organization, uuids as text).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "parser/parser.h"
#include "parser/scanner.h"

#include "catalog/pg_collation.h"

#include "miscadmin.h"
#include "regex/regex.h"

#include "utils/fmgrprotos.h"

#include "chainexec.h"
#include "bridge.h"
#include "jsonschema.h"

/*
 * ereport(ERROR) a CeError.  context_fmt, when given, prefixes the message
 * (e.g. "invalid chain definition").
 */
void
ce_raise(const CeError *err, const char *context_fmt,...)
{
	const char *sqlstate = ce_errcode_sqlstate(err->code);
	int			code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
									 sqlstate[3], sqlstate[4]);
	char		prefix[256] = "";

	if (context_fmt)
	{
		va_list		ap;

		va_start(ap, context_fmt);
		vsnprintf(prefix, sizeof(prefix), context_fmt, ap);
		va_end(ap);
	}

	ereport(ERROR,
			(errcode(code),
			 err->path[0] ?
			 errmsg("%s%s%s at %s", prefix, prefix[0] ? ": " : "", err->message, err->path) :
			 errmsg("%s%s%s", prefix, prefix[0] ? ": " : "", err->message),
			 err->detail[0] ? errdetail("%s", err->detail) : 0,
			 err->hint[0] ? errhint("%s", err->hint) : 0));
	pg_unreachable();
}

/*
 * The pattern matcher of inputSchema checks in the server: PostgreSQL's
 * own regular expression engine, in its POSIX extended flavour, on the
 * pattern as ce_schema_prepare_pattern() rewrites it.  Unlike glibc's
 * regexec(), it stops on a query cancel or a statement_timeout, so that a
 * pattern and a subject chosen to run for minutes cannot hold a backend,
 * or a background executor that a step calls chain_execute() from, beyond
 * its timeouts.  Returns 1 on a match, 0 on none, -1 when the pattern is
 * refused or does not compile (the input then fails with a violation).
 */
int
ce_pg_regex(const char *pattern, const char *subject, size_t subject_len)
{
	char	   *prepared = ce_schema_prepare_pattern(pattern);
	pg_wchar   *wpat;
	pg_wchar   *wsub;
	int			wpatlen;
	int			wsublen;
	regex_t		re;
	int			rc;

	if (prepared == NULL)
		return -1;
	wpat = palloc((strlen(prepared) + 1) * sizeof(pg_wchar));
	wpatlen = pg_mb2wchar_with_len(prepared, wpat, strlen(prepared));
	if (pg_regcomp(&re, wpat, wpatlen, REG_EXTENDED | REG_NOSUB, C_COLLATION_OID) != REG_OKAY)
	{
		/* pg_regcomp() frees what it allocated when it fails */
		CHECK_FOR_INTERRUPTS();
		return -1;
	}
	wsub = palloc((subject_len + 1) * sizeof(pg_wchar));
	wsublen = pg_mb2wchar_with_len(subject, wsub, subject_len);
	rc = pg_regexec(&re, wsub, wsublen, 0, NULL, 0, NULL, 0);
	pg_regfree(&re);
	pfree(wsub);
	pfree(wpat);
	if (rc == REG_CANCEL)
	{
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling the inputSchema pattern check")));
	}
	if (rc == REG_OKAY)
		return 1;
	return rc == REG_NOMATCH ? 0 : -1;
}

CeJson *
ce_jsonb_to_cejson(Jsonb *jb)
{
	char	   *text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	CeError		err;
	CeJson	   *v;

	memset(&err, 0, sizeof(err));
	v = cejson_parse(text, strlen(text), &err);
	if (v == NULL)
		ce_raise(&err, "could not read JSON value");
	return v;
}

Jsonb *
ce_text_to_jsonb(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

Jsonb *
ce_cejson_to_jsonb(const CeJson *v)
{
	return ce_text_to_jsonb(cejson_to_string(v));
}

void
ce_current_org(pg_uuid_t *org)
{
	memset(org, 0, sizeof(*org));
	if (ce_organization_id && ce_organization_id[0])
	{
		pg_uuid_t  *u = DatumGetUUIDP(DirectFunctionCall1(uuid_in,
														  CStringGetDatum(ce_organization_id)));

		memcpy(org, u, sizeof(*org));
	}
}

char *
ce_uuid_to_cstring(const pg_uuid_t *u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) u)));
}

/*
 * Check the SQL text of a step (its sql, a SQL rollbackAction, a
 * verificationQuery) as PostgreSQL's parser reads it, with each
 * placeholder as $n: it must parse, hold exactly one statement, and name
 * no parameter but its placeholders' ($300 would read past the values
 * bound).  Raises the definition's error, naming the JSON path.
 */
/* ---------------------------------------------------------------------
 * Variable lookup
 * --------------------------------------------------------------------- */

/* Fill a CeValue from a JsonbValue (scalars or a container). */
static void
jbv_to_value(JsonbValue *v, CeValue *out)
{
	memset(out, 0, sizeof(*out));
	switch (v->type)
	{
		case jbvNull:
			out->type = CEV_NULL;
			break;
		case jbvBool:
			out->type = CEV_BOOL;
			out->b = v->val.boolean;
			break;
		case jbvNumeric:
			{
				char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
																	NumericGetDatum(v->val.numeric)));

				out->type = CEV_NUMBER;
				out->str = s;
				out->len = strlen(s);
				out->num = strtod(s, NULL);
				break;
			}
		case jbvString:
			out->type = CEV_STRING;
			out->str = v->val.string.val;
			out->len = v->val.string.len;
			break;
		case jbvBinary:
			{
				char	   *s = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);

				out->type = CEV_JSON;
				out->str = s;
				out->len = strlen(s);
				break;
			}
		default:
			out->type = CEV_NULL;
			break;
	}
}

/* Look a path up in one Jsonb object; false when absent. */
static bool
lookup_in(Jsonb *jb, const char *const *path, int npath, CeValue *out)
{
	JsonbContainer *c;
	JsonbValue *v = NULL;
	int			i;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return false;
	c = &jb->root;
	for (i = 0; i < npath; i++)
	{
		if (JsonContainerIsObject(c))
			v = getKeyJsonValueFromContainer(c, path[i], strlen(path[i]), NULL);
		else if (JsonContainerIsArray(c))
		{
			char	   *end;
			long		idx = strtol(path[i], &end, 10);

			if (*end != '\0' || idx < 0 || end == path[i])
				return false;
			v = getIthJsonbValueFromContainer(c, (uint32) idx);
		}
		else
			return false;
		if (v == NULL)
			return false;
		if (i < npath - 1)
		{
			if (v->type != jbvBinary)
				return false;
			c = v->val.binary.data;
		}
	}
	jbv_to_value(v, out);
	return true;
}

static void
set_string(CeValue *out, const char *s)
{
	memset(out, 0, sizeof(*out));
	out->type = CEV_STRING;
	out->str = s;
	out->len = strlen(s);
}

static void
set_int(CeValue *out, int n)
{
	char	   *s = psprintf("%d", n);

	memset(out, 0, sizeof(*out));
	out->type = CEV_NUMBER;
	out->num = n;
	out->str = s;
	out->len = strlen(s);
}

/* CeLookupFn over a CeLookupCtx: chain.* built-ins, extra, then context. */
bool
ce_lookup(void *arg, const char *const *path, int npath, CeValue *out)
{
	CeLookupCtx *ctx = (CeLookupCtx *) arg;

	if (npath >= 1 && strcmp(path[0], "chain") == 0)
	{
		/* chain.failure.step/type/message: why a compensation runs (null when not known) */
		if (npath == 3 && strcmp(path[1], "failure") == 0 &&
			(strcmp(path[2], "step") == 0 || strcmp(path[2], "type") == 0 ||
			 strcmp(path[2], "message") == 0))
		{
			if (ctx->failure == NULL || !lookup_in(ctx->failure, path + 2, 1, out))
			{
				memset(out, 0, sizeof(*out));
				out->type = CEV_NULL;
			}
			return true;
		}
		if (npath != 2)
			return false;
		if (strcmp(path[1], "execution_id") == 0 && ctx->execution_id)
			set_string(out, ctx->execution_id);
		else if (strcmp(path[1], "id") == 0 && ctx->chain_id)
			set_string(out, ctx->chain_id);
		else if (strcmp(path[1], "version") == 0)
			set_int(out, ctx->chain_version);
		else if (strcmp(path[1], "step_id") == 0)
			set_int(out, ctx->step_id);
		else if (strcmp(path[1], "step_name") == 0 && ctx->step_name)
			set_string(out, ctx->step_name);
		else if (strcmp(path[1], "attempt") == 0)
			set_int(out, ctx->attempt);
		else if (strcmp(path[1], "organization_id") == 0 && ctx->organization_id)
			set_string(out, ctx->organization_id);
		else
			return false;
		return true;
	}
	if (ctx->extra && lookup_in(ctx->extra, path, npath, out))
		return true;
	return lookup_in(ctx->context, path, npath, out);
}

Jsonb *
ce_value_to_jsonb(const CeValue *v)
{
	JsonbValue	jv;

	switch (v->type)
	{
		case CEV_NULL:
			jv.type = jbvNull;
			break;
		case CEV_BOOL:
			jv.type = jbvBool;
			jv.val.boolean = v->b;
			break;
		case CEV_NUMBER:
			return ce_text_to_jsonb(pnstrdup(v->str, v->len));
		case CEV_STRING:
			jv.type = jbvString;
			jv.val.string.val = (char *) v->str;
			jv.val.string.len = v->len;
			break;
		case CEV_JSON:
			return ce_text_to_jsonb(pnstrdup(v->str, v->len));
	}
	return JsonbValueToJsonb(&jv);
}

