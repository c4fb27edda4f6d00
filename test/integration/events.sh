#!/usr/bin/env bash
# test/integration/events.sh: progress events over LISTEN/NOTIFY, the
# watcher (chainexec_watch), and controlling executions end to end.
#
# Two watchers subscribe with chainexec.chain_listen() for the whole run, as
# real LISTEN clients: one prints every payload as received (--raw), the
# other one line per event (--lines).  Checked on a chain with a retry and a
# skip run by the background worker: the order of its events (chain_started
# first, the terminal event last), no duplicates, progress never decreasing
# and 100 on chain_completed, payloads under 8000 bytes and free of variable
# values (a secret-looking input value appears in no payload, not even as
# an external step's rendered input, which the watcher reads from
# chainexec.step_runs), no event for an execution whose transaction
# rolled back (or whose chain_step_complete sat in a savepoint that rolled
# back), and the chain's notify setting (lifecycle, none).  Control:
# chain_cancel interrupts a step sleeping in pg_sleep(60) within a second;
# chain_resume of a failed execution runs only the failed step and those
# after it; chain_pause stops at the next step boundary and chain_resume
# goes on; chain_retry_step; chain_skip_step with an output; an external
# approval step completed by the test acting as the application; and the
# etaMs of chain_status against the actual remaining time once the chain
# has a history.  Compensation events.  The watcher's exit statuses, line
# format and -c.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=480
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

# Chain ids of this run: "ev-<what>-<pid>" (executors cache plans by chain
# id and version, so every run uses new ids).
S=$$
SECRET="zz-SECRET-$S-7f3a9c"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ce-events.XXXXXX")
RAW=$TMP/raw.txt
LINES=$TMP/lines.txt
WATCH=$(command -v chainexec_watch || echo "$CE_REPO/tools/chainexec_watch")
WATCHER_PIDS=()

cleanup()
{
	local p

	for p in "${WATCHER_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'ev-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'ev-%-$S';
		DROP TABLE IF EXISTS public.ev_log_$S, public.ev_ok_$S;
		DROP FUNCTION IF EXISTS public.ev_step_$S(uuid, int), public.ev_flaky_$S(text), public.ev_book_$S(boolean),
			public.ev_eta_after_$S(uuid, int), public.ev_pause_after_$S(uuid, int);
		DROP PROCEDURE IF EXISTS public.ev_cancel_$S(uuid, text, int);
		DROP SEQUENCE IF EXISTS public.ev_seq_$S;
	EOF
	rm -rf "$TMP"
}
trap cleanup EXIT

# define ID JSON-STEPS [JSON-CHAIN-KEYS]: define and publish chain ID.
define()
{
	sql_with def "{\"id\": \"$1\", ${3:+$3, }\"steps\": $2}" <<<"SELECT chainexec.chain_define(:'def'::jsonb, true)" >/dev/null
}

# start ID [INPUT]: chain_execute in its own transaction; prints the execution id.
start()
{
	psql_q "SELECT chainexec.chain_execute('$1', '${2:-{\}}')"
}

# status EXECUTION: the execution's status.
status()
{
	psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$1'"
}

# wait_end EXECUTION [TIMEOUT_MS]: chain_wait; prints the final status.
wait_end()
{
	psql_q "SELECT chainexec.chain_wait('$1', ${2:-30000})->>'status'"
}

# runs EXECUTION: how many times each step ran to its end, from the log
# table ("1:1 2:1 3:1").
runs()
{
	psql_q "SELECT coalesce(string_agg(step || ':' || n, ' ' ORDER BY step), '')
			  FROM (SELECT step, count(*) AS n FROM public.ev_log_$S WHERE execution = '$1' GROUP BY step) s"
}

# events EXECUTION: the event lines (--lines watcher) of an execution.
events()
{
	grep -F " execution=$1 " "$LINES"
}

# raw EXECUTION: the payloads (--raw watcher) of an execution.
raw()
{
	grep -F "\"$1\"" "$RAW"
}

# wait_event EXECUTION EVENT [TIMEOUT_S]: wait until the --lines watcher has
# printed EVENT for EXECUTION.
wait_event()
{
	local deadline=$((SECONDS + ${3:-30}))

	while [ "$SECONDS" -lt "$deadline" ]; do
		grep -qF "event=$2 execution=$1 " "$LINES" && return 0
		sleep 0.1
	done
	return 1
}

