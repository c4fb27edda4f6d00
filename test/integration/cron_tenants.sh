#!/usr/bin/env bash
# test/integration/cron_tenants.sh: a job name a tenant chooses is scoped to
# its organization (issue 10, "tenants collide on schedule names").
#
# One application role (a LOGIN role) works for two organizations and
# calls chain_schedule('invoices', ...) in each: two pg_cron jobs, each
# organization's scheduled_jobs lists its own, scheduling again in one
# replaces only its own, and chain_unschedule in one leaves the other's
# job.  Before, both got the same pg_cron job (pg_cron names a job per
# role), the second silently replaced the first, and one organization's
# chain_unschedule deleted the other's job.
#
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
APP=ce_ct_app_$S
ORG_A=aaaaaaaa-0000-0000-0000-00000000000$((S % 10))
ORG_B=bbbbbbbb-0000-0000-0000-00000000000$((S % 10))
CHAIN=ct-chain-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF2
		SELECT cron.unschedule(jobid) FROM cron.job WHERE username = '$APP';
		DELETE FROM chainexec.schedules WHERE created_by::text = '$APP';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CHAIN';
		REVOKE USAGE ON SCHEMA cron FROM $APP;
		DROP ROLE IF EXISTS $APP;
	EOF2
}
trap cleanup EXIT

# as_org ORG SQL: run SQL as the application role in organization ORG.
as_org()
{
	psql -X -A -t -q -U "$APP" -v ON_ERROR_STOP=1 -c "SET chainexec.organization_id = '$1'" -c "$2" 2>&1
}

plan 9

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql_q "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null 2>&1 || bail_out "pg_cron is not available"
psql_q "CREATE ROLE $APP LOGIN; GRANT USAGE ON SCHEMA cron TO $APP" >/dev/null || bail_out "could not create the role"
for org in "$ORG_A" "$ORG_B"; do
	as_org "$org" "SELECT chainexec.chain_define('{\"id\": \"$CHAIN\", \"steps\": [{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS one\"}]}', true)" >/dev/null ||
		bail_out "could not define the chain in organization $org"
done

a=$(as_org "$ORG_A" "SELECT chainexec.chain_schedule('invoices', '0 3 * * *', '$CHAIN')")
b=$(as_org "$ORG_B" "SELECT chainexec.chain_schedule('invoices', '0 4 * * *', '$CHAIN')")
like "$a/$b" '^[0-9]+/[0-9]+$' "both organizations schedule a job named \"invoices\""
isnt "$a" "$b" "... and get two pg_cron jobs"
is "$(psql_q "SELECT string_agg(schedule, ',' ORDER BY schedule) FROM cron.job WHERE username = '$APP'")" "0 3 * * *,0 4 * * *" \
	"pg_cron has both jobs with their own schedules"
is "$(as_org "$ORG_A" "SELECT string_agg(job_name || '=' || cron_job_id, ',') FROM chainexec.scheduled_jobs")" "invoices=$a" \
	"organization A's scheduled_jobs lists its own job"
is "$(as_org "$ORG_B" "SELECT string_agg(job_name || '=' || cron_job_id, ',') FROM chainexec.scheduled_jobs")" "invoices=$b" \
	"organization B's scheduled_jobs lists its own job"

a2=$(as_org "$ORG_A" "SELECT chainexec.chain_schedule('invoices', '0 5 * * *', '$CHAIN')")
is "$(psql_q "SELECT string_agg(schedule, ',' ORDER BY schedule) FROM cron.job WHERE username = '$APP'")" "0 4 * * *,0 5 * * *" \
	"scheduling again in A replaces A's job only"
like "$(psql_q "SELECT command FROM cron.job WHERE jobid = $b")" "$ORG_B" "B's job starts B's chain (its organization)"

as_org "$ORG_A" "SELECT chainexec.chain_unschedule('invoices')" >/dev/null
is "$(psql_q "SELECT string_agg(jobid::text, ',') FROM cron.job WHERE username = '$APP'")" "$b" \
	"chain_unschedule in A leaves B's job"
is "$(as_org "$ORG_B" "SELECT count(*) FROM chainexec.scheduled_jobs WHERE job_name = 'invoices'")/$(as_org "$ORG_A" "SELECT count(*) FROM chainexec.scheduled_jobs")" \
	"1/0" "B still lists its job; A lists none"
