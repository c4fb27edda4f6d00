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
 * The record has a second copy in the executor's shared-memory slot
 * (shmem_int.h).  An executor that exits mid-attempt without taking the
 * server down (a FATAL: pg_terminate_backend, a termination request) marks
 * it orphaned on its way out, while its transaction still holds the line;
 * the line is then free at once, but the replacement executor starts
 * seconds later.  Whoever claims the line meanwhile (another executor, or
 * a session in chain_run) finds the orphaned attempt
 * (ce_inflight_take_orphan) and counts it before running the step again,
 * so that every executor's death counts once and the line fails at
 * exactly chainexec.max_crash_attempts.  (A SIGKILL or a crash restarts
 * the server: shared memory is new, and the sweep of every slot at start
 * goes before any claim.)
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
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "chainexec.h"
#include "inflight.h"
#include "shmem_int.h"

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
	if (ce_shared != NULL && inflight_slot < ce_shared->nexecutors)
	{
		CeExecutorSlot *slot = &ce_shared->executors[inflight_slot];

		/* no lock: others read it only once orphaned (under the lock) */
		slot->attempt_org = *org;
		slot->attempt_execution = *execution;
		slot->attempt_line = line;
		slot->attempt_number = attempt;
		slot->attempt_started = r.started_at;
		slot->attempt_set = true;
	}
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
	if (ce_shared != NULL && inflight_slot < ce_shared->nexecutors)
		ce_shared->executors[inflight_slot].attempt_set = false;
	memset(&r, 0, sizeof(r));
	(void) write_slot(inflight_slot, &r);
	inflight_set = false;
}

/*
 * Forget the orphaned attempts of executor slot `slot` (or of every slot:
 * slot < 0) in shared memory: they are recorded.
 */
static void
clear_orphans(int slot)
{
	int			i;

	if (ce_shared == NULL)
		return;
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < ce_shared->nexecutors; i++)
	{
		CeExecutorSlot *s = &ce_shared->executors[i];

		if (slot >= 0 && i != slot)
			continue;
		if (s->attempt_orphaned)
			pg_atomic_fetch_sub_u32(&ce_shared->orphans, 1);
		s->attempt_orphaned = false;
		s->attempt_set = false;
	}
	LWLockRelease(ce_shared->lock);
}

/*
 * An attempt of a line that a transition has just claimed (locked), left
 * orphaned by an executor that exited running it and not recorded yet:
 * one numbered after `after_attempt`, the line's attempt.  Takes it (no
 * one else will count it from shared memory) and returns true with its
 * number and start.  One atomic read when no executor left one.
 */
bool
ce_inflight_take_orphan(const pg_uuid_t *org, const pg_uuid_t *execution, int line,
						int after_attempt, int *attempt, TimestampTz *started_at)
{
	bool		found = false;
	int			i;

	if (ce_shared == NULL)
		return false;
	pg_memory_barrier();
	if (pg_atomic_read_u32(&ce_shared->orphans) == 0)
		return false;
	LWLockAcquire(ce_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < ce_shared->nexecutors && !found; i++)
	{
		CeExecutorSlot *s = &ce_shared->executors[i];

		if (!s->attempt_orphaned || s->attempt_line != line ||
			s->attempt_number <= after_attempt ||
			memcmp(&s->attempt_execution, execution, sizeof(pg_uuid_t)) != 0 ||
			memcmp(&s->attempt_org, org, sizeof(pg_uuid_t)) != 0)
			continue;
		*attempt = s->attempt_number;
		*started_at = s->attempt_started;
		s->attempt_orphaned = false;
		s->attempt_set = false;
		pg_atomic_fetch_sub_u32(&ce_shared->orphans, 1);
		found = true;
	}
	LWLockRelease(ce_shared->lock);
	return found;
}

/* Is the attempt of executor slot `slot` still orphaned (nobody took it)? */
static bool
orphan_pending(int slot)
{
	bool		pending;

	if (ce_shared == NULL || slot < 0 || slot >= ce_shared->nexecutors)
		return false;
	LWLockAcquire(ce_shared->lock, LW_SHARED);
	pending = ce_shared->executors[slot].attempt_orphaned;
	LWLockRelease(ce_shared->lock);
	return pending;
}

#define CE_ORPHAN_WAIT_MS	10000
#define CE_ORPHAN_POLL_MS	20

/*
 * The wait of ce_inflight_recover for the line of record r, locked by
 * another transaction: look again every CE_ORPHAN_POLL_MS until the
 * orphaned attempt is taken or recorded, CE_ORPHAN_WAIT_MS at most.  Both
 * are measured on the clock: the executor's latch is set by every wake-up
 * of the executors (chain_execute, a line made ready, any procsignal),
 * which must neither shorten the wait nor make the record run more often.
 */
static void
wait_for_line(const CeInflightRecord *r,
			  bool (*record) (const pg_uuid_t *org, const pg_uuid_t *execution,
							  int line, int attempt, TimestampTz started_at))
{
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz give_up = TimestampTzPlusMilliseconds(start, CE_ORPHAN_WAIT_MS);
	TimestampTz next = TimestampTzPlusMilliseconds(start, CE_ORPHAN_POLL_MS);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now >= give_up)
			return;
		if (now < next)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 TimestampDifferenceMilliseconds(now, next) + 1, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		next = TimestampTzPlusMilliseconds(now, CE_ORPHAN_POLL_MS);
		if (!orphan_pending(inflight_slot) ||
			!record(&r->org, &r->execution, r->line, r->attempt, r->started_at))
			return;
	}
}

/*
 * Record the attempts that executors died running, found in this
 * executor's slot (or in all slots), then clear those slots.  Call at
 * executor start, once the extension is installed, before claiming work.
 * record(...) records one attempt (in a transaction of its own) and says
 * whether the line was locked.
 *
 * An executor that replaces a dead one may find the line locked by a
 * transition that has just claimed it and has yet to take the orphaned
 * attempt from shared memory (ce_inflight_take_orphan).  Clearing the
 * orphan then would lose the attempt: the step would run once more than
 * chainexec.max_crash_attempts.  So it waits (CE_ORPHAN_WAIT_MS at most)
 * until the claimer has taken it, or the line is free and the record can
 * be made.
 */
void
ce_inflight_recover(bool all_slots,
					bool (*record) (const pg_uuid_t *org, const pg_uuid_t *execution,
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
		if (r.database != MyDatabaseId)
			continue;
		if (record(&r.org, &r.execution, r.line, r.attempt, r.started_at) && !all_slots)
			wait_for_line(&r, record);
	}
	inflight_set = false;

	/*
	 * Recorded now, or taken by the transition that claimed the line (a
	 * record made twice changes nothing): cleared after the records, not
	 * before.
	 */
	clear_orphans(all_slots ? -1 : inflight_slot);
}
