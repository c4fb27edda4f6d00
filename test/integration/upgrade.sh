#!/usr/bin/env bash
# test/integration/upgrade.sh: an installation of release 0.1.0, with
# executions in flight, upgraded as the README says, equals a fresh
# installation of the new version, and its executions go on.
#
# 0.1.0 is built from the repository's history (the commit before the one
# that added chainexec--0.1.0--0.2.0.sql) into a copy of the server's
# installation, and runs a cluster of its own: CREATE EXTENSION chainexec
# VERSION '0.1.0'; chains with a handler and a template; executions that
# complete, fail, wait for a person (external step), wait on a durable timer,
# and one paused in the middle.  Then the README's upgrade procedure:
# stop, start the same data directory with the new installation (the
# library under test), ALTER EXTENSION chainexec UPDATE.  Checked: the
# executors wait for the update (and say so) rather than fail on the old
# schema; the version; no error between the restart and the update; a catalog dump of the extension's
# objects (pg_dump --schema-only --binary-upgrade, which dumps an
# extension's members: functions, tables, columns, constraints, indexes,
# views, policies, triggers, comments, privileges) equals that of a fresh
# CREATE EXTENSION chainexec in another database of the same cluster.
# Then a backup: pg_dump of the served database; DROP DATABASE is refused
# while the executors are connected and WITH (FORCE) drops it; pg_restore
# brings back the chains, executions, lines, handlers and templates, and a
# new channel secret (it is not dumped).  In the restored database the
# waiting execution completes when the person answers, the paused one
# resumes and completes, the timer set under 0.1.0 fires, and new
# executions of the old chains run.  test/security/privileges_update.sh
# checks the privileges an update leaves (with the new library only).
#
# Skipped when the repository has no history to build 0.1.0 from (a
# shallow clone, an export).
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: slow timeout=600
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"
. "$CE_REPO/scripts/cluster.sh"

NEW_BIN=$CE_PGBIN
NEW_VERSION=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$CE_REPO/chainexec.control")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chainexec-upgrade.XXXXXX")
chmod 0755 "$TMP"

UPG_DIR=
cleanup()
{
	# only the cluster this script made (CE_CLUSTER_DIR names the runner's until then)
	[ -n "$UPG_DIR" ] && CE_CLUSTER_DIR=$UPG_DIR ce_cluster_destroy
	rm -rf "$TMP"
}
trap cleanup EXIT

# ---- 0.1.0, from history
first_update=$(git -C "$CE_REPO" log --diff-filter=A --format=%H -- chainexec--0.1.0--0.2.0.sql 2>/dev/null | tail -n 1)
REL=
[ -n "$first_update" ] && REL=$(git -C "$CE_REPO" rev-parse -q --verify "$first_update^" 2>/dev/null)
if [ -z "$REL" ] || ! git -C "$CE_REPO" show "$REL:chainexec.control" 2>/dev/null | grep -q "^default_version = '0.1.0'"; then
	echo "1..0 # SKIP no history to build release 0.1.0 from (shallow clone or export)"
	exit 0
fi

# A copy of the server's installation without chainexec, and 0.1.0 built into it.
OLD=$TMP/old
for d in $("$NEW_BIN/pg_config" --bindir --pkglibdir --sharedir --pkgincludedir); do
	mkdir -p "$OLD$(dirname "$d")" && cp -a "$d" "$OLD$d" || bail_out "cannot copy $d"
done
OLD_BIN=$OLD$("$NEW_BIN/pg_config" --bindir)
OLD_CONFIG=$OLD_BIN/pg_config
rm -f "$("$OLD_CONFIG" --sharedir)"/extension/chainexec* "$("$OLD_CONFIG" --pkglibdir)/chainexec.so"
mkdir -p "$TMP/src"
git -C "$CE_REPO" archive "$REL" | tar -x -C "$TMP/src" || bail_out "cannot export $REL"
if (cd "$TMP/src" && make -j2 PG_CONFIG="$OLD_CONFIG" && make PG_CONFIG="$OLD_CONFIG" install) >"$TMP/build.log" 2>&1; then
	ok "release 0.1.0 (${REL:0:12}) builds and installs into a copy of the server's installation"
