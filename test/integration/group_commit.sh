#!/usr/bin/env bash
# test/integration/group_commit.sh: grouped commit (chainexec.group_commit,
# README "Grouped commit").
#
# With chainexec.group_commit = 8 (and a wide chainexec.group_commit_window,
# so that groups fill up): executions of a three-step chain whose steps
# record txid_current() (the top-level transaction, also inside the step's
# subtransaction) complete with the right context and every effect exactly
# once; steps of different executions share transactions, at most 8 to one,
# never two of one execution.  A step that fails in a group is recorded as
# failed and rolls back only its own effects: the other executions of its
# group commit theirs.  A handler step runs in a transaction of its own.
# chain_cancel interrupts a step running inside a group: that execution is
# cancelled, its step's effect rolled back, and the transitions before it
# in the group commit.  A trigger on the lines (this test's own, dropped at
# the end) logs which transaction and backend changed each line's status.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=240
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
FX=public.gc_fx_$S
LOG=public.gc_log_$S
CHAINS="'gc-three-$S', 'gc-fail-$S', 'gc-fast-$S', 'gc-slow-$S', 'gc-handler-$S', 'gc-txn-$S'"

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		ALTER SYSTEM RESET chainexec.group_commit;
		ALTER SYSTEM RESET chainexec.group_commit_window;
		SELECT pg_reload_conf();
		DROP TRIGGER IF EXISTS gc_log_$S ON chainexec.universal_transaction_lines;
		DELETE FROM chainexec.universal_transactions WHERE chain_id IN ($CHAINS);
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id IN ($CHAINS);
		DELETE FROM chainexec.handlers WHERE name = 'gc_handler_$S';
		DROP FUNCTION IF EXISTS public.gc_handler_$S(jsonb);
		DROP FUNCTION IF EXISTS public.gc_log_$S();
		DROP PROCEDURE IF EXISTS public.gc_commit_$S(uuid);
		DROP TABLE IF EXISTS $FX, $LOG;
	EOF
}
trap cleanup EXIT

# define ID JSON-STEPS: define and publish chain ID.
define()
{
	psql_q "SELECT chainexec.chain_define('{\"id\": \"$1\", \"steps\": $2}', true)" >/dev/null
}

# effect STEP [SLEEP-SECONDS]: the SQL of a step that records its effect
# (execution, step, top-level transaction) and sets output variable sSTEP.
effect()
{
	echo "WITH i AS (INSERT INTO $FX VALUES ({chain.execution_id}::uuid, $1, txid_current()) RETURNING step) SELECT i.step AS s$1 FROM i${2:+, pg_sleep($2)}"
}

# sqlstep ID SQL [EXTRA-KEYS]: a sql step setting output variable sID.
sqlstep()
{
	echo "{\"id\": $1, \"name\": \"s$1\", \"type\": \"sql\", ${3:+$3, }\"outputVariables\": [\"s$1\"], \"sql\": \"$2\"}"
}

plan 17

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 >/dev/null ||
	bail_out "the executors are not running"

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "could not set up"
	CREATE TABLE $FX (execution_id uuid, step int, xid bigint, PRIMARY KEY (execution_id, step));
	CREATE TABLE $LOG (xid bigint, pid int, execution_id uuid, line_number int, status text);
	CREATE FUNCTION public.gc_log_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		INSERT INTO $LOG VALUES (txid_current(), pg_backend_pid(), NEW.transaction_id, NEW.line_number, NEW.status);
		RETURN NULL;
	END \$\$;
	CREATE TRIGGER gc_log_$S AFTER UPDATE ON chainexec.universal_transaction_lines
		FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION public.gc_log_$S();
	ALTER SYSTEM SET chainexec.group_commit = 8;
	ALTER SYSTEM SET chainexec.group_commit_window = '1s';
	SELECT pg_reload_conf();
EOF
poll_query_until "SELECT current_setting('chainexec.group_commit') || ' ' || current_setting('chainexec.group_commit_window')" "8 1s" 10 >/dev/null
is "$(psql_q "SELECT current_setting('chainexec.group_commit') || ' ' || current_setting('chainexec.group_commit_window')")" \
	"8 1s" "chainexec.group_commit = 8 and chainexec.group_commit_window = 1s after a reload"

# ---- 40 executions of three steps, started together
N=40
define "gc-three-$S" "[$(sqlstep 1 "$(effect 1)"), $(sqlstep 2 "$(effect 2)" '"dependsOn": [1]'), $(sqlstep 3 "$(effect 3)" '"dependsOn": [2]')]" ||
	bail_out "could not define gc-three-$S"
psql_q "SELECT count(chainexec.chain_execute('gc-three-$S')) FROM generate_series(1, $N)" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'gc-three-$S' AND finished_at IS NOT NULL" "$N" 60 >/dev/null
is "$(psql_q "SELECT count(*) || ' ' || string_agg(DISTINCT status, ',') || ' ' || string_agg(DISTINCT context::text, ',')
	FROM chainexec.universal_transactions WHERE chain_id = 'gc-three-$S'")" \
	"$N completed {\"s1\": 1, \"s2\": 2, \"s3\": 3}" "all $N executions complete, each with the outputs of its three steps"
