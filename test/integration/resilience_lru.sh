#!/usr/bin/env bash
# test/integration/resilience_lru.sh: the step-result cache's maxEntries
# (SPEC §9, step key cache) under 10,000 distinct keys.
#
# Two sessions at once run a cached step (maxEntries 100) with 5,000
# distinct keys each, every 20th run also repeating the key 1: at the end
# the step has exactly 100 entries (the evictions of concurrent misses do
# not overrun it), the repeated key is still there (least recently used
# evicted first), and the step ran once per distinct key.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: slow timeout=900
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
N=rl_$S
CH=rl-lru-$S
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ce-lru.XXXXXX")

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CH';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CH';
		RESET chainexec.internal;
		SELECT chainexec.chain_cache_invalidate('$CH');
		DROP SCHEMA IF EXISTS $N CASCADE;
	EOF
	rm -rf "$TMP"
}
trap cleanup EXIT

# runs FROM TO: CALL chain_run for keys FROM..TO, and key 1 every 20 runs
runs()
{
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>>"$TMP/err" <<-EOF
		SET client_min_messages = warning;
		SET synchronous_commit = off;
		DO \$\$
		DECLARE
			r jsonb;
		BEGIN
			FOR i IN $1..$2 LOOP
				CALL chainexec.chain_run('$CH', jsonb_build_object('k', i), '{}', r);
				IF i % 20 = 0 THEN
					CALL chainexec.chain_run('$CH', '{"k": 1}', '{}', r);
				END IF;
			END LOOP;
		END
		\$\$;
	EOF
}

plan 5

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "setup failed"
CREATE SCHEMA $N;
CREATE SEQUENCE $N.calls;
SELECT chainexec.chain_define('{"id": "$CH", "steps": [
	{"id": 1, "name": "sq", "type": "sql", "sql": "SELECT {k}::int * {k}::int AS sq, nextval(''$N.calls'') AS n",
	 "inputVariables": ["k"], "cache": {"ttlMs": 600000, "maxEntries": 100}}]}', true);
EOF

t0=$SECONDS
runs 1 5000 &
p1=$!
runs 5001 10000 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
is "$r1 $r2" "0 0" "two sessions ran 10,000 distinct keys ($((SECONDS - t0)) s) $(head -c 300 "$TMP/err")"
is "$(psql_q "SELECT entries FROM chainexec.cache_stats WHERE chain_id = '$CH'")" "100" \
	"maxEntries 100 holds under 10,000 distinct keys from two sessions at once"
is "$(psql_q "SELECT count(*) FROM chainexec.step_cache WHERE chain_id = '$CH' AND key = '[1]'")" "1" \
	"a key used again and again is not evicted (least recently used first)"
is "$(psql_q "SELECT last_value FROM $N.calls")" "10000" "the step ran once per distinct key"
is "$(psql_q "SELECT hits || '|' || misses FROM chainexec.cache_stats WHERE chain_id = '$CH'")" "500|10000" \
	"cache_stats: 500 hits (the repeated key), 10,000 misses"

done_testing
