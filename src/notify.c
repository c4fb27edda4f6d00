/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  Execution events: a small JSON payload, no variable values, queued
 *	  with Async_Notify in the transition's own transaction, so subscribers
 *	  never see an event for work that rolled back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "lib/stringinfo.h"
#include "utils/json.h"
#include "utils/timestamp.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "miscadmin.h"

#include "chainexec.h"
#include "notify.h"

/* Payloads stay well under NOTIFY's 8000-byte limit. */
#define CE_PAYLOAD_MAX 7000

bool
ce_event_wanted(CeNotify level, const char *event)
{
	if (level == CE_NOTIFY_NONE)
		return false;
	if (level == CE_NOTIFY_LIFECYCLE)
		return strncmp(event, "chain_", 6) == 0 || strncmp(event, "compensation_", 13) == 0;
	return true;
}

void
ce_notify(CeNotify level, const CeEvent *ev)
{
	StringInfoData buf;
	char		ts[MAXDATELEN + 1];
	TimestampTz now = GetCurrentTimestamp();
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	const char *tzn;
	size_t		before_input;

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

	if (timestamp2tm(now, &tz, &tm, &fsec, &tzn, NULL) == 0)
		EncodeDateTime(&tm, fsec, true, tz, tzn, USE_XSD_DATES, ts);
	else
		strlcpy(ts, "", sizeof(ts));
	appendStringInfoString(&buf, ",\"ts\":");
	escape_json(&buf, ts);

	/* An external step's rendered input, when it fits. */
	before_input = buf.len;
	if (ev->input)
	{
		appendStringInfoString(&buf, ",\"input\":");
		escape_json(&buf, ev->input);
		if (buf.len > CE_PAYLOAD_MAX)
		{
			buf.len = before_input;
			buf.data[buf.len] = '\0';
			appendStringInfoString(&buf, ",\"inputTruncated\":true");
		}
	}
	appendStringInfoChar(&buf, '}');
	Async_Notify(ce_notify_channel, buf.data);
	pfree(buf.data);
}
