#!/usr/bin/env bash
# test/security/flow.sh: attacks on tasks (requiredRoles) and limits by
# LOGIN-only roles.
#
# Only members of chainexec_admin set and drop limits (a limit throttles
# every role of the organization that names it); nobody else writes the
# limit tables, holds a limit's places or takes its tokens.  Limits of one
# organization do not throttle another's.  A task is seen and decided only
# by members of its required roles in its organization, and through tasks
# nobody sees more than the task: not the execution, not other steps, not
# others' approvals.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
VICTIM=sec_flow_victim_$S
ATTACKER=sec_flow_attacker_$S
ADMIN=sec_flow_admin_$S
FIN=sec_flow_fin_$S
APPROVER=sec_flow_approver_$S
ORG_B=dddddddd-0000-4000-8000-00000000$(printf '%04d' $((S % 10000)))
CH=sec-flow-$S
LIM=sec_api_$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'sec-flow%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'sec-flow%-$S';
		RESET chainexec.internal;
		DELETE FROM chainexec.flow_limits WHERE name = '$LIM';
		DROP SCHEMA IF EXISTS sec_flow_$S CASCADE;
		DROP TABLE IF EXISTS public.sec_flow_spy_$S;
		DROP OWNED BY $VICTIM, $ATTACKER, $ADMIN, $APPROVER;
		DROP ROLE IF EXISTS $VICTIM, $ATTACKER, $ADMIN, $APPROVER, $FIN;
	EOF
}
trap cleanup EXIT

as()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$1" -c "$2"
}

# attempt ROLE SQL: the SQLSTATE of SQL's error as ROLE, or ok:<result>.
attempt()
{
	psql -X -A -t -q -U "$1" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$2" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p; t; s/^\(.*\)$/ok:\1/p' | head -n 1
}

line_status()
{
	psql_q "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND step_id = ${2:-1} ORDER BY line_number DESC LIMIT 1"
}

plan 24

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "setup failed"
	CREATE ROLE $VICTIM LOGIN;
	CREATE ROLE $ATTACKER LOGIN;
	CREATE ROLE $ADMIN LOGIN IN ROLE chainexec_admin;
	CREATE ROLE $FIN NOLOGIN;
	CREATE ROLE $APPROVER LOGIN IN ROLE $FIN;
	CREATE SCHEMA sec_flow_$S AUTHORIZATION $ATTACKER;
	CREATE TABLE public.sec_flow_spy_$S (what text);
	GRANT INSERT, SELECT ON public.sec_flow_spy_$S TO PUBLIC;
EOF
as "$ADMIN" "SELECT chainexec.chain_set_limit('$LIM', max_concurrent => 1)" >/dev/null ||
	bail_out "chainexec_admin cannot set a limit"

# 1-9: limits are chainexec_admin's
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_set_limit('$LIM', max_concurrent => 10000)")" 42501 \
	"a plain role cannot change a limit"
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_set_limit('sec_new_$S', per_second => 0.001)")" 42501 \
	"a plain role cannot create a limit (to throttle others' steps)"
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_drop_limit('$LIM')")" 42501 \
	"a plain role cannot drop a limit"
is "$(attempt "$ATTACKER" "SELECT chainexec._chain_set_limit('$LIM', 10000, NULL, NULL, 'chainexec_admin'::regrole)")" 42501 \
	"a plain role cannot call the implementation with a forged caller"
is "$(attempt "$ATTACKER" "UPDATE chainexec.flow_limits SET max_concurrent = 10000 WHERE name = '$LIM'")" 42501 \
	"a plain role cannot write the limits table"
is "$(attempt "$ATTACKER" "BEGIN; SELECT count(*) FROM (SELECT FROM chainexec.flow_limit_slots FOR UPDATE) s; COMMIT")" 42501 \
	"a plain role cannot lock a limit's places (to exhaust it)"
is "$(attempt "$ATTACKER" "BEGIN; LOCK TABLE chainexec.flow_limit_slots IN ACCESS EXCLUSIVE MODE; COMMIT")" 42501 \
	"a plain role cannot lock the places table"
is "$(attempt "$ATTACKER" "SELECT chainexec._limit_take_token('00000000-0000-0000-0000-000000000000', '$LIM')")" 42501 \
	"a plain role cannot take a limit's tokens"
is "$(psql_q "SELECT max_concurrent FROM chainexec.flow_limits WHERE name = '$LIM'")" 1 "the limit is as the admin set it"

# 10-12: limits are per organization
is "$(as "$ATTACKER" "SET chainexec.organization_id = '$ORG_B'; SELECT count(*) FROM chainexec.limits WHERE name = '$LIM'")" 0 \
	"another organization does not see the limit"
