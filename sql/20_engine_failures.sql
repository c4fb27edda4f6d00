--
-- 20_engine_failures: failures in-session (CALL chain_run).
--   onFailure     fail, warn, skip, fallback (the fallback's own onFailure
--                 applies), and the failure types by SQLSTATE;
--   inputVariables unset or null: insufficient_data, then onFailure;
--   rollback      a failed step's SQL effects are rolled back with it;
--   retries       a handler failing twice with raise_failure('api_timeout')
--                 then succeeding completes at attempt 3; retryOnErrors by
--                 failure type or SQLSTATE; transient types by default; the
--                 maxRetries option; back-off schedules (fixed, linear,
--                 exponential, the maxDelayMs cap, jitter) computed, not
--                 slept: chain_execute (no executor serves this database)
--                 and single transitions with chainexec._run_one();
--   retry words   the design documents' "timeout" in retryOnErrors covers a
--                 step's own timeoutMs.
--
SET client_min_messages = warning;
CREATE SCHEMA eng_fail;
SET search_path = eng_fail, public;

CREATE FUNCTION pg_temp.lines(r jsonb)
RETURNS TABLE (line int, type text, step text, status text, attempt int, parent int,
			   failure text, sqlstate text, message text)
LANGUAGE sql
AS $$
	SELECT line_number, line_type, step_name, status, attempt, parent_line,
		   error->>'failure_type', error->>'sqlstate', error->>'message'
	  FROM chainexec.universal_transaction_lines
	 WHERE transaction_id = (r->>'executionId')::uuid
	 ORDER BY line_number
$$;

-- ---------------------------------------------------------------------
-- onFailure: warn, skip, fallback; every failure recorded with its type
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "eng-fail-policies",
  "steps": [
    {"id": 1, "name": "warns", "type": "sql", "sql": "SELECT 1/0 AS x", "onFailure": "warn", "outputVariables": ["x"]},
    {"id": 2, "name": "skips", "type": "sql", "sql": "SELECT no_such_column AS y", "onFailure": "skip", "outputVariables": ["y"]},
    {"id": 3, "name": "falls_back", "type": "function", "instructionSet": "eng_fail.not_registered",
     "onFailure": "fallback", "outputVariables": ["z"],
     "fallbackStep": {"id": 30, "name": "falls_back_plan_b", "type": "template", "template": "plan b for {who}", "outputVariables": ["z"]}},
    {"id": 4, "name": "falls_back_warn", "type": "sql", "sql": "SELECT 'x'::int AS w", "onFailure": "fallback",
     "outputVariables": ["w"],
     "fallbackStep": {"id": 40, "name": "plan_b_fails_too", "type": "sql", "sql": "SELECT 1/0 AS w", "onFailure": "warn", "outputVariables": ["w"]}},
    {"id": 5, "name": "needs_missing", "type": "template", "template": "{absent}", "inputVariables": ["absent"],
     "onFailure": "warn", "outputVariables": ["a"]},
    {"id": 6, "name": "needs_null", "type": "template", "template": "{nothing|'n'}", "inputVariables": ["who", "nothing"],
     "onFailure": "skip", "outputVariables": ["b"]},
    {"id": 7, "name": "after_all", "type": "template",
     "template": "x={x|'none'} y={y|'none'} z={z} w={w|'none'} a={a|'none'} b={b|'none'}",
     "outputVariables": ["summary"]}
  ]
}$$, true);

