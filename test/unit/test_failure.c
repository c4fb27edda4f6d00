/*
 * test_failure.c
 *	  Unit tests of the SQLSTATE -> failure type classification (failure.c).
 */
#include "unit.h"
#include "failure.h"

void		run_failure_tests(void);

/* Shorthand: the failure type of a SQLSTATE without step timeout. */
static const char *
ft(const char *sqlstate)
{
	return ce_failure_type_for_sqlstate(sqlstate, false);
}

void
run_failure_tests(void)
{
	/* transient */
	CHECK_STR(ft("40001"), "database_busy", "serialization_failure");
	CHECK_STR(ft("40P01"), "database_busy", "deadlock_detected");
	CHECK_STR(ft("55P03"), "database_busy", "lock_not_available");
	CHECK_STR(ft("53300"), "temporary_overload", "too_many_connections");
	CHECK_STR(ft("53100"), "temporary_overload", "disk_full");
	CHECK_STR(ft("53000"), "temporary_overload", "insufficient_resources");
	CHECK_STR(ft("53200"), "out_of_memory", "out_of_memory");
	CHECK_STR(ce_failure_type_for_sqlstate("57014", true), "execution_timeout",
			  "57014 from the step timeout");
	CHECK_STR(ft("57014"), "query_canceled", "57014 from a cancel request");
	CHECK_STR(ft("08006"), "network_timeout", "connection_failure");
	CHECK_STR(ft("08001"), "network_timeout", "sqlclient_unable_to_establish");

	/* permanent */
	CHECK_STR(ft("22P02"), "invalid_input", "invalid_text_representation");
	CHECK_STR(ft("22012"), "invalid_input", "division_by_zero");
	CHECK_STR(ft("42501"), "permission_denied", "insufficient_privilege");
	CHECK_STR(ft("42P01"), "resource_not_found", "undefined_table");
	CHECK_STR(ft("42883"), "resource_not_found", "undefined_function");
	CHECK_STR(ft("42703"), "resource_not_found", "undefined_column");
	CHECK_STR(ft("02000"), "resource_not_found", "no_data");
	CHECK_STR(ft("P0002"), "resource_not_found", "no_data_found");
	CHECK_STR(ft("3F000"), "resource_not_found", "invalid_schema_name");
	CHECK_STR(ft("42601"), "syntax_error", "syntax_error");
	CHECK_STR(ft("42804"), "syntax_error", "datatype_mismatch");

	/* business */
	CHECK_STR(ft("23505"), "business_rule_violation", "unique_violation");
	CHECK_STR(ft("23514"), "business_rule_violation", "check_violation");
	CHECK_STR(ft("P0001"), "business_rule_violation", "raise_exception");

	/* system */
	CHECK_STR(ft("28P01"), "security_violation", "invalid_password");
	CHECK_STR(ft("XX000"), "system_error", "internal_error");
	CHECK_STR(ft("40003"), "system_error", "statement_completion_unknown");
	CHECK_STR(ft("57P01"), "system_error", "admin_shutdown");
	CHECK_STR(ft(NULL), "system_error", "NULL sqlstate");
	CHECK_STR(ft(""), "system_error", "empty sqlstate");
	CHECK_STR(ft("4000"), "system_error", "short sqlstate");
	CHECK_STR(ft("400011"), "system_error", "long sqlstate");

	/* transient types */
	CHECK(ce_failure_is_transient("network_timeout"), "network_timeout transient");
	CHECK(ce_failure_is_transient("api_rate_limit"), "api_rate_limit transient");
	CHECK(ce_failure_is_transient("database_busy"), "database_busy transient");
	CHECK(ce_failure_is_transient("temporary_overload"), "temporary_overload transient");
	CHECK(ce_failure_is_transient("execution_timeout"), "execution_timeout transient");
	CHECK(ce_failure_is_transient("api_timeout"), "api_timeout transient");
	CHECK(!ce_failure_is_transient("invalid_input"), "invalid_input not transient");
	CHECK(!ce_failure_is_transient("business_rule_violation"), "business not transient");
	CHECK(!ce_failure_is_transient("system_error"), "system_error not transient");
	CHECK(!ce_failure_is_transient("query_canceled"), "query_canceled not transient");
	CHECK(!ce_failure_is_transient("my_custom_failure"), "custom not transient");
	CHECK(!ce_failure_is_transient("Database_Busy"), "names are case sensitive");
	CHECK(!ce_failure_is_transient(NULL), "NULL not transient");

	/* classes */
	CHECK(ce_failure_class("database_busy") == CE_FAIL_TRANSIENT, "class transient");
	CHECK(ce_failure_class("invalid_input") == CE_FAIL_PERMANENT, "class invalid_input");
	CHECK(ce_failure_class("permission_denied") == CE_FAIL_PERMANENT, "class permission_denied");
	CHECK(ce_failure_class("resource_not_found") == CE_FAIL_PERMANENT, "class resource_not_found");
	CHECK(ce_failure_class("syntax_error") == CE_FAIL_PERMANENT, "class syntax_error");
	CHECK(ce_failure_class("validation_failed") == CE_FAIL_BUSINESS, "class validation_failed");
	CHECK(ce_failure_class("insufficient_data") == CE_FAIL_BUSINESS, "class insufficient_data");
	CHECK(ce_failure_class("business_rule_violation") == CE_FAIL_BUSINESS, "class business");
	CHECK(ce_failure_class("out_of_memory") == CE_FAIL_SYSTEM, "class out_of_memory");
	CHECK(ce_failure_class("security_violation") == CE_FAIL_SYSTEM, "class security");
	CHECK(ce_failure_class("system_error") == CE_FAIL_SYSTEM, "class system_error");
	CHECK(ce_failure_class("credit_limit_exceeded") == CE_FAIL_PERMANENT,
		  "custom types are permanent");

	/* every type a SQLSTATE can give has a class of its own kind */
	CHECK(ce_failure_class(ft("40001")) == CE_FAIL_TRANSIENT, "sqlstate to class transient");
	CHECK(ce_failure_class(ft("23505")) == CE_FAIL_BUSINESS, "sqlstate to class business");
	CHECK(ce_failure_class(ft("53200")) == CE_FAIL_SYSTEM, "sqlstate to class system");
}
