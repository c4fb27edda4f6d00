/*-------------------------------------------------------------------------
 *
 * events.c
 *	  Execution events: the one builder (ce_exec_emit) and their sending.
 *	  An event is a small JSON payload of ids, names, status and
 *	  progress (no variable values, no rendered input), queued with
 *	  Async_Notify in the transition's own transaction, so subscribers
 *	  never see an event for work that rolled back.  Each event goes to
 *	  the channel of its execution's owner role and to its organization's
 *	  admin channel (channel.c), never to a channel every role can read.
 *
 *	  The events that end an execution (or its compensation) are held back
 *	  until the transaction is about to commit, so that they come after the
 *	  step events of the same transaction: a subscriber can stop at the
 *	  first chain_completed / chain_failed / chain_timeout / chain_cancelled
 *	  without missing the event of the step that finished the execution.
 *	  Held events of a subtransaction that rolls back are dropped with it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"

#include "utils/json.h"

#include "utils/datetime.h"
#include "utils/memutils.h"

#include "channels.h"
#include "engine.h"
#include "engine_int.h"
#include "events.h"

/* An end event held back until pre-commit. */
typedef struct HeldEvent
{
	int			nest_level;		/* subtransaction level that queued it */
	char	   *channel;
	char	   *payload;
} HeldEvent;

/* Held events, in order, allocated in TopTransactionContext. */
static List *held_events = NIL;
static bool callbacks_registered = false;

/* Whether an event ends an execution or its compensation. */
static bool
is_end_event(const char *event)
{
	return strcmp(event, "chain_completed") == 0 || strcmp(event, "chain_failed") == 0 ||
		strcmp(event, "chain_timeout") == 0 || strcmp(event, "chain_cancelled") == 0 ||
		strcmp(event, "compensation_completed") == 0;
}

/* An event's "ts": now, in ISO 8601, UTC (27 characters). */
static void
format_ts(char *ts, size_t size)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(GetCurrentTimestamp(), NULL, &tm, &fsec, NULL, NULL) == 0)
		snprintf(ts, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
				 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				 (int) fsec);
	else
		strlcpy(ts, "", size);
}

/*
 * Give a held payload the time it is sent at, so that it is not older than
 * the events sent before it; the new stamp has the same length.
 */
static void
restamp(char *payload)
{
	char	   *p = strstr(payload, ",\"ts\":\"");
	char		ts[64];

	if (p == NULL)
		return;
	p += 7;
	format_ts(ts, sizeof(ts));
	if (strlen(ts) == 27 && strlen(p) > 27 && p[27] == '"')
		memcpy(p, ts, 27);
}

/* Transaction callback: send held events before commit, forget them at the end. */
static void
held_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			/* still inside the transaction: PreCommit_Notify runs after this */
			foreach(lc, held_events)
			{
				HeldEvent  *h = lfirst(lc);

				restamp(h->payload);
				Async_Notify(h->channel, h->payload);
			}
			held_events = NIL;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			held_events = NIL;	/* the memory goes with TopTransactionContext */
			break;
		default:
			break;
	}
}

/* Subtransaction callback: drop the held events of a rolled-back subtransaction. */
static void
held_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *keep = NIL;
	ListCell   *lc;
	MemoryContext old;

	if (held_events == NIL || (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB))
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	foreach(lc, held_events)
	{
		HeldEvent  *h = lfirst(lc);

		if (h->nest_level >= level)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB)
				continue;
			h->nest_level = level - 1;	/* now belongs to the parent */
		}
		keep = lappend(keep, h);
	}
	MemoryContextSwitchTo(old);
	held_events = keep;
}

