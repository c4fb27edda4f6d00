#!/usr/bin/env bash
# test/security/sandbox.sh: what a step may do (issue 9, items 1, 3, 4, 9,
# 10, 11), tried by LOGIN-only roles.
#
# Nothing a step leaves behind runs later as someone else: deferred
# triggers, temporary objects of every kind, prepared statements, cursors
# WITH HOLD, LISTEN, session advisory locks, sequences' lastval and settings
# end with the step, or fail it.  A step sees its owner everywhere
# (session_user, is_superuser, RLS on session_user).  Handlers are checked
# from pg_proc when called, whatever the handlers table says.  Data a step
# returns that cannot become variables fails the step (validation_failed),
# never the transition; an error of the transition itself ends as a failed
# attempt instead of a line claimed again forever.  The SQL text of a step
# is one statement that names only its own placeholders.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=600
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
ATT=sec_sbx_att_$S
VIC=sec_sbx_vic_$S
SCH=sbx_$S
LOG_START=$(log_offset)

# as ROLE [psql args]: psql as a LOGIN role, tuples only, stop on error.
as()
{
	local role=$1
	shift
	psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$role" "$@"
}

# define_sql ROLE ID SQL: define and publish chain ID: one sql step "s", no retries.
define_sql()
{
	as "$1" -v id="$2" -v sql="$3" >/dev/null <<-'EOF'
		SELECT chainexec.chain_define(jsonb_build_object('id', :'id', 'steps', jsonb_build_array(
			jsonb_build_object('id', 1, 'name', 's', 'type', 'sql', 'sql', :'sql',
			                   'retryConfig', jsonb_build_object('maxRetries', 0)))), true);
	EOF
}

# define_json ROLE ID DEFINITION-JSON (without the id): define and publish.
define_json()
{
	as "$1" -v id="$2" -v def="$3" >/dev/null <<-'EOF'
		SELECT chainexec.chain_define(:'def'::jsonb || jsonb_build_object('id', :'id'), true);
	EOF
}

# start ROLE ID: chain_execute; prints the execution id.
start()
{
	as "$1" -c "SELECT chainexec.chain_execute('$2')"
}

# outcome ROLE EXECUTION [TIMEOUT_MS]: wait for it; print status|failure_type|sqlstate.
outcome()
{
	as "$1" -c "SELECT chainexec.chain_wait('$2', ${3:-30000})" >/dev/null 2>&1
	psql_q "SELECT status || '|' || coalesce(error->>'failure_type', '') || '|' || coalesce(error->>'sqlstate', '')
	        FROM chainexec.universal_transactions WHERE id = '$2'"
}

# try ROLE NAME SQL: define chain sbx-NAME-$S with the one sql step, run it,
# print the outcome.
try()
{
	define_sql "$1" "sbx-$2-$S" "$3" || { echo "define failed"; return; }
	outcome "$1" "$(start "$1" "sbx-$2-$S")"
}

# context_of EXECUTION KEY: a variable of a finished execution.
context_of()
{
	psql_q "SELECT context->>'$2' FROM chainexec.universal_transactions WHERE id = '$1'"
}

# define_error ROLE DEFINITION-JSON: chain_define's error (message, detail) or "accepted".
define_error()
{
	local out
	if out=$(as "$1" -v def="$2" 2>&1 <<-'EOF'
		\set VERBOSITY default
		SELECT chainexec.chain_define(:'def'::jsonb);
	EOF
	); then
		echo accepted
	else
		printf '%s\n' "$out" | grep -E '^(ERROR|DETAIL):' | tr '\n' ' '
	fi
}

# many ROLE ID N: start N executions of chain ID at once; print their ids.
many()
{
	local i
	for ((i = 0; i < $3; i++)); do
		start "$1" "$2"
	done
}

# all_outcomes ROLE IDS...: the outcomes, one a line.
all_outcomes()
{
	local role=$1 e
	shift
	for e in "$@"; do
		outcome "$role" "$e"
	done
}

# plant NAME FUNCTION: a handlers row written around chain_register_handler
# (as the superuser, through the internal path), for role ATT.
plant()
{
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF
		SET chainexec.internal = on;
		DELETE FROM chainexec.handlers WHERE organization_id = chainexec.current_organization() AND name = '$1';
		INSERT INTO chainexec.handlers (organization_id, name, fn, registered_by)
		VALUES (chainexec.current_organization(), '$1', '$2', '$ATT');
	EOF
}

