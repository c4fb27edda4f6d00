#!/usr/bin/env bash
# test/security/control.sh: attacks on the control functions by LOGIN-only
# roles.
#
# The control functions (chain_cancel, chain_pause, chain_resume,
# chain_retry_step, chain_skip_step, chain_rollback, chain_rollback_plan,
# chain_step_complete, chain_step_fail, chain_cleanup) run their queries as
# the extension owner: none of the caller's operators, functions, temp
# tables or types may take part in them, including in the check of who may
# control an execution.  A role controls only the executions of its own
# roles, in its session's organization.  A step may not control its own
# execution, nor another of its family of sub-chains (a parent, a child, a
# sibling: the change would reach its own and leave them stuck): the call
# fails the step instead.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
VICTIM=sec_ctl_victim_$S
ATTACKER=sec_ctl_attacker_$S
ORG_B=bbbbbbbb-0000-4000-8000-00000000$(printf '%04d' $((S % 10000)))
CH=sec-ctl-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'sec-ctl-%$S' AND parent_id IS NOT NULL;
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'sec-ctl-%$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'sec-ctl-%$S';
		RESET chainexec.internal;
		DROP SCHEMA IF EXISTS sec_ctl_$S CASCADE;
		DROP TABLE IF EXISTS public.sec_ctl_spy_$S;
		DROP FUNCTION IF EXISTS public.sec_ctl_nested_$S(uuid);
		DROP OWNED BY $VICTIM, $ATTACKER;
		DROP ROLE IF EXISTS $VICTIM, $ATTACKER;
	EOF
}
trap cleanup EXIT

# as ROLE SQL: run SQL as the LOGIN role (its own connection); prints
# tuples only; fails on the first error.
as()
{
	local role=$1

	shift
	psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$role" -c "$1"
}

# attempt ROLE SQL: run SQL as ROLE; print the SQLSTATE of its error, or
# "ok:<result>" when it succeeded.
attempt()
{
	local role=$1 sql=$2

	psql -X -A -t -q -U "$role" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$sql" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p; t; s/^\(.*\)$/ok:\1/p' | head -n 1
}

line_status()
{
	psql_q "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND step_id = ${2:-1} ORDER BY line_number DESC LIMIT 1"
}

exec_status()
{
	psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$1'"
}

plan 28

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "setup failed"
	CREATE ROLE $VICTIM LOGIN;
	CREATE ROLE $ATTACKER LOGIN;
	CREATE SCHEMA sec_ctl_$S AUTHORIZATION $ATTACKER;
	CREATE TABLE public.sec_ctl_spy_$S (who text, what text);
	GRANT INSERT, SELECT ON public.sec_ctl_spy_$S TO PUBLIC;
EOF

