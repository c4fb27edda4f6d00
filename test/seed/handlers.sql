--
-- test/seed/handlers.sql: the handlers, rollback handlers and templates
-- that the design documents' two chains name (../shared/seed-chains/),
-- modelled on what each step describes, for test/integration/seed_chains.sh.
--
-- Everything lives in schema seed_chains:
--   switches       one row per step name that a scenario wants to misbehave:
--                  fail_attempts N makes the step's handler raise
--                  failure_type (chainexec.raise_failure) on attempts 1..N
--                  (a large N is an outage); poor = true makes it return
--                  poor data (each handler says what that means).
--   calls          one row per handler call that succeeded (the row of a
--                  failed attempt rolls back with it): effects exactly once.
--   clients, activities, deliveries
--                  the "CRM" the database-operations, activity-logging and
--                  communication-scheduling handlers write.
--   compensations  one row per rollback handler that undid something, in
--                  the order they ran.
--
-- The handlers and templates are registered in the organization of the
-- session (chainexec.organization_id), so that a run of the suite has its
-- own copy of every name the chains use.
--
SET client_min_messages = warning;

DROP SCHEMA IF EXISTS seed_chains CASCADE;
CREATE SCHEMA seed_chains;

CREATE TABLE seed_chains.switches (
	step text PRIMARY KEY,
	fail_attempts int NOT NULL DEFAULT 0,
	failure_type text NOT NULL DEFAULT 'system_error',
	poor boolean NOT NULL DEFAULT false
);

CREATE TABLE seed_chains.calls (
	id bigserial PRIMARY KEY,
	execution_id uuid NOT NULL,
	handler text NOT NULL,
	step text NOT NULL,
	attempt int NOT NULL,
	at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE seed_chains.clients (
	client_id text PRIMARY KEY,
	execution_id uuid,
	session_id text,
	name text NOT NULL,
	source text,
	requirements text,
	trip text,
	proposal text,
	history text,
	preferences text,
	agent text,
	status text NOT NULL DEFAULT 'new',
	engagement text,
	updated_at timestamptz
);

CREATE TABLE seed_chains.activities (
	id bigserial PRIMARY KEY,
	execution_id uuid NOT NULL,
	client_id text,
	kind text NOT NULL,
	due_at timestamptz
);

CREATE TABLE seed_chains.deliveries (
	delivery_id text PRIMARY KEY,
	execution_id uuid NOT NULL,
	channel text NOT NULL,
	subject text,
	send_at timestamptz NOT NULL
);

CREATE TABLE seed_chains.compensations (
	id bigserial PRIMARY KEY,
	execution_id uuid NOT NULL,
	action text NOT NULL,
	target text
);

-- gate(handler, arg): apply the step's switch (fail on the first
-- fail_attempts attempts) and record the call; returns whether the step
-- should return poor data.
CREATE FUNCTION seed_chains.gate(handler text, arg jsonb)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
	s		seed_chains.switches;
	attempt	int := (arg->'step'->>'attempt')::int;
BEGIN
	SELECT * INTO s FROM seed_chains.switches WHERE step = arg->'step'->>'name';
	IF FOUND AND attempt <= s.fail_attempts THEN
		PERFORM chainexec.raise_failure(s.failure_type,
			format('%s is not available (attempt %s)', handler, attempt));
	END IF;
	INSERT INTO seed_chains.calls (execution_id, handler, step, attempt)
	VALUES ((arg->>'execution_id')::uuid, handler, arg->'step'->>'name', attempt);
	RETURN coalesce(s.poor, false);
END
$$;

