#!/usr/bin/env bash
# test/integration/fairness.sh: executors serve organizations in turn.
#
# Organization A starts 5,000 executions; then organization B starts 20.
# B's executions all end while A's backlog is still far from done (without
# turns they would wait behind all of A's).  B's median completion time is
# printed next to its time on an idle system (measured first), not
# asserted on a timer.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: slow timeout=600
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
ORG_A=aaaaaaaa-0000-4000-8000-00000000$(printf '%04d' $((S % 10000)))
ORG_B=bbbbbbbb-0000-4000-8000-00000000$(printf '%04d' $((S % 10000)))
CH=fair-$S
NA=5000
NB=20

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CH';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CH';
	EOF
}
trap cleanup EXIT

# in ORG SQL
in_org()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -c "SET chainexec.organization_id = '$1'" -c "$2"
}

DEF="{\"id\": \"$CH\", \"steps\": [{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS x\"}]}"

plan 5

for org in "$ORG_A" "$ORG_B"; do
	in_org "$org" "SELECT chainexec.chain_define('$DEF', true)" >/dev/null || bail_out "cannot define the chain in $org"
done

# B alone: its time on an idle system
in_org "$ORG_B" "SELECT count(chainexec.chain_execute('$CH')) FROM generate_series(1, $NB)" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE organization_id = '$ORG_B' AND chain_id = '$CH' AND finished_at IS NOT NULL" "$NB" 60
IDLE=$(psql_q "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) * 1000)::numeric, 1) FROM chainexec.universal_transactions WHERE organization_id = '$ORG_B' AND chain_id = '$CH'")
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE organization_id = '$ORG_B' AND chain_id = '$CH' AND status = 'completed'")" "$NB" \
	"organization B's $NB executions complete on an idle system"
psql_q "DELETE FROM chainexec.universal_transactions WHERE organization_id = '$ORG_B' AND chain_id = '$CH'" >/dev/null

# A's backlog, then B
in_org "$ORG_A" "SELECT count(chainexec.chain_execute('$CH')) FROM generate_series(1, $NA)" >/dev/null
in_org "$ORG_B" "SELECT count(chainexec.chain_execute('$CH')) FROM generate_series(1, $NB)" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE organization_id = '$ORG_B' AND chain_id = '$CH' AND finished_at IS NOT NULL" "$NB" 300
BUSY=$(psql_q "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) * 1000)::numeric, 1) FROM chainexec.universal_transactions WHERE organization_id = '$ORG_B' AND chain_id = '$CH'")
LEFT=$(psql_q "SELECT count(*) FROM chainexec.universal_transactions a WHERE a.organization_id = '$ORG_A' AND a.chain_id = '$CH' AND (a.finished_at IS NULL OR a.finished_at > (SELECT max(b.finished_at) FROM chainexec.universal_transactions b WHERE b.organization_id = '$ORG_B' AND b.chain_id = '$CH'))")
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE organization_id = '$ORG_B' AND chain_id = '$CH' AND status = 'completed'")" "$NB" \
	"organization B's $NB executions complete behind A's backlog of $NA"
check "B's executions all ended while more than 1000 of A's were left ($LEFT were)" test "${LEFT:-0}" -gt 1000
RATIO=$(awk -v b="${BUSY:-0}" -v i="${IDLE:-1}" 'BEGIN { printf "%.1f", (i > 0 ? b / i : 0) }')
diag "organization B's median completion: ${IDLE} ms idle, ${BUSY} ms behind A's backlog of $NA (x$RATIO)"
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE organization_id = '$ORG_A' AND chain_id = '$CH' AND finished_at IS NOT NULL" "$NA" 300
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE organization_id = '$ORG_A' AND chain_id = '$CH' AND status = 'completed'")" "$NA" \
	"organization A's $NA executions all complete"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE organization_id IN ('$ORG_A', '$ORG_B') AND attempt <> 1")" 0 \
	"every line ran once"
