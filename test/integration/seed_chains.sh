#!/usr/bin/env bash
# test/integration/seed_chains.sh: the design documents' two chains,
# verbatim, run as the documents mean.
#
# ../shared/seed-chains/*.json (beside the repository, as in CI) are defined
# unchanged (a missing folder fails the suite) with the handlers and
# templates of test/seed/handlers.sql, in an organization of this run's
# own.  Every scenario runs twice: in-session (CALL chain_run) and through
# the background workers (chain_execute, commit, chain_wait):
#   happy      a complete lead becomes a client, a three-tier proposal, a
#              welcome email and four activities, each exactly once;
#   outage     the travel API times out on every attempt: two retries with
#              5 s and 10 s back-off, then the fallbacks (manual research
#              note, standard pricing, basic proposal) and the chain ends well;
#   retries    extraction fails twice, succeeds on attempt 3 after 1 s + 2 s
#              of back-off; failing a third time fails the execution;
#   poor data  validation scores 40 and routes skip_to_step_6 after it ran:
#              steps 3-5 skipped, step 8 (dependsOn 3) still runs, the basic
#              proposal is made, and successConditions ("client_id != null")
#              fail the execution as the definition says;
#   follow-up  an engaged client gets a message, a delivery and a next
#              action; an unengaged one ("none") skips to step 6 and step 7
#              is skipped, and the first success condition fails it;
#   saga       the client record is created but no session comes back: the
#              success condition fails and delete_client_record undoes the
#              record; a variant with more rollbackActions shows them run
#              in reverse completion order.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=600
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

SEED_DIR=$CE_REPO/../shared/seed-chains
MOBILE=$SEED_DIR/mobile-lead-processing.json
FOLLOWUP=$SEED_DIR/client-followup-sequence.json

if [ ! -f "$MOBILE" ] || [ ! -f "$FOLLOWUP" ]; then
	plan 1
	not_ok "the design documents' chains are in $SEED_DIR" \
		"CI keeps a copy of shared/ beside the clone; the suite cannot pass without them"
	exit 1
fi

# This run's organization: the chains, handlers and templates have fixed
# names, so each run registers its own copy.
ORG=$(psql_q "SELECT gen_random_uuid()") || bail_out "the server does not answer"
export PGOPTIONS="-c chainexec.organization_id=$ORG"

# sql: SQL on standard input, tuples only, unaligned; fail on an error.
sql()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"
}

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE organization_id = '$ORG';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE organization_id = '$ORG';
		DELETE FROM chainexec.handlers WHERE organization_id = '$ORG';
		DELETE FROM chainexec.templates WHERE organization_id = '$ORG';
		DROP SCHEMA IF EXISTS seed_chains CASCADE;
	EOF
}
trap cleanup EXIT

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null
poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 ||
	bail_out "no executor is running"

check "handlers and templates of the seed chains load" psql_file "$CE_REPO/test/seed/handlers.sql"

sql <<'EOF' || bail_out "could not create the test helpers"
-- lines(e): "1=completed 2=skipped ... f41=completed c3=completed": step
-- lines in step order, then fallback lines by step id, then compensation
-- lines in the order they were made.
CREATE FUNCTION seed_chains.lines(e uuid) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(CASE line_type WHEN 'step' THEN '' WHEN 'fallback' THEN 'f' ELSE 'c' END
					  || step_id || '=' || status, ' '
					  ORDER BY CASE line_type WHEN 'step' THEN 0 WHEN 'fallback' THEN 1 ELSE 2 END,
							   CASE line_type WHEN 'compensation' THEN line_number ELSE step_id END)
	  FROM chainexec.universal_transaction_lines WHERE transaction_id = e
$$;
CREATE FUNCTION seed_chains.line(e uuid, step int, kind text DEFAULT 'step')
RETURNS chainexec.universal_transaction_lines LANGUAGE sql AS $$
	SELECT * FROM chainexec.universal_transaction_lines
	 WHERE transaction_id = e AND step_id = step AND line_type = kind
$$;
CREATE FUNCTION seed_chains.ctx(e uuid, k text) RETURNS text LANGUAGE sql AS $$
	SELECT context->>k FROM chainexec.universal_transactions WHERE id = e