as "$ADMIN" "SET chainexec.organization_id = '$ORG_B'; SELECT chainexec.chain_set_limit('$LIM', max_concurrent => 1)" >/dev/null
STEP="[{\"id\": 1, \"name\": \"call\", \"type\": \"sql\", \"limits\": [\"$LIM\"], \"sql\": \"SELECT pg_sleep({s}::float8)\", \"inputVariables\": [\"s\"]}]"
as "$ATTACKER" "SET chainexec.organization_id = '$ORG_B'; SELECT chainexec.chain_define('{\"id\": \"sec-flow-hog-$S\", \"steps\": $STEP}', true)" >/dev/null
as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"sec-flow-use-$S\", \"steps\": $STEP}', true)" >/dev/null
H=$(as "$ATTACKER" "SET chainexec.organization_id = '$ORG_B'; SELECT chainexec.chain_execute('sec-flow-hog-$S', '{\"s\": 6}')")
poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'chainexec: sec-flow-hog-$S/call%'" 1 30
U=$(as "$VICTIM" "SELECT chainexec.chain_execute('sec-flow-use-$S', '{\"s\": 0}')")
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$U'" completed 4
is "$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$U'")" completed \
	"a step holding another organization's limit of the same name does not hold up ours"
is "$(psql_q "SELECT finished_at IS NULL FROM chainexec.universal_transactions WHERE id = '$H'")" t \
	"while the other organization's step still holds its own"

# 13-24: tasks
as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"$CH\", \"steps\": [
	{\"id\": 1, \"name\": \"prepare\", \"type\": \"external\"},
	{\"id\": 2, \"name\": \"approve\", \"type\": \"external\", \"dependsOn\": [], \"parallelExecution\": true,
	 \"inputTemplate\": \"approve {what}\", \"requiredRoles\": [\"$FIN\"]}]}', true)" >/dev/null ||
	bail_out "the victim cannot define its chain"
X=$(as "$VICTIM" "SELECT chainexec.chain_execute('$CH', '{\"what\": \"the deal\", \"secret\": \"s3cr3t\"}')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$X' AND status = 'waiting'" 2 30 ||
	bail_out "the victim's steps never wait"
is "$(as "$ATTACKER" "SELECT count(*) FROM chainexec.tasks")" 0 "another role sees none of the victim's tasks"
as "$ATTACKER" "CREATE FUNCTION sec_flow_$S.spy(text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
	\$f\$ BEGIN INSERT INTO public.sec_flow_spy_$S VALUES (\$1); RETURN true; END \$f\$" >/dev/null
as "$ATTACKER" "SELECT count(*) FROM chainexec.tasks WHERE sec_flow_$S.spy(input)" >/dev/null
is "$(psql_q "SELECT count(*) FROM public.sec_flow_spy_$S")" 0 \
	"a cheap leaky function in a condition on tasks sees no row the view hides (security barrier)"
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_step_complete('$X', 2, '{}')")" 42501 \
	"another role cannot approve the victim's task"
is "$(as "$APPROVER" "SELECT count(*) || ':' || string_agg(input, '') FROM chainexec.tasks")" "1:approve the deal" \
	"the approver sees the task and its rendered input"
is "$(as "$APPROVER" "SELECT count(*) FROM chainexec.tasks t WHERE t::text LIKE '%s3cr3t%'")" 0 \
	"the task shows nothing of the execution's other variables"
is "$(attempt "$APPROVER" "SELECT chainexec.chain_step_complete('$X', 1, '{}')")" 42704 \
	"the approver cannot complete another step of the execution"
is "$(attempt "$APPROVER" "SELECT chainexec.chain_skip_step('$X', 2)")" 42704 \
	"the approver cannot skip the task (only complete or fail it)"
is "$(attempt "$APPROVER" "SET chainexec.organization_id = '$ORG_B'; SELECT chainexec.chain_step_complete('$X', 2, '{}')")" 42704 \
	"the approver cannot decide from another organization"
is "$(attempt "$ATTACKER" "INSERT INTO chainexec.step_approvals VALUES ('00000000-0000-0000-0000-000000000000', '$X', 2, 1, '$ATTACKER', 'approved', 1)")" 42501 \
	"nobody forges an approval"
SHADOW="SET search_path = sec_flow_$S, pg_catalog, chainexec, pg_temp;"
as "$ATTACKER" "CREATE FUNCTION sec_flow_$S.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
	CREATE FUNCTION sec_flow_$S.pg_has_role(name, name, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
	CREATE FUNCTION sec_flow_$S.current_organization() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'" >/dev/null
is "$(as "$ATTACKER" "$SHADOW SELECT count(*) FROM chainexec.tasks")" 0 \
	"shadowed pg_has_role and current_organization do not open tasks"
is "$(attempt "$APPROVER" "SELECT chainexec.chain_step_complete('$X', 2, '{\"approved\": true}')")" ok:t \
	"the approver decides"
is "$(as "$ATTACKER" "SELECT count(*) FROM chainexec.step_approvals WHERE transaction_id = '$X'")" 0 \
	"another role sees no approval of the victim's execution"
