/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  The one progress and ETA computation of an execution, for the events
 *	  of transitions and control functions alike, and the per-backend
 *	  cache of step averages it draws the ETA from.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <signal.h>

#include "executor/spi.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "utils/memutils.h"

#include "utils/timestamp.h"

#include "engine.h"
#include "plancache.h"
#include "engine_int.h"
#include "compose.h"
#include "control_int.h"

/* Progress and ETA of the events of the running transition or control call. */
static int	current_progress = 0;
static long current_eta = -1;

/*
 * ETA: from the average time each step took, first attempt to end (failed
 * attempts and back-offs included), in this chain version's last 20
 * completed executions.  Cached per backend for a minute; an answer of "no
 * history yet" is asked again after a second, and forgotten at once when
 * the backend completes an execution of the chain itself, so that the first
 * completion is used at once.  (A known answer is kept for its minute: asking
 * again after every completion cost an aggregate over 20 executions' lines
 * per execution, about a tenth of the executors' time.)
 */

typedef struct EtaKey
{
	pg_uuid_t	org;
	int			version;
	char		chain_id[NAMEDATALEN];
} EtaKey;

typedef struct EtaEntry
{
	EtaKey		key;
	TimestampTz fetched;
	int			n;
	int		   *step_ids;
	double	   *avg_ms;
} EtaEntry;

static HTAB *eta_cache = NULL;

/*
 * Both tables filtered by the organization: on Citus, a router query to
 * the organization's shards (a filter on the subquery alone leaves the
 * lines of every shard to read).
 */
static CeQuery q_step_averages = {
	"SELECT l.step_id, avg(extract(epoch FROM l.finished_at - coalesce(l.first_started_at, l.started_at)) * 1000)::float8 "
	"FROM (SELECT organization_id, id FROM chainexec.universal_transactions "
	"      WHERE organization_id = $1 AND chain_id = $2 AND chain_version = $3 AND status = 'completed' "
	"      ORDER BY created_at DESC LIMIT 20) t "
	"JOIN chainexec.universal_transaction_lines l ON l.organization_id = t.organization_id AND l.transaction_id = t.id "
	"WHERE l.organization_id = $1 AND l.line_type = 'step' AND l.status = 'completed' "
	"AND l.finished_at IS NOT NULL AND l.started_at IS NOT NULL "
	"GROUP BY l.step_id",
	3, {UUIDOID, TEXTOID, INT4OID}};

static void
eta_key(ExecRow *ex, EtaKey *key)
{
	memset(key, 0, sizeof(*key));
	key->org = ex->org;
	key->version = ex->version;
	strlcpy(key->chain_id, ex->chain_id, sizeof(key->chain_id));
}

void
ce_eta_forget(ExecRow *ex)
{
	EtaKey		key;
	EtaEntry   *e;

	if (eta_cache == NULL)
		return;
	eta_key(ex, &key);
	e = hash_search(eta_cache, &key, HASH_FIND, NULL);
	if (e && e->n == 0)
		e->fetched = 0;
}

static EtaEntry *
step_averages(ExecRow *ex)
{
	EtaKey		key;
	EtaEntry   *e;
	bool		found;
	TimestampTz now = GetCurrentTimestamp();
	Datum		v[3];
	uint64		i;

	if (eta_cache == NULL)
		eta_cache = ce_cache_create("chainexec step averages", sizeof(EtaKey), sizeof(EtaEntry));
	eta_key(ex, &key);
	e = hash_search(eta_cache, &key, HASH_ENTER, &found);
	if (found && e->fetched > now - (e->n > 0 ? 60 : 1) * USECS_PER_SEC)
		return e;
	if (found)
	{
		if (e->step_ids)
			pfree(e->step_ids);
		if (e->avg_ms)
			pfree(e->avg_ms);
	}
	e->n = 0;
	e->step_ids = NULL;
	e->avg_ms = NULL;
	e->fetched = now;

	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = CStringGetTextDatum(ex->chain_id);
	v[2] = Int32GetDatum(ex->version);
	ce_run_query(&q_step_averages, v, NULL, true, 0);
	if (SPI_processed > 0)
	{
		e->step_ids = MemoryContextAllocZero(CacheMemoryContext, sizeof(int) * SPI_processed);
		e->avg_ms = MemoryContextAllocZero(CacheMemoryContext, sizeof(double) * SPI_processed);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			e->step_ids[i] = DatumGetInt32(ce_getcol(i, 1, &isnull));
			e->avg_ms[i] = DatumGetFloat8(ce_getcol(i, 2, &isnull));
		}
		e->n = (int) SPI_processed;
	}
	return e;
}

long
ce_eta_new_execution(const pg_uuid_t *org, const char *chain_id, int version)
{
	ExecRow		ex;
	EtaEntry   *e;
	double		eta = 0;
	int			k;

	memset(&ex, 0, sizeof(ex));
	ex.org = *org;
	ex.chain_id = (char *) chain_id;
	ex.version = version;
	e = step_averages(&ex);
	if (e->n == 0)
		return -1;
	for (k = 0; k < e->n; k++)
		eta += e->avg_ms[k];
	return (long) (eta + 0.5);
}

