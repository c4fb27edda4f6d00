/*-------------------------------------------------------------------------
 *
 * uuid7.c
 *	  Time-ordered execution ids: chainexec._uuid7(), a UUID of version 7
 *	  (RFC 9562), the default of universal_transactions.id.
 *
 * Every key of the execution tables starts (organization_id, id): with
 * random ids (gen_random_uuid(), version 4) each new execution's header and
 * lines go to random leaf pages of primary keys that grow with the
 * history, so that once the history outgrows shared_buffers most writes
 * of a step read an index page back from the operating system.  A version
 * 7 id starts with the time in milliseconds: the rows of executions
 * started together are neighbours, and the pages they touch stay in
 * memory whatever the history holds.
 *
 * Layout (big-endian): 48 bits of Unix time in milliseconds, the version
 * (7), 12 random bits, the variant (binary 10), 62 random bits.  The 74
 * random bits come from pg_strong_random, as gen_random_uuid()'s do; ids
 * made in one millisecond are not ordered among themselves.  The id tells
 * the millisecond the execution was created, which its created_at column
 * tells anyone who may read it anyway.
 *
 * PostgreSQL 18 has uuidv7(); on 15 to 17 this is the same layout.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(ce_uuid7);

/*
 * chainexec._uuid7() returns uuid: a new version 7 UUID (see above).
 * Raises 58000 when the system has no strong random source.
 */
Datum
ce_uuid7(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));
	TimestampTz now = GetCurrentTimestamp();
	uint64		ms;
	int			i;

	/* microseconds since 2000-01-01 to milliseconds since 1970-01-01 */
	ms = (uint64) (now / 1000) +
		(uint64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
	if (!pg_strong_random(u->data + 6, UUID_LEN - 6))
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not generate random values")));
	for (i = 0; i < 6; i++)
		u->data[i] = (unsigned char) (ms >> (8 * (5 - i)));
	u->data[6] = (u->data[6] & 0x0F) | 0x70;	/* version 7 */
	u->data[8] = (u->data[8] & 0x3F) | 0x80;	/* variant 10 */
	PG_RETURN_UUID_P(u);
}