# The victim's chain: an approval (external step), then the booking.
as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"$CH\", \"steps\": [
	{\"id\": 1, \"name\": \"approve\", \"type\": \"external\", \"outputVariables\": [\"approved\"]},
	{\"id\": 2, \"name\": \"book\", \"type\": \"sql\", \"sql\": \"SELECT true AS booked\"}]}', true)" >/dev/null ||
	bail_out "the victim cannot define its chain"
V=$(as "$VICTIM" "SELECT chainexec.chain_execute('$CH')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$V' AND step_id = 1" waiting 30 ||
	bail_out "the victim's execution never waits for its approval"

# 1-3: an operator = (uuid, uuid) that is always true, first on the path.
as "$ATTACKER" "CREATE FUNCTION sec_ctl_$S.yes(uuid, uuid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
	CREATE OPERATOR sec_ctl_$S.= (LEFTARG = uuid, RIGHTARG = uuid, PROCEDURE = sec_ctl_$S.yes);
	CREATE FUNCTION sec_ctl_$S.yes_oid(oid, oid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
	CREATE OPERATOR sec_ctl_$S.= (LEFTARG = oid, RIGHTARG = oid, PROCEDURE = sec_ctl_$S.yes_oid);
	CREATE FUNCTION sec_ctl_$S.yes_text(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
	CREATE OPERATOR sec_ctl_$S.= (LEFTARG = text, RIGHTARG = text, PROCEDURE = sec_ctl_$S.yes_text);
	CREATE FUNCTION sec_ctl_$S.can_access(regrole) RETURNS boolean LANGUAGE sql AS 'SELECT true';
	CREATE FUNCTION sec_ctl_$S.current_organization() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid';
	CREATE FUNCTION sec_ctl_$S.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
	CREATE FUNCTION sec_ctl_$S.pg_has_role(name, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';" >/dev/null ||
	bail_out "the attacker cannot create its operators"
SHADOW="SET search_path = sec_ctl_$S, pg_catalog, chainexec, pg_temp;"
is "$(attempt "$ATTACKER" "$SHADOW SELECT chainexec.chain_step_complete('$V', 1, '{\"approved\": true}')")" 42704 \
	"a shadowed = (uuid, uuid) does not let another role approve the victim's step"
is "$(line_status "$V")" waiting "the victim's approval still waits"
is "$(attempt "$ATTACKER" "$SHADOW SELECT chainexec.chain_skip_step('$V', 1, '{\"approved\": true}')")" 42704 \
	"a shadowed = does not let another role skip the victim's step"
is "$(attempt "$ATTACKER" "$SHADOW SELECT chainexec.chain_cancel('$V')")" 42704 \
	"a shadowed = does not let another role cancel the victim's execution"

# 5: every control function, shadowed operators and functions or not.
bad=
for call in "chain_cancel('$V')" "chain_pause('$V')" "chain_resume('$V')" "chain_retry_step('$V', 1)" \
	"chain_skip_step('$V', 1)" "chain_rollback('$V')" "chain_rollback_plan('$V')" \
	"chain_step_complete('$V', 1, '{}')" "chain_step_fail('$V', 1, 'declined')" "_progress('$V')"; do
	for path in "" "$SHADOW"; do
		got=$(attempt "$ATTACKER" "$path SELECT chainexec.$call")
		[ "$got" = 42704 ] || bad="$bad $call${path:+ (shadowed)}=$got"
	done
done
is "$bad" "" "no control function (nor _progress) acts on another role's execution (20 calls, 42704 each)"
is "$(exec_status "$V")|$(line_status "$V")" "waiting|waiting" "the victim's execution is untouched"

# 7-8: another organization: neither the attacker nor the owner itself,
# in a session of another organization, control it.
is "$(attempt "$VICTIM" "SET chainexec.organization_id = '$ORG_B'; SELECT chainexec.chain_pause('$V')")" 42704 \
	"the owner's session in another organization does not control the execution"
is "$(attempt "$ATTACKER" "SET chainexec.organization_id = '$ORG_B'; $SHADOW SELECT chainexec.chain_step_complete('$V', 1, '{}')")" 42704 \
	"another role in another organization, shadowed operators, does not approve it"

# 9: a member of chainexec_admin only within the organization.
psql_q "GRANT chainexec_admin TO $ATTACKER" >/dev/null
is "$(attempt "$ATTACKER" "SET chainexec.organization_id = '$ORG_B'; SELECT chainexec.chain_pause('$V')")" 42704 \
	"chainexec_admin in another organization does not control it"
psql_q "REVOKE chainexec_admin FROM $ATTACKER" >/dev/null

# 10-13: temp tables and domains named like catalog types, first on the
# path, with a CHECK that records who evaluates it: nothing of it runs.
SPY="CREATE FUNCTION pg_temp.spy(text) RETURNS boolean LANGUAGE plpgsql AS \$f\$
	BEGIN INSERT INTO public.sec_ctl_spy_$S VALUES (current_user, \$1); RETURN true; END \$f\$;
	CREATE DOMAIN pg_temp.int4 AS pg_catalog.int4 CHECK (pg_temp.spy('int4'));
	CREATE DOMAIN pg_temp.uuid AS pg_catalog.uuid CHECK (pg_temp.spy('uuid'));
	CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.spy('jsonb'));
	CREATE DOMAIN pg_temp.bool AS pg_catalog.bool CHECK (pg_temp.spy('bool'));
	CREATE DOMAIN pg_temp.spytext AS pg_catalog.text CHECK (pg_temp.spy('text'));
	CREATE TEMP TABLE text (t pg_temp.spytext);
	CREATE TEMP TABLE regrole (t pg_temp.spytext);
	CREATE TEMP TABLE timestamptz (t pg_temp.spytext);
	SET search_path = pg_temp, pg_catalog;"
O=$(as "$VICTIM" "SELECT chainexec.chain_execute('$CH')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$O' AND step_id = 1" waiting 30 >/dev/null
got=$(attempt "$VICTIM" "$SPY SELECT chainexec.chain_pause('$O'), chainexec.chain_resume('$O'),
	chainexec.chain_rollback_plan('$O') IS NOT NULL, chainexec.chain_skip_step('$O', 1, '{\"approved\": true}')")
is "$got" "ok:t|t|t|t" "with temp types first on its path, the owner still controls its execution"
is "$(psql_q "SELECT count(*) FROM public.sec_ctl_spy_$S")" 0 \
	"no temp domain or temp table type of the caller's takes part in the control functions"
O2=$(as "$VICTIM" "SELECT chainexec.chain_execute('$CH')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$O2' AND step_id = 1" waiting 30 >/dev/null
got=$(attempt "$VICTIM" "$SPY SELECT chainexec.chain_step_fail('$O2', 1, 'declined', 'no'), chainexec.chain_retry_step('$O2', 1),
	chainexec.chain_cancel('$O2'), chainexec.chain_cleanup('1 day')::int >= 0")
is "$got" "ok:t|t|t|t" "step_fail, retry_step, cancel and cleanup work under temp types too"
is "$(psql_q "SELECT count(*) FROM public.sec_ctl_spy_$S")" 0 "and none of the caller's types took part"

# 14: an operator = (uuid, uuid) shadowing chain_cleanup's lookups.
psql_q "UPDATE chainexec.universal_transactions SET finished_at = now() - interval '2 days', status = 'completed'
	WHERE id = '$O2'" >/dev/null
as "$ATTACKER" "$SHADOW SELECT chainexec.chain_cleanup('1 day')" >/dev/null 2>&1
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE id = '$O2'")" 1 \
	"chain_cleanup with shadowed operators does not delete another role's executions"

# 15-20: a step that controls its own execution fails (55000) instead of
# leaving it stuck; through the executors and through chain_run.
for what in cancel pause rollback; do
	case $what in
		cancel) call="chainexec.chain_cancel({chain.execution_id}::uuid)" ;;
		pause) call="chainexec.chain_pause({chain.execution_id}::uuid)" ;;
		rollback) call="chainexec.chain_rollback({chain.execution_id}::uuid)" ;;
	esac
	as "$VICTIM" "SELECT chainexec.chain_define(\$d\${\"id\": \"sec-ctl-self$what-$S\", \"steps\": [
		{\"id\": 1, \"name\": \"self\", \"type\": \"sql\", \"sql\": \"SELECT $call AS r\"},
		{\"id\": 2, \"name\": \"after\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS after\"}]}\$d\$, true)" >/dev/null
	E=$(as "$VICTIM" "SELECT chainexec.chain_execute('sec-ctl-self$what-$S')")
	got=$(as "$VICTIM" "SELECT chainexec.chain_wait('$E', 20000)->>'status'")
	err=$(psql_q "SELECT error->>'sqlstate' FROM chainexec.universal_transaction_lines WHERE transaction_id = '$E' AND step_id = 1")
	is "$got|$err" "failed|55000" "a step that calls chain_$what on its own execution fails the step (55000); the execution ends"
done
got=$(as "$VICTIM" "CALL chainexec.chain_run('sec-ctl-selfcancel-$S', '{}')" | head -n 1)
like "$got" '"status": "failed"' "in a session (chain_run) too, a self-cancel fails the step and the run ends"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions t WHERE chain_id LIKE 'sec-ctl-self%-$S'
	AND (status NOT IN ('failed', 'completed', 'cancelled', 'compensated', 'timeout')
	     OR EXISTS (SELECT FROM chainexec.universal_transaction_lines l WHERE l.transaction_id = t.id
	                AND l.status IN ('pending', 'ready', 'waiting')))")" 0 \
	"no execution whose step controlled itself is left stuck or with an open line"

# 21-22: a step of one role's execution cannot reach another role's.
as "$ATTACKER" "SELECT chainexec.chain_define(\$d\${\"id\": \"sec-ctl-reach-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"reach\", \"type\": \"sql\", \"sql\": \"SELECT chainexec.chain_step_complete('$V'::uuid, 1, '{{}}') AS r\"}]}\$d\$, true)" >/dev/null
R=$(as "$ATTACKER" "SELECT chainexec.chain_execute('sec-ctl-reach-$S')")
is "$(as "$ATTACKER" "SELECT chainexec.chain_wait('$R', 20000)->>'status'")|$(line_status "$V")" "failed|waiting" \
	"a step of the attacker's (run by an executor, a superuser session) cannot approve the victim's step"
is "$(psql_q "SELECT error->>'sqlstate' FROM chainexec.universal_transaction_lines WHERE transaction_id = '$R'")" 42704 \
	"it sees the victim's execution as not existing"

# 23-26: nor an execution of its family of sub-chains: a child cancelling its
# parent, a grandchild skipping or retrying its grandparent's waiting step,
# a parent's step cancelling its running child.
# family CHILD PARENT: chain PARENT's one step runs chain CHILD with input p,
# the root's id ({p} if PARENT is itself a child, else its own id).
family()
{
	as "$ATTACKER" "SELECT chainexec.chain_define(\$d\${\"id\": \"$2\", \"steps\": [
		{\"id\": 1, \"name\": \"down\", \"type\": \"chain\", \"chain\": \"$1\", \"input\": {\"p\": \"$3\"}}]}\$d\$, true)" >/dev/null
}
for verb in cancel skip_step retry_step; do
	case $verb in cancel) arg= ;; *) arg=", 1" ;; esac
	as "$ATTACKER" "SELECT chainexec.chain_define(\$d\${\"id\": \"sec-ctl-kid-$verb-$S\", \"steps\": [
		{\"id\": 1, \"name\": \"up\", \"type\": \"sql\", \"sql\": \"SELECT chainexec.chain_$verb({p}::uuid$arg) AS r\"}]}\$d\$, true)" >/dev/null
done
family "sec-ctl-kid-cancel-$S" "sec-ctl-top1-$S" "{chain.execution_id}"
family "sec-ctl-kid-skip_step-$S" "sec-ctl-mid2-$S" "{p}"
family "sec-ctl-mid2-$S" "sec-ctl-top2-$S" "{chain.execution_id}"
family "sec-ctl-kid-retry_step-$S" "sec-ctl-mid3-$S" "{p}"
family "sec-ctl-mid3-$S" "sec-ctl-top3-$S" "{chain.execution_id}"
as "$ATTACKER" "CREATE FUNCTION sec_ctl_$S.cancel_child(p uuid) RETURNS boolean LANGUAGE plpgsql AS \$f\$
	BEGIN
		PERFORM pg_sleep(0.5);
		RETURN chainexec.chain_cancel((SELECT execution_id FROM chainexec.executions WHERE parent_execution_id = p));
	END \$f\$;
	SELECT chainexec.chain_define(\$d\${\"id\": \"sec-ctl-nap-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"nap\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(2) IS NULL AS slept\"}]}\$d\$, true),
	chainexec.chain_define(\$d\${\"id\": \"sec-ctl-down-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"child\", \"type\": \"chain\", \"chain\": \"sec-ctl-nap-$S\", \"parallelExecution\": true},
	{\"id\": 2, \"name\": \"cut\", \"type\": \"sql\", \"parallelExecution\": true,
	 \"sql\": \"SELECT sec_ctl_$S.cancel_child({chain.execution_id}::uuid) AS r\"}]}\$d\$, true)" >/dev/null
F1=$(as "$ATTACKER" "SELECT chainexec.chain_execute('sec-ctl-top1-$S')")
F2=$(as "$ATTACKER" "SELECT chainexec.chain_execute('sec-ctl-top2-$S')")
F3=$(as "$ATTACKER" "SELECT chainexec.chain_execute('sec-ctl-top3-$S')")
F4=$(as "$ATTACKER" "SELECT chainexec.chain_execute('sec-ctl-down-$S')")
got=""
for f in "$F1" "$F2" "$F3" "$F4"; do
	got="$got $(as "$ATTACKER" "SELECT chainexec.chain_wait('$f', 20000)->>'status'")"
done
is "$got" " failed failed failed failed" "a step that changes a parent, grandparent or child of its execution fails its family"
is "$(psql_q "WITH RECURSIVE f(id) AS (SELECT id FROM chainexec.universal_transactions WHERE id IN ('$F1', '$F2', '$F3')
	UNION ALL SELECT t.id FROM chainexec.universal_transactions t JOIN f ON t.parent_id = f.id)
	SELECT string_agg(DISTINCT l.error->>'sqlstate', ',') FROM f JOIN chainexec.universal_transaction_lines l
	ON l.transaction_id = f.id AND l.step_name = 'up'")" 55000 \
	"the child's or grandchild's step fails with 55000 (cancel, skip_step, retry_step)"
is "$(psql_q "SELECT error->>'sqlstate' FROM chainexec.universal_transaction_lines WHERE transaction_id = '$F4' AND step_id = 2")" 55000 \
	"the parent's step that cancels its child fails with 55000"
is "$(psql_q "WITH RECURSIVE f(id) AS (SELECT id FROM chainexec.universal_transactions WHERE id IN ('$F1', '$F2', '$F3', '$F4')
	UNION ALL SELECT t.id FROM chainexec.universal_transactions t JOIN f ON t.parent_id = f.id)
	SELECT count(*) FROM f JOIN chainexec.universal_transactions t USING (id)
	WHERE t.status NOT IN ('failed', 'cancelled') OR EXISTS (SELECT FROM chainexec.universal_transaction_lines l
	WHERE l.transaction_id = t.id AND l.status IN ('pending', 'ready', 'running', 'waiting'))")" 0 \
	"no execution of those families is left live or with an open step"

# 27: nor after a transition nested in the step (chainexec._run_one, for
# its owner's EXECUTE only: here a superuser's chain) has ended.
psql_q "CREATE FUNCTION public.sec_ctl_nested_$S(p uuid) RETURNS boolean LANGUAGE plpgsql AS \$f\$
	BEGIN
		PERFORM chainexec._run_one(chainexec.chain_execute('sec-ctl-nap-$S'));
		RETURN chainexec.chain_cancel(p);
	END \$f\$;
	SELECT chainexec.chain_define(\$d\${\"id\": \"sec-ctl-nkid-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"up\", \"type\": \"sql\", \"sql\": \"SELECT public.sec_ctl_nested_$S({p}::uuid) AS r\"}]}\$d\$, true),
	chainexec.chain_define(\$d\${\"id\": \"sec-ctl-ntop-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"down\", \"type\": \"chain\", \"chain\": \"sec-ctl-nkid-$S\", \"input\": {\"p\": \"{chain.execution_id}\"}}]}\$d\$, true)" >/dev/null
F5=$(psql_q "SELECT chainexec.chain_execute('sec-ctl-ntop-$S')")
is "$(psql_q "SELECT chainexec.chain_wait('$F5', 20000)->>'status'")|$(psql_q "SELECT l.error->>'sqlstate'
	FROM chainexec.universal_transactions t JOIN chainexec.universal_transaction_lines l ON l.transaction_id = t.id
	WHERE t.parent_id = '$F5'")" "failed|55000" \
	"a step that ran a nested transition still may not cancel its parent (55000)"

# 28-29: the owner still controls its own execution, after all of this.
is "$(as "$VICTIM" "SELECT chainexec.chain_step_complete('$V', 1, '{\"approved\": true}')")" t "the owner approves its step"
is "$(as "$VICTIM" "SELECT chainexec.chain_wait('$V', 20000)->>'status'")" completed "and its execution completes"

done_testing; exit $?
