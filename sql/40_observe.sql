--
-- 40_observe: the shape of a chain and the numbers of operations.
--   * chain_explain and chain_graph on the design documents' lead chain
--     (../shared/seed-chains/mobile-lead-processing.json, unchanged):
--     stages (parallel groups), direct dependencies, the routing condition
--     and its skip target, retries, fallbacks, the compensation, the
--     critical path without history and with a known history (an
--     execution written here with fixed times), the graph of the chain and
--     of that execution in Mermaid and DOT;
--   * clear errors: unknown chain or version (42704), bad format or
--     version (22023);
--   * chainexec.stats counts ready, delayed, running, waiting (timers and
--     external steps), due timers and recent transitions and failures.
-- Tenancy (LOGIN-only roles) is tested in test/security/observe.sh, the
-- workers' side in test/integration/observe.sh.
--
SET chainexec.organization_id = '40000000-0000-0000-0000-000000000040';
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

\set lead `cat ../shared/seed-chains/mobile-lead-processing.json`
SELECT chainexec.chain_define(:'lead'::jsonb, true) AS version;

\pset format unaligned
\pset tuples_only on
-- No history yet: the critical path is the longest in steps.
SELECT chainexec.chain_explain('mobile-lead-processing');
SELECT chainexec.chain_explain('mobile-lead-processing', 1) = chainexec.chain_explain('mobile-lead-processing');
SELECT chainexec.chain_graph('mobile-lead-processing');
\pset tuples_only off
\pset format aligned

-- An execution with fixed times: step 3 is slow, step 4 failed three
-- times and its fallback stood for it, step 7 was skipped.
INSERT INTO chainexec.universal_transactions
	(organization_id, id, chain_id, chain_version, status, owner, smart_code, created_at, started_at, finished_at)
VALUES ('40000000-0000-0000-0000-000000000040', '40404040-0000-0000-0000-000000000001',
		'mobile-lead-processing', 1, 'completed', current_user::regrole, 'TEST',
		'2026-01-01 10:00:00+00', '2026-01-01 10:00:00+00', '2026-01-01 10:00:07+00');
INSERT INTO chainexec.universal_transaction_lines
	(organization_id, transaction_id, line_number, line_type, step_id, step_name, status, attempt,
	 first_started_at, started_at, finished_at, smart_code)
SELECT '40000000-0000-0000-0000-000000000040', '40404040-0000-0000-0000-000000000001', n, kind, id, name, status, attempts,
	   timestamptz '2026-01-01 10:00:00+00',
	   CASE WHEN ms IS NOT NULL THEN timestamptz '2026-01-01 10:00:00+00' END,
	   timestamptz '2026-01-01 10:00:00+00' + ms * interval '1 millisecond', 'TEST'
  FROM (VALUES (1, 'step', 1, 'extract_lead_data', 'completed', 1, 100),
			   (2, 'step', 2, 'validate_requirements', 'completed', 1, 100),
			   (3, 'step', 3, 'create_client_record', 'completed', 1, 5000),
			   (4, 'step', 4, 'research_travel_options', 'failed', 3, 1200),
			   (5, 'step', 5, 'calculate_pricing_tiers', 'completed', 1, 300),
			   (6, 'step', 6, 'generate_proposal_document', 'completed', 1, 400),
			   (7, 'step', 7, 'generate_welcome_email', 'skipped', 0, NULL),
			   (8, 'step', 8, 'schedule_followup_activities', 'completed', 1, 100),
			   (9, 'fallback', 41, 'manual_research_note', 'completed', 1, 300))
	   AS l(n, kind, id, name, status, attempts, ms);

\pset format unaligned
\pset tuples_only on
-- History: the averages of completed lines; the slow step 3 now leads the
-- critical path (1 -> 2 -> 3 -> 6, 5.6 s); steps 4 and 7 have none.
SELECT chainexec.chain_explain('mobile-lead-processing');
SELECT chainexec.chain_graph('40404040-0000-0000-0000-000000000001', 'dot');
SELECT chainexec.chain_graph('40404040-0000-0000-0000-000000000001', 'mermaid');
\pset tuples_only off
\pset format aligned

-- The DOT of the chain: one node per step and fallback, an edge per
-- direct dependency, three fallback edges, one skip edge.
SELECT count(*) FILTER (WHERE l ~ '^  s[0-9]+ \[label=') AS nodes,
	   count(*) FILTER (WHERE l ~ '^  s[0-9]+ -> s[0-9]+;$' OR l ~ '^  s[0-9]+ -> s[0-9]+ \[penwidth') AS dependencies,
	   count(*) FILTER (WHERE l ~ 'label="on failure"') AS fallbacks,
	   count(*) FILTER (WHERE l ~ 'label="skip_to_step_6"') AS skips,
	   count(*) FILTER (WHERE l ~ 'penwidth=2\.5') AS critical_edges
  FROM regexp_split_to_table(chainexec.chain_graph('mobile-lead-processing', 'DOT'), E'\n') AS l;