$$;
CREATE FUNCTION seed_chains.status(e uuid) RETURNS text LANGUAGE sql AS $$
	SELECT status FROM chainexec.universal_transactions WHERE id = e
$$;
-- clients the follow-up chain works on, one per mode
INSERT INTO seed_chains.clients (client_id, name, trip, proposal, history, preferences, agent)
SELECT 'CL-' || who || '-' || mode, 'Ana Lopez', 'Lisbon trip in June', 'three tiers from 1800 EUR',
	   'proposal sent', 'vegetarian', 'Kim Henderson'
  FROM unnest(ARRAY['ENGAGED', 'QUIET']) who, unnest(ARRAY['RUN', 'WORKER']) mode;
EOF

# ---------------------------------------------------------------------------
# The two definitions, unchanged
# ---------------------------------------------------------------------------
for f in "$MOBILE" "$FOLLOWUP"; do
	id=$(basename "$f" .json)
	got=$(sql -v def="$(cat "$f")" <<-'EOF' 2>&1
		SELECT chainexec.chain_define(:'def'::jsonb, true);
	EOF
	)
	is "$got" "1" "$id: chain_define accepts the design document's chain unchanged"
	is "$(sql -v def="$(cat "$f")" <<-EOF
		SELECT definition = :'def'::jsonb FROM chainexec.chains WHERE chain_id = '$id' AND version = 1 AND organization_id = '$ORG';
	EOF
	)" "t" "$id: the stored definition is the file's"
done
is "$(psql_q "SELECT (chainexec.chain_validate('mobile-lead-processing', '{\"raw_lead_message\": \"Hi, this is Ana Lopez\"}'))->'valid'")" \
	"true" "chain_validate finds the mobile chain valid"

# What the definitions say, found when they are defined: the jumps skip the
# only steps that set variables later steps and success conditions read.
is "$(psql_q "SELECT count(*) FROM jsonb_array_elements_text(chainexec.chain_validate('client-followup-sequence',
		'{\"client_id\": \"x\", \"days_since_proposal\": 3}')->'warnings') w
	WHERE w LIKE 'step \"update_client_status\" reads \"message_type\", which only steps that step \"determine_followup_strategy\" skips with skip_to_step_6 set%'
	   OR w LIKE 'success condition \"message_content != null\" reads \"message_content\", which only steps that step \"determine_followup_strategy\" skips%'")" \
	"2" "chain_validate warns that the follow-up chain's jump starves step 6 and its first success condition"
is "$(psql_q "SELECT count(*) FROM jsonb_array_elements_text(chainexec.chain_validate('mobile-lead-processing',
		'{\"raw_lead_message\": \"Hi, this is Ana Lopez\"}')->'warnings') w
	WHERE w LIKE 'success condition \"client_id != null\" reads \"client_id\", which only steps that step \"validate_requirements\" skips with skip_to_step_6 set%'")" \
	"1" "chain_validate warns that the mobile chain's poor-data jump leaves client_id null"

# The saga variant: the mobile chain with rollbackActions on steps 4 and 6
# too, to see compensations run in reverse completion order.
check "the saga variant is defined" psql_q "
	SELECT chainexec.chain_define(jsonb_set(jsonb_set(definition,
			'{steps,3,rollbackAction}', '\"release_travel_holds\"'),
			'{steps,5,rollbackAction}', '\"withdraw_proposal\"')
		|| '{\"id\": \"mobile-lead-processing-saga\"}', true)
	  FROM chainexec.chains WHERE chain_id = 'mobile-lead-processing' AND version = 1 AND organization_id = '$ORG'"

# run MODE CHAIN INPUT: run an execution to its end, in-session (MODE run)
# or through the workers (MODE worker); print its id.
run()
{
	local mode=$1 chain=$2 input=$3 id

	if [ "$mode" = run ]; then
		sql -v input="$input" <<-EOF
			CALL chainexec.chain_run('$chain', :'input') \gset
			SELECT :'result'::jsonb->>'executionId';
		EOF
	else
		id=$(sql -v input="$input" <<-EOF
			SELECT chainexec.chain_execute('$chain', :'input');
		EOF
		) || return 1
		psql_q "SELECT chainexec.chain_wait('$id', 120000)->>'status'" >/dev/null || return 1
		echo "$id"
	fi
}

