#!/usr/bin/env bash
# test/security/resilience.sh: attacks on circuit breakers and the step
# result cache (SPEC §9 "Resilience") by LOGIN-only roles.
#
# The victim runs a chain with a circuit breaker and a cached step in the
# default organization.  An attacker of the same organization, and of
# another one (a session may name any organization), neither reads nor
# resets the victim's breakers, nor reads, invalidates or writes its cache
# entries, nor its cache statistics; no role writes the tables directly.
# Poisoning: the attacker runs the victim's chain with the same key under
# a search_path that resolves the step's function to its own; its result
# is cached for the attacker only, and the victim's next run computes the
# true value.  A chain of the attacker's with the victim's breaker key
# fails as much as it likes without opening the victim's breaker.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
VICTIM=sec_rs_victim_$S
ATTACKER=sec_rs_attacker_$S
ORG_B=bbbbbbbb-0000-4000-8000-00000001$(printf '%04d' $((S % 10000)))
CH=sec-rs-$S
ACH=sec-rs-att-$S
KEY=sec-rs-key-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'sec-rs-%$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'sec-rs-%$S';
		RESET chainexec.internal;
		DELETE FROM chainexec.step_cache WHERE chain_id LIKE 'sec-rs-%$S';
		DELETE FROM chainexec.step_cache_counters WHERE chain_id LIKE 'sec-rs-%$S';
		DELETE FROM chainexec.circuit_breaker_state WHERE key = '$KEY';
		DROP SCHEMA IF EXISTS sec_rs_v_$S, sec_rs_a_$S CASCADE;
		DROP OWNED BY $VICTIM, $ATTACKER;
		DROP ROLE IF EXISTS $VICTIM, $ATTACKER;
	EOF
}
trap cleanup EXIT

as()
{
	local role=$1

	shift
	psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$role" -c "$1"
}

# attempt ROLE SQL: the SQLSTATE of its error, or "ok:<result>".
attempt()
{
	local role=$1 sql=$2

	psql -X -A -t -q -U "$role" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$sql" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p; t; s/^\(.*\)$/ok:\1/p' | head -n 1
}

plan 19

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "setup failed"
	CREATE ROLE $VICTIM LOGIN;
	CREATE ROLE $ATTACKER LOGIN;
	CREATE SCHEMA sec_rs_v_$S AUTHORIZATION $VICTIM;
	CREATE SCHEMA sec_rs_a_$S AUTHORIZATION $ATTACKER;
	GRANT USAGE ON SCHEMA sec_rs_v_$S TO PUBLIC;
EOF