# sql_with NAME VALUE: run the SQL on standard input with the psql variable
# NAME set to VALUE (read it as :'NAME'); tuples only, unaligned.
sql_with()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -v "$1=$2"
}

# progress_never_decreases EXECUTION DESCRIPTION [TODO]: a test that the
# progress of the execution's events never goes down (with TODO, a known
# failure: "# TODO TODO").
progress_never_decreases()
{
	local progress

	progress=$(events "$1" | sed 's/.* progress=\([0-9]*\) .*/\1/' | tr '\n' ' ')
	if printf '%s\n' $progress | awk 'NR > 1 && $1 < prev { bad = 1 } { prev = $1 } END { exit bad }'; then
		ok "$2 ($progress)"
	else
		not_ok "$2${3:+ # TODO $3}" "progress: $progress" "$(events "$1" | sed 's/ execution=.* step=/ step=/; s/ ts=.*//')"
	fi
}

if [ ! -x "$WATCH" ]; then
	echo "1..0 # SKIP chainexec_watch is not built (tools/chainexec_watch.c)"
	exit 0
fi

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "could not create the test objects"
CREATE TABLE public.ev_log_$S (execution uuid, step int, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE public.ev_ok_$S (execution uuid PRIMARY KEY);
CREATE SEQUENCE public.ev_seq_$S;
-- A step: logs that it ran; step 2 fails unless its execution is in ev_ok.
-- (The log row of a failed run goes with the step's subtransaction.)
CREATE FUNCTION public.ev_step_$S(e uuid, step int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
	INSERT INTO public.ev_log_$S (execution, step) VALUES (e, step);
	IF step = 2 AND NOT EXISTS (SELECT FROM public.ev_ok_$S o WHERE o.execution = e) THEN
		PERFORM chainexec.raise_failure('business_rule_violation', 'step 2 is not allowed yet');
	END IF;
	RETURN step;
END
\$\$;
-- Fails with database_busy (a transient failure) on every other call.
CREATE FUNCTION public.ev_flaky_$S(t text) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
	IF nextval('public.ev_seq_$S') % 2 = 1 THEN
		PERFORM chainexec.raise_failure('database_busy', 'busy, try again');
	END IF;
	RETURN t;
END
\$\$;
CREATE FUNCTION public.ev_book_$S(approved boolean) RETURNS text LANGUAGE sql
	AS \$\$ SELECT CASE WHEN approved THEN 'booked' ELSE 'refused' END \$\$;
GRANT ALL ON public.ev_log_$S, public.ev_ok_$S TO PUBLIC;
-- Cancels an execution and commits (the interrupt goes out at commit), then
-- waits, looking every 10 ms for at most 10 s, until no executor runs a
-- query like PATTERN; ms: how long that took, measured in the server
-- (a client that starts psql for each look measures its own start-up
-- under load).
CREATE PROCEDURE public.ev_cancel_$S(e uuid, pattern text, INOUT ms int DEFAULT NULL) LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM chainexec.chain_cancel(e, 'the test cancels it');
	COMMIT;
	LOOP
		PERFORM pg_stat_clear_snapshot();
		EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'chainexec executor' AND query LIKE pattern)
			OR clock_timestamp() > t0 + interval '10 s';
		PERFORM pg_sleep(0.01);
	END LOOP;
	ms := round(extract(epoch FROM clock_timestamp() - t0) * 1000);
END
\$\$;
-- Waits (looking every 10 ms, for at most 20 s) until step STEP of an
-- execution has completed, then at once calls chain_pause: the steps after
-- it are still to run (a client polling with a psql per look could come
-- when all of them had run, under load).
CREATE FUNCTION public.ev_pause_after_$S(e uuid, step int) RETURNS boolean LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
	WHILE NOT EXISTS (SELECT FROM chainexec.step_runs r WHERE r.execution_id = e AND r.step_id = step AND r.status = 'completed')
		AND clock_timestamp() < t0 + interval '20 s' LOOP
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN chainexec.chain_pause(e);
END
\$\$;
-- Waits (looking every 10 ms, for at most 20 s) until step STEP of an
-- execution has completed, then returns at once its chain_status etaMs, the
-- time (epoch seconds) and how many steps had completed: "eta at completed".
CREATE FUNCTION public.ev_eta_after_$S(e uuid, step int) RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
	p jsonb;
BEGIN
	WHILE NOT EXISTS (SELECT FROM chainexec.step_runs r WHERE r.execution_id = e AND r.step_id = step AND r.status = 'completed')
		AND clock_timestamp() < t0 + interval '20 s' LOOP
		PERFORM pg_sleep(0.01);
	END LOOP;
	p := chainexec.chain_status(e)->'progress';
	RETURN concat_ws(' ', coalesce(p->>'etaMs', 'null'), extract(epoch FROM clock_timestamp()), p->>'completed');
END
\$\$;
EOF

# ---------------------------------------------------------------------------
# The two watchers, listening for the whole run.
"$WATCH" --raw -v -t 400 >"$RAW" 2>"$TMP/raw.err" &
WATCHER_PIDS+=($!)
"$WATCH" --lines -v -t 400 >"$LINES" 2>"$TMP/lines.err" &
WATCHER_PIDS+=($!)
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
	grep -q 'listening on' "$TMP/raw.err" && grep -q 'listening on' "$TMP/lines.err" && break
	sleep 0.1
done
# (the superuser is a member of chainexec_admin: one channel, the organization's)
if grep -q 'listening on 1 channel through chainexec.chain_listen()' "$TMP/raw.err" &&
	grep -q 'listening on 1 channel through chainexec.chain_listen()' "$TMP/lines.err"; then
	ok "two watchers listen through chainexec.chain_listen()"
else
	not_ok "two watchers listen through chainexec.chain_listen()" "$(cat "$TMP/raw.err" "$TMP/lines.err")"
	bail_out "the watchers do not listen"
fi

# ---------------------------------------------------------------------------
# A chain with a retry and a skip, the input carrying a secret.
define "ev-main-$S" '[
	{"id": 1, "name": "fetch", "type": "sql", "sql": "SELECT {secret} AS token, 41 AS n",
	 "inputVariables": ["secret"], "outputVariables": ["token", "n"]},
	{"id": 2, "name": "flaky", "type": "sql",
	 "sql": "SELECT public.ev_flaky_'"$S"'({token}) AS echoed",
	 "outputVariables": ["echoed"],
	 "retryConfig": {"maxRetries": 3, "backoffStrategy": "fixed", "baseDelayMs": 100}},
	{"id": 3, "name": "optional", "type": "sql", "sql": "SELECT 1 / 0 AS never",
	 "onFailure": "skip", "retryConfig": {"maxRetries": 0}},
	{"id": 4, "name": "finish", "type": "sql", "sql": "SELECT {n}::int + 1 AS m", "outputVariables": ["m"]}]'

main=$(start "ev-main-$S" "{\"secret\": \"$SECRET\"}")
is "$(wait_end "$main")" "completed" "the chain with a retry and a skip completes"
wait_event "$main" chain_completed 10
seq=$(events "$main" | sed 's/^event=\([a-z_]*\) .* step=\([0-9-]*\) .* attempt=\([0-9-]*\) .*/\1:\2:\3/' | tr '\n' ' ')
is "$seq" "chain_started:-:0 step_completed:1:1 step_retry_scheduled:2:1 step_completed:2:2 step_skipped:3:1 step_completed:4:1 chain_completed:-:0 " \
	"events in order: chain_started first, a retry, a skip, chain_completed last"
is "$(events "$main" | sed 's/ ts=.*//' | sort | uniq -d | wc -l)" "0" "no event is sent twice"
progress_never_decreases "$main" "progress never decreases"
like "$(events "$main" | grep '^event=chain_completed')" ' progress=100 status=completed ' "chain_completed says progress 100"
like "$(events "$main" | grep '^event=step_completed' | head -n 1)" \
	"^event=step_completed execution=$main chain=ev-main-$S step=1 name=fetch progress=[0-9]+ status=completed attempt=1 eta_ms=[0-9-]+ ts=[0-9T:.+Z-]+$" \
	"the line format: key=value pairs in a fixed order"
is "$(sql_with raw "$(raw "$main")" <<<"SELECT count(*) FILTER (WHERE NOT jsonb_strip_nulls(l::jsonb) ?& array['event', 'executionId', 'chainId', 'status', 'attempt', 'progress', 'ts'])
		|| '/' || count(*) FROM regexp_split_to_table(:'raw', E'\n') l")" "0/7" \
	"7 payloads, each with event, executionId, chainId, status, attempt, progress, ts"
is "$(grep -cF "$SECRET" <(raw "$main"))" "0" "no payload of the chain carries a variable value (the secret input)"

# A chain_execute whose transaction rolls back sends nothing.
rolled=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -c "BEGIN" \
	-c "SELECT chainexec.chain_execute('ev-main-$S', '{\"secret\": \"x\"}')" -c "ROLLBACK" | grep -E '^[0-9a-f-]{36}$')
