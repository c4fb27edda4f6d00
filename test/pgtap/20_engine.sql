--
-- 20_engine: the execution engine, one transition at a time.  Everything
-- runs in this suite's transaction (rolled back at the end): executions are
-- recorded with chain_execute, and chainexec._run_one() runs one transition
-- of an execution inside the transaction, so the executors never see them.
-- now() is this transaction's start; a retry's not_before is the clock at
-- its failure plus the back-off, hence
--	  delay <= not_before - now()  and  not_before - clock_timestamp() <= delay.
-- pg_temp.run_all() plays chain_run: it runs transitions until none is due,
-- making back-offs due at once.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(62);

SET LOCAL client_min_messages = warning;
CREATE SCHEMA tap_engine;

CREATE FUNCTION pg_temp.run_all(eid uuid)
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
	n int := 0;
BEGIN
	WHILE n < 500 LOOP
		IF chainexec._run_one(eid) THEN
			n := n + 1;
			CONTINUE;
		END IF;
		UPDATE chainexec.universal_transaction_lines SET not_before = now()
		 WHERE transaction_id = eid AND status = 'ready' AND not_before > now();
		EXIT WHEN NOT FOUND;
	END LOOP;
	RETURN n;
END
$$;

CREATE FUNCTION pg_temp.status(eid uuid)
RETURNS text
LANGUAGE sql
AS $$ SELECT status FROM chainexec.universal_transactions WHERE id = eid $$;

CREATE FUNCTION pg_temp.line(eid uuid, step text)
RETURNS chainexec.universal_transaction_lines
LANGUAGE sql
AS $$
	SELECT * FROM chainexec.universal_transaction_lines
	 WHERE transaction_id = eid AND step_name = step ORDER BY line_number DESC LIMIT 1
$$;