else
	not_ok "release 0.1.0 (${REL:0:12}) builds and installs into a copy of the server's installation" \
		"$(tail -n 20 "$TMP/build.log")"
	bail_out "no 0.1.0 to upgrade from"
fi

cat >"$TMP/upgrade.conf" <<-CONF
	shared_preload_libraries = 'chainexec'
	chainexec.database = 'chainexec_test'
	chainexec.poll_interval = 200
	listen_addresses = ''
	log_line_prefix = '%m [%p] %q%a '
CONF
CE_PGBIN=$OLD_BIN
export CE_PGBIN
MAIN_DIR=$CE_CLUSTER_DIR
if ! CE_CLUSTER_OWNER_PID=$$ ce_cluster_new "$TMP/upgrade.conf"; then
	[ "${CE_CLUSTER_DIR:-}" != "$MAIN_DIR" ] && UPG_DIR=${CE_CLUSTER_DIR:-}
	bail_out "cannot start a cluster with release 0.1.0"
fi
UPG_DIR=$CE_CLUSTER_DIR
export PGDATABASE=chainexec_test

q()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1" 2>&1
}

# ---- 0.1.0 at work
check "CREATE EXTENSION chainexec VERSION '0.1.0'" q "CREATE EXTENSION chainexec VERSION '0.1.0'"
psql -X -q -v ON_ERROR_STOP=1 >"$TMP/setup.log" 2>&1 <<'SQL'
CREATE ROLE upg_app LOGIN;
GRANT USAGE ON SCHEMA public TO upg_app;
CREATE TABLE public.upg_orders (id serial PRIMARY KEY, amount numeric);
GRANT ALL ON public.upg_orders TO upg_app;
GRANT USAGE ON SEQUENCE public.upg_orders_id_seq TO upg_app;
CREATE FUNCTION public.upg_price(a jsonb) RETURNS jsonb LANGUAGE sql
	AS $$ SELECT jsonb_build_object('price', (a->'variables'->>'amount')::numeric * 2) $$;
SELECT chainexec.chain_register_handler('upg_price', 'public.upg_price(jsonb)');
SELECT chainexec.chain_register_template('upg_letter', 'Dear {name}, your order costs {price}.');
SELECT chainexec.chain_define($${"id": "upg-order", "steps": [
	{"id": 1, "name": "price", "type": "function", "instructionSet": "upg_price",
	 "inputVariables": ["amount"], "outputVariables": ["price"]},
	{"id": 2, "name": "store", "type": "sql",
	 "sql": "INSERT INTO public.upg_orders (amount) VALUES ({price}) RETURNING id AS order_id",
	 "outputVariables": ["order_id"]},
	{"id": 3, "name": "approve", "type": "external", "inputTemplate": "Approve order {order_id}?",
	 "outputVariables": ["approved"]},
	{"id": 4, "name": "letter", "type": "template", "templateId": "upg_letter", "outputVariables": ["letter"]}]}$$, true);
SELECT chainexec.chain_define($${"id": "upg-timer", "steps": [
	{"id": 1, "name": "first", "type": "sql", "sql": "SELECT 1 AS a", "outputVariables": ["a"]},
	{"id": 2, "name": "nap", "type": "wait", "waitMs": 2000},
	{"id": 3, "name": "last", "type": "sql", "sql": "SELECT 2 AS b", "outputVariables": ["b"]}]}$$, true);
SELECT chainexec.chain_define($${"id": "upg-long-timer", "steps": [
	{"id": 1, "name": "nap", "type": "wait", "waitMs": 25000},
	{"id": 2, "name": "last", "type": "sql", "sql": "SELECT 3 AS c", "outputVariables": ["c"]}]}$$, true);
SELECT chainexec.chain_define($${"id": "upg-broken", "steps": [
	{"id": 1, "name": "boom", "type": "sql", "sql": "SELECT 1 / 0 AS x"}]}$$, true);