sleep 1
if [ -n "$rolled" ] && ! grep -qF "$rolled" "$RAW"; then
	ok "no event for an execution whose transaction rolled back"
else
	not_ok "no event for an execution whose transaction rolled back" "execution '$rolled'" "$(grep -F "$rolled" "$RAW")"
fi

# The chain's notify setting.
define "ev-life-$S" '[{"id": 1, "name": "one", "type": "sql", "sql": "SELECT 1 AS a", "outputVariables": ["a"]},
	{"id": 2, "name": "two", "type": "sql", "sql": "SELECT 2 AS b", "outputVariables": ["b"]}]' '"notify": "lifecycle"'
define "ev-none-$S" '[{"id": 1, "name": "one", "type": "sql", "sql": "SELECT pg_sleep(0.5), 1 AS a", "outputVariables": ["a"]},
	{"id": 2, "name": "two", "type": "sql", "sql": "SELECT 2 AS b", "outputVariables": ["b"]}]' '"notify": "none"'
life=$(start "ev-life-$S")
none=$(start "ev-none-$S")
"$WATCH" -t 20 "$none" >"$TMP/none.txt" 2>&1
rc=$?
is "$rc" "0" "the watcher follows a chain that notifies nothing to its end (exit 0, from chain_status)"
wait_end "$life" >/dev/null
wait_end "$none" >/dev/null
wait_event "$life" chain_completed 10
is "$(events "$life" | cut -d' ' -f1 | tr '\n' ' ')" "event=chain_started event=chain_completed " \
	"notify \"lifecycle\": only chain_* events"
