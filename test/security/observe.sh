#!/usr/bin/env bash
# test/security/observe.sh: what LOGIN-only roles learn from chainexec.stats,
# chain_stats, chain_explain and chain_graph.
#
# The rules (README "See the shape of a chain", "Operations"):
#   * chainexec.stats: superusers and members of chainexec_admin or
#     pg_monitor see every organization's numbers; any other role sees the
#     numbers of what row-level security lets it read: its own executions,
#     in its session's organization, and no other organization's row;
#   * chain_explain and chain_graph read as the caller: the chains of the
#     session's organization (chains are visible to the organization, as in
#     the chains table), only executions the caller may read, and step
#     estimates only from the history the caller may read; anything else
#     "does not exist" (42704);
#   * their queries resolve no name or operator through the caller's
#     search_path.
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=300
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
OWNER=sec_obs_owner_$S
OTHER=sec_obs_other_$S
MON=sec_obs_monitor_$S
ADM=sec_obs_admin_$S
ORG_A=aaaaaaaa-0000-4000-8000-00000000$(printf '%04d' $((S % 10000)))
ORG_B=bbbbbbbb-0000-4000-8000-00000000$(printf '%04d' $((S % 10000)))
CH=sec-obs-$S

cleanup()
{
	psql -X -q >/dev/null 2>&1 <<-EOF
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CH';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id = '$CH';
		RESET chainexec.internal;
		DROP SCHEMA IF EXISTS sec_obs_$S CASCADE;
		DROP TABLE IF EXISTS public.sec_obs_spy_$S;
		DROP OWNED BY $OWNER, $OTHER, $MON, $ADM;
		DROP ROLE IF EXISTS $OWNER, $OTHER, $MON, $ADM;
	EOF
}
trap cleanup EXIT

# as ROLE ORG SQL: run SQL as the LOGIN role in organization ORG; prints
# tuples only; fails on the first error.
as()
{
	PGOPTIONS="-c chainexec.organization_id=$2" psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$1" -c "$3"
}

# attempt ROLE ORG SQL: the SQLSTATE of SQL's error, or "ok:<first line>".
attempt()
{
	PGOPTIONS="-c chainexec.organization_id=$2" psql -X -A -t -q -U "$1" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$3" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p; t; s/^\(.*\)$/ok:\1/p' | head -n 1
}

# stats ROLE ORG: "executions_active/lines_waiting_timer" of ORG_A's row as
# ROLE in session organization ORG ("none" without a row), then the number
# of rows of other organizations than the session's.
stats()
{
	as "$1" "$2" "SELECT coalesce((SELECT executions_active || '/' || lines_waiting_timer FROM chainexec.stats
		WHERE organization_id = '$ORG_A'), 'none') || ' ' ||
		(SELECT count(*) FROM chainexec.stats WHERE organization_id <> '$2')"
}

plan 19

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-EOF || bail_out "setup failed"
	CREATE ROLE $OWNER LOGIN;
	CREATE ROLE $OTHER LOGIN;
	CREATE ROLE $MON LOGIN IN ROLE pg_monitor;
	CREATE ROLE $ADM LOGIN IN ROLE chainexec_admin;
	CREATE SCHEMA sec_obs_$S AUTHORIZATION $OTHER;
	CREATE TABLE public.sec_obs_spy_$S (who text, what text);
	GRANT INSERT, SELECT ON public.sec_obs_spy_$S TO PUBLIC;
EOF
psql -X -q -c "ALTER SYSTEM RESET chainexec.enabled" -c "SELECT pg_reload_conf()" >/dev/null
poll_query_until "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'chainexec executor'" t 30 ||
	bail_out "no executor is running"