is "$(psql_q "SELECT count(*) || ' ' || count(DISTINCT execution_id) FROM $FX f
	JOIN chainexec.universal_transactions t ON t.id = f.execution_id WHERE t.chain_id = 'gc-three-$S'")" \
	"$((N * 3)) $N" "every step's effect exists exactly once ($((N * 3)) rows)"
groups=$(psql_q "SELECT count(*) FILTER (WHERE n > 1) || ' ' || max(n) || ' ' || bool_and(n = e)
	FROM (SELECT xid, count(*) AS n, count(DISTINCT execution_id) AS e FROM $FX f
		JOIN chainexec.universal_transactions t ON t.id = f.execution_id WHERE t.chain_id = 'gc-three-$S' GROUP BY xid) g")
read -r multi biggest distinct <<<"$groups"
diag "transactions with more than one step: $multi; largest group: $biggest steps"
ok_if() { if eval "$1"; then ok "$2"; else not_ok "$2" "$3"; fi; }
ok_if '[ "${multi:-0}" -gt 0 ]' "steps of different executions commit in one transaction" "groups: $groups"
ok_if '[ "${biggest:-99}" -le 8 ]' "no transaction holds more than chainexec.group_commit = 8 steps" "groups: $groups"
is "$distinct" true "no transaction holds two steps of one execution"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = 'gc-three-$S' AND (l.attempt <> 1 OR l.status <> 'completed' OR l.error IS NOT NULL)")" 0 \
	"every line completed at its first attempt"

# ---- a failing step in a group: recorded as failed, rolls back only its own effects
define "gc-fail-$S" "[$(sqlstep 1 "WITH i AS (INSERT INTO $FX VALUES ({chain.execution_id}::uuid, 1, txid_current()) RETURNING step) SELECT 10 / {d} AS s1 FROM i"),
	$(sqlstep 2 "$(effect 2)" '"dependsOn": [1]')]" || bail_out "could not define gc-fail-$S"
psql_q "SELECT count(chainexec.chain_execute('gc-fail-$S', jsonb_build_object('d', CASE WHEN g % 8 = 3 THEN 0 ELSE 1 END)))
	FROM generate_series(1, 32) g" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'gc-fail-$S' AND finished_at IS NOT NULL" 32 60 >/dev/null
is "$(psql_q "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) AS n
	FROM chainexec.universal_transactions WHERE chain_id = 'gc-fail-$S' GROUP BY 1) s")" "completed 28, failed 4" \
	"28 executions complete, the 4 whose first step divides by zero fail"
is "$(psql_q "SELECT count(*) || ' ' || string_agg(DISTINCT l.error->>'sqlstate', ',') FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = 'gc-fail-$S' AND l.status = 'failed'")" "4 22012" "their lines are failed with SQLSTATE 22012"
is "$(psql_q "SELECT count(*) FILTER (WHERE t.status = 'completed') || ' ' || count(*) FILTER (WHERE t.status = 'failed')
	FROM $FX f JOIN chainexec.universal_transactions t ON t.id = f.execution_id WHERE t.chain_id = 'gc-fail-$S'")" "56 0" \
	"the completed executions' effects exist once each (56), the failed steps' effects were rolled back"
is "$(psql_q "SELECT count(DISTINCT f.xid) > 0 FROM $LOG f
	JOIN chainexec.universal_transactions t ON t.id = f.execution_id AND t.chain_id = 'gc-fail-$S'
	WHERE f.status = 'failed' AND EXISTS (SELECT FROM $LOG o WHERE o.xid = f.xid AND o.status = 'completed'
		AND o.execution_id <> f.execution_id)")" t \
	"a failed step's line was recorded in a transaction that also committed other executions' steps"

# ---- a step that tries to end the transaction fails alone (as without groups)
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "could not create the procedure"
	CREATE PROCEDURE public.gc_commit_$S(e uuid) LANGUAGE plpgsql AS
		\$\$ BEGIN INSERT INTO $FX VALUES (e, 1, txid_current()); COMMIT; END \$\$;
EOF
define "gc-txn-$S" "[$(sqlstep 1 "CALL public.gc_commit_$S({chain.execution_id}::uuid)")]" || bail_out "could not define gc-txn-$S"
psql_q "SELECT count(chainexec.chain_execute(CASE WHEN g % 4 = 0 THEN 'gc-txn-$S' ELSE 'gc-three-$S' END, '{\"phase\": 2}'))
	FROM generate_series(1, 16) g" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE input->>'phase' = '2'
	AND chain_id IN ('gc-txn-$S', 'gc-three-$S') AND finished_at IS NOT NULL" 16 60 >/dev/null
is "$(psql_q "SELECT string_agg(chain_id || ' ' || status || ' ' || coalesce(error, '') || ' ' || n, ', ' ORDER BY chain_id)
	FROM (SELECT t.chain_id, t.status, t.error->>'sqlstate' AS error, count(*) AS n FROM chainexec.universal_transactions t
		WHERE t.input->>'phase' = '2' AND t.chain_id IN ('gc-txn-$S', 'gc-three-$S') GROUP BY 1, 2, 3) s")" \
	"gc-three-$S completed  12, gc-txn-$S failed 2D000 4" \
	"a step whose procedure COMMITs fails with 2D000; the executions grouped with it complete"
