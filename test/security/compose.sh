#!/usr/bin/env bash
# test/security/compose.sh: attacks through composition (steps of type
# "chain", forEach, repeatUntil) by LOGIN-only roles.
#
# A child execution runs as its parent's owner, never as the role that
# defined the child chain; it is started as chain_execute would start it
# for that owner, in the parent's organization only, from an active
# version only; the parent link cannot be forged; nesting is bounded by a
# setting only a superuser changes; a chain step's result cannot be
# forged with chain_step_complete; another role's children, iterations
# and child results stay invisible and out of reach; values passed to a
# child are bound, never spliced.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
VICTIM=sec_cmp_victim_$S
ATTACKER=sec_cmp_attacker_$S
ORG_B=bbbbbbbb-0000-4000-8000-00000001$(printf '%04d' $((S % 10000)))

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'sec-cmp-%$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'sec-cmp-%$S';
		RESET chainexec.internal;
		DROP TABLE IF EXISTS public.sec_cmp_secret_$S, public.sec_cmp_spy_$S;
		DROP OWNED BY $VICTIM, $ATTACKER;
		DROP ROLE IF EXISTS $VICTIM, $ATTACKER;
	EOF
}
trap cleanup EXIT

as()
{
	local role=$1

	shift
	psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$role" -c "$1"
}

# attempt ROLE SQL: the SQLSTATE of its error, or "ok:<result>".
attempt()
{
	local role=$1 sql=$2

	psql -X -A -t -q -U "$role" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$sql" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p; t; s/^\(.*\)$/ok:\1/p' | head -n 1
}

# run ROLE CHAIN [INPUT]: chain_execute as ROLE, wait; prints the execution id.
run()
{
	local id
	id=$(as "$1" "SELECT chainexec.chain_execute('$2', '${3:-{\}}')") || return 1
	as "$1" "SELECT chainexec.chain_wait('$id', 30000)" >/dev/null
	echo "$id"
}

plan 16

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "setup failed"
	CREATE ROLE $VICTIM LOGIN;
	CREATE ROLE $ATTACKER LOGIN;
	CREATE TABLE public.sec_cmp_secret_$S (v text);
	INSERT INTO public.sec_cmp_secret_$S VALUES ('secret');
	GRANT SELECT, INSERT, DELETE ON public.sec_cmp_secret_$S TO $VICTIM;
	CREATE TABLE public.sec_cmp_spy_$S (who text, what text);
	GRANT INSERT, SELECT ON public.sec_cmp_spy_$S TO PUBLIC;
EOF

# The victim's chains: one writes into a table only the victim may write,
# one says who runs it, one is only a draft.
as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"sec-cmp-wipe-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"wipe\", \"type\": \"sql\", \"sql\": \"DELETE FROM public.sec_cmp_secret_$S\"}]}', true)" >/dev/null &&
as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"sec-cmp-who-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"who\", \"type\": \"sql\", \"sql\": \"SELECT current_user::text AS who, session_user::text AS sess\", \"outputVariables\": [\"who\", \"sess\"]}]}', true)" >/dev/null &&
as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"sec-cmp-draft-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"spy\", \"type\": \"sql\", \"sql\": \"INSERT INTO public.sec_cmp_spy_$S VALUES (current_user, ''draft ran'')\"}]}')" >/dev/null &&
as "$VICTIM" "SET chainexec.organization_id = '$ORG_B'; SELECT chainexec.chain_define('{\"id\": \"sec-cmp-orgb-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"spy\", \"type\": \"sql\", \"sql\": \"INSERT INTO public.sec_cmp_spy_$S VALUES (current_user, ''org b ran'')\"}]}', true)" >/dev/null ||
	bail_out "the victim cannot define its chains"