# handler_outcome NAME: run handler NAME in a function step of ATT; print
# status|failure_type|sqlstate|message.
handler_outcome()
{
	local e
	define_json "$ATT" "sbx-h-$1-$S" \
		"{\"steps\": [{\"id\": 1, \"name\": \"h\", \"type\": \"function\", \"instructionSet\": \"$1\"}]}" || return
	e=$(start "$ATT" "sbx-h-$1-$S")
	as "$ATT" -c "SELECT chainexec.chain_wait('$e', 20000)" >/dev/null 2>&1
	psql_q "SELECT status || '|' || coalesce(error->>'failure_type', '') || '|' || coalesce(error->>'sqlstate', '')
	        || '|' || coalesce(error->>'message', '') FROM chainexec.universal_transactions WHERE id = '$e'"
}

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DROP TRIGGER IF EXISTS sbx_boom_$S ON chainexec.universal_transaction_lines;
		DROP FUNCTION IF EXISTS public.sbx_boom_$S();
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'sbx-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'sbx-%-$S';
		DELETE FROM chainexec.handlers WHERE registered_by::text IN ('$ATT', '$VIC');
		DROP TABLE IF EXISTS public.sbx_effects_$S;
		DROP SCHEMA IF EXISTS $SCH CASCADE;
		DROP OWNED BY $ATT, $VIC CASCADE;
		DROP ROLE IF EXISTS $ATT;
		DROP ROLE IF EXISTS $VIC;
	EOF
}
trap cleanup EXIT

plan 69

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
NEXEC=$(psql_q "SHOW chainexec.max_workers")
poll_query_until "SELECT count(*) >= $NEXEC FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 ||
	bail_out "the executors are not running"
# Enough executions at once that every executor runs one.
K=$((NEXEC * 2))

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "could not set up roles and tables"
CREATE ROLE $ATT LOGIN;
CREATE ROLE $VIC LOGIN;
CREATE SCHEMA $SCH;
GRANT USAGE, CREATE ON SCHEMA $SCH TO $ATT, $VIC;
-- who ran the attacker's code: current_user and session_user
CREATE TABLE $SCH.who (tag text, cu text, su text);
GRANT INSERT, SELECT ON $SCH.who TO PUBLIC;
-- a table the victim's steps write to, by an unqualified name
CREATE TABLE public.sbx_effects_$S (who text);
GRANT INSERT, SELECT ON public.sbx_effects_$S TO PUBLIC;
-- rows visible by session_user
CREATE TABLE $SCH.secrets (owner_name name, secret text);
INSERT INTO $SCH.secrets VALUES (session_user, 'root-secret'), ('$ATT', 'mine');
ALTER TABLE $SCH.secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_session ON $SCH.secrets USING (owner_name = session_user);
GRANT SELECT ON $SCH.secrets TO $ATT;
EOF

as "$ATT" >/dev/null <<EOF || bail_out "could not set up the attacker's objects"
CREATE FUNCTION $SCH.log_who() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	INSERT INTO $SCH.who VALUES (TG_ARGV[0], current_user, session_user);
	RETURN NULL;
END
\$\$;
CREATE TABLE $SCH.deferred (x int);
CREATE CONSTRAINT TRIGGER log_at_commit AFTER INSERT ON $SCH.deferred
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION $SCH.log_who('deferred');
CREATE TABLE $SCH.deferrable (x int);
CREATE CONSTRAINT TRIGGER log_when_set AFTER INSERT ON $SCH.deferrable
	DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW EXECUTE FUNCTION $SCH.log_who('set-deferred');
CREATE TABLE $SCH.immediate (x int);
CREATE CONSTRAINT TRIGGER log_immediate AFTER INSERT ON $SCH.immediate
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION $SCH.log_who('immediate');
CREATE SEQUENCE $SCH.seq;
GRANT USAGE, SELECT ON SEQUENCE $SCH.seq TO PUBLIC;
EOF

SUPERS="(SELECT rolname::text FROM pg_roles WHERE rolsuper)"

