#!/usr/bin/env bash
# test/integration/reload.sh: an executor that starts reads the configuration.
#
# A background worker ignores SIGHUP from its fork until it installs its
# handler, so a reload signalled while an executor started (ALTER SYSTEM
# and pg_reload_conf() right after CREATE EXTENSION, which starts the
# executors) was lost: the executor kept the settings it was forked with
# until the next reload; synchronous_commit = off, say, stayed on, and
# chainexec.enabled = off did not stop it.  Now an executor (and the
# launcher) reads the configuration files once when it starts, as a
# reload would.  The race itself lasts milliseconds; this test makes its
# outcome certain instead: the setting is in the file but was never
# signalled, and the executors are started afresh.
#
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
EXT=rl-ext-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF2
		ALTER SYSTEM RESET chainexec.enabled;
		SELECT pg_reload_conf();
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$EXT';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$EXT';
		RESET chainexec.internal;
	EOF2
}
trap cleanup EXIT

plan 5

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
poll_query_until "SELECT count(*) >= 1 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 60 >/dev/null ||
	bail_out "the executors are not running"
psql_q "SELECT chainexec.chain_define('{\"id\": \"$EXT\", \"steps\": [
	{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS done\"}]}', true)" >/dev/null ||
	bail_out "could not define $EXT"

# in the file, not signalled: only a process that reads the file sees it
old=$(psql_q "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'")
psql_q "ALTER SYSTEM SET chainexec.enabled = off" >/dev/null
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" >/dev/null
if poll_query_until "SELECT count(*) >= 1 AND bool_and(pid <> ALL ('{$old}'::int[])) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 >/dev/null; then
	ok "the launcher starts the executors again"
else
	not_ok "the launcher starts the executors again"
fi
id=$(psql_q "SELECT chainexec.chain_execute('$EXT')")
sleep 3
is "$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$id'")" pending \
	"an executor started after the file said chainexec.enabled = off dispatches nothing (it ran the execution before)"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$id' AND status = 'completed'")" 0 \
	"no line of it ran"

psql_q "ALTER SYSTEM RESET chainexec.enabled" >/dev/null
psql_q "SELECT pg_reload_conf()" >/dev/null
if poll_query_until "SELECT status FROM chainexec.universal_transactions WHERE id = '$id'" completed 30 >/dev/null; then
	ok "after a reload that turns it on again, the execution completes"
else
	not_ok "after a reload that turns it on again, the execution completes"
fi
is "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'")" \
	"$(psql_q "SELECT current_setting('chainexec.max_workers')")" \
	"every executor is running"
