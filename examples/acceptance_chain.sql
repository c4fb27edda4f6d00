--
-- examples/acceptance_chain.sql
--	  The acceptance chain "acceptance-order": ten steps mixing sql,
--	  function and template steps, with a parallel branch, a conditional
--	  skip, a retried step and a fallback.  Defines its tables, handlers and
--	  the chain in schema "acceptance"; running it again changes nothing
--	  (a new version is published only when the definition changed).
--
--	  psql -f examples/acceptance_chain.sql
--	  CALL chainexec.chain_run('acceptance-order',
--		'{"order_no": "A-1001", "customer": "Ada Lovelace", "qty": 3,
--		  "sku": "BOOK-42", "unit_price": 12.5}');
--
--	  Input: order_no, customer, qty (1..1000), sku, unit_price; optional
--	  coupon (e.g. "SAVE10": 10% off) and inventory_down (true makes the
--	  inventory service fail for good: the execution then fails).
--
--	  The steps:
--	   1 validate          function  tier from the quantity
--	   2 create_order      sql       upsert the order row
--	   3 price             sql       subtotal
--	   4 apply_coupon      function  only when a coupon is given (else skipped)
--	   5 reserve_stock     function  parallel branch after step 2; the inventory
--	                                 service times out twice (api_timeout) and
--	                                 is retried
--	   6 notify_warehouse  function  parallel branch (reads order_ref); the
--	                                 warehouse API is down: the fallback
--	                                 queue_manual_pick (template) runs instead
--	   7 total             sql       after price and apply_coupon
--	   8 confirmation      template  after the branches and the total
--	   9 summary           template  several variables from a JSON text
--	  10 finalize          sql       marks the order confirmed
--
CREATE EXTENSION IF NOT EXISTS chainexec;
CREATE SCHEMA IF NOT EXISTS acceptance;

CREATE TABLE IF NOT EXISTS acceptance.orders (
	order_no	text PRIMARY KEY,
	customer	text NOT NULL,
	qty			int NOT NULL CHECK (qty > 0),
	subtotal	numeric,
	total		numeric,
	status		text NOT NULL DEFAULT 'new'
);

CREATE TABLE IF NOT EXISTS acceptance.reservations (
	order_no	text PRIMARY KEY,
	sku			text NOT NULL,
	qty			int NOT NULL
);

