#!/usr/bin/env bash
# chainexec-test: slow timeout=300
#
# Scheduling with a real pg_cron: a job scheduled every minute fires and its
# execution completes; the idempotency key makes a job that fires twice in
# one minute start one execution; inline mode runs the chain in the job's
# session; unscheduling stops it; and a database without pg_cron gets a
# clear error.
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

plan 18

cleanup()
{
	psql -X -q -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'ce_cron_%'" >/dev/null 2>&1
	psql -X -q -c "DELETE FROM chainexec.schedules WHERE job_name LIKE 'ce_cron_%'" >/dev/null 2>&1
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ce_cron_nocron" >/dev/null 2>&1
}
trap cleanup EXIT

psql_q "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null 2>&1
psql_q "CREATE TABLE IF NOT EXISTS ce_cron_log (job text, at timestamptz DEFAULT clock_timestamp())" >/dev/null
psql_q "TRUNCATE ce_cron_log" >/dev/null
psql_q "SELECT chainexec.chain_define('{\"id\": \"ce-cron-chain\", \"steps\": [
	{\"id\": 1, \"name\": \"log\", \"type\": \"sql\", \"sql\": \"INSERT INTO ce_cron_log (job) VALUES ({job}) RETURNING job AS logged\", \"inputVariables\": [\"job\"], \"outputVariables\": [\"logged\"]}]}', true)" >/dev/null

jobid=$(psql_q "SELECT chainexec.chain_schedule('ce_cron_every_minute', '* * * * *', 'ce-cron-chain', '{\"job\": \"worker\"}')")
like "$jobid" '^[0-9]+$' "chain_schedule returns the pg_cron job id"
is "$(psql_q "SELECT schedule FROM cron.job WHERE jobid = $jobid")" "* * * * *" "the pg_cron job exists with its schedule"
is "$(psql_q "SELECT mode || '/' || chain_id FROM chainexec.scheduled_jobs WHERE job_name = 'ce_cron_every_minute'")" \
	"worker/ce-cron-chain" "chainexec.scheduled_jobs lists the job"

# replacing keeps one job
jobid2=$(psql_q "SELECT chainexec.chain_schedule('ce_cron_every_minute', '* * * * *', 'ce-cron-chain', '{\"job\": \"worker\"}')")
is "$(psql_q "SELECT count(*) FROM cron.job WHERE jobname = 'ce_cron_every_minute'")" "1" "scheduling again replaces the job"

# inline mode
psql_q "SELECT chainexec.chain_schedule('ce_cron_inline', '* * * * *', 'ce-cron-chain', '{\"job\": \"inline\"}', 'inline')" >/dev/null
like "$(psql_q "SELECT command FROM cron.job WHERE jobname = 'ce_cron_inline'")" '^CALL chainexec\.chain_run' \
	"inline mode schedules CALL chain_run"

# The job fires within about a minute and its execution completes.
if poll_query_until "SELECT count(*) > 0 FROM chainexec.scheduled_jobs WHERE job_name = 'ce_cron_every_minute' AND last_status = 'completed'" t 130; then
	ok "the job fired and its execution completed"
else
	not_ok "the job fired and its execution completed" \
		"$(psql_q "SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 3")"
fi
if poll_query_until "SELECT count(*) > 0 FROM ce_cron_log WHERE job = 'inline'" t 70; then
	ok "the inline job ran the chain in its own session"
else
	not_ok "the inline job ran the chain in its own session" \
		"$(psql_q "SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 3")"
fi
like "$(psql_q "SELECT idempotency_key FROM chainexec.universal_transactions WHERE chain_id = 'ce-cron-chain' ORDER BY created_at LIMIT 1")" \
	'^cron:ce_cron_(every_minute|inline):[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$' "runs carry the job's idempotency key"

# A job that fires twice for the same minute starts one execution: run its
# command twice by hand.
cmd=$(psql_q "SELECT command FROM cron.job WHERE jobname = 'ce_cron_every_minute'")
before=$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'ce-cron-chain'")
id1=$(psql_q "$cmd")
id2=$(psql_q "$cmd")
is "$id1" "$id2" "the same minute gives the same execution"
after=$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'ce-cron-chain'")
if [ "$after" -le $((before + 1)) ]; then ok "at most one new execution for two firings"; else not_ok "at most one new execution for two firings" "before $before after $after"; fi

# unschedule stops it
is "$(psql_q "SELECT chainexec.chain_unschedule('ce_cron_every_minute')")" "t" "chain_unschedule"
is "$(psql_q "SELECT count(*) FROM cron.job WHERE jobname = 'ce_cron_every_minute'")" "0" "the pg_cron job is gone"
psql_q "SELECT chainexec.chain_unschedule('ce_cron_inline')" >/dev/null
err=$(psql -X -q -At -v VERBOSITY=verbose -c "SELECT chainexec.chain_unschedule('ce_cron_every_minute')" 2>&1)
like "$err" '42704.*job "ce_cron_every_minute" does not exist' "unscheduling an unknown job is an error"

# the retention job
psql_q "SELECT chainexec.chain_schedule_cleanup('ce_cron_cleanup', '17 3 * * *', '7 days')" >/dev/null
like "$(psql_q "SELECT command FROM cron.job WHERE jobname = 'ce_cron_cleanup'")" "chain_cleanup\('7 days'::interval\)" \
	"chain_schedule_cleanup schedules chain_cleanup"
psql_q "SELECT chainexec.chain_unschedule('ce_cron_cleanup')" >/dev/null

# a database without pg_cron
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ce_cron_nocron" >/dev/null 2>&1
check "a database without pg_cron" psql -X -q -d postgres -c "CREATE DATABASE ce_cron_nocron"
check "chainexec installs without pg_cron" psql -X -q -d ce_cron_nocron -c "CREATE EXTENSION chainexec"
err=$(psql -X -q -At -d ce_cron_nocron -v VERBOSITY=verbose -c "SELECT chainexec.chain_schedule('x', '* * * * *', 'c')" 2>&1)
like "$err" '55000.*pg_cron is not installed in database "ce_cron_nocron"' "without pg_cron: a clear error"
like "$err" 'shared_preload_libraries.*cron.database_name.*CREATE EXTENSION pg_cron' "the hint says how to enable pg_cron"

psql_q "DELETE FROM chainexec.universal_transactions WHERE chain_id = 'ce-cron-chain'" >/dev/null
psql_q "DROP TABLE ce_cron_log" >/dev/null
done_testing; exit $?