# --- 0. A step cannot control the transaction: 2D000, not an internal error
like "$(try "$ATT" savepoint "SAVEPOINT x")" '^failed\|[a-z_]*\|2D000$' \
	"a step that runs SAVEPOINT fails with 2D000"
like "$(try "$ATT" commit "COMMIT")" '^failed\|[a-z_]*\|2D000$' "a step that runs COMMIT fails with 2D000"

# --- 1. Deferred triggers never fire at the executor's commit -------------
is "$(try "$ATT" deferred "INSERT INTO $SCH.deferred VALUES (1)")" "failed|permission_denied|42501" \
	"a step that queues a deferred trigger fails with 42501"
is "$(try "$ATT" setdeferred "DO \$d\$ BEGIN SET CONSTRAINTS ALL DEFERRED; INSERT INTO $SCH.deferrable VALUES (1); END \$d\$")" \
	"failed|permission_denied|42501" "a step that defers a trigger with SET CONSTRAINTS fails with 42501"
is "$(try "$ATT" tempdeferred "DO \$d\$ BEGIN
	CREATE FUNCTION pg_temp.ev() RETURNS trigger LANGUAGE plpgsql AS \$f\$ BEGIN
		INSERT INTO $SCH.who VALUES ('temp', current_user, session_user); RETURN NULL; END \$f\$;
	CREATE TEMP TABLE tt (x int);
	CREATE CONSTRAINT TRIGGER ct AFTER INSERT ON tt DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION pg_temp.ev();
	INSERT INTO tt VALUES (1);
END \$d\$")" "failed|permission_denied|42501" "the deferred trigger on a temporary table of issue 9 fails the step"
is "$(try "$ATT" immediate "DO \$d\$ BEGIN SET CONSTRAINTS ALL IMMEDIATE; INSERT INTO $SCH.immediate VALUES (1); END \$d\$")" \
	"completed||" "a step that makes its constraints IMMEDIATE runs its trigger"
is "$(psql_q "SELECT cu || '/' || su FROM $SCH.who WHERE tag = 'immediate'")" "$ATT/$ATT" \
	"the trigger ran inside the step, as the owner and with the owner as session user"
is "$(psql_q "SELECT count(*) FROM $SCH.who WHERE cu IN $SUPERS OR su IN $SUPERS")" "0" \
	"no trigger of the attacker ever ran as a superuser"

# Rollback actions run in the same sandbox: a SQL one, and a handler one.
as "$ATT" >/dev/null <<EOF
CREATE FUNCTION $SCH.h_who(a jsonb) RETURNS jsonb LANGUAGE sql AS
	\$\$ INSERT INTO $SCH.who VALUES ('comp', current_user, session_user) RETURNING '{}'::jsonb \$\$;
