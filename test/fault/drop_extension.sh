#!/usr/bin/env bash
# test/fault/drop_extension.sh: DROP EXTENSION chainexec while the executors
# are busy neither deadlocks nor leaves chainexec's pg_cron jobs behind
# (issue 10).
#
# Twelve times: create the extension, schedule a pg_cron job with
# chain_schedule, start 40 executions of a three-step chain (the executors
# are mid-transition), then DROP EXTENSION chainexec.  Each DROP must
# succeed (it failed with a deadlock 8 times out of 12: DROP and the
# executors took table locks in different orders; the executors now hold a
# share lock on the extension around each transition, so DROP waits for
# them).  No pg_cron job made by chain_schedule survives the DROP, the role
# chainexec_admin stays (it is the cluster's), and the executors serve the
# extension again once it is created again.  The extension is left
# installed at the end.
#
# chainexec-test: slow timeout=420
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
TRIES=12
N=40

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF2
		CREATE EXTENSION IF NOT EXISTS chainexec;
		SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'de_%';
		DROP TABLE IF EXISTS public.de_effects_$S;
	EOF2
}
trap cleanup EXIT

plan 7

psql_q "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null 2>&1 || bail_out "pg_cron is not available"
psql_q "CREATE TABLE public.de_effects_$S (execution_id uuid, step int)" >/dev/null || bail_out "could not create the effects table"
poll_query_until "SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"

step()
{
	echo "{\"id\": $1, \"name\": \"s$1\", \"type\": \"sql\", \"parallelExecution\": true,
		\"sql\": \"INSERT INTO public.de_effects_$S SELECT {chain.execution_id}::uuid, $1 FROM pg_sleep(0.005)\"}"
}

OFFSET=$(log_offset)
dropped=0
errors=
jobs_left=0
ran=0
for i in $(seq 1 $TRIES); do
	chain=de-chain-$S-$i
	psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null || { errors+=" create#$i"; continue; }
	psql_q "SELECT chainexec.chain_define('{\"id\": \"$chain\", \"steps\": [$(step 1), $(step 2), $(step 3)]}', true)" >/dev/null &&
	psql_q "SELECT chainexec.chain_schedule('de_job_$i', '0 3 * * *', '$chain')" >/dev/null &&
	psql_q "SELECT count(chainexec.chain_execute('$chain')) FROM generate_series(1, $N)" >/dev/null ||
		{ errors+=" setup#$i"; continue; }
	# let the executors get busy
	poll_query_until "SELECT count(*) > 0 FROM public.de_effects_$S" t 20 >/dev/null && ran=$((ran + 1))
	out=$(psql -X -q -v ON_ERROR_STOP=1 -c "DROP EXTENSION chainexec" 2>&1)
	if [ $? -eq 0 ]; then
		dropped=$((dropped + 1))
	else
		errors+=" drop#$i: $out"
	fi
	n=$(psql_q "SELECT count(*) FROM cron.job WHERE jobname = 'de_job_$i' OR command LIKE '%$chain%'")
	jobs_left=$((jobs_left + n))
done
is "$ran" "$TRIES" "the executors were running steps before each DROP"
is "$dropped" "$TRIES" "DROP EXTENSION chainexec succeeded $TRIES times out of $TRIES with busy executors"
[ -n "$errors" ] && diag "errors:$errors"
is "$jobs_left" 0 "no pg_cron job made by chain_schedule survived a DROP"
is "$(psql_q "SELECT count(*) FROM pg_roles WHERE rolname = 'chainexec_admin'")" 1 "the role chainexec_admin stays"
is "$(tail -c +"$((OFFSET + 1))" "$CE_CLUSTER_LOG" | grep -c 'deadlock detected')" 0 "no deadlock in the server log meanwhile"

# created again, the executors serve it
psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null
psql_q "SELECT chainexec.chain_define('{\"id\": \"de-after-$S\", \"steps\": [$(step 1)]}', true)" >/dev/null
id=$(psql_q "SELECT chainexec.chain_execute('de-after-$S')")
is "$(psql_q "SELECT chainexec.chain_wait('$id', 30000)->>'status'")" completed \
	"once created again, the executors run its executions"
is "$(psql_q "SELECT count(*) FROM pg_event_trigger WHERE evtname = 'chainexec_drop_extension'")" 1 \
	"the extension's event trigger is back with it"
