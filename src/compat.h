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

#endif							/* CE_COMPAT_H */