SELECT chainexec.chain_register_handler('sbx_who_$S', '$SCH.h_who(jsonb)');
EOF
define_json "$ATT" "sbx-comp-$S" "{\"rollbackEnabled\": true, \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS one\",
	 \"rollbackAction\": \"INSERT INTO $SCH.deferred VALUES (2)\"},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 2 AS two\", \"rollbackAction\": \"sbx_who_$S\"},
	{\"id\": 3, \"name\": \"c\", \"type\": \"sql\", \"sql\": \"SELECT 1/0 AS boom\", \"retryConfig\": {\"maxRetries\": 0}}]}"
e=$(start "$ATT" "sbx-comp-$S")
outcome "$ATT" "$e" >/dev/null
poll_query_until "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$e'
	AND line_type = 'compensation' AND status IN ('completed', 'failed')" 2 20 >/dev/null
is "$(psql_q "SELECT status || '|' || (error->>'sqlstate') FROM chainexec.universal_transaction_lines
               WHERE transaction_id = '$e' AND line_type = 'compensation' AND step_id = 1")" "failed|42501" \
	"a SQL rollbackAction that queues a deferred trigger fails with 42501"
is "$(psql_q "SELECT cu || '/' || su FROM $SCH.who WHERE tag = 'comp'")" "$ATT/$ATT" \
	"a handler rollbackAction runs as the owner, with the owner as session user"

# --- 2. No temporary object outlives a step --------------------------------
is "$(try "$ATT" temptable "CREATE TEMP TABLE sbx_t (x int)")" "failed|permission_denied|42501" \
	"a step cannot create a temporary table"
is "$(try "$ATT" oncommitdrop "CREATE TEMP TABLE sbx_t (x int) ON COMMIT DROP")" "failed|permission_denied|42501" \
	"a step cannot create a temporary table ON COMMIT DROP"
is "$(try "$ATT" oncommitdelete "CREATE TEMP TABLE sbx_t (x int) ON COMMIT DELETE ROWS")" "failed|permission_denied|42501" \
	"a step cannot create a temporary table ON COMMIT DELETE ROWS"
is "$(try "$ATT" tempfn "CREATE FUNCTION pg_temp.lower(text) RETURNS text LANGUAGE sql AS 'SELECT ''pwned'''")" \
	"failed|permission_denied|42501" "a step cannot create a temporary function"
is "$(try "$ATT" tempop "CREATE OPERATOR pg_temp.=== (FUNCTION = int4eq, LEFTARG = int, RIGHTARG = int)")" \
	"failed|permission_denied|42501" "a step cannot create a temporary operator"
is "$(try "$ATT" temptype "CREATE TYPE pg_temp.sbx_ty AS (a int)")" "failed|permission_denied|42501" \
	"a step cannot create a temporary composite type"
is "$(try "$ATT" tempdomain "CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (VALUE <> '')")" \
	"failed|permission_denied|42501" "a step cannot create a temporary domain shadowing a type"
is "$(try "$ATT" tempview "CREATE TEMP VIEW sbx_v AS SELECT 1 AS x")" "failed|permission_denied|42501" \
	"a step cannot create a temporary view"
is "$(try "$ATT" tempseq "CREATE TEMP SEQUENCE sbx_s")" "failed|permission_denied|42501" \
	"a step cannot create a temporary sequence"

# The victim's unqualified INSERT target, shadowed by the attacker's
# temporary tables on every executor (two owners on the same executors).
define_sql "$ATT" "sbx-shadow-$S" "DO \$d\$ BEGIN
	CREATE TEMP TABLE sbx_effects_$S (who text);
	PERFORM pg_sleep(0.3);
END \$d\$"
define_sql "$VIC" "sbx-victim-$S" "INSERT INTO sbx_effects_$S VALUES (session_user) RETURNING who"
mapfile -t ids < <(many "$ATT" "sbx-shadow-$S" "$K")
all_outcomes "$ATT" "${ids[@]}" >/dev/null
mapfile -t ids < <(many "$VIC" "sbx-victim-$S" "$K")
got=$(all_outcomes "$VIC" "${ids[@]}" | sort | uniq -c | sed 's/^ *//' | tr '\n' ' ')
is "$got" "$K completed|| " "the victim's executions on every executor complete"
is "$(psql_q "SELECT count(*) FROM public.sbx_effects_$S WHERE who = '$VIC'")" "$K" \
	"every victim row landed in the real table, none in another owner's temporary table"

# --- 3. No session state outlives a step -----------------------------------
is "$(try "$ATT" prepare "DO \$d\$ BEGIN EXECUTE 'PREPARE sbx_p AS SELECT 1'; END \$d\$")" \
	"failed|permission_denied|42501" "a step cannot PREPARE a statement"
is "$(try "$ATT" withhold "DO \$d\$ BEGIN EXECUTE 'DECLARE sbx_c CURSOR WITH HOLD FOR SELECT 1'; END \$d\$")" \
	"failed|permission_denied|42501" "a step cannot declare a cursor WITH HOLD"
is "$(try "$ATT" listen "DO \$d\$ BEGIN EXECUTE 'LISTEN sbx_channel'; END \$d\$")" \
	"failed|permission_denied|42501" "a step cannot LISTEN in an executor"
is "$(try "$ATT" load "LOAD 'plpgsql'")" "failed|permission_denied|42501" \
	"a step cannot LOAD a library into the session"
is "$(try "$ATT" advlock "SELECT pg_advisory_lock(7781$S) IS NULL AS x")" "completed||" \
	"a step may take a session advisory lock"
is "$(psql_q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7781$S")" "0" \
	"the executor released it after the step"
