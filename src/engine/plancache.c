/*-------------------------------------------------------------------------
 *
 * plancache.c
 *	  The per-backend cache of compiled plans: one CePlan per chain
 *	  version (an executable version is immutable), built from its
 *	  definition by the pure compiler (plan.c) on first use and dropped
 *	  when chainexec.chains is made again (DROP/CREATE EXTENSION).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "executor/spi.h"

#include "parser/scanner.h"

#include "utils/builtins.h"

#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "catalog/namespace.h"
#include "step.h"

#include "utils/memutils.h"

#include "plancache.h"

/* ---------------------------------------------------------------------
 * Plan cache
 * --------------------------------------------------------------------- */

typedef struct PlanKey
{
	pg_uuid_t	org;
	int			version;
	char		chain_id[NAMEDATALEN];
} PlanKey;

typedef struct PlanEntry
{
	PlanKey		key;
	CePlan	   *plan;
	MemoryContext cxt;
} PlanEntry;

static HTAB *plan_cache = NULL;
static bool plan_cache_stale = false;
static bool plan_cache_callback = false;

/*
 * An invalidation of chainexec.chains (DROP/CREATE EXTENSION makes a new
 * one, with the same chain ids and versions) or a full cache reset marks
 * the plans stale; they are dropped at the next ce_plan_get(), a safe point.
 */
static Oid	chains_relid = InvalidOid;

static void
plan_cache_inval(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == chains_relid)
		plan_cache_stale = true;
}

static void
plan_cache_drop(void)
{
	HASH_SEQ_STATUS seq;
	PlanEntry  *e;

	hash_seq_init(&seq, plan_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		MemoryContextDelete(e->cxt);
	hash_destroy(plan_cache);
	plan_cache = NULL;
	ce_step_cache_reset();
	plan_cache_stale = false;
}

HTAB *
ce_cache_create(const char *name, Size keysize, Size entrysize)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = CacheMemoryContext;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

CePlan *
ce_plan_get(const pg_uuid_t *org, const char *chain_id, int version)
{
	PlanKey		key;
	PlanEntry  *entry;
	bool		found;
	Datum		args[3];
	Oid			types[3] = {UUIDOID, TEXTOID, INT4OID};
	int			ret;
	bool		isnull;
	Datum		d;
	MemoryContext cxt;
	MemoryContext old;
	CeError		err;
	CePlan	   *plan;
	CeJson	   *def;

	if (plan_cache != NULL && plan_cache_stale)
		plan_cache_drop();
	if (!plan_cache_callback)
	{
		CacheRegisterRelcacheCallback(plan_cache_inval, (Datum) 0);
		plan_cache_callback = true;
	}
	if (plan_cache == NULL)
	{
		chains_relid = get_relname_relid("chains", get_namespace_oid("chainexec", false));
		plan_cache = ce_cache_create("chainexec plan cache", sizeof(PlanKey), sizeof(PlanEntry));
	}
	memset(&key, 0, sizeof(key));
	memcpy(&key.org, org, sizeof(pg_uuid_t));
	key.version = version;
	strlcpy(key.chain_id, chain_id, sizeof(key.chain_id));

	entry = hash_search(plan_cache, &key, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->plan;

	args[0] = UUIDPGetDatum((pg_uuid_t *) org);
	args[1] = CStringGetTextDatum(chain_id);
	args[2] = Int32GetDatum(version);
	ret = SPI_execute_with_args("SELECT definition FROM chainexec.chains "
								"WHERE organization_id = $1 AND chain_id = $2 AND version = $3",
								3, types, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("version %d of chain \"%s\" does not exist", version, chain_id)));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	cxt = AllocSetContextCreate(CacheMemoryContext, "chainexec plan", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		def = ce_jsonb_to_cejson(DatumGetJsonbP(d));
		memset(&err, 0, sizeof(err));
		plan = ce_plan_build(def, &err, NULL);
		if (plan == NULL)
			ce_raise(&err, "invalid definition of version %d of chain \"%s\"", version, chain_id);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	entry = hash_search(plan_cache, &key, HASH_ENTER, &found);
	entry->plan = plan;
	entry->cxt = cxt;
	return plan;
}

