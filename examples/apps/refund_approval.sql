-- examples/apps/refund_approval.sql: the chain that the example
-- applications (follow_chain.py, follow_chain.js) start and follow.
--
--   psql -d mydb -f examples/apps/refund_approval.sql
--
-- A refund is checked, waits for a person to approve it (an external step:
-- the application completes it), and is then booked.
SELECT chainexec.chain_define($${
  "id": "refund-approval",
  "name": "Refund approval",
  "inputSchema": {"type": "object", "required": ["customer", "amount"],
                  "properties": {"customer": {"type": "string"},
                                 "amount": {"type": "number", "minimum": 0}}},
  "steps": [
    {"id": 1, "name": "check_refund", "type": "sql",
     "sql": "SELECT {amount}::numeric <= 500 AS within_limit",
     "outputVariables": ["within_limit"]},
    {"id": 2, "name": "approve_refund", "type": "external",
     "inputTemplate": "Refund {amount} EUR to {customer}?",
     "outputVariables": ["approved", "approved_by"], "timeoutMs": 3600000},
    {"id": 3, "name": "book_refund", "type": "sql",
     "conditionalExecution": "{approved} == true",
     "sql": "SELECT {amount}::numeric AS refunded",
     "outputVariables": ["refunded"]}
  ]
}$$, true) AS version;
