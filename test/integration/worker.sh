#!/usr/bin/env bash
# test/integration/worker.sh: the background worker runs chains.
#
# chain_execute + commit + chain_wait runs the acceptance chain
# (examples/acceptance_chain.sql) to the same final context as CALL
# chain_run; parallel steps of one execution run at the same time on the
# two executors, and maxConcurrency 1 serializes them; the dispatch order
# follows priority; no step runs twice; wait steps are durable timers;
# external steps time out; maxExecutionTime ends an execution; chain_wait
# refuses an execution of its own open transaction; chain_execute warns in
# a database no executor serves; the launcher restarts an executor that
# was terminated; an idle executor burns no CPU; pg_stat_activity shows
# what an executor runs.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

# Chain ids of this run: "wk-<what>-<pid>".  A new id per run, because
# executors cache plans by chain id and version.
S=$$
OTHER_DB=wk_other_$S

# sql: run the SQL on standard input; print tuples only, unaligned; fail on
# the first error.
sql()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"
}

# define ID JSON-STEPS [JSON-CHAIN-KEYS]: define and publish chain ID with
# these steps (a JSON array) and extra chain keys ("k": v, ...).
define()
{
	psql_q "SELECT chainexec.chain_define('{\"id\": \"$1\", ${3:+$3, }\"steps\": $2}', true)" >/dev/null
}

# start ID [INPUT [OPTIONS]]: chain_execute in its own transaction; prints the
# execution id.
start()
{
	psql_q "SELECT chainexec.chain_execute('$1', '${2:-{\}}', '${3:-{\}}')"
}

# wait_status EXECUTION [TIMEOUT_MS]: chain_wait, print the status.
wait_status()
{
	psql_q "SELECT chainexec.chain_wait('$1', ${2:-30000})->>'status'"
}

# executors: the executors' pids, one a line.
executors()
{
	psql_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor' ORDER BY pid"
}

