#!/usr/bin/env bash
#
# The README's tour: every ```sql block between <!-- tour:start --> and
# <!-- tour:end --> runs, in order, in one psql session against the test
# cluster (with the background workers), and the results the README shows in
# its comments are checked.
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

plan 11

tour=$(mktemp)
out=$(mktemp)
cleanup()
{
	psql -X -q >/dev/null 2>&1 <<'SQL'
SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname IN ('nightly-restock', 'chainexec-retention');
DELETE FROM chainexec.schedules WHERE job_name IN ('nightly-restock', 'chainexec-retention');
DELETE FROM chainexec.universal_transactions WHERE chain_id IN ('order-fulfilment', 'expense-approval');
SET chainexec.internal = on;
DELETE FROM chainexec.chains WHERE chain_id IN ('order-fulfilment', 'expense-approval');
DELETE FROM chainexec.handlers WHERE name = 'shop_price';
DROP TABLE IF EXISTS shop_orders, shop_reservations;
DROP FUNCTION IF EXISTS shop_price(jsonb);
SQL
	rm -f "$tour" "$out"
}
trap cleanup EXIT
cleanup; tour=$(mktemp); out=$(mktemp)

awk '/<!-- tour:start -->/ {on = 1} /<!-- tour:end -->/ {on = 0}
	 on && /^```sql$/ {inblock = 1; next}
	 inblock && /^```$/ {inblock = 0; print ""; next}
	 inblock {print}' "$CE_REPO/README.md" >"$tour"

blocks=$(awk '/<!-- tour:start -->/ {on = 1} /<!-- tour:end -->/ {on = 0} on && /^```sql$/' "$CE_REPO/README.md" | wc -l)
if [ "$blocks" -ge 10 ]; then ok "the tour has $blocks SQL blocks"; else not_ok "the tour has SQL blocks" "found $blocks"; fi

if psql -X -At -v ON_ERROR_STOP=1 -f "$tour" >"$out" 2>&1; then
	ok "every SQL block of the tour runs without error"
else
	not_ok "every SQL block of the tour runs without error" "$(tail -20 "$out")"
fi

grep -q '"status": "completed"' "$out" && ok "chain_run completes the order" || not_ok "chain_run completes the order" "$(head -40 "$out")"
grep -q '"message": "Dear Ada, order [0-9]* (3 items) costs 37.5."' "$out" \
	&& ok "the confirmation template saw the order and the price" \
	|| not_ok "the confirmation template saw the order and the price" "$(grep -o '"message": "[^"]*"' "$out" | head -3)"
grep -qx 't' "$out" && ok "the idempotency key returns the same execution" || not_ok "the idempotency key returns the same execution"
grep -qx 'waiting' "$out" && ok "the external step waits" || not_ok "the external step waits"
grep -qx 'Approve 120 EUR for Lin?' "$out" && ok "the app reads the external step's rendered input from step_runs" \
	|| not_ok "the app reads the external step's rendered input from step_runs"
grep -qxE 'chainexec_[0-9a-f]{32}' "$out" && ok "chain_listen() returns the name of an event channel" \
	|| not_ok "chain_listen() returns the name of an event channel" "$(grep chainexec_ "$out" | head -3)"
grep -qx '120' "$out" && ok "the approved expense is booked" || not_ok "the approved expense is booked"
grep -qx 'cancelled' "$out" && ok "the scheduled execution is cancelled" || not_ok "the scheduled execution is cancelled"
grep -qx 'compensated' "$out" && ok "the rollback compensates the completed order" || not_ok "the rollback compensates the completed order" "$(tail -30 "$out")"

done_testing; exit $?
