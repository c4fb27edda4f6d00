/*-------------------------------------------------------------------------
 *
 * inflight.c
 *	  Attempts in flight: what each executor is running, kept where it
 *	  survives the executor's death and the server's crash-restart, so that
 *	  an attempt whose executor died counts (SPEC §9, poison steps).
 *
 * A step that kills its executor (FATAL, pg_terminate_backend, SIGKILL,
 * the OOM killer, a crashing C function) takes its transaction with it:
 * the line is ready again at the same attempt, as if it had never run,
 * and would be claimed again forever.  So right before an executor runs a
 * step it writes a record (database, execution, line, attempt, start
 * time) into its own slot of the file $PGDATA/chainexec.inflight, and
 * clears the slot once the transition has ended (committed or rolled
 * back).  An executor that starts (after the launcher replaced a dead
 * one, or after a server start or crash-restart) first looks at its slot:
 * a record still there is an attempt whose executor died.  It is recorded
 * on the line in a transaction of its own (ce_record_crash): the attempt
 * number, failure type worker_crashed, started_at and finished_at, and a
 * back-off before the next attempt; after chainexec.max_crash_attempts
 * such attempts in a row the line fails (engine.c).
 *
 * Why a file rather than a row committed before the step: a write to the
 * kernel's page cache (no fsync) costs a system call, where an extra
 * commit per transition costs a WAL flush; and it survives what it must:
 * the death of the process and the postmaster's crash-restart (shared
 * memory does not).  An operating system crash may lose the last record;
 * then that one attempt is not counted.
 *
 * Slots are indexed by executor number.  After a server start or
 * crash-restart, the executor that claims the start-up recovery sweeps
 * every slot (also those of a server that had more executors) before any
 * executor claims work: otherwise another executor could claim the line
 * first, and the record, finding it locked, would be lost.  An executor
 * that replaces a dead one while the others run sweeps its own slot.  A
 * record carries a checksum, so a torn or foreign slot is ignored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/timestamp.h"

#include "chainexec.h"
#include "inflight.h"

#define CE_INFLIGHT_FILE	"chainexec.inflight"
#define CE_INFLIGHT_MAGIC	0x43454946	/* "CEIF" */

/* One slot of the file. */
typedef struct CeInflightRecord
{
	uint32		magic;			/* CE_INFLIGHT_MAGIC when in use, else 0 */
	Oid			database;
	pg_uuid_t	org;
	pg_uuid_t	execution;
	int32		line;
	int32		attempt;
	TimestampTz started_at;
	pg_crc32c	crc;			/* of everything above */
} CeInflightRecord;

static int	inflight_fd = -1;
static int	inflight_slot = -1;
static bool inflight_set = false;	/* our slot holds a record */

static pg_crc32c
record_crc(const CeInflightRecord *r)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, r, offsetof(CeInflightRecord, crc));
	FIN_CRC32C(crc);
	return crc;
}

static bool
write_slot(int slot, const CeInflightRecord *r)
{
	return pg_pwrite(inflight_fd, r, sizeof(*r), (off_t) slot * sizeof(*r)) == sizeof(*r);
}

/*
 * Open the file for executor slot `slot` (at executor start).  Failing to
 * open it only costs the protection: logged, not fatal.
 */
void
ce_inflight_open(int slot)
{
	inflight_fd = BasicOpenFile(CE_INFLIGHT_FILE, O_RDWR | O_CREAT | PG_BINARY);
	if (inflight_fd < 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", CE_INFLIGHT_FILE),
				 errdetail("Steps that end their executor will not be counted as attempts.")));
		return;
	}
	inflight_slot = slot;
}

/*
 * Record that this executor is about to run an attempt of a line.
 */
void
ce_inflight_begin(const pg_uuid_t *org, const pg_uuid_t *execution, int line, int attempt)
{
	CeInflightRecord r;

	if (inflight_fd < 0)
		return;
	memset(&r, 0, sizeof(r));
	r.magic = CE_INFLIGHT_MAGIC;
	r.database = MyDatabaseId;
	r.org = *org;
	r.execution = *execution;
	r.line = line;
	r.attempt = attempt;
	r.started_at = GetCurrentTimestamp();
	r.crc = record_crc(&r);
	if (write_slot(inflight_slot, &r))
		inflight_set = true;
}

/*
 * The transition ended (committed or rolled back): clear the slot.
 */
void
ce_inflight_end(void)
{
	CeInflightRecord r;

	if (inflight_fd < 0 || !inflight_set)
		return;
	memset(&r, 0, sizeof(r));
	(void) write_slot(inflight_slot, &r);
	inflight_set = false;
}

/*
 * Record the attempts that executors died running, found in this
 * executor's slot (or in all slots), then clear those slots.  Call at
 * executor start, once the extension is installed, before claiming work.
 * record(...) records one attempt (in a transaction of its own).
 */
void
ce_inflight_recover(bool all_slots,
					void (*record) (const pg_uuid_t *org, const pg_uuid_t *execution,
									int line, int attempt, TimestampTz started_at))
{
	struct stat st;
	int			nslots;
	int			slot;

	if (inflight_fd < 0)
		return;
	if (fstat(inflight_fd, &st) != 0)
		return;
	nslots = (int) (st.st_size / sizeof(CeInflightRecord));

	for (slot = 0; slot < nslots; slot++)
	{
		CeInflightRecord r;
		CeInflightRecord empty;

		if (slot != inflight_slot && !all_slots)
			continue;
		if (pg_pread(inflight_fd, &r, sizeof(r), (off_t) slot * sizeof(r)) != sizeof(r))
			continue;
		if (r.magic != CE_INFLIGHT_MAGIC || r.crc != record_crc(&r))
			continue;
		/* cleared first: a record that cannot be recorded is not retried forever */
		memset(&empty, 0, sizeof(empty));
		(void) write_slot(slot, &empty);
		if (r.database == MyDatabaseId)
			record(&r.org, &r.execution, r.line, r.attempt, r.started_at);
	}
	inflight_set = false;
}