is "$(raw "$none" | wc -l)" "0" "notify \"none\": no event at all"

# ---------------------------------------------------------------------------
# The watcher: one execution, exit statuses.
"$WATCH" "$main" >"$TMP/w.txt" 2>&1
rc=$?
is "$rc" "0" "watching an execution that completed already: exit 0 at once"
like "$(head -n 1 "$TMP/w.txt")" "^event=state execution=$main chain=ev-main-$S .* progress=100 status=completed .* retries=1 failures=0$" \
	"it prints the execution's state first (status, progress, retries, failures)"
"$WATCH" 00000000-0000-0000-0000-000000000001 >/dev/null 2>"$TMP/w.err"
is "$?" "3" "an execution that does not exist: exit 3"
"$WATCH" not-a-uuid >/dev/null 2>&1
is "$?" "3" "an argument that is not an execution id: exit 3"
"$WATCH" --no-such-option >/dev/null 2>&1
is "$?" "3" "an unknown option: exit 3"
"$WATCH" -d "host=$PGHOST port=1" >/dev/null 2>&1
is "$?" "3" "no server: exit 3"
"$WATCH" --help | grep -q 'Exit status'
is "$?" "0" "--help documents the exit statuses"

# ---------------------------------------------------------------------------
# Cancel a step sleeping in pg_sleep(60).
define "ev-cancel-$S" '[{"id": 1, "name": "sleepy", "type": "sql", "sql": "SELECT pg_sleep(60)"},
	{"id": 2, "name": "after", "type": "sql", "sql": "SELECT public.ev_step_'"$S"'({chain.execution_id}, 2)"}]'
cid=$(start "ev-cancel-$S")
"$WATCH" -t 60 "$cid" >"$TMP/cancel.txt" 2>&1 &
cwatch=$!
WATCHER_PIDS+=($cwatch)
if poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
					   AND query LIKE '%ev-cancel-$S/sleepy%' AND wait_event = 'PgSleep'" t 20; then
	# (measured in the server, from the call of chain_cancel to the first
	# look that finds no executor running the step)
	ms=$(psql_q "CALL public.ev_cancel_$S('$cid', '%ev-cancel-$S/sleepy%')")
	if [ -n "$ms" ] && [ "$ms" -lt 1000 ]; then
		ok "chain_cancel interrupts the running step within a second ($ms ms)"
	else
		not_ok "chain_cancel interrupts the running step within a second" "it took '$ms' ms"
	fi