# The victim: price(k) = k * 100; a handler that is down; a chain with a
# cached step that reads price() through the search_path, and a step
# behind a circuit breaker.
as "$VICTIM" "CREATE TABLE sec_rs_v_$S.down (d boolean); INSERT INTO sec_rs_v_$S.down VALUES (false);
	GRANT SELECT ON sec_rs_v_$S.down TO PUBLIC;
	CREATE FUNCTION sec_rs_v_$S.price(k int) RETURNS int LANGUAGE sql STABLE AS 'SELECT k * 100';
	GRANT EXECUTE ON FUNCTION sec_rs_v_$S.price(int) TO PUBLIC;
	CREATE FUNCTION sec_rs_v_$S.call(a jsonb) RETURNS jsonb LANGUAGE plpgsql AS
	  \$f\$ BEGIN IF (SELECT d FROM sec_rs_v_$S.down) THEN PERFORM chainexec.raise_failure('network_timeout', 'down'); END IF;
	  RETURN '{}'; END \$f\$;
	SELECT chainexec.chain_register_handler('sec_rs_call', 'sec_rs_v_$S.call(jsonb)'::regprocedure);
	SELECT chainexec.chain_define('{\"id\": \"$CH\", \"steps\": [
		{\"id\": 1, \"name\": \"quote\", \"type\": \"sql\", \"sql\": \"SELECT price({k}::int) AS price\",
		 \"inputVariables\": [\"k\"], \"cache\": {\"ttlMs\": 600000}},
		{\"id\": 2, \"name\": \"call\", \"type\": \"function\", \"instructionSet\": \"sec_rs_call\", \"onFailure\": \"warn\",
		 \"circuitBreaker\": {\"minimumThroughput\": 2, \"failureThreshold\": 50, \"openDurationMs\": 600000, \"key\": \"$KEY\"}}]}', true)" >/dev/null ||
	bail_out "the victim cannot define its chain"

# The attacker poisons first: its own price() first on its search_path.
as "$ATTACKER" "CREATE FUNCTION sec_rs_a_$S.price(k int) RETURNS int LANGUAGE sql STABLE AS 'SELECT 666'" >/dev/null
got=$(psql -X -A -t -q -U "$ATTACKER" -v ON_ERROR_STOP=1 2>&1 <<-EOF
	SET search_path = sec_rs_a_$S, public;
	CALL chainexec.chain_run('$CH', '{"k": 3}');
	EOF
)
like "$got" '"price": 666' "the attacker's run of the victim's chain computes its own (poisoned) value"
got=$(psql -X -A -t -q -U "$VICTIM" -v ON_ERROR_STOP=1 2>&1 <<-EOF
	SET search_path = sec_rs_v_$S, public;
	CALL chainexec.chain_run('$CH', '{"k": 3}');
	EOF
)
like "$got" '"price": 300' "the victim's run with the same key does not get the attacker's cached value"
is "$(psql_q "SELECT count(*) FROM chainexec.step_cache WHERE chain_id = '$CH'")" "2" "one cache entry per role"

# The victim's breaker opens (two failures).
as "$VICTIM" "UPDATE sec_rs_v_$S.down SET d = true" >/dev/null
for i in 1 2 3; do
	psql -X -q -U "$VICTIM" -c "SET search_path = sec_rs_v_$S, public" -c "CALL chainexec.chain_run('$CH', '{\"k\": 3}')" >/dev/null 2>&1
done
is "$(as "$VICTIM" "SELECT state FROM chainexec.circuit_breakers WHERE key = '$KEY'")" "open" "the victim sees its breaker open"

# Reading.
is "$(attempt "$ATTACKER" "SELECT count(*) FROM chainexec.circuit_breakers")" "ok:0" "the attacker sees no breaker of the victim"
is "$(attempt "$ATTACKER" "SELECT count(*) FROM chainexec.circuit_breaker_state")" "ok:0" "nor in the table"
is "$(attempt "$ATTACKER" "SELECT count(*) FROM chainexec.step_cache WHERE owner::oid <> '$ATTACKER'::regrole::oid")" "ok:0" \
	"the attacker reads no cache entry of the victim"
is "$(attempt "$ATTACKER" "SELECT coalesce(sum(hits + misses), 0) FROM chainexec.step_cache_counters WHERE owner::oid <> '$ATTACKER'::regrole::oid")" "ok:0" \
	"the attacker reads none of the victim's cache counters"
is "$(attempt "$ATTACKER" "SET chainexec.organization_id = '$ORG_B'; SELECT count(*) FROM chainexec.circuit_breakers")" "ok:0" \
	"in another organization: no breaker"
is "$(attempt "$ATTACKER" "SET chainexec.organization_id = '00000000-0000-0000-0000-000000000000'; SELECT count(*) FROM chainexec.circuit_breakers UNION ALL SELECT count(*) FROM chainexec.step_cache WHERE owner::oid <> '$ATTACKER'::regrole::oid")" "ok:0" \
	"naming the victim's organization does not show its breakers or entries"
is "$(as "$VICTIM" "SET chainexec.organization_id = '$ORG_B'; SELECT count(*) FROM chainexec.circuit_breakers")" "0" \
	"the victim's own session in another organization does not see them either"

# Resetting and invalidating.
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_circuit_reset('$KEY')")" "ok:f" "chain_circuit_reset of the victim's key resets nothing"
is "$(attempt "$ATTACKER" "SELECT chainexec.chain_cache_invalidate('$CH')")" "ok:1" "chain_cache_invalidate of the victim's chain removes only the attacker's own entry"
is "$(psql_q "SELECT (SELECT state FROM chainexec.circuit_breaker_state WHERE key = '$KEY') || '|' || (SELECT count(*) FROM chainexec.step_cache WHERE chain_id = '$CH')")" "open|1" \
	"the victim's breaker is still open and its entry still there"

# Direct writes.
bad=
for sql in "UPDATE chainexec.circuit_breaker_state SET state = 'closed'" "DELETE FROM chainexec.circuit_breaker_state" \
	"INSERT INTO chainexec.circuit_breaker_state (organization_id, scope, key) VALUES ('00000000-0000-0000-0000-000000000000', '$VICTIM', 'x')" \
	"INSERT INTO chainexec.step_cache (organization_id, chain_id, step_name, owner, key_hash, key, outputs, expires_at) VALUES ('00000000-0000-0000-0000-000000000000', '$CH', 'quote', '$VICTIM', '\\x00', '[4]', '{\"price\": 1}', 'infinity')" \
	"UPDATE chainexec.step_cache SET outputs = '{\"price\": 1}'" "DELETE FROM chainexec.step_cache" \
	"UPDATE chainexec.step_cache_counters SET hits = 0" "TRUNCATE chainexec.step_cache" \
	"SELECT chainexec._chain_circuit_reset('$KEY', '$VICTIM')" "SELECT chainexec._chain_cache_invalidate('$CH', NULL, '$VICTIM')"; do
	got=$(attempt "$ATTACKER" "$sql")
	[ "$got" = 42501 ] || bad="$bad [$sql]=$got"
done
is "$bad" "" "no direct write to the breaker or cache tables, no call of their implementations (10 tries, 42501 each)"

# The attacker's own chain with the victim's breaker key, failing.
as "$ATTACKER" "CREATE FUNCTION sec_rs_a_$S.fail(a jsonb) RETURNS jsonb LANGUAGE plpgsql AS
	  \$f\$ BEGIN PERFORM chainexec.raise_failure('network_timeout', 'x'); RETURN '{}'; END \$f\$;
	SELECT chainexec.chain_register_handler('sec_rs_fail', 'sec_rs_a_$S.fail(jsonb)'::regprocedure);
	SELECT chainexec.chain_define('{\"id\": \"$ACH\", \"steps\": [
		{\"id\": 1, \"name\": \"call\", \"type\": \"function\", \"instructionSet\": \"sec_rs_fail\", \"onFailure\": \"warn\",
		 \"circuitBreaker\": {\"minimumThroughput\": 2, \"failureThreshold\": 50, \"openDurationMs\": 600000, \"key\": \"$KEY\"}}]}', true)" >/dev/null
psql_q "SELECT chainexec.chain_circuit_reset('$KEY')" >/dev/null
as "$VICTIM" "UPDATE sec_rs_v_$S.down SET d = false" >/dev/null
for i in 1 2 3; do as "$ATTACKER" "CALL chainexec.chain_run('$ACH')" >/dev/null 2>&1; done
is "$(psql_q "SELECT state FROM chainexec.circuit_breaker_state WHERE key = '$KEY' AND scope::oid = '$ATTACKER'::regrole::oid")" "open" \
	"the attacker's failing chain opens its own breaker of that key"
psql -X -q -U "$VICTIM" -c "SET search_path = sec_rs_v_$S, public" -c "CALL chainexec.chain_run('$CH', '{\"k\": 3}')" >/dev/null 2>&1
is "$(psql_q "SELECT coalesce((SELECT state FROM chainexec.circuit_breaker_state WHERE key = '$KEY' AND scope::oid = '$VICTIM'::regrole::oid), 'none')")" "closed" \
	"the victim's breaker of the same key is not opened by the attacker's failures"
is "$(as "$VICTIM" "SELECT l.status FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t ON t.id = l.transaction_id WHERE t.chain_id = '$CH' AND l.step_id = 2 ORDER BY t.created_at DESC LIMIT 1")" "completed" \
	"the victim's step still calls its handler"
is "$(attempt "$ATTACKER" "SELECT hits || '|' || misses || '|' || entries FROM chainexec.cache_stats WHERE chain_id = '$CH'")" "ok:0|1|0" \
	"cache_stats shows the attacker only its own counts of the victim's chain"

done_testing