CALL chainexec.chain_run('eng-fail-policies', '{"who": "Ada", "nothing": null}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context,
	   (:'result'::jsonb->'metadata') - 'startTime' - 'endTime' - 'totalDuration' AS metadata;
SELECT * FROM pg_temp.lines(:'result');

-- onFailure fail (the default), also for a fallback: the execution fails
-- with the cause's failure type, SQLSTATE and message; the rest is cancelled.
SELECT chainexec.chain_define($${
  "id": "eng-fail-fail",
  "steps": [
    {"id": 1, "name": "first", "type": "template", "template": "ok", "outputVariables": ["first"]},
    {"id": 2, "name": "primary", "type": "sql", "sql": "SELECT * FROM eng_fail.no_such_table",
     "onFailure": "fallback",
     "fallbackStep": {"id": 20, "name": "secondary", "type": "sql", "sql": "SELECT {qty}::int / 0 AS r"}},
    {"id": 3, "name": "third", "type": "template", "template": "never", "outputVariables": ["third"]}
  ]
}$$, true);
CALL chainexec.chain_run('eng-fail-fail', '{"qty": 3}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error' AS error;
SELECT * FROM pg_temp.lines(:'result');

-- insufficient_data under onFailure fail
SELECT chainexec.chain_define($${
  "id": "eng-fail-insufficient",
  "steps": [
    {"id": 1, "name": "needs_order", "type": "sql", "sql": "SELECT {order_id}::int AS o", "inputVariables": ["order_id"]},
    {"id": 2, "name": "later", "type": "template", "template": "never", "outputVariables": ["later"]}
  ]
}$$, true);
CALL chainexec.chain_run('eng-fail-insufficient', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error' AS error;

-- ---------------------------------------------------------------------
-- A failed step's SQL effects are rolled back with it
-- ---------------------------------------------------------------------
CREATE TABLE effects (what text);
CREATE FUNCTION h_write_then_fail(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO eng_fail.effects VALUES ('from the handler');
	PERFORM chainexec.raise_failure('ledger_closed', 'the ledger is closed');
	RETURN '{}';
END
$$;
SELECT chainexec.chain_register_handler('eng_fail.write_then_fail', 'h_write_then_fail(jsonb)');

SELECT chainexec.chain_define($${
  "id": "eng-fail-rollback",
  "steps": [
    {"id": 1, "name": "kept", "type": "sql", "sql": "INSERT INTO eng_fail.effects VALUES ('kept')"},
    {"id": 2, "name": "sql_writes_then_fails", "type": "sql", "onFailure": "warn",
     "sql": "WITH ins AS (INSERT INTO eng_fail.effects VALUES ('from the sql step') RETURNING 1) SELECT 1 / (count(*)::int - 1) AS r FROM ins"},
    {"id": 3, "name": "handler_writes_then_fails", "type": "function", "instructionSet": "eng_fail.write_then_fail",
     "onFailure": "warn"},
    {"id": 4, "name": "count", "type": "sql", "sql": "SELECT count(*)::int AS rows, string_agg(what, ',') AS what FROM eng_fail.effects"}
  ]
}$$, true);
CALL chainexec.chain_run('eng-fail-rollback', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;
SELECT line, step, status, failure, sqlstate, message FROM pg_temp.lines(:'result');
SELECT * FROM effects;

-- ---------------------------------------------------------------------
-- Retries
-- ---------------------------------------------------------------------
-- Calls are counted with a sequence: the rows a failed attempt wrote are
-- rolled back, nextval() is not.
CREATE SEQUENCE calls;
CREATE TABLE attempts_seen (attempt int);
CREATE FUNCTION h_flaky(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	attempt int := (arg->'step'->>'attempt')::int;
BEGIN
	PERFORM nextval('eng_fail.calls');
	INSERT INTO eng_fail.attempts_seen VALUES (attempt);
	IF attempt < 3 THEN
		PERFORM chainexec.raise_failure('api_timeout', format('upstream timed out on attempt %s', attempt));
	END IF;
	RETURN jsonb_build_object('answer', 42, 'on_attempt', attempt);
END
$$;
SELECT chainexec.chain_register_handler('eng_fail.flaky', 'h_flaky(jsonb)');

SELECT chainexec.chain_define($${
  "id": "eng-fail-retry",
  "steps": [
    {"id": 1, "name": "call_api", "type": "function", "instructionSet": "eng_fail.flaky",
     "outputVariables": ["answer", "on_attempt"],
     "retryConfig": {"maxRetries": 3, "backoffStrategy": "fixed", "baseDelayMs": 20, "retryOnErrors": ["api_timeout"]}}
  ]
}$$, true);

CALL chainexec.chain_run('eng-fail-retry', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context,
	   :'result'::jsonb->'metadata'->'retriesAttempted' AS retries;
SELECT line, step, status, attempt, failure FROM pg_temp.lines(:'result');
SELECT currval('calls') AS handler_calls;
SELECT * FROM attempts_seen;

-- The maxRetries option overrides every step's: with 0 the first failure is final.
CALL chainexec.chain_run('eng-fail-retry', '{}', '{"maxRetries": 0}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error' AS error;

-- ... and with more than the step's own it lets a step retry longer.
SELECT chainexec.chain_define($${
  "id": "eng-fail-retry-once",
  "steps": [
    {"id": 1, "name": "call_api", "type": "function", "instructionSet": "eng_fail.flaky",
     "outputVariables": ["answer"],
     "retryConfig": {"maxRetries": 1, "backoffStrategy": "fixed", "baseDelayMs": 20, "retryOnErrors": ["api_timeout"]}}
  ]
}$$, true);
CALL chainexec.chain_run('eng-fail-retry-once', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error'->>'message' AS message,
	   :'result'::jsonb->'error'->'attempt' AS attempt;
CALL chainexec.chain_run('eng-fail-retry-once', '{}', '{"maxRetries": 4}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'finalContext' AS context;

-- What is retried: retryOnErrors by SQLSTATE; without retryOnErrors the
-- transient types; a failure that does not match is final at once.
CREATE FUNCTION h_fails_as(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM nextval('eng_fail.calls');
	PERFORM chainexec.raise_failure(arg->'variables'->>'kind', 'failing as ' || (arg->'variables'->>'kind'));
	RETURN '{}';
END
$$;
SELECT chainexec.chain_register_handler('eng_fail.fails_as', 'h_fails_as(jsonb)');
SELECT chainexec.chain_define($${
  "id": "eng-fail-retry-matching",
  "steps": [
    {"id": 1, "name": "by_sqlstate", "type": "sql", "sql": "SELECT 1/0", "onFailure": "warn",
     "retryConfig": {"maxRetries": 2, "backoffStrategy": "fixed", "baseDelayMs": 1, "retryOnErrors": ["22012"]}},
    {"id": 2, "name": "transient_default", "type": "function", "instructionSet": "eng_fail.fails_as",
     "inputVariables": ["kind"], "onFailure": "warn",
     "retryConfig": {"maxRetries": 2, "backoffStrategy": "fixed", "baseDelayMs": 1}},
    {"id": 3, "name": "not_matching", "type": "sql", "sql": "SELECT 1/0", "onFailure": "warn",
     "retryConfig": {"maxRetries": 2, "backoffStrategy": "fixed", "baseDelayMs": 1, "retryOnErrors": ["api_timeout", "40001"]}},
    {"id": 4, "name": "function_default_none", "type": "function", "instructionSet": "eng_fail.fails_as",
     "inputVariables": ["kind"], "onFailure": "warn"}
  ]
}$$, true);
CALL chainexec.chain_run('eng-fail-retry-matching', '{"kind": "network_timeout"}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'metadata'->'retriesAttempted' AS retries;
SELECT line, step, status, attempt, failure, sqlstate, message FROM pg_temp.lines(:'result');
CALL chainexec.chain_run('eng-fail-retry-matching', '{"kind": "card_declined"}') \gset
SELECT line, step, status, attempt, failure, sqlstate, message FROM pg_temp.lines(:'result');

-- ---------------------------------------------------------------------
-- Back-off schedules, computed and not slept: chain_execute records the
-- execution (no executor serves this database, hence the warning) and
-- chainexec._run_one() runs one transition at a time.  The delay of a
-- retry is not_before minus the attempt's start (the transaction's); a
-- retry is made due again by moving not_before to now.  Delays are shown
-- in seconds, rounded to ten.
-- ---------------------------------------------------------------------
CREATE FUNCTION h_always(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM chainexec.raise_failure('api_timeout', 'still down');
	RETURN '{}';
END
$$;
SELECT chainexec.chain_register_handler('eng_fail.always', 'h_always(jsonb)');
SELECT chainexec.chain_define($${
  "id": "eng-fail-backoff",
  "steps": [
    {"id": 1, "name": "fixed", "type": "function", "instructionSet": "eng_fail.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffStrategy": "fixed", "baseDelayMs": 60000, "retryOnErrors": ["api_timeout"]}},
    {"id": 2, "name": "linear", "type": "function", "instructionSet": "eng_fail.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffStrategy": "linear", "baseDelayMs": 60000, "maxDelayMs": 3600000, "retryOnErrors": ["api_timeout"]}},
    {"id": 3, "name": "exponential", "type": "function", "instructionSet": "eng_fail.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffStrategy": "exponential", "baseDelayMs": 60000, "maxDelayMs": 3600000, "retryOnErrors": ["api_timeout"]}},
    {"id": 4, "name": "capped", "type": "function", "instructionSet": "eng_fail.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffMs": 60000, "maxDelayMs": 300000, "retryOnErrors": ["api_timeout"]}},
    {"id": 5, "name": "default_cap", "type": "function", "instructionSet": "eng_fail.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffStrategy": "linear", "baseDelayMs": 30000, "retryOnErrors": ["api_timeout"]}}
  ]
}$$, true);

CREATE TABLE schedule (step text, attempt int, delay_s bigint);
SELECT chainexec.chain_execute('eng-fail-backoff', '{}') AS id \gset
SELECT step_name, status FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id' ORDER BY line_number;
-- five rounds: every line fails once per round
SELECT chainexec._run_one(:'id') FROM generate_series(1, 5);
INSERT INTO schedule SELECT step_name, attempt, round(extract(epoch FROM not_before - started_at) / 10) * 10
  FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id' AND status = 'ready';
UPDATE chainexec.universal_transaction_lines SET not_before = now() WHERE transaction_id = :'id' AND status = 'ready';
SELECT chainexec._run_one(:'id') FROM generate_series(1, 5);
INSERT INTO schedule SELECT step_name, attempt, round(extract(epoch FROM not_before - started_at) / 10) * 10
  FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id' AND status = 'ready';
UPDATE chainexec.universal_transaction_lines SET not_before = now() WHERE transaction_id = :'id' AND status = 'ready';
SELECT chainexec._run_one(:'id') FROM generate_series(1, 5);
INSERT INTO schedule SELECT step_name, attempt, round(extract(epoch FROM not_before - started_at) / 10) * 10
  FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id' AND status = 'ready';
UPDATE chainexec.universal_transaction_lines SET not_before = now() WHERE transaction_id = :'id' AND status = 'ready';
SELECT chainexec._run_one(:'id') FROM generate_series(1, 5);
INSERT INTO schedule SELECT step_name, attempt, round(extract(epoch FROM not_before - started_at) / 10) * 10
  FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id' AND status = 'ready';
UPDATE chainexec.universal_transaction_lines SET not_before = now() WHERE transaction_id = :'id' AND status = 'ready';
SELECT chainexec._run_one(:'id') FROM generate_series(1, 5);
INSERT INTO schedule SELECT step_name, attempt, round(extract(epoch FROM not_before - started_at) / 10) * 10
  FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id' AND status = 'ready';
UPDATE chainexec.universal_transaction_lines SET not_before = now() WHERE transaction_id = :'id' AND status = 'ready';
-- the sixth attempt is the last (maxRetries 5): every line fails for good
SELECT chainexec._run_one(:'id') FROM generate_series(1, 6);

-- delays in seconds for the retries after attempts 1 to 5
SELECT step, string_agg(delay_s::text, ', ' ORDER BY attempt) AS delays_s
  FROM schedule GROUP BY step ORDER BY min(step);
SELECT step_name, status, attempt, error->>'failure_type' AS failure, error->'attempt' AS error_attempt
  FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id' ORDER BY line_number;
SELECT status FROM chainexec.universal_transactions WHERE id = :'id';

-- Jitter: +-25% around the computed delay, and not always the same.
SELECT chainexec.chain_define($${
  "id": "eng-fail-jitter",
  "steps": [
    {"id": 1, "name": "jittery", "type": "function", "instructionSet": "eng_fail.always",
     "retryConfig": {"maxRetries": 100, "backoffStrategy": "fixed", "baseDelayMs": 100000, "maxDelayMs": 100000,
                     "jitter": true, "retryOnErrors": ["api_timeout"]}}
  ]
}$$, true);
CREATE TABLE jitter (delay_ms double precision);
SELECT chainexec.chain_execute('eng-fail-jitter', '{}') AS id \gset
DO $$
DECLARE
	eid uuid := (SELECT transaction_id FROM chainexec.universal_transaction_lines l
				  JOIN chainexec.universal_transactions t ON t.id = l.transaction_id
				 WHERE t.chain_id = 'eng-fail-jitter');
BEGIN
	FOR i IN 1..40 LOOP
		UPDATE chainexec.universal_transaction_lines SET not_before = now() WHERE transaction_id = eid;
		PERFORM chainexec._run_one(eid);
		INSERT INTO eng_fail.jitter
		SELECT extract(epoch FROM not_before - clock_timestamp()) * 1000
		  FROM chainexec.universal_transaction_lines WHERE transaction_id = eid;
	END LOOP;
END
$$;
SELECT count(*) AS retries, min(delay_ms) >= 75000 - 1000 AS above_minus_25pct,
	   max(delay_ms) <= 125000 AS below_plus_25pct, count(DISTINCT round(delay_ms / 1000)) > 1 AS varies
  FROM jitter;
SELECT attempt FROM chainexec.universal_transaction_lines WHERE transaction_id = :'id';

-- The design documents' words in retryOnErrors: "timeout" covers the
-- step's own timeoutMs (execution_timeout); "api_timeout" and
-- "quota_exceeded" do not, so that step is tried once.
SELECT chainexec.chain_define($${
  "id": "eng-fail-words",
  "steps": [
    {"id": 1, "name": "slow", "type": "sql", "sql": "SELECT pg_sleep(0.3) IS NULL AS slept",
     "timeoutMs": 50, "onFailure": "warn",
     "retryConfig": {"maxRetries": 1, "backoffMs": 0, "retryOnErrors": ["timeout", "extraction_failed"]}},
    {"id": 2, "name": "slow_api", "type": "sql", "sql": "SELECT pg_sleep(0.3) IS NULL AS slept2",
     "timeoutMs": 50, "onFailure": "warn",
     "retryConfig": {"maxRetries": 1, "backoffMs": 0, "retryOnErrors": ["api_timeout", "quota_exceeded"]}}
  ]
}$$, true);
CALL chainexec.chain_run('eng-fail-words', '{}') \gset
SELECT line, step, status, attempt, failure FROM pg_temp.lines(:'result');

RESET search_path;