-- Errors
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_explain('no-such-chain')$$);
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_explain('mobile-lead-processing', 2)$$);
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_explain('mobile-lead-processing', 0)$$);
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_explain(NULL)$$);
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_graph('mobile-lead-processing', 'png')$$);
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_graph('no-such-chain')$$);
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_graph('40404040-0000-0000-0000-0000000000ff')$$);
\set VERBOSITY default
SELECT chainexec.chain_graph('mobile-lead-processing', 'svg');
SELECT chainexec.chain_explain('no-such-chain');
-- another organization sees neither the chain nor the execution
SET chainexec.organization_id = '40000000-0000-0000-0000-000000000041';
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_explain('mobile-lead-processing')$$);
SELECT pg_temp.sqlstate_of($$SELECT chainexec.chain_graph('mobile-lead-processing')$$);
SET chainexec.organization_id = '40000000-0000-0000-0000-000000000040';

-- chainexec.stats: a chain with a timer and an external step, and an
-- active execution whose lines are in every state.
SELECT chainexec.chain_define('{"id": "observe-kinds", "steps": [
	{"id": 1, "name": "pause", "type": "wait", "waitMs": 60000},
	{"id": 2, "name": "approve", "type": "external", "parallelExecution": true},
	{"id": 3, "name": "a", "type": "sql", "sql": "SELECT 1", "parallelExecution": true},
	{"id": 4, "name": "b", "type": "sql", "sql": "SELECT 1", "parallelExecution": true},
	{"id": 5, "name": "c", "type": "sql", "sql": "SELECT 1", "parallelExecution": true},
	{"id": 6, "name": "d", "type": "sql", "sql": "SELECT 1", "parallelExecution": true},
	{"id": 7, "name": "e", "type": "sql", "sql": "SELECT 1", "parallelExecution": true},
	{"id": 8, "name": "f", "type": "sql", "sql": "SELECT 1", "parallelExecution": true}]}', true) AS version;
INSERT INTO chainexec.universal_transactions
	(organization_id, id, chain_id, chain_version, status, owner, smart_code)
VALUES ('40000000-0000-0000-0000-000000000040', '40404040-0000-0000-0000-000000000002',
		'observe-kinds', 1, 'running', current_user::regrole, 'TEST');
INSERT INTO chainexec.universal_transaction_lines
	(organization_id, transaction_id, line_number, line_type, step_id, step_name, status, attempt,
	 not_before, started_at, finished_at, error, smart_code)
SELECT '40000000-0000-0000-0000-000000000040', '40404040-0000-0000-0000-000000000002', id, 'step', id, name, status, 1,
	   coalesce(now() + due * interval '1 second', 'infinity'),
	   CASE WHEN status IN ('running', 'completed', 'failed') OR error THEN now() END,
	   CASE WHEN status IN ('completed', 'failed') THEN now() END,
	   CASE WHEN error OR status = 'failed' THEN '{"failure_type": "system_error"}'::jsonb END, 'TEST'
  FROM (VALUES (1, 'pause', 'waiting', -5, false),			-- a due timer
			   (2, 'approve', 'waiting', NULL, false),	-- waits for a person
			   (3, 'a', 'ready', -30, false),			-- ready for 30 s
			   (4, 'b', 'ready', -2, false),
			   (5, 'c', 'ready', 20, true),				-- failed, retried in 20 s
			   (6, 'd', 'pending', 0, false),			-- waits for another step
			   (7, 'e', 'completed', 0, false),
			   (8, 'f', 'failed', 0, false))
	   AS l(id, name, status, due, error);

SELECT database = current_database() AS this_database, executions_active, lines_ready, lines_delayed,
	   lines_running, lines_waiting_external, lines_waiting_timer, timers_due,
	   oldest_ready_age_s BETWEEN 29 AND 120 AS oldest_ready_30s,
	   round(transitions_per_s * 60) AS ended_last_minute, round(failures_per_s * 60) AS failed_last_minute,
	   executors_busy, sessions_busy, executors >= 0 AS executors_known
  FROM chainexec.stats WHERE organization_id = '40000000-0000-0000-0000-000000000040';
SELECT round(transitions_per_s * 3600) AS ended_last_hour
  FROM chainexec.chain_stats(3600) WHERE organization_id = '40000000-0000-0000-0000-000000000040';
SELECT pg_temp.sqlstate_of($$SELECT * FROM chainexec.chain_stats(0)$$);
-- the session's organization always has a row
SET chainexec.organization_id = '40000000-0000-0000-0000-000000000042';
SELECT organization_id, executions_active, lines_ready FROM chainexec.stats
 WHERE organization_id = '40000000-0000-0000-0000-000000000042';

SET chainexec.internal = on;
DELETE FROM chainexec.universal_transactions WHERE organization_id = '40000000-0000-0000-0000-000000000040';
DELETE FROM chainexec.chains WHERE organization_id = '40000000-0000-0000-0000-000000000040';
RESET chainexec.internal;
RESET chainexec.organization_id;