/* Hold an end event until pre-commit. */
static void
hold_event(const char *channel, const char *payload)
{
	MemoryContext old;
	HeldEvent  *h;

	if (!callbacks_registered)
	{
		RegisterXactCallback(held_xact_callback, NULL);
		RegisterSubXactCallback(held_subxact_callback, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	h = palloc(sizeof(HeldEvent));
	h->nest_level = GetCurrentTransactionNestLevel();
	h->channel = pstrdup(channel);
	h->payload = pstrdup(payload);
	held_events = lappend(held_events, h);
	MemoryContextSwitchTo(old);
}

bool
ce_event_wanted(CeNotify level, const char *event)
{
	if (level == CE_NOTIFY_NONE)
		return false;
	if (level == CE_NOTIFY_LIFECYCLE)
		return strncmp(event, "chain_", 6) == 0 || strncmp(event, "compensation_", 13) == 0 ||
			strcmp(event, "step_escalated") == 0 || strncmp(event, "circuit_", 8) == 0;
	return true;
}

void
ce_notify(CeNotify level, const CeEvent *ev)
{
	StringInfoData buf;
	char		ts[MAXDATELEN + 1];

	if (!ce_event_wanted(level, ev->event))
		return;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"event\":");
	escape_json(&buf, ev->event);
	appendStringInfoString(&buf, ",\"executionId\":");
	escape_json(&buf, ev->execution_id);
	appendStringInfoString(&buf, ",\"chainId\":");
	escape_json(&buf, ev->chain_id);
	if (ev->step_id > 0)
		appendStringInfo(&buf, ",\"stepId\":%d", ev->step_id);
	else
		appendStringInfoString(&buf, ",\"stepId\":null");
	appendStringInfoString(&buf, ",\"stepName\":");
	if (ev->step_name)
		escape_json(&buf, ev->step_name);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ",\"status\":");
	escape_json(&buf, ev->status);
	appendStringInfo(&buf, ",\"attempt\":%d,\"progress\":%d,\"etaMs\":", ev->attempt, ev->progress);
	if (ev->eta_ms >= 0)
		appendStringInfo(&buf, "%ld", ev->eta_ms);
	else
		appendStringInfoString(&buf, "null");

	/* ISO 8601 in UTC, as the SQL-sent events write it */
	format_ts(ts, sizeof(ts));
	appendStringInfoString(&buf, ",\"ts\":");
	escape_json(&buf, ts);
	appendStringInfoChar(&buf, '}');
	ce_notify_send(ev->org, ev->owner, ev->event, buf.data);
	pfree(buf.data);
}

void
ce_notify_send(const pg_uuid_t *org, Oid owner, const char *event, const char *payload)
{
	char		channels[2][NAMEDATALEN];
	int			n = ce_event_channels(org, owner, channels[0], channels[1]);
	int			i;

	for (i = 0; i < n; i++)
	{
		if (is_end_event(event))
			hold_event(channels[i], payload);
		else
			Async_Notify(channels[i], payload);
	}
}

/*
 * The one event builder of the state machine: an event of execution ex
 * (and step, when given) with the progress and ETA of the last
 * ce_progress_refresh (progress.c), queued under the chain's notify
 * setting.
 */
static void
emit(ExecRow *ex, const char *event, const CeStep *step, const char *status, int attempt)
{
	CeEvent		ev;
	long		eta;

	memset(&ev, 0, sizeof(ev));
	ev.event = event;
	ev.org = &ex->org;
	ev.owner = ex->owner;
	ev.execution_id = ex->id_s;
	ev.chain_id = ex->chain_id;
	ev.step_id = step ? step->id : 0;
	ev.step_name = step ? step->name : NULL;
	ev.status = status;
	ev.attempt = attempt;
	ev.progress = ce_progress_current(&eta);
	ev.eta_ms = strcmp(event, "chain_completed") == 0 ? 0 : eta;
	ce_notify(ex->plan->notify, &ev);
}

void
ce_exec_emit(ExecRow *ex, const char *event, CeExecStatus status)
{
	emit(ex, event, NULL, ce_exec_status_name(status), 0);
}

void
ce_step_emit(ExecRow *ex, const char *event, const CeStep *step, CeLineStatus status, int attempt)
{
	emit(ex, event, step, ce_line_status_name(status), attempt);
}

/* An event of a step whose status is not its line's (a circuit breaker's state). */
void
ce_step_emit_state(ExecRow *ex, const char *event, const CeStep *step, const char *state, int attempt)
{
	emit(ex, event, step, state, attempt);
}

/*
 * chain_started, sent by chain_execute: progress 0, and the ETA of a new
 * execution of the chain version (asked only when the event is wanted).
 */
void
ce_emit_chain_started(const pg_uuid_t *org, Oid owner, const pg_uuid_t *id,
					  const char *chain_id, int version, CeNotify notify)
{
	CeEvent		ev;

	memset(&ev, 0, sizeof(ev));
	ev.event = "chain_started";
	ev.org = org;
	ev.owner = owner;
	ev.execution_id = ce_uuid_to_cstring(id);
	ev.chain_id = chain_id;
	ev.status = ce_exec_status_name(CE_EXEC_PENDING);
	ev.eta_ms = ce_event_wanted(notify, ev.event) ? ce_eta_new_execution(org, chain_id, version) : -1;
	ce_notify(notify, &ev);
}
