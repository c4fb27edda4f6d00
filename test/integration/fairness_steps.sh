#!/usr/bin/env bash
# test/integration/fairness_steps.sh: an organization's backlog of
# multi-step executions does not hold up another organization's ready
# work by more than about one transition per executor (SPEC section 9,
# flow control: "executors serve organizations in turn").
#
# Organization A starts 1,000 executions of a 10-step chain: an executor
# that has just moved one of them on claims its next step directly (a
# follow-on).  While they run, organization B starts one single-step
# execution at a time, five times.  For each, the steps of A that started
# after B's execution was committed and before B's step started are
# counted: a follow-on must not pass over B's ready line.
#
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
ORG_A=aaaaaaaa-1111-4000-8000-00000000$(printf '%04d' $((S % 10000)))
ORG_B=bbbbbbbb-1111-4000-8000-00000000$(printf '%04d' $((S % 10000)))
CH=fairsteps-$S
NA=1000
TRIALS=5
MAX_PASSED=3

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE '$CH%';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE '$CH%';
	EOF
}
trap cleanup EXIT

# in ORG SQL...: the statements, one by one, as the organization
in_org()
{
	local org=$1

	shift
	local args=(-c "SET chainexec.organization_id = '$org'")
	for q in "$@"; do
		args+=(-c "$q")
	done
	psql -X -A -t -q -v ON_ERROR_STOP=1 "${args[@]}"
}

plan 4

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
TEN="{\"id\": \"$CH\", \"steps\": [$(for i in $(seq 1 10); do
	printf '%s{"id": %d, "name": "s%d", "type": "sql", "sql": "SELECT %d AS v"}' "$([ "$i" -gt 1 ] && echo ,)" "$i" "$i" "$i"
done)]}"
ONE="{\"id\": \"$CH-one\", \"steps\": [{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS v\"}]}"
in_org "$ORG_A" "SELECT chainexec.chain_define('$TEN', true)" >/dev/null || bail_out "could not define A's chain"
in_org "$ORG_B" "SELECT chainexec.chain_define('$ONE', true)" >/dev/null || bail_out "could not define B's chain"

in_org "$ORG_A" "SELECT count(chainexec.chain_execute('$CH', '{}')) FROM generate_series(1, $NA)" >/dev/null ||
	bail_out "could not start A's executions"
poll_query_until "SELECT count(*) > 50 FROM chainexec.universal_transaction_lines
	WHERE organization_id = '$ORG_A' AND status = 'completed'" t 30 ||
	bail_out "A's executions did not start"

worst=0
counts=
for t in $(seq 1 "$TRIALS"); do
	# the second statement runs after the first committed: B's line is ready by then
	out=$(in_org "$ORG_B" "SELECT chainexec.chain_execute('$CH-one', '{}')" "SELECT clock_timestamp()") ||
		bail_out "could not start B's execution"
	id=$(sed -n 1p <<<"$out")
	ready_at=$(sed -n 2p <<<"$out")
	st=$(in_org "$ORG_B" "SELECT chainexec.chain_wait('$id', 60000)->>'status'")
	[ "$st" = completed ] || bail_out "B's execution $id: $st"
	n=$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines a
		WHERE a.organization_id = '$ORG_A' AND a.started_at > '$ready_at'
		  AND a.started_at < (SELECT started_at FROM chainexec.universal_transaction_lines
							  WHERE organization_id = '$ORG_B' AND transaction_id = '$id')")
	counts+="$n "
	[ "$n" -gt "$worst" ] && worst=$n
	sleep 0.1
done
left=$(psql_q "SELECT count(*) FROM chainexec.universal_transactions
	WHERE organization_id = '$ORG_A' AND chain_id = '$CH' AND finished_at IS NULL")
diag "steps of A started while each of B's executions waited: $counts(A's executions still running: $left)"
check "A's backlog was still running when B's last execution ended" test "$left" -gt 0
check "no more than $MAX_PASSED of A's steps started while B's ready step waited (worst: $worst)" \
	test "$worst" -le "$MAX_PASSED"

# A's executions all complete, each step once
poll_query_until "SELECT count(*) = 0 FROM chainexec.universal_transactions
	WHERE organization_id = '$ORG_A' AND chain_id = '$CH' AND finished_at IS NULL" t 240 ||
	diag "A's executions did not finish in time"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions
	WHERE organization_id = '$ORG_A' AND chain_id = '$CH' AND status = 'completed'")" "$NA" \
	"A's $NA executions completed"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines
	WHERE organization_id = '$ORG_A' AND (status <> 'completed' OR attempt <> 1)")" 0 \
	"each of A's steps ran once"
