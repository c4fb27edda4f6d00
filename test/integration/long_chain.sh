#!/usr/bin/env bash
# test/integration/long_chain.sh: what one step transition of a long chain
# reads.  A transition reads the execution's step lines once (to decide
# what becomes ready) and writes the next line by its key; the last step's
# write reads none (its count is printed, not bounded: it differs from a
# middle step's by the one line promoted).  "line_number = ANY($n)" is no index condition in a
# generic plan, so a promotion by array read every line again: a
# transition of a 100-step chain read 302 lines, now 103.  _run_one claims
# the line by the execution's ready lines (chain_run's claim), whose plan
# may read every line once more, depending on the statistics of the
# cluster (202 seen): hence the bound of 250, two and a half reads a line.
#
# Each transition is its own committed transaction (chainexec._run_one,
# with the executors paused), as an executor runs it, so that the index
# entries of earlier versions are dead to every scan and are not counted;
# the lines read are those of pg_stat_xact_user_tables in the same
# transaction.
#
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CH=lc-long-$S
ORG=$(psql_q "SELECT gen_random_uuid()") || bail_out "the server does not answer"
export PGOPTIONS="-c chainexec.organization_id=$ORG"

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CH';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CH';
	EOF
	psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
}
trap cleanup EXIT

plan 4

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql -X -q -c "ALTER SYSTEM SET chainexec.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1

psql_q "SELECT chainexec.chain_define(jsonb_build_object('id', '$CH', 'name', 'long',
	'steps', (SELECT jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql',
											   'sql', format('SELECT %s AS v%s', i, i),
											   'outputVariables', jsonb_build_array('v' || i)) ORDER BY i)
			   FROM generate_series(1, 100) i)), true)" >/dev/null || bail_out "could not define the chain"
ID=$(psql_q "SELECT chainexec.chain_execute('$CH', '{}')") || bail_out "could not start the execution"

# read_one: run one transition in its own transaction; print the lines it read
read_one()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 <<-EOF | tail -n 1
		BEGIN;
		SELECT chainexec._run_one('$ID') \\gset
		SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0)
		  FROM pg_catalog.pg_stat_xact_user_tables
		 WHERE relid = 'chainexec.universal_transaction_lines'::regclass;
		COMMIT;
	EOF
}

for i in $(seq 1 40); do
	read_one >/dev/null || bail_out "transition $i failed"
done
psql -X -q -c "VACUUM chainexec.universal_transaction_lines" >/dev/null 2>&1
reads=
for i in $(seq 1 5); do
	reads+="$(read_one) "
done
diag "lines read by transitions 41 to 45 of the 100-step chain: $reads"
max=$(printf '%s\n' $reads | sort -n | tail -n 1)
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$ID' AND status = 'completed'")" \
	45 "45 of the 100 steps ran, one per transition"
if [ -n "$max" ] && [ "$max" -lt 250 ]; then
	ok "a transition of a 100-step chain reads fewer than 250 lines (most: $max)"
else
	not_ok "a transition of a 100-step chain reads fewer than 250 lines" "lines read: $reads"
fi

for i in $(seq 46 99); do
	read_one >/dev/null || bail_out "transition $i failed"
done
psql -X -q -c "VACUUM chainexec.universal_transaction_lines" >/dev/null 2>&1
last=$(read_one)
diag "lines read by the last step's transition: $last"
is "$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$ID'")" completed \
	"the last transition ended the execution"
is "$(psql_q "SELECT context->>'v100' FROM chainexec.universal_transactions WHERE id = '$ID'")" 100 \
	"the context holds the last step's output"

done_testing
exit $?
