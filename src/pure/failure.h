/*-------------------------------------------------------------------------
 *
 * failure.h
 *	  Failure types: classification of SQLSTATEs (SPEC section 5), pure C.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_FAILURE_H
#define CE_FAILURE_H

#include "ce_pure.h"

typedef enum CeFailureClass
{
	CE_FAIL_TRANSIENT,
	CE_FAIL_PERMANENT,
	CE_FAIL_BUSINESS,
	CE_FAIL_SYSTEM
} CeFailureClass;

/*
 * The failure type of a five-character SQLSTATE, e.g. "40001" ->
 * "database_busy", "57014" -> "execution_timeout" (when the step's own
 * timeout fired; the caller passes step_timeout), "23505" ->
 * "business_rule_violation".  Unknown codes give "system_error".
 */
extern const char *ce_failure_type_for_sqlstate(const char *sqlstate,
												 bool step_timeout);

/*
 * The failure type of the error of an execution (or a step) that was
 * cancelled, and the message of chain_cancel without a reason.
 */
#define CE_FAILURE_CANCELLED "cancelled"

/* Whether a failure type is transient (retried when no retryOnErrors). */
extern bool ce_failure_is_transient(const char *failure_type);

extern CeFailureClass ce_failure_class(const char *failure_type);

/*
 * Whether a retryOnErrors entry written in the design documents' words
 * (timeout, database_timeout, connection_error, quota_exceeded) stands for
 * failure_type; see the table in failure.c.
 */
extern bool ce_failure_word_covers(const char *word, const char *failure_type);

#endif							/* CE_FAILURE_H */