is "$(try "$ATT" advshared "SELECT pg_advisory_lock_shared(7782$S) IS NULL AS x")" "completed||" \
	"a step may take a shared session advisory lock"
is "$(psql_q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7782$S")" "0" \
	"the executor released the shared lock after the step"

define_sql "$ATT" "sbx-seq-$S" "SELECT nextval('$SCH.seq') AS n, pg_sleep(0.3) AS z"
define_sql "$VIC" "sbx-lastval-$S" "SELECT lastval() AS v"
mapfile -t ids < <(many "$ATT" "sbx-seq-$S" "$K")
all_outcomes "$ATT" "${ids[@]}" >/dev/null
mapfile -t ids < <(many "$VIC" "sbx-lastval-$S" "$K")
is "$(all_outcomes "$VIC" "${ids[@]}" | grep -c '^completed')" "0" \
	"lastval() in a later step of another owner never sees the attacker's sequence"

define_sql "$ATT" "sbx-setcfg-$S" "SELECT set_config('search_path', '$SCH, public', false) AS p,
	set_config('work_mem', '7777kB', false) AS w, pg_sleep(0.2) AS z"
define_sql "$VIC" "sbx-getcfg-$S" "SELECT current_setting('search_path') || ' ' || current_setting('work_mem') AS cfg"
mapfile -t ids < <(many "$ATT" "sbx-setcfg-$S" "$K")
all_outcomes "$ATT" "${ids[@]}" >/dev/null
mapfile -t ids < <(many "$VIC" "sbx-getcfg-$S" "$K")
all_outcomes "$VIC" "${ids[@]}" >/dev/null
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'sbx-getcfg-$S'
               AND (context->>'cfg' LIKE '%$SCH%' OR context->>'cfg' LIKE '%7777kB%')")" "0" \
	"settings a step changes with set_config(..., false) end with it (regression)"
define_sql "$ATT" "sbx-setsess-$S" "DO \$d\$ BEGIN SET SESSION work_mem = '6666kB'; SET SESSION search_path = $SCH;
	PERFORM pg_sleep(0.2); END \$d\$"
mapfile -t ids < <(many "$ATT" "sbx-setsess-$S" "$K")
all_outcomes "$ATT" "${ids[@]}" >/dev/null
mapfile -t ids < <(many "$VIC" "sbx-getcfg-$S" "$K")
all_outcomes "$VIC" "${ids[@]}" >/dev/null
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = 'sbx-getcfg-$S'
               AND (context->>'cfg' LIKE '%$SCH%' OR context->>'cfg' LIKE '%6666kB%')")" "0" \
	"settings a step changes with SET SESSION end with it (regression)"
is "$(try "$ATT" setrole "SET ROLE postgres")" "failed|permission_denied|42501" \
	"a step cannot SET ROLE (regression)"
is "$(try "$ATT" setsessauth "SET SESSION AUTHORIZATION postgres")" "failed|permission_denied|42501" \
	"a step cannot SET SESSION AUTHORIZATION to the executor's superuser (regression)"
is "$(try "$ATT" setcfgrole "SELECT set_config('role', 'postgres', false) AS r")" "failed|permission_denied|42501" \
	"a step cannot set_config('role') (regression)"

# --- 4. A step sees its owner everywhere -----------------------------------
define_sql "$ATT" "sbx-id-$S" "SELECT session_user::text AS su, current_setting('is_superuser') AS isu,
	pg_has_role(session_user, 'pg_execute_server_program', 'MEMBER') AS prog,
	(SELECT string_agg(secret, ',') FROM $SCH.secrets) AS seen"
e=$(start "$ATT" "sbx-id-$S")
is "$(outcome "$ATT" "$e")" "completed||" "the identity step completes"
is "$(context_of "$e" su)" "$ATT" "session_user in an executor's step is the owner"
is "$(context_of "$e" isu)" "off" "is_superuser in an executor's step is off"
is "$(context_of "$e" prog)" "false" "pg_has_role(session_user, ...) sees the owner's roles"
is "$(context_of "$e" seen)" "mine" "an RLS policy on session_user shows the owner's rows only"