/* Step 1: the customer tier (gold from 10 items). */
CREATE OR REPLACE FUNCTION acceptance.validate_order(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v jsonb := arg->'variables';
BEGIN
	IF coalesce(v->>'customer', '') = '' THEN
		PERFORM chainexec.raise_failure('invalid_order', 'the order has no customer');
	END IF;
	RETURN jsonb_build_object('tier', CASE WHEN (v->>'qty')::int >= 10 THEN 'gold' ELSE 'standard' END);
END
$$;

/* Step 4: the coupon's discount. */
CREATE OR REPLACE FUNCTION acceptance.apply_coupon(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v jsonb := arg->'variables';
BEGIN
	IF v->>'coupon' <> 'SAVE10' THEN
		PERFORM chainexec.raise_failure('invalid_coupon', format('unknown coupon "%s"', v->>'coupon'));
	END IF;
	RETURN jsonb_build_object('discount', round((v->>'subtotal')::numeric * 0.10, 2));
END
$$;

/*
 * Step 5: the inventory service, which times out on the first two attempts
 * (and on every attempt when the input says inventory_down).
 */
CREATE OR REPLACE FUNCTION acceptance.reserve_stock(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	v jsonb := arg->'variables';
	attempt int := (arg->'step'->>'attempt')::int;
BEGIN
	IF attempt < 3 OR coalesce((v->>'inventory_down')::boolean, false) THEN
		PERFORM chainexec.raise_failure('api_timeout',
										format('inventory service timed out on attempt %s', attempt));
	END IF;
	INSERT INTO acceptance.reservations (order_no, sku, qty)
	VALUES (v->>'order_no', v->>'sku', (v->>'qty')::int)
	ON CONFLICT (order_no) DO UPDATE SET sku = EXCLUDED.sku, qty = EXCLUDED.qty;
	RETURN jsonb_build_object('reservation', 'RSV-' || (v->>'order_no'));
END
$$;

/* Step 6: the warehouse API, which is down. */
CREATE OR REPLACE FUNCTION acceptance.notify_warehouse(arg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM chainexec.raise_failure('service_unavailable', 'the warehouse API is down');
	RETURN '{}';
END
$$;

SELECT chainexec.chain_register_handler('acceptance.validate_order', 'acceptance.validate_order(jsonb)');
SELECT chainexec.chain_register_handler('acceptance.apply_coupon', 'acceptance.apply_coupon(jsonb)');
SELECT chainexec.chain_register_handler('acceptance.reserve_stock', 'acceptance.reserve_stock(jsonb)');
SELECT chainexec.chain_register_handler('acceptance.notify_warehouse', 'acceptance.notify_warehouse(jsonb)');

CREATE OR REPLACE FUNCTION acceptance.definition()
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $chain$
SELECT $${
  "id": "acceptance-order",
  "name": "Acceptance: order processing",
  "description": "Ten steps: sql, function and template steps, a parallel branch, a conditional skip, a retried step and a fallback.",
  "version": "1.0",
  "inputSchema": {
    "type": "object",
    "required": ["order_no", "customer", "qty", "sku", "unit_price"],
    "properties": {
      "order_no": {"type": "string", "minLength": 1, "maxLength": 32},
      "customer": {"type": "string", "minLength": 1},
      "qty": {"type": "integer", "minimum": 1, "maximum": 1000},
      "sku": {"type": "string", "minLength": 1},
      "unit_price": {"type": "number", "minimum": 0},
      "coupon": {"type": "string"},
      "inventory_down": {"type": "boolean", "default": false}
    }
  },
  "steps": [
    {"id": 1, "name": "validate", "type": "function", "instructionSet": "acceptance.validate_order",
     "inputVariables": ["order_no", "customer", "qty"], "outputVariables": ["tier"]},
    {"id": 2, "name": "create_order", "type": "sql",
     "sql": "INSERT INTO acceptance.orders (order_no, customer, qty) VALUES ({order_no}, {customer}, {qty}::int) ON CONFLICT (order_no) DO UPDATE SET customer = EXCLUDED.customer, qty = EXCLUDED.qty, subtotal = NULL, total = NULL, status = 'new' RETURNING 'ORD-' || order_no AS order_ref",
     "inputVariables": ["order_no", "customer", "qty"], "outputVariables": ["order_ref"]},
    {"id": 3, "name": "price", "type": "sql",
     "sql": "SELECT round({qty}::int * {unit_price}::numeric, 2) AS subtotal",
     "outputVariables": ["subtotal"]},
    {"id": 4, "name": "apply_coupon", "type": "function", "instructionSet": "acceptance.apply_coupon",
     "conditionalExecution": "{coupon} != null",
     "inputVariables": ["coupon", "subtotal"], "outputVariables": ["discount"]},
    {"id": 5, "name": "reserve_stock", "type": "function", "instructionSet": "acceptance.reserve_stock",
     "parallelExecution": true, "dependsOn": [2],
     "inputVariables": ["order_no", "sku", "qty", "inventory_down"], "outputVariables": ["reservation"],
     "retryConfig": {"maxRetries": 3, "backoffStrategy": "fixed", "baseDelayMs": 10, "retryOnErrors": ["api_timeout"]}},
    {"id": 6, "name": "notify_warehouse", "type": "function", "instructionSet": "acceptance.notify_warehouse",
     "parallelExecution": true, "inputVariables": ["order_ref"], "outputVariables": ["warehouse_ref"],
     "onFailure": "fallback",
     "fallbackStep": {"id": 60, "name": "queue_manual_pick", "type": "template",
                      "template": "manual pick for {order_ref}: {qty} x {sku}", "outputVariables": ["warehouse_ref"]}},
    {"id": 7, "name": "total", "type": "sql", "dependsOn": [3, 4],
     "sql": "UPDATE acceptance.orders SET subtotal = {subtotal}::numeric, total = {subtotal}::numeric - {discount|0}::numeric WHERE order_no = {order_no} RETURNING total",
     "inputVariables": ["subtotal"], "outputVariables": ["total"]},
    {"id": 8, "name": "confirmation", "type": "template", "dependsOn": [5, 6, 7],
     "template": "Dear {customer}, order {order_ref} for {qty} x {sku} totals {total} EUR{discount ? ' after your coupon' : ''}. {tier == 'gold' ? 'Thank you for being a gold customer!' : 'Thank you for your order.'}",
     "outputVariables": ["confirmation"]},
    {"id": 9, "name": "summary", "type": "template",
     "template": "{{\"final_status\": \"confirmed\", \"item_count\": {qty}, \"reserved_as\": \"{reservation}\"}}",
     "outputVariables": ["final_status", "item_count"]},
    {"id": 10, "name": "finalize", "type": "sql",
     "sql": "UPDATE acceptance.orders SET status = {final_status} WHERE order_no = {order_no} RETURNING status AS order_status",
     "inputVariables": ["final_status"], "outputVariables": ["order_status"]}
  ]
}$$::jsonb
$chain$;

/* Define and publish the chain unless its active version is this one. */
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM chainexec.chains
					WHERE organization_id = chainexec.current_organization()
					  AND chain_id = 'acceptance-order' AND status = 'active'
					  AND definition = acceptance.definition()) THEN
		PERFORM chainexec.chain_define(acceptance.definition(), true);
	END IF;
END
$$;
