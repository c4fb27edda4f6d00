--
-- 20_engine_compensation: the saga.  When an execution of a chain with
-- rollbackEnabled fails, the rollbackAction of every completed step runs in
-- reverse completion order, one compensation line per step, each in its own
-- transaction; the execution ends "compensated" (or "failed" when a
-- compensation fails for good); running a compensation twice has no
-- further effect.  The rollback actions record their order in a log table.
--
SET client_min_messages = warning;
CREATE SCHEMA eng_comp;
SET search_path = eng_comp, public;

CREATE FUNCTION pg_temp.lines(r jsonb)
RETURNS TABLE (line int, type text, step text, status text, attempt int, parent int, failure text, message text)
LANGUAGE sql
AS $$
	SELECT line_number, line_type, step_name, status, attempt, parent_line,
		   error->>'failure_type', error->>'message'
	  FROM chainexec.universal_transaction_lines
	 WHERE transaction_id = (r->>'executionId')::uuid
	 ORDER BY line_number
$$;

CREATE TABLE orders (id int PRIMARY KEY, what text);
CREATE TABLE undo_log (n serial, what text);

-- A handler used as a rollbackAction (a name, not SQL): it receives the
-- step's argument with "compensation": true.
CREATE FUNCTION h_unreserve(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	DELETE FROM eng_comp.orders WHERE id = (arg->'variables'->>'id3')::int;
	INSERT INTO eng_comp.undo_log (what)
	VALUES (format('handler undid %s (compensation: %s, step %s)',
				   arg->'variables'->>'id3', arg->>'compensation', arg->'step'->>'name'));
	RETURN '{}';
END
$$;
SELECT chainexec.chain_register_handler('eng_comp.unreserve', 'h_unreserve(jsonb)');

SELECT chainexec.chain_define($${
  "id": "eng-comp-saga",
  "rollbackEnabled": true,
  "steps": [
    {"id": 1, "name": "create_order", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES ({base}::int + 1, 'order') RETURNING id AS id1",
     "rollbackAction": "WITH d AS (DELETE FROM eng_comp.orders WHERE id = {id1}::int RETURNING id) INSERT INTO eng_comp.undo_log (what) SELECT 'undid order ' || id FROM d"},
    {"id": 2, "name": "no_undo_needed", "type": "template", "template": "note", "outputVariables": ["note"]},
    {"id": 3, "name": "charge", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES ({base}::int + 2, 'charge') RETURNING id AS id2",
     "rollbackAction": "WITH d AS (DELETE FROM eng_comp.orders WHERE id = {id2}::int RETURNING id) INSERT INTO eng_comp.undo_log (what) SELECT 'refunded charge ' || id FROM d"},
    {"id": 4, "name": "reserve", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES ({base}::int + 3, 'reservation') RETURNING id AS id3",
     "rollbackAction": "eng_comp.unreserve"},
    {"id": 5, "name": "ship", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES ({base}::int + {ship_offset}::int, 'shipment')",
     "rollbackAction": "DELETE FROM eng_comp.orders WHERE id = {base}::int + 4"}
  ]
}$$, true);

-- Everything goes well: no compensation.
CALL chainexec.chain_run('eng-comp-saga', '{"base": 100, "ship_offset": 4}') \gset
SELECT :'result'::jsonb->>'status' AS status;
SELECT * FROM orders ORDER BY id;
SELECT count(*) AS undo_entries FROM undo_log;

-- The fifth step fails (its key is taken) after three steps wrote rows:
-- they are undone in reverse order; the template step has nothing to undo.
CALL chainexec.chain_run('eng-comp-saga', '{"base": 200, "ship_offset": 1}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error' AS error,
	   (:'result'::jsonb->'metadata') - 'startTime' - 'endTime' - 'totalDuration' AS metadata;
SELECT * FROM pg_temp.lines(:'result');
SELECT * FROM orders WHERE id > 200 ORDER BY id;
SELECT what FROM undo_log ORDER BY n;

-- Running the compensation again (chain_rollback) has no further effect.
SELECT chainexec.chain_rollback((:'result'::jsonb->>'executionId')::uuid) AS rolled_back_again;
SELECT count(*) AS lines FROM pg_temp.lines(:'result');
SELECT count(*) AS undo_entries FROM undo_log;
SELECT status FROM chainexec.universal_transactions WHERE id = (:'result'::jsonb->>'executionId')::uuid;

-- ---------------------------------------------------------------------
-- A false success condition compensates too.
-- ---------------------------------------------------------------------
TRUNCATE undo_log;
SELECT chainexec.chain_define($${
  "id": "eng-comp-condition",
  "rollbackEnabled": true,
  "successConditions": ["approved == true"],
  "steps": [
    {"id": 1, "name": "book", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES ({id}::int, 'booking') RETURNING id AS booking, {approve}::boolean AS approved",
     "rollbackAction": "WITH d AS (DELETE FROM eng_comp.orders WHERE id = {booking}::int RETURNING id) INSERT INTO eng_comp.undo_log (what) SELECT 'cancelled booking ' || id FROM d"}
  ]
}$$, true);
CALL chainexec.chain_run('eng-comp-condition', '{"id": 300, "approve": false}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error'->>'message' AS message;
SELECT * FROM pg_temp.lines(:'result');
SELECT count(*) AS bookings_left FROM orders WHERE id = 300;
SELECT what FROM undo_log ORDER BY n;

-- ---------------------------------------------------------------------
-- A compensation that fails is retried with the step's retry settings,
-- then recorded; the execution ends "failed".
-- ---------------------------------------------------------------------
TRUNCATE undo_log;
CREATE SEQUENCE undo_calls;
SELECT chainexec.chain_define($${
  "id": "eng-comp-broken",
  "rollbackEnabled": true,
  "steps": [
    {"id": 1, "name": "good_undo", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES (401, 'a') RETURNING id AS a",
     "rollbackAction": "WITH d AS (DELETE FROM eng_comp.orders WHERE id = {a}::int RETURNING id) INSERT INTO eng_comp.undo_log (what) SELECT 'undid ' || id FROM d"},
    {"id": 2, "name": "bad_undo", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES (402, 'b') RETURNING id AS b",
     "retryConfig": {"maxRetries": 2, "backoffStrategy": "fixed", "baseDelayMs": 1, "retryOnErrors": ["22012"]},
     "rollbackAction": "SELECT nextval('eng_comp.undo_calls') / 0"},
    {"id": 3, "name": "boom", "type": "sql", "sql": "SELECT 1/0"}
  ]
}$$, true);
CALL chainexec.chain_run('eng-comp-broken', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error'->>'step' AS failed_step,
	   :'result'::jsonb->'error'->>'message' AS message;
-- the error keeps the cause and adds the compensation that failed
SELECT :'result'::jsonb->'error'->'compensationError'->>'step' AS compensation_step,
	   :'result'::jsonb->'error'->'compensationError'->>'sqlstate' AS compensation_sqlstate,
	   :'result'::jsonb->'error'->'compensationError'->>'failure_type' AS compensation_failure;
SELECT * FROM pg_temp.lines(:'result');
SELECT currval('undo_calls') AS bad_undo_attempts;
SELECT what FROM undo_log ORDER BY n;
SELECT * FROM orders WHERE id > 400 ORDER BY id;

-- ---------------------------------------------------------------------
-- Without rollbackEnabled a failed execution is not compensated;
-- chain_rollback compensates it on demand, once.
-- ---------------------------------------------------------------------
TRUNCATE undo_log;
SELECT chainexec.chain_define($${
  "id": "eng-comp-manual",
  "steps": [
    {"id": 1, "name": "one", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES (501, 'one') RETURNING id AS one",
     "rollbackAction": "WITH d AS (DELETE FROM eng_comp.orders WHERE id = {one}::int RETURNING id) INSERT INTO eng_comp.undo_log (what) SELECT 'undid ' || id FROM d"},
    {"id": 2, "name": "two", "type": "sql",
     "sql": "INSERT INTO eng_comp.orders VALUES (502, 'two') RETURNING id AS two",
     "rollbackAction": "WITH d AS (DELETE FROM eng_comp.orders WHERE id = {two}::int RETURNING id) INSERT INTO eng_comp.undo_log (what) SELECT 'undid ' || id FROM d"},
    {"id": 3, "name": "boom", "type": "sql", "sql": "SELECT 1/0"}
  ]
}$$, true);
CALL chainexec.chain_run('eng-comp-manual', '{}') \gset
SELECT :'result'::jsonb->>'status' AS status;
SELECT id FROM orders WHERE id > 500 ORDER BY id;
SELECT (:'result'::jsonb->>'executionId')::uuid AS eid \gset
SELECT chainexec.chain_rollback(:'eid') AS rolled_back;
-- no executor serves this database: run the compensation lines here
SELECT chainexec._run_one(:'eid');
SELECT chainexec._run_one(:'eid');
SELECT chainexec._run_one(:'eid');
SELECT status FROM chainexec.universal_transactions WHERE id = :'eid';
SELECT * FROM pg_temp.lines(:'result');
SELECT what FROM undo_log ORDER BY n;
SELECT chainexec.chain_rollback(:'eid') AS rolled_back_again;
SELECT chainexec._run_one(:'eid') AS anything_to_run;
SELECT count(*) AS undo_entries FROM undo_log;

RESET search_path;
