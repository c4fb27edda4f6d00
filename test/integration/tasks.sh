#!/usr/bin/env bash
# test/integration/tasks.sh: people in the loop.  An external step with
# requiredRoles ["finance", "head"] and approvalThreshold 2, with real
# LOGIN roles: a third role is refused (42501, the hint names the roles)
# and sees nothing in chainexec.tasks; a finance member's approval leaves
# the step waiting, a head's completes it (outputs merged in call order,
# each approval recorded with role and time); a rejection fails it; the
# approvers never see the execution itself except through tasks.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
OWNER=tk_owner_$S
FIN=tk_finance_$S
HEAD=tk_head_$S
ALICE=tk_alice_$S			# a member of finance
BOB=tk_bob_$S				# a member of head
CAROL=tk_carol_$S			# a member of finance too
THIRD=tk_third_$S			# a member of neither
ADMIN=tk_admin_$S			# a member of chainexec_admin
CH=tk-approve-$S
CH1=tk-single-$S
ORG_B=cccccccc-0000-4000-8000-00000000$(printf '%04d' $((S % 10000)))

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'tk-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'tk-%-$S';
		RESET chainexec.internal;
		DROP OWNED BY $OWNER, $ALICE, $BOB, $CAROL, $THIRD, $ADMIN;
		DROP ROLE IF EXISTS $OWNER, $ALICE, $BOB, $CAROL, $THIRD, $ADMIN, $FIN, $HEAD;
	EOF
}
trap cleanup EXIT

# as ROLE SQL: run SQL as the LOGIN role; tuples only; fails on error.
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

# hint ROLE SQL: the HINT of SQL's error as ROLE.
hint()
{
	psql -X -A -t -q -U "$1" -v ON_ERROR_STOP=1 -c "$2" 2>&1 | sed -n 's/^HINT:  //p' | head -n 1
}

line_status()
{
	psql_q "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND step_id = ${2:-1} ORDER BY line_number DESC LIMIT 1"
}

exec_status()
{
	psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$1'"
}

plan 34

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "setup failed"
	CREATE ROLE $OWNER LOGIN;
	CREATE ROLE $FIN NOLOGIN;
	CREATE ROLE $HEAD NOLOGIN;
	CREATE ROLE $ALICE LOGIN IN ROLE $FIN;
	CREATE ROLE $CAROL LOGIN IN ROLE $FIN;
	CREATE ROLE $BOB LOGIN IN ROLE $HEAD;
	CREATE ROLE $THIRD LOGIN;
	CREATE ROLE $ADMIN LOGIN IN ROLE chainexec_admin;
EOF

