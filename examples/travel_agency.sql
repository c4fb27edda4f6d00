--
-- examples/travel_agency.sql
--	  A travel agency's lead processing, as a chain: "travel-lead-processing".
--	  A lead arrives as a raw WhatsApp-style message; the chain extracts the
--	  lead's data, validates it, creates the client record, researches
--	  packages (a live supplier API, with a fallback to the agency's own
--	  catalogue), prices three tiers, builds the proposal and a welcome
--	  email in parallel, saves the proposal and schedules the follow-ups.
--	  Handlers are PL/pgSQL functions; the agency's tables live in schema
--	  "travel".  Running this file again drops and recreates the schema (and
--	  publishes a new chain version only when the definition changed).
--
--	  psql -f examples/travel_agency.sql
--	  SELECT chainexec.chain_execute('travel-lead-processing', jsonb_build_object(
--		'raw_lead_message', 'Hi! I''m Mariana Costa. Thinking of taking my family '
--		  '(2 adults + 2 kids) to Lisbon in July for 10 days, budget around 6,500 EUR. '
--		  'Email mariana.costa@example.com, cell +55 11 98765-4321'));
--	  -- then: chainexec_watch <execution id>, and chainexec.chain_result(<id>)
--
--	  Input: raw_lead_message (the message as received), source (whatsapp,
--	  instagram, website, phone; default whatsapp), agent (who follows up).
--
--	  The steps (a "*" marks what the step shows of chainexec):
--	   1 extract_lead_data     function  name, email, phone, destination, month,
--	                                     nights, party and budget from the text
--	   2 validate_lead         function  * fails the execution when the lead has
--	                                     no email and no phone; scores the lead
--	   3 create_client_record  sql       * upsert the client and record the lead
--	                                     in one statement; rollbackAction
--	                                     deletes a client it created
--	   4 research_options      function  * parallelExecution with step 3; the live
--	                                     supplier API is down (travel.settings):
--	                                     api_timeout, retried twice (retryConfig),
--	                                     then onFailure "fallback":
--	  41 research_from_catalog sql       the agency's catalogue (travel.packages)
--	   5 price_three_tiers     function  economy / comfort / premium totals and
--	                                     the tier that fits the budget (no
--	                                     inputVariables: it gets the whole context)
--	   6 build_proposal        template  * registered template, parallel with 7
--	   7 welcome_email         template  * inline template, parallel with 6;
--	                                     conditionalExecution: only with an email
--	   8 save_proposal         sql       rollbackAction deletes it
--	   9 schedule_follow_ups   sql       WhatsApp after 1 day, email after 3,
--	                                     a call after 7; rollbackAction
--	  successConditions: a client, a proposal and three follow-ups.  When they
--	  fail, rollbackEnabled runs the rollbackActions in reverse order.
--
--	  To see the live supplier answer instead of the fallback:
--	  UPDATE travel.settings SET supplier_api_up = true;
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS chainexec;
DROP SCHEMA IF EXISTS travel CASCADE;
CREATE SCHEMA travel;

/* ------------------------------------------------------------------------
 * The agency's tables
 * ------------------------------------------------------------------------ */

CREATE TABLE travel.settings (
	only_row		boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	supplier_api_up	boolean NOT NULL DEFAULT false,	/* the live supplier API answers */
	agency_fee		numeric NOT NULL DEFAULT 0.12		/* on top of the package price */
);
INSERT INTO travel.settings DEFAULT VALUES;

CREATE TABLE travel.destinations (
	name		text PRIMARY KEY,
	country		text NOT NULL,
	aliases		text[] NOT NULL DEFAULT '{}'
);
INSERT INTO travel.destinations VALUES
	('Lisbon', 'Portugal', '{lisboa,lisbonne}'),
	('Porto', 'Portugal', '{oporto}'),
	('Paris', 'France', '{}'),
	('Rome', 'Italy', '{roma}'),
	('Cancun', 'Mexico', '{cancún}'),
	('Orlando', 'United States', '{disney}');

