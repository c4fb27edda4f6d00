#!/usr/bin/env bash
# test/integration/control_running.sh: the control functions against a line
# that is being run right now, with the executors (and chain_run).
#
# chain_pause while forEach iterations run (those running finish and count,
# the others run after chain_resume, each element exactly once, whether the
# pause found them ready, running or not yet due); chain_cancel during a
# running step (the step is interrupted, every open line ends cancelled,
# chain_resume runs the step again), also when chain_resume comes while the
# interrupted attempt is still ending (it is refused with 55P03 until then,
# and the interrupted attempt never fails the resumed execution);
# chain_pause during an ordinary step that completes or fails with a retried
# error (the retry waits for the resume; the pause never fails the
# execution); chain_rollback during a running step; chain_skip_step and
# chain_retry_step of a forEach step whose iterations run (55P03); a cancel
# of an execution that CALL chain_run drives.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=400
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
FX=public.ctlr_fx_$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'ctlr-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'ctlr-%-$S';
		DROP TABLE IF EXISTS $FX;
		DROP FUNCTION IF EXISTS public.ctlr_slow_$S(uuid, text, float8);
		DROP FUNCTION IF EXISTS public.ctlr_flaky_$S(uuid, int);
		DROP FUNCTION IF EXISTS public.ctlr_elem_$S(uuid, int, int, boolean);
	EOF
}
trap cleanup EXIT

define()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -v "def={\"id\": \"$1\", \"steps\": $2 ${3:-}}" \
		<<<"SELECT chainexec.chain_define(:'def'::jsonb, true)" >/dev/null
}

start()
{
	psql_q "SELECT chainexec.chain_execute('$1', '${2:-{\}}')"
}

# running CHAIN STEP: wait (20 s at most) until a backend runs step STEP of CHAIN.
running()
{
	poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'chainexec: $1/$2 %' AND state = 'active'" t 20 >/dev/null
}

# settled ID: wait (20 s at most) until no line of execution ID is open.
settled()
{
	poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND status IN ('pending', 'ready', 'running', 'waiting')" 0 20
}

# open_lines ID: the lines of ID that are not final, as "line:status:attempt".
open_lines()
{
	psql_q "SELECT coalesce(string_agg(line_number || ':' || status || ':' || attempt, ' ' ORDER BY line_number), 'none') FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND status IN ('pending', 'ready', 'running', 'waiting')"
}

final_status()
{
	psql_q "SELECT chainexec.chain_wait('$1', 30000)->>'status'"
}

# runs ID STEP: how many times step STEP of ID had its effect, and on how many elements.
runs()
{
	psql_q "SELECT count(*) || '/' || count(DISTINCT idx) FROM $FX WHERE exec = '$1' AND step = '$2'"
}

# resume_when_free ID [CALL]: chain_resume (or CALL, a SELECT list), again
# while it answers 55P03 (10 s at most).
resume_when_free()
{
	local deadline=$((SECONDS + 10)) out

	while :; do
		out=$(psql -X -A -t -q -c "SELECT ${2:-chainexec.chain_resume('$1')}" 2>&1) && { echo "$out"; return 0; }
		case $out in
			*"is still running"* | *"is running"*) ;;
			*) echo "$out"; return 1 ;;
		esac
		[ "$SECONDS" -ge "$deadline" ] && { echo "$out"; return 1; }
		sleep 0.2
	done
}



psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE TABLE $FX (exec uuid, step text, idx int);
-- a step that takes SECS seconds, then records its effect; interrupted, it
-- takes 1.5 s more to end (its attempt is still running after the cancel)
CREATE FUNCTION public.ctlr_slow_$S(e uuid, step text, secs float8) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM pg_sleep(secs);
	INSERT INTO $FX VALUES (e, step, 0);
	RETURN 1;
EXCEPTION WHEN query_canceled THEN
	PERFORM pg_sleep(1.5);
	RAISE;
END
\$\$;
-- element ITEM of a forEach; item 4 fails unless FIX
CREATE FUNCTION public.ctlr_elem_$S(e uuid, idx int, item int, fix boolean) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM pg_sleep(0.3);
	IF item = 4 AND NOT fix THEN
		PERFORM chainexec.raise_failure('business_rule_violation', 'element 4 is refused');
	END IF;
	INSERT INTO $FX VALUES (e, 'elem', idx);
	RETURN item * 10;
