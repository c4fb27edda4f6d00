#!/usr/bin/env bash
# scripts/demo.sh: see chainexec work, on a throwaway cluster (the README's
# first command).
#
#   scripts/demo.sh
#
# Installs what is missing (scripts/bootstrap.sh), builds and installs the
# extension and the watcher, starts a throwaway cluster (scripts/cluster.sh,
# with the library preloaded and the background worker serving its
# database), creates the extension, then run_demo: loads the travel
# agency's chain (examples/travel_agency.sql), starts it with chain_execute
# on a lead that came in as a WhatsApp message, follows it live with
# chainexec_watch as its events stream over NOTIFY (it subscribes with
# chainexec.chain_listen(); one redrawn line in a terminal, one line per
# event otherwise), prints the result (chain_result),
# the proposal and the welcome email it wrote, and the time each step took
# (chainexec.step_runs).  The cluster is stopped and removed at the end,
# whatever happens.  Exit status 0 when the execution completed.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
. "$CE_REPO/scripts/cluster.sh"

export PATH=$CE_PGBIN:$PATH

DEMO_CHAIN=travel-lead-processing
DEMO_LEAD="Hi! I'm Mariana Costa. Thinking of taking my family (2 adults + 2 kids) to Lisbon in July for 10 days, budget around 6,500 EUR. Email mariana.costa@example.com, cell +55 11 98765-4321"

# sql SQL: run SQL in the demo database; unaligned, tuples only, no pager
# (the demo may run in a terminal); stop on error.
sql()
{
	psql -X -A -t -q -P pager=off -v ON_ERROR_STOP=1 -c "$1"
}

# sql_with NAME VALUE: run the SQL on standard input with the psql variable
# NAME set to VALUE (read it as :'NAME'); unaligned, tuples only.
sql_with()
{
	psql -X -A -t -q -P pager=off -v ON_ERROR_STOP=1 -v "$1=$2"
}

# indent: indent standard input by four spaces.
indent()
{
	sed 's/^/    /'
}

# run_demo: what the demo shows, once the cluster runs with chainexec created.
run_demo()
{
	local f=$CE_REPO/examples/travel_agency.sql id rc status watch

	say "== loading ${f#"$CE_REPO"/}"
	psql -X -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null || die "loading ${f#"$CE_REPO"/} failed"
	sql "SELECT format('  chain %s version %s (%s): %s steps', chain_id, version, status,
						  jsonb_array_length(definition->'steps'))
		   FROM chainexec.chains WHERE chain_id = '$DEMO_CHAIN' AND status = 'active'" || return 1
	sql "SELECT format('    %2s %-22s %-9s %s', s->>'id', s->>'name', s->>'type',
						  coalesce(s->>'description', ''))
		   FROM chainexec.chains c, jsonb_array_elements(c.definition->'steps') s
		  WHERE c.chain_id = '$DEMO_CHAIN' AND c.status = 'active'" || return 1

	say "== a lead arrives (WhatsApp)"
	printf '%s\n' "$DEMO_LEAD" | fold -s -w 72 | indent

	say "== chain_execute"
	id=$(sql_with lead "$DEMO_LEAD" <<<"SELECT chainexec.chain_execute('$DEMO_CHAIN',
			jsonb_build_object('raw_lead_message', :'lead', 'source', 'whatsapp'))") ||
		die "chain_execute failed"
	say "  execution $id; the background worker runs it"

	say "== live progress (chainexec_watch $id, subscribed with chainexec.chain_listen())"
	watch=$(command -v chainexec_watch || echo "$CE_REPO/tools/chainexec_watch")
	if [ -x "$watch" ]; then
		if [ -t 1 ]; then
			"$watch" -t 120 "$id"	# a terminal: one line, redrawn in place
			rc=$?
		else
			"$watch" -t 120 "$id" | sed 's/^/  /'	# one line per event
			rc=${PIPESTATUS[0]}
		fi
		[ "$rc" -eq 4 ] && warn "  the execution did not end within 120 s (is the background worker running? see the server log)"
	else
		say "  (chainexec_watch is not built; waiting with chain_wait)"
		sql "SELECT chainexec.chain_wait('$id', 120000)->>'status'" >/dev/null
	fi
	status=$(sql "SELECT chainexec.chain_status('$id')->>'status'")

	say "== result (chain_result, without finalContext)"
	sql "SELECT jsonb_pretty(chainexec.chain_result('$id') - 'finalContext')" | indent || return 1

	if [ "$status" = "completed" ]; then
		say "== the proposal it wrote"
		sql "SELECT chainexec.chain_result('$id')->'finalContext'->>'proposal_text'" | indent
		say "== the welcome email it wrote"
		sql "SELECT chainexec.chain_result('$id')->'finalContext'->>'welcome_email'" | indent
	fi

	say "== timings (chainexec.step_runs)"
	say "    (start and duration of each line's last attempt, from the execution's start)"
	sql "SELECT format('    %8s %8s  %-3s %-22s %-9s %-10s %s',
						  'start', 'duration', 'id', 'step', 'line', 'status', 'attempts')" || return 1
	sql "SELECT format('    %8s %5s ms  %-3s %-22s %-9s %-10s %s',
						  '+' || to_char(extract(epoch FROM r.started_at - t.started_at), 'FM990.000') || 's',
						  round(coalesce(r.duration_ms, extract(epoch FROM r.finished_at - r.started_at) * 1000)),
						  r.step_id, r.step_name, r.line_type, r.status, r.attempt)
		   FROM chainexec.step_runs r
		   JOIN chainexec.universal_transactions t ON t.organization_id = r.organization_id AND t.id = r.execution_id
		  WHERE r.execution_id = '$id'
		  ORDER BY r.started_at NULLS LAST, r.line_number" || return 1
	sql "SELECT format('    total %s ms from start to end (%s ms waiting in the queue first); %s retries',
						  round(extract(epoch FROM finished_at - started_at) * 1000),
						  round(extract(epoch FROM started_at - created_at) * 1000),
						  chainexec.chain_result(id)->'metadata'->>'retriesAttempted')
		   FROM chainexec.universal_transactions WHERE id = '$id'" || return 1

	say "== execution $id: $status"
	[ "$status" = "completed" ]
}

say "== bootstrap"
"$CE_REPO/scripts/bootstrap.sh" || exit 1

say "== build (make, make install)"
t=$SECONDS
if ! ce_build; then
	ce_build_report
	die "the build failed (full output in ${CE_LOGDIR#"$CE_REPO"/}/build.log)"
fi
say "  built and installed ($(ce_elapsed "$t"))"

say "== cluster"
ce_cluster_trap
ce_cluster_new || die "could not start a cluster"
say "  started on port $PGPORT in $CE_CLUSTER_DIR"
sql "CREATE EXTENSION chainexec" || die "CREATE EXTENSION chainexec failed"
say "  created extension chainexec $(sql "SELECT extversion FROM pg_extension WHERE extname = 'chainexec'") in database $PGDATABASE"

run_demo
rc=$?

say "== stopping the cluster"
ce_cluster_destroy
exit $rc
