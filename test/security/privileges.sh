#!/usr/bin/env bash
# test/security/privileges.sh: what a LOGIN-only role can do to chainexec's
# definitions, handlers, templates and tables, and to code chainexec runs
# as its owner.
#
# Attacks, each a TAP line that passes when the attack fails:
#   - shadowed types: temporary tables named text, uuid, jsonb, int4 and
#     regrole whose column is a domain with a CHECK calling a pg_temp
#     function, then every public function: the function must never run as
#     another role (the extension owner);
#   - direct writes: INSERT, UPDATE, DELETE, TRUNCATE on every table, rows
#     locked FOR UPDATE, LOCK TABLE in the modes that block others, an
#     advisory lock on chain_define's key: all refused, or blocking nobody;
#   - another role's chain: new versions, publish, deprecate, reactivate,
#     archive refused (42501, the owner named in the hint); two sessions
#     defining a new chain id at once;
#   - handler and template names registered first by another role do not
#     capture a chain; sharing is chainexec_admin's; other roles' handlers,
#     templates and schedules are not readable;
#   - times out of range (runAt near the end of time plus a timeout,
#     infinity) are refused, and the tables stay readable and dumpable.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
ATT=sec_priv_att_$S		# the attacker
VIC=sec_priv_vic_$S		# the victim
NS=sec_priv_$S			# the handler functions
CH=sec-priv-$S			# chain ids start with this
ORG_B=22222222-2222-2222-2222-$(printf '%012d' "$S")
BG_PIDS=()

# as ROLE: psql as ROLE, SQL on standard input, errors with their SQLSTATE.
as()
{
	psql -X -A -t -q -U "$1" -v VERBOSITY=sqlstate 2>&1
}

# as_plain ROLE: as, with messages in full.
as_plain()
{
	psql -X -A -t -q -U "$1" 2>&1
}

# state ROLE SQL: "ok" when SQL runs without error as ROLE, else the
# SQLSTATE of the first error.
state()
{
	local out
	out=$(printf '%s\n' "$2" | psql -X -A -t -q -U "$1" -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate 2>&1)
	if [ $? -eq 0 ]; then
		echo ok
	else
		printf '%s\n' "$out" | sed -n 's/^.*ERROR:  \([0-9A-Z]\{5\}\).*$/\1/p' | head -1
	fi
}

