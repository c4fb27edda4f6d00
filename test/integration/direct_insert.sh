#!/usr/bin/env bash
# test/integration/direct_insert.sh: a new execution's step lines, inserted
# by direct row access (src/engine/direct_rows.c, ce_direct_insert_lines),
# are the rows the INSERT statement they stand for would write, with what
# a DBA added to the lines table:
#  - every column as the statement writes it (the statement still runs in a
#    REPEATABLE READ transaction, where direct access does not apply);
#  - column defaults, an identity column and a stored generated column that
#    a DBA added are filled in;
#  - BEFORE and AFTER row triggers on INSERT fire for every line, and a
#    statement trigger on INSERT fires once (the statement runs then);
#  - a CHECK constraint (23514) and a NOT NULL column without a default
#    (23502) refuse the execution, with nothing of it left;
#  - the lines' foreign key to their header is still checked when the header
#    is not the transaction's own: a header trigger that deletes the new
#    header makes chain_execute fail with 23503, not leave orphan lines;
#  - the executions run to completion, and amcheck passes on the lines.
#
# chainexec-test: timeout=180
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
CH=di-$S
LINES=chainexec.universal_transaction_lines
ORG=$(psql_q "SELECT gen_random_uuid()") || bail_out "the server does not answer"
export PGOPTIONS="-c chainexec.organization_id=$ORG"

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DROP TRIGGER IF EXISTS di_before_$S ON $LINES;
		DROP TRIGGER IF EXISTS di_after_$S ON $LINES;
		DROP TRIGGER IF EXISTS di_stmt_$S ON $LINES;
		DROP TRIGGER IF EXISTS di_gone_$S ON chainexec.universal_transactions;
		DROP TRIGGER IF EXISTS di_redirect_$S ON $LINES;
		DROP FUNCTION IF EXISTS public.di_redirect_$S() CASCADE;
		ALTER TABLE $LINES DROP COLUMN IF EXISTS di_dom_$S;
		DROP DOMAIN IF EXISTS public.di_dom_$S;
		ALTER TABLE $LINES DROP CONSTRAINT IF EXISTS di_check_$S;
		ALTER TABLE $LINES DROP COLUMN IF EXISTS di_note_$S, DROP COLUMN IF EXISTS di_ident_$S,
			DROP COLUMN IF EXISTS di_gen_$S, DROP COLUMN IF EXISTS di_must_$S;
		DROP FUNCTION IF EXISTS public.di_before_$S() CASCADE;
		DROP FUNCTION IF EXISTS public.di_after_$S() CASCADE;
		DROP FUNCTION IF EXISTS public.di_stmt_$S() CASCADE;
		DROP FUNCTION IF EXISTS public.di_gone_$S() CASCADE;
		DROP TABLE IF EXISTS public.di_seen_$S;
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE '$CH%';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE '$CH%';
	EOF
}
trap cleanup EXIT

plan 15

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql_q "CREATE EXTENSION IF NOT EXISTS amcheck" >/dev/null 2>&1 || bail_out "could not create the extension amcheck"

# a 6-step chain
psql_q "SELECT chainexec.chain_define(jsonb_build_object('id', '$CH', 'name', 'direct insert',
	'steps', (SELECT jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql',
		'sql', format('SELECT %s AS v%s', i, i), 'outputVariables', jsonb_build_array('v' || i)) ORDER BY i)
		FROM generate_series(1, 6) i)), true)" >/dev/null || bail_out "could not define the chain"
LATER="{\"runAt\": \"2100-01-01T00:00:00Z\", \"priority\": 7}"

# 1: every column as the statement writes it
D=$(psql_q "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')") || bail_out "could not start an execution"
T=$(psql -X -A -t -q -v ON_ERROR_STOP=1 2>/dev/null <<-EOF
	BEGIN ISOLATION LEVEL REPEATABLE READ;
	SELECT chainexec.chain_execute('$CH', '{}', '$LATER');
	COMMIT;
EOF
) || bail_out "could not start an execution in a REPEATABLE READ transaction"
cmp="SELECT line_number, to_jsonb(l) - 'transaction_id' AS r FROM $LINES l WHERE organization_id = '$ORG' AND transaction_id ="
is "$(psql_q "SELECT count(*) || ':' || (SELECT count(*) FROM $LINES WHERE transaction_id = '$D') || ':'
	|| (SELECT string_agg(status, ',' ORDER BY line_number) FROM $LINES WHERE transaction_id = '$D')
	FROM (($cmp '$D' EXCEPT $cmp '$T') UNION ALL ($cmp '$T' EXCEPT $cmp '$D')) x")" \
	"0:6:ready,pending,pending,pending,pending,pending" \
	"the 6 lines written directly equal, column by column, those the INSERT statement wrote"

