#!/usr/bin/env bash
# test/integration/direct_rows.sh: a transition's rows, written by direct
# row access (src/engine/direct.c), change as the SQL statements they stand
# for would change them, with the executors running:
#  - a row trigger on the lines and one on the headers see every change
#    (pending -> ready -> completed, a retried attempt, each new context);
#  - a CHECK constraint added to the lines holds for the engine's writes:
#    a write that breaks it fails the transition with 23514, not a row
#    written around it;
#  - the tables' indexes and heaps pass amcheck (every index entry of every
#    row version the engine wrote, heapallindexed);
#  - the timing columns are consistent (duration_ms, first_started_at of a
#    retried line).
#
# chainexec-test: timeout=240
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CH=dr-$S
ORG=$(psql_q "SELECT gen_random_uuid()") || bail_out "the server does not answer"
export PGOPTIONS="-c chainexec.organization_id=$ORG"

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DROP TRIGGER IF EXISTS dr_lines_$S ON chainexec.universal_transaction_lines;
		DROP TRIGGER IF EXISTS dr_header_$S ON chainexec.universal_transactions;
		ALTER TABLE chainexec.universal_transaction_lines DROP CONSTRAINT IF EXISTS dr_check_$S;
		ALTER TABLE chainexec.universal_transaction_lines DROP CONSTRAINT IF EXISTS dr_fn_$S;
		DROP FUNCTION IF EXISTS public.dr_ok_$S(uuid, int, text);
		DROP TRIGGER IF EXISTS dr_stmt_$S ON chainexec.universal_transaction_lines;
		DROP TRIGGER IF EXISTS dr_trans_$S ON chainexec.universal_transactions;
		DROP FUNCTION IF EXISTS public.dr_stmt_$S() CASCADE;
		DROP FUNCTION IF EXISTS public.dr_trans_$S() CASCADE;
		DROP TABLE IF EXISTS public.dr_stmt_$S;
		ALTER TABLE chainexec.universal_transactions DROP COLUMN IF EXISTS line_number;
		DROP FUNCTION IF EXISTS public.dr_lines_$S() CASCADE;
		DROP FUNCTION IF EXISTS public.dr_header_$S() CASCADE;
		DROP TABLE IF EXISTS public.dr_seen_$S, public.dr_ctx_$S;
		DROP SEQUENCE IF EXISTS public.dr_seq_$S;
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE '$CH%';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE '$CH%';
	EOF
}
trap cleanup EXIT

plan 24

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql_q "CREATE EXTENSION IF NOT EXISTS amcheck" >/dev/null 2>&1 || bail_out "could not create the extension amcheck"

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "could not create the triggers"
	CREATE TABLE public.dr_seen_$S (execution uuid, line int, old_status text, new_status text, attempt int);
	CREATE TABLE public.dr_ctx_$S (execution uuid, keys int);
	CREATE SEQUENCE public.dr_seq_$S;
	GRANT USAGE ON SEQUENCE public.dr_seq_$S TO PUBLIC;
	CREATE FUNCTION public.dr_lines_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF NEW.organization_id = '$ORG' THEN
			INSERT INTO public.dr_seen_$S VALUES (NEW.transaction_id, NEW.line_number, OLD.status, NEW.status, NEW.attempt);
		END IF;
		RETURN NULL;
	END \$\$;
	CREATE FUNCTION public.dr_header_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF NEW.organization_id = '$ORG' AND NEW.context IS DISTINCT FROM OLD.context THEN
			INSERT INTO public.dr_ctx_$S
			SELECT NEW.id, count(*) FROM jsonb_object_keys(NEW.context);
		END IF;
		RETURN NULL;
	END \$\$;
	CREATE TRIGGER dr_lines_$S AFTER UPDATE ON chainexec.universal_transaction_lines
		FOR EACH ROW EXECUTE FUNCTION public.dr_lines_$S();
	CREATE TRIGGER dr_header_$S AFTER UPDATE ON chainexec.universal_transactions
		FOR EACH ROW EXECUTE FUNCTION public.dr_header_$S();
EOF

# a 5-step chain, each step setting one variable
psql_q "SELECT chainexec.chain_define(jsonb_build_object('id', '$CH', 'name', 'direct rows',
	'steps', (SELECT jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql',
											   'sql', format('SELECT %s AS v%s', i, i),
											   'outputVariables', jsonb_build_array('v' || i)) ORDER BY i)
			   FROM generate_series(1, 5) i)), true)" >/dev/null || bail_out "could not define the chain"
