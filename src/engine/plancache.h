/*-------------------------------------------------------------------------
 *
 * plancache.h
 *	  The per-backend cache of compiled plans (plancache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_PLANCACHE_H
#define CE_PLANCACHE_H

#include "postgres.h"
#include "utils/hsearch.h"
#include "utils/uuid.h"

#include "plan.h"

/*
 * The compiled plan of one chain version, cached for the life of the
 * backend (versions that can be executed are immutable).  Reads the
 * definition with SPI: call inside a transaction, with SPI connected.
 */
/*
 * A backend's cache: a hash table in CacheMemoryContext whose keys are
 * keysize bytes (zero the padding of a key struct before a lookup).
 */
extern HTAB *ce_cache_create(const char *name, Size keysize, Size entrysize);

extern CePlan *ce_plan_get(const pg_uuid_t *org, const char *chain_id, int version);

#endif							/* CE_PLANCACHE_H */
