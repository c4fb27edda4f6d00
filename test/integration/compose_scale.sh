#!/usr/bin/env bash
# test/integration/compose_scale.sh: a forEach of 10,000 elements (SPEC §9).
#
# The forEach runs through the workers to the end; the executors' memory
# (VmRSS) is read before, at a quarter, at three quarters and at the end,
# and must stay flat (an element's work is a line of its own, not a write
# of the whole context); its cost per element is measured against plain
# steps doing the same SQL (a chain of 200 steps run 25 times: 5,000
# step transitions) and printed, with the ratio.
#
# chainexec-test: slow timeout=600
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
N=10000
PLAIN_STEPS=200
PLAIN_RUNS=25

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'cs-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'cs-%-$S';
	EOF
}
trap cleanup EXIT

# rss_kb: the executors' VmRSS, summed, in kB.
rss_kb()
{
	local total=0 pid kb
	for pid in $(psql_q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor'"); do
		kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
		total=$((total + ${kb:-0}))
	done
	echo "$total"
}

done_iterations()
{
	psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1'
		AND line_type = 'iteration' AND status = 'completed'"
}

plan 5

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 >/dev/null ||
	bail_out "the executors are not running"

psql_q "SELECT chainexec.chain_define('{\"id\": \"cs-each-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"each\", \"type\": \"sql\", \"forEach\": \"{items}\", \"maxConcurrency\": 16,
	 \"sql\": \"SELECT {item}::int + 1 AS v\", \"outputVariables\": [\"v\"]}]}', true)" >/dev/null ||
	bail_out "could not define the forEach chain"
steps=$(psql_q "SELECT string_agg(format('{\"id\": %s, \"name\": \"s%s\", \"type\": \"sql\", \"sql\": \"SELECT {chain.step_id}::int + 1 AS v%s\", \"outputVariables\": [\"v%s\"]}', g, g, g, g), ',')
	FROM generate_series(1, $PLAIN_STEPS) g")
psql_q "SELECT chainexec.chain_define('{\"id\": \"cs-plain-$S\", \"steps\": [${steps//\'/\'\'}]}', true)" >/dev/null ||
	bail_out "could not define the plain chain"

# warm up both (plans cached, executors' caches filled)
w=$(psql_q "SELECT chainexec.chain_execute('cs-each-$S', jsonb_build_object('items', (SELECT jsonb_agg(g) FROM generate_series(1, 100) g)))")
psql_q "SELECT chainexec.chain_wait('$w', 60000)" >/dev/null
w=$(psql_q "SELECT chainexec.chain_execute('cs-plain-$S')")
psql_q "SELECT chainexec.chain_wait('$w', 60000)" >/dev/null

# plain steps: PLAIN_RUNS executions of PLAIN_STEPS steps
t0=$(date +%s%N)
ids=$(psql_q "SELECT string_agg(chainexec.chain_execute('cs-plain-$S')::text, ',') FROM generate_series(1, $PLAIN_RUNS)")
psql_q "SELECT count(*) FROM unnest('{$ids}'::uuid[]) u, chainexec.chain_wait(u, 300000) r WHERE r->>'status' = 'completed'" >/dev/null
plain_ms=$((($(date +%s%N) - t0) / 1000000))
plain_n=$((PLAIN_STEPS * PLAIN_RUNS))

rss0=$(rss_kb)
t0=$(date +%s%N)
id=$(psql_q "SELECT chainexec.chain_execute('cs-each-$S', jsonb_build_object('items', (SELECT jsonb_agg(g) FROM generate_series(1, $N) g)))")
poll_query_until "SELECT count(*) >= $((N / 4)) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_type = 'iteration' AND status = 'completed'" t 600 >/dev/null
rss1=$(rss_kb)
poll_query_until "SELECT count(*) >= $((3 * N / 4)) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND line_type = 'iteration' AND status = 'completed'" t 600 >/dev/null
rss2=$(rss_kb)
st=$(psql_q "SELECT chainexec.chain_wait('$id', 600000)->>'status'")
each_ms=$((($(date +%s%N) - t0) / 1000000))
rss3=$(rss_kb)

is "$st" completed "a forEach of $N elements completes through the workers"
is "$(psql_q "SELECT (context->'v' = (SELECT jsonb_agg(g + 1 ORDER BY g) FROM generate_series(1, $N) g))::text
	FROM chainexec.universal_transactions WHERE id = '$id'")" true "its $N outputs are gathered in element order"
per_plain=$(awk -v a="$plain_ms" -v n="$plain_n" 'BEGIN { printf "%.3f", a / n }')
per_each=$(awk -v a="$each_ms" -v n="$N" 'BEGIN { printf "%.3f", a / n }')
ratio=$(awk -v a="$per_each" -v b="$per_plain" 'BEGIN { printf "%.2f", a / b }')
diag "plain steps: $plain_n transitions in $plain_ms ms = $per_plain ms each"
diag "forEach: $N elements in $each_ms ms = $per_each ms each; cost per element / plain step = $ratio"
diag "executors' VmRSS (kB, summed): before $rss0, at 25% $rss1, at 75% $rss2, at the end $rss3"
ok "cost per element measured: $per_each ms vs $per_plain ms per plain step (ratio $ratio)"
growth=$((rss2 - rss1))
if [ "$growth" -lt 20480 ]; then
	ok "executors' memory stays flat from 25% to 75% of the elements (+$growth kB)"
else
	not_ok "executors' memory stays flat from 25% to 75% of the elements (+$growth kB)"
fi
if awk -v r="$ratio" 'BEGIN { exit !(r < 4) }'; then
	ok "an element costs less than 4 plain steps (ratio $ratio)"
else
	not_ok "an element costs less than 4 plain steps (ratio $ratio)"
fi

done_testing
