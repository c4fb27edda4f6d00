/*-------------------------------------------------------------------------
 *
 * running_list.c
 *	  A copy of the running slots (running.c), for chainexec.stats: which
 *	  lines run now, in executors and in CALL chain_run sessions, and how
 *	  many executor slots the server has.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/lwlock.h"

#include "shmem.h"
#include "shmem_int.h"

/*
 * A copy of the running slots in use, taken under the lock: *lines gets a
 * palloc'd array (NULL when none), *executors the number of executor
 * slots and *executors_alive how many hold a process.  Returns the number
 * of lines; 0 and no executors when the library was not preloaded.
 */
int
ce_running_lines(CeRunningLine **lines, int *executors, int *executors_alive)
{
	int			n = 0;
	int			i;

	*lines = NULL;
	*executors = 0;
	*executors_alive = 0;
	if (ce_shared == NULL)
		return 0;
	*lines = palloc0(sizeof(CeRunningLine) * Max(ce_shared->nrunning, 1));
	LWLockAcquire(ce_shared->lock, LW_SHARED);
	*executors = ce_shared->nexecutors;
	for (i = 0; i < ce_shared->nexecutors; i++)
		if (ce_shared->executors[i].pid != 0)
			(*executors_alive)++;
	for (i = 0; i < ce_shared->nrunning; i++)
	{
		CeRunningSlot *slot = &ce_running[i];

		if (slot->pid == 0)
			continue;
		(*lines)[n].pid = slot->pid;
		(*lines)[n].line = slot->line;
		(*lines)[n].execution = slot->execution;
		(*lines)[n].executor = slot->executor;
		(*lines)[n].in_step = slot->in_step;
		n++;
	}
	LWLockRelease(ce_shared->lock);
	return n;
}
