/*-------------------------------------------------------------------------
 *
 * failure.c
 *	  Failure types: classification of SQLSTATEs (SPEC section 5), pure C.
 *
 * A step's error is recorded with a failure type, the vocabulary of the
 * design documents, which retryOnErrors matches and which decides whether
 * a step is retried by default (the transient types are).  The SQLSTATE
 * mapping, most specific first:
 *
 *	  40001 40P01 55P03		database_busy			transient
 *	  53200					out_of_memory			system
 *	  class 53 (other)		temporary_overload		transient
 *	  57014					execution_timeout when the step's own timeout
 *							fired (transient), else query_canceled (system:
 *							a cancel request, e.g. chain_cancel)
 *	  class 08				network_timeout			transient
 *							(connection failures, e.g. postgres_fdw)
 *	  42501					permission_denied		permanent
 *	  class 28				security_violation		system
 *							(invalid authorization)
 *	  42P01 42883 42704 42703 3F000 3D000 02000 P0002
 *							resource_not_found		permanent
 *	  class 42 (other)		syntax_error			permanent
 *	  class 22				invalid_input			permanent
 *	  class 23, P0001		business_rule_violation	business
 *	  anything else			system_error			system
 *
 * retryOnErrors may also name failures in the design documents' own words,
 * each standing for the types that mean the same (besides itself, which a
 * handler may still raise by name):
 *
 *	  timeout				execution_timeout, network_timeout, api_timeout
 *	  database_timeout		execution_timeout, database_busy (lock timeout,
 *							deadlock, serialization failure)
 *	  connection_error		network_timeout (class 08)
 *	  quota_exceeded		api_rate_limit
 *
 * Types with no SQLSTATE of their own (api_rate_limit, api_timeout,
 * validation_failed, insufficient_data, ...) come from raise_failure() or
 * from chainexec itself.  A failure type this module does not know (a
 * custom name given to raise_failure()) is classed permanent: it is not
 * retried unless retryOnErrors names it.
 *
 *-------------------------------------------------------------------------
 */
#include "failure.h"

#include <string.h>

typedef struct FailureTypeInfo
{
	const char *name;
	CeFailureClass class;
} FailureTypeInfo;

/* The known failure types and their classes. */
static const FailureTypeInfo failure_types[] = {
	{"network_timeout", CE_FAIL_TRANSIENT},
	{"api_rate_limit", CE_FAIL_TRANSIENT},
	{"api_timeout", CE_FAIL_TRANSIENT},
	{"database_busy", CE_FAIL_TRANSIENT},
	{"temporary_overload", CE_FAIL_TRANSIENT},
	{"execution_timeout", CE_FAIL_TRANSIENT},
	{"invalid_input", CE_FAIL_PERMANENT},
	{"permission_denied", CE_FAIL_PERMANENT},
	{"resource_not_found", CE_FAIL_PERMANENT},
	{"syntax_error", CE_FAIL_PERMANENT},
	{"validation_failed", CE_FAIL_BUSINESS},
	{"insufficient_data", CE_FAIL_BUSINESS},
	{"business_rule_violation", CE_FAIL_BUSINESS},
	{"out_of_memory", CE_FAIL_SYSTEM},
	{"security_violation", CE_FAIL_SYSTEM},
	{"query_canceled", CE_FAIL_SYSTEM},
	{"system_error", CE_FAIL_SYSTEM},
};

/* The design documents' words for failures, and the types they cover. */
typedef struct FailureWord
{
	const char *word;
	const char *types[4];		/* NULL-terminated */
} FailureWord;

static const FailureWord failure_words[] = {
	{"timeout", {"execution_timeout", "network_timeout", "api_timeout", NULL}},
	{"database_timeout", {"execution_timeout", "database_busy", NULL}},
	{"connection_error", {"network_timeout", NULL}},
	{"quota_exceeded", {"api_rate_limit", NULL}},
};

