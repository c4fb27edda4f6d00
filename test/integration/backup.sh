#!/usr/bin/env bash
# test/integration/backup.sh: what pg_dump keeps of chainexec, as the
# README's "Backup and restore" says.
#
# In chainexec_test, with pg_cron: a chain, an execution and a schedule
# (chain_schedule).  pg_dump -Fc of the database has the rows of every
# chainexec table (chains, executions, lines, handlers, templates,
# schedules) and pg_cron's job of the schedule, with the id that
# chainexec.schedules refers to, and nothing of chainexec.channel_secret.
# test/integration/upgrade.sh restores such a dump, with executions in
# flight, and runs them on.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CHAIN=backup-$S
JOB=backup-job-$S
DUMP=$(mktemp "${TMPDIR:-/tmp}/chainexec-backup.XXXXXX")

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-SQL
		SELECT chainexec.chain_unschedule('$JOB');
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CHAIN';
	SQL
	rm -f "$DUMP"
}
trap cleanup EXIT

psql_q "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null 2>&1 || bail_out "pg_cron is not available"
check "a chain" psql_q "SELECT chainexec.chain_define('{\"id\": \"$CHAIN\", \"steps\": [{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS one\"}]}', true)"
id=$(psql_q "SELECT chainexec.chain_execute('$CHAIN')")
check "an execution of it" poll_query_until "SELECT status FROM chainexec.executions WHERE execution_id = '$id'" completed 30
jobid=$(psql_q "SELECT chainexec.chain_schedule('$JOB', '0 3 * * *', '$CHAIN')")
like "$jobid" '^[0-9]+$' "a schedule, pg_cron job $jobid"

check "pg_dump -Fc of the database" pg_dump -Fc -f "$DUMP" -d "$PGDATABASE"
toc=$(pg_restore -l "$DUMP")
for t in chains universal_transactions universal_transaction_lines handlers templates schedules; do
	like "$toc" "TABLE DATA chainexec $t " "the dump has the rows of chainexec.$t"
done
is "$(printf '%s\n' "$toc" | grep -c 'TABLE DATA chainexec channel_secret')" "0" \
	"the dump has no row of chainexec.channel_secret (the key of the channel names)"
secret=$(psql_q "SELECT encode(secret, 'hex') FROM chainexec.channel_secret")
if pg_restore -a -f - "$DUMP" | grep -q "$secret"; then
	not_ok "the channel secret appears nowhere in the dump"
else
	ok "the channel secret appears nowhere in the dump"
fi
data=$(pg_restore -a -f - "$DUMP")
like "$data" "$id" "the dump has the execution"
like "$(pg_restore -a -n chainexec -t schedules -f - "$DUMP")" "$JOB.*$jobid|$jobid.*$JOB" \
	"the dump has the schedule, with its pg_cron job id"
like "$(pg_restore -a -n cron -t job -f - "$DUMP")" "^$jobid	0 3 \\* \\* \\*	.*$JOB" \
	"the dump has pg_cron's job $jobid (pg_cron's configuration table cron.job)"

done_testing
exit $?