cleanup()
{
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	psql -X -q -v ON_ERROR_STOP=0 >/dev/null 2>&1 <<-SQL
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN ('$ATT', '$VIC');
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE '$CH-%';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE '$CH-%';
		RESET chainexec.internal;
		DELETE FROM chainexec.handlers WHERE registered_by::text IN ('$ATT', '$VIC') OR name LIKE 'sec_priv_$S%';
		DELETE FROM chainexec.templates WHERE registered_by::text IN ('$ATT', '$VIC') OR template_id LIKE 'sec_priv_$S%';
		DELETE FROM chainexec.schedules WHERE created_by::text IN ('$ATT', '$VIC');
		DROP SCHEMA IF EXISTS $NS CASCADE;
		SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'sec_priv_$S%';
		REVOKE USAGE ON SCHEMA cron FROM $ATT, $VIC;
		DROP ROLE IF EXISTS $ATT;
		DROP ROLE IF EXISTS $VIC;
	SQL
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL || bail_out "setup failed"
CREATE EXTENSION IF NOT EXISTS chainexec;
CREATE ROLE $ATT LOGIN;
CREATE ROLE $VIC LOGIN;
CREATE SCHEMA $NS;
GRANT USAGE ON SCHEMA $NS TO PUBLIC;
GRANT CREATE ON SCHEMA $NS TO $ATT;
CREATE FUNCTION $NS.att_fn(a jsonb) RETURNS jsonb LANGUAGE sql AS \$\$ SELECT '{"who": "attacker"}'::jsonb \$\$;
CREATE FUNCTION $NS.vic_fn(a jsonb) RETURNS jsonb LANGUAGE sql AS \$\$ SELECT '{"who": "victim"}'::jsonb \$\$;
SQL

# the victim's chains: one published (its executions are the attacker's
# targets), one with a draft only
as "$VIC" >/dev/null <<SQL
SELECT chainexec.chain_define('{"id": "$CH-vic", "steps": [{"id": 1, "name": "a", "type": "external"}]}', true);
SELECT chainexec.chain_define('{"id": "$CH-vic", "steps": [{"id": 1, "name": "a", "type": "external", "timeoutMs": 1000}]}', false);
SELECT chainexec.chain_define('{"id": "$CH-draft", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}');
SQL

# ---------------------------------------------------------------------------
# 1. Shadowed types.  The trap reports the role it runs as; it must only
# ever run as the attacker.
# ---------------------------------------------------------------------------
as "$ATT" >/dev/null <<SQL
SELECT chainexec.chain_define('{"id": "$CH-att", "steps": [{"id": 1, "name": "a", "type": "external"}]}', true);
SQL
ATT_EXEC=$(printf "SELECT chainexec.chain_execute('%s')\n" "$CH-att" | as "$ATT" | grep -E '^[0-9a-f-]{36}$' | tail -1)

FUNCS=(
	"chain_pause|SELECT chainexec.chain_pause('$ATT_EXEC')"
	"chain_resume|SELECT chainexec.chain_resume('$ATT_EXEC')"
	"chain_skip_step|SELECT chainexec.chain_skip_step('$ATT_EXEC', 1, '{\"x\": 1}')"
	"chain_retry_step|SELECT chainexec.chain_retry_step('$ATT_EXEC', 1)"
	"chain_rollback_plan|SELECT chainexec.chain_rollback_plan('$ATT_EXEC')"
	"chain_status|SELECT chainexec.chain_status('$ATT_EXEC')"
	"chain_result|SELECT chainexec.chain_result('$ATT_EXEC')"
	"chain_define|SELECT chainexec.chain_define('{\"id\": \"$CH-att\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"external\"}]}', true)"
	"chain_register_template|SELECT chainexec.chain_register_template('sec_priv_${S}_t', '(1)')"
	"chain_execute|SELECT chainexec.chain_execute('$CH-att', '{\"k\": \"(1)\"}')"
	"chain_history|SELECT * FROM chainexec.chain_history('$CH-att')"
	"chain_validate|SELECT chainexec.chain_validate('$CH-att', '{\"k\": \"(1)\"}')"
	"chain_wait|SELECT chainexec.chain_wait('$ATT_EXEC', 0)"
	"chain_register_handler|SELECT chainexec.chain_register_handler('sec_priv_${S}_h', '$NS.att_fn(jsonb)')"
	"chain_run|CALL chainexec.chain_run('$CH-att', '{\"k\": \"(1)\"}')"
	"chain_step_complete|SELECT chainexec.chain_step_complete('$ATT_EXEC', 1, '{\"k\": \"(1)\"}')"
	"chain_rollback|SELECT chainexec.chain_rollback('$ATT_EXEC')"
	"chain_step_fail|SELECT chainexec.chain_step_fail(chainexec.chain_execute('$CH-att'), 1, 'x', '(1)')"
	"chain_cancel|SELECT chainexec.chain_cancel('$ATT_EXEC', '(1)')"
	"chain_publish|SELECT chainexec.chain_publish('$CH-att', 1)"
	"chain_deprecate|SELECT chainexec.chain_deprecate('$CH-att')"
	"chain_reactivate|SELECT chainexec.chain_reactivate('$CH-att', 1)"
	"chain_archive|SELECT chainexec.chain_archive('$CH-att', 2)"
)

for T in text uuid jsonb int4 regrole; do
	script=$(
		cat <<-SQL
			SET search_path = pg_catalog, pg_temp;
			SET client_min_messages = warning;
			CREATE FUNCTION pg_temp.trap() RETURNS pg_catalog.bool LANGUAGE plpgsql AS
			\$\$ BEGIN RAISE WARNING 'TRAP as %', current_user; RETURN true; END \$\$;
			CREATE DOMAIN pg_temp.d AS pg_catalog.$T CHECK (pg_temp.trap());
			CREATE TEMP TABLE $T (x pg_temp.d);
			\\echo MARK control
			SELECT NULL::pg_temp.d;
		SQL
		for f in "${FUNCS[@]}"; do
			printf '\\echo MARK %s\n%s;\n' "${f%%|*}" "${f#*|}"
		done
	)
	out=$(printf '%s\n' "$script" | as_plain "$ATT")
	# the trap works: the attacker's own code runs it
	ctl=$(printf '%s\n' "$out" | awk '/^MARK /{m=$2} m=="control"' | grep -c "TRAP as $ATT")
	ok_if=$([ "$ctl" -ge 1 ] && echo 1 || echo 0)
	if [ "$ok_if" = 1 ]; then ok "shadowed $T: the trap fires in the attacker's own code"; else not_ok "shadowed $T: the trap fires in the attacker's own code" "$out"; fi
	for f in "${FUNCS[@]}"; do
		name=${f%%|*}
		bad=$(printf '%s\n' "$out" | awk -v n="$name" '/^MARK /{m=$2; next} m==n' | grep "TRAP as" | grep -v "TRAP as $ATT\$")
		if [ -z "$bad" ]; then
			ok "shadowed $T: $name never runs the attacker's function as another role"
		else
			not_ok "shadowed $T: $name never runs the attacker's function as another role" "$bad"
		fi
	done
done

# ---------------------------------------------------------------------------
# 2. Direct writes, row and table locks.
# ---------------------------------------------------------------------------
# The issue's attack: a new active version of the victim's chain, written
# directly, would make the victim's next chain_execute run the attacker's SQL.
is "$(state "$ATT" "INSERT INTO chainexec.chains (chain_id, version, status, definition, smart_code) VALUES ('$CH-draft', 2, 'active', '{\"id\": \"$CH-draft\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 666\"}]}', 'X')")" \
	"42501" "INSERT of an active version of the victim's chain is refused"
is "$(psql_q "SELECT count(*) FROM chainexec.chains WHERE chain_id = '$CH-draft'")" "1" "the victim's chain has its one version"

for tbl in chains handlers templates schedules universal_transactions universal_transaction_lines; do
	is "$(state "$ATT" "INSERT INTO chainexec.$tbl DEFAULT VALUES")" "42501" "INSERT INTO chainexec.$tbl is refused"
	is "$(state "$ATT" "UPDATE chainexec.$tbl SET organization_id = organization_id")" "42501" "UPDATE chainexec.$tbl is refused"
	is "$(state "$ATT" "DELETE FROM chainexec.$tbl")" "42501" "DELETE FROM chainexec.$tbl is refused"
	is "$(state "$ATT" "TRUNCATE chainexec.$tbl")" "42501" "TRUNCATE chainexec.$tbl is refused"
done
is "$(state "$ATT" "COPY chainexec.chains (chain_id) FROM PROGRAM 'echo x'")" "42501" "COPY into chains is refused"
is "$(state "$ATT" "CREATE TABLE $NS.pin (o uuid, c text, v int, FOREIGN KEY (o, c, v) REFERENCES chainexec.chains ON DELETE RESTRICT)")" "42501" \
	"a foreign key to chains (whose rows it would lock) is refused"
is "$(state "$ATT" "CREATE TRIGGER t BEFORE INSERT ON chainexec.universal_transactions FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()")" "42501" \
	"a trigger on the executions is refused"
is "$(state "$ATT" "SELECT 1 FROM chainexec.chains FOR UPDATE")" "42501" "rows of chains cannot be locked FOR UPDATE"
is "$(state "$ATT" "SELECT 1 FROM chainexec.handlers FOR KEY SHARE")" "42501" "rows of handlers cannot be locked FOR KEY SHARE"
for mode in "ROW EXCLUSIVE" "SHARE" "SHARE ROW EXCLUSIVE" "EXCLUSIVE" "ACCESS EXCLUSIVE"; do
	is "$(state "$ATT" "BEGIN; LOCK TABLE chainexec.chains IN $mode MODE; COMMIT")" "42501" "LOCK TABLE chainexec.chains IN $mode MODE is refused"
done
is "$(state "$ATT" "BEGIN; LOCK TABLE chainexec.universal_transactions IN SHARE MODE; COMMIT")" "42501" \
	"LOCK TABLE chainexec.universal_transactions IN SHARE MODE is refused"

# What the attacker may lock (ACCESS SHARE), and chain_define's advisory
# lock key, held in another session, block no one.
KEY="hashtextextended('00000000-0000-0000-0000-000000000000/$CH-vic', 0)"
psql -X -q -U "$ATT" >/dev/null 2>&1 <<SQL &
BEGIN;
LOCK TABLE chainexec.chains, chainexec.universal_transactions, chainexec.handlers IN ACCESS SHARE MODE;
SELECT pg_advisory_lock($KEY);
SELECT pg_advisory_xact_lock($KEY + 0);
SELECT pg_sleep(20);
COMMIT;
SQL
BG_PIDS+=($!)
poll_query_until "SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.usename = '$ATT' AND l.locktype = 'advisory'" t 10 >/dev/null
is "$(state "$VIC" "SET lock_timeout = '3s'; SELECT chainexec.chain_define('{\"id\": \"$CH-vic\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"external\", \"timeoutMs\": 2000}]}')")" \
	"ok" "chain_define is not blocked by the attacker's locks"
is "$(state "$VIC" "SET lock_timeout = '3s'; SELECT chainexec.chain_execute('$CH-vic')")" \
	"ok" "chain_execute is not blocked by the attacker's locks"
kill "${BG_PIDS[-1]}" 2>/dev/null
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '$ATT'" >/dev/null

# ---------------------------------------------------------------------------
# 3. Another role's chain.
# ---------------------------------------------------------------------------
is "$(state "$ATT" "SELECT chainexec.chain_define('{\"id\": \"$CH-vic\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 666\"}]}')")" \
	"42501" "a new version of the victim's chain is refused"
is "$(state "$ATT" "SELECT chainexec.chain_define('{\"id\": \"$CH-vic\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 666\"}]}', true)")" \
	"42501" "a new published version of the victim's chain is refused"
is "$(state "$ATT" "SELECT chainexec.chain_publish('$CH-vic')")" "42501" "publishing the victim's draft is refused"
is "$(state "$ATT" "SELECT chainexec.chain_deprecate('$CH-vic')")" "42501" "deprecating the victim's chain is refused"
is "$(state "$ATT" "SELECT chainexec.chain_reactivate('$CH-vic', 1)")" "42501" "reactivating a version of the victim's chain is refused"
is "$(state "$ATT" "SELECT chainexec.chain_archive('$CH-vic', 2)")" "42501" "archiving the victim's draft is refused"
like "$(printf "SELECT chainexec.chain_publish('%s')\n" "$CH-vic" | psql -X -q -U "$ATT" 2>&1)" "HINT: .*$VIC" \
	"the refusal names the owner role in its hint"
is "$(psql_q "SELECT string_agg(version || ':' || status || ':' || created_by, ',' ORDER BY version) FROM chainexec.chains WHERE chain_id = '$CH-vic'")" \
	"1:active:$VIC,2:draft:$VIC" "the victim's chain is unchanged"

# Two sessions define the same new chain id at once: the first holds its
# transaction open; the second, another role, waits and is refused.
psql -X -q -U "$VIC" >/dev/null 2>&1 <<SQL &
BEGIN;
SELECT chainexec.chain_define('{"id": "$CH-race", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}');
SELECT pg_sleep(2);
COMMIT;
SQL
BG_PIDS+=($!)
poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE usename = '$VIC' AND query LIKE '%pg_sleep%'" t 10 >/dev/null
race=$(state "$ATT" "SELECT chainexec.chain_define('{\"id\": \"$CH-race\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 666\"}]}')")
wait "${BG_PIDS[-1]}"
is "$race" "42501" "a concurrent first definition of the same id by another role is refused"
is "$(psql_q "SELECT string_agg(version || ':' || created_by || ':' || (definition->'steps'->0->>'sql'), ',') FROM chainexec.chains WHERE chain_id = '$CH-race'")" \
	"1:$VIC:SELECT 1" "the chain is the first definer's, as defined"

# The same role twice at once, publishing: versions 1 and 2.
for i in 1 2; do
	printf "SELECT chainexec.chain_define('{\"id\": \"%s\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT %s\"}]}', true);\n" "$CH-twice" "$i" |
		as "$VIC" >/dev/null &
	BG_PIDS+=($!)
done
wait "${BG_PIDS[-1]}" "${BG_PIDS[-2]}"
is "$(psql_q "SELECT string_agg(version::text, ',' ORDER BY version) FROM chainexec.chains WHERE chain_id = '$CH-twice'")" \
	"1,2" "two concurrent publishing definitions make versions 1 and 2"

# ---------------------------------------------------------------------------
# 4. Handlers and templates belong to their registering role.
# ---------------------------------------------------------------------------
H=sec_priv_${S}_price
as "$ATT" >/dev/null <<SQL
SELECT chainexec.chain_register_handler('$H', '$NS.att_fn(jsonb)');
SELECT chainexec.chain_register_template('sec_priv_${S}_mail', 'attacker says {x|''hi''}');
SQL
# the victim's chains name the handler and template, never registered by the victim
as "$VIC" >/dev/null <<SQL
SELECT chainexec.chain_define('{"id": "$CH-h", "steps": [{"id": 1, "name": "a", "type": "function", "instructionSet": "$H", "outputVariables": ["who"]}]}', true);
SELECT chainexec.chain_define('{"id": "$CH-t", "steps": [{"id": 1, "name": "a", "type": "template", "templateId": "sec_priv_${S}_mail", "outputVariables": ["text"]}]}', true);
SQL
got=$(printf "CALL chainexec.chain_run('%s', '{}');\n" "$CH-h" | as "$VIC")
unlike_re='"who": "attacker"'
if printf '%s' "$got" | grep -q "$unlike_re"; then not_ok "another role's handler registered first does not capture the victim's chain" "$got"; else ok "another role's handler registered first does not capture the victim's chain"; fi
got=$(printf "CALL chainexec.chain_run('%s', '{}');\n" "$CH-t" | as "$VIC")
if printf '%s' "$got" | grep -q "attacker says"; then not_ok "another role's template registered first does not capture the victim's chain" "$got"; else ok "another role's template registered first does not capture the victim's chain"; fi
# the victim registers its own under the same name, and its chain uses it
is "$(state "$VIC" "SELECT chainexec.chain_register_handler('$H', '$NS.vic_fn(jsonb)')")" "ok" \
	"the victim registers its own handler under the name the attacker took"
like "$(printf "CALL chainexec.chain_run('%s', '{}');\n" "$CH-h" | as "$VIC")" '"who": "victim"' \
	"the victim's chain runs the victim's handler"
is "$(state "$VIC" "SELECT chainexec.chain_register_template('sec_priv_${S}_mail', 'victim says hi')")" "ok" \
	"the victim registers its own template under the id the attacker took"
like "$(printf "CALL chainexec.chain_run('%s', '{}');\n" "$CH-t" | as "$VIC")" 'victim says hi' \
	"the victim's chain renders the victim's template"
# the attacker's re-registration changes nothing for the victim
as "$ATT" >/dev/null <<SQL
SELECT chainexec.chain_register_handler('$H', '$NS.att_fn(jsonb)');
SQL
like "$(printf "CALL chainexec.chain_run('%s', '{}');\n" "$CH-h" | as "$VIC")" '"who": "victim"' \
	"re-registering the name as the attacker does not replace the victim's handler"
is "$(state "$ATT" "SELECT chainexec.chain_register_handler('sec_priv_${S}_shared', '$NS.att_fn(jsonb)', true)")" "42501" \
	"sharing a handler is refused to a role outside chainexec_admin"
is "$(state "$ATT" "SELECT chainexec.chain_register_template('sec_priv_${S}_shared', 'x', true)")" "42501" \
	"sharing a template is refused to a role outside chainexec_admin"
is "$(printf "SELECT count(*) FROM chainexec.handlers WHERE registered_by::text = '%s';\n" "$VIC" | as "$ATT")" "0" \
	"the victim's handlers are not readable by the attacker"
is "$(printf "SELECT count(*) FROM chainexec.templates WHERE registered_by::text = '%s';\n" "$VIC" | as "$ATT")" "0" \
	"the victim's templates are not readable by the attacker"

# A schedule row of the victim (its input may hold anything) is not readable by others.
psql_q "INSERT INTO chainexec.schedules (job_name, chain_id, input, mode, schedule, cron_job_id, created_by)
		VALUES ('sec_priv_$S', '$CH-vic', '{\"secret\": 1}', 'worker', '* * * * *', -1, '$VIC')" >/dev/null
is "$(printf "SELECT count(*) FROM chainexec.schedules WHERE job_name = 'sec_priv_%s';\n" "$S" | as "$ATT")" "0" \
	"the victim's schedules are not readable by the attacker"
is "$(printf "SELECT count(*) FROM chainexec.schedules WHERE job_name = 'sec_priv_%s';\n" "$S" | as "$VIC")" "1" \
	"the victim reads its own schedule"

# Schedules through pg_cron, as LOGIN roles: a job is its role's, and the
# row that records it cannot be forged, replaced or dropped by another role.
if psql_q "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null 2>&1; then
	psql_q "GRANT USAGE ON SCHEMA cron TO $ATT, $VIC" >/dev/null
	JOB=sec_priv_${S}_job
	vjob=$(printf "SELECT chainexec.chain_schedule('%s', '0 0 1 1 *', '%s');\n" "$JOB" "$CH-vic" | as "$VIC")
	like "$vjob" '^[0-9]+$' "the victim schedules its chain"
	is "$(psql_q "SELECT username FROM cron.job WHERE jobid = ${vjob:-0}")" "$VIC" "the victim's pg_cron job runs as the victim"
	is "$(state "$ATT" "SELECT chainexec._schedule_save('$JOB', '* * * * *', ${vjob:-0}, '$CH-att', '{}', 'worker')")" "42501" \
		"recording the victim's pg_cron job as the attacker's schedule is refused"
	is "$(state "$ATT" "SELECT chainexec._schedule_forget('$JOB')")" "42704" \
		"forgetting the victim's schedule is refused: the attacker has no schedule of that name"
	isnt "$(state "$ATT" "SELECT chainexec.chain_unschedule('$JOB')")" "ok" "unscheduling the victim's job is refused"
	is "$(psql_q "SELECT count(*) FROM cron.job WHERE jobid = ${vjob:-0}")/$(psql_q "SELECT created_by FROM chainexec.schedules WHERE job_name = '$JOB'")" \
		"1/$VIC" "the victim's job and its record are intact"
	is "$(printf "SELECT count(*) FROM chainexec.scheduled_jobs WHERE job_name = '%s';\n" "$JOB" | as "$ATT")" "0" \
		"the victim's scheduled job is not listed for the attacker"
	# Issue 9: a schedule name is its role's own within an organization (as
	# pg_cron's job names are), so the attacker's schedule of the same name
	# is another job: it neither replaces the victim's, nor is refused with
	# the victim's role in its detail, nor squats the name.
	ajob_out=$(printf "SELECT chainexec.chain_schedule('%s', '* * * * *', '%s');\n" "$JOB" "$CH-att" | as_plain "$ATT")
	like "$ajob_out" '^[0-9]+$' "the attacker schedules a job of the same name: its own"
	is "$(printf '%s\n' "$ajob_out" | grep -c "$VIC")" "0" "... and learns nothing of the victim's"
	ajob=$(printf '%s' "$ajob_out" | grep -E '^[0-9]+$')
	isnt "${ajob:-x}" "${vjob:-y}" "... with a pg_cron job of its own"
	is "$(psql_q "SELECT username || ' ' || schedule FROM cron.job WHERE jobid = ${vjob:-0}")/$(psql_q "SELECT command LIKE '%$CH-vic%' FROM cron.job WHERE jobid = ${vjob:-0}")" \
		"$VIC 0 0 1 1 */t" "the victim's job is untouched"
	is "$(printf "SELECT string_agg(created_by::text || ':' || chain_id || ':' || cron_job_id, ',') FROM chainexec.scheduled_jobs WHERE job_name = '%s';\n" "$JOB" | as "$ATT")" \
		"$ATT:$CH-att:${ajob:-x}" "the attacker's scheduled_jobs lists its own job only"
	is "$(state "$ATT" "SELECT chainexec.chain_unschedule('$JOB')")" "ok" "the attacker unschedules its own job"
	is "$(psql_q "SELECT count(*) FROM cron.job WHERE jobid = ${vjob:-0}")/$(psql_q "SELECT string_agg(created_by::text, ',') FROM chainexec.schedules WHERE job_name = '$JOB'")" \
		"1/$VIC" "... and the victim's job and record stay"
	# Issue 9: a schedule's pg_cron command is built by chainexec; no role
	# records a job that runs something else as a schedule of a chain.
	isnt "$(state "$ATT" "SELECT chainexec._schedule_job('${JOB}_x', '0 0 1 1 *', 'SELECT 1', '$CH-att', '{}', 'worker')")" "ok" \
		"_schedule_job takes no command from its caller"
	fjob=$(printf "SELECT cron.schedule('%s_forged', '0 0 1 1 *', 'SELECT 1');\n" "$JOB" | as "$ATT")
	is "$(state "$ATT" "SELECT chainexec._schedule_save('${JOB}_forged', '0 0 1 1 *', ${fjob:-0}, '$CH-att', '{}', 'worker')")" "42501" \
		"recording the attacker's own job that runs another command as a chain's schedule is refused"
	is "$(psql_q "SELECT count(*) FROM chainexec.schedules WHERE job_name LIKE '${JOB}_%'")" "0" "no schedule row names a chain its job does not run"
	is "$(state "$VIC" "SELECT chainexec.chain_unschedule('$JOB')")" "ok" "the victim unschedules its job"
	is "$(psql_q "SELECT count(*) FROM cron.job WHERE jobid = ${vjob:-0}")/$(psql_q "SELECT count(*) FROM chainexec.schedules WHERE job_name = '$JOB'")" \
		"0/0" "the job and its record are gone"
	psql_q "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'sec_priv_${S}%'" >/dev/null 2>&1
	psql_q "REVOKE USAGE ON SCHEMA cron FROM $ATT, $VIC" >/dev/null
else
	skip "schedules through pg_cron" "pg_cron is not available"
fi

# Another organization's definitions, templates, handlers and schedules.
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET chainexec.organization_id = '$ORG_B';
SET ROLE $ATT;
SELECT chainexec.chain_define('{"id": "$CH-orgb", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}', true);
SELECT chainexec.chain_register_template('sec_priv_${S}_orgb', 'b');
SELECT chainexec.chain_register_handler('sec_priv_${S}_orgb', '$NS.att_fn(jsonb)');
SQL
for tbl in chains:chain_id templates:template_id handlers:name; do
	is "$(printf "SELECT count(*) FROM chainexec.%s WHERE %s LIKE '%%%s%%orgb';\n" "${tbl%%:*}" "${tbl#*:}" "$S" | as "$ATT")" "0" \
		"the default organization's session reads no ${tbl%%:*} of another organization"
done
is "$(state "$ATT" "SELECT chainexec.chain_validate('$CH-orgb')")" "42704" "chain_validate does not find another organization's chain"

# ---------------------------------------------------------------------------
# 5. Times out of range.
# ---------------------------------------------------------------------------
is "$(state "$VIC" "SELECT chainexec.chain_execute('$CH-vic', '{}', '{\"runAt\": \"294276-12-31 23:59:59+00\", \"timeout\": 2147483647}')")" "22008" \
	"runAt at the end of time plus a timeout is refused (22008)"
is "$(state "$VIC" "SELECT chainexec.chain_execute('$CH-vic', '{}', '{\"runAt\": \"294276-12-31 23:59:59.9995+00\", \"timeout\": 1}')")" "22008" \
	"runAt half a millisecond before the end of time plus 1 ms is refused (22008)"
as "$VIC" >/dev/null <<SQL
SELECT chainexec.chain_define('{"id": "$CH-long", "maxExecutionTime": 2147483647, "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}', true);
SQL
is "$(state "$VIC" "SELECT chainexec.chain_execute('$CH-long', '{}', '{\"runAt\": \"294276-12-20 00:00:00+00\"}')")" "22008" \
	"runAt near the end of time plus maxExecutionTime is refused (22008)"
is "$(state "$VIC" "SELECT chainexec.chain_execute('$CH-vic', '{}', '{\"runAt\": \"infinity\", \"timeout\": 1000}')")" "22023" \
	"runAt infinity is refused (22023)"
is "$(state "$VIC" "SELECT chainexec.chain_execute('$CH-vic', '{}', '{\"runAt\": \"-infinity\"}')")" "22023" \
	"runAt -infinity is refused (22023)"
is "$(state "$VIC" "SELECT chainexec.chain_execute('$CH-vic', '{}', '{\"runAt\": \"294276-12-31 23:59:59+00\"}')")" "ok" \
	"runAt at the end of time without a timeout is kept"
is "$(state "$VIC" "SELECT chainexec.chain_execute('$CH-vic', '{}', '{\"timeout\": 1e20}')")" "22023" "a timeout past int is refused (22023)"
isnt "$(state "$VIC" "SELECT chainexec.chain_execute('$CH-vic', '{}', '{\"runAt\": \"300000-01-01\"}')")" "ok" \
	"a runAt past the largest timestamp is refused"
for d in '"timeoutMs": 1e20' '"timeoutMs": -1' '"waitMs": 99999999999' '"retryConfig": {"baseDelayMs": 1e12}' '"retryConfig": {"maxDelayMs": -5}'; do
	is "$(state "$VIC" "SELECT chainexec.chain_define('{\"id\": \"$CH-dur\", \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"wait\", $d}]}')")" "22023" \
		"a step with $d is refused (22023)"
done
is "$(state "$VIC" "SELECT chainexec.chain_define('{\"id\": \"$CH-dur\", \"maxExecutionTime\": 1e15, \"steps\": [{\"id\": 1, \"name\": \"a\", \"type\": \"wait\"}]}')")" "22023" \
	"a maxExecutionTime past int is refused (22023)"
is "$(state "$VIC" "SELECT chainexec.chain_wait(chainexec.chain_execute('$CH-vic'), -1)")" "22023" "a negative chain_wait timeout is refused (22023)"
check "SELECT * of the executions still works" psql_q "SELECT * FROM chainexec.universal_transactions"
check "SELECT * of the lines still works" psql_q "SELECT * FROM chainexec.universal_transaction_lines"
check "pg_dump of the database still works" "$CE_PGBIN/pg_dump" -f /dev/null
like "$(state "$VIC" "SELECT chainexec.chain_cleanup('200000 years')")" '^(ok|22008)$' \
	"chain_cleanup with an interval past the range refuses it (22008) or removes nothing"

done_testing
exit $?