/* Estimated ms left: the averages of the step lines not yet finished. */
static long
compute_eta(ExecRow *ex, List *lines)
{
	EtaEntry   *e = step_averages(ex);
	ListCell   *lc;
	double		eta = 0;

	if (e->n == 0)
		return -1;
	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);
		int			k;

		if (li->type != 's' || ce_line_status_is_terminal(li->status))
			continue;
		for (k = 0; k < e->n; k++)
			if (e->step_ids[k] == li->step_id)
				eta += e->avg_ms[k];
	}
	return (long) (eta + 0.5);
}

/*
 * Percent of step lines finished.  A failed line counts when the execution
 * went on past it (onFailure warn, or a fallback stands for it); a failure
 * that ends the execution does not move progress, and cancelled lines never
 * count.  So transitions only ever add to it; a control function that
 * reopens lines (resume, retry, skip of a finished execution) first records
 * what was reported in progressFloor, below which it never goes.
 */
static int
compute_progress(ExecRow *ex, List *lines)
{
	ListCell   *lc;
	int			total = 0;
	double		done = 0;

	foreach(lc, lines)
	{
		LineInfo   *li = lfirst(lc);

		if (li->type != 's')
			continue;
		total++;
		if (li->iter_count > 0)
			done += ce_container_fraction(li);	/* its iterations done so far */
		else if (li->status == CE_LINE_COMPLETED || li->status == CE_LINE_SKIPPED ||
			li->status == CE_LINE_COMPENSATED)
			done++;
		else if (li->status == CE_LINE_FAILED)
		{
			CeStep	   *s = ex->plan ? ce_plan_step_by_id(ex->plan, li->step_id) : NULL;
			bool		past = s && s->on_failure == CE_ONFAIL_WARN;
			ListCell   *lc2;

			foreach(lc2, lines)
			{
				LineInfo   *fl = lfirst(lc2);

				if (fl->type == 'f' && fl->parent_line == li->line_number)
					past = true;
			}
			if (past)
				done++;
		}
	}
	return Max(total > 0 ? (int) ((done * 100) / total) : 100, ex->progress_floor);
}

void
ce_progress_from_lines(ExecRow *ex, List *lines)
{
	current_eta = compute_eta(ex, lines);
	current_progress = compute_progress(ex, lines);
}

int
ce_progress_refresh(ExecRow *ex, long *eta_ms)
{
	ce_progress_from_lines(ex, ce_exec_lines(ex));
	if (eta_ms)
		*eta_ms = current_eta;
	return current_progress;
}

int
ce_progress_current(long *eta_ms)
{
	*eta_ms = current_eta;
	return current_progress;
}

void
ce_progress_reset(void)
{
	current_progress = 0;
	current_eta = -1;
}

void
ce_progress_complete(void)
{
	current_progress = 100;
}

/* A forEach or repeatUntil container's counters (iterate.c), for its progress. */
void
ce_container_counters(Jsonb *it, LineInfo *li)
{
	JsonbValue *v;

	if (it == NULL || !JB_ROOT_IS_OBJECT(it))
		return;
	v = getKeyJsonValueFromContainer(&it->root, "count", 5, NULL);
	if (v && v->type == jbvNumeric)
		li->iter_count = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric)));
	v = getKeyJsonValueFromContainer(&it->root, "done", 4, NULL);
	if (v && v->type == jbvNumeric)
		li->iter_done = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric)));
	v = getKeyJsonValueFromContainer(&it->root, "parked", 6, NULL);
	if (v && v->type == jbvNumeric)
		li->iter_parked = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric)));
}

double
ce_container_fraction(const LineInfo *li)
{
	if (li->iter_count <= 0)
		return 0;
	return Min((double) li->iter_done / li->iter_count, 0.999);
}

/*
 * _progress(execution_id uuid) RETURNS jsonb: {"percent", "etaMs"} of an
 * execution the caller may see, as the events report them (chain_status),
 * opened as a control call is (control.c).
 */
PG_FUNCTION_INFO_V1(ce_progress_sql);
Datum
ce_progress_sql(PG_FUNCTION_ARGS)
{
	Ctl			c;
	long		eta;
	int			percent;
	bool		finished;
	Jsonb	   *result;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext old;

	ce_ctl_open_as(&c, ce_ctl_uuid_arg(fcinfo), false, NULL, false);
	percent = ce_progress_refresh(&c.ex, &eta);
	finished = !ce_exec_status_is_live(c.ex.status) && c.ex.status != CE_EXEC_PAUSED &&
		c.ex.status != CE_EXEC_COMPENSATING;
	if (c.ex.status == CE_EXEC_COMPLETED)
		percent = 100;
	old = MemoryContextSwitchTo(callcxt);
	result = ce_text_to_jsonb(psprintf("{\"percent\": %d, \"etaMs\": %s}", percent,
									   finished ? "0" : eta < 0 ? "null" : psprintf("%ld", eta)));
	MemoryContextSwitchTo(old);
	ce_ctl_close(&c);
	PG_RETURN_JSONB_P(result);
}