# The owner's chain: a quick step, then a ten-minute timer.
as "$OWNER" "$ORG_A" "SELECT chainexec.chain_define('{\"id\": \"$CH\", \"steps\": [
	{\"id\": 1, \"name\": \"quick\", \"type\": \"sql\", \"sql\": \"SELECT 1 AS one\"},
	{\"id\": 2, \"name\": \"later\", \"type\": \"wait\", \"waitMs\": 600000}]}', true)" >/dev/null ||
	bail_out "the owner could not define its chain"
E=$(as "$OWNER" "$ORG_A" "SELECT chainexec.chain_execute('$CH')") || bail_out "the owner could not start its chain"
poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$E' AND step_id = 2" waiting 30 ||
	bail_out "the execution did not reach its timer"

# ---------------------------------------------------------------------------
# chainexec.stats
# ---------------------------------------------------------------------------
is "$(stats "$OWNER" "$ORG_A")" "1/1 0" "stats: the owner sees its active execution and timer, and no other organization"
is "$(stats "$OTHER" "$ORG_A")" "0/0 0" \
	"stats: another role of the same organization does not count the owner's execution (row-level security)"
is "$(stats "$OTHER" "$ORG_B")" "none 0" "stats: from another organization a role sees neither the organization nor any other"
is "$(as "$OTHER" "$ORG_A" "SELECT count(*) FROM chainexec.chain_stats(86400) WHERE organization_id <> '$ORG_A' OR executions_active > 0")" "0" \
	"chain_stats with a day's window tells an ordinary role nothing more"
like "$(stats "$MON" "$ORG_B")" '^1/1 [1-9][0-9]*$' "stats: a pg_monitor member sees every organization's numbers, from any session"
like "$(stats "$ADM" "$ORG_B")" '^1/1 [1-9][0-9]*$' "stats: a chainexec_admin member sees every organization's numbers"
is "$(as "$MON" "$ORG_A" "SELECT count(*) FROM chainexec.universal_transactions WHERE id = '$E'")" "0" \
	"pg_monitor reads the numbers, not the owner's executions"

# ---------------------------------------------------------------------------
# chain_explain and chain_graph
# ---------------------------------------------------------------------------
like "$(as "$OWNER" "$ORG_A" "SELECT chainexec.chain_explain('$CH')" | grep 'Step 1 quick')" 'est\. [0-9]+ ms from 1 run' \
	"explain: the owner's estimate comes from its own completed step"
like "$(as "$OTHER" "$ORG_A" "SELECT chainexec.chain_explain('$CH')" | grep 'Step 1 quick')" '\(no history\)' \
	"explain: another role sees the organization's chain but none of the owner's durations"
is "$(attempt "$OTHER" "$ORG_B" "SELECT chainexec.chain_explain('$CH')")" "42704" \
	"explain: a chain of another organization does not exist"
is "$(attempt "$OTHER" "$ORG_B" "SELECT chainexec.chain_graph('$CH', 'dot')")" "42704" \
	"graph: a chain of another organization does not exist"
is "$(attempt "$OTHER" "$ORG_A" "SELECT chainexec.chain_graph('$E')")" "42704" \
	"graph: another role's execution does not exist, even in its organization"
is "$(attempt "$MON" "$ORG_A" "SELECT chainexec.chain_graph('$E')")" "42704" \
	"graph: pg_monitor does not open executions"
like "$(as "$OWNER" "$ORG_A" "SELECT chainexec.chain_graph('$E', 'dot')" | grep '^  s2 ')" 'waiting' \
	"graph: the owner sees its execution, the timer waiting"
like "$(as "$ADM" "$ORG_A" "SELECT chainexec.chain_graph('$E')" | grep '^  class s1 ')" 'completed' \
	"graph: chainexec_admin sees the execution in its organization"

# ---------------------------------------------------------------------------
# The caller's search_path: operators that would spy on the queries
# ---------------------------------------------------------------------------
# Each spy reports every comparison it sees as a NOTICE (which works in
# read-only queries too) and answers as the real operator would.
spy()
{
	echo "CREATE FUNCTION sec_obs_$S.spy_$1(a $1, b $1) RETURNS boolean LANGUAGE plpgsql AS
		\$\$ BEGIN RAISE NOTICE 'spied: % = %', a, b; RETURN a OPERATOR(pg_catalog.=) b; END \$\$;
	CREATE OPERATOR sec_obs_$S.= (LEFTARG = $1, RIGHTARG = $1, FUNCTION = sec_obs_$S.spy_$1);"
}
as "$OTHER" "$ORG_A" "$(spy text) $(spy uuid) $(spy int4)" >/dev/null || bail_out "the spy operators could not be made"
HOSTILE="SET search_path = sec_obs_$S, pg_catalog, public;"
like "$(PGOPTIONS="-c chainexec.organization_id=$ORG_A" psql -X -A -t -q -U "$OTHER" -c "$HOSTILE SELECT 'x'::text = 'x'" 2>&1)" \
	'spied: x = x' "the spy operator reports comparisons in the caller's own queries (the checks below can fail)"
out=$(PGOPTIONS="-c chainexec.organization_id=$ORG_A" psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$OTHER" -c "$HOSTILE
	SELECT chainexec.chain_explain('$CH') LIKE '%Step 1 quick%',
		   chainexec.chain_graph('$CH') LIKE '%s1[\\\"1 quick%',
		   chainexec.chain_graph('$CH', 'dot') LIKE '%s1 [label=\\\"1 quick%',
		   (SELECT count(*) FROM chainexec.stats) >= 1,
		   (SELECT count(*) FROM chainexec.chain_stats(600)) >= 1" 2>&1)
is "$out" "t|t|t|t|t" "explain, graph and stats work under a search_path whose operators come first"
is "$(printf '%s\n' "$out" | grep -c 'spied')" "0" "explain, graph and stats use none of the caller's operators"
is "$(attempt "$OTHER" "$ORG_A" "$HOSTILE SELECT chainexec.chain_graph('$E')")" "42704" \
	"graph under the caller's operators: another role's execution still does not exist"

done_testing
exit $?