# chain_run: the caller's session, its temporary tables and settings
define_sql "$ATT" "sbx-inrun-$S" "INSERT INTO session_log VALUES (session_user, current_setting('is_superuser'),
	current_setting('sbx.tag')) RETURNING who"
is "$(as "$ATT" <<-EOF 2>&1
	CREATE TEMP TABLE session_log (who text, isu text, tag text);
	SET sbx.tag = 'mine';
	CALL chainexec.chain_run('sbx-inrun-$S', '{}', '{}', NULL) \\g /dev/null
	SELECT who || '/' || isu || '/' || tag FROM session_log;
EOF
)" "$ATT/off/mine" "chain_run steps see the caller's temporary table, settings and identity"
define_sql "$ATT" "sbx-inrunfn-$S" "CREATE FUNCTION pg_temp.sbx_f() RETURNS int LANGUAGE sql AS 'SELECT 1'"
is "$(as "$ATT" <<-EOF 2>&1
	CREATE TEMP TABLE session_log (who text);
	CALL chainexec.chain_run('sbx-inrunfn-$S', '{}', '{}', NULL) \\g /dev/null
	SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema();
	SELECT status || '|' || (error->>'sqlstate') FROM chainexec.universal_transactions WHERE chain_id = 'sbx-inrunfn-$S';
EOF
)" $'0\nfailed|42501' "a chain_run step cannot create a temporary function in the caller's session either"

# --- 5. Handlers are checked when called -----------------------------------
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "could not create the bad handlers"
CREATE PROCEDURE $SCH.h_proc(INOUT x jsonb) LANGUAGE plpgsql AS \$\$ BEGIN x := '{}'; END \$\$;
CREATE AGGREGATE $SCH.h_agg(jsonb) (SFUNC = jsonb_concat, STYPE = jsonb);
CREATE FUNCTION $SCH.h_two(a jsonb, b int) RETURNS jsonb LANGUAGE sql AS 'SELECT a';
CREATE FUNCTION $SCH.h_json(a jsonb) RETURNS json LANGUAGE sql AS 'SELECT a::json';
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA $SCH TO PUBLIC;
GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA $SCH TO PUBLIC;
EOF
plant "sbx_len_$S" "pg_catalog.length(bytea)"
plant "sbx_srf_$S" "pg_catalog.jsonb_array_elements(jsonb)"
plant "sbx_proc_$S" "$SCH.h_proc(jsonb)"
plant "sbx_agg_$S" "$SCH.h_agg(jsonb)"
plant "sbx_two_$S" "$SCH.h_two(jsonb, int)"
plant "sbx_json_$S" "$SCH.h_json(jsonb)"
like "$(handler_outcome "sbx_len_$S")" '^failed\|invalid_input\|42P13\|function length\(bytea\) of handler .* cannot be called as a handler$' \
	"a handler row naming length(bytea) fails the step, no crash"
like "$(handler_outcome "sbx_srf_$S")" '^failed\|invalid_input\|42P13\|.*cannot be called as a handler$' \
	"a set-returning handler fails the step"
like "$(handler_outcome "sbx_proc_$S")" '^failed\|invalid_input\|42P13\|.*cannot be called as a handler$' \
	"a procedure as a handler fails the step"
like "$(handler_outcome "sbx_agg_$S")" '^failed\|invalid_input\|42P13\|.*cannot be called as a handler$' \
	"an aggregate as a handler fails the step"
like "$(handler_outcome "sbx_two_$S")" '^failed\|invalid_input\|42P13\|.*cannot be called as a handler$' \
	"a handler of two arguments fails the step"
like "$(handler_outcome "sbx_json_$S")" '^failed\|invalid_input\|42P13\|.*cannot be called as a handler$' \
	"a handler returning json, not jsonb, fails the step"
