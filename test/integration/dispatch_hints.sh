#!/usr/bin/env bash
# test/integration/dispatch_hints.sh: the dispatch claim does not step over
# the dispatch index's entries of the lines done since the index's last
# vacuum at every claim.  Claims take lines from the head of each
# organization's range, so those entries lie at the head; VACUUM leaves
# them while the table's dead rows fill under 2 % of its pages (a large
# history), and each claim that scanned from the head walked them all.
#
# With autovacuum off on the lines, 100,000 lines made ready and then done
# (written straight into the table, in one finished execution) leave that
# many entries at the head of the dispatch index; over the next 1,000
# executions of a 10-step chain the index is read under 30 pages per step
# (it was read from its head at each claim: 40 to 100 pages a step); all
# complete, a higher priority still goes first, and a second
# organization's work queued meanwhile completes.
#
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CH=dh-$S
ORG=$(psql_q "SELECT gen_random_uuid()") || bail_out "the server does not answer"
ORG2=$(psql_q "SELECT gen_random_uuid()") || bail_out "the server does not answer"

cleanup()
{
	for o in "$ORG" "$ORG2"; do
		PGOPTIONS="-c chainexec.organization_id=$o" psql -X -q >/dev/null 2>&1 <<-EOF2
			DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CH';
			SET chainexec.internal = on;
			DELETE FROM chainexec.chains WHERE chain_id = '$CH';
		EOF2
	done
	PGOPTIONS="-c chainexec.organization_id=$ORG" psql -X -q -c "SET session_replication_role = replica" \
		-c "DELETE FROM chainexec.universal_transaction_lines WHERE organization_id = '$ORG' AND transaction_id = '${GID:-00000000-0000-0000-0000-000000000000}'" >/dev/null 2>&1
	psql -X -q -c "ALTER TABLE chainexec.universal_transaction_lines RESET (autovacuum_enabled)" >/dev/null 2>&1
	psql -X -q -c "VACUUM chainexec.universal_transaction_lines" >/dev/null 2>&1
}
trap cleanup EXIT

plan 6

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
for o in "$ORG" "$ORG2"; do
	PGOPTIONS="-c chainexec.organization_id=$o" psql_q "SELECT chainexec.chain_define(jsonb_build_object('id', '$CH',
		'steps', (SELECT jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql',
			'sql', format('SELECT %s AS v%s', i, i), 'outputVariables', jsonb_build_array('v' || i)) ORDER BY i)
			FROM generate_series(1, 10) i)), true)" >/dev/null || bail_out "could not define the chain"
done
psql_q "ALTER TABLE chainexec.universal_transaction_lines SET (autovacuum_enabled = off)" >/dev/null
psql_q "VACUUM chainexec.universal_transaction_lines" >/dev/null

# run N executions of organization $1 in batches of 100, wait for them
run()
{
	local o=$1 n=$2 phase=$3
	for _ in $(seq 1 $((n / 100))); do
		PGOPTIONS="-c chainexec.organization_id=$o" psql_q "SELECT count(chainexec.chain_execute('$CH', '{\"phase\": \"$phase\"}'))
			FROM generate_series(1, 100)" >/dev/null
	done
	PGOPTIONS="-c chainexec.organization_id=$o" poll_query_until "SELECT count(*) FROM chainexec.universal_transactions
		WHERE chain_id = '$CH' AND input->>'phase' = '$phase' AND status = 'completed'" "$n" 240
}
# org_poll ORG QUERY VALUE SECONDS: poll_query_until as organization ORG
org_poll()
{
	PGOPTIONS="-c chainexec.organization_id=$1" poll_query_until "$2" "$3" "$4"
}
ready_reads()
{
	psql_q "SELECT pg_stat_force_next_flush()" >/dev/null
	psql_q "SELECT idx_blks_hit + idx_blks_read FROM pg_statio_all_indexes
		WHERE indexrelname = 'universal_transaction_lines_ready' AND schemaname = 'chainexec'"
}