/* Packages: per_night_eur is per room (up to four people); flight_eur per seat. */
CREATE TABLE travel.packages (
	code			text PRIMARY KEY,
	destination		text NOT NULL REFERENCES travel.destinations,
	hotel			text NOT NULL,
	stars			int NOT NULL CHECK (stars BETWEEN 1 AND 5),
	per_night_eur	numeric NOT NULL,
	flight			text NOT NULL,
	flight_eur		numeric NOT NULL
);
INSERT INTO travel.packages VALUES
	('LIS-ECO', 'Lisbon', 'Casa da Mouraria guesthouse', 3, 95, 'TAP economy via GRU', 640),
	('LIS-CMF', 'Lisbon', 'Hotel Avenida Palace', 4, 180, 'TAP economy, extra legroom', 720),
	('LIS-PRM', 'Lisbon', 'Pestana Palace', 5, 390, 'TAP executive', 1650),
	('OPO-ECO', 'Porto', 'Ribeira Guest House', 3, 85, 'TAP economy', 610),
	('OPO-PRM', 'Porto', 'The Yeatman', 5, 420, 'TAP executive', 1600),
	('PAR-ECO', 'Paris', 'Hotel du Marais', 3, 150, 'Air France economy', 690),
	('PAR-CMF', 'Paris', 'Le Pavillon de la Reine', 4, 320, 'Air France premium economy', 1100),
	('PAR-PRM', 'Paris', 'Le Meurice', 5, 950, 'Air France business', 2900),
	('ROM-ECO', 'Rome', 'Trastevere Rooms', 3, 110, 'ITA economy', 700),
	('ROM-CMF', 'Rome', 'Hotel Artemide', 4, 210, 'ITA economy', 760),
	('CUN-ECO', 'Cancun', 'Ibis Cancun Centro', 3, 70, 'Aeromexico economy', 520),
	('CUN-PRM', 'Cancun', 'Nizuc Resort', 5, 680, 'Aeromexico business', 1900),
	('ORL-CMF', 'Orlando', 'Disney''s Art of Animation', 3, 160, 'LATAM economy', 580);