# 2: defaults, identity and stored generated columns a DBA added
psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-EOF || bail_out "could not add the columns"
	ALTER TABLE $LINES ADD COLUMN di_note_$S text DEFAULT 'noted',
		ADD COLUMN di_ident_$S bigint GENERATED ALWAYS AS IDENTITY,
		ADD COLUMN di_gen_$S int GENERATED ALWAYS AS (step_id * 10) STORED;
EOF
D=$(psql_q "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')") || bail_out "could not start an execution"
is "$(psql_q "SELECT string_agg(di_note_$S || ':' || di_gen_$S, ',' ORDER BY line_number)
	|| ' ' || (count(DISTINCT di_ident_$S) = 6 AND min(di_ident_$S) > 0) FROM $LINES WHERE transaction_id = '$D'")" \
	"noted:10,noted:20,noted:30,noted:40,noted:50,noted:60 true" \
	"a column default, an identity column and a stored generated column are filled in on each line"
psql_q "ALTER TABLE $LINES DROP COLUMN di_note_$S, DROP COLUMN di_ident_$S, DROP COLUMN di_gen_$S" >/dev/null

# 3: row triggers, and a statement trigger
psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-EOF || bail_out "could not create the triggers"
	CREATE TABLE public.di_seen_$S (execution uuid, line int, kind text);
	CREATE FUNCTION public.di_before_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF NEW.organization_id = '$ORG' THEN
			NEW.input := jsonb_build_object('before', NEW.line_number);
		END IF;
		RETURN NEW;
	END \$\$;
	CREATE FUNCTION public.di_after_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF NEW.organization_id = '$ORG' THEN
			INSERT INTO public.di_seen_$S VALUES (NEW.transaction_id, NEW.line_number, 'row ' || NEW.status);
		END IF;
		RETURN NULL;
	END \$\$;
	CREATE FUNCTION public.di_stmt_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		INSERT INTO public.di_seen_$S VALUES (NULL, NULL, 'statement');
		RETURN NULL;
	END \$\$;
	CREATE TRIGGER di_before_$S BEFORE INSERT ON $LINES FOR EACH ROW EXECUTE FUNCTION public.di_before_$S();
	CREATE TRIGGER di_after_$S AFTER INSERT ON $LINES FOR EACH ROW EXECUTE FUNCTION public.di_after_$S();
EOF
D=$(psql_q "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')") || bail_out "could not start an execution"
is "$(psql_q "SELECT string_agg(kind, ',' ORDER BY line) FROM public.di_seen_$S WHERE execution = '$D'")" \
	"row ready,row pending,row pending,row pending,row pending,row pending" \
	"an AFTER INSERT row trigger on the lines saw each of the 6 lines"
is "$(psql_q "SELECT string_agg(input->>'before', ',' ORDER BY line_number) FROM $LINES WHERE transaction_id = '$D'")" \
	"1,2,3,4,5,6" "a BEFORE INSERT row trigger's change of each line is what was written"
psql_q "CREATE TRIGGER di_stmt_$S AFTER INSERT ON $LINES FOR EACH STATEMENT EXECUTE FUNCTION public.di_stmt_$S()" \
	>/dev/null || bail_out "could not create the statement trigger"
D=$(psql_q "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')") || bail_out "could not start an execution"
is "$(psql_q "SELECT count(*) FILTER (WHERE kind = 'statement') || ':' || count(*) FILTER (WHERE execution = '$D')
	FROM public.di_seen_$S")" "1:6" \
	"with a statement trigger on INSERT, the statement runs: the trigger fired once, the row trigger 6 times"
psql_q "DROP TRIGGER di_before_$S ON $LINES; DROP TRIGGER di_after_$S ON $LINES; DROP TRIGGER di_stmt_$S ON $LINES" \
	>/dev/null

# 4: constraints refuse the execution, with nothing left of it
n0=$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CH'")
psql_q "ALTER TABLE $LINES ADD CONSTRAINT di_check_$S CHECK (organization_id <> '$ORG' OR step_name <> 's4') NOT VALID" \
	>/dev/null || bail_out "could not add the constraint"
out=$(psql -X -A -t -q -c "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')" 2>&1)
like "$out" "violates check constraint \"di_check_$S\"" "a CHECK constraint on the lines refuses the execution"
psql_q "ALTER TABLE $LINES DROP CONSTRAINT di_check_$S" >/dev/null
psql_q "ALTER TABLE $LINES ADD COLUMN di_must_$S int NOT NULL DEFAULT 1" >/dev/null &&
	psql_q "ALTER TABLE $LINES ALTER COLUMN di_must_$S DROP DEFAULT" >/dev/null || bail_out "could not add the column"