END
\$\$;
-- fails with api_timeout at its first attempt, after 1 s
CREATE FUNCTION public.ctlr_flaky_$S(e uuid, attempt int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM pg_sleep(1);
	IF attempt < 2 THEN
		PERFORM chainexec.raise_failure('api_timeout', 'the first attempt fails');
	END IF;
	INSERT INTO $FX VALUES (e, 'flaky', attempt);
	RETURN attempt;
END
\$\$;
EOF

EACH_SQL="INSERT INTO $FX SELECT {chain.execution_id}::uuid, 'each', {index}::int FROM pg_sleep(0.5) RETURNING {item}::int * 10 AS v"
ITEMS='{"items": [1, 2, 3, 4, 5, 6]}'
EXPECTED='[10, 20, 30, 40, 50, 60]'

# ---------------------------------------------------------------------------
# chain_pause while forEach iterations run, chain_resume 1.5 s later.
for conc in 2 4; do
	define "ctlr-each$conc-$S" "[{\"id\": 1, \"name\": \"each\", \"type\": \"sql\", \"forEach\": \"{items}\",
		\"maxConcurrency\": $conc, \"sql\": \"$EACH_SQL\", \"outputVariables\": [\"v\"]}]"
	e=$(start "ctlr-each$conc-$S" "$ITEMS")
	running "ctlr-each$conc-$S" each
	sleep 0.2
	is "$(psql_q "SELECT chainexec.chain_pause('$e')")" t "maxConcurrency $conc: chain_pause while iterations run"
	sleep 1.5
	is "$(psql_q "SELECT chainexec.chain_resume('$e')")" t "maxConcurrency $conc: chain_resume 1.5 s later"
	st=$(final_status "$e")
	is "$st" completed "maxConcurrency $conc: the execution completes after the resume" \
		|| diag "open lines: $(open_lines "$e")"
	is "$(runs "$e" each)" 6/6 "maxConcurrency $conc: each element ran exactly once"
	is "$(psql_q "SELECT context->'v' FROM chainexec.universal_transactions WHERE id = '$e'")" "$EXPECTED" \
		"maxConcurrency $conc: the outputs of every element, in element order"
done
is "$(open_lines "$e")" none "no line of the forEach execution is left open"

# A forEach paused before any iteration was claimed (its lines ready, not due
# to anyone yet): the resume runs them all.
e=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -c "BEGIN" \
	-c "SELECT chainexec.chain_execute('ctlr-each4-$S', '$ITEMS')" -c "COMMIT" | head -n 1)
psql_q "SELECT chainexec.chain_pause('$e')" >/dev/null
sleep 1
is "$(psql_q "SELECT chainexec.chain_resume('$e')")" t "a forEach paused at once is resumed"
is "$(final_status "$e")/$(runs "$e" each)" completed/6/6 "and completes, each element once"

# chain_cancel while iterations run, then chain_resume: the forEach goes on,
# the elements that ended are not run again, the interrupted ones are.
e=$(start "ctlr-each2-$S" "$ITEMS")
poll_query_until "SELECT count(*) >= 2 FROM $FX WHERE exec = '$e'" t 20 >/dev/null
running "ctlr-each2-$S" each
is "$(psql_q "SELECT chainexec.chain_cancel('$e')")" t "chain_cancel while forEach iterations run"
settled "$e" >/dev/null
done_before=$(psql_q "SELECT count(*) FROM $FX WHERE exec = '$e'")
is "$(resume_when_free "$e")" t "chain_resume of the cancelled forEach"
is "$(final_status "$e")/$(runs "$e" each)" completed/6/6 \
	"it completes, each element once ($done_before had ended before the cancel)"
is "$(psql_q "SELECT context->'v' FROM chainexec.universal_transactions WHERE id = '$e'")" "$EXPECTED" \
	"with the outputs of every element, in element order"

# chain_resume of an execution that failed because an element failed: the
# failed and interrupted elements run again, the completed ones do not.
define "ctlr-elem-$S" "[{\"id\": 1, \"name\": \"elem\", \"type\": \"sql\", \"forEach\": \"{items}\", \"maxConcurrency\": 2,
	\"sql\": \"SELECT public.ctlr_elem_$S({chain.execution_id}::uuid, {index}::int, {item}::int, {fix}::boolean) AS v\",
	\"outputVariables\": [\"v\"]}]"