SQL
check "0.1.0: a role, a handler, a template and four chains" test $? -eq 0
# executions: as the app role where the chain allows it
DONE=$(q "SET ROLE upg_app; SELECT chainexec.chain_execute('upg-timer')")
WAITING=$(q "SET ROLE upg_app; SELECT chainexec.chain_execute('upg-order', '{\"amount\": 21, \"name\": \"Ada\"}')")
PAUSED=$(q "SELECT chainexec.chain_execute('upg-order', '{\"amount\": 1, \"name\": \"Bo\"}')")
TIMER=$(q "SELECT chainexec.chain_execute('upg-long-timer')")
FAILED=$(q "SELECT chainexec.chain_execute('upg-broken')")
check "0.1.0: an execution completes" poll_query_until "SELECT status FROM chainexec.executions WHERE execution_id = '$DONE'" completed 30
check "0.1.0: an execution waits for a person" \
	poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$WAITING' AND step_id = 3" waiting 30
check "0.1.0: another one waits for its person" \
	poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$PAUSED' AND step_id = 3" waiting 30
is "$(q "SELECT chainexec.chain_pause('$PAUSED')")" "t" "0.1.0: and is paused there"
sleep 1
is "$(q "SELECT status FROM chainexec.executions WHERE execution_id = '$PAUSED'")" "paused" "0.1.0: it stays paused"
check "0.1.0: an execution fails" poll_query_until "SELECT status FROM chainexec.executions WHERE execution_id = '$FAILED'" failed 30
is "$(q "SELECT status NOT IN ('completed', 'failed') FROM chainexec.executions WHERE execution_id = '$TIMER'")" "t" \
	"0.1.0: an execution waits on a long timer"

# ---- the upgrade, as the README says
# The executors keep running: started with the new library on the old
# schema, they wait (and say so once) until ALTER EXTENSION ... UPDATE.
check "stop the server running 0.1.0" ce_cluster_ctl stop
CE_PGBIN=$NEW_BIN
off=$(log_offset)
check "start the same data directory with the new installation" ce_cluster_ctl start
check "the executors say they wait for the update" \
	wait_for_log "extension \"chainexec\" in database .* is at version 0\.1\.0, the library at $NEW_VERSION" "$off" 30
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'chainexec'")" "0.1.0" "the extension is still 0.1.0"
sleep 6		# the executors look again every 5 s: give them a round on the old schema
check "ALTER EXTENSION chainexec UPDATE" q "ALTER EXTENSION chainexec UPDATE"
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'chainexec'")" "$NEW_VERSION" "the extension is $NEW_VERSION"
errors=$(tail -c +"$((off + 1))" "$CE_CLUSTER_LOG" | grep -E 'ERROR|FATAL' | grep -v 'terminating connection' | head -n 5)
is "$errors" "" "no error in the server log between the restart and the update"
diag "after the update:" "$(q "SELECT chain_id || ' ' || status FROM chainexec.executions ORDER BY created_at")"
is "$(q "SELECT status FROM chainexec.executions WHERE execution_id = '$PAUSED'")" "paused" "the paused execution is still paused"

# ---- equal to a fresh installation
check "a fresh installation in another database" \
	psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE upg_fresh" -c '\c upg_fresh' -c "CREATE EXTENSION chainexec"
# dump DB: the schema-only binary-upgrade dump (extension members included),
# without what names OIDs, LSNs or the dump itself.
dump()
{
	pg_dump --schema-only --binary-upgrade --no-owner --extension=chainexec --schema=chainexec -d "$1" |
		sed -E -e '/^\\(un)?restrict /d' -e '/binary_upgrade_set_next_/d' \
			-e "s/^SET relfrozenxid = '[0-9]+', relminmxid = '[0-9]+'$/SET relfrozenxid = 'X', relminmxid = 'X'/" \
			-e "s/^WHERE oid = '[0-9]+';$/WHERE oid = 'X';/" \
			-e "s/(binary_upgrade_create_empty_extension\('chainexec', 'chainexec', (true|false), '[^']*', )'\{[0-9,]*\}'/\1'{OIDS}'/"
}
dump chainexec_test >"$TMP/updated.sql" 2>"$TMP/dump.err"
dump upg_fresh >"$TMP/fresh.sql" 2>>"$TMP/dump.err"
lines=$(grep -c . "$TMP/fresh.sql")
if [ "$lines" -gt 1000 ] && diff -u "$TMP/fresh.sql" "$TMP/updated.sql" >"$TMP/catalog.diff"; then
	ok "the updated extension's catalog equals a fresh installation's ($lines lines of pg_dump)"