CREATE TABLE travel.clients (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name		text,
	email		text UNIQUE,
	phone		text,
	source		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE travel.leads (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	client_id	bigint NOT NULL REFERENCES travel.clients ON DELETE CASCADE,
	raw_message	text NOT NULL,
	destination	text REFERENCES travel.destinations,
	travel_month text,
	nights		int,
	adults		int,
	children	int,
	budget		numeric,
	currency	text,
	score		int,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE travel.proposals (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	lead_id		bigint NOT NULL REFERENCES travel.leads ON DELETE CASCADE,
	client_id	bigint NOT NULL REFERENCES travel.clients ON DELETE CASCADE,
	recommended_tier text NOT NULL,
	tiers		jsonb NOT NULL,
	proposal_text text NOT NULL,
	welcome_email text,
	created_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE travel.follow_ups (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	proposal_id	bigint NOT NULL REFERENCES travel.proposals ON DELETE CASCADE,
	client_id	bigint NOT NULL REFERENCES travel.clients ON DELETE CASCADE,
	due_at		timestamptz NOT NULL,
	channel		text NOT NULL CHECK (channel IN ('whatsapp', 'email', 'call')),
	agent		text NOT NULL,
	note		text NOT NULL
);

/* Work takes a moment in real life: the demo shows it live. */
CREATE FUNCTION travel.simulated_latency(seconds float8 DEFAULT 0.3)
RETURNS void
LANGUAGE sql
AS $$ SELECT pg_sleep(seconds) $$;

/* ------------------------------------------------------------------------
 * Handlers: FUNCTION name(jsonb) RETURNS jsonb.  They receive
 * {"input", "variables", "step": {"id", "name", "attempt"}, "execution_id",
 * "chain_id"} and return the variables they set.
 * ------------------------------------------------------------------------ */

/*
 * Step 1: read the lead's data out of a free-form message.  What it cannot
 * find is null; step 2 decides whether that is enough.
 */
CREATE FUNCTION travel.extract_lead(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	msg text := arg->'variables'->>'raw_lead_message';
	low text := lower(msg);
	m text[];
	name text;
	email text;
	phone text;
	dest text;
	month text;
	nights int;
	adults int;
	children int;
	budget numeric;
	currency text;
BEGIN
	PERFORM travel.simulated_latency(0.4);

	m := regexp_match(msg, '(?:[Ii]''m|[Ii] am|[Mm]y name is|[Tt]his is|[Ss]ou (?:a |o )?)\s+([A-ZÀ-Ý][a-zà-ÿ]+(?:\s+[A-ZÀ-Ý][a-zà-ÿ]+){0,2})');
	name := m[1];
	email := lower((regexp_match(msg, '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}'))[1]);
	phone := regexp_replace((regexp_match(msg, '\+?[0-9][0-9 ()-]{7,}[0-9]'))[1], '[^0-9+]', '', 'g');

	SELECT d.name INTO dest
	  FROM travel.destinations d
	 WHERE low ~ ('\m' || lower(d.name) || '\M')
		OR EXISTS (SELECT FROM unnest(d.aliases) a WHERE low ~ ('\m' || a || '\M'))
	 ORDER BY position(lower(d.name) IN low)
	 LIMIT 1;

	SELECT initcap(mo) INTO month
	  FROM unnest(ARRAY['january', 'february', 'march', 'april', 'may', 'june', 'july',
						'august', 'september', 'october', 'november', 'december']) mo
	 WHERE low ~ ('\m' || mo || '\M')
	 LIMIT 1;

	m := regexp_match(low, '(\d+)\s*(nights?|days?)');
	IF m IS NOT NULL THEN
		nights := CASE WHEN m[2] LIKE 'day%' THEN greatest(m[1]::int - 1, 1) ELSE m[1]::int END;
	END IF;
	m := regexp_match(low, '(\d+)\s*(adults?|grown-ups?)');
	adults := coalesce(m[1]::int, CASE WHEN low ~ '\m(family|wife|husband|partner|couple)\M' THEN 2 ELSE 1 END);
	m := regexp_match(low, '(\d+)\s*(kids?|children|child)');
	children := coalesce(m[1]::int, 0);

	m := regexp_match(low, '(\d{1,3}(?:[.,]\d{3})+|\d+)\s*(k)?\s*(eur|euros?|€|usd|dollars?|brl|reais)');
	IF m IS NOT NULL THEN
		budget := regexp_replace(m[1], '[.,]', '', 'g')::numeric * CASE WHEN m[2] = 'k' THEN 1000 ELSE 1 END;
		currency := CASE WHEN m[3] IN ('usd', 'dollar', 'dollars') THEN 'USD'
						 WHEN m[3] IN ('brl', 'reais') THEN 'BRL'
						 ELSE 'EUR' END;
	END IF;

	RETURN jsonb_build_object(
		'client_name', name, 'email', email, 'phone', phone, 'destination', dest,
		'travel_month', month, 'nights', coalesce(nights, 7), 'adults', adults,
		'children', children, 'budget', budget, 'currency', coalesce(currency, 'EUR'));
END
$$;

/*
 * Step 2: a lead needs a way to reach the client and a destination we
 * sell; the score tells the agents how complete it is.
 */
CREATE FUNCTION travel.validate_lead(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v jsonb := arg->'variables';
	missing text[] := '{}';
	score int := 0;
BEGIN
	PERFORM travel.simulated_latency(0.2);
	IF v->>'email' IS NULL AND v->>'phone' IS NULL THEN
		PERFORM chainexec.raise_failure('validation_failed', 'the lead has no email address and no phone number');
	END IF;
	IF v->>'destination' IS NULL THEN
		PERFORM chainexec.raise_failure('insufficient_data', 'the message names no destination the agency sells');
	END IF;
	score := 20
		+ CASE WHEN v->>'client_name' IS NOT NULL THEN 15 ELSE 0 END
		+ CASE WHEN v->>'email' IS NOT NULL THEN 15 ELSE 0 END
		+ CASE WHEN v->>'phone' IS NOT NULL THEN 10 ELSE 0 END
		+ CASE WHEN v->>'travel_month' IS NOT NULL THEN 15 ELSE 0 END
		+ CASE WHEN v->>'budget' IS NOT NULL THEN 15 ELSE 0 END
		+ CASE WHEN (v->>'adults')::int + (v->>'children')::int > 1 THEN 10 ELSE 0 END;
	IF v->>'client_name' IS NULL THEN missing := missing || 'name'::text; END IF;
	IF v->>'email' IS NULL THEN missing := missing || 'email'::text; END IF;
	IF v->>'phone' IS NULL THEN missing := missing || 'phone'::text; END IF;
	IF v->>'travel_month' IS NULL THEN missing := missing || 'travel month'::text; END IF;
	IF v->>'budget' IS NULL THEN missing := missing || 'budget'::text; END IF;
	RETURN jsonb_build_object(
		'lead_score', score,
		'lead_quality', CASE WHEN score >= 80 THEN 'hot' WHEN score >= 50 THEN 'warm' ELSE 'cold' END,
		'missing_fields', to_jsonb(missing));
END
$$;

/*
 * Step 4: the live supplier API.  While travel.settings says it is down it
 * times out (api_timeout, which the step's retryConfig retries); after the
 * retries the step's fallback reads the agency's catalogue instead.
 */
CREATE FUNCTION travel.research_options(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v jsonb := arg->'variables';
	attempt int := (arg->'step'->>'attempt')::int;
	opts jsonb;
BEGIN
	PERFORM travel.simulated_latency(0.3);
	IF NOT (SELECT supplier_api_up FROM travel.settings) THEN
		PERFORM chainexec.raise_failure('api_timeout',
			format('the supplier API did not answer within 2 s (attempt %s)', attempt));
	END IF;
	SELECT jsonb_agg(jsonb_build_object('package', p.code, 'hotel', p.hotel, 'stars', p.stars,
										'per_night', round(p.per_night_eur * 0.95, 2), 'flight', p.flight,
										'flight_per_person', round(p.flight_eur * 0.95, 2))
					 ORDER BY p.per_night_eur)
	  INTO opts
	  FROM travel.packages p
	 WHERE p.destination = v->>'destination';
	RETURN jsonb_build_object('options', opts, 'research_source', 'supplier API (live rates)');
END
$$;

/*
 * Step 5: three tiers from the options (cheapest, middle, dearest): rooms
 * for the party (four per room), flights (children at 75%), the agency's
 * fee; recommends the dearest tier within the budget.
 */
CREATE FUNCTION travel.price_tiers(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v jsonb := arg->'variables';
	opts jsonb := v->'options';
	n int := jsonb_array_length(v->'options');
	nights int := (v->>'nights')::int;
	adults int := (v->>'adults')::int;
	children int := (v->>'children')::int;
	rooms int := ceil((adults + children) / 4.0);
	fee numeric := (SELECT agency_fee FROM travel.settings);
	budget numeric := (v->>'budget')::numeric;
	tiers jsonb := '{}';
	tier text;
	o jsonb;
	total numeric;
	recommended text := 'economy';
	idx int;
BEGIN
	PERFORM travel.simulated_latency(0.3);
	IF n IS NULL OR n = 0 THEN
		PERFORM chainexec.raise_failure('insufficient_data', 'no package to price');
	END IF;
	FOREACH tier IN ARRAY ARRAY['economy', 'comfort', 'premium'] LOOP
		idx := CASE tier WHEN 'economy' THEN 0 WHEN 'comfort' THEN n / 2 ELSE n - 1 END;
		o := opts->idx;
		total := round(((o->>'per_night')::numeric * nights * rooms
						+ (o->>'flight_per_person')::numeric * (adults + children * 0.75)) * (1 + fee), 0);
		tiers := tiers || jsonb_build_object(tier, o || jsonb_build_object('total', total));
		IF budget IS NOT NULL AND total <= budget THEN
			recommended := tier;
		END IF;
	END LOOP;
	RETURN jsonb_build_object(
		'tiers', tiers,
		'price_economy', tiers->'economy'->'total',
		'price_comfort', tiers->'comfort'->'total',
		'price_premium', tiers->'premium'->'total',
		'recommended_tier', recommended,
		'within_budget', budget IS NULL OR (tiers->recommended->>'total')::numeric <= budget);
END
$$;

DO $$
BEGIN
	PERFORM chainexec.chain_register_handler('travel.extract_lead', 'travel.extract_lead(jsonb)');
	PERFORM chainexec.chain_register_handler('travel.validate_lead', 'travel.validate_lead(jsonb)');
	PERFORM chainexec.chain_register_handler('travel.research_options', 'travel.research_options(jsonb)');
	PERFORM chainexec.chain_register_handler('travel.price_tiers', 'travel.price_tiers(jsonb)');
END
$$;

/* Step 6's template, registered once and shared by every chain that wants it. */
DO $do$
BEGIN
	PERFORM chainexec.chain_register_template('travel-proposal', $tpl$PROPOSAL {destination} - {travel_month|'dates to agree'}, {nights} nights
Prepared for {client_name|'our future traveller'} ({adults} adults, {children} children)

  Economy  {tiers.economy.hotel} ({tiers.economy.stars} stars), {tiers.economy.flight}: EUR {price_economy}
  Comfort  {tiers.comfort.hotel} ({tiers.comfort.stars} stars), {tiers.comfort.flight}: EUR {price_comfort}
  Premium  {tiers.premium.hotel} ({tiers.premium.stars} stars), {tiers.premium.flight}: EUR {price_premium}

Our recommendation: {recommended_tier}{within_budget ? ', within your budget.' : ' (the closest to your budget).'}
Prices include flights, accommodation and our service fee; rates from the {research_source}.$tpl$);
END
$do$;

/* ------------------------------------------------------------------------
 * The chain
 * ------------------------------------------------------------------------ */

CREATE FUNCTION travel.definition()
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $chain$
SELECT $${
  "id": "travel-lead-processing",
  "name": "Travel agency: lead processing",
  "description": "From a raw WhatsApp message to a priced proposal, a welcome email and scheduled follow-ups.",
  "version": "1.0",
  "category": "sales",
  "inputSchema": {
    "type": "object",
    "required": ["raw_lead_message"],
    "properties": {
      "raw_lead_message": {"type": "string", "minLength": 10, "maxLength": 4000},
      "source": {"type": "string", "enum": ["whatsapp", "instagram", "website", "phone"], "default": "whatsapp"},
      "agent": {"type": "string", "minLength": 1, "default": "Sofia (Lisbon desk)"}
    }
  },
  "outputSchema": {
    "type": "object",
    "properties": {
      "client_id": {"type": "integer"}, "client_name": {"type": "string"},
      "destination": {"type": "string"}, "lead_score": {"type": "integer"},
      "lead_quality": {"type": "string"}, "research_source": {"type": "string"},
      "price_economy": {"type": "number"}, "price_comfort": {"type": "number"},
      "price_premium": {"type": "number"}, "recommended_tier": {"type": "string"},
      "proposal_id": {"type": "integer"}, "follow_ups_scheduled": {"type": "integer"},
      "next_follow_up": {"type": "string"}
    }
  },
  "rollbackEnabled": true,
  "maxExecutionTime": 120000,
  "parallelStepsEnabled": true,
  "maxConcurrency": 2,
  "notify": "steps",
  "performanceTargets": {"p95DurationMs": 10000},
  "successConditions": ["client_id != null", "proposal_id != null", "follow_ups_scheduled >= 3"],
  "steps": [
    {"id": 1, "name": "extract_lead_data", "type": "function", "instructionSet": "travel.extract_lead",
     "description": "Read name, contact, destination, dates, party and budget out of the message.",
     "inputVariables": ["raw_lead_message"],
     "outputVariables": ["client_name", "email", "phone", "destination", "travel_month", "nights",
                         "adults", "children", "budget", "currency"]},
    {"id": 2, "name": "validate_lead", "type": "function", "instructionSet": "travel.validate_lead",
     "description": "A lead needs a contact and a destination we sell; score it.",
     "outputVariables": ["lead_score", "lead_quality", "missing_fields"]},
    {"id": 3, "name": "create_client_record", "type": "sql",
     "description": "Upsert the client by email and record the lead, in one statement.",
     "sql": "WITH c AS (INSERT INTO travel.clients (name, email, phone, source) VALUES ({client_name}, {email}, {phone}, {source}) ON CONFLICT (email) DO UPDATE SET name = coalesce(EXCLUDED.name, clients.name), phone = coalesce(EXCLUDED.phone, clients.phone) RETURNING id, (xmax = 0) AS created) INSERT INTO travel.leads (client_id, raw_message, destination, travel_month, nights, adults, children, budget, currency, score) SELECT c.id, {raw_lead_message}, {destination}, {travel_month}, {nights}::int, {adults}::int, {children}::int, {budget}::numeric, {currency}, {lead_score}::int FROM c RETURNING client_id, id AS lead_id, (SELECT created FROM c) AS client_created",
     "inputVariables": ["raw_lead_message", "destination", "lead_score"],
     "outputVariables": ["client_id", "lead_id", "client_created"],
     "retryConfig": {"maxRetries": 3, "backoffStrategy": "exponential", "baseDelayMs": 200, "maxDelayMs": 2000,
                     "jitter": true, "retryOnErrors": ["database_busy"]},
     "rollbackAction": "DELETE FROM travel.clients WHERE id = {client_id}::bigint AND {client_created}::boolean"},
    {"id": 4, "name": "research_options", "type": "function", "instructionSet": "travel.research_options",
     "description": "Ask the supplier API for live rates; fall back to the agency's catalogue.",
     "dependsOn": [2], "parallelExecution": true,
     "inputVariables": ["destination", "nights"],
     "outputVariables": ["options", "research_source"],
     "timeoutMs": 5000,
     "retryConfig": {"maxRetries": 2, "backoffStrategy": "exponential", "baseDelayMs": 300, "maxDelayMs": 2000,
                     "retryOnErrors": ["api_timeout", "api_rate_limit"]},
     "onFailure": "fallback",
     "fallbackStep": {"id": 41, "name": "research_from_catalog", "type": "sql",
                      "sql": "SELECT jsonb_agg(jsonb_build_object('package', p.code, 'hotel', p.hotel, 'stars', p.stars, 'per_night', p.per_night_eur, 'flight', p.flight, 'flight_per_person', p.flight_eur) ORDER BY p.per_night_eur) AS options, 'agency catalogue' AS research_source FROM travel.packages p WHERE p.destination = {destination}",
                      "outputVariables": ["options", "research_source"]}},
    {"id": 5, "name": "price_three_tiers", "type": "function", "instructionSet": "travel.price_tiers",
     "description": "Economy, comfort and premium totals for the party; the tier that fits the budget.",
     "dependsOn": [4],
     "outputVariables": ["tiers", "price_economy", "price_comfort", "price_premium", "recommended_tier", "within_budget"]},
    {"id": 6, "name": "build_proposal", "type": "template", "templateId": "travel-proposal",
     "description": "The proposal text, from the registered template.",
     "dependsOn": [5], "parallelExecution": true,
     "inputVariables": ["tiers", "recommended_tier"],
     "outputVariables": ["proposal_text"]},
    {"id": 7, "name": "welcome_email", "type": "template",
     "description": "Welcome the client while the proposal is built; only when there is an email address.",
     "dependsOn": [3, 5], "parallelExecution": true,
     "conditionalExecution": "{email} != null",
     "template": "To: {email}\nSubject: Your trip to {destination}, {client_name|'dear traveller'}\n\nDear {client_name|'traveller'},\n\nthank you for thinking of us for {destination}! {agent} is putting the last touches to your proposal for {nights} nights{travel_month ? ' in ' : ''}{travel_month|''}; from EUR {price_economy} for the whole party, flights included. {lead_quality == 'hot' ? 'We will send it over today.' : 'We will be in touch shortly.'}\n\nAtlantico Travel",
     "inputVariables": ["destination", "price_economy"],
     "outputVariables": ["welcome_email"]},
    {"id": 8, "name": "save_proposal", "type": "sql",
     "description": "Keep the proposal with the lead.",
     "dependsOn": [6, 7],
     "sql": "INSERT INTO travel.proposals (lead_id, client_id, recommended_tier, tiers, proposal_text, welcome_email) VALUES ({lead_id}::bigint, {client_id}::bigint, {recommended_tier}, {tiers}::jsonb, {proposal_text}, {welcome_email|null}) RETURNING id AS proposal_id",
     "inputVariables": ["lead_id", "client_id", "proposal_text"],
     "outputVariables": ["proposal_id"],
     "rollbackAction": "DELETE FROM travel.proposals WHERE id = {proposal_id}::bigint"},
    {"id": 9, "name": "schedule_follow_ups", "type": "sql",
     "description": "WhatsApp after a day, an email after three, a call after a week.",
     "sql": "WITH f AS (INSERT INTO travel.follow_ups (proposal_id, client_id, due_at, channel, agent, note) SELECT {proposal_id}::bigint, {client_id}::bigint, now() + d.after, d.channel, {agent}, d.note FROM (VALUES (interval '1 day', 'whatsapp', 'Did the proposal arrive? Any questions?'), (interval '3 days', 'email', 'Send the comfort tier details and the payment options.'), (interval '7 days', 'call', 'Call to close or to adjust the trip.')) AS d(after, channel, note) RETURNING due_at) SELECT count(*)::int AS follow_ups_scheduled, min(due_at) AS next_follow_up FROM f",
     "inputVariables": ["proposal_id", "client_id"],
     "outputVariables": ["follow_ups_scheduled", "next_follow_up"],
     "rollbackAction": "DELETE FROM travel.follow_ups WHERE proposal_id = {proposal_id}::bigint"}
  ]
}$$::jsonb
$chain$;

/* Define and publish the chain unless its active version is this one. */
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM chainexec.chains
					WHERE organization_id = chainexec.current_organization()
					  AND chain_id = 'travel-lead-processing' AND status = 'active'
					  AND definition = travel.definition()) THEN
		PERFORM chainexec.chain_define(travel.definition(), true);
	END IF;
END
$$;
RESET client_min_messages;