# step 2 fails once (division by zero), then is retried
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CH-retry\", \"name\": \"retry\", \"steps\": [
	{\"id\": 1, \"name\": \"a\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS a\", \"outputVariables\": [\"a\"]},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\",
	 \"sql\": \"SELECT 2 + 1 / (nextval(''public.dr_seq_$S'') - 1)::int - 1 AS b\",
	 \"outputVariables\": [\"b\"],
	 \"retryConfig\": {\"maxRetries\": 2, \"baseDelayMs\": 10, \"retryOnErrors\": [\"22012\"]}},
	{\"id\": 3, \"name\": \"c\", \"type\": \"sql\", \"sql\": \"SELECT 3 AS c\", \"outputVariables\": [\"c\"]}]}', true)" \
	>/dev/null || bail_out "could not define the retry chain"

ids=
for i in $(seq 1 20); do
	ids+="$(psql_q "SELECT chainexec.chain_execute('$CH', '{}')") " || bail_out "could not start execution $i"
done
RID=$(psql_q "SELECT chainexec.chain_execute('$CH-retry', '{}')") || bail_out "could not start the retry chain"
bad=0
for id in $ids $RID; do
	st=$(psql_q "SELECT chainexec.chain_wait('$id', 60000)->>'status'")
	[ "$st" = completed ] || { bad=$((bad + 1)); diag "execution $id: $st"; }
done
is "$bad" 0 "the 20 executions of the 5-step chain and the retried one completed"

is "$(psql_q "SELECT count(*) FROM public.dr_seen_$S s JOIN chainexec.universal_transactions t ON t.id = s.execution
	WHERE t.chain_id = '$CH' AND s.old_status IN ('ready', 'running') AND s.new_status = 'completed'")" 100 \
	"the lines' trigger saw each of the 100 steps complete once"
is "$(psql_q "SELECT count(*) FROM public.dr_seen_$S s JOIN chainexec.universal_transactions t ON t.id = s.execution
	WHERE t.chain_id = '$CH' AND s.old_status = 'pending' AND s.new_status = 'ready'")" 80 \
	"the lines' trigger saw steps 2 to 5 of each execution made ready (80)"
is "$(psql_q "SELECT string_agg(keys::text, ',' ORDER BY keys) FROM public.dr_ctx_$S c
	JOIN chainexec.universal_transactions t ON t.id = c.execution WHERE t.chain_id = '$CH'
	GROUP BY c.execution LIMIT 1")" "1,2,3,4,5" \
	"the headers' trigger saw each new context, one variable more at each step"
is "$(psql_q "SELECT string_agg(format('%s>%s:%s', old_status, new_status, attempt), ' ' ORDER BY attempt, old_status DESC)
	FROM public.dr_seen_$S WHERE execution = '$RID' AND line = 2")" "pending>ready:0 ready>ready:1 ready>completed:2" \
	"the lines' trigger saw the retried line made ready, its failed attempt rescheduled, its second attempt complete"
is "$(psql_q "SELECT attempt || ':' || (first_started_at < started_at) || ':' || (duration_ms >= 0)
	|| ':' || (finished_at >= started_at) FROM chainexec.universal_transaction_lines
	WHERE transaction_id = '$RID' AND line_number = 2")" "2:true:true:true" \
	"the retried line: attempt 2, first started before its last start, a duration, finished after it started"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines l
	JOIN chainexec.universal_transactions t ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$CH' AND l.status = 'completed' AND l.first_started_at = l.started_at
	  AND l.duration_ms >= 0 AND l.finished_at >= l.started_at AND l.not_before <= l.started_at")" 100 \
	"each of the 100 lines: started once, its due time before its start, a duration, finished after it started"

# Many executions queued by one statement, then moved on by the executors:
# every new line and every line made ready has its entry in the partial
# indexes (their predicates are prepared once per backend; a predicate that
# read freed memory left ready lines out of the dispatch index, and they
# were never run).
out=$(psql -X -A -t -q 2>&1 <<-EOF
	BEGIN;
	SELECT count(*) FROM (SELECT chainexec.chain_execute('$CH', '{"batch": true}') FROM generate_series(1, 300)) s;
	SELECT count(*) FROM pg_catalog.pg_index i, LATERAL bt_index_check(i.indexrelid, true)
	 WHERE i.indrelid = 'chainexec.universal_transaction_lines'::regclass;
	COMMIT;
EOF
)
is "$(tr '\n' ' ' <<<"$out")" "300 5 " "300 executions queued in one transaction: their lines are in every index of the lines (amcheck, in that transaction)"
left=
for i in $(seq 1 600); do
	left=$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CH' AND input ? 'batch' AND status <> 'completed'")
	[ "$left" = 0 ] && break
	sleep 0.2
done
is "$left" 0 "and the executors completed all 300"

# amcheck: every index entry and heap tuple the engine's writes left
out=$(psql -X -A -t -q 2>&1 <<-EOF
	SELECT c.relname, bt_index_check(c.oid, true)
	  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
	 WHERE i.indrelid IN ('chainexec.universal_transaction_lines'::regclass,
						  'chainexec.universal_transactions'::regclass);
EOF
)
if [ $? -eq 0 ] && ! grep -qi error <<<"$out"; then
	ok "bt_index_check with heapallindexed passes on every index of the lines and the headers"
else
	not_ok "bt_index_check with heapallindexed passes on every index of the lines and the headers"
	diag "$out"
fi
is "$(psql_q "SELECT count(*) FROM verify_heapam('chainexec.universal_transaction_lines')") $(psql_q "SELECT count(*) FROM verify_heapam('chainexec.universal_transactions')")" \
	"0 0" "verify_heapam finds no corruption in the lines and the headers"

# a CHECK constraint on the lines holds for the engine's writes
psql_q "ALTER TABLE chainexec.universal_transaction_lines ADD CONSTRAINT dr_check_$S
	CHECK (organization_id <> '$ORG' OR status <> 'completed' OR step_id <> 3) NOT VALID" >/dev/null ||
	bail_out "could not add the constraint"
XID=$(psql_q "SELECT chainexec.chain_execute('$CH', '{}')") || bail_out "could not start the execution"
st=$(psql_q "SELECT chainexec.chain_wait('$XID', 60000)->>'status'")
psql_q "ALTER TABLE chainexec.universal_transaction_lines DROP CONSTRAINT dr_check_$S" >/dev/null
is "$st" failed "an execution whose step 3 cannot be written completed fails"
is "$(psql_q "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$XID' AND line_number = 3")" \
	failed "its line 3 is failed, not completed"
like "$(psql_q "SELECT error::text FROM chainexec.universal_transactions WHERE id = '$XID'")" \
	"23514|dr_check_$S" "its error names the constraint violation"
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transaction_lines WHERE transaction_id = '$XID' AND line_number > 3 AND status NOT IN ('pending', 'cancelled', 'skipped')")" \
	0 "and no line after it ran"

# outside the engine's own transactions the statements run: a control call
# in a READ ONLY transaction is refused as before, one at REPEATABLE READ works
psql_q "SELECT chainexec.chain_define('{\"id\": \"$CH-wait\", \"name\": \"wait\", \"steps\": [
	{\"id\": 1, \"name\": \"w\", \"type\": \"wait\", \"waitMs\": 60000},
	{\"id\": 2, \"name\": \"b\", \"type\": \"sql\", \"sql\": \"SELECT 1\"}]}', true)" >/dev/null ||
	bail_out "could not define the wait chain"
WID=$(psql_q "SELECT chainexec.chain_execute('$CH-wait', '{}')") || bail_out "could not start the wait chain"
sleep 1
like "$(psql -X -A -t -q -c "BEGIN READ ONLY" -c "SELECT chainexec.chain_cancel('$WID')" 2>&1)" \
	"read-only transaction" "chain_cancel in a READ ONLY transaction is refused (a read-only transaction)"
is "$(psql -X -A -t -q -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT chainexec.chain_cancel('$WID')" -c "COMMIT" 2>&1 | head -n 1)$(psql_q "SELECT status FROM chainexec.universal_transactions WHERE id = '$WID'")" \
	"tcancelled" "chain_cancel at REPEATABLE READ cancels the execution"

# a constraint's function replaced, then the constraint dropped: the writes
# follow each change (the prepared constraints are made again)
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-SQL || bail_out "could not add the function's constraint"
	CREATE FUNCTION public.dr_ok_$S(org uuid, step int, status text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
	ALTER TABLE chainexec.universal_transaction_lines ADD CONSTRAINT dr_fn_$S
		CHECK (public.dr_ok_$S(organization_id, step_id, status)) NOT VALID;
SQL
run_status()
{
	local id
	id=$(psql_q "SELECT chainexec.chain_execute('$CH', '{}')") || return 1
	psql_q "SELECT chainexec.chain_wait('$id', 60000)->>'status'"
}
is "$(run_status)" completed "with a constraint whose function accepts every line, an execution completes"
psql_q "CREATE OR REPLACE FUNCTION public.dr_ok_$S(org uuid, step int, status text) RETURNS boolean LANGUAGE sql
	IMMUTABLE AS \$\$SELECT org <> '$ORG' OR step <> 2 OR status <> 'completed'\$\$" >/dev/null || bail_out "could not replace the function"
is "$(run_status)" failed "the function replaced to refuse step 2 completed: the next execution fails"
psql_q "ALTER TABLE chainexec.universal_transaction_lines DROP CONSTRAINT dr_fn_$S" >/dev/null ||
	bail_out "could not drop the constraint"
is "$(run_status)" completed "the constraint dropped: the next execution completes"

# what a DBA may do to the tables: the engine's writes stay those of the
# statements (with a statement trigger or a transition table they run)
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-SQL || bail_out "could not add the statement and transition triggers"
	CREATE TABLE public.dr_stmt_$S (n int);
	CREATE FUNCTION public.dr_stmt_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN INSERT INTO public.dr_stmt_$S VALUES (1); RETURN NULL; END \$\$;
	CREATE FUNCTION public.dr_trans_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN INSERT INTO public.dr_stmt_$S SELECT count(*) FROM nt; RETURN NULL; END \$\$;
	CREATE TRIGGER dr_stmt_$S AFTER UPDATE ON chainexec.universal_transaction_lines
		FOR EACH STATEMENT EXECUTE FUNCTION public.dr_stmt_$S();
	CREATE TRIGGER dr_trans_$S AFTER UPDATE ON chainexec.universal_transactions
		REFERENCING NEW TABLE AS nt FOR EACH ROW EXECUTE FUNCTION public.dr_trans_$S();
SQL
st=$(run_status)
n=$(psql_q "SELECT count(*) FROM public.dr_stmt_$S")
psql -X -q >/dev/null 2>&1 <<-SQL
	DROP TRIGGER dr_stmt_$S ON chainexec.universal_transaction_lines;
	DROP TRIGGER dr_trans_$S ON chainexec.universal_transactions;
SQL
is "$st" completed "with a statement trigger on the lines and a transition-table trigger on the headers, an execution completes"
check "and the triggers fired (rows they wrote: $n)" test "$n" -ge 5

# the steps index and the dispatch index made again on other columns, and a
# line_number column added to the headers
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-SQL || bail_out "could not change the index"
	DROP INDEX chainexec.universal_transaction_lines_steps;
	CREATE INDEX universal_transaction_lines_steps ON chainexec.universal_transaction_lines
		(transaction_id, organization_id, line_number) WHERE line_type <> 'iteration';
	DROP INDEX chainexec.universal_transaction_lines_ready;
	CREATE INDEX universal_transaction_lines_ready ON chainexec.universal_transaction_lines
		(priority DESC, not_before, organization_id) WHERE status = 'ready' AND waits_for IS NULL;
	ALTER TABLE chainexec.universal_transactions ADD COLUMN line_number int;
SQL
id=$(psql_q "SELECT chainexec.chain_execute('$CH', '{}')")
st=$(psql_q "SELECT chainexec.chain_wait('$id', 60000)->>'status'")
out=$(psql_q "SELECT output::text FROM chainexec.universal_transactions WHERE id = '$id'")
psql -X -q >/dev/null 2>&1 <<-SQL
	ALTER TABLE chainexec.universal_transactions DROP COLUMN line_number;
	DROP INDEX chainexec.universal_transaction_lines_steps;
	CREATE INDEX universal_transaction_lines_steps ON chainexec.universal_transaction_lines
		(organization_id, transaction_id, line_number) WHERE line_type <> 'iteration';
	DROP INDEX chainexec.universal_transaction_lines_ready;
	CREATE INDEX universal_transaction_lines_ready ON chainexec.universal_transaction_lines
		(organization_id, priority DESC, not_before) WHERE status = 'ready' AND waits_for IS NULL;
SQL
is "$st" completed "with the steps and dispatch indexes on other columns and a line_number column in the headers, an execution completes"
like "$out" '"v5": 5' "and ran its five steps"
