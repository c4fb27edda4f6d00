#!/usr/bin/env bash
# test/integration/resilience_cache.sh: the step-result cache (SPEC §9,
# step key cache).
#
# N executions with the same key run the handler once (it counts its calls
# in a sequence); the other lines are completions whose output says
# "cached": true, with the stored outputs, which set the variables; a new
# key runs it; chain_cache_invalidate and the TTL make it run again;
# cache_stats counts hits, misses, hit rate and entries.  (maxEntries:
# resilience_lru.sh.)
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
N=rc_$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = 'rc-cache-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = 'rc-cache-$S';
		RESET chainexec.internal;
		SELECT chainexec.chain_cache_invalidate('rc-cache-$S');
		DROP SCHEMA IF EXISTS $N CASCADE;
	EOF
}
trap cleanup EXIT

define()
{
	psql_q "SELECT chainexec.chain_define('$1'::jsonb, true)" >/dev/null
}

# run ID [INPUT]: CALL chain_run
run()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -c "CALL chainexec.chain_run('$1', '${2:-{\}}')"
}

calls()
{
	psql_q "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM $N.seq_$1"
}

plan 8

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "setup failed"
CREATE SCHEMA $N;
CREATE SEQUENCE $N.seq_cache;
CREATE FUNCTION $N.flaky(a jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
BEGIN
	RETURN jsonb_build_object('v', (a->'variables'->>'k')::int * 10, 'n', nextval('$N.seq_cache'));
END
\$\$;
SELECT chainexec.chain_register_handler('rc_flaky_$S', '$N.flaky(jsonb)'::regprocedure);
EOF

define "{\"id\": \"rc-cache-$S\", \"steps\": [
	{\"id\": 1, \"name\": \"look\", \"type\": \"function\", \"instructionSet\": \"rc_flaky_$S\", \"inputTemplate\": \"cache\",
	 \"inputVariables\": [\"k\"], \"outputVariables\": [\"v\"], \"cache\": {\"ttlMs\": 3000, \"key\": [\"k\"]}}]}" ||
	bail_out "could not define the cache chain"
for i in 1 2 3 4 5; do run "rc-cache-$S" '{"k": 4}' >/dev/null; done
is "$(calls cache)" "1" "cache: 5 executions with the same key call the handler once"
is "$(psql_q "SELECT string_agg(coalesce(l.output->>'cached', 'no') || ':' || (l.output->'variables'->>'v'), ',' ORDER BY t.created_at) FROM chainexec.universal_transaction_lines l JOIN chainexec.universal_transactions t ON t.id = l.transaction_id WHERE t.chain_id = 'rc-cache-$S'")" \
	"no:40,true:40,true:40,true:40,true:40" "cache: hits are completions with \"cached\": true and the stored outputs"
is "$(psql_q "SELECT t.context->>'v' FROM chainexec.universal_transactions t WHERE t.chain_id = 'rc-cache-$S' ORDER BY t.created_at DESC LIMIT 1")" '40' \
	"cache: a hit sets the step's output variables"
run "rc-cache-$S" '{"k": 5}' >/dev/null
is "$(calls cache)" "2" "cache: another key calls the handler"
is "$(psql_q "SELECT hits || '|' || misses || '|' || hit_rate || '|' || entries FROM chainexec.cache_stats WHERE chain_id = 'rc-cache-$S'")" \
	"4|2|0.6667|2" "cache_stats: hits, misses, hit rate, entries"
is "$(psql_q "SELECT chainexec.chain_cache_invalidate('rc-cache-$S', 'look')")" "2" "chain_cache_invalidate removes the step's 2 entries"
run "rc-cache-$S" '{"k": 4}' >/dev/null
is "$(calls cache)" "3" "cache: after chain_cache_invalidate the handler runs again"
sleep 3.2
run "rc-cache-$S" '{"k": 4}' >/dev/null
is "$(calls cache)" "4" "cache: after ttlMs the handler runs again"

done_testing