else
	not_ok "chain_cancel interrupts the running step within a second" "the step never started"
fi
is "$(status "$cid")" "cancelled" "the cancelled execution has status cancelled"
is "$(psql_q "SELECT string_agg(step_id || ':' || status, ' ' ORDER BY step_id) FROM chainexec.step_runs WHERE execution_id = '$cid'")" \
	"1:cancelled 2:cancelled" "its steps are cancelled, and the next one never ran"
wait "$cwatch"
is "$?" "2" "the watcher of a cancelled execution exits with 2"
wait_event "$cid" chain_cancelled 5
is "$(events "$cid" | tail -n 1 | cut -d' ' -f1)" "event=chain_cancelled" "chain_cancelled is its last event"

# ---------------------------------------------------------------------------
# Resume a failed execution: only the failed step and those after it run.
steps3='[{"id": 1, "name": "first", "type": "sql", "sql": "SELECT public.ev_step_'"$S"'({chain.execution_id}, 1) AS s1", "outputVariables": ["s1"]},
	{"id": 2, "name": "second", "type": "sql", "sql": "SELECT public.ev_step_'"$S"'({chain.execution_id}, 2) AS s2", "outputVariables": ["s2"]},
	{"id": 3, "name": "third", "type": "sql", "sql": "SELECT public.ev_step_'"$S"'({chain.execution_id}, 3) AS s3", "outputVariables": ["s3"]}]'
define "ev-resume-$S" "$steps3"
rid=$(start "ev-resume-$S")
is "$(wait_end "$rid")" "failed" "an execution fails at step 2"
"$WATCH" "$rid" >/dev/null 2>&1
is "$?" "1" "the watcher of a failed execution exits with 1"
is "$(runs "$rid")" "1:1" "step 1 ran once; steps 2 and 3 left nothing"
psql_q "INSERT INTO public.ev_ok_$S VALUES ('$rid')"
is "$(psql_q "SELECT chainexec.chain_resume('$rid')")" "t" "chain_resume accepts the failed execution"
is "$(wait_end "$rid")" "completed" "the resumed execution completes"
is "$(runs "$rid")" "1:1 2:1 3:1" "step 1 did not run again; steps 2 and 3 ran once each"
wait_event "$rid" chain_resumed 5
is "$(events "$rid" | cut -d' ' -f1 | grep -c 'chain_resumed')" "1" "chain_resumed was notified"
progress_never_decreases "$rid" "progress never decreases across a failure and chain_resume"

# chain_retry_step on a failed execution.
tid=$(start "ev-resume-$S")
wait_end "$tid" >/dev/null
psql_q "INSERT INTO public.ev_ok_$S VALUES ('$tid')"
is "$(psql_q "SELECT chainexec.chain_retry_step('$tid', 2)")" "t" "chain_retry_step accepts step 2 of a failed execution"
is "$(wait_end "$tid")" "completed" "after chain_retry_step the execution completes"
is "$(runs "$tid")" "1:1 2:1 3:1" "chain_retry_step ran step 2 (and 3) once, not step 1"

# ---------------------------------------------------------------------------
# Pause at the next step boundary, then resume.
define "ev-pause-$S" '[
	{"id": 1, "name": "p1", "type": "sql", "sql": "SELECT public.ev_step_'"$S"'({chain.execution_id}, 1), pg_sleep(0.3)"},
	{"id": 2, "name": "p2", "type": "sql", "sql": "SELECT public.ev_step_'"$S"'({chain.execution_id}, 3), pg_sleep(0.3)"},
	{"id": 3, "name": "p3", "type": "sql", "sql": "SELECT public.ev_step_'"$S"'({chain.execution_id}, 4), pg_sleep(0.3)"},
	{"id": 4, "name": "p4", "type": "sql", "sql": "SELECT public.ev_step_'"$S"'({chain.execution_id}, 5), pg_sleep(0.3)"}]'
