--
-- 20_engine_acceptance: the acceptance chain (examples/acceptance_chain.sql):
-- ten steps mixing sql, function and template steps, with a parallel
-- branch, a conditional skip, a retried step and a fallback.  Under CALL
-- chain_run it completes with a finalContext that matches the expected
-- JSON exactly; with a permanently failing critical step it fails with the
-- failure type, SQLSTATE and message of the cause.
--
SET client_min_messages = warning;

-- Load the example twice: the second time changes nothing.
\set ECHO none
\o /dev/null
\i examples/acceptance_chain.sql
\i examples/acceptance_chain.sql
\o
\set ECHO all
SELECT version, status, jsonb_array_length(definition->'steps') AS steps
  FROM chainexec.chains WHERE chain_id = 'acceptance-order' ORDER BY version;
SELECT name FROM chainexec.handlers WHERE name LIKE 'acceptance.%' ORDER BY name;
SELECT s->>'id' AS id, s->>'name' AS name, s->>'type' AS type
  FROM chainexec.chains, jsonb_array_elements(definition->'steps') s
 WHERE chain_id = 'acceptance-order' ORDER BY (s->>'id')::int;

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
-- The happy path
-- ---------------------------------------------------------------------
CALL chainexec.chain_run('acceptance-order',
	'{"order_no": "A-1001", "customer": "Ada Lovelace", "qty": 3, "sku": "BOOK-42", "unit_price": 12.5}') \gset
SELECT :'result'::jsonb->>'status' AS status, :'result'::jsonb->'error' AS error;
SELECT :'result'::jsonb->'finalContext' = $${
  "order_no": "A-1001",
  "customer": "Ada Lovelace",
  "qty": 3,
  "sku": "BOOK-42",
  "unit_price": 12.5,
  "inventory_down": false,
  "tier": "standard",
  "order_ref": "ORD-A-1001",
  "subtotal": 37.50,
  "reservation": "RSV-A-1001",
  "warehouse_ref": "manual pick for ORD-A-1001: 3 x BOOK-42",
  "total": 37.50,
  "confirmation": "Dear Ada Lovelace, order ORD-A-1001 for 3 x BOOK-42 totals 37.50 EUR. Thank you for your order.",
  "final_status": "confirmed",
  "item_count": 3,
  "order_status": "confirmed"
}$$::jsonb AS final_context_matches;
SELECT jsonb_pretty(:'result'::jsonb->'finalContext') AS final_context;
SELECT (:'result'::jsonb->'metadata') - 'startTime' - 'endTime' - 'totalDuration' AS metadata;
-- validate .. finalize; apply_coupon skipped (no coupon); reserve_stock
-- retried twice; notify_warehouse failed and its fallback ran
SELECT * FROM pg_temp.lines(:'result');
SELECT * FROM acceptance.orders WHERE order_no = 'A-1001';
SELECT * FROM acceptance.reservations WHERE order_no = 'A-1001';

-- Again, with a coupon and enough items for the gold tier: the coupon step runs.
CALL chainexec.chain_run('acceptance-order',
	'{"order_no": "A-1002", "customer": "Grace Hopper", "qty": 10, "sku": "COBOL-1", "unit_price": 4.25, "coupon": "SAVE10"}') \gset
SELECT :'result'::jsonb->>'status' AS status,
	   :'result'::jsonb->'finalContext'->'discount' AS discount,
	   :'result'::jsonb->'finalContext'->'total' AS total,
	   :'result'::jsonb->'finalContext'->>'confirmation' AS confirmation;
SELECT line, step, status, attempt FROM pg_temp.lines(:'result') WHERE step IN ('apply_coupon', 'reserve_stock');

-- ---------------------------------------------------------------------
-- A critical step that fails for good
-- ---------------------------------------------------------------------
-- The inventory service stays down: reserve_stock is retried three times,
-- then the execution fails with the cause's failure type, SQLSTATE and message.
CALL chainexec.chain_run('acceptance-order',
	'{"order_no": "A-1003", "customer": "Ada Lovelace", "qty": 1, "sku": "BOOK-42", "unit_price": 12.5, "inventory_down": true}') \gset
SELECT :'result'::jsonb->>'status' AS status;
SELECT jsonb_pretty(:'result'::jsonb->'error') AS error;
SELECT line, step, status, attempt, failure, sqlstate, message FROM pg_temp.lines(:'result') WHERE step = 'reserve_stock';
SELECT count(*) FILTER (WHERE status IN ('pending', 'ready', 'waiting')) AS lines_left_open,
	   count(*) FILTER (WHERE step = 'confirmation' AND status = 'completed') AS confirmed
  FROM pg_temp.lines(:'result');
SELECT count(*) AS reservations FROM acceptance.reservations WHERE order_no = 'A-1003';

-- A SQL failure in a critical step: the order violates the table's check
-- (the input schema would have refused it; skipValidation lets it through).
CALL chainexec.chain_run('acceptance-order',
	'{"order_no": "A-1004", "customer": "Ada Lovelace", "qty": 0, "sku": "BOOK-42", "unit_price": 12.5, "inventory_down": false}',
	'{"skipValidation": true}') \gset
SELECT :'result'::jsonb->>'status' AS status;
SELECT jsonb_pretty(:'result'::jsonb->'error') AS error;
SELECT line, step, status FROM pg_temp.lines(:'result');
SELECT count(*) AS orders FROM acceptance.orders WHERE order_no = 'A-1004';