GID=$(psql_q "SELECT gen_random_uuid()")
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF2 || bail_out "could not write the lines done"
	SET session_replication_role = replica;
	INSERT INTO chainexec.universal_transactions (organization_id, id, chain_id, chain_version, status,
		input, context, owner, created_at, started_at, finished_at, smart_code)
	VALUES ('$ORG', '$GID', '$CH', 1, 'completed', '{"phase": "done"}', '{}', current_user::regrole,
		now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', 'CHAINEXEC.RUN.DH.V1');
	INSERT INTO chainexec.universal_transaction_lines (organization_id, transaction_id, line_number,
		line_type, step_id, step_name, status, attempt, not_before, smart_code)
	SELECT '$ORG', '$GID', i, 'step', 1, 's1', 'ready', 1, now() - interval '1 day' + i * interval '1 ms',
		'CHAINEXEC.STEP.S1.V1'
	FROM generate_series(1, 100000) i;
	UPDATE chainexec.universal_transaction_lines SET status = 'completed'
	WHERE organization_id = '$ORG' AND transaction_id = '$GID';
EOF2
check "300 executions complete" run "$ORG" 300 before
pages=$(psql_q "SELECT pg_relation_size('chainexec.universal_transaction_lines_ready') / 8192")
diag "the dispatch index has $pages pages"
sleep 2
b0=$(ready_reads)
check "1000 more complete" run "$ORG" 1000 measured
sleep 2
b1=$(ready_reads)
per_step=$(( (b1 - b0) / 10000 ))
diag "dispatch index pages read per step: $per_step"
# 13 to 20 pages per step in runs on one machine (the share of claims made
# by the dispatch query, not as follow-ons, varies with timing; each
# promotion adds its own index entry's descent); 40 to 100 when a claim
# walked the entries from the head.
check "the dispatch index is read under 30 pages per step ($per_step) though it holds $pages pages of entries done" \
	test "$per_step" -lt 30 -a "$pages" -gt 400

# A higher priority still goes first: with the executors paused, 50 at
# priority 0 then 5 at priority 9; the 5 start before any of the 50.
psql_q "ALTER SYSTEM SET chainexec.enabled = off" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
sleep 1
PGOPTIONS="-c chainexec.organization_id=$ORG" psql_q "SELECT count(chainexec.chain_execute('$CH', '{\"phase\": \"low\"}')) FROM generate_series(1, 50)" >/dev/null 2>&1
PGOPTIONS="-c chainexec.organization_id=$ORG" psql_q "SELECT count(chainexec.chain_execute('$CH', '{\"phase\": \"high\"}', '{\"priority\": 9}')) FROM generate_series(1, 5)" >/dev/null 2>&1
PGOPTIONS="-c chainexec.organization_id=$ORG2" psql_q "SELECT count(chainexec.chain_execute('$CH', '{\"phase\": \"other\"}')) FROM generate_series(1, 20)" >/dev/null 2>&1
psql_q "ALTER SYSTEM RESET chainexec.enabled" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
check "the 55 executions complete" \
	org_poll "$ORG" "SELECT count(*) FROM chainexec.universal_transactions
		WHERE chain_id = '$CH' AND input->>'phase' IN ('low', 'high') AND status = 'completed'" 55 120
is "$(PGOPTIONS="-c chainexec.organization_id=$ORG" psql_q "SELECT count(*) FROM chainexec.universal_transactions
	WHERE chain_id = '$CH' AND input->>'phase' = 'high'
	  AND started_at > (SELECT min(started_at) FROM chainexec.universal_transactions WHERE chain_id = '$CH' AND input->>'phase' = 'low')")" 0 \
	"the 5 at priority 9 all started before the first of the 50 at priority 0"
check "the other organization's 20 complete" \
	org_poll "$ORG2" "SELECT count(*) FROM chainexec.universal_transactions
		WHERE chain_id = '$CH' AND input->>'phase' = 'other' AND status = 'completed'" 20 120