is "$(psql_q "SELECT count(*) FILTER (WHERE t.chain_id = 'gc-txn-$S') || ' ' || count(*) FILTER (WHERE t.chain_id = 'gc-three-$S')
	FROM $FX f JOIN chainexec.universal_transactions t ON t.id = f.execution_id
	WHERE t.input->>'phase' = '2' AND t.chain_id IN ('gc-txn-$S', 'gc-three-$S')")" "0 36" \
	"its effect was rolled back; the others' 36 effects exist once each"

# ---- a handler step runs in a transaction of its own
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "could not register the handler"
	CREATE FUNCTION public.gc_handler_$S(a jsonb) RETURNS jsonb LANGUAGE sql AS
		\$\$ INSERT INTO $FX VALUES ((a->>'input')::uuid, 1, txid_current()) RETURNING jsonb_build_object('s1', step) \$\$;
	SELECT chainexec.chain_register_handler('gc_handler_$S', 'public.gc_handler_$S(jsonb)'::regprocedure);
EOF
define "gc-handler-$S" "[{\"id\": 1, \"name\": \"h\", \"type\": \"function\", \"instructionSet\": \"gc_handler_$S\",
	\"inputTemplate\": \"{chain.execution_id}\", \"outputVariables\": [\"s1\"]},
	$(sqlstep 2 "$(effect 2)" '"dependsOn": [1]')]" || bail_out "could not define gc-handler-$S"
psql_q "SELECT count(chainexec.chain_execute('gc-handler-$S')) FROM generate_series(1, 16)" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'gc-handler-$S' AND status = 'completed'" 16 60 >/dev/null
is "$(psql_q "SELECT count(*) || ' ' || count(*) FILTER (WHERE (SELECT count(*) FROM $LOG o WHERE o.xid = f.xid AND o.status = 'completed') = 1)
	FROM $FX f JOIN chainexec.universal_transactions t ON t.id = f.execution_id
	WHERE t.chain_id = 'gc-handler-$S' AND f.step = 1")" "16 16" \
	"each of 16 handler steps committed in a transaction that completed no other line"

# ---- chain_cancel interrupts the step it targets, inside a group
# 20 fast executions (20 ms steps, priority 10) and one slow one (60 s,
# priority 0, so claimed last, while its executor's group is still open).
define "gc-fast-$S" "[$(sqlstep 1 "$(effect 1 0.02)")]" || bail_out "could not define gc-fast-$S"
define "gc-slow-$S" "[$(sqlstep 1 "$(effect 1 60)")]" || bail_out "could not define gc-slow-$S"
slow=$(psql_q "WITH f AS (SELECT count(chainexec.chain_execute('gc-fast-$S', '{}', '{\"priority\": 10}')) AS n
		FROM generate_series(1, 20))
	SELECT chainexec.chain_execute('gc-slow-$S', '{}', '{\"priority\": 0}') FROM f")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor' AND query LIKE 'chainexec: gc-slow-$S/%'" 1 30 >/dev/null
sleep 0.3
pending=$(psql_q "SELECT 20 - count(*) FROM $FX f JOIN chainexec.universal_transactions t ON t.id = f.execution_id
	WHERE t.chain_id = 'gc-fast-$S'")
diag "while the slow step runs, $pending fast steps of its group wait for its commit"
t0=$SECONDS
psql_q "SELECT chainexec.chain_cancel('$slow')" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$slow' AND status = 'cancelled'" 1 30 >/dev/null
ok_if '[ $((SECONDS - t0)) -lt 20 ]' "chain_cancel interrupts the 60 s step running in a group ($((SECONDS - t0)) s)" "it took $((SECONDS - t0)) s"
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'gc-fast-$S' AND status = 'completed'" 20 30 >/dev/null
is "$(psql_q "SELECT (SELECT status FROM chainexec.universal_transactions WHERE id = '$slow') || ' '
	|| (SELECT count(*) FROM $FX WHERE execution_id = '$slow') || ' '
	|| (SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'gc-fast-$S' AND status = 'completed') || ' '
	|| (SELECT count(*) FROM $FX f JOIN chainexec.universal_transactions t ON t.id = f.execution_id WHERE t.chain_id = 'gc-fast-$S')")" \
	"cancelled 0 20 20" "the slow execution is cancelled without its effect; the 20 fast ones completed once each"
is "$(psql_q "SELECT count(*) > 0 FROM $LOG c WHERE c.execution_id = '$slow' AND c.status = 'cancelled'
	AND EXISTS (SELECT FROM $LOG o JOIN chainexec.universal_transactions t ON t.id = o.execution_id
		WHERE o.xid = c.xid AND o.status = 'completed' AND t.chain_id = 'gc-fast-$S')")" "t" \
	"the cancelled line was recorded in the same transaction as fast steps that ran before it in its group"

done_testing
exit $?