e=$(start "ctlr-elem-$S" '{"items": [1, 2, 3, 4, 5, 6], "fix": false}')
is "$(final_status "$e")" failed "a forEach whose element 4 fails fails its execution"
settled "$e" >/dev/null
done_before=$(psql_q "SELECT count(*) FROM $FX WHERE exec = '$e' AND step = 'elem'")
psql_q "UPDATE chainexec.universal_transactions SET context = context || '{\"fix\": true}' WHERE id = '$e'" >/dev/null
is "$(resume_when_free "$e")" t "chain_resume of the failed execution"
is "$(final_status "$e")/$(runs "$e" elem)" completed/6/6 \
	"it completes, each element once ($done_before had completed before the failure)"
is "$(psql_q "SELECT context->'v' FROM chainexec.universal_transactions WHERE id = '$e'")" "$EXPECTED" \
	"with the outputs of every element, in element order"

# chain_skip_step of the cancelled forEach step: skipped, its other elements never run.
e=$(start "ctlr-each2-$S" "$ITEMS")
poll_query_until "SELECT count(*) >= 2 FROM $FX WHERE exec = '$e'" t 20 >/dev/null
psql_q "SELECT chainexec.chain_cancel('$e')" >/dev/null
settled "$e" >/dev/null
done_before=$(psql_q "SELECT count(*) || '/' || count(*) FROM $FX WHERE exec = '$e'")
is "$(resume_when_free "$e" "chainexec.chain_skip_step('$e', 1)")" t "chain_skip_step of a forEach step its cancel interrupted"
sleep 1
is "$(final_status "$e")/$(runs "$e" each)/$(open_lines "$e")" "completed/$done_before/none" \
	"the execution completes; no element runs after the skip, no line is left open"

# ---------------------------------------------------------------------------
# chain_cancel during a running step, then chain_resume.
define "ctlr-nap-$S" "[{\"id\": 1, \"name\": \"first\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS one\"},
	{\"id\": 2, \"name\": \"nap\", \"type\": \"sql\", \"sql\": \"SELECT public.ctlr_slow_$S({chain.execution_id}::uuid, 'nap', {secs}::float8) AS slept\"},
	{\"id\": 3, \"name\": \"last\", \"type\": \"sql\", \"sql\": \"SELECT 3 AS three\"}]"
c=$(start "ctlr-nap-$S" '{"secs": 4}')
running "ctlr-nap-$S" nap
is "$(psql_q "SELECT chainexec.chain_cancel('$c')")" t "chain_cancel during a running step"
if settled "$c" >/dev/null; then
	ok "every line of the cancelled execution ends final"
else
	not_ok "every line of the cancelled execution ends final" "open lines: $(open_lines "$c")"
fi
is "$(psql_q "SELECT status || ':' || attempt FROM chainexec.universal_transaction_lines WHERE transaction_id = '$c' AND step_id = 2")" \
	cancelled:1 "the running step's line is cancelled, with the attempt it was interrupted in"
is "$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$c'")" cancelled "the execution stays cancelled"
is "$(runs "$c" nap)" 0/0 "the interrupted step had no effect"
psql_q "UPDATE chainexec.universal_transactions SET context = context || '{\"secs\": 0.2}' WHERE id = '$c'" >/dev/null
is "$(resume_when_free "$c")" t "chain_resume of the cancelled execution"
is "$(final_status "$c")/$(runs "$c" nap)" completed/1/1 "runs the step again and completes (the step's effect once)"

# chain_resume while the interrupted attempt is still ending (the
# step takes 1.5 s to give up): refused until it ended, never failed by it.
c=$(start "ctlr-nap-$S" '{"secs": 4}')
running "ctlr-nap-$S" nap
out=$(psql -X -A -t -q -v VERBOSITY=verbose -c "SELECT chainexec.chain_cancel('$c')" -c "SELECT chainexec.chain_resume('$c')" 2>&1)
like "$out" 'is still running' "chain_resume at once after chain_cancel is refused while the interrupted attempt ends"
like "$out" '55P03' "with SQLSTATE 55P03"
is "$(resume_when_free "$c")" t "chain_resume succeeds once the attempt ended"
st=$(final_status "$c")
is "$st/$(psql_q "SELECT count(*) FILTER (WHERE status = 'failed') FROM chainexec.universal_transaction_lines WHERE transaction_id = '$c'")" \
	completed/0 "the resumed execution completes: the interrupted attempt failed nothing" \
	|| diag "lines: $(psql_q "SELECT string_agg(line_number || ':' || status || ':' || attempt || ':' || coalesce(error->>'failure_type', ''), ' ') FROM chainexec.universal_transaction_lines WHERE transaction_id = '$c'")"

# ---------------------------------------------------------------------------
# chain_pause during an ordinary running step; chain_resume.
p=$(start "ctlr-nap-$S" '{"secs": 1.5}')
running "ctlr-nap-$S" nap
is "$(psql_q "SELECT chainexec.chain_pause('$p')")" t "chain_pause during a running step"
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$p' AND step_id = 2" completed 20 >/dev/null
is "$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$p'")/$(open_lines "$p")" paused/3:pending:0 \
	"the running step completes and counts; the execution stays paused, the next step pending"