pid=$(start "ev-pause-$S")
is "$(psql_q "SELECT public.ev_pause_after_$S('$pid', 1)")" "t" "chain_pause accepts a running execution"
# a step that was running when it paused ends (no executor runs a step of it)
sleep 0.3
poll_query_until "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
	AND query LIKE '%(execution $pid)%'" t 20 >/dev/null
done1=$(psql_q "SELECT count(*) FROM chainexec.step_runs WHERE execution_id = '$pid' AND status = 'completed'")
sleep 1.2
done2=$(psql_q "SELECT count(*) FROM chainexec.step_runs WHERE execution_id = '$pid' AND status = 'completed'")
if [ "$done1" = "$done2" ] && [ "$done2" -lt 4 ] && [ "$(status "$pid")" = "paused" ]; then
	ok "a paused execution stays paused and runs no further step ($done2 of 4 done)"
else
	not_ok "a paused execution stays paused and runs no further step" "done $done1 then $done2, status $(status "$pid")"
fi
is "$(psql_q "SELECT chainexec.chain_resume('$pid')")" "t" "chain_resume accepts the paused execution"
is "$(wait_end "$pid")" "completed" "the resumed execution completes"
is "$(psql_q "SELECT count(*) FROM public.ev_log_$S WHERE execution = '$pid'")|$(psql_q "SELECT count(DISTINCT step) FROM public.ev_log_$S WHERE execution = '$pid'")" \
	"4|4" "every step ran exactly once across the pause"
wait_event "$pid" chain_completed 5
is "$(events "$pid" | cut -d' ' -f1 | grep -E 'chain_(paused|resumed|completed)' | tr '\n' ' ')" \
	"event=chain_paused event=chain_resumed event=chain_completed " "chain_paused, chain_resumed, then chain_completed"

# ---------------------------------------------------------------------------
# chain_skip_step of an external step that waits, with an output.
define "ev-skip-$S" '[
	{"id": 1, "name": "before", "type": "sql", "sql": "SELECT 1 AS a", "outputVariables": ["a"]},
	{"id": 2, "name": "approval", "type": "external", "inputTemplate": "approve {a}", "outputVariables": ["approved"]},
	{"id": 3, "name": "after", "type": "sql", "sql": "SELECT {approved}::text AS seen", "inputVariables": ["approved"], "outputVariables": ["seen"]}]'
sid=$(start "ev-skip-$S")
poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$sid' AND step_id = 2" waiting 20 >/dev/null
is "$(psql_q "SELECT chainexec.chain_skip_step('$sid', 2, '{\"approved\": true}')")" "t" "chain_skip_step skips a waiting step"
is "$(wait_end "$sid")" "completed" "the execution goes on and completes"
is "$(psql_q "SELECT status FROM chainexec.step_runs WHERE execution_id = '$sid' AND step_id = 2")|$(psql_q "SELECT chainexec.chain_result('$sid')->'finalContext'->>'seen'")" \
	"skipped|true" "the step is skipped and its output reached the next step"

# ---------------------------------------------------------------------------
# An external approval step, completed by the test acting as the application.
define "ev-ext-$S" '[
	{"id": 1, "name": "prepare", "type": "sql", "sql": "SELECT {client}::text AS client_name", "inputVariables": ["client"], "outputVariables": ["client_name"]},
	{"id": 2, "name": "approval", "type": "external", "inputTemplate": "Approve the trip of {client_name} (ref {secret})", "outputVariables": ["approved"], "timeoutMs": 60000},
	{"id": 3, "name": "book", "type": "sql", "sql": "SELECT public.ev_book_'"$S"'({approved}::boolean) AS booking", "inputVariables": ["approved"], "outputVariables": ["booking"]}]'
xid=$(start "ev-ext-$S" "{\"client\": \"Ana Souza\", \"secret\": \"$SECRET\"}")
if wait_event "$xid" step_started 20; then
	line=$(events "$xid" | grep '^event=step_started')
	like "$line" "step=2 name=approval .* status=waiting .* input=\"Approve the trip of Ana Souza \\(ref $SECRET\\)\"$" \
		"the app receives step_started, and reads the rendered input from step_runs"
	is "$(psql_q "SELECT chainexec.chain_step_complete('$xid', 2, '{\"approved\": true, \"note\": \"ignored\"}')")" "t" \
		"the app completes the step with chain_step_complete"
	is "$(wait_end "$xid")" "completed" "the chain goes on and completes"
	is "$(psql_q "SELECT chainexec.chain_result('$xid')->'finalContext'->>'booking'")" "booked" "the step's output reached the next step"
