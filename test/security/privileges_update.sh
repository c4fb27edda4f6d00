#!/usr/bin/env bash
# test/security/privileges_update.sh: an installation of 0.1.0 with data,
# updated to 0.2.0, ends with the privileges of a fresh one.
#
# In a database of its own: CREATE EXTENSION chainexec VERSION '0.1.0';
# two LOGIN roles and a member of chainexec_admin register handlers and
# templates and define chains (0.1.0 let PUBLIC write the tables directly,
# and an attacker did); ALTER EXTENSION chainexec UPDATE; then PUBLIC holds
# no write privilege, every function that is not C pins its search_path,
# the admin's handlers and templates are shared and the others are their
# role's own, and a chain runs with its creator's handler.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
DB=sec_upd_$S
ATT=sec_upd_att_$S
VIC=sec_upd_vic_$S
ADM=sec_upd_adm_$S

cleanup()
{
	psql -X -q -d postgres >/dev/null 2>&1 <<-SQL
		DROP DATABASE IF EXISTS $DB WITH (FORCE);
		DROP ROLE IF EXISTS $ATT;
		DROP ROLE IF EXISTS $VIC;
		DROP ROLE IF EXISTS $ADM;
	SQL
}
trap cleanup EXIT

# q [ROLE] SQL: one statement in $DB, tuples only; errors on stdout.
q()
{
	local role=postgres
	[ $# -gt 1 ] && { role=$1; shift; }
	printf '%s\n' "$1" | psql -X -A -t -q -d "$DB" -U "$role" -v ON_ERROR_STOP=1 2>&1
}

psql -X -q -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || bail_out "setup failed"
CREATE DATABASE $DB;
CREATE ROLE $ATT LOGIN;
CREATE ROLE $VIC LOGIN;
CREATE ROLE $ADM LOGIN;
SQL
check "CREATE EXTENSION chainexec VERSION '0.1.0'" q "CREATE EXTENSION chainexec VERSION '0.1.0'"
q "GRANT chainexec_admin TO $ADM" >/dev/null
q "CREATE FUNCTION public.att_fn(a jsonb) RETURNS jsonb LANGUAGE sql AS \$\$ SELECT '{\"who\": \"attacker\"}'::jsonb \$\$;
   CREATE FUNCTION public.vic_fn(a jsonb) RETURNS jsonb LANGUAGE sql AS \$\$ SELECT '{\"who\": \"victim\"}'::jsonb \$\$;
   CREATE FUNCTION public.adm_fn(a jsonb) RETURNS jsonb LANGUAGE sql AS \$\$ SELECT '{\"who2\": \"admin\"}'::jsonb \$\$" >/dev/null

# Under 0.1.0: the attacker takes the name first; the admin registers a
# handler for everyone; the victim's chain uses both names.
q "$ATT" "SELECT chainexec.chain_register_handler('price', 'public.att_fn(jsonb)')" >/dev/null
q "$ADM" "SELECT chainexec.chain_register_handler('common', 'public.adm_fn(jsonb)')" >/dev/null
q "$ADM" "SELECT chainexec.chain_register_template('letter', 'Dear {name|''you''}')" >/dev/null
q "$VIC" "SELECT chainexec.chain_define('{\"id\": \"vic\", \"steps\": [{\"id\": 1, \"name\": \"c\", \"type\": \"function\", \"instructionSet\": \"common\", \"outputVariables\": [\"who2\"]}, {\"id\": 2, \"name\": \"p\", \"type\": \"function\", \"instructionSet\": \"price\", \"outputVariables\": [\"who\"]}]}', true)" >/dev/null
# 0.1.0 let PUBLIC write the tables: the attacker's own direct insert
is "$(q "$ATT" "INSERT INTO chainexec.templates (template_id, body) VALUES ('mine', 'x') RETURNING template_id")" "mine" \
	"under 0.1.0, PUBLIC could write the tables directly"

check "ALTER EXTENSION chainexec UPDATE TO '0.2.0'" q "ALTER EXTENSION chainexec UPDATE TO '0.2.0'"

is "$(q "SELECT count(*) FROM pg_class c
		  CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))) a
		 WHERE c.relnamespace = 'chainexec'::regnamespace AND a.grantee = 0 AND a.privilege_type <> 'SELECT'")" "0" \
	"after the update PUBLIC holds no write privilege on any relation"
is "$(q "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
		 WHERE p.pronamespace = 'chainexec'::regnamespace AND (l.lanname <> 'c' OR p.prosecdef)
		   AND NOT coalesce('search_path=pg_catalog, chainexec, pg_temp' = ANY (p.proconfig), false)
		   AND p.proname NOT IN ('current_organization', 'can_access', 'org_visible', 'smart_code', '_role_may')")" "0" \
	"after the update every function that is not C pins its search_path"
is "$(q "SELECT string_agg(name || ':' || shared, ',' ORDER BY name) FROM chainexec.handlers")" "common:true,price:false" \
	"the admin's handler is shared, the attacker's is its own"
is "$(q "SELECT string_agg(template_id || ':' || shared, ',' ORDER BY template_id) FROM chainexec.templates")" "letter:true,mine:false" \
	"the admin's template is shared, the attacker's is its own"
is "$(q "$ATT" "INSERT INTO chainexec.templates (template_id, body) VALUES ('mine2', 'x')" | sed -n 's/^.*\(permission denied\).*$/\1/p')" \
	"permission denied" "after the update the attacker's direct insert is refused"
run=$(q "$VIC" "CALL chainexec.chain_run('vic', '{}')")
if printf '%s' "$run" | grep -q '"who": "attacker"'; then
	not_ok "the victim's chain no longer runs the attacker's handler" "$run"
else
	ok "the victim's chain no longer runs the attacker's handler"
fi
like "$run" '"who2": "admin"|"who2":"admin"' "the victim's chain still runs the admin's shared handler"
is "$(q "$VIC" "SELECT chainexec.chain_register_handler('price', 'public.vic_fn(jsonb)')")" "" \
	"the victim registers its own handler under the taken name"
like "$(q "$VIC" "CALL chainexec.chain_run('vic', '{}')")" '"who": "victim"' "and its chain runs it"

done_testing
exit $?
