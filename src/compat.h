/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The few differences between PostgreSQL versions that chainexec meets.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_COMPAT_H
#define CE_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(x) EmitWarningsOnPlaceholders(x)
#define CE_HAVE_SHMEM_REQUEST_HOOK 0
#else
#define CE_HAVE_SHMEM_REQUEST_HOOK 1
#endif

#if PG_VERSION_NUM < 150000
#define setup_parse_variable_parameters(pstate, types, n) \
	parse_variable_parameters((pstate), (types), (n))
#endif

/* A random fraction in [0, 1), for retry jitter. */
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#define ce_random_fraction() pg_prng_double(&pg_global_prng_state)
#else
#define ce_random_fraction() ((double) random() / ((double) MAX_RANDOM_VALUE + 1))
#endif

#endif							/* CE_COMPAT_H */