out=$(psql -X -A -t -q -c "\\set VERBOSITY verbose" -c "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')" 2>&1)
like "$out" "23502" "a NOT NULL column without a default refuses the execution (23502)"
psql_q "ALTER TABLE $LINES DROP COLUMN di_must_$S" >/dev/null
is "$(psql_q "SELECT count(*) FROM chainexec.universal_transactions WHERE chain_id = '$CH'")" "$n0" \
	"the refused executions left no header"

# 5: the foreign key is checked when the header is not the transaction's own
psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-EOF || bail_out "could not create the header trigger"
	CREATE FUNCTION public.di_gone_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF NEW.organization_id = '$ORG' THEN
			DELETE FROM chainexec.universal_transactions WHERE organization_id = NEW.organization_id AND id = NEW.id;
		END IF;
		RETURN NULL;
	END \$\$;
	CREATE TRIGGER di_gone_$S AFTER INSERT ON chainexec.universal_transactions
		FOR EACH ROW EXECUTE FUNCTION public.di_gone_$S();
EOF
out=$(psql -X -A -t -q -c "\\set VERBOSITY verbose" -c "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')" 2>&1)
like "$out" "23503" "a header deleted by a trigger before its lines: the foreign key refuses the lines (23503)"
psql_q "DROP TRIGGER di_gone_$S ON chainexec.universal_transactions" >/dev/null
is "$(psql_q "SELECT count(*) FROM $LINES l WHERE organization_id = '$ORG' AND NOT EXISTS
	(SELECT FROM chainexec.universal_transactions t WHERE t.organization_id = l.organization_id AND t.id = l.transaction_id)")" \
	0 "no line without its header"

# a BEFORE INSERT trigger that gives a line another execution's id: the
# foreign key is checked for every line then (the header check came first)
psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-EOF || bail_out "could not create the redirecting trigger"
	CREATE FUNCTION public.di_redirect_$S() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF NEW.organization_id = '$ORG' AND NEW.step_name = 's2' THEN
			NEW.transaction_id := gen_random_uuid();
		END IF;
		RETURN NEW;
	END \$\$;
	CREATE TRIGGER di_redirect_$S BEFORE INSERT ON $LINES FOR EACH ROW EXECUTE FUNCTION public.di_redirect_$S();
EOF
out=$(psql -X -A -t -q -c "\\set VERBOSITY verbose" -c "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')" 2>&1)
psql_q "DROP TRIGGER di_redirect_$S ON $LINES" >/dev/null
like "$out" "23503" "a BEFORE INSERT trigger that moves a line to a header that does not exist: the foreign key refuses it (23503)"

# a domain column without a default: null, checked against the domain
psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-EOF || bail_out "could not add the domain column"
	CREATE DOMAIN public.di_dom_$S AS int CHECK (VALUE IS NOT NULL);
	ALTER TABLE $LINES ADD COLUMN di_dom_$S public.di_dom_$S DEFAULT 1;
	ALTER TABLE $LINES ALTER COLUMN di_dom_$S DROP DEFAULT;
EOF
out=$(psql -X -A -t -q -c "\\set VERBOSITY verbose" -c "SELECT chainexec.chain_execute('$CH', '{}', '$LATER')" 2>&1)
psql_q "ALTER TABLE $LINES DROP COLUMN di_dom_$S" >/dev/null
like "$out" "23514" "a domain column with a CHECK and no default: the null each line gets is checked against the domain (23514)"

# 6: executions started so run to completion
ids=
for i in $(seq 1 10); do
	ids+="$(psql_q "SELECT chainexec.chain_execute('$CH', '{}')") " || bail_out "could not start execution $i"
done
bad=0
for id in $ids; do
	st=$(psql_q "SELECT chainexec.chain_wait('$id', 60000)->>'status'")
	[ "$st" = completed ] || { bad=$((bad + 1)); diag "execution $id: $st"; }
done
is "$bad" 0 "10 executions started with their lines inserted directly completed"
is "$(psql_q "SELECT count(*) FROM $LINES l JOIN chainexec.universal_transactions t
	ON t.organization_id = l.organization_id AND t.id = l.transaction_id
	WHERE t.chain_id = '$CH' AND t.status = 'completed' AND l.status = 'completed'")" 60 \
	"their 60 lines completed"

# amcheck
out=$(psql -X -A -t -q 2>&1 <<-EOF
	SELECT c.relname, bt_index_check(c.oid, true)
	  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
	 WHERE i.indrelid = '$LINES'::regclass;
	SELECT count(*) FROM verify_heapam('$LINES');
EOF
)
if [ $? -eq 0 ] && ! grep -qi error <<<"$out" && [ "$(tail -n 1 <<<"$out")" = 0 ]; then
	ok "amcheck: every index of the lines holds every row, and the heap is sound"
else
	not_ok "amcheck: every index of the lines holds every row, and the heap is sound"
	diag "$out"
fi
