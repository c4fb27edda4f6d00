#!/usr/bin/env bash
# test/security/wait.sh: chain_wait, chain_await and chain_result keep
# their statements prepared for the whole session (src/api/wait.c,
# src/api/result.c); a plan made for one role or organization must never
# show another's execution.  In one session:
#  - a LOGIN role that waited for its own execution still sees another
#    role's as not existing (42704);
#  - after SET ROLE from one role to another, the second role does not see
#    the first one's execution;
#  - after a change of chainexec.organization_id, the session does not see
#    the executions of the organization it left, and sees them again when
#    it goes back;
#  - chain_result the same, after SET ROLE; and an attacker's schema first
#    in search_path, with its own count(*) and an always-true "=" on uuid
#    and on text, changes nothing: chain_result names every function and
#    operator with its schema.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
VICTIM=sec_wait_victim_$S
ATTACKER=sec_wait_attacker_$S
ORG_B=bbbbbbbb-2222-4000-8000-00000000$(printf '%04d' $((S % 10000)))
CH=sec-wait-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CH';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CH';
		RESET chainexec.internal;
		DROP OWNED BY $VICTIM, $ATTACKER CASCADE;
		DROP ROLE IF EXISTS $VICTIM, $ATTACKER;
	EOF
}
trap cleanup EXIT

# in_session ROLE STATEMENT...: the statements in one session of ROLE (a
# LOGIN role, or the superuser for ""); each statement's result, or the
# SQLSTATE of its error, on a line of its own.
in_session()
{
	local role=$1 args=()

	shift
	for q in "$@"; do
		args+=(-c "$q")
	done
	psql -X -A -t -q -v VERBOSITY=verbose ${role:+-U "$role"} "${args[@]}" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p; t; /^[A-Z]*:  /d; p'
}

plan 5

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-EOF || bail_out "could not create the roles"
	CREATE ROLE $VICTIM LOGIN;
	CREATE ROLE $ATTACKER LOGIN;
EOF
DEF="{\"id\": \"$CH\", \"steps\": [{\"id\": 1, \"name\": \"one\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS v\"}]}"
psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$VICTIM" -c "SELECT chainexec.chain_define('$DEF', true)" >/dev/null ||
	bail_out "could not define the chain"
V=$(psql -X -A -t -q -U "$VICTIM" -c "SELECT chainexec.chain_execute('$CH')") || bail_out "the victim could not start"
A=$(psql -X -A -t -q -U "$ATTACKER" -c "SELECT chainexec.chain_execute('$CH')") || bail_out "the attacker could not start"
W="->>'status'"

is "$(in_session "$ATTACKER" "SELECT chainexec.chain_wait('$A', 20000)$W" "SELECT chainexec.chain_wait('$V', 20000)$W" \
	"CALL chainexec.chain_await('$V', 1000)" | paste -sd' ')" "completed 42704 42704" \
	"one session: the attacker waits for its own execution, then chain_wait and chain_await see the victim's as not existing"
is "$(in_session "" "SET ROLE $VICTIM" "SELECT chainexec.chain_wait('$V', 20000)$W" "RESET ROLE" "SET ROLE $ATTACKER" \
	"SELECT chainexec.chain_wait('$V', 20000)$W" | paste -sd' ')" "completed 42704" \
	"one session, SET ROLE from the victim to the attacker: the attacker does not see the victim's execution"
is "$(in_session "$VICTIM" "SELECT chainexec.chain_wait('$V', 20000)$W" "SET chainexec.organization_id = '$ORG_B'" \
	"SELECT chainexec.chain_wait('$V', 20000)$W" "RESET chainexec.organization_id" \
	"SELECT chainexec.chain_wait('$V', 20000)$W" | paste -sd' ')" "completed 42704 completed" \
	"one session: another organization does not see the execution; back in its own it does"
R="->>'status'"
is "$(in_session "" "SET ROLE $VICTIM" "SELECT chainexec.chain_result('$V')$R" "RESET ROLE" "SET ROLE $ATTACKER" \
	"SELECT chainexec.chain_result('$V')$R" "SELECT chainexec.chain_result('$A')$R" | paste -sd' ')" "completed 42704 completed" \
	"one session, SET ROLE from the victim to the attacker: chain_result does not show the victim's execution"
psql_q "CREATE SCHEMA $ATTACKER AUTHORIZATION $ATTACKER" >/dev/null || bail_out "could not create the attacker's schema"
psql -X -q -v ON_ERROR_STOP=1 -U "$ATTACKER" >/dev/null 2>&1 <<-SQL || bail_out "could not create the attacker's operators"
	CREATE FUNCTION $ATTACKER.yes(uuid, uuid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
	CREATE OPERATOR $ATTACKER.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = $ATTACKER.yes);
	CREATE FUNCTION $ATTACKER.yes(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
	CREATE OPERATOR $ATTACKER.= (LEFTARG = text, RIGHTARG = text, FUNCTION = $ATTACKER.yes);
	CREATE AGGREGATE $ATTACKER.count(*) (SFUNC = pg_catalog.int8inc, STYPE = int8, INITCOND = '1000');
SQL
is "$(in_session "$ATTACKER" "SET search_path = $ATTACKER, pg_catalog, public" "SELECT chainexec.chain_result('$A')$R" \
	"SELECT chainexec.chain_result('$V')$R" "SELECT chainexec.chain_wait('$V', 1000)$R" \
	"SELECT chainexec.chain_result('$A')->'metadata'->>'stepsExecuted'" | paste -sd' ')" "completed 42704 42704 1" \
	"an attacker's operators and functions first in search_path: chain_result and chain_wait still show only its own execution"
