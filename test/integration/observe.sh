#!/usr/bin/env bash
# test/integration/observe.sh: the observability functions with the
# background workers.
#
#   * the follow-up chain's plan: stages 1, 3 | 2 | 4 | 5 | 6 | 7, the
#     critical path and step 2's skip target;
#   * the design documents' lead chain (../shared/seed-chains/, unchanged,
#     with the handlers of test/seed/handlers.sql) runs through the
#     workers; chain_explain then shows its stages (1 | 2 | 3, 4 | 5, 7, 8 |
#     6) with an estimate for each step, and chain_graph draws the
#     execution with each step's status, in Mermaid and in DOT that
#     Graphviz renders to SVG; docs/lead-execution.svg is such a rendering;
#   * chainexec.stats sees a step running in an executor (executors_busy,
#     read from the executors' shared-memory slots) and in a CALL chain_run
#     session (sessions_busy), then the transitions of the last minute;
#   * contrib/postgres_exporter.yaml: its query runs as a LOGIN role that
#     is a member of pg_monitor, as postgres_exporter would, and returns
#     every column its metrics name.
#
# Tenancy (LOGIN-only roles) is in test/security/observe.sh.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
SEED_DIR=$CE_REPO/../shared/seed-chains
MOBILE=$SEED_DIR/mobile-lead-processing.json
FOLLOWUP=$SEED_DIR/client-followup-sequence.json
EXPORTER=obs_exporter_$S
YAML=$CE_REPO/contrib/postgres_exporter.yaml

plan 21

if [ ! -f "$MOBILE" ] || [ ! -f "$FOLLOWUP" ]; then
	bail_out "the design documents' chains are not in $SEED_DIR (CI keeps a copy of shared/ beside the clone)"
fi

ORG=$(psql_q "SELECT gen_random_uuid()") || bail_out "the server does not answer"
export PGOPTIONS="-c chainexec.organization_id=$ORG"

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE organization_id = '$ORG';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE organization_id = '$ORG';
		DELETE FROM chainexec.handlers WHERE organization_id = '$ORG';
		DELETE FROM chainexec.templates WHERE organization_id = '$ORG';
		RESET chainexec.internal;
		DROP SCHEMA IF EXISTS seed_chains CASCADE;
		DROP ROLE IF EXISTS $EXPORTER;
	EOF
	[ -n "${BG:-}" ] && kill "$BG" 2>/dev/null
}
trap cleanup EXIT

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null
poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 ||
	bail_out "no executor is running"
psql_file "$CE_REPO/test/seed/handlers.sql" >/dev/null || bail_out "could not load the seed handlers"
is "$(psql -X -A -t -q -v ON_ERROR_STOP=1 -v def="$(cat "$MOBILE")" <<-'EOF'
	SELECT chainexec.chain_define(:'def'::jsonb, true);
EOF
)" "1" "the lead chain is defined unchanged"

# stages EXPLAIN: "1|2|3,4|..." (the step ids under each "Stage" line)
stages()
{
	printf '%s\n' "$1" | awk '
		/^  Stage [0-9]+/ { if (s != "") out = out (out == "" ? "" : "|") s; s = ""; next }
		/^    ->  Step [0-9]+ / { s = s (s == "" ? "" : ",") $3 }
		END { if (s != "") out = out (out == "" ? "" : "|") s; print out }'
}

# ---------------------------------------------------------------------------
# The follow-up chain's plan: step 3 reads only the input and runs at once
# with step 1; step 2 jumps to step 6 before it runs.
# ---------------------------------------------------------------------------
psql -X -A -t -q -v ON_ERROR_STOP=1 -v def="$(cat "$FOLLOWUP")" >/dev/null <<-'EOF' || bail_out "could not define the follow-up chain"
	SELECT chainexec.chain_define(:'def'::jsonb, true);
