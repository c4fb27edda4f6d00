#!/usr/bin/env bash
# test/security/redteam.sh: attacks found by trying the 0.2 security model
# afresh with LOGIN-only roles, one TAP line each (passes when the attack
# fails).
#
# - A pattern of inputSchema that glibc's uninterruptible regexec() runs for
#   minutes on a long subject held the backend (or a background executor
#   whose step calls chain_execute()) past statement_timeout and cancels.
# - Idempotency keys were shared by every role of an organization: a role
#   that used another role's key first (schedules' keys are predictable)
#   made that role's chain_execute return an execution it cannot see, and
#   learned the ids of others' executions.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
ATT=sec_rt_att_$S
VIC=sec_rt_vic_$S

# as ROLE [psql args]: psql as a LOGIN role, tuples only, stop on error.
as()
{
	local role=$1
	shift
	psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$role" "$@"
}

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		SET chainexec.internal = on;
		DELETE FROM chainexec.universal_transaction_lines l USING chainexec.universal_transactions t
		 WHERE l.transaction_id = t.id AND t.owner::text IN ('$ATT', '$VIC');
		DELETE FROM chainexec.universal_transactions WHERE owner::text IN ('$ATT', '$VIC');
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'rt-%-$S';
		DROP OWNED BY $ATT, $VIC;
		DROP ROLE IF EXISTS $ATT;
		DROP ROLE IF EXISTS $VIC;
	EOF
}
trap cleanup EXIT

psql_q "CREATE ROLE $ATT LOGIN; CREATE ROLE $VIC LOGIN" >/dev/null

plan 10

# ---------------------------------------------------------------------------
# inputSchema patterns are matched by an engine that a cancel or a
# statement_timeout stops: "[ab]*a[ab]{250}c" over a million random a and b
# ran for minutes in glibc's regexec(), which nothing interrupts; four such
# branches take PostgreSQL's engine seconds.
as "$ATT" >/dev/null <<EOF
SELECT chainexec.chain_define('{"id": "rt-re-$S", "inputSchema": {"type": "object", "properties":
	{"s": {"type": "string", "pattern": "([ab]*a[ab]{250}c|[ab]*b[ab]{250}c|[ab]*a[ab]{249}c|[ab]*b[ab]{249}c)"}}},
	"steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1 AS x"}]}', true);
EOF
# The input (as long as chainexec.max_context_bytes lets it be) is made
# before the timeout is set, and the pattern's four branches take about 2.5 s
# to match it here, so the timeout falls inside the check on a machine
# several times as fast.
t0=$(date +%s)
out=$(as "$ATT" 2>&1 <<EOF
SELECT setseed(0.25);
SELECT string_agg(CASE WHEN random() < 0.5 THEN 'a' ELSE 'b' END, '') AS s FROM generate_series(1, 1000000) \gset
SET statement_timeout = '500ms';
SELECT chainexec.chain_execute('rt-re-$S', jsonb_build_object('s', :'s'));
EOF
)
t1=$(date +%s)
like "$out" 'canceling statement due to statement timeout' "statement_timeout stops an inputSchema pattern check"
took=$((t1 - t0))
if [ "$took" -le 10 ]; then
	ok "the pattern check stopped within 10 s (took $took s)"
else
	not_ok "the pattern check stopped within 10 s" "took $took s"
fi
is "$(as "$ATT" -c "SELECT chainexec.chain_validate('rt-re-$S', '{\"s\": \"xxab\"}')->>'valid',
	chainexec.chain_validate('rt-re-$S', jsonb_build_object('s', 'a' || repeat('b', 250) || 'c'))->>'valid'")" \
	"false|true" "the pattern still matches as before"

# ---------------------------------------------------------------------------
# Idempotency keys are each role's own.
as "$VIC" >/dev/null <<EOF
SELECT chainexec.chain_define('{"id": "rt-idem-$S",
	"steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1 AS x"}]}', true);
EOF
# execute_key ROLE KEY: chain_execute of rt-idem with that idempotency key.
execute_key()
{
	as "$1" -v key="$2" <<-EOF
		SELECT chainexec.chain_execute('rt-idem-$S', '{}', jsonb_build_object('idempotencyKey', :'key'));
	EOF
}
key="cron:invoices:2030-01-01T00:00"
att_first=$(execute_key "$ATT" "$key")
vic_then=$(execute_key "$VIC" "$key")
isnt "$vic_then" "$att_first" "another role's earlier call with the same key does not take the key away"
is "$(as "$VIC" -c "SELECT owner::text FROM chainexec.universal_transactions WHERE id = '$vic_then'")" "$VIC" \
	"the call returns an execution of the caller's own"
vic_key=$(execute_key "$VIC" vic-only)
isnt "$(execute_key "$ATT" vic-only)" "$vic_key" "a role that guesses another role's key does not learn its execution id"
is "$(execute_key "$VIC" vic-only)" "$vic_key" "a second call by the same role still returns its first execution"

# ---------------------------------------------------------------------------
# A template stops rendering at chainexec.max_context_bytes: 2,000
# placeholders over a 600 kB variable expanded to more than a gigabyte in
# the executor before the size was checked (and failed with XX000 from the
# allocator).  An external step's rendered input is bounded the same way.
# outcome ROLE CHAIN-ID [INPUT-SQL]: run it (input: an SQL expression of
# type jsonb), print status|failure_type|sqlstate.
outcome()
{
	local e
	e=$(as "$1" -c "SELECT chainexec.chain_execute('$2', ${3:-'{}'::jsonb})")
	as "$1" -c "SELECT chainexec.chain_wait('$e', 60000)" >/dev/null 2>&1
	psql_q "SELECT status || '|' || coalesce(error->>'failure_type', '') || '|' || coalesce(error->>'sqlstate', '')
	        FROM chainexec.universal_transactions WHERE id = '$e'"
}
big="jsonb_build_object('x', repeat('a', 600000))"
many=$(printf '{x}%.0s' $(seq 1 2000))
as "$ATT" -v many="$many" >/dev/null <<EOF
SELECT chainexec.chain_define(jsonb_build_object('id', 'rt-tpl-$S', 'steps', jsonb_build_array(
	jsonb_build_object('id', 1, 'name', 'a', 'type', 'template', 'template', :'many',
	                   'retryConfig', jsonb_build_object('maxRetries', 0)))), true);
SELECT chainexec.chain_define(jsonb_build_object('id', 'rt-ext-$S', 'steps', jsonb_build_array(
	jsonb_build_object('id', 1, 'name', 'a', 'type', 'external', 'inputTemplate', :'many', 'timeoutMs', 60000,
	                   'retryConfig', jsonb_build_object('maxRetries', 0)))), true);
EOF
is "$(outcome "$ATT" "rt-tpl-$S" "$big")" "failed|validation_failed|54000" \
	"a template step that would expand past max_context_bytes fails with 54000"
is "$(outcome "$ATT" "rt-ext-$S" "$big")" "failed|validation_failed|54000" \
	"an external step whose input would expand past max_context_bytes fails with 54000"
is "$(outcome "$ATT" "rt-tpl-$S" "'{\"x\": \"b\"}'")" "completed||" "the same template over a small variable renders"

done_testing