/* SQLSTATEs of missing objects. */
static const char *const not_found_codes[] = {
	"42P01",					/* undefined_table */
	"42883",					/* undefined_function */
	"42704",					/* undefined_object */
	"42703",					/* undefined_column */
	"3F000",					/* invalid_schema_name */
	"3D000",					/* invalid_catalog_name */
	"02000",					/* no_data */
	"P0002",					/* no_data_found (PL/pgSQL) */
};

/* Whether a SQLSTATE starts with the two-character class cls. */
static bool
in_class(const char *sqlstate, const char *cls)
{
	return sqlstate[0] == cls[0] && sqlstate[1] == cls[1];
}

/*
 * ce_failure_type_for_sqlstate
 *		The failure type of a five-character SQLSTATE (see the table in the
 *		file header).  step_timeout tells whether a 57014 came from the
 *		step's own timeout.  NULL or malformed codes give "system_error".
 */
const char *
ce_failure_type_for_sqlstate(const char *sqlstate, bool step_timeout)
{
	size_t		i;

	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return "system_error";

	if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
		strcmp(sqlstate, "55P03") == 0)
		return "database_busy";
	if (strcmp(sqlstate, "53200") == 0)
		return "out_of_memory";
	if (in_class(sqlstate, "53"))
		return "temporary_overload";
	if (strcmp(sqlstate, "57014") == 0)
		return step_timeout ? "execution_timeout" : "query_canceled";
	if (in_class(sqlstate, "08"))
		return "network_timeout";
	if (strcmp(sqlstate, "42501") == 0)
		return "permission_denied";
	if (in_class(sqlstate, "28"))
		return "security_violation";
	for (i = 0; i < sizeof(not_found_codes) / sizeof(not_found_codes[0]); i++)
	{
		if (strcmp(sqlstate, not_found_codes[i]) == 0)
			return "resource_not_found";
	}
	if (in_class(sqlstate, "42"))
		return "syntax_error";
	if (in_class(sqlstate, "22"))
		return "invalid_input";
	if (in_class(sqlstate, "23") || strcmp(sqlstate, "P0001") == 0)
		return "business_rule_violation";
	return "system_error";
}

/*
 * ce_failure_is_transient
 *		Whether a failure type is transient: retried by default when a step
 *		has no retryOnErrors.
 */
bool
ce_failure_is_transient(const char *failure_type)
{
	return failure_type != NULL &&
		ce_failure_class(failure_type) == CE_FAIL_TRANSIENT;
}

/*
 * ce_failure_class
 *		The class of a failure type; unknown (custom) types are permanent.
 */
CeFailureClass
ce_failure_class(const char *failure_type)
{
	size_t		i;

	if (failure_type == NULL)
		return CE_FAIL_SYSTEM;
	for (i = 0; i < sizeof(failure_types) / sizeof(failure_types[0]); i++)
	{
		if (strcmp(failure_type, failure_types[i].name) == 0)
			return failure_types[i].class;
	}
	return CE_FAIL_PERMANENT;
}

/* ASCII case-insensitive equality, as retryOnErrors is matched. */
static bool
word_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
	{
		char		ca = (*a >= 'A' && *a <= 'Z') ? *a + 32 : *a;
		char		cb = (*b >= 'A' && *b <= 'Z') ? *b + 32 : *b;

		if (ca != cb)
			return false;
	}
	return *a == *b;
}

/*
 * ce_failure_word_covers
 *		Whether the retryOnErrors entry word is one of the design documents'
 *		words for failures (see the file header) and covers failure_type.
 */
bool
ce_failure_word_covers(const char *word, const char *failure_type)
{
	size_t		i;
	int			j;

	if (word == NULL || failure_type == NULL)
		return false;
	for (i = 0; i < sizeof(failure_words) / sizeof(failure_words[0]); i++)
	{
		if (!word_ieq(word, failure_words[i].word))
			continue;
		for (j = 0; failure_words[i].types[j] != NULL; j++)
			if (strcmp(failure_type, failure_words[i].types[j]) == 0)
				return true;
	}
	return false;
}