EOF
FEXPLAIN=$(psql_q "SELECT chainexec.chain_explain('client-followup-sequence')")
is "$(stages "$FEXPLAIN")" "1,3|2|4|5|6|7" "chain_explain: the follow-up chain's stages (1 and 3 may run at once)"
is "$(printf '%s\n' "$FEXPLAIN" | sed -n 's/^  Critical path: //p')" \
	"1 analyze_client_engagement -> 2 determine_followup_strategy -> 4 craft_personalized_message -> 5 schedule_message_delivery -> 6 update_client_status -> 7 schedule_next_followup" \
	"chain_explain: the follow-up chain's critical path, without history the longest in steps"
like "$(printf '%s\n' "$FEXPLAIN" | grep 'Skip target')" '^ +Skip target: step 6 update_client_status \(skips 2, 3, 4, 5\)$' \
	"chain_explain: step 2's jump to step 6 and the steps it skips"

# ---------------------------------------------------------------------------
# The lead chain through the workers, then its plan and its picture
# ---------------------------------------------------------------------------
GOOD='{"raw_lead_message": "Hi, this is Ana Lopez. We would love to visit Lisbon from 2027-06-10 to 2027-06-17, 2 travelers, budget 5000-7000 EUR. One of us is vegetarian.", "source_channel": "whatsapp"}'
E=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -v input="$GOOD" <<-'EOF'
	SELECT chainexec.chain_execute('mobile-lead-processing', :'input'::jsonb);
EOF
)
is "$(psql_q "SELECT chainexec.chain_wait('$E', 120000)->>'status'")" "completed" "the workers run the lead chain to its end"

EXPLAIN=$(psql_q "SELECT chainexec.chain_explain('mobile-lead-processing')")
STAGES=$(stages "$EXPLAIN")
is "$STAGES" "1|2|3,4|5,7,8|6" "chain_explain: the stages of the lead chain, in order (3, 4 and 5, 7, 8 may run at once)"
is "$(printf '%s\n' "$EXPLAIN" | grep -c '^    ->  Step [0-9]* .*(est\. [0-9.]* m\?s from 1 run)')" "8" \
	"chain_explain: every step has an estimate from the completed execution"
is "$(printf '%s\n' "$EXPLAIN" | grep -c '^          ->  Fallback [0-9]* .*(no history)')" "3" \
	"chain_explain: the three fallbacks, which did not run, have no history"
like "$(printf '%s\n' "$EXPLAIN" | grep '^  Critical path: ')" \
	'^  Critical path: 1 extract_lead_data -> 2 validate_requirements -> ' \
	"chain_explain: the critical path starts with the two steps everything waits for"

DOT=$(psql_q "SELECT chainexec.chain_graph('$E', 'dot')")
is "$(printf '%s\n' "$DOT" | grep -c '^  s[0-9]* \[label=".*\\ncompleted, [0-9.]* m\?s.*fillcolor="#d9f2d9"')" "8" \
	"chain_graph (dot): eight steps, each completed with its duration"
SVG=$(printf '%s\n' "$DOT" | dot -Tsvg 2>&1)
like "$SVG" '<svg' "Graphviz renders the execution's graph to SVG"
is "$(printf '%s\n' "$SVG" | grep -c '<g id="node[0-9]*" class="node">')" "8" "the SVG has the eight steps"
MERMAID=$(psql_q "SELECT chainexec.chain_graph('$E')")
is "$(printf '%s\n' "$MERMAID" | grep -c '^  class s[0-9]* completed$')" "8" "chain_graph (mermaid): eight completed steps"
is "$(for s in extract_lead_data validate_requirements create_client_record research_travel_options \
		calculate_pricing_tiers generate_proposal_document generate_welcome_email schedule_followup_activities; do
		grep -q ">[0-9] $s<" "$CE_REPO/docs/lead-execution.svg" && echo "$s"; done | wc -l)" "8" \
	"docs/lead-execution.svg, shown in the README, draws the lead chain's eight steps"

