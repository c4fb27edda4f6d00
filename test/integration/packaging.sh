#!/usr/bin/env bash
# test/integration/packaging.sh: what a PostgreSQL packager or PGXN reads.
#
# LICENSE is the PostgreSQL License of "The chainexec authors"; META.json is
# valid PGXN meta-spec 1.0.0 (the required keys, a semantic version equal to
# chainexec.control's default_version, provides chainexec at that version,
# runtime prerequisites PostgreSQL 15 and pg_cron as a recommendation); the
# installed scripts give ALTER EXTENSION an update path from 0.1.0 to the
# default version.  META.json is parsed by the server (jsonb).
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=60
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

cd "$CE_REPO" || bail_out "no repository at $CE_REPO"

# meta SQL-EXPRESSION: evaluate an expression over m (META.json as jsonb).
meta()
{
	psql -X -A -t -q -v ON_ERROR_STOP=1 -v meta="$(cat META.json)" 2>&1 <<-SQL
		SELECT $1 FROM (SELECT :'meta'::jsonb AS m) AS s;
	SQL
}

control_version=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" chainexec.control)

like "$(head -n 1 LICENSE)" '^PostgreSQL License$' "LICENSE is the PostgreSQL License"
like "$(sed -n 3p LICENSE)" '^Copyright \(c\) [0-9]{4}(-[0-9]{4})?, The chainexec authors$' \
	"LICENSE: copyright of the chainexec authors"
check "LICENSE has the license's three paragraphs" grep -q 'SPECIFICALLY DISCLAIM ANY WARRANTIES' LICENSE

is "$(meta "jsonb_typeof(m)")" "object" "META.json is a JSON object"
is "$(meta "m->'meta-spec'->>'version'")" "1.0.0" "META.json follows meta-spec 1.0.0"
is "$(meta "(SELECT string_agg(k, ',' ORDER BY k) FROM unnest(ARRAY['name','abstract','version','maintainer','license','provides','meta-spec']) k WHERE NOT m ? k)")" "" \
	"META.json has every key meta-spec 1.0.0 requires"
is "$(meta "m->>'name'")" "chainexec" "META.json: name"
like "$(meta "m->>'version'")" '^[0-9]+\.[0-9]+\.[0-9]+$' "META.json: a semantic version"
is "$(meta "m->>'version'")" "$control_version" "META.json: version is chainexec.control's default_version ($control_version)"
is "$(meta "m->'provides'->'chainexec'->>'version'")" "$control_version" "META.json provides chainexec at that version"
is "$(meta "m->'provides'->'chainexec'->>'abstract' IS NOT NULL AND m->'provides'->'chainexec'->>'file' IS NOT NULL")" "t" \
	"META.json: provides chainexec with an abstract and a file"
file=$(meta "m->'provides'->'chainexec'->>'file'")
check "META.json: the provided file ($file) exists" test -f "$file"
is "$(meta "m->>'license'")" "postgresql" "META.json: license postgresql"
is "$(meta "m->'prereqs'->'runtime'->'requires'->>'PostgreSQL'")" "15.0.0" "META.json: requires PostgreSQL 15"
is "$(meta "m->'prereqs'->'runtime'->'recommends' ? 'pg_cron' AND NOT m->'prereqs'->'runtime'->'requires' ? 'pg_cron'")" "t" \
	"META.json: pg_cron is recommended, not required"
is "$(meta "(SELECT bool_and(v ~ '^[0-9]+\.[0-9]+\.[0-9]+\$' OR v = '0') FROM jsonb_each(m->'prereqs') p, jsonb_each(p.value) r, jsonb_each_text(r.value) x(k, v))")" "t" \
	"META.json: every prerequisite version is a semantic version (or 0)"
is "$(meta "m->>'release_status' IN ('stable', 'testing', 'unstable')")" "t" "META.json: a release_status of the spec"

is "$(psql_q "SELECT path FROM pg_extension_update_paths('chainexec') WHERE source = '0.1.0' AND target = '$control_version'")" \
	"0.1.0--$control_version" "ALTER EXTENSION chainexec UPDATE goes from 0.1.0 to $control_version in one step"
is "$(psql_q "SELECT default_version FROM pg_available_extensions WHERE name = 'chainexec'")" "$control_version" \
	"the installed control file's default version is $control_version"

done_testing
exit $?
