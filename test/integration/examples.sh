#!/usr/bin/env bash
# test/integration/examples.sh: the example applications of examples/apps
# run as the README says, against the background workers.
#
# examples/apps/refund_approval.sql defines the chain; follow_chain.py
# (psycopg 3, Debian's python3-psycopg) and follow_chain.js (the npm
# package pg, installed into a temporary folder) each LISTEN through
# chainexec.chain_listen(), start an execution, print its events, answer
# its external step with chain_step_complete when the step_started event
# says it waits, and print the result.  Each must exit 0 having seen the
# events in order and the step's question, and the execution must have
# completed with the app's answer.
#
# A language whose runtime is missing is skipped, saying so: python3 with
# psycopg, node and npm (scripts/bootstrap.sh installs them), or the npm
# registry when "npm install" cannot reach it.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

APPS=$CE_REPO/examples/apps
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chainexec-examples.XXXXXX")

cleanup()
{
	rm -rf "$TMP"
	psql -X -q >/dev/null 2>&1 <<-SQL
		DELETE FROM chainexec.universal_transactions WHERE chain_id = 'refund-approval';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = 'refund-approval';
	SQL
}
trap cleanup EXIT

check "examples/apps/refund_approval.sql defines the chain" psql_file "$APPS/refund_approval.sql"

# app_checks LANG OUTPUT STATUS: the checks of one app's run.
app_checks()
{
	local lang=$1 out=$2 rc=$3 id

	is "$rc" "0" "$lang: the app exits 0"
	like "$out" $'chain_started: pending.*\nstep_completed step 1 check_refund: completed.*\nstep_started step 2 approve_refund: waiting' \
		"$lang: it hears the events in order, the external step waiting last"
	like "$out" 'asks: Refund 25 EUR to Ada\?' "$lang: it reads the step's question from chainexec.step_runs"
	like "$out" 'chain_completed: completed \(100%\)' "$lang: it hears the chain complete"
	like "$out" 'status: completed, refunded: 25' "$lang: it prints the result"
	id=$(printf '%s\n' "$out" | sed -n 's/^started execution \([0-9a-f-]*\)$/\1/p')
	is "$(psql_q "SELECT output->'variables'->>'approved_by' FROM chainexec.step_runs WHERE execution_id = '${id:-00000000-0000-0000-0000-000000000000}' AND step_id = 2")" \
		"follow_chain.$4" "$lang: the external step was completed with the app's answer"
}

# ---- Python (psycopg 3)
PY=
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import psycopg' >/dev/null 2>&1; then
		PY=$p
		break
	fi
done
if [ -z "$PY" ]; then
	for i in 1 2 3 4 5 6; do
		skip "python: follow_chain.py" "skipped: no python3 with psycopg 3 (Debian package python3-psycopg)"
	done
else
	out=$(timeout 90 "$PY" "$APPS/follow_chain.py" 2>&1)
	rc=$?
	diag "python ($PY, psycopg $("$PY" -c 'import psycopg; print(psycopg.__version__)')):" "$out"
	app_checks python "$out" "$rc" py
fi

# ---- Node.js (pg from npm)
reason=
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	reason="skipped: node or npm is not installed (Debian packages nodejs, npm)"
else
	cp "$APPS/package.json" "$APPS/follow_chain.js" "$TMP/"
	if ! (cd "$TMP" && timeout 180 npm install --no-audit --no-fund --no-package-lock --loglevel=error) \
		>"$TMP/npm.log" 2>&1; then
		reason="skipped: npm install of pg failed (registry unreachable?): $(tail -n 1 "$TMP/npm.log")"
	fi
fi
if [ -n "$reason" ]; then
	for i in 1 2 3 4 5 6; do
		skip "node: follow_chain.js" "$reason"
	done
else
	out=$(cd "$TMP" && timeout 90 node follow_chain.js 2>&1)
	rc=$?
	diag "node $(node --version), pg $(cd "$TMP" && node -p 'require("pg/package.json").version'):" "$out"
	app_checks node "$out" "$rc" js
fi

done_testing
exit $?