# ---------------------------------------------------------------------------
# chainexec.stats: a step in an executor, then one in a chain_run session
# ---------------------------------------------------------------------------
psql_q "SELECT chainexec.chain_define('{\"id\": \"observe-slow\", \"steps\": [
	{\"id\": 1, \"name\": \"nap\", \"type\": \"sql\", \"sql\": \"SELECT pg_sleep(3)\"}]}', true)" >/dev/null
S1=$(psql_q "SELECT chainexec.chain_execute('observe-slow')")
if poll_query_until "SELECT executors_busy = 1 AND lines_running = 1 AND lines_ready = 0 AND executions_active = 1 FROM chainexec.stats WHERE organization_id = '$ORG'" t 20; then
	ok "stats: an executor slot is busy with the organization's running step, which counts as running, not ready"
else
	not_ok "stats: an executor slot is busy with the organization's running step, which counts as running, not ready" \
		"$(psql_q "SELECT * FROM chainexec.stats WHERE organization_id = '$ORG'")"
fi
psql_q "SELECT chainexec.chain_wait('$S1', 30000)" >/dev/null
psql -X -q -c "CALL chainexec.chain_run('observe-slow')" >/dev/null 2>&1 &
BG=$!
if poll_query_until "SELECT sessions_busy = 1 AND executors_busy = 0 FROM chainexec.stats WHERE organization_id = '$ORG'" t 20; then
	ok "stats: a CALL chain_run session running a step counts as a busy session, not an executor"
else
	not_ok "stats: a CALL chain_run session running a step counts as a busy session, not an executor" \
		"$(psql_q "SELECT * FROM chainexec.stats WHERE organization_id = '$ORG'")"
fi
wait "$BG"
BG=
is "$(psql_q "SELECT executors_busy + sessions_busy + lines_running || ' ' || CASE WHEN transitions_per_s * 60 >= 2 THEN 'yes' ELSE 'no' END
	FROM chainexec.stats WHERE organization_id = '$ORG'")" "0 yes" \
	"stats: nothing runs any more; the two naps ended in the last minute"

# ---------------------------------------------------------------------------
# contrib/postgres_exporter.yaml, as postgres_exporter runs it
# ---------------------------------------------------------------------------
psql_q "CREATE ROLE $EXPORTER LOGIN IN ROLE pg_monitor" >/dev/null
# queries: "name<TAB>column,column,...<TAB>SQL on one line" per query
QUERIES=$(python3 - "$YAML" <<-'EOF'
	import sys, yaml
	doc = yaml.safe_load(open(sys.argv[1]))
	for name, q in doc.items():
	    cols = [list(m.keys())[0] for m in q["metrics"]]
	    print(name + "\t" + ",".join(cols) + "\t" + " ".join(q["query"].split()))
EOF
)
is "$(printf '%s\n' "$QUERIES" | grep -c .)" "1" "the exporter file parses as YAML and has its query"
while IFS=$'\t' read -r name cols sql; do
	got=$(PGOPTIONS= psql -X -A -q -v ON_ERROR_STOP=1 -U "$EXPORTER" -c "$sql" 2>&1)
	header=$(printf '%s\n' "$got" | head -n 1 | tr '|' ',')
	is "$header" "$cols" "exporter query $name runs as a pg_monitor member and returns the columns its metrics name"
	like "$(printf '%s\n' "$got" | grep -c "|$ORG|")" '^1$' \
		"exporter query $name: a pg_monitor member sees this organization's row from any session"
	like "$(PGOPTIONS= psql -X -A -t -q -v ON_ERROR_STOP=1 -c "SET ROLE $EXPORTER; $sql" | grep "|$ORG|" | cut -d'|' -f3)" '^[0-9]+$' \
		"exporter query $name: the organization's numbers are plain numbers"
done <<<"$QUERIES"

done_testing
exit $?
