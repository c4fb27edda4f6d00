#!/usr/bin/env bash
# test/integration/isolation.sh: the engine's transactions run at READ
# COMMITTED whatever default_transaction_isolation says (issue 10).
#
# Under REPEATABLE READ or SERIALIZABLE the executors' bookkeeping (the
# header's row lock taken after a step, by parallel steps of one
# execution) raised serialization failures, and the transition, step
# included, ran again.  Here: a step reports the isolation it runs at,
# through CALL chain_run from a session that set serializable, and through
# the executors once the database's default is serializable; then 40
# executions of a chain with four parallel steps run under that default:
# all complete, and every step body ran exactly once (a sequence, which a
# rollback does not take back, counts the runs).
#
# chainexec-test: timeout=240
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
ISO=iso-level-$S
PAR=iso-par-$S
N=40
DB=$(psql_q "SELECT current_database()")

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		ALTER DATABASE "$DB" RESET default_transaction_isolation;
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'chainexec executor';
		DELETE FROM chainexec.universal_transactions WHERE chain_id IN ('$ISO', '$PAR');
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id IN ('$ISO', '$PAR');
		DROP TABLE IF EXISTS public.iso_runs_$S;
		DROP SEQUENCE IF EXISTS public.iso_seq_$S;
	EOF
}
trap cleanup EXIT

# restart_executors: terminate the executors (they read the database's
# settings when they connect); wait until the old ones are gone and the
# launcher has started at least two new ones.
restart_executors()
{
	local t

	t=$(psql_q "SELECT clock_timestamp()")
	psql_q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" >/dev/null
	poll_query_until "SELECT count(*) FILTER (WHERE backend_start > '$t') >= 2 AND count(*) FILTER (WHERE backend_start <= '$t') = 0
		FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60
}

plan 8

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql_q "CREATE SEQUENCE public.iso_seq_$S; CREATE TABLE public.iso_runs_$S (execution_id uuid, step int, PRIMARY KEY (execution_id, step)); GRANT ALL ON public.iso_runs_$S, public.iso_seq_$S TO PUBLIC" >/dev/null ||
	bail_out "could not create the tables"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$ISO\", \"steps\": [
	{\"id\": 1, \"name\": \"iso\", \"type\": \"sql\", \"sql\": \"SELECT current_setting(''transaction_isolation'') AS iso, pg_sleep(0.5) AS slow\"}]}', true)" >/dev/null ||
	bail_out "could not define $ISO"
step()
{
	echo "{\"id\": $1, \"name\": \"p$1\", \"type\": \"sql\", \"parallelExecution\": true, \"retryConfig\": {\"maxRetries\": 0},
		\"sql\": \"INSERT INTO public.iso_runs_$S SELECT {chain.execution_id}::uuid, $1 FROM (SELECT nextval(''public.iso_seq_$S'')) n, pg_sleep(0.01)\"}"
}
psql_q "SELECT chainexec.chain_define('{\"id\": \"$PAR\", \"steps\": [$(step 1), $(step 2), $(step 3), $(step 4)]}', true)" >/dev/null ||
	bail_out "could not define $PAR"

# ---- the session calling chain_run asks for serializable
got=$(psql -X -A -t -q -v ON_ERROR_STOP=1 <<-EOF 2>&1
	SET default_transaction_isolation = serializable;
	CALL chainexec.chain_run('$ISO', '{}');
EOF
)
is "$(echo "$got" | sed -n 's/.*"iso": "\([a-z ]*\)".*/\1/p' | head -1)" "read committed" \
	"chain_run from a serializable session runs its transitions at read committed"

got=$(psql -X -A -t -q -v ON_ERROR_STOP=1 <<-EOF 2>&1
	SET default_transaction_isolation = 'repeatable read';
	CALL chainexec.chain_run('$PAR', '{}');
	SELECT count(*) FROM public.iso_runs_$S;
	SELECT last_value FROM public.iso_seq_$S;
EOF
)
is "$(echo "$got" | tail -2 | tr '\n' ' ')" "4 4 " \
	"chain_run from a repeatable read session: four steps, each run once"

# ---- the database's default is serializable; the executors reconnect
psql_q "ALTER DATABASE \"$DB\" SET default_transaction_isolation = serializable" >/dev/null
check "the executors reconnected with the database's default serializable" restart_executors

id=$(psql_q "SELECT chainexec.chain_execute('$ISO')")
# (the step takes 0.5 s, so chain_wait always waits; the waiting session is
# READ COMMITTED: chain_wait refuses to wait in a serializable transaction,
# whose snapshot would never show the end)
got=$(PGOPTIONS="-c default_transaction_isolation=read\\ committed" \
	psql_q "SELECT chainexec.chain_wait('$id', 30000)->'finalContext'->>'iso'")
is "$got" "read committed" "an executor runs its transitions at read committed"

psql_q "SELECT count(chainexec.chain_execute('$PAR')) FROM generate_series(1, $N)" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$PAR' AND finished_at IS NOT NULL" \
	$((N + 1)) 120
is "$(psql_q "SELECT status, count(*) FROM chainexec.universal_transactions WHERE chain_id = '$PAR' GROUP BY 1")" \
	"completed|$((N + 1))" "$N executions with four parallel steps all complete under serializable"
is "$(psql_q "SELECT count(*) FROM public.iso_runs_$S")" "$((4 * (N + 1)))" "every step's effect exists"
is "$(psql_q "SELECT last_value FROM public.iso_seq_$S")" "$((4 * (N + 1)))" \
	"no step body ran twice (no transition was rolled back by a serialization failure)"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t
	ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$PAR' AND (l.attempt <> 1 OR l.error IS NOT NULL)")" "0" "no line needed a second attempt"