# The owner's chain: an approval by finance and head, then the booking.
as "$OWNER" "SELECT chainexec.chain_define('{\"id\": \"$CH\", \"steps\": [
	{\"id\": 1, \"name\": \"approve\", \"type\": \"external\",
	 \"inputTemplate\": \"pay {amount} to {payee}\",
	 \"requiredRoles\": [\"$FIN\", \"$HEAD\"], \"approvalThreshold\": 2,
	 \"outputVariables\": [\"approved\", \"note\", \"by_finance\", \"by_head\"]},
	{\"id\": 2, \"name\": \"book\", \"type\": \"sql\", \"sql\": \"SELECT true AS booked\"}]}', true)" >/dev/null ||
	bail_out "the owner cannot define the approval chain"
as "$OWNER" "SELECT chainexec.chain_define('{\"id\": \"$CH1\", \"steps\": [
	{\"id\": 1, \"name\": \"approve\", \"type\": \"external\", \"requiredRoles\": [\"$FIN\"],
	 \"outputVariables\": [\"approved\"]},
	{\"id\": 2, \"name\": \"book\", \"type\": \"sql\", \"sql\": \"SELECT true AS booked\"}]}', true)" >/dev/null ||
	bail_out "the owner cannot define the single-approval chain"

# 1-4: definitions are checked
is "$(attempt "$OWNER" "SELECT chainexec.chain_define('{\"id\": \"tk-bad1-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"s\", \"type\": \"sql\", \"sql\": \"SELECT 1\", \"requiredRoles\": [\"$FIN\"]}]}')")" 42P17 \
	"requiredRoles on a sql step is refused"
is "$(attempt "$OWNER" "SELECT chainexec.chain_define('{\"id\": \"tk-bad2-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"s\", \"type\": \"external\", \"requiredRoles\": [\"$FIN\"], \"approvalThreshold\": 0}]}')")" 22023 \
	"approvalThreshold 0 is refused"
is "$(attempt "$OWNER" "SELECT chainexec.chain_define('{\"id\": \"tk-bad3-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"s\", \"type\": \"external\", \"approvalThreshold\": 2}]}')")" 42P17 \
	"approvalThreshold without requiredRoles is refused"
is "$(attempt "$OWNER" "SELECT chainexec.chain_define('{\"id\": \"tk-bad4-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"s\", \"type\": \"external\", \"requiredRoles\": [\"tk_nobody_$S\"]}]}')")" 42704 \
	"a role that does not exist is refused"

X=$(as "$OWNER" "SELECT chainexec.chain_execute('$CH', '{\"amount\": 120, \"payee\": \"acme\"}')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$X' AND step_id = 1" waiting 30 ||
	bail_out "the execution never waits for its approval"

# 5-8: the third role
is "$(attempt "$THIRD" "SELECT chainexec.chain_step_complete('$X', 1, '{\"approved\": true}')")" 42501 \
	"a role that is a member of neither required role cannot approve"
like "$(hint "$THIRD" "SELECT chainexec.chain_step_complete('$X', 1, '{\"approved\": true}')")" "$FIN.*$HEAD" \
	"the hint names the required roles"
is "$(attempt "$THIRD" "SELECT chainexec.chain_step_fail('$X', 1, 'rejected')")" 42501 \
	"a role that is a member of neither required role cannot reject"
is "$(as "$THIRD" "SELECT count(*) FROM chainexec.tasks")" 0 "the third role sees nothing in tasks"

# 9-10: the owner is no approver either
is "$(attempt "$OWNER" "SELECT chainexec.chain_step_complete('$X', 1, '{\"approved\": true}')")" 42501 \
	"the owner, a member of neither required role, cannot approve"
is "$(as "$OWNER" "SELECT count(*) FROM chainexec.tasks")" 0 "the owner has no task"

# 11-15: finance sees the task, and nothing else of the execution
is "$(as "$ALICE" "SELECT execution_id || '|' || chain_id || '|' || step_id || '|' || step_name || '|' || input || '|' || approvals || '|' || approvals_needed || '|' || (requested_at IS NOT NULL) || '|' || (due_at IS NULL) FROM chainexec.tasks")" \
	"$X|$CH|1|approve|pay 120 to acme|0|2|true|true" "a finance member sees the task: execution, chain, step, rendered input, requested_at, approvals so far and needed"
is "$(as "$ALICE" "SELECT count(*) FROM chainexec.universal_transactions WHERE id = '$X'")" 0 \
	"the finance member does not see the execution"
is "$(as "$ALICE" "SELECT count(*) FROM chainexec.step_runs WHERE execution_id = '$X'")" 0 \
	"the finance member does not see its lines"
is "$(attempt "$ALICE" "SELECT chainexec.chain_status('$X')")" 42704 \
	"the finance member cannot read its status"
is "$(attempt "$ALICE" "SELECT chainexec.chain_cancel('$X')")" 42704 \
	"the finance member cannot cancel it"

# 16-20: one finance approval leaves it waiting
is "$(attempt "$ALICE" "SELECT chainexec.chain_step_complete('$X', 1, '{\"approved\": true, \"note\": \"finance ok\", \"by_finance\": \"$ALICE\"}')")" ok:t \
	"the finance member approves"
is "$(line_status "$X")" waiting "one approval of two leaves the step waiting"
is "$(as "$ALICE" "SELECT count(*) FROM chainexec.tasks")" 0 "the finance member has decided: the task leaves its list"
is "$(attempt "$ALICE" "SELECT chainexec.chain_step_complete('$X', 1, '{\"approved\": true}')")" 55000 \
	"the same role cannot approve twice"
is "$(attempt "$CAROL" "SELECT approvals || '/' || approvals_needed FROM chainexec.tasks WHERE execution_id = '$X'")" ok:1/2 \
	"another finance member sees one approval of two"

# 21-26: head's approval completes it, outputs merged in call order
is "$(attempt "$BOB" "SELECT chainexec.chain_step_complete('$X', 1, '{\"approved\": true, \"note\": \"head ok\", \"by_head\": \"$BOB\"}')")" ok:t \
	"the head member approves"
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$X'" completed 30
is "$(exec_status "$X")" completed "the second approval completes the step and the execution goes on"
is "$(psql_q "SELECT (context->>'note') || '|' || (context->>'by_finance') || '|' || (context->>'by_head') || '|' || (context->>'booked') FROM chainexec.universal_transactions WHERE id = '$X'")" \
	"head ok|$ALICE|$BOB|true" "outputs merged in call order (the later approval's note wins)"
is "$(psql_q "SELECT string_agg(role::text || ':' || decision, ',' ORDER BY seq) FROM chainexec.step_approvals WHERE transaction_id = '$X'")" \
	"$ALICE:approved,$BOB:approved" "each approval is recorded with its role, in call order"
is "$(psql_q "SELECT count(*) FROM chainexec.step_approvals WHERE transaction_id = '$X' AND decided_at IS NOT NULL AND output ? 'note'")" 2 \
	"each approval keeps its time and output"
is "$(as "$OWNER" "SELECT count(*) FROM chainexec.step_approvals WHERE transaction_id = '$X'")" 2 \
	"the owner sees the approvals of its execution"

# 27-29: one rejection fails it
Y=$(as "$OWNER" "SELECT chainexec.chain_execute('$CH', '{\"amount\": 5, \"payee\": \"x\"}')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$Y' AND step_id = 1" waiting 30
as "$ALICE" "SELECT chainexec.chain_step_complete('$Y', 1, '{\"approved\": true}')" >/dev/null
is "$(attempt "$BOB" "SELECT chainexec.chain_step_fail('$Y', 1, 'rejected', 'too much')")" ok:t "the head member rejects"
poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$Y'" failed 30
is "$(exec_status "$Y")|$(line_status "$Y")" "failed|failed" "one rejection fails the step and the execution"
is "$(psql_q "SELECT role::text || ':' || decision || ':' || message FROM chainexec.step_approvals WHERE transaction_id = '$Y' ORDER BY seq DESC LIMIT 1")" \
	"$BOB:rejected:too much" "the rejection is recorded with its role and message"

# 30-31: threshold 1 (default), and chainexec_admin may decide
Z=$(as "$OWNER" "SELECT chainexec.chain_execute('$CH1')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$Z' AND step_id = 1" waiting 30
is "$(attempt "$CAROL" "SELECT chainexec.chain_step_complete('$Z', 1, '{\"approved\": true}')")|$(line_status "$Z")" "ok:t|completed" \
	"with the default threshold one approval completes the step"
W=$(as "$OWNER" "SELECT chainexec.chain_execute('$CH1')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$W' AND step_id = 1" waiting 30
is "$(attempt "$ADMIN" "SELECT chainexec.chain_step_complete('$W', 1, '{\"approved\": true}')")|$(line_status "$W")" "ok:t|completed" \
	"a member of chainexec_admin may decide"

# 32-34: another organization sees nothing of it
V=$(as "$OWNER" "SELECT chainexec.chain_execute('$CH1')")
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$V' AND step_id = 1" waiting 30
is "$(as "$ALICE" "SET chainexec.organization_id = '$ORG_B'; SELECT count(*) FROM chainexec.tasks")" 0 \
	"a finance member in another organization sees no task"
is "$(attempt "$ALICE" "SET chainexec.organization_id = '$ORG_B'; SELECT chainexec.chain_step_complete('$V', 1, '{}')")" 42704 \
	"a finance member in another organization cannot approve (the execution does not exist there)"
is "$(line_status "$V")" waiting "the task still waits"
