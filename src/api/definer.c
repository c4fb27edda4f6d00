/*-------------------------------------------------------------------------
 *
 * definer.c
 *	  The functions that write definitions (chain_define, chain_publish,
 *	  chain_deprecate, chain_reactivate, chain_archive,
 *	  chain_register_handler, chain_register_template) and schedules run
 *	  as the extension owner on behalf of their caller.
 *
 * Only the extension owner writes chainexec's tables: PUBLIC holds no
 * write privilege on any of them.  Each such public function is this one
 * C entry point.  It calls the implementation chainexec._<name> (for a
 * public name that starts with "_", chainexec.<name>_owner) with the same
 * arguments plus the caller's role, as the extension owner, with the
 * search_path pinned to pg_catalog, chainexec, pg_temp.  The
 * implementation, which PUBLIC may not execute, checks what that role may
 * do (ownership, organization) itself.  A SECURITY DEFINER function could
 * not: inside it the caller's identity is gone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "engine.h"

PG_FUNCTION_INFO_V1(ce_definer_call);

/* The search_path of everything chainexec runs as its owner. */
#define CE_OWNER_SEARCH_PATH "pg_catalog, chainexec, pg_temp"

Datum
ce_definer_call(PG_FUNCTION_ARGS)
{
	Oid			fn = fcinfo->flinfo->fn_oid;
	char	   *name = get_func_name(fn);
	Oid			rettype = get_func_rettype(fn);
	int			nargs = PG_NARGS();
	Oid		   *declared;
	int			ndeclared;
	Oid		   *types = palloc(sizeof(Oid) * (nargs + 1));
	Datum	   *values = palloc(sizeof(Datum) * (nargs + 1));
	char	   *nulls = palloc(nargs + 2);
	StringInfoData sql;
	int			i;
	int			ret;
	bool		isnull = true;
	Datum		result = (Datum) 0;
	Oid			save_user;
	int			save_sec;
	int			gucnest;
	MemoryContext callcxt = CurrentMemoryContext;

	(void) get_func_signature(fn, &declared, &ndeclared);
	Assert(ndeclared == nargs);
	GetUserIdAndSecContext(&save_user, &save_sec);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT chainexec.%s(",
					 quote_identifier(name[0] == '_' ? psprintf("%s_owner", name) : psprintf("_%s", name)));
	for (i = 0; i < nargs; i++)
	{
		types[i] = declared[i];
		values[i] = PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		appendStringInfo(&sql, "$%d, ", i + 1);
	}
	/* the caller */
	types[nargs] = OIDOID;
	values[nargs] = ObjectIdGetDatum(save_user);
	nulls[nargs] = ' ';
	nulls[nargs + 1] = '\0';
	appendStringInfo(&sql, "$%d::pg_catalog.regrole)", nargs + 1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	gucnest = NewGUCNestLevel();
	(void) set_config_option("search_path", CE_OWNER_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		ret = SPI_execute_with_args(sql.data, nargs + 1, types, values, nulls, false, 1);
		if (ret < 0 || SPI_processed != 1)
			elog(ERROR, "function %s failed: %s", name, SPI_result_code_string(ret));
		if (rettype != VOIDOID)
		{
			result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
			{
				MemoryContext old = MemoryContextSwitchTo(callcxt);
				int16		typlen;
				bool		typbyval;

				get_typlenbyval(rettype, &typlen, &typbyval);
				result = datumCopy(result, typbyval, typlen);
				MemoryContextSwitchTo(old);
			}
		}
	}
	PG_CATCH();
	{
		SetUserIdAndSecContext(save_user, save_sec);
		PG_RE_THROW();
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_user, save_sec);
	AtEOXact_GUC(true, gucnest);
	SPI_finish();
	if (rettype == VOIDOID)
		PG_RETURN_VOID();
	if (isnull)
		PG_RETURN_NULL();
	return result;
}