as "$ATT" >/dev/null <<EOF
CREATE FUNCTION $SCH.h_gone(a jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT a';
SELECT chainexec.chain_register_handler('sbx_gone_$S', '$SCH.h_gone(jsonb)');
DROP FUNCTION $SCH.h_gone(jsonb);
CREATE FUNCTION $SCH.h_gone(a text) RETURNS jsonb LANGUAGE sql AS 'SELECT a::jsonb';
EOF
like "$(handler_outcome "sbx_gone_$S")" '^failed\|resource_not_found\|42883\|function of handler .* does not exist$' \
	"a handler whose function was dropped (and replaced by another signature) fails the step"
is "$(tail -c +"$((LOG_START + 1))" "$CE_CLUSTER_LOG" | grep -c 'terminated by signal')" "0" \
	"no server process died"
is "$(try "$VIC" alive "SELECT 1 AS one")" "completed||" "other executions still complete"

# --- 6. Data a step returns fails the step, never the transition ----------
define_json "$ATT" "sbx-nul-$S" '{"steps": [{"id": 1, "name": "t", "type": "template",
	"template": "{{\"a\": \"\\u0000\", \"b\": 1}}", "outputVariables": ["a", "b"]}]}'
is "$(outcome "$ATT" "$(start "$ATT" "sbx-nul-$S")" 15000)" "failed|validation_failed|22P05" \
	"a template rendering \\u0000 into variables fails the step"
define_json "$ATT" "sbx-num-$S" '{"steps": [{"id": 1, "name": "t", "type": "template",
	"template": "{{\"a\": 1e999999, \"b\": 1}}", "outputVariables": ["a", "b"]}]}'
is "$(outcome "$ATT" "$(start "$ATT" "sbx-num-$S")" 15000)" "failed|validation_failed|22003" \
	"a template rendering a number out of range fails the step"
as "$ATT" >/dev/null <<EOF
CREATE FUNCTION $SCH.h_esc(a jsonb) RETURNS jsonb LANGUAGE sql AS \$\$ SELECT '{"v": "\\\\u0000"}'::jsonb \$\$;
SELECT chainexec.chain_register_handler('sbx_esc_$S', '$SCH.h_esc(jsonb)');
EOF
define_json "$ATT" "sbx-hnul-$S" "{\"steps\": [
	{\"id\": 1, \"name\": \"h\", \"type\": \"function\", \"instructionSet\": \"sbx_esc_$S\", \"outputVariables\": [\"v\"]},
	{\"id\": 2, \"name\": \"t\", \"type\": \"template\", \"template\": \"{{\\\"a\\\": \\\"{v}\\\", \\\"b\\\": 1}}\",
	 \"outputVariables\": [\"a\", \"b\"]}]}"
is "$(outcome "$ATT" "$(start "$ATT" "sbx-hnul-$S")" 15000)" "failed|validation_failed|22P05" \
	"a handler's output carrying \\u0000 into a template fails that step"
is "$(try "$ATT" jsonnul "SELECT '{{\"a\": \"\\u0000\"}}'::json AS x")" "failed|validation_failed|22P05" \
	"a sql step returning json with \\u0000 fails with validation_failed"
as "$ATT" >/dev/null <<EOF
CREATE FUNCTION $SCH.h_big(a jsonb) RETURNS jsonb LANGUAGE sql AS \$\$ SELECT jsonb_build_object('big', repeat('x', 3000000)) \$\$;
SELECT chainexec.chain_register_handler('sbx_big_$S', '$SCH.h_big(jsonb)');
EOF
like "$(handler_outcome "sbx_big_$S")" '^failed\|validation_failed\|54000\|' \
	"an oversized handler output fails the step with validation_failed"
define_json "$ATT" "sbx-deep-$S" "{\"outputSchema\": {\"type\": \"object\"}, \"steps\": [{\"id\": 1, \"name\": \"s\", \"type\": \"sql\",
	\"sql\": \"SELECT (repeat('[', 80) || repeat(']', 80))::jsonb AS deep\", \"retryConfig\": {\"maxRetries\": 0}}]}"
is "$(outcome "$ATT" "$(start "$ATT" "sbx-deep-$S")" 15000)" "failed|validation_failed|54000" \
	"an output nested too deep to read back fails the step"

# An error of the transition outside the step: recorded, not claimed forever.
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE FUNCTION public.sbx_boom_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.step_name = 'boom' AND NEW.status = 'completed' AND EXISTS (SELECT FROM chainexec.universal_transactions t
	   WHERE t.id = NEW.transaction_id AND t.chain_id = 'sbx-boom-$S') THEN
		RAISE EXCEPTION 'bookkeeping failed on purpose';
	END IF;
	RETURN NEW;
END
\$\$;
CREATE TRIGGER sbx_boom_$S BEFORE UPDATE ON chainexec.universal_transaction_lines
	FOR EACH ROW EXECUTE FUNCTION public.sbx_boom_$S();
EOF
define_json "$ATT" "sbx-boom-$S" '{"steps": [{"id": 1, "name": "boom", "type": "sql", "sql": "SELECT 1 AS x"}]}'
e=$(start "$ATT" "sbx-boom-$S")
is "$(try "$VIC" meanwhile "SELECT 2 AS two")" "completed||" "other executions complete while a transition fails"
is "$(outcome "$ATT" "$e" 20000)" "failed|internal_error|P0001" \
	"a transition that fails outside its step ends as a failed attempt (internal_error)"
is "$(psql_q "SELECT status || '|' || attempt FROM chainexec.universal_transaction_lines WHERE transaction_id = '$e'")" \
	"failed|1" "the attempt is counted on the line"

# --- 7. The SQL text of a step: one statement, its own parameters ---------
like "$(define_error "$ATT" '{"id": "sbx-p", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT {a}::text AS x, $300::text AS y"}]}')" \
	'ERROR: +invalid chain definition: "sql" of step "a" refers to parameter \$300 at steps\[0\]\.sql' \
	"chain_define refuses \$300 in a sql step, naming the path"