else
	not_ok "the app receives step_started, and reads the rendered input from step_runs" "no step_started event for $xid"
	psql_q "SELECT chainexec.chain_cancel('$xid')" >/dev/null
fi
# The secret appears in no payload, not even as the external step's
# rendered input (payloads carry no values; a listener allowed to read the
# input reads it from step_runs, under row-level security).
is "$(grep -F "$SECRET" "$RAW")" "" "a variable value appears in no payload, not even an external step's rendered input"

# chain_step_complete in a savepoint that rolls back sends nothing (the
# end of the execution is held until commit, and dropped with the savepoint).
define "ev-sp-$S" '[{"id": 1, "name": "approval", "type": "external", "outputVariables": ["ok"]}]'
spid=$(start "ev-sp-$S")
poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$spid' AND step_id = 1" waiting 20 >/dev/null
wait_event "$spid" step_started 10
psql -X -q -v ON_ERROR_STOP=1 -c "BEGIN" -c "SAVEPOINT s" \
	-c "SELECT chainexec.chain_step_complete('$spid', 1, '{\"ok\": true}')" -c "ROLLBACK TO s" -c "COMMIT" >/dev/null
sleep 0.5
is "$(status "$spid")|$(events "$spid" | cut -d' ' -f1 | tr '\n' ' ')" "waiting|event=chain_started event=step_started " \
	"no event for chain_step_complete in a savepoint that rolled back"
psql -X -q -v ON_ERROR_STOP=1 -c "BEGIN" -c "SAVEPOINT s" \
	-c "SELECT chainexec.chain_step_complete('$spid', 1, '{\"ok\": true}')" -c "RELEASE s" -c "COMMIT" >/dev/null
wait_event "$spid" chain_completed 10
is "$(events "$spid" | cut -d' ' -f1 | tr '\n' ' ')" "event=chain_started event=step_started event=step_completed event=chain_completed " \
	"its events when the savepoint is released and the transaction commits"

# A big rendered input leaves the payload as small as any.
define "ev-big-$S" '[{"id": 1, "name": "big", "type": "external", "inputTemplate": "{blob}", "inputVariables": ["blob"]}]'
blob=$(head -c 9000 /dev/zero | tr '\0' 'x')
bid=$(start "ev-big-$S" "{\"blob\": \"$blob\"}")
poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$bid' AND step_id = 1" waiting 20 >/dev/null
wait_event "$bid" step_started 10
started=$(raw "$bid" | grep '"step_started"')
if [ -n "$started" ] && [ "${#started}" -lt 1000 ] && ! grep -q '"input' <<<"$started"; then
	ok "the step_started payload of a rendered input of 9000 bytes has no input (${#started} bytes)"
else
	not_ok "the step_started payload of a rendered input of 9000 bytes has no input" "payload: ${started:0:300}"
fi
psql_q "SELECT chainexec.chain_cancel('$bid')" >/dev/null

# -t: a waiting execution that does not end in time.
wid=$(start "ev-skip-$S")
poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$wid' AND step_id = 2" waiting 20 >/dev/null
"$WATCH" -t 1 "$wid" >/dev/null 2>&1
is "$?" "4" "the watcher exits with 4 when -t expires first"
psql_q "SELECT chainexec.chain_cancel('$wid')" >/dev/null

# ---------------------------------------------------------------------------
# etaMs from the chain's history: 4 steps of 200 ms, 20 past executions.
define "ev-eta-$S" '[{"id": 1, "name": "e1", "type": "sql", "sql": "SELECT pg_sleep(0.2)"},
	{"id": 2, "name": "e2", "type": "sql", "sql": "SELECT pg_sleep(0.2)"},
	{"id": 3, "name": "e3", "type": "sql", "sql": "SELECT pg_sleep(0.2)"},
	{"id": 4, "name": "e4", "type": "sql", "sql": "SELECT pg_sleep(0.2)"}]'
for i in $(seq 20); do
	start "ev-eta-$S" >/dev/null