else
	not_ok "the updated extension's catalog equals a fresh installation's ($lines lines of pg_dump)" \
		"$(head -n 60 "$TMP/catalog.diff")" "$(head -n 5 "$TMP/dump.err")"
fi
is "$(q "SELECT count(*) FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
		  WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'chainexec'")" \
	"$(psql -X -A -t -q -d upg_fresh -c "SELECT count(*) FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
		  WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'chainexec'")" \
	"as many member objects as a fresh installation"

# ---- backup and restore, with executions in flight
secret=$(q "SELECT md5(secret) FROM chainexec.channel_secret")
counts_sql="SELECT (SELECT count(*) FROM chainexec.chains) || ' ' || (SELECT count(*) FROM chainexec.universal_transactions)
	|| ' ' || (SELECT count(*) FROM chainexec.universal_transaction_lines) || ' ' || (SELECT count(*) FROM chainexec.handlers)
	|| ' ' || (SELECT count(*) FROM chainexec.templates)"
counts=$(q "$counts_sql")
check "pg_dump of the served database" pg_dump -Fc -f "$TMP/backup.dump" -d chainexec_test
out=$(psql -X -q -d postgres -c "DROP DATABASE chainexec_test" 2>&1)
like "$out" 'is being accessed by other users' "DROP DATABASE of the served database is refused while the executors are connected"
check "DROP DATABASE ... WITH (FORCE) drops it" psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE chainexec_test WITH (FORCE)"
check "pg_restore into a new database of that name" \
	sh -c "psql -X -q -d postgres -v ON_ERROR_STOP=1 -c 'CREATE DATABASE chainexec_test' &&
		   pg_restore --exit-on-error -d chainexec_test '$TMP/backup.dump'"
is "$(q "$counts_sql")" "$counts" "the chains, executions, lines, handlers and templates are back (counts: $counts)"
is "$(q "SELECT count(*) = 1 AND bool_and(md5(secret) <> '$secret') FROM chainexec.channel_secret")" "t" \
	"the channel secret is not in the dump: the restored extension made a new one"
check "the restored extension is $NEW_VERSION" \
	poll_query_until "SELECT extversion FROM pg_extension WHERE extname = 'chainexec'" "$NEW_VERSION" 10

# ---- the old executions go on (in the restored database)
check "the person answers the execution started under 0.1.0" \
	q "SET ROLE upg_app; SELECT chainexec.chain_step_complete('$WAITING', 3, '{\"approved\": true}')"
check "it completes" poll_query_until "SELECT status FROM chainexec.executions WHERE execution_id = '$WAITING'" completed 30
is "$(q "SELECT chainexec.chain_result('$WAITING')->'finalContext'->>'letter'")" "Dear Ada, your order costs 42." \
	"with the 0.1.0 handler's and template's work in its result"
is "$(q "SELECT chainexec.chain_resume('$PAUSED')")" "t" "the execution paused under 0.1.0 resumes"
check "and waits for its person again" \
	poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$PAUSED' AND step_id = 3" waiting 30
q "SELECT chainexec.chain_step_complete('$PAUSED', 3, '{\"approved\": true}')" >/dev/null
check "and completes" poll_query_until "SELECT chainexec.chain_result('$PAUSED')->'finalContext'->>'letter'" "Dear Bo, your order costs 2." 30
check "the long timer set under 0.1.0 fires and its execution completes" \
	poll_query_until "SELECT status FROM chainexec.executions WHERE execution_id = '$TIMER'" completed 60
NEWRUN=$(q "SET ROLE upg_app; SELECT chainexec.chain_execute('upg-order', '{\"amount\": 5, \"name\": \"Lin\"}')")
check "a new execution of a 0.1.0 chain waits for its person" \
	poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$NEWRUN' AND step_id = 3" waiting 30
q "SET ROLE upg_app; SELECT chainexec.chain_step_complete('$NEWRUN', 3, '{\"approved\": true}')" >/dev/null
check "and completes with the 0.1.0 handler and template" \
	poll_query_until "SELECT chainexec.chain_result('$NEWRUN')->'finalContext'->>'letter'" "Dear Lin, your order costs 10." 30

is "$(grep -E 'terminated by signal|PANIC:|TRAP:' "$CE_CLUSTER_LOG" | head -n 3)" "" "no server process of this cluster crashed"

done_testing
exit $?