# switch STEP FAIL_ATTEMPTS FAILURE_TYPE POOR: make a step misbehave;
# switches_off: all behave.
switch()
{
	psql_q "INSERT INTO seed_chains.switches VALUES ('$1', $2, '$3', $4)" >/dev/null
}
switches_off()
{
	psql_q "DELETE FROM seed_chains.switches" >/dev/null
}

q()
{
	psql_q "$1" 2>&1
}

GOOD='{"raw_lead_message": "Hi, this is Ana Lopez. We would love to visit Lisbon from 2027-06-10 to 2027-06-17, 2 travelers, budget 5000-7000 EUR. One of us is vegetarian.", "source_channel": "whatsapp"}'
POOR='{"raw_lead_message": "Hello, this is Sam Reed, thinking about a trip to Japan at some point.", "source_channel": "sms"}'
ALL_COMPLETED="1=completed 2=completed 3=completed 4=completed 5=completed 6=completed 7=completed 8=completed"

for MODE in run worker; do
	M="[$MODE]"

	# -----------------------------------------------------------------------
	# happy path
	# -----------------------------------------------------------------------
	switches_off
	E=$(run $MODE mobile-lead-processing "$GOOD") || not_ok "$M happy: the execution runs" "$E"
	is "$(q "SELECT seed_chains.status('$E')")" "completed" "$M happy: the lead is processed"
	is "$(q "SELECT seed_chains.lines('$E')")" "$ALL_COMPLETED" "$M happy: all eight steps ran, no fallback"
	is "$(q "SELECT concat_ws('|', context->>'client_name', context->>'destination', context->>'travel_dates',
								  context->>'traveler_count', context->>'budget_range', context->>'data_quality_score',
								  context->>'agent_name')
			   FROM chainexec.universal_transactions WHERE id = '$E'")" \
		"Ana Lopez|Lisbon|2027-06-10 to 2027-06-17|2|5000-7000 EUR|100|Kim Henderson" \
		"$M happy: the lead's data extracted and validated (agent_name from the input schema's default)"
	is "$(q "SELECT concat_ws('|', context->>'classic_price', context->>'premium_price', context->>'luxury_price')
			   FROM chainexec.universal_transactions WHERE id = '$E'")" "1800|2640|4200" \
		"$M happy: three tiers at 75/110/175 % of 2 x 1200"
	like "$(q "SELECT seed_chains.ctx('$E', 'proposal_document')")" \
		"^PROPOSAL for Ana Lopez: Lisbon, 2027-06-10 to 2027-06-17, 2 travellers. Classic 1800, Premium 2640, Luxury 4200" \
		"$M happy: the three-tier proposal is rendered"
	is "$(q "SELECT (SELECT client_id || '|' || session_id FROM seed_chains.clients WHERE execution_id = '$E')
				  = seed_chains.ctx('$E', 'client_id') || '|' || seed_chains.ctx('$E', 'session_id')")" "t" \
		"$M happy: the client record holds the client_id and session_id of the context"
	is "$(q "SELECT (SELECT count(*) FROM seed_chains.clients WHERE execution_id = '$E') || '|' ||
				   (SELECT count(*) FROM seed_chains.activities WHERE execution_id = '$E') || '|' ||
				   (SELECT count(*) || '/' || count(DISTINCT step) FROM seed_chains.calls WHERE execution_id = '$E')")" \
		"1|4|6/6" "$M happy: one client, four activities, each handler step ran exactly once"
	is "$(q "SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(chainexec.chain_result('$E')->'outputs') k")" \
		"client_id,followup_scheduled,proposal_document,session_id,welcome_email_content" \
		"$M happy: the outputs are the outputSchema's properties"
	is "$(q "SELECT count(*) FILTER (WHERE input IS NOT NULL AND output IS NOT NULL)
			   FROM chainexec.universal_transaction_lines WHERE transaction_id = '$E'")" "8" \
		"$M happy: saveIntermediateResults keeps every step's input and output"

	# -----------------------------------------------------------------------
	# outage of the travel API: retries with back-off, then fallbacks
	# -----------------------------------------------------------------------
	switches_off
	switch research_travel_options 99 api_timeout false
	E=$(run $MODE mobile-lead-processing "$GOOD") || not_ok "$M outage: the execution runs" "$E"
	is "$(q "SELECT seed_chains.status('$E')")" "completed" "$M outage: the lead is still processed"
	is "$(q "SELECT seed_chains.lines('$E')")" \
		"1=completed 2=completed 3=completed 4=failed 5=failed 6=failed 7=completed 8=completed f41=completed f51=completed f61=completed" \
		"$M outage: research, pricing and the full proposal fall back"
	is "$(q "SELECT (l).attempt || '|' || ((l).error->>'failure_type') FROM seed_chains.line('$E', 4) l")" "3|api_timeout" \
		"$M outage: the research step was tried three times (maxRetries 2) on api_timeout"
	is "$(q "SELECT ((l).error->>'failure_type') FROM seed_chains.line('$E', 5) l")" "insufficient_data" \
		"$M outage: pricing has no estimated costs (insufficient_data) and falls back"
	is "$(q "SELECT extract(epoch FROM (SELECT finished_at FROM seed_chains.line('$E', 4))
							  - (SELECT finished_at FROM seed_chains.line('$E', 2))) >= 15")" "t" \
		"$M outage: the retries waited 5 s then 10 s (exponential from backoffMs 5000)"
	is "$(q "SELECT concat_ws('|', context->>'research_note', context->>'classic_price', context->>'proposal_document')
			   FROM chainexec.universal_transactions WHERE id = '$E'")" \
		"MANUAL RESEARCH for Lisbon: Ana Lopez to Lisbon, 2027-06-10 to 2027-06-17, 2 travellers, budget 5000-7000 EUR|standard classic rate for 2 travellers|BASIC PROPOSAL for Ana Lopez: Lisbon, budget 5000-7000 EUR. An agent will call you to complete the details." \
		"$M outage: manual research note, standard pricing and the basic proposal"
	is "$(q "SELECT count(*) FROM seed_chains.calls WHERE execution_id = '$E' AND step = 'research_travel_options'")" "0" \
		"$M outage: no research call took effect"

	# -----------------------------------------------------------------------
	# retries with back-off: extraction fails twice, then succeeds
	# -----------------------------------------------------------------------
	switches_off
	switch extract_lead_data 2 extraction_failed false
	E=$(run $MODE mobile-lead-processing "$GOOD") || not_ok "$M retries: the execution runs" "$E"
	is "$(q "SELECT seed_chains.status('$E')")" "completed" "$M retries: the lead is processed"
	is "$(q "SELECT (l).attempt FROM seed_chains.line('$E', 1) l")" "3" "$M retries: extraction took three attempts"
	is "$(q "SELECT string_agg(attempt::text, ',') FROM seed_chains.calls WHERE execution_id = '$E' AND step = 'extract_lead_data'")" "3" \
		"$M retries: only the third attempt took effect"
	is "$(q "SELECT extract(epoch FROM (SELECT finished_at FROM seed_chains.line('$E', 1))
							  - (SELECT started_at FROM chainexec.universal_transactions WHERE id = '$E')) BETWEEN 3 AND 30")" "t" \
		"$M retries: back-off of 1 s then 2 s (exponential from backoffMs 1000)"
	switches_off
	switch extract_lead_data 3 extraction_failed false
	E=$(run $MODE mobile-lead-processing "$GOOD") || not_ok "$M retries exhausted: the execution runs" "$E"
	is "$(q "SELECT seed_chains.status('$E') || '|' || (SELECT error->>'failure_type' FROM chainexec.universal_transactions WHERE id = '$E')")" \
		"failed|extraction_failed" "$M retries exhausted: onFailure fail fails the execution"
	is "$(q "SELECT seed_chains.lines('$E')")" \
		"1=failed 2=cancelled 3=cancelled 4=cancelled 5=cancelled 6=cancelled 7=cancelled 8=cancelled" \
		"$M retries exhausted: nothing else runs"
	is "$(q "SELECT count(*) FROM seed_chains.clients WHERE execution_id = '$E'")" "0" \
		"$M retries exhausted: no client record"

	# -----------------------------------------------------------------------
	# poor data: validation routes skip_to_step_6 after it ran
	# -----------------------------------------------------------------------
	switches_off
	E=$(run $MODE mobile-lead-processing "$POOR") || not_ok "$M poor data: the execution runs" "$E"
	is "$(q "SELECT concat_ws('|', context->>'validation_status', context->>'data_quality_score')
			   FROM chainexec.universal_transactions WHERE id = '$E'")" "incomplete|40" \
		"$M poor data: validation says incomplete, 40 points"
	is "$(q "SELECT seed_chains.lines('$E')")" \
		"1=completed 2=completed 3=skipped 4=skipped 5=skipped 6=failed 7=failed 8=failed f61=completed" \
		"$M poor data: steps 3-5 skipped; step 8 (dependsOn 3) is not held back by the skipped step"
	is "$(q "SELECT string_agg(step_id || ':' || (error->>'failure_type'), ',' ORDER BY step_id)
			   FROM chainexec.universal_transaction_lines WHERE transaction_id = '$E' AND status = 'failed'")" \
		"6:insufficient_data,7:insufficient_data,8:insufficient_data" \
		"$M poor data: the steps after the jump lack the skipped steps' outputs"
	is "$(q "SELECT seed_chains.ctx('$E', 'proposal_document')")" \
		"BASIC PROPOSAL for Sam Reed: Japan, budget not specified. An agent will call you to complete the details." \
		"$M poor data: the basic proposal is made"
	is "$(q "SELECT status || '|' || (error->>'message') FROM chainexec.universal_transactions WHERE id = '$E'")" \
		'failed|success condition "client_id != null" is false' \
		"$M poor data: no client record was made, so successConditions fail the execution"
	is "$(q "SELECT (SELECT count(*) FROM seed_chains.clients WHERE execution_id = '$E') + (SELECT count(*) FROM seed_chains.compensations WHERE execution_id = '$E')")" "0" \
		"$M poor data: no client record, nothing to compensate"

	# -----------------------------------------------------------------------
	# follow-up of an engaged client
	# -----------------------------------------------------------------------
	switches_off
	CLIENT=CL-ENGAGED-${MODE^^}
	E=$(run $MODE client-followup-sequence "{\"client_id\": \"$CLIENT\", \"days_since_proposal\": 5, \"last_interaction_type\": \"phone_call\", \"proposal_tier_interest\": \"premium\"}") ||
		not_ok "$M engaged: the execution runs" "$E"
	is "$(q "SELECT seed_chains.status('$E')")" "completed" "$M engaged: the follow-up completes"
	is "$(q "SELECT seed_chains.lines('$E')")" \
		"1=completed 2=completed 3=completed 4=completed 5=completed 6=completed 7=completed" \
		"$M engaged: every step ran"
	is "$(q "SELECT concat_ws('|', context->>'engagement_level', context->>'message_type', context->>'subject_line',
								  context->>'expected_response', context->>'action_type', (context->>'delivery_id' IS NOT NULL)::text)
			   FROM chainexec.universal_transactions WHERE id = '$E'")" \
		"high|personal|Ana Lopez, your Lisbon trip in June|call booked|call|true" \
		"$M engaged: a personal message, a delivery and a call as next action"
	is "$(q "SELECT (SELECT count(*) FROM seed_chains.deliveries WHERE execution_id = '$E') || '|' ||
				   (SELECT string_agg(kind, ',' ORDER BY kind) FROM seed_chains.activities WHERE execution_id = '$E') || '|' ||
				   (SELECT status || ',' || engagement FROM seed_chains.clients WHERE client_id = '$CLIENT')")" \
		"1|call,status_update|followup:personal,high" \
		"$M engaged: one delivery, the status update and the next action, once each"

	# -----------------------------------------------------------------------
	# follow-up of an unengaged client: skip_to_step_6 before step 2
	# -----------------------------------------------------------------------
	CLIENT=CL-QUIET-${MODE^^}
	E=$(run $MODE client-followup-sequence "{\"client_id\": \"$CLIENT\", \"days_since_proposal\": 45, \"last_interaction_type\": \"no_response\", \"proposal_tier_interest\": \"none\"}") ||
		not_ok "$M unengaged: the execution runs" "$E"
	is "$(q "SELECT seed_chains.ctx('$E', 'engagement_level')")" "none" "$M unengaged: engagement none"
	# Step 3 (parallelExecution) may have finished before step 2's condition
	# was taken; then there is nothing left to skip.
	like "$(q "SELECT seed_chains.lines('$E')")" \
		"^1=completed 2=skipped 3=(skipped|completed) 4=skipped 5=skipped 6=failed 7=skipped$" \
		"$M unengaged: steps 2 to 5 skipped, step 7's condition is false"
	is "$(q "SELECT (l).error->>'failure_type' FROM seed_chains.line('$E', 6) l")" "insufficient_data" \
		"$M unengaged: step 6 lacks the skipped steps' message_type (onFailure warn)"
	is "$(q "SELECT status || '|' || (error->>'message') FROM chainexec.universal_transactions WHERE id = '$E'")" \
		'failed|success condition "message_content != null" is false' \
		"$M unengaged: the first success condition fails the execution, as the definition says"
	is "$(q "SELECT (SELECT count(*) FROM seed_chains.deliveries WHERE execution_id = '$E') || '|' ||
				   (SELECT status FROM seed_chains.clients WHERE client_id = '$CLIENT')")" "0|new" \
		"$M unengaged: no message is scheduled"

	# -----------------------------------------------------------------------
	# saga: no session comes back, the client record is compensated
	# -----------------------------------------------------------------------
	switches_off
	switch create_client_record 0 system_error true
	E=$(run $MODE mobile-lead-processing "$GOOD") || not_ok "$M saga: the execution runs" "$E"
	is "$(q "SELECT seed_chains.lines('$E')")" \
		"1=completed 2=completed 3=compensated 4=completed 5=completed 6=completed 7=failed 8=failed c3=completed" \
		"$M saga: the session-less steps fail (warn), the client record step is compensated"
	like "$(q "SELECT status || '|' || (error->>'message') FROM chainexec.universal_transactions WHERE id = '$E'")" \
		'^compensated\|success condition "session_id != null" is false' \
		"$M saga: the success condition fails the execution"
	is "$(q "SELECT (SELECT count(*) FROM seed_chains.clients WHERE execution_id = '$E') || '|' ||
				   (SELECT count(*) FROM seed_chains.activities a WHERE a.execution_id = '$E') || '|' ||
				   (SELECT string_agg(action || ':' || (target = seed_chains.ctx('$E', 'client_id')), ',') FROM seed_chains.compensations WHERE execution_id = '$E')")" \
		"0|0|delete_client_record:true" "$M saga: the client record is deleted, once"

	E=$(run $MODE mobile-lead-processing-saga "$GOOD") || not_ok "$M saga order: the execution runs" "$E"
	is "$(q "SELECT string_agg(step_id::text, ',' ORDER BY line_number) FROM chainexec.universal_transaction_lines
			  WHERE transaction_id = '$E' AND line_type = 'compensation'")" \
		"$(q "SELECT string_agg(step_id::text, ',' ORDER BY finished_at DESC) FROM chainexec.universal_transaction_lines
			  WHERE transaction_id = '$E' AND line_type = 'step' AND step_id IN (3, 4, 6)")" \
		"$M saga order: compensations run in reverse completion order"
	is "$(q "SELECT string_agg(coalesce(target, action), ',' ORDER BY id) FROM seed_chains.compensations WHERE execution_id = '$E'")" \
		"$(q "SELECT string_agg(CASE step_id WHEN 3 THEN seed_chains.ctx('$E', 'client_id') ELSE step_name END, ',' ORDER BY line_number)
			    FROM chainexec.universal_transaction_lines WHERE transaction_id = '$E' AND line_type = 'compensation'")" \
		"$M saga order: the rollback handlers took effect in that order"
	is "$(q "SELECT count(*) FROM seed_chains.compensations WHERE execution_id = '$E'")" "3" \
		"$M saga order: three compensations, one each"
done
switches_off

# performanceTargets are compared in chain_analytics
is "$(q "SELECT targets_met->>'totalExecutionTime' = (p95_duration_ms <= 120000)::text
			   AND targets_met->>'stepsCompleted' = (avg_steps >= 6)::text
			   AND NOT targets_met ? 'dataQualityThreshold'
		  FROM chainexec.chain_analytics WHERE organization_id = '$ORG' AND chain_id = 'mobile-lead-processing'")" "t" \
	"chain_analytics compares the mobile chain's performanceTargets it can judge"
is "$(q "SELECT targets_met IS NULL FROM chainexec.chain_analytics
		  WHERE organization_id = '$ORG' AND chain_id = 'client-followup-sequence'")" "t" \
	"a chain without performanceTargets has no targets_met"

done_testing; exit $?