is "$(psql_q "SELECT chainexec.chain_resume('$p')")" t "chain_resume"
is "$(final_status "$p")/$(runs "$p" nap)" completed/1/1 "the execution completes, the paused step ran once"

# chain_pause during a step whose attempt fails with a retried error.
define "ctlr-flaky-$S" "[{\"id\": 1, \"name\": \"flaky\", \"type\": \"sql\", \"sql\": \"SELECT public.ctlr_flaky_$S({chain.execution_id}::uuid, {chain.attempt}::int) AS n\",
	\"retryConfig\": {\"maxRetries\": 2, \"backoffStrategy\": \"fixed\", \"baseDelayMs\": 100, \"retryOnErrors\": [\"api_timeout\"]}}]"
f=$(start "ctlr-flaky-$S")
running "ctlr-flaky-$S" flaky
is "$(psql_q "SELECT chainexec.chain_pause('$f')")" t "chain_pause during a step that will fail with a retried error"
poll_query_until "SELECT attempt FROM chainexec.universal_transaction_lines WHERE transaction_id = '$f'" 1 20 >/dev/null
sleep 0.5
is "$(psql_q "SELECT t.status || '/' || l.status FROM chainexec.universal_transactions t JOIN chainexec.universal_transaction_lines l ON l.transaction_id = t.id WHERE t.id = '$f'")" \
	paused/pending "the failed attempt's retry waits for the resume (the pause fails nothing)"
psql_q "SELECT chainexec.chain_resume('$f')" >/dev/null
is "$(final_status "$f")/$(psql_q "SELECT attempt FROM chainexec.universal_transaction_lines WHERE transaction_id = '$f'")" \
	completed/2 "after the resume the retry runs and the execution completes"

