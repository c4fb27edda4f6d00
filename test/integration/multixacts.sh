#!/usr/bin/env bash
# test/integration/multixacts.sh: a step transition does not make the
# header a multixact.  The step's subtransaction locks the header (the
# execution must still be running when its effects are kept); a write of
# the header by the transition after that subtransaction ended made
# PostgreSQL record the lock and the update together in a new multixact,
# one per step (1.1 per step, measured: 11 per 10-step execution).  The
# new variables and the execution's start are now written by the
# subtransaction that holds the lock, and a version the transaction wrote
# is not locked again; what is left is the execution's end (2: its lock
# carried from the step's subtransaction, the transition's update).
#
# 100 executions of a 10-step chain that sets a variable per step: at most
# 3 multixacts per execution (pg_control_checkpoint() after a CHECKPOINT),
# every execution completed with its 10 variables; and parallel steps,
# each setting its own variable while the others run, all kept.  The
# transitions take no lock on the chain's row: the check of the header's
# foreign key to it, which PostgreSQL makes again when a transaction
# updates a row version it wrote itself (the header updated twice in a
# transition), is left out of direct writes, which never change a key.
#
# chainexec-test: timeout=240
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CH=mx-$S
CP=mxp-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF2
		DELETE FROM chainexec.universal_transactions WHERE chain_id IN ('$CH', '$CP');
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id IN ('$CH', '$CP');
	EOF2
}
trap cleanup EXIT

plan 7

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql_q "SELECT chainexec.chain_define(jsonb_build_object('id', '$CH',
	'steps', (SELECT jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql',
		'sql', format('SELECT %s AS v%s', i, i), 'outputVariables', jsonb_build_array('v' || i)) ORDER BY i)
		FROM generate_series(1, 10) i)), true)" >/dev/null || bail_out "could not define the chain"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CP\", \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS a FROM pg_sleep(0.02)\", \"outputVariables\": [\"a\"]},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 2 AS b FROM pg_sleep(0.02)\", \"outputVariables\": [\"b\"], \"parallelExecution\": true},
	{\"id\": 3, \"name\": \"c\", \"type\": \"sql\", \"sql\": \"SELECT 3 AS c FROM pg_sleep(0.01)\", \"outputVariables\": [\"c\"], \"parallelExecution\": true},
	{\"id\": 4, \"name\": \"d\", \"type\": \"sql\", \"sql\": \"SELECT 4 AS d\", \"outputVariables\": [\"d\"], \"parallelExecution\": true},
	{\"id\": 5, \"name\": \"total\", \"type\": \"sql\", \"sql\": \"SELECT {a}::int + {b}::int + {c}::int + {d}::int AS total\",
	 \"inputVariables\": [\"a\", \"b\", \"c\", \"d\"], \"outputVariables\": [\"total\"]}]}', true)" >/dev/null ||
	bail_out "could not define the parallel chain"

# next_multixact_id as of a checkpoint taken now
next_multi()
{
	psql_q "CHECKPOINT" >/dev/null && psql_q "SELECT next_multixact_id FROM pg_control_checkpoint()"
}

m0=$(next_multi)
psql_q "SELECT count(chainexec.chain_execute('$CH', '{}')) FROM generate_series(1, 100)" >/dev/null
check "the 100 executions complete" poll_query_until "SELECT count(*) FROM chainexec.universal_transactions
	WHERE chain_id = '$CH' AND status = 'completed'" 100 120
m1=$(next_multi)
per=$(( (m1 - m0) / 100 ))
diag "multixacts per execution of 10 steps: $(( m1 - m0 )) / 100"
check "at most 3 multixacts per 10-step execution ($per)" test "$per" -le 3
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CH'
	AND context = (SELECT jsonb_object_agg('v' || i, i) FROM generate_series(1, 10) i)")" 100 \
	"each execution's context holds its 10 variables"

psql_q "SELECT count(chainexec.chain_execute('$CP', '{}')) FROM generate_series(1, 20)" >/dev/null
check "the 20 executions with parallel steps complete" poll_query_until "SELECT count(*) FROM chainexec.universal_transactions
	WHERE chain_id = '$CP' AND status = 'completed'" 20 120
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CP'
	AND context @> '{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4, \"total\": 10}'")" 20 \
	"the parallel steps' variables are all kept (a + b + c + d = 10)"

# The chain's row was last locked (FOR KEY SHARE, by the foreign key check
# of the header's insert) by the transaction of chain_execute, not by any
# of the ten transitions that followed.
x=$(psql -X -A -t -q -v ON_ERROR_STOP=1 <<-EOF2 | tail -n 1
	BEGIN;
	SELECT chainexec.chain_execute('$CH', '{}') IS NOT NULL;
	SELECT txid_current() % 4294967296;
	COMMIT;
EOF2
)
check "one more execution completes" poll_query_until "SELECT count(*) FROM chainexec.universal_transactions
	WHERE chain_id = '$CH' AND status = 'completed'" 101 60
is "$(psql_q "SELECT xmax::text FROM chainexec.chains WHERE chain_id = '$CH'")" "$x" \
	"no transition of it locked the chain's row (its last locker is chain_execute's transaction)"
