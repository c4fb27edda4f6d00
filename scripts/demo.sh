#!/usr/bin/env bash
# scripts/demo.sh: see chainexec work, on a throwaway cluster (the README's
# first command).
#
#   scripts/demo.sh
#
# Installs what is missing (scripts/bootstrap.sh), builds and installs the
# extension, starts a throwaway cluster (scripts/cluster.sh), creates the
# extension, then run_demo: loads the example chains of examples/ (*.sql run
# with psql, *.json defined and published with chain_define) and validates
# each chain.  The cluster is stopped and removed at the end, whatever happens.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
. "$CE_REPO/scripts/cluster.sh"

export PATH=$CE_PGBIN:$PATH

# sql SQL: run SQL in the demo database; unaligned, tuples only; stop on error.
sql()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"
}

# run_demo: what the demo shows, once the cluster runs with chainexec created.
run_demo()
{
	local f n=0 id

	say "== loading examples/"
	for f in "$CE_REPO"/examples/*.sql; do
		[ -e "$f" ] || continue
		psql -X -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null || die "loading ${f#"$CE_REPO"/} failed"
		say "  ran ${f#"$CE_REPO"/}"
		n=$((n + 1))
	done
	for f in "$CE_REPO"/examples/*.json; do
		[ -e "$f" ] || continue
		# psql's :'var' quotes the file's text as a literal.
		psql -X -A -t -q -v ON_ERROR_STOP=1 -v def="$(cat "$f")" \
			-c "SELECT format('  defined %s version %s from %s', d->>'id', chainexec.chain_define(d, true), :'file')
				FROM (SELECT :'def'::jsonb AS d) s" -v file="${f#"$CE_REPO"/}" ||
			die "defining the chain of ${f#"$CE_REPO"/} failed"
		n=$((n + 1))
	done
	if [ "$n" -eq 0 ]; then
		say "  (no examples yet: examples/ has no .sql or .json file)"
		return 0
	fi

	say "== chains"
	sql "SELECT format('  %-32s version %s  %s', chain_id, version, status)
		   FROM chainexec.chains ORDER BY chain_id, version" || return 1

	say "== chain_validate"
	for id in $(sql "SELECT DISTINCT chain_id FROM chainexec.chains ORDER BY 1"); do
		say "  $id:"
		sql "SELECT jsonb_pretty(chainexec.chain_validate('$id'))" | sed 's/^/    /' || return 1
	done
	# Next: start an execution of the example chain with chain_execute, follow
	# its progress with the watcher (tools/chainexec_watch) as it streams over
	# NOTIFY, and print the result.
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