# parent ID CHILD [EXTRA]: the attacker's chain whose one step runs CHILD.
parent()
{
	as "$ATTACKER" "SELECT chainexec.chain_define('{\"id\": \"$1\", \"steps\": [
		{\"id\": 1, \"name\": \"sub\", \"type\": \"chain\", \"chain\": \"$2\"${3:+, $3}}]}', true)" >/dev/null
}

# 1-3: a child runs as the parent's owner, not as the child chain's definer.
parent "sec-cmp-p-wipe-$S" "sec-cmp-wipe-$S"
id=$(run "$ATTACKER" "sec-cmp-p-wipe-$S")
is "$(psql_q "SELECT count(*) FROM public.sec_cmp_secret_$S")" 1 \
	"a child of the victim's chain started by the attacker cannot write what only the victim may (row still there)"
is "$(psql_q "SELECT string_agg(owner::text, ',') FROM chainexec.universal_transactions WHERE parent_id = '$id'")" "$ATTACKER" \
	"the child is owned by the parent's owner"
is "$(psql_q "SELECT error->>'failure_type' FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_number = 1")" \
	permission_denied "the parent's step fails with the child's permission_denied"
parent "sec-cmp-p-who-$S" "sec-cmp-who-$S" '"outputVariables": ["who", "sess"]'
id=$(run "$ATTACKER" "sec-cmp-p-who-$S")
is "$(psql_q "SELECT (context->>'who') || ',' || (context->>'sess') FROM chainexec.universal_transactions WHERE id = '$id'")" \
	"$ATTACKER,$ATTACKER" "the child's steps see the parent's owner as current_user and session_user"

# 5-6: another organization's chain, a draft: never started.
parent "sec-cmp-p-orgb-$S" "sec-cmp-orgb-$S"
id=$(run "$ATTACKER" "sec-cmp-p-orgb-$S")
is "$(psql_q "SELECT (SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'sec-cmp-orgb-$S') || ' '
	|| (SELECT count(*) FROM public.sec_cmp_spy_$S) || ' ' || (SELECT error->>'failure_type' FROM chainexec.universal_transaction_lines
	WHERE transaction_id = '$id' AND line_number = 1)")" "0 0 resource_not_found" \
	"a chain step cannot reach another organization's chain (no child, nothing ran; resource_not_found)"
parent "sec-cmp-p-draft-$S" "sec-cmp-draft-$S"
id=$(run "$ATTACKER" "sec-cmp-p-draft-$S")
is "$(psql_q "SELECT (SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'sec-cmp-draft-$S') || ' '
	|| (SELECT count(*) FROM public.sec_cmp_spy_$S) || ' ' || (SELECT status FROM chainexec.universal_transactions WHERE id = '$id')")" \
	"0 0 failed" "a chain step cannot run a chain that has only a draft"

# 7-8: the depth bound is a superuser's setting.
is "$(attempt "$ATTACKER" "SET chainexec.max_chain_depth = 1000")" 42501 \
	"a LOGIN role cannot raise chainexec.max_chain_depth"
is "$(attempt "$ATTACKER" "ALTER ROLE $ATTACKER SET chainexec.max_chain_depth = 1000")" 42501 \
	"nor set it for itself"

# 9-10: the parent link cannot be forged.
V=$(as "$VICTIM" "SELECT chainexec.chain_execute('sec-cmp-who-$S')")
A=$(as "$ATTACKER" "SELECT chainexec.chain_execute('sec-cmp-p-who-$S')")
is "$(attempt "$ATTACKER" "UPDATE chainexec.universal_transactions SET parent_id = '$V', parent_line = 1 WHERE id = '$A'")" 42501 \
	"a role cannot write a parent link"
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_execute('sec-cmp-who-$S', '{}', '{\"parent\": \"$V\"}')")" 22023 \
	"chain_execute takes no parent from its options"

# 11-13: another role's children stay out of reach.
VP=$(as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"sec-cmp-vp-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"sub\", \"type\": \"chain\", \"chain\": \"sec-cmp-who-$S\", \"forEach\": \"{items}\"}]}', true)" >/dev/null;
	as "$VICTIM" "SELECT chainexec.chain_execute('sec-cmp-vp-$S', '{\"items\": [1, 2]}')")
as "$VICTIM" "SELECT chainexec.chain_wait('$VP', 30000)" >/dev/null
VC=$(psql_q "SELECT id FROM chainexec.universal_transactions WHERE parent_id = '$VP' LIMIT 1")
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_status('$VP')->'children'")" 42704 \
	"the attacker cannot list the victim's children"
is "$(attempt "$ATTACKER" "SELECT count(*) FROM chainexec.universal_transactions WHERE parent_id = '$VP'") $(attempt "$ATTACKER" "SELECT count(*) FROM chainexec.step_runs WHERE execution_id = '$VP'")" \
	"ok:0 ok:0" "nor read the victim's children or iteration lines"
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_cancel('$VC')")" 42704 "nor cancel the victim's child"

# 14: a chain step's result cannot be forged, even by the owner.
as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"sec-cmp-slow-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"nap\", \"type\": \"wait\", \"waitMs\": 600000}]}', true)" >/dev/null
parent "sec-cmp-p-slow-$S" "sec-cmp-slow-$S"
A=$(as "$ATTACKER" "SELECT chainexec.chain_execute('sec-cmp-p-slow-$S')")
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE parent_id = '$A' AND status = 'waiting'" 1 30 >/dev/null
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_step_complete('$A', 1, '{\"who\": \"forged\"}')")" 55000 \
	"chain_step_complete cannot stand in for a child's result"
as "$ATTACKER" "SELECT chainexec.chain_cancel('$A')" >/dev/null

# 15: values passed to a child are bound, never spliced.
as "$VICTIM" "SELECT chainexec.chain_define('{\"id\": \"sec-cmp-echo-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"echo\", \"type\": \"sql\", \"sql\": \"SELECT {x}::text AS echoed\", \"outputVariables\": [\"echoed\"]}]}', true)" >/dev/null
parent "sec-cmp-p-echo-$S" "sec-cmp-echo-$S" '"input": {"x": "{payload}"}, "outputVariables": ["echoed"]'
PAY="x''; DELETE FROM public.sec_cmp_secret_$S; --"
id=$(run "$ATTACKER" "sec-cmp-p-echo-$S" "{\"payload\": \"$PAY\"}")
is "$(psql_q "SELECT (context->>'echoed' = 'x''; DELETE FROM public.sec_cmp_secret_$S; --')::text || ' ' || (SELECT count(*) FROM public.sec_cmp_secret_$S)
	FROM chainexec.universal_transactions WHERE id = '$id'")" "true 1" \
	"a value handed to a child through \"input\" stays a value"

# 16: recursion by a LOGIN role stays bounded.
as "$ATTACKER" "SELECT chainexec.chain_define('{\"id\": \"sec-cmp-bomb-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"chain\", \"chain\": \"sec-cmp-bomb-$S\", \"forEach\": \"{items}\", \"input\": {\"items\": \"{items}\"}}]}', true)" >/dev/null
id=$(run "$ATTACKER" "sec-cmp-bomb-$S" '{"items": [1, 2]}')
poll_query_until "SELECT count(*) FILTER (WHERE finished_at IS NULL) FROM chainexec.universal_transactions WHERE chain_id = 'sec-cmp-bomb-$S'" 0 120 >/dev/null
is "$(psql_q "SELECT max((metadata->>'depth')::int) || ' ' || (count(*) <= 511)::text FROM chainexec.universal_transactions WHERE chain_id = 'sec-cmp-bomb-$S'")" \
	"8 true" "a self-starting forEach (a fork bomb) stops at depth 8 (at most 2^9 - 1 executions)"

done_testing