like "$(define_error "$ATT" '{"id": "sbx-p", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT $1 AS x"}]}')" \
	'refers to parameter \$1 at steps\[0\]\.sql' "chain_define refuses \$1 in a step without placeholders"
like "$(define_error "$ATT" '{"id": "sbx-p", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1; SELECT 2"}]}')" \
	'must be exactly one SQL statement at steps\[0\]\.sql .*It holds 2 statements' \
	"chain_define refuses two statements in a sql step"
like "$(define_error "$ATT" '{"id": "sbx-p", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1 AS x", "rollbackAction": "DELETE FROM t; DROP TABLE t"}]}')" \
	'must be exactly one SQL statement at steps\[0\]\.rollbackAction' \
	"chain_define refuses two statements in a SQL rollbackAction"
like "$(define_error "$ATT" '{"id": "sbx-p", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1 AS x", "rollbackAction": "DELETE FROM t", "verificationQuery": "SELECT $2"}]}')" \
	'refers to parameter \$2 at steps\[0\]\.verificationQuery' "chain_define refuses \$n in a verificationQuery"
like "$(define_error "$ATT" '{"id": "sbx-p", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1 AS x", "onFailure": "fallback", "fallbackStep": {"id": 2, "name": "b", "type": "sql", "sql": "SELECT 1; SELECT 2"}}]}')" \
	'at steps\[0\]\.fallbackStep\.sql' "chain_define refuses two statements in a fallbackStep"
like "$(define_error "$ATT" '{"id": "sbx-p", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT {a} AS x FROM WHERE"}]}')" \
	'is not valid SQL: syntax error at or near "WHERE" at steps\[0\]\.sql .*DETAIL: +At character 21 of the statement' \
	"chain_define reports a syntax error with its position"

# At run time too, whatever the stored definition says.
define_sql "$ATT" "sbx-p300-$S" "SELECT {a}::text AS x"
define_sql "$ATT" "sbx-two-$S" "SELECT 1 AS x"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF
SET session_replication_role = replica;
UPDATE chainexec.chains SET definition = jsonb_set(definition, '{steps,0,sql}', '"SELECT {a}::text AS x, \$300::text AS y"')
 WHERE chain_id = 'sbx-p300-$S';
UPDATE chainexec.chains SET definition = jsonb_set(definition, '{steps,0,sql}', '"SELECT 1 AS x; SELECT 2 AS y"')
 WHERE chain_id = 'sbx-two-$S';
EOF
is "$(outcome "$ATT" "$(as "$ATT" -c "SELECT chainexec.chain_execute('sbx-p300-$S', '{\"a\": \"z\"}')")")" \
	"failed|syntax_error|42P02" "a stored sql step naming \$300 fails at run time without binding past its values"
is "$(outcome "$ATT" "$(start "$ATT" "sbx-two-$S")")" "failed|syntax_error|42601" \
	"a stored sql step of two statements fails at run time"

done_testing