done
poll_query_until "SELECT count(*) FILTER (WHERE status = 'completed') = 20 FROM chainexec.universal_transactions WHERE chain_id = 'ev-eta-$S'" t 60 >/dev/null
eid=$(start "ev-eta-$S")
# (read in the server within 10 ms of step 1's end: a client polling with a
# psql per look could come steps later under load)
read -r eta at completed <<<"$(psql_q "SELECT public.ev_eta_after_$S('$eid', 1)")"
wait_end "$eid" >/dev/null
actual=$(psql_q "SELECT round(extract(epoch FROM finished_at) * 1000 - $at * 1000) FROM chainexec.universal_transactions WHERE id = '$eid'")
if [ -n "$eta" ] && [ -n "$actual" ] && [ "$eta" != "null" ] &&
	[ "$((eta * 2))" -ge "$actual" ] && [ "$eta" -le "$((actual * 2))" ]; then
	ok "etaMs after step 1 ($eta ms) is within a factor of two of the remaining time ($actual ms)"
else
	not_ok "etaMs after step 1 is within a factor of two of the remaining time" "etaMs: '$eta', remaining: '$actual' ms, steps completed then: '$completed'" \
		"step durations: $(psql_q "SELECT string_agg(step_id || '=' || coalesce(duration_ms::int::text, 'null') || '/' || round(extract(epoch FROM finished_at - started_at) * 1000), ' ' ORDER BY step_id) FROM chainexec.step_runs WHERE execution_id = '$eid'")"
fi

# ---------------------------------------------------------------------------
# Compensation events, with a compensation that fails.
define "ev-comp-$S" '[
	{"id": 1, "name": "reserve", "type": "sql", "sql": "SELECT 7 AS booking", "outputVariables": ["booking"],
	 "rollbackAction": "SELECT 1 / 0"},
	{"id": 2, "name": "charge", "type": "sql", "sql": "SELECT 1 / 0", "retryConfig": {"maxRetries": 0}}]' '"rollbackEnabled": true'
kid=$(start "ev-comp-$S")
wait_end "$kid" >/dev/null
wait_event "$kid" chain_failed 10
is "$(events "$kid" | sed 's/^event=\([a-z_]*\) .* step=\([0-9-]*\) .* status=\([a-z]*\) .*/\1:\2:\3/' | tr '\n' ' ')" \
	"chain_started:-:pending step_completed:1:completed step_failed:2:failed compensation_started:-:compensating step_failed:1:failed compensation_completed:-:failed chain_failed:-:failed " \
	"a failed step starts the compensation; its events end with compensation_completed and chain_failed"
progress_never_decreases "$kid" "progress never decreases through a compensation that fails"

# -c: another channel.
"$WATCH" -c "ev_other_$S" -v -t 10 >"$TMP/other.txt" 2>"$TMP/other.err" &
opid=$!
WATCHER_PIDS+=($opid)
deadline=$((SECONDS + 10))
until grep -q 'listening on channel' "$TMP/other.err" || [ "$SECONDS" -ge "$deadline" ]; do
	sleep 0.1
done
psql_q "SELECT pg_notify('ev_other_$S', '{\"event\": \"chain_started\", \"executionId\": \"00000000-0000-0000-0000-00000000000a\", \"chainId\": \"x\", \"progress\": 0, \"status\": \"pending\"}')" >/dev/null
deadline=$((SECONDS + 10))
until [ -s "$TMP/other.txt" ] || [ "$SECONDS" -ge "$deadline" ]; do
	sleep 0.1
done
kill "$opid" 2>/dev/null
wait "$opid" 2>/dev/null
like "$(cat "$TMP/other.txt")" '^event=chain_started execution=00000000-0000-0000-0000-00000000000a chain=x step=- name=- progress=0 status=pending ' \
	"-c listens on another channel"

# ---------------------------------------------------------------------------
# Every payload of the run: small, and JSON.
max=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$RAW")
if [ "$max" -gt 0 ] && [ "$max" -lt 8000 ]; then
	ok "every payload is under 8000 bytes (largest: $max)"
else
	not_ok "every payload is under 8000 bytes" "largest: $max"
fi
is "$(grep -c . "$RAW")" "$(grep -c '^{.*}$' "$RAW")" "every payload is one JSON object"

done_testing
exit $?