-- The first line of the rendered inputTemplate: what the step asks for.
CREATE FUNCTION seed_chains.request(arg jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT btrim(split_part(coalesce(arg->>'input', ''), E'\n', 1)) $$;

------------------------------------------------------------------------------
-- mobile-lead-processing
------------------------------------------------------------------------------

-- extract_lead_data (mobile-mode): parse a WhatsApp/SMS lead such as
--   "Hi, this is Ana Lopez. We'd love to visit Lisbon from 2027-06-10 to
--    2027-06-17, 2 travelers, budget 5000-7000 EUR. One of us is vegetarian."
-- What the message does not say is "not specified".  A message with
-- neither a name nor a destination is extraction_failed.  Poor: only the
-- name and the destination are understood.
CREATE FUNCTION seed_chains.extract_lead(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	msg		text := arg->'variables'->>'raw_lead_message';
	poor	boolean := seed_chains.gate('mobile-mode', arg);
	name	text;
	dest	text;
	dates	text;
	budget	text;
	people	text;
	special	text;
BEGIN
	name := substring(msg FROM '(?:this is|I''m|I am|name is) ([A-Z][a-z]+(?: [A-Z][a-z]+)?)');
	dest := substring(msg FROM '(?:visit|go to|trip to|travel to) ([A-Z][a-z]+(?: [A-Z][a-z]+)?)');
	IF name IS NULL AND dest IS NULL THEN
		PERFORM chainexec.raise_failure('extraction_failed', 'no client or destination in the lead message');
	END IF;
	dates := (SELECT m[1] || ' to ' || m[2]
				FROM regexp_match(msg, '(\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})') m);
	people := substring(msg FROM '(\d+) (?:travell?ers|people|adults|guests)');
	budget := substring(msg FROM 'budget (?:of )?(\d[\d,. -]*\d(?: ?[A-Z]{3})?)');
	special := (SELECT string_agg(w[1], ', ')
				  FROM regexp_matches(msg, '(vegetarian|vegan|wheelchair|honeymoon|allerg\w*)', 'gi') w);
	IF poor THEN
		dates := NULL;
		people := NULL;
		budget := NULL;
	END IF;
	RETURN jsonb_build_object(
		'client_name', coalesce(name, 'not specified'),
		'destination', coalesce(dest, 'not specified'),
		'travel_dates', coalesce(dates, 'not specified'),
		'budget_range', coalesce(budget, 'not specified'),
		'traveler_count', coalesce(to_jsonb(people::int), '"not specified"'),
		'special_requirements', coalesce(special, 'none'));
END
$$;

-- validate_requirements (requirement-validation): 20 points for each of
-- the five requirements that is specific; complete when all are.
CREATE FUNCTION seed_chains.validate_requirements(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v		jsonb := arg->'variables';
	missing	text[];
	k		text;
BEGIN
	PERFORM seed_chains.gate('requirement-validation', arg);
	FOREACH k IN ARRAY ARRAY['client_name', 'destination', 'travel_dates', 'budget_range', 'traveler_count'] LOOP
		IF v->>k IS NULL OR v->>k = 'not specified' THEN
			missing := missing || k;
		END IF;
	END LOOP;
	RETURN jsonb_build_object(
		'validation_status', CASE WHEN missing IS NULL THEN 'complete' ELSE 'incomplete' END,
		'missing_info', to_jsonb(coalesce(missing, '{}')),
		'complete_requirements', format('%s to %s, %s, %s travellers, budget %s',
										v->>'client_name', v->>'destination', v->>'travel_dates',
										v->>'traveler_count', v->>'budget_range'),
		'data_quality_score', 20 * (5 - coalesce(cardinality(missing), 0)));
END
$$;

-- database-operations: the rendered inputTemplate says which operation.
--   "Create new client record:"               a clients row; poor: no session
--   "Retrieve client personalization data:"   the clients row
--   "Update client follow-up status:"         status + an activity
CREATE FUNCTION seed_chains.database_operations(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v		jsonb := arg->'variables';
	exec	uuid := (arg->>'execution_id')::uuid;
	req		text := seed_chains.request(arg);
	poor	boolean := seed_chains.gate('database-operations', arg);
	c		seed_chains.clients;
	cid		text;
BEGIN
	IF req = 'Create new client record:' THEN
		cid := 'CL-' || upper(substr(md5(exec::text), 1, 8));
		INSERT INTO seed_chains.clients (client_id, execution_id, session_id, name, source, requirements)
		VALUES (cid, exec, 'S-' || substr(md5(exec::text), 9, 8), v->>'client_name',
				v->>'source_channel', v->>'complete_requirements')
		RETURNING * INTO c;
		RETURN jsonb_build_object('client_id', c.client_id,
								  'session_id', CASE WHEN poor THEN NULL ELSE c.session_id END);
	ELSIF req = 'Retrieve client personalization data:' THEN
		SELECT * INTO c FROM seed_chains.clients WHERE client_id = v->>'client_id';
		IF NOT FOUND THEN
			PERFORM chainexec.raise_failure('resource_not_found', format('no client %s', v->>'client_id'));
		END IF;
		RETURN jsonb_build_object('client_name', c.name, 'trip_details', c.trip,
								  'proposal_details', c.proposal, 'interaction_history', c.history,
								  'preferences', c.preferences, 'agent_info', c.agent);
	ELSIF req = 'Update client follow-up status:' THEN
		UPDATE seed_chains.clients
		   SET status = 'followup:' || coalesce(v->>'message_type', 'none'),
			   engagement = v->>'engagement_level', updated_at = clock_timestamp()
		 WHERE client_id = v->>'client_id';
		IF NOT FOUND THEN
			PERFORM chainexec.raise_failure('resource_not_found', format('no client %s', v->>'client_id'));
		END IF;
		INSERT INTO seed_chains.activities (execution_id, client_id, kind, due_at)
		VALUES (exec, v->>'client_id', 'status_update', now());
		RETURN jsonb_build_object('status_updated', true, 'activity_logged', true,
								  'next_followup_date', (current_date + 7)::text);
	END IF;
	PERFORM chainexec.raise_failure('invalid_input', format('unknown database operation "%s"', req));
	RETURN NULL;
END
$$;

-- research_travel_options (amadeus-research): flights, hotels, activities
-- and a cost estimate of 1200 a traveller.
CREATE FUNCTION seed_chains.research(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v		jsonb := arg->'variables';
	people	int := CASE WHEN jsonb_typeof(v->'traveler_count') = 'number' THEN (v->>'traveler_count')::int ELSE 2 END;
BEGIN
	PERFORM seed_chains.gate('amadeus-research', arg);
	RETURN jsonb_build_object(
		'flight_options', format('2 direct flights to %s', v->>'destination'),
		'hotel_options', format('3 hotels in central %s', v->>'destination'),
		'activity_options', format('city tour and food tour in %s', v->>'destination'),
		'estimated_costs', 1200 * people);
END
$$;

-- calculate_pricing_tiers (three-tier-pricing): 75%, 110% and 175% of
-- the estimated costs.
CREATE FUNCTION seed_chains.pricing(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	base	numeric := (arg->'variables'->>'estimated_costs')::numeric;
BEGIN
	PERFORM seed_chains.gate('three-tier-pricing', arg);
	RETURN jsonb_build_object(
		'classic_price', round(base * 0.75),
		'premium_price', round(base * 1.10),
		'luxury_price', round(base * 1.75),
		'pricing_breakdown', format('base %s', base),
		'tier_inclusions', 'classic: flights and hotel; premium: plus tours; luxury: plus private transfers');
END
$$;

-- activity-logging: the rendered inputTemplate says which.
--   "Schedule follow-up activities for new client:"  four activities
--   "Schedule next follow-up action:"                one, by engagement
CREATE FUNCTION seed_chains.activity_logging(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v		jsonb := arg->'variables';
	exec	uuid := (arg->>'execution_id')::uuid;
	req		text := seed_chains.request(arg);
	kind	text;
	due		timestamptz;
BEGIN
	PERFORM seed_chains.gate('activity-logging', arg);
	IF req = 'Schedule follow-up activities for new client:' THEN
		INSERT INTO seed_chains.activities (execution_id, client_id, kind, due_at)
		VALUES (exec, v->>'client_id', 'initial_contact', now()),
			   (exec, v->>'client_id', 'proposal_delivery', now() + interval '24 hours'),
			   (exec, v->>'client_id', 'followup_reminder', now() + interval '3 days'),
			   (exec, v->>'client_id', 'second_followup', now() + interval '7 days');
		RETURN jsonb_build_object('activity_entries_created', 4, 'followup_tasks_scheduled', 3,
								  'followup_scheduled', true);
	ELSIF req = 'Schedule next follow-up action:' THEN
		kind := CASE v->>'engagement_level' WHEN 'high' THEN 'call' WHEN 'medium' THEN 'email'
				WHEN 'low' THEN 'gentle_reminder' ELSE 'quarterly_newsletter' END;
		due := now() + CASE v->>'engagement_level' WHEN 'high' THEN interval '1 day'
				WHEN 'medium' THEN interval '4 days' ELSE interval '7 days' END;
		INSERT INTO seed_chains.activities (execution_id, kind, due_at) VALUES (exec, kind, due);
		RETURN jsonb_build_object('next_action_scheduled', true, 'action_type', kind,
								  'action_date', due::date::text, 'automation_enabled', true);
	END IF;
	PERFORM chainexec.raise_failure('invalid_input', format('unknown activity request "%s"', req));
	RETURN NULL;
END
$$;

-- rollbackAction of create_client_record: delete the client and its
-- activities; a second run finds nothing and records nothing.
CREATE FUNCTION seed_chains.delete_client_record(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	cid	text := arg->'variables'->>'client_id';
BEGIN
	DELETE FROM seed_chains.activities WHERE client_id = cid;
	DELETE FROM seed_chains.clients WHERE client_id = cid;
	IF FOUND THEN
		INSERT INTO seed_chains.compensations (execution_id, action, target)
		VALUES ((arg->>'execution_id')::uuid, 'delete_client_record', cid);
	END IF;
	RETURN '{}';
END
$$;

-- Rollback handlers of the saga variant (more steps with a rollbackAction,
-- to see the order): each records that it ran.
CREATE FUNCTION seed_chains.undo(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO seed_chains.compensations (execution_id, action, target)
	VALUES ((arg->>'execution_id')::uuid, 'undo', arg->'step'->>'name');
	RETURN '{}';
END
$$;

------------------------------------------------------------------------------
-- client-followup-sequence
------------------------------------------------------------------------------

-- analyze_client_engagement (client-analysis): engagement from the last
-- interaction and the days since the proposal; "none" for a client who
-- has not answered for three weeks.
CREATE FUNCTION seed_chains.client_analysis(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v		jsonb := arg->'variables';
	days	numeric := (v->>'days_since_proposal')::numeric;
	level	text;
BEGIN
	PERFORM seed_chains.gate('client-analysis', arg);
	level := CASE v->>'last_interaction_type'
				WHEN 'phone_call' THEN 'high'
				WHEN 'email_opened' THEN CASE WHEN days <= 14 THEN 'medium' ELSE 'low' END
				WHEN 'proposal_sent' THEN CASE WHEN days <= 30 THEN 'low' ELSE 'none' END
				ELSE CASE WHEN days > 21 THEN 'none' ELSE 'low' END END;
	RETURN jsonb_build_object(
		'engagement_level', level,
		'purchase_intent', CASE v->>'proposal_tier_interest' WHEN 'luxury' THEN 'strong'
							WHEN 'premium' THEN 'strong' WHEN 'classic' THEN 'moderate' ELSE 'weak' END,
		'followup_approach', CASE level WHEN 'high' THEN 'personal call' WHEN 'none' THEN 'newsletter'
							 ELSE 'email' END,
		'urgency_level', CASE WHEN days > 14 THEN 'high' ELSE 'normal' END,
		'communication_channel', CASE level WHEN 'high' THEN 'phone' ELSE 'email' END,
		'client_profile', format('%s, %s engagement', v->>'client_id', level));
END
$$;

-- determine_followup_strategy (followup-strategy)
CREATE FUNCTION seed_chains.followup_strategy(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	level	text := arg->'variables'->>'engagement_level';
BEGIN
	PERFORM seed_chains.gate('followup-strategy', arg);
	RETURN jsonb_build_object(
		'message_type', CASE level WHEN 'high' THEN 'personal' WHEN 'medium' THEN 'informational' ELSE 'promotional' END,
		'message_tone', CASE level WHEN 'high' THEN 'enthusiastic' ELSE 'professional' END,
		'content_focus', CASE level WHEN 'high' THEN 'experiences' ELSE 'value' END,
		'cta_strength', CASE level WHEN 'high' THEN 'strong' ELSE 'soft' END,
		'followup_timeline', CASE level WHEN 'high' THEN '2 days' WHEN 'medium' THEN '4 days' ELSE '7 days' END,
		'strategy_rationale', format('%s engagement', level));
END
$$;

-- schedule_message_delivery (communication-scheduling): one delivery.
CREATE FUNCTION seed_chains.schedule_delivery(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v		jsonb := arg->'variables';
	exec	uuid := (arg->>'execution_id')::uuid;
	d		seed_chains.deliveries;
BEGIN
	PERFORM seed_chains.gate('communication-scheduling', arg);
	INSERT INTO seed_chains.deliveries (delivery_id, execution_id, channel, subject, send_at)
	VALUES ('DLV-' || substr(md5(exec::text), 1, 8), exec, v->>'communication_channel', v->>'subject_line',
			date_trunc('hour', now()) + CASE v->>'urgency_level' WHEN 'high' THEN interval '1 hour' ELSE interval '1 day' END)
	RETURNING * INTO d;
	RETURN jsonb_build_object('scheduled_delivery_time', d.send_at, 'delivery_id', d.delivery_id,
							  'tracking_enabled', true);
END
$$;

------------------------------------------------------------------------------
-- Registration, in the session's organization
------------------------------------------------------------------------------
SELECT chainexec.chain_register_handler('mobile-mode', 'seed_chains.extract_lead(jsonb)'),
	   chainexec.chain_register_handler('requirement-validation', 'seed_chains.validate_requirements(jsonb)'),
	   chainexec.chain_register_handler('database-operations', 'seed_chains.database_operations(jsonb)'),
	   chainexec.chain_register_handler('amadeus-research', 'seed_chains.research(jsonb)'),
	   chainexec.chain_register_handler('three-tier-pricing', 'seed_chains.pricing(jsonb)'),
	   chainexec.chain_register_handler('activity-logging', 'seed_chains.activity_logging(jsonb)'),
	   chainexec.chain_register_handler('delete_client_record', 'seed_chains.delete_client_record(jsonb)'),
	   chainexec.chain_register_handler('release_travel_holds', 'seed_chains.undo(jsonb)'),
	   chainexec.chain_register_handler('withdraw_proposal', 'seed_chains.undo(jsonb)'),
	   chainexec.chain_register_handler('retract_welcome_email', 'seed_chains.undo(jsonb)'),
	   chainexec.chain_register_handler('client-analysis', 'seed_chains.client_analysis(jsonb)'),
	   chainexec.chain_register_handler('followup-strategy', 'seed_chains.followup_strategy(jsonb)'),
	   chainexec.chain_register_handler('communication-scheduling', 'seed_chains.schedule_delivery(jsonb)') \gset

-- Templates.  With several outputVariables a template renders a JSON
-- object whose keys become the variables; with one, the text is its value.
SELECT chainexec.chain_register_template('manual-research-required',
	$t$MANUAL RESEARCH for {destination}: {complete_requirements}$t$),
	   chainexec.chain_register_template('standard-pricing-calculator',
	$t${{"classic_price": "standard classic rate for {traveler_count} travellers", "premium_price": "standard premium rate for {traveler_count} travellers", "luxury_price": "standard luxury rate for {traveler_count} travellers"}}$t$),
	   chainexec.chain_register_template('three-tier-proposal',
	$t${{"proposal_document": "PROPOSAL for {client_name}: {destination}, {travel_dates}, {traveler_count} travellers. Classic {classic_price}, Premium {premium_price}, Luxury {luxury_price}. {flight_options}; {hotel_options}; {activity_options}. {tier_inclusions}", "proposal_summary": "{destination} from {classic_price}"}}$t$),
	   chainexec.chain_register_template('basic-proposal-template',
	$t$BASIC PROPOSAL for {client_name}: {destination}, budget {budget_range}. An agent will call you to complete the details.$t$),
	   chainexec.chain_register_template('client-welcome-email',
	$t${{"welcome_email_subject": "Welcome, {client_name}", "welcome_email_content": "Dear {client_name}, {agent_name} will plan your {destination} trip ({travel_dates}, {traveler_count} travellers). Your session: {session_id}."}}$t$),
	   chainexec.chain_register_template('standard-engagement-rules',
	$t${{"engagement_level": "{last_interaction_type == 'phone_call' ? 'high' : (days_since_proposal > 21 ? 'none' : 'low')}", "followup_approach": "standard rules"}}$t$),
	   chainexec.chain_register_template('followup-email',
	$t${{"subject_line": "{client_name}, your {trip_details}", "message_content": "Dear {client_name}, a {message_type} note in a {message_tone} tone about {content_focus}: {proposal_details}.", "personalization_elements": "{preferences}", "expected_response": "{cta_strength == 'strong' ? 'call booked' : 'reply'}"}}$t$),
	   chainexec.chain_register_template('standard-followup-template',
	$t${{"subject_line": "Your trip, {client_name}", "message_content": "Dear {client_name}, any questions about {trip_details}?"}}$t$) \gset