-- ---------------------------------------------------------------------
-- A handler's argument
-- ---------------------------------------------------------------------
CREATE TABLE tap_engine.args (arg jsonb);
CREATE FUNCTION tap_engine.h_record(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO tap_engine.args VALUES (arg);
	RETURN jsonb_build_object('seen', true, 'extra', 1);
END
$$;
SELECT chainexec.chain_register_handler('tap_engine.record', 'tap_engine.h_record(jsonb)') \gset
SELECT chainexec.chain_define($${
  "id": "tap-engine-args",
  "steps": [{"id": 12, "name": "record", "type": "function", "instructionSet": "tap_engine.record",
             "inputTemplate": "order {order.no} for {who}", "inputVariables": ["who", "order"],
             "outputVariables": ["seen"]}]
}$$, true) \gset
CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);
INSERT INTO ids SELECT 'args', chainexec.chain_execute('tap-engine-args', '{"who": "Ada", "order": {"no": 7}, "other": 1}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'args' \gset

SELECT is((SELECT array_agg(k ORDER BY k) FROM tap_engine.args, jsonb_object_keys(arg) k),
		  ARRAY['chain_id', 'execution_id', 'input', 'step', 'variables'],
		  'a handler receives input, variables, step, execution_id and chain_id');
SELECT is((SELECT arg->'step' FROM tap_engine.args), '{"id": 12, "name": "record", "attempt": 1}'::jsonb,
		  'step is {id, name, attempt}');
SELECT is((SELECT arg->'variables' FROM tap_engine.args), '{"who": "Ada", "order": {"no": 7}}'::jsonb,
		  'variables are the inputVariables');
SELECT is((SELECT arg->>'input' FROM tap_engine.args), 'order 7 for Ada', 'input is the rendered inputTemplate');
SELECT is((SELECT arg->>'execution_id' FROM tap_engine.args), (SELECT id::text FROM ids WHERE name = 'args'),
		  'execution_id is the execution''s');
SELECT is((SELECT arg->>'chain_id' FROM tap_engine.args), 'tap-engine-args', 'chain_id is the chain''s');
SELECT is((SELECT context FROM chainexec.universal_transactions WHERE id = (SELECT id FROM ids WHERE name = 'args')),
		  '{"who": "Ada", "seen": true, "order": {"no": 7}, "other": 1}'::jsonb,
		  'only the outputVariables of the handler''s result become variables');

-- ---------------------------------------------------------------------
-- sql steps: bound parameters
-- ---------------------------------------------------------------------
CREATE TABLE tap_engine.notes (id serial, note text);
SELECT chainexec.chain_define($${
  "id": "tap-engine-sql",
  "steps": [{"id": 1, "name": "store", "type": "sql",
             "sql": "INSERT INTO tap_engine.notes (note) VALUES ({note}) RETURNING note AS stored, {n}::int + 1 AS next"}]
}$$, true) \gset
INSERT INTO ids SELECT 'sql', chainexec.chain_execute('tap-engine-sql', $${"note": "x'); DROP TABLE tap_engine.notes; --", "n": "41"}$$);
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'sql' \gset
SELECT is((SELECT note FROM tap_engine.notes), $$x'); DROP TABLE tap_engine.notes; --$$,
		  'a value that looks like SQL is stored as data');
SELECT has_table('tap_engine', 'notes', 'and the table is still there');
SELECT is((SELECT output FROM pg_temp.line((SELECT id FROM ids WHERE name = 'sql'), 'store')),
		  $${"rowCount": 1, "variables": {"next": 42, "stored": "x'); DROP TABLE tap_engine.notes; --"}}$$::jsonb,
		  'the line keeps the variables and the row count; {n}::int casts');

-- ---------------------------------------------------------------------
-- Retries: a handler that fails twice with api_timeout, then succeeds
-- ---------------------------------------------------------------------
CREATE SEQUENCE tap_engine.calls;
CREATE FUNCTION tap_engine.h_flaky(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM nextval('tap_engine.calls');
	IF (arg->'step'->>'attempt')::int < 3 THEN
		PERFORM chainexec.raise_failure('api_timeout', 'timed out');
	END IF;
	RETURN '{"done": true}';
END
$$;
SELECT chainexec.chain_register_handler('tap_engine.flaky', 'tap_engine.h_flaky(jsonb)') \gset
SELECT chainexec.chain_define($${
  "id": "tap-engine-retry",
  "steps": [{"id": 1, "name": "flaky", "type": "function", "instructionSet": "tap_engine.flaky",
             "retryConfig": {"maxRetries": 3, "backoffStrategy": "fixed", "baseDelayMs": 5000,
                             "retryOnErrors": ["api_timeout"]}}]
}$$, true) \gset
INSERT INTO ids SELECT 'retry', chainexec.chain_execute('tap-engine-retry', '{}');
SELECT chainexec._run_one(id) FROM ids WHERE name = 'retry' \gset
SELECT is((SELECT (status, attempt, error->>'failure_type', error->>'sqlstate')::text
			 FROM pg_temp.line((SELECT id FROM ids WHERE name = 'retry'), 'flaky')),
		  '(ready,1,api_timeout,CEF01)', 'after a failed attempt the line stays ready with the error and attempt 1');
SELECT ok(NOT chainexec._run_one(id), 'the retry is not due before its back-off') FROM ids WHERE name = 'retry';
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'retry' \gset
SELECT is((SELECT (status, attempt, error)::text FROM pg_temp.line((SELECT id FROM ids WHERE name = 'retry'), 'flaky')),
		  '(completed,3,)', 'the third attempt completes the line and clears the error');
SELECT is(pg_temp.status(id), 'completed', 'the execution completes') FROM ids WHERE name = 'retry';
SELECT is(currval('tap_engine.calls'), 3::bigint, 'the handler was called three times');
SELECT is((chainexec.chain_result(id)->'metadata'->>'retriesAttempted')::int, 2, 'chain_result counts two retries')
  FROM ids WHERE name = 'retry';

-- An execution that ends in its first transition (a chain of one step)
-- started: chain_result gives its start and duration; one cancelled
-- before any step ran never started.
SELECT chainexec.chain_define($${"id": "tap-engine-one", "steps": [
	{"id": 1, "name": "only", "type": "sql", "sql": "SELECT 1 AS one", "outputVariables": ["one"]}]}$$, true) \gset
INSERT INTO ids SELECT 'one', chainexec.chain_execute('tap-engine-one', '{}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'one' \gset
SELECT ok(coalesce((m->>'startTime')::timestamptz <= (m->>'endTime')::timestamptz
				   AND (m->>'totalDuration')::bigint >= 0, false),
		  'an execution that ends in its first transition has a start time and a duration')
  FROM (SELECT chainexec.chain_result(id)->'metadata' AS m FROM ids WHERE name = 'one') s;
INSERT INTO ids SELECT 'one-cancelled', chainexec.chain_execute('tap-engine-one', '{}');
SELECT chainexec.chain_cancel(id) FROM ids WHERE name = 'one-cancelled' \gset
SELECT is(chainexec.chain_result(id)->'metadata'->'startTime', 'null'::jsonb,
		  'an execution cancelled before any step ran has no start time')
  FROM ids WHERE name = 'one-cancelled';

-- The same for the other ends of a first transition: one whose step ran
-- and whose success condition then failed starts its compensation there
-- (pending to compensating) and is compensated later; one whose step ran
-- past its maxExecutionTime times out there; both started.  One rolled
-- back (chain_rollback) before any step ran never started, as a cancelled
-- one.
SELECT chainexec.chain_define($${"id": "tap-engine-one-saga", "rollbackEnabled": true,
	"successConditions": ["{one} == 2"], "steps": [
	{"id": 1, "name": "only", "type": "sql", "sql": "SELECT 1 AS one", "outputVariables": ["one"],
	 "rollbackAction": "SELECT 1"}]}$$, true) \gset
INSERT INTO ids SELECT 'one-saga', chainexec.chain_execute('tap-engine-one-saga', '{}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'one-saga' \gset
SELECT is((r->>'status') || ' ' || (r->'metadata'->>'startTime' IS NOT NULL
			AND (r->'metadata'->>'totalDuration')::bigint >= 0),
		  'compensated true', 'an execution compensated after its first transition has a start time and a duration')
  FROM (SELECT chainexec.chain_result(id) AS r FROM ids WHERE name = 'one-saga') s;
SELECT chainexec.chain_define($${"id": "tap-engine-one-deadline", "maxExecutionTime": 1000, "steps": [
	{"id": 1, "name": "only", "type": "sql", "sql": "SELECT pg_sleep(5)"}]}$$, true) \gset
INSERT INTO ids SELECT 'one-deadline', chainexec.chain_execute('tap-engine-one-deadline', '{}',
														 jsonb_build_object('runAt', clock_timestamp()));
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'one-deadline' \gset
SELECT is((r->>'status') || ' ' || (r->'metadata'->>'startTime' IS NOT NULL),
		  'timeout true', 'an execution whose first step ran past its maxExecutionTime has a start time')
  FROM (SELECT chainexec.chain_result(id) AS r FROM ids WHERE name = 'one-deadline') s;
INSERT INTO ids SELECT 'one-rolled-back', chainexec.chain_execute('tap-engine-one', '{}');
SELECT chainexec.chain_rollback(id) FROM ids WHERE name = 'one-rolled-back' \gset
SELECT is((r->>'status') || ' ' || (r->'metadata'->'startTime'),
		  'compensated null', 'an execution rolled back before any step ran has no start time')
  FROM (SELECT chainexec.chain_result(id) AS r FROM ids WHERE name = 'one-rolled-back') s;

-- ---------------------------------------------------------------------
-- Back-off schedules: fixed, linear, exponential, the maxDelayMs cap,
-- the default cap of 60 s
-- ---------------------------------------------------------------------
CREATE FUNCTION tap_engine.h_always(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM chainexec.raise_failure('api_timeout', 'down');
	RETURN '{}';
END
$$;
SELECT chainexec.chain_register_handler('tap_engine.always', 'tap_engine.h_always(jsonb)') \gset
SELECT chainexec.chain_define($${
  "id": "tap-engine-backoff",
  "steps": [
    {"id": 1, "name": "fixed", "type": "function", "instructionSet": "tap_engine.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffStrategy": "fixed", "baseDelayMs": 60000, "retryOnErrors": ["api_timeout"]}},
    {"id": 2, "name": "linear", "type": "function", "instructionSet": "tap_engine.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffStrategy": "linear", "baseDelayMs": 60000, "maxDelayMs": 3600000, "retryOnErrors": ["api_timeout"]}},
    {"id": 3, "name": "exponential", "type": "function", "instructionSet": "tap_engine.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffStrategy": "exponential", "baseDelayMs": 60000, "maxDelayMs": 3600000, "retryOnErrors": ["api_timeout"]}},
    {"id": 4, "name": "capped", "type": "function", "instructionSet": "tap_engine.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "baseDelayMs": 60000, "maxDelayMs": 300000, "retryOnErrors": ["api_timeout"]}},
    {"id": 5, "name": "default_cap", "type": "function", "instructionSet": "tap_engine.always", "onFailure": "warn",
     "parallelExecution": true,
     "retryConfig": {"maxRetries": 5, "backoffStrategy": "exponential", "baseDelayMs": 20000, "retryOnErrors": ["api_timeout"]}}
  ]
}$$, true) \gset
CREATE TABLE tap_engine.delays (step text, attempt int, at_least interval, at_most interval);
INSERT INTO ids SELECT 'backoff', chainexec.chain_execute('tap-engine-backoff', '{}');
DO $$
DECLARE
	eid uuid := (SELECT id FROM ids WHERE name = 'backoff');
BEGIN
	FOR round IN 1..5 LOOP
		FOR i IN 1..5 LOOP
			PERFORM chainexec._run_one(eid);
		END LOOP;
		INSERT INTO tap_engine.delays
		SELECT step_name, attempt, not_before - now(), not_before - clock_timestamp()
		  FROM chainexec.universal_transaction_lines WHERE transaction_id = eid AND status = 'ready';
		UPDATE chainexec.universal_transaction_lines SET not_before = now()
		 WHERE transaction_id = eid AND status = 'ready';
	END LOOP;
	PERFORM pg_temp.run_all(eid);
END
$$;
CREATE FUNCTION pg_temp.delays_fit(s text, expected_s int[])
RETURNS boolean
LANGUAGE sql
AS $$
	SELECT count(*) = 5 AND bool_and(d.at_least >= make_interval(secs => e.secs) AND d.at_most <= make_interval(secs => e.secs))
	  FROM tap_engine.delays d
	  JOIN unnest(expected_s) WITH ORDINALITY AS e(secs, attempt) ON e.attempt = d.attempt
	 WHERE d.step = s
$$;
SELECT ok(pg_temp.delays_fit('fixed', ARRAY[60, 60, 60, 60, 60]), 'fixed: 60 s before every retry');
SELECT ok(pg_temp.delays_fit('linear', ARRAY[60, 120, 180, 240, 300]), 'linear: base x attempt');
SELECT ok(pg_temp.delays_fit('exponential', ARRAY[60, 120, 240, 480, 960]), 'exponential: base x 2^(attempt-1)');
SELECT ok(pg_temp.delays_fit('capped', ARRAY[60, 120, 240, 300, 300]), 'exponential by default, capped by maxDelayMs');
SELECT ok(pg_temp.delays_fit('default_cap', ARRAY[20, 40, 60, 60, 60]), 'maxDelayMs defaults to 60 s');
SELECT is((SELECT array_agg(DISTINCT (status, attempt, error->>'attempt')::text)
			 FROM chainexec.universal_transaction_lines WHERE transaction_id = (SELECT id FROM ids WHERE name = 'backoff')),
		  ARRAY['(failed,6,6)'], 'after maxRetries 5 every line failed on its sixth attempt');
SELECT is(pg_temp.status(id), 'completed', 'onFailure warn: the execution still completes') FROM ids WHERE name = 'backoff';

-- Jitter: within +-25% of the delay, and not the same every time.
SELECT chainexec.chain_define($${
  "id": "tap-engine-jitter",
  "steps": [{"id": 1, "name": "jittery", "type": "function", "instructionSet": "tap_engine.always",
             "retryConfig": {"maxRetries": 100, "backoffStrategy": "fixed", "baseDelayMs": 40000,
                             "maxDelayMs": 40000, "jitter": true, "retryOnErrors": ["api_timeout"]}}]
}$$, true) \gset
CREATE TABLE tap_engine.jitter (at_least interval, at_most interval);
INSERT INTO ids SELECT 'jitter', chainexec.chain_execute('tap-engine-jitter', '{}');
DO $$
DECLARE
	eid uuid := (SELECT id FROM ids WHERE name = 'jitter');
BEGIN
	FOR i IN 1..60 LOOP
		PERFORM chainexec._run_one(eid);
		INSERT INTO tap_engine.jitter
		SELECT not_before - now(), not_before - clock_timestamp()
		  FROM chainexec.universal_transaction_lines WHERE transaction_id = eid;
		UPDATE chainexec.universal_transaction_lines SET not_before = now() WHERE transaction_id = eid;
	END LOOP;
END
$$;
SELECT ok((SELECT bool_and(at_least >= interval '30 s' AND at_most <= interval '50 s') FROM tap_engine.jitter),
		  'jitter stays within 75% and 125% of the delay');
SELECT ok((SELECT count(DISTINCT date_trunc('second', at_most)) > 5 FROM tap_engine.jitter),
		  'jitter varies the delay');
SELECT ok((SELECT min(at_most) < interval '37 s' AND max(at_least) > interval '43 s' FROM tap_engine.jitter),
		  'jitter reaches both sides of the delay');

-- ---------------------------------------------------------------------
-- maxConcurrency
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "tap-engine-concurrency",
  "maxConcurrency": 3,
  "steps": [
    {"id": 1, "name": "p1", "type": "sql", "sql": "SELECT 1 AS v1"},
    {"id": 2, "name": "p2", "type": "sql", "sql": "SELECT 2 AS v2", "parallelExecution": true},
    {"id": 3, "name": "p3", "type": "sql", "sql": "SELECT 3 AS v3", "parallelExecution": true},
    {"id": 4, "name": "p4", "type": "sql", "sql": "SELECT 4 AS v4", "parallelExecution": true},
    {"id": 5, "name": "p5", "type": "sql", "sql": "SELECT 5 AS v5", "parallelExecution": true},
    {"id": 6, "name": "p6", "type": "sql", "sql": "SELECT 6 AS v6", "parallelExecution": true},
    {"id": 7, "name": "p7", "type": "sql", "sql": "SELECT 7 AS v7", "parallelExecution": true},
    {"id": 8, "name": "join", "type": "sql", "sql": "SELECT {v1}::int + {v2}::int + {v3}::int + {v4}::int + {v5}::int + {v6}::int + {v7}::int AS total",
     "dependsOn": [1, 2, 3, 4, 5, 6, 7]}
  ]
}$$, true) \gset
CREATE TABLE tap_engine.ready (n int, ready int);
INSERT INTO ids SELECT 'concurrency', chainexec.chain_execute('tap-engine-concurrency', '{}');
DO $$
DECLARE
	eid uuid := (SELECT id FROM ids WHERE name = 'concurrency');
	n int := 0;
BEGIN
	LOOP
		INSERT INTO tap_engine.ready
		SELECT n, count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = eid AND status = 'ready';
		EXIT WHEN NOT chainexec._run_one(eid);
		n := n + 1;
	END LOOP;
END
$$;
SELECT is((SELECT max(ready) FROM tap_engine.ready), 3, 'never more than maxConcurrency lines ready at once');
SELECT is((SELECT ready FROM tap_engine.ready WHERE n = 0), 3, 'three of the seven independent steps start');
SELECT is((SELECT context->'total' FROM chainexec.universal_transactions WHERE id = (SELECT id FROM ids WHERE name = 'concurrency')),
		  '28'::jsonb, 'the join step ran after all seven');

-- ---------------------------------------------------------------------
-- Compensation
-- ---------------------------------------------------------------------
CREATE TABLE tap_engine.rows (id int PRIMARY KEY);
CREATE TABLE tap_engine.undo (n serial, id int);
SELECT chainexec.chain_define($${
  "id": "tap-engine-saga",
  "rollbackEnabled": true,
  "steps": [
    {"id": 1, "name": "w1", "type": "sql", "sql": "INSERT INTO tap_engine.rows VALUES (1) RETURNING id AS r1",
     "rollbackAction": "WITH d AS (DELETE FROM tap_engine.rows WHERE id = {r1}::int RETURNING id) INSERT INTO tap_engine.undo (id) SELECT id FROM d"},
    {"id": 2, "name": "w2", "type": "sql", "sql": "INSERT INTO tap_engine.rows VALUES (2) RETURNING id AS r2",
     "rollbackAction": "WITH d AS (DELETE FROM tap_engine.rows WHERE id = {r2}::int RETURNING id) INSERT INTO tap_engine.undo (id) SELECT id FROM d"},
    {"id": 3, "name": "w3", "type": "sql", "sql": "INSERT INTO tap_engine.rows VALUES (3) RETURNING id AS r3",
     "rollbackAction": "WITH d AS (DELETE FROM tap_engine.rows WHERE id = {r3}::int RETURNING id) INSERT INTO tap_engine.undo (id) SELECT id FROM d"},
    {"id": 4, "name": "fails", "type": "sql", "sql": "INSERT INTO tap_engine.rows VALUES (1)"}
  ]
}$$, true) \gset
INSERT INTO ids SELECT 'saga', chainexec.chain_execute('tap-engine-saga', '{}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'saga' \gset
SELECT is(pg_temp.status(id), 'compensated', 'a failed execution with rollbackEnabled ends compensated')
  FROM ids WHERE name = 'saga';
SELECT is((SELECT array_agg(id ORDER BY n) FROM tap_engine.undo), ARRAY[3, 2, 1],
		  'the rollback actions ran in reverse completion order');
SELECT is((SELECT count(*)::int FROM tap_engine.rows), 0, 'every row the steps wrote is gone');
SELECT is((SELECT array_agg((step_name, status, parent_line)::text ORDER BY line_number)
			 FROM chainexec.universal_transaction_lines
			WHERE transaction_id = (SELECT id FROM ids WHERE name = 'saga') AND line_type = 'compensation'),
		  ARRAY['(w3,completed,3)', '(w2,completed,2)', '(w1,completed,1)'],
		  'one completed compensation line per completed step');
SELECT is((SELECT array_agg(status ORDER BY line_number) FROM chainexec.universal_transaction_lines
			WHERE transaction_id = (SELECT id FROM ids WHERE name = 'saga') AND line_type = 'step'),
		  ARRAY['compensated', 'compensated', 'compensated', 'failed'], 'the compensated steps are marked so');
SELECT is(chainexec.chain_rollback(id), false, 'running the compensation again does nothing') FROM ids WHERE name = 'saga';
SELECT is((SELECT count(*)::int FROM tap_engine.undo), 3, 'no rollback action ran twice');

-- ---------------------------------------------------------------------
-- The acceptance chain (examples/acceptance_chain.sql)
-- ---------------------------------------------------------------------
\o /dev/null
\i examples/acceptance_chain.sql
\o
INSERT INTO ids SELECT 'acceptance', chainexec.chain_execute('acceptance-order',
	'{"order_no": "TAP-1", "customer": "Ada Lovelace", "qty": 3, "sku": "BOOK-42", "unit_price": 12.5}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'acceptance' \gset
SELECT is(pg_temp.status(id), 'completed', 'the acceptance chain completes') FROM ids WHERE name = 'acceptance';
SELECT is(context, $${
  "order_no": "TAP-1", "customer": "Ada Lovelace", "qty": 3, "sku": "BOOK-42", "unit_price": 12.5,
  "inventory_down": false, "tier": "standard", "order_ref": "ORD-TAP-1", "subtotal": 37.50,
  "reservation": "RSV-TAP-1", "warehouse_ref": "manual pick for ORD-TAP-1: 3 x BOOK-42", "total": 37.50,
  "confirmation": "Dear Ada Lovelace, order ORD-TAP-1 for 3 x BOOK-42 totals 37.50 EUR. Thank you for your order.",
  "final_status": "confirmed", "item_count": 3, "order_status": "confirmed"
}$$::jsonb, 'with the expected final context')
  FROM chainexec.universal_transactions WHERE id = (SELECT id FROM ids WHERE name = 'acceptance');
SELECT is((SELECT array_agg((step_name, status, attempt)::text ORDER BY line_number)
			 FROM chainexec.universal_transaction_lines WHERE transaction_id = (SELECT id FROM ids WHERE name = 'acceptance')),
		  ARRAY['(validate,completed,1)', '(create_order,completed,1)', '(price,completed,1)', '(apply_coupon,skipped,0)',
				'(reserve_stock,completed,3)', '(notify_warehouse,failed,1)', '(total,completed,1)',
				'(confirmation,completed,1)', '(summary,completed,1)', '(finalize,completed,1)',
				'(queue_manual_pick,completed,1)'],
		  'a skipped step, a step retried twice, a fallback');
INSERT INTO ids SELECT 'acceptance-down', chainexec.chain_execute('acceptance-order',
	'{"order_no": "TAP-2", "customer": "Ada Lovelace", "qty": 3, "sku": "BOOK-42", "unit_price": 12.5, "inventory_down": true}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'acceptance-down' \gset
SELECT is(pg_temp.status(id), 'failed', 'with the inventory down for good it fails') FROM ids WHERE name = 'acceptance-down';
SELECT is(error - 'detail', '{"step": "reserve_stock", "stepId": 5, "attempt": 4, "failure_type": "api_timeout",
							  "sqlstate": "CEF01", "message": "inventory service timed out on attempt 4"}'::jsonb,
		  'with the failure type, SQLSTATE and message of the cause')
  FROM chainexec.universal_transactions WHERE id = (SELECT id FROM ids WHERE name = 'acceptance-down');
SELECT is((SELECT count(*)::int FROM chainexec.universal_transaction_lines
			WHERE transaction_id = (SELECT id FROM ids WHERE name = 'acceptance-down')
			  AND status IN ('pending', 'ready', 'waiting')), 0, 'and no line is left open');

-- ---------------------------------------------------------------------
-- A failed step's effects are rolled back; timeoutMs
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${
  "id": "tap-engine-undo",
  "steps": [
    {"id": 1, "name": "writes_then_fails", "type": "sql", "onFailure": "warn",
     "sql": "WITH ins AS (INSERT INTO tap_engine.notes (note) VALUES ('half done') RETURNING 1) SELECT 1 / (count(*)::int - 1) FROM ins"},
    {"id": 2, "name": "sleeps", "type": "sql", "sql": "SELECT pg_sleep(20)", "timeoutMs": 100, "onFailure": "warn"}
  ]
}$$, true) \gset
INSERT INTO ids SELECT 'undo', chainexec.chain_execute('tap-engine-undo', '{}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'undo' \gset
SELECT is((SELECT count(*)::int FROM tap_engine.notes WHERE note = 'half done'), 0,
		  'the row a failing step inserted is gone');
SELECT is((SELECT error->>'failure_type' FROM pg_temp.line((SELECT id FROM ids WHERE name = 'undo'), 'sleeps')),
		  'execution_timeout', 'timeoutMs cancels the step: execution_timeout');
SELECT is((SELECT error->>'sqlstate' FROM pg_temp.line((SELECT id FROM ids WHERE name = 'undo'), 'sleeps')),
		  '57014', 'with SQLSTATE 57014');

-- ---------------------------------------------------------------------
-- A step's error text is kept up to 8 kB a field, with a marker
-- ---------------------------------------------------------------------
CREATE FUNCTION tap_engine.h_loud(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	RAISE EXCEPTION '%', repeat('m', 100000) USING DETAIL = repeat('é', 60000), HINT = 'short hint';
END
$$;
SELECT chainexec.chain_register_handler('tap_engine.loud', 'tap_engine.h_loud(jsonb)') \gset
SELECT chainexec.chain_define($${
  "id": "tap-engine-loud",
  "steps": [{"id": 1, "name": "loud", "type": "function", "instructionSet": "tap_engine.loud"}]
}$$, true) \gset
INSERT INTO ids SELECT 'loud', chainexec.chain_execute('tap-engine-loud', '{}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'loud' \gset
SELECT is((SELECT (octet_length(error->>'message'), error->>'message' LIKE repeat('m', 8192) || '... [truncated: 100000 bytes in all]')::text
			 FROM pg_temp.line((SELECT id FROM ids WHERE name = 'loud'), 'loud')),
		  '(8228,t)', 'a 100 kB error message is kept cut at 8 kB, with a marker saying so');
SELECT ok((SELECT octet_length(error->>'detail') <= 8192 + 40 AND error->>'detail' LIKE '%é... [truncated: 120000 bytes in all]'
			 AND error->>'hint' = 'short hint'
			 FROM pg_temp.line((SELECT id FROM ids WHERE name = 'loud'), 'loud')),
		  'a long detail is cut at a character boundary; a short hint is kept whole');
SELECT ok((SELECT octet_length(error::text) < 20000 FROM chainexec.universal_transactions
			WHERE id = (SELECT id FROM ids WHERE name = 'loud')),
		  'the failed execution''s error is bounded too');

-- ---------------------------------------------------------------------
-- Options and rights
-- ---------------------------------------------------------------------
INSERT INTO ids SELECT 'nosave', chainexec.chain_execute('tap-engine-sql', '{"note": "n", "n": 1}', '{"saveIntermediateResults": false}');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'nosave' \gset
SELECT is((SELECT (status, input, output)::text FROM pg_temp.line((SELECT id FROM ids WHERE name = 'nosave'), 'store')),
		  '(completed,,)', 'saveIntermediateResults false keeps no input or output on the lines');
SELECT is((SELECT context->'next' FROM chainexec.universal_transactions WHERE id = (SELECT id FROM ids WHERE name = 'nosave')),
		  '2'::jsonb, 'the variables are kept all the same');

INSERT INTO ids SELECT 'later', chainexec.chain_execute('tap-engine-sql', '{"note": "n", "n": 1}', '{"runAt": "2999-01-01T00:00:00Z", "priority": 5}');
SELECT ok(NOT chainexec._run_one(id), 'runAt: nothing is due before it') FROM ids WHERE name = 'later';
SELECT is((SELECT (not_before, priority)::text FROM pg_temp.line((SELECT id FROM ids WHERE name = 'later'), 'store')),
		  (SELECT ('2999-01-01T00:00:00Z'::timestamptz, 5)::text), 'runAt and priority are on the line');

SELECT is(chainexec.chain_execute('tap-engine-sql', '{"note": "a", "n": 1}', '{"idempotencyKey": "tap-key"}'),
		  chainexec.chain_execute('tap-engine-sql', '{"note": "b", "n": 2}', '{"idempotencyKey": "tap-key"}'),
		  'idempotencyKey: the same execution twice');
SELECT throws_ok($$SELECT chainexec.chain_execute('tap-engine-sql', '{}', '{"bogus": true}')$$, '22023',
				 'unknown option "bogus"', 'an unknown option is an error');

CREATE ROLE tap_engine_nobody;
SELECT ok(NOT has_function_privilege('tap_engine_nobody', 'chainexec._run_one(uuid)', 'EXECUTE'),
		  '_run_one is not for everyone');

-- ---------------------------------------------------------------------
-- chain_result: built in C from the header and its lines' counts, it is
-- the object its definition in SQL gives, for every execution above (in
-- every status this suite leaves them in), and for header values the
-- engine does not write itself: scalar and empty jsonb, no start, no end,
-- durations that round at half a millisecond either way
-- ---------------------------------------------------------------------
CREATE FUNCTION pg_temp.result_by_definition(t chainexec.universal_transactions)
RETURNS jsonb
LANGUAGE sql
AS $$
	SELECT jsonb_build_object('executionId', t.id, 'chainId', t.chain_id, 'status', t.status,
		'finalContext', t.context, 'outputs', t.output, 'error', t.error,
		'metadata', jsonb_build_object('startTime', t.started_at, 'endTime', t.finished_at,
			'totalDuration', CASE WHEN t.finished_at IS NOT NULL AND t.started_at IS NOT NULL
				THEN round(EXTRACT(epoch FROM t.finished_at - t.started_at) * 1000)::int8 END,
			'stepsExecuted', count(*) FILTER (WHERE l.line_type IN ('step', 'fallback') AND l.status IN ('completed', 'compensated')),
			'stepsSkipped', count(*) FILTER (WHERE l.line_type = 'step' AND l.status = 'skipped'),
			'stepsFailed', count(*) FILTER (WHERE l.line_type IN ('step', 'fallback') AND l.status = 'failed'),
			'retriesAttempted', COALESCE(sum(GREATEST(l.attempt - 1, 0)) FILTER (WHERE l.line_type <> 'compensation'), 0),
			'chainVersion', t.chain_version))
	  FROM chainexec.universal_transaction_lines l
	 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id
$$;
SELECT is((SELECT count(*) FILTER (WHERE chainexec.chain_result(t.id) IS DISTINCT FROM pg_temp.result_by_definition(t))
				   || ' of ' || (count(DISTINCT t.status) >= 4)::text
			 FROM chainexec.universal_transactions t),
		  '0 of true', 'chain_result is its definition for every execution of this suite, in four statuses or more');
SET LOCAL chainexec.internal = on;
WITH x AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM chainexec.universal_transactions WHERE finished_at IS NOT NULL LIMIT 12)
UPDATE chainexec.universal_transactions t SET
	output = CASE x.n WHEN 1 THEN '5' WHEN 2 THEN '"s"' WHEN 3 THEN '[1, {"a": 2}]' WHEN 4 THEN 'null' WHEN 5 THEN NULL ELSE output END,
	context = CASE x.n WHEN 6 THEN '7.25' WHEN 7 THEN '{}' ELSE context END,
	error = CASE x.n WHEN 8 THEN '{"m": "é"}' WHEN 9 THEN 'true' ELSE error END,
	started_at = CASE x.n WHEN 10 THEN NULL
		WHEN 11 THEN finished_at - interval '1.5 ms' WHEN 12 THEN finished_at + interval '2.5 ms'
		WHEN 1 THEN finished_at - interval '3 days 1.4999 ms' WHEN 2 THEN finished_at - interval '0.5 ms'
		WHEN 3 THEN finished_at + interval '0.5 ms' WHEN 4 THEN finished_at + interval '0.4999 ms' ELSE started_at END,
	finished_at = CASE x.n WHEN 9 THEN NULL ELSE finished_at END
  FROM x WHERE t.id = x.id;
RESET chainexec.internal;
SELECT is((SELECT count(*) FILTER (WHERE chainexec.chain_result(t.id) IS DISTINCT FROM pg_temp.result_by_definition(t))
			 FROM chainexec.universal_transactions t),
		  0::bigint, 'chain_result is its definition for scalar, empty and null values, no start or end, and durations rounded at half a millisecond');

SELECT * FROM finish();
ROLLBACK;