# ---------------------------------------------------------------------------
# chain_rollback during a running step.
define "ctlr-rb-$S" "[{\"id\": 1, \"name\": \"book\", \"type\": \"sql\", \"sql\": \"INSERT INTO $FX VALUES ({chain.execution_id}::uuid, 'book', 0) RETURNING 1 AS booked\",
		\"rollbackAction\": \"DELETE FROM $FX WHERE exec = {chain.execution_id}::uuid AND step = 'book'\"},
	{\"id\": 2, \"name\": \"nap\", \"type\": \"sql\", \"sql\": \"SELECT public.ctlr_slow_$S({chain.execution_id}::uuid, 'nap', 4) AS slept\"}], \"rollbackEnabled\": true"
r=$(start "ctlr-rb-$S")
running "ctlr-rb-$S" nap
is "$(psql_q "SELECT chainexec.chain_rollback('$r')")" t "chain_rollback during a running step"
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$r'" compensated 20 >/dev/null
if settled "$r" >/dev/null; then
	ok "the execution is compensated and every line ends final"
else
	not_ok "the execution is compensated and every line ends final" "open lines: $(open_lines "$r")"
fi
is "$(runs "$r" book)/$(runs "$r" nap)/$(psql_q "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$r' AND step_id = 2 AND line_type = 'step'")" \
	0/0/0/0/cancelled "the booking is compensated, the running step interrupted without effect"

# ---------------------------------------------------------------------------
# chain_skip_step / chain_retry_step of a forEach step whose iterations run.
e=$(start "ctlr-each2-$S" "$ITEMS")
running "ctlr-each2-$S" each
out=$(psql -X -A -t -q -c "SELECT chainexec.chain_skip_step('$e', 1)" 2>&1)
like "$out" 'is running' "chain_skip_step of a forEach step whose iterations run: 55P03"
is "$(final_status "$e")/$(runs "$e" each)" completed/6/6 "the forEach goes on and completes, each element once"

# chain_skip_step of a step that waits for its child execution: the child
# is cancelled (not left to run on), the parent goes on.
define "ctlr-kid-$S" "[{\"id\": 1, \"name\": \"nap\", \"type\": \"sql\", \"sql\": \"SELECT public.ctlr_slow_$S({chain.execution_id}::uuid, 'kid', 5) AS slept\"}]"
define "ctlr-par-$S" "[{\"id\": 1, \"name\": \"child\", \"type\": \"chain\", \"chain\": \"ctlr-kid-$S\"},
	{\"id\": 2, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(3) IS NULL AS later\"}]"
k=$(start "ctlr-par-$S")
running "ctlr-kid-$S" nap
kid=$(psql_q "SELECT id FROM chainexec.universal_transactions WHERE chain_id = 'ctlr-kid-$S' AND metadata->'parent'->>'executionId' = '$k'")
is "$(psql_q "SELECT chainexec.chain_skip_step('$k', 1)")" t "chain_skip_step of a step whose child execution runs"
if poll_query_until "SELECT (SELECT status FROM chainexec.universal_transactions WHERE id = '$kid') || '/' || (SELECT status FROM chainexec.universal_transactions WHERE id = '$k')" cancelled/running 10 >/dev/null; then
	ok "its child is cancelled at once, while the parent goes on"
else
	not_ok "its child is cancelled at once, while the parent goes on"
fi
is "$(final_status "$k")/$(runs "$kid" kid)" completed/0/0 "the parent completes; the child had no effect"

# ---------------------------------------------------------------------------
# A cancel that reaches the executor after it claimed the line and before
# the step began (here it waits for the step cache's table, locked by
# another session) interrupts the step as soon as it begins.
define "ctlr-early-$S" "[{\"id\": 1, \"name\": \"nap\", \"type\": \"sql\", \"sql\": \"SELECT public.ctlr_slow_$S({chain.execution_id}::uuid, 'nap', 6) AS slept\",
	\"inputVariables\": [\"tag\"], \"cache\": {\"ttlMs\": 1000}}]"
psql -X -q -c "SET application_name = 'ctlr_lock_$S'" -c "BEGIN" -c "LOCK TABLE chainexec.step_cache IN ACCESS EXCLUSIVE MODE" \
	-c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
LOCKER=$!
poll_query_until "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'ctlr_lock_$S' AND l.relation = 'chainexec.step_cache'::regclass AND l.granted" 1 20 >/dev/null
x=$(start "ctlr-early-$S" "{\"tag\": \"$S-early\"}")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'chainexec: ctlr-early-$S/nap %' AND wait_event_type = 'Lock'" 1 20 >/dev/null
is "$(psql_q "SELECT chainexec.chain_cancel('$x')")" t "chain_cancel while the claimed line waits before its step"
t0=$(date +%s%N)
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ctlr_lock_$S'" >/dev/null
wait "$LOCKER"
settled "$x" >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
st=$(psql_q "SELECT status || ':' || attempt || ':' || coalesce(error->>'failure_type', '') FROM chainexec.universal_transaction_lines WHERE transaction_id = '$x'")
if [ "$st" = cancelled:1:query_canceled ] && [ "$ms" -lt 4500 ]; then
	ok "the step is interrupted as it begins (the line cancelled after $ms ms, not after its 6 s)"
else
	not_ok "the step is interrupted as it begins" "line: $st, after $ms ms"
fi

# ---------------------------------------------------------------------------
# chain_cancel of an execution that CALL chain_run drives.
psql -X -q -c "CALL chainexec.chain_run('ctlr-nap-$S', '{\"secs\": 4}')" >/dev/null 2>&1 &
RUNNER=$!
running "ctlr-nap-$S" nap
s=$(psql_q "SELECT id FROM chainexec.universal_transactions WHERE chain_id = 'ctlr-nap-$S' AND in_session ORDER BY created_at DESC LIMIT 1")
psql_q "SELECT chainexec.chain_cancel('$s')" >/dev/null
wait "$RUNNER"
if settled "$s" >/dev/null && [ "$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$s'")" = cancelled ]; then
	ok "chain_cancel of a chain_run execution: cancelled, every line final"
else
	not_ok "chain_cancel of a chain_run execution: cancelled, every line final" "open lines: $(open_lines "$s")"
fi
psql_q "UPDATE chainexec.universal_transactions SET context = context || '{\"secs\": 0.2}' WHERE id = '$s'" >/dev/null
resume_when_free "$s" >/dev/null
is "$(final_status "$s")/$(runs "$s" nap)" completed/1/1 "chain_resume runs it again on the executors and completes"

done_testing; exit $?