# cpu_ticks PID: utime + stime of a process, in clock ticks.
cpu_ticks()
{
	# Fields after the ")" of the command name: state is field 3 of the
	# whole line, utime 14 and stime 15.
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

cleanup()
{
	psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $OTHER_DB WITH (FORCE)" >/dev/null 2>&1
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'wk-%-$S';
		DELETE FROM chainexec.universal_transactions WHERE id = ANY ('{${ACC_IDS[*]}}'::uuid[]);
		DELETE FROM acceptance.orders WHERE order_no LIKE 'WK-$S-%';
		DELETE FROM acceptance.reservations WHERE order_no LIKE 'WK-$S-%';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'wk-%-$S';
		DROP TABLE IF EXISTS public.wk_marks_$S, public.wk_once_$S;
		DROP FUNCTION IF EXISTS public.wk_mark_$S(uuid, int, float8);
	EOF
	# The acceptance chain: remove it if this script loaded it first.
	if [ "$ACC_NEW" = t ]; then
		psql -X -q >/dev/null 2>&1 <<-EOF
			DELETE FROM chainexec.universal_transactions WHERE chain_id = 'acceptance-order';
			SET chainexec.internal = on;
			DELETE FROM chainexec.chains WHERE chain_id = 'acceptance-order';
			DELETE FROM chainexec.handlers WHERE name LIKE 'acceptance.%';
			DROP SCHEMA acceptance CASCADE;
		EOF
	fi
}
ACC_IDS=()
ACC_NEW=f
trap cleanup EXIT

plan 27

# The runner creates the extension before the pgTAP suites; --only skips them.
psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"

psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null
sql <<EOF || bail_out "could not create the test tables"
CREATE TABLE public.wk_marks_$S (execution_id uuid, step int, started timestamptz, finished timestamptz,
	PRIMARY KEY (execution_id, step));
CREATE TABLE public.wk_once_$S (execution_id uuid, step int, PRIMARY KEY (execution_id, step));
-- wk_mark(execution, step, seconds): note when the step started, sleep,
-- note when it ended.  The primary key makes a second run an error.
CREATE FUNCTION public.wk_mark_$S(exec uuid, step int, secs float8) RETURNS int
LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM pg_sleep(secs);
	INSERT INTO public.wk_marks_$S VALUES (exec, step, t0, clock_timestamp());
	RETURN step;
END
\$\$;
EOF
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" 2 30 ||
	bail_out "the two executors are not running"

# mark_step ID NAME SECONDS [EXTRA-KEYS]: a sql step that runs wk_mark.
mark_step()
{
	echo "{\"id\": $1, \"name\": \"$2\", \"type\": \"sql\", ${4:+$4, }\"sql\": \"SELECT public.wk_mark_$S({chain.execution_id}::uuid, $1, $3) AS $2\", \"outputVariables\": [\"$2\"]}"
}

# ---------------------------------------------------------------------------
# The acceptance chain, through the worker and through chain_run, for
# two orders (standard tier without coupon; gold tier with a coupon).
ACC=$CE_REPO/examples/acceptance_chain.sql
ACC_NEW=$(psql_q "SELECT NOT EXISTS (SELECT FROM chainexec.chains WHERE chain_id = 'acceptance-order')")
if out=$(sql -f "$ACC" 2>&1); then
	for input in \
		"{\"order_no\": \"WK-$S-1\", \"customer\": \"Ada Lovelace\", \"qty\": 3, \"sku\": \"BOOK-42\", \"unit_price\": 12.5}" \
		"{\"order_no\": \"WK-$S-2\", \"customer\": \"Grace Hopper\", \"qty\": 12, \"sku\": \"PEN-7\", \"unit_price\": 2.25, \"coupon\": \"SAVE10\"}"; do
		t0=$(date +%s%N)
		id=$(psql_q "SELECT chainexec.chain_execute('acceptance-order', '$input')")
		ACC_IDS+=("$id")
		res=$(psql_q "SELECT chainexec.chain_wait('$id', 60000)")
		ms=$((($(date +%s%N) - t0) / 1000000))
		is "$(psql_q "SELECT '$res'::jsonb->>'status'")" completed \
			"acceptance chain: chain_execute, commit, chain_wait returns completed ($ms ms)"
		run=$(psql_q "CALL chainexec.chain_run('acceptance-order', '$input')")
		ACC_IDS+=("$(psql_q "SELECT '$run'::jsonb->>'executionId'")")
		if [ "$(psql_q "SELECT ('$res'::jsonb->'finalContext') = ('$run'::jsonb->'finalContext')")" = t ]; then
			ok "acceptance chain: the worker's finalContext equals CALL chain_run's"
		else
			not_ok "acceptance chain: the worker's finalContext equals CALL chain_run's" \
				"worker:    $(psql_q "SELECT '$res'::jsonb->'finalContext'")" \
				"chain_run: $(psql_q "SELECT '$run'::jsonb->'finalContext'")"
		fi
		diag "finalContext: $(psql_q "SELECT '$res'::jsonb->'finalContext'")"
	done
else
	not_ok "acceptance chain: loading $ACC" "$out"
	not_ok "acceptance chain: chain_execute"
	not_ok "acceptance chain: finalContext"
	not_ok "acceptance chain: finalContext"
fi

# ---------------------------------------------------------------------------
# Parallel branches run at the same time; maxConcurrency 1 serializes.
define "wk-par-$S" "[$(mark_step 1 a 1.0), $(mark_step 2 b 1.0 '"parallelExecution": true')]"
define "wk-ser-$S" "[$(mark_step 1 a 1.0), $(mark_step 2 b 1.0 '"parallelExecution": true')]" \
	'"maxConcurrency": 1'
par=$(start "wk-par-$S")
is "$(wait_status "$par" 10000)" completed "parallel: the execution completes"
span=$(psql_q "SELECT round(extract(epoch FROM max(finished) - min(started))::numeric, 3)
	FROM public.wk_marks_$S WHERE execution_id = '$par' HAVING count(*) = 2")
diag "two parallel 1 s steps, first start to last end: ${span:-?} s"
is "$(psql_q "SELECT coalesce(${span:-NULL} < 1.8, false)")" t \
	"parallel: two 1 s steps in parallel branches finish within 1.8 s (max_workers 2)"
ser=$(start "wk-ser-$S")
wait_status "$ser" 10000 >/dev/null
got=$(psql_q "SELECT round(extract(epoch FROM max(finished) - min(started))::numeric, 3) || ' ' ||
	((SELECT started FROM public.wk_marks_$S WHERE execution_id = '$ser' ORDER BY started DESC LIMIT 1)
	 >= (SELECT finished FROM public.wk_marks_$S WHERE execution_id = '$ser' ORDER BY started LIMIT 1))
	FROM public.wk_marks_$S WHERE execution_id = '$ser' HAVING count(*) = 2")
diag "the same with maxConcurrency 1: ${got%% *} s"
is "${got#* }" true "maxConcurrency 1: the second step starts after the first ended"

# ---------------------------------------------------------------------------
# Priority: with dispatch paused, queue four low-priority executions,
# then one high-priority one; after resuming, the high one is among the
# first two to start (two executors), not the last.
define "wk-prio-$S" "[$(mark_step 1 p 0.3)]"
psql -X -q -c "ALTER SYSTEM SET chainexec.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
lows=()
for i in 1 2 3 4; do
	lows+=("$(start "wk-prio-$S" '{}' '{"priority": 1}')")
done
high=$(start "wk-prio-$S" '{}' '{"priority": 10}')
sleep 1.5
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions
	WHERE chain_id = 'wk-prio-$S' AND status = 'pending'")" 5 \
	"chainexec.enabled = off: queued executions stay pending"
psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null
wait_status "$high" 10000 >/dev/null
for id in "${lows[@]}"; do
	wait_status "$id" 10000 >/dev/null
done
order=$(psql_q "SELECT string_agg(CASE WHEN execution_id = '$high' THEN 'H' ELSE 'l' END, '' ORDER BY started)
	FROM public.wk_marks_$S m JOIN chainexec.universal_transactions t ON t.id = m.execution_id
	WHERE t.chain_id = 'wk-prio-$S'")
diag "start order after enabling (H = priority 10, l = priority 1, queued first): $order"
like "$order" '^l?H' "priority: the high-priority execution's step runs first (among the first two, of five)"

# ---------------------------------------------------------------------------
# No step runs twice: 40 executions of a diamond of four steps.
once_step()
{
	echo "{\"id\": $1, \"name\": \"s$1\", \"type\": \"sql\", ${2:+$2, }\"sql\": \"INSERT INTO public.wk_once_$S VALUES ({chain.execution_id}::uuid, $1)\"}"
}
define "wk-once-$S" "[$(once_step 1), $(once_step 2 '"dependsOn": [1]'), $(once_step 3 '"dependsOn": [1]'),
	$(once_step 4 '"dependsOn": [2, 3]')]"
t0=$(date +%s%N)
psql_q "SELECT count(chainexec.chain_execute('wk-once-$S')) FROM generate_series(1, 40)" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions
	WHERE chain_id = 'wk-once-$S' AND finished_at IS NOT NULL" 40 60
t1=$(date +%s%N)
diag "40 executions of 4 steps: $(((t1 - t0) / 1000000)) ms"
is "$(psql_q "SELECT string_agg(DISTINCT status, ',') FROM chainexec.universal_transactions
	WHERE chain_id = 'wk-once-$S'")" completed "no step twice: all 40 executions completed"
is "$(psql_q "SELECT count(*) || '/' || count(DISTINCT (execution_id, step)) FROM public.wk_once_$S")" 160/160 \
	"no step twice: every (execution, step) effect exists once"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = 'wk-once-$S' AND (l.attempt <> 1 OR l.error IS NOT NULL OR l.status <> 'completed')")" 0 \
	"no step twice: every line completed at its first attempt"

# ---------------------------------------------------------------------------
# Durable waits: a wait step of 1500 ms.
define "wk-wait-$S" '[{"id": 1, "name": "nap", "type": "wait", "waitMs": 1500},
	{"id": 2, "name": "after", "type": "sql", "sql": "SELECT 1 AS after", "outputVariables": ["after"]}]'
id=$(start "wk-wait-$S")
is "$(wait_status "$id" 10000)" completed "wait step: the execution completes"
got=$(psql_q "SELECT round(extract(epoch FROM finished_at - created_at)::numeric, 3) FROM chainexec.universal_transactions
	WHERE id = '$id'")
diag "execution with a 1500 ms wait step took $got s"
is "$(psql_q "SELECT $got >= 1.5 AND $got < 4")" t "wait step: 1500 ms wait completes after >= 1.5 s (and < 4 s)"

# ---------------------------------------------------------------------------
# An external step without chain_step_complete times out.
define "wk-ext-$S" '[{"id": 1, "name": "approval", "type": "external", "timeoutMs": 700}]'
id=$(start "wk-ext-$S")
is "$(wait_status "$id" 10000)" failed "external step with timeoutMs 700 and no chain_step_complete: execution fails"
got=$(psql_q "SELECT l.error->>'failure_type' || ' ' ||
	(extract(epoch FROM t.finished_at - t.created_at) >= 0.7)
	FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t
	ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.id = '$id' AND l.step_id = 1")
is "$got" "execution_timeout true" "external step: failure_type execution_timeout, after the timeout"

# ---------------------------------------------------------------------------
# maxExecutionTime ends an execution with status timeout.
define "wk-met-$S" '[{"id": 1, "name": "long_nap", "type": "wait", "waitMs": 60000}]' '"maxExecutionTime": 1000'
id=$(start "wk-met-$S")
t0=$(date +%s%N)
st=$(wait_status "$id" 15000)
t1=$(date +%s%N)
is "$st" timeout "maxExecutionTime 1000 with a 60 s wait: status timeout (after $(((t1 - t0) / 1000000)) ms)"

# ---------------------------------------------------------------------------
# chain_wait on an execution of the same open transaction: 55000.
define "wk-one-$S" '[{"id": 1, "name": "one", "type": "sql", "sql": "SELECT 1 AS one", "outputVariables": ["one"]}]'
out=$(psql -X -A -t -q 2>&1 <<-EOF
	\set VERBOSITY sqlstate
	BEGIN;
	SELECT chainexec.chain_execute('wk-one-$S') AS id \gset
	SELECT chainexec.chain_wait(:'id', 1000);
	ROLLBACK;
EOF
)
like "$out" 'ERROR: +55000' "chain_wait on an execution created in the same open transaction: SQLSTATE 55000"

# ---------------------------------------------------------------------------
# chain_execute warns in a database the executors do not serve (and
# not in the one they serve).
out=$(psql_q "SELECT chainexec.chain_execute('wk-one-$S')" 2>&1 >/dev/null)
is "$out" "" "chain_execute in $PGDATABASE (served): no warning"
out=$( {
	psql -X -q -d postgres -c "CREATE DATABASE $OTHER_DB" &&
	psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$OTHER_DB" \
		-c "CREATE EXTENSION chainexec" \
		-c "SELECT chainexec.chain_define('{\"id\": \"wk-other\", \"steps\": [{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"SELECT 1\"}]}', true)" \
		-c "SELECT chainexec.chain_execute('wk-other')"
} 2>&1 >/dev/null)
like "$out" 'WARNING: +no chainexec executor serves database' \
	"chain_execute in a database no executor serves: WARNING"
diag "$out"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $OTHER_DB WITH (FORCE)" >/dev/null 2>&1

# ---------------------------------------------------------------------------
# pg_stat_activity shows the chain and step an executor runs.
define "wk-show-$S" '[{"id": 1, "name": "wk_sleepy_step", "type": "sql", "sql": "SELECT pg_sleep(2)"}]'
id=$(start "wk-show-$S")
if poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
		AND query LIKE '%wk_sleepy_step%'" t 5 >/dev/null; then
	ok "pg_stat_activity: the executor's query column names the running step"
	diag "$(psql_q "SELECT state || ' | ' || query FROM pg_stat_activity WHERE backend_type = 'chainexec executor'
		AND query LIKE '%wk_sleepy_step%'")"
else
	not_ok "pg_stat_activity: the executor's query column names the running step" \
		"$(psql_q "SELECT state || ' | ' || query FROM pg_stat_activity WHERE backend_type = 'chainexec executor'")"
fi
wait_status "$id" 10000 >/dev/null

# ---------------------------------------------------------------------------
# Idle executors use no CPU: utime + stime over 5 s, <= 2 ticks each.
poll_query_until "SELECT count(*) = 0 FROM chainexec.universal_transactions
	WHERE chain_id LIKE 'wk-%-$S' AND finished_at IS NULL" t 30 >/dev/null
sleep 1
mapfile -t pids < <(executors)
before=()
for p in "${pids[@]}"; do
	before+=("$(cpu_ticks "$p")")
done
sleep 5
report=
worst=0
for i in "${!pids[@]}"; do
	d=$(($(cpu_ticks "${pids[$i]}") - before[i]))
	report+=" pid ${pids[$i]}: $d"
	[ "$d" -gt "$worst" ] && worst=$d
done
diag "CPU ticks (utime+stime, $(getconf CLK_TCK)/s) used by idle executors in 5 s:$report"
if [ "${#pids[@]}" -eq 2 ] && [ "$worst" -le 2 ]; then
	ok "idle executors use ~0 CPU over 5 s (<= 2 ticks each)"
else
	not_ok "idle executors use ~0 CPU over 5 s (<= 2 ticks each)" "${#pids[@]} executors;$report"
fi

# ---------------------------------------------------------------------------
# The launcher restarts an executor terminated with SIGTERM.
mapfile -t pids < <(executors)
victim=${pids[0]}
kill -TERM "$victim"
t0=$(date +%s%N)
if poll_query_until "SELECT count(*) = 2 AND bool_and(pid <> $victim) FROM pg_stat_activity
		WHERE backend_type = 'chainexec executor'" t 15 >/dev/null; then
	t1=$(date +%s%N)
	ok "SIGTERM to executor $victim: two executors again after $(((t1 - t0) / 1000000)) ms"
else
	not_ok "SIGTERM to executor $victim: two executors again within 15 s" "$(executors)"
fi
id=$(start "wk-one-$S")
is "$(wait_status "$id" 10000)" completed "after the restart, an execution completes"

# The postmaster restarts the launcher (after 5 s), which starts the
# executors again; the old executors stop with their launcher.
launcher=$(psql_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec launcher'")
mapfile -t pids < <(executors)
kill -TERM "$launcher"
t0=$(date +%s%N)
if poll_query_until "SELECT count(*) FILTER (WHERE backend_type = 'chainexec launcher' AND pid <> $launcher) = 1
		AND count(*) FILTER (WHERE backend_type = 'chainexec executor' AND pid NOT IN ($(IFS=,; echo "${pids[*]}"))) = 2
		AND count(*) FILTER (WHERE backend_type = 'chainexec executor') = 2
		FROM pg_stat_activity" t 20 >/dev/null; then
	ok "SIGTERM to the launcher: a new launcher and two new executors after $(((($(date +%s%N) - t0)) / 1000000)) ms"
else
	not_ok "SIGTERM to the launcher: a new launcher and two new executors within 20 s" \
		"$(psql_q "SELECT backend_type || ' ' || pid FROM pg_stat_activity WHERE backend_type LIKE 'chainexec%'")"
fi

# A new execution starts at once: the commit of chain_execute wakes an
# executor (without the wake-up it would wait for chainexec.poll_interval).
define "wk-lat-$S" "[$(mark_step 1 l 0)]"
lat=()
for i in 1 2 3 4 5; do
	id=$(start "wk-lat-$S")
	wait_status "$id" 10000 >/dev/null
	lat+=("$(psql_q "SELECT round(extract(epoch FROM m.started - t.created_at)::numeric * 1000, 1)
		FROM public.wk_marks_$S m JOIN chainexec.universal_transactions t ON t.id = m.execution_id
		WHERE t.id = '$id'")")
done
median=$(printf '%s\n' "${lat[@]}" | sort -n | sed -n 3p)
diag "chain_execute's transaction start to the step's start, ms: ${lat[*]} (poll_interval: $(psql_q 'SHOW chainexec.poll_interval'))"
is "$(psql_q "SELECT ${median:-NULL} < 100")" t "a new execution starts at once (median ${median:-?} ms, < 100 ms)"

# ---------------------------------------------------------------------------
# Nothing left running.
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions
	WHERE chain_id LIKE 'wk-%-$S' AND finished_at IS NULL")" 0 "every execution of this script ended"

done_testing
exit $?
