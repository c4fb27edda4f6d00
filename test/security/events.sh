#!/usr/bin/env bash
# test/security/events.sh: execution events reach only the roles that may
# see the execution (issue 9, item 7).
#
# PostgreSQL has no privilege on LISTEN, so chainexec sends each event on
# channels whose names only it can compute: the owner role's channel of the
# execution's organization and the organization's admin channel, subscribed
# with chainexec.chain_listen().  Real LISTEN clients (psql sessions of
# LOGIN-only roles, kept open while the executions run) try:
#   - LISTEN on the old shared channel "chainexec";
#   - LISTEN on channel names guessed from public information (the owner's
#     oid and name, the organization, plain hashes of them);
#   - chain_listen() as a non-member of the owner role, chain_listen(owner);
#   - chain_listen() in another organization, as a stranger and as a member;
#   - a member and chainexec_admin receive what they may see, and no more;
#   - no payload carries the rendered input of an external step, and every
#     payload has exactly the keys of SPEC section 7;
#   - the secret, the event sender and the channel rotation are out of
#     reach; chain_listen in a security-restricted operation (a
#     materialized view, a step in an executor) is refused;
#   - a member removed from the owner role who kept the channel name hears
#     nothing once the channels are rotated;
#   - chainexec.notify_public (the single-tenant opt-in) is for superusers.
# The attacks run in two phases, each with its listeners started first and
# stopped when the phase's executions have ended.
#
# Runs from scripts/test.sh (see test/lib/README.md and test/security/README.md).
# chainexec-test: timeout=240
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

S=$$
OWNER=sec_ev_owner_$S
MEMBER=sec_ev_member_$S
OTHER=sec_ev_other_$S
ADMIN=sec_ev_admin_$S
HEX=$(printf '%012x' "$S")
ORG1=e1e1e1e1-0000-4000-8000-$HEX
ORG2=e2e2e2e2-0000-4000-8000-$HEX
IBAN="DE89-SECRET-$S-3704"
INPUT_TEXT="Wire 25000 EUR to IBAN"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ce-sec-events.XXXXXX")
chmod 0755 "$TMP"
LISTENER_PIDS=()

cleanup()
{
	local p

	for p in "${LISTENER_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	psql -X -q -c "ALTER SYSTEM RESET chainexec.notify_public" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
	psql -X -q >/dev/null 2>&1 <<-EOF
		INSERT INTO public.sec_ev_stop_$S VALUES (1), (2);
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename LIKE 'sec\_ev\_%\_$S';
		DELETE FROM chainexec.universal_transactions WHERE chain_id LIKE 'sec-ev-%-$S';
		SET chainexec.internal = on;
		DELETE FROM chainexec.chains WHERE chain_id LIKE 'sec-ev-%-$S';
		DROP TABLE IF EXISTS public.sec_ev_stop_$S;
		DROP OWNED BY $OWNER, $MEMBER, $OTHER, $ADMIN;
		DROP ROLE IF EXISTS $OWNER, $MEMBER, $OTHER, $ADMIN;
	EOF
	rm -rf "$TMP"
}
trap cleanup EXIT

# as ROLE ORG SQL: run SQL as ROLE (a LOGIN role, its own connection) in
# organization ORG; prints the result, or "SQLSTATE: message" on error.
as()
{
	local out

	if out=$(PGOPTIONS="-c chainexec.organization_id=$2" psql -X -A -t -q -v ON_ERROR_STOP=1 \
		-v VERBOSITY=sqlstate -U "$1" -c "$3" 2>&1); then
		printf '%s\n' "$out"
	else
		# "ERROR:  42501" with VERBOSITY=sqlstate
		printf '%s\n' "$out" | sed -n 's/^ERROR: *\([0-9A-Z]\{5\}\).*/\1/p' | head -n 1
	fi
}

# listen NAME PHASE ROLE ORG SQL: a psql session of ROLE in organization ORG
# that runs SQL (its LISTENs), then stays in a loop until phase PHASE is
# stopped, then prints the notifications it received; output in $TMP/NAME.
listen()
{
	PGOPTIONS="-c chainexec.organization_id=$4" PGAPPNAME="sec_ev_$1_$S" \
		psql -X -A -t -U "$3" -f - >"$TMP/$1" 2>&1 <<-EOF &
		$5
		DO \$\$ BEGIN
			WHILE NOT EXISTS (SELECT FROM public.sec_ev_stop_$S WHERE phase = $2) LOOP
				PERFORM pg_sleep(0.05);
			END LOOP;
		END \$\$;
		SELECT 'flush';
		SELECT 'flush';
	EOF
	LISTENER_PIDS+=($!)
}

# listening NAMES...: wait until these listeners are in their loop.
listening()
{
	local names

	names=$(printf "'sec_ev_%s_$S'," "$@")
	poll_query_until "SELECT count(*) FROM pg_stat_activity WHERE application_name IN (${names%,})
						AND query LIKE 'DO %'" "$#" 20 >/dev/null
}

# stop PHASE: end the listeners of PHASE and wait for them.
stop()
{
	local p

	sleep 0.5
	psql_q "INSERT INTO public.sec_ev_stop_$S VALUES ($1)" >/dev/null
	for p in "${LISTENER_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	LISTENER_PIDS=()
}

# payloads NAME: the payloads listener NAME received, one a line.
payloads()
{
	sed -n 's/^Asynchronous notification ".*" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p' "$TMP/$1"
}

# events NAME EXECUTION: the events of EXECUTION that NAME received, in order.
events()
{
	payloads "$1" | grep -F "\"$2\"" | sed 's/.*"event": *"\([a-z_]*\)".*/\1/' | tr '\n' ' '
}

# channels NAME: the channel names listener NAME's chain_listen() returned.
channels()
{
	grep -E '^[a-z_]+_[0-9a-f]{32}$' "$TMP/$1"
}

# start ROLE ORG CHAIN: chain_execute as ROLE; prints the execution id.
start()
{
	as "$1" "$2" "SELECT chainexec.chain_execute('$3', '{\"iban\": \"$IBAN\"}')"
}

# waiting EXECUTION: wait until its external step waits.
waiting()
{
	poll_query_until "SELECT status FROM chainexec.universal_transaction_lines WHERE transaction_id = '$1' AND step_id = 2" \
		waiting 30 >/dev/null
}

psql_q "CREATE EXTENSION IF NOT EXISTS chainexec" >/dev/null 2>&1 || bail_out "could not create the extension chainexec"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF || bail_out "could not create the roles"
CREATE ROLE $OWNER LOGIN;
CREATE ROLE $MEMBER LOGIN IN ROLE $OWNER;
CREATE ROLE $OTHER LOGIN;
CREATE ROLE $ADMIN LOGIN IN ROLE chainexec_admin;
CREATE SCHEMA sec_ev_$S AUTHORIZATION $OTHER;
CREATE TABLE public.sec_ev_stop_$S (phase int);
GRANT SELECT ON public.sec_ev_stop_$S TO PUBLIC;
EOF

steps='[{"id": 1, "name": "prepare", "type": "sql", "sql": "SELECT 1 AS a", "outputVariables": ["a"]},
	{"id": 2, "name": "payment", "type": "external", "inputTemplate": "'"$INPUT_TEXT"' {iban}", "inputVariables": ["iban"],
	 "outputVariables": ["ok"]}]'
for org in "$ORG1" "$ORG2"; do
	as "$OWNER" "$org" "SELECT chainexec.chain_define('{\"id\": \"sec-ev-pay-$S\", \"steps\": $steps}', true)" >/dev/null
done
as "$OTHER" "$ORG1" "SELECT chainexec.chain_define('{\"id\": \"sec-ev-mine-$S\", \"steps\": $steps}', true)" >/dev/null

# Names an attacker can build from public information.
guesses=$(psql_q "SELECT string_agg(format('LISTEN %I;', g), ' ') FROM (
	SELECT unnest(ARRAY['chainexec_' || r.oid, 'chainexec_' || r.rolname, 'chainexec_$ORG1',
		'chainexec_' || replace('$ORG1', '-', ''), 'chainexec_admin', 'chainexec_chainexec_admin',
		'chainexec_' || left(md5('$ORG1' || r.oid), 32), 'chainexec_' || left(md5('$ORG1:' || r.rolname), 32),
		'chainexec_' || left(encode(sha256(convert_to('role:$ORG1:' || r.oid, 'UTF8')), 'hex'), 32),
		'chainexec_' || left(encode(sha256(convert_to('admin:$ORG1', 'UTF8')), 'hex'), 32),
		'chainexec_$ORG1' || '_' || r.oid, 'chainexec.' || r.rolname]) AS g
	  FROM pg_roles r WHERE r.rolname = '$OWNER') s")

# ---------------------------------------------------------------------------
# Phase 1: listeners first, then the executions.
listen old 1 "$OTHER" "$ORG1" "LISTEN chainexec;"
listen guess 1 "$OTHER" "$ORG1" "$guesses"
listen other 1 "$OTHER" "$ORG1" "SELECT chainexec.chain_listen();"
listen member 1 "$MEMBER" "$ORG1" "SELECT chainexec.chain_listen();"
listen other2 1 "$OTHER" "$ORG2" "SELECT chainexec.chain_listen();"
listen member2 1 "$MEMBER" "$ORG2" "SELECT chainexec.chain_listen();"
listen admin 1 "$ADMIN" "$ORG1" "SELECT chainexec.chain_listen();"
listen owner 1 "$OWNER" "$ORG1" "SELECT chainexec.chain_listen('$OWNER');"
listening old guess other member other2 member2 admin owner || bail_out "the listeners did not start"

e1=$(start "$OWNER" "$ORG1" "sec-ev-pay-$S")
e2=$(start "$OWNER" "$ORG2" "sec-ev-pay-$S")
e3=$(start "$OTHER" "$ORG1" "sec-ev-mine-$S")
for e in "$e1" "$e2" "$e3"; do
	waiting "$e" || diag "execution $e did not reach its external step"
done
# chain_cancel: the control functions' events (SQL) go the same way
as "$OWNER" "$ORG1" "SELECT chainexec.chain_cancel('$e1')" >/dev/null
as "$OWNER" "$ORG2" "SELECT chainexec.chain_cancel('$e2')" >/dev/null
as "$OTHER" "$ORG1" "SELECT chainexec.chain_cancel('$e3')" >/dev/null
stop 1

full="chain_started step_completed step_started chain_cancelled "
owner_events=$(payloads owner | wc -l)

# 1
n=$(payloads old | wc -l)
if [ "$n" -eq 0 ] && [ "$(events admin "$e1")" = "$full" ]; then
	ok "LISTEN chainexec (the old shared channel) hears nothing of another role's execution"
else
	not_ok "LISTEN chainexec (the old shared channel) hears nothing of another role's execution" \
		"it heard $n events: $(payloads old | head -n 3)" "the admin heard: $(events admin "$e1")"
fi

# 2
n=$(payloads guess | wc -l)
if [ "$n" -eq 0 ] && [ "$owner_events" -gt 0 ]; then
	ok "12 channel names guessed from the owner's oid, name and organization hear nothing ($owner_events events went to the owner's channel)"
else
	not_ok "12 channel names guessed from public information hear nothing" \
		"the guesses heard $n events; the owner's channel carried $owner_events" "$(head -n 5 "$TMP/guess")"
fi

# 3
is "$(as "$OTHER" "$ORG1" "SELECT chainexec.chain_listen('$OWNER')")" "42501" \
	"chain_listen(owner) by a role that is not a member of the owner is refused (42501)"

# 4
if [ "$(events other "$e3")" = "$full" ] && [ -z "$(events other "$e1")$(events other "$e2")" ]; then
	ok "a non-member's chain_listen() hears its own execution, none of the owner's"
else
	not_ok "a non-member's chain_listen() hears its own execution, none of the owner's" \
		"own: $(events other "$e3")" "owner's: $(events other "$e1") / $(events other "$e2")" "$(head -n 5 "$TMP/other")"
fi

# 5
if [ "$(events member "$e1")" = "$full" ] && [ -z "$(events member "$e2")$(events member "$e3")" ]; then
	ok "a member of the owner role hears the owner's execution, in order, and nothing else"
else
	not_ok "a member of the owner role hears the owner's execution, in order, and nothing else" \
		"owner's: $(events member "$e1")" "others: $(events member "$e2") / $(events member "$e3")" "$(head -n 5 "$TMP/member")"
fi

# 6
if [ "$(channels other2 | wc -l)" -eq 1 ] && [ "$(payloads other2 | wc -l)" -eq 0 ]; then
	ok "chain_listen() in another organization gives a stranger a channel that hears nothing of the owner's execution there"
else
	not_ok "chain_listen() in another organization hears nothing of the owner's execution there" \
		"channels: $(channels other2 | tr '\n' ' ')" "payloads: $(payloads other2 | head -n 3)" "$(head -n 5 "$TMP/other2")"
fi

# 7
if [ "$(events member2 "$e2")" = "$full" ] && [ -z "$(events member2 "$e1")" ]; then
	ok "a member listening in the second organization hears the execution there, not the one of the first"
else
	not_ok "a member listening in the second organization hears only the execution there" \
		"second: $(events member2 "$e2")" "first: $(events member2 "$e1")" "$(head -n 5 "$TMP/member2")"
fi

# 8
if [ "$(events admin "$e1")" = "$full" ] && [ "$(events admin "$e3")" = "$full" ] && [ -z "$(events admin "$e2")" ] &&
	[ "$(channels admin | wc -l)" -eq 1 ]; then
	ok "chainexec_admin hears every execution of its organization (on one channel), none of another"
else
	not_ok "chainexec_admin hears every execution of its organization, none of another" \
		"$(events admin "$e1") / $(events admin "$e3") / other org: $(events admin "$e2")" "$(head -n 5 "$TMP/admin")"
fi

# 9
all=$(cat "$TMP"/old "$TMP"/guess "$TMP"/other "$TMP"/member "$TMP"/other2 "$TMP"/member2 "$TMP"/admin "$TMP"/owner)
if [ "$(payloads member | grep -c '"step_started"')" -eq 1 ] && ! grep -qF -e "$IBAN" -e "$INPUT_TEXT" <<<"$all"; then
	ok "no payload carries the rendered input of an external step (\"$INPUT_TEXT ...\")"
else
	not_ok "no payload carries the rendered input of an external step" "$(grep -F -e "$IBAN" -e "$INPUT_TEXT" <<<"$all" | head -n 3)"
fi

# 10
keys=$(psql -X -A -t -q -v "p=$(payloads admin)" <<<"SELECT k || ' / ' || count(*)
	FROM (SELECT l, array_to_string(ARRAY(SELECT jsonb_object_keys(l::jsonb) ORDER BY 1), ',') AS k
			FROM regexp_split_to_table(:'p', E'\\n') AS l GROUP BY l) s GROUP BY k" | sort -u | tr '\n' ' ')
like "$keys" '^attempt,chainId,etaMs,event,executionId,progress,status,stepId,stepName,ts / [0-9]+ $' \
	"every payload has exactly the keys of SPEC section 7"

# 11
mine=$(channels member | tr '\n' ' ')
owner_ch=$(channels owner)
if [ "$(channels member | wc -l)" -eq 2 ] && [ -n "$owner_ch" ] && grep -qF "$owner_ch" <<<"$mine" &&
	! channels other | grep -qxF "$owner_ch" && ! channels other2 | grep -qxF "$owner_ch" &&
	[ "$(channels member | awk '{ if (length($0) > 63) print }')" = "" ]; then
	ok "chain_listen() names the channels of the roles one is a member of (own and owner's), at most 63 bytes"
else
	not_ok "chain_listen() names the channels of the roles one is a member of" \
		"member: $mine" "owner: $owner_ch" "stranger: $(channels other) $(channels other2)"
fi

# 12
is "$(as "$OTHER" "$ORG1" "SELECT count(*) FROM chainexec.channel_secret")" "42501" \
	"a LOGIN role cannot read the key of the channel names (42501)"

# 13
like "$(as "$OTHER" "$ORG1" "SELECT chainexec._notify('$ORG1', '$OWNER', 'chain_completed', '{}')")" '^(42501|42883)$' \
	"a LOGIN role cannot send an event on another role's channel through chainexec._notify (42501, or 42883 now that only C sends events)"

# 14
is "$(as "$OTHER" "$ORG1" "SELECT chainexec.chain_rotate_channels()")" "42501" \
	"a LOGIN role cannot rotate the channel names (42501)"

# 15
is "$(as "$OTHER" "$ORG1" "SET chainexec.notify_public = on")|$(as "$OTHER" "$ORG1" "ALTER SYSTEM SET chainexec.notify_public = on")" \
	"55P02|42501" "a LOGIN role can neither SET nor ALTER SYSTEM chainexec.notify_public"

# 16
is "$(as "$OTHER" "$ORG1" "CREATE MATERIALIZED VIEW sec_ev_$S.mv AS SELECT chainexec.chain_listen()")" "42501" \
	"chain_listen() within a security-restricted operation (a materialized view) is refused, like LISTEN"

# 17 (one transaction each: LISTEN takes effect at commit)
got=$(PGOPTIONS="-c chainexec.organization_id=$ORG1" psql -X -A -t -q -U "$OTHER" -c "SELECT count(*) FROM chainexec.chain_listen()" \
	-c "SELECT count(*) FROM pg_listening_channels()" -c "SELECT count(*) FROM chainexec.chain_unlisten()" \
	-c "SELECT count(*) FROM pg_listening_channels()" 2>&1 | tr '\n' ' ')
is "$got" "1 1 1 0 " "chain_unlisten() undoes chain_listen()"

# ---------------------------------------------------------------------------
# Phase 2: the member leaves the owner role and keeps the channel name it
# learned; the channels are rotated.
psql_q "REVOKE $OWNER FROM $MEMBER" >/dev/null
psql_q "SELECT chainexec.chain_rotate_channels()" >/dev/null
old_listens=$(channels member | sed 's/.*/LISTEN "&";/' | tr '\n' ' ')
listen kept 2 "$MEMBER" "$ORG1" "$old_listens"
listen left 2 "$MEMBER" "$ORG1" "SELECT chainexec.chain_listen();"
listen owner2 2 "$OWNER" "$ORG1" "SELECT chainexec.chain_listen();"
listening kept left owner2 || bail_out "the listeners of phase 2 did not start"
e4=$(start "$OWNER" "$ORG1" "sec-ev-pay-$S")
waiting "$e4" || diag "execution $e4 did not reach its external step"
as "$OWNER" "$ORG1" "SELECT chainexec.chain_cancel('$e4')" >/dev/null
stop 2

# 18
if [ "$(events owner2 "$e4")" = "$full" ] && [ "$(payloads kept | wc -l)" -eq 0 ] && [ -z "$(events left "$e4")" ]; then
	ok "a former member listening on the names it kept hears nothing once the channels are rotated"
else
	not_ok "a former member hears nothing once the channels are rotated" \
		"owner: $(events owner2 "$e4")" "kept: $(payloads kept | head -n 2)" "left: $(events left "$e4")"
fi

# 19
if [ "$(channels left | wc -l)" -eq 1 ] && ! channels left | grep -qxF "$owner_ch" && ! channels owner2 | grep -qxF "$owner_ch"; then
	ok "after the revocation chain_listen() names only the former member's own channel, and every name changed"
else
	not_ok "after the revocation chain_listen() names only the former member's own channel" \
		"left: $(channels left | tr '\n' ' ')" "owner before: $owner_ch, after: $(channels owner2)"
fi

# 20: a step cannot subscribe the executor's session (which runs every
# role's steps) to anything
as "$OWNER" "$ORG1" "SELECT chainexec.chain_define('{\"id\": \"sec-ev-step-$S\", \"steps\": [{\"id\": 1, \"name\": \"sub\",
	\"type\": \"sql\", \"sql\": \"SELECT count(*) AS n FROM chainexec.chain_listen()\", \"retryConfig\": {\"maxRetries\": 0}}]}', true)" >/dev/null
e5=$(as "$OWNER" "$ORG1" "SELECT chainexec.chain_execute('sec-ev-step-$S')")
as "$OWNER" "$ORG1" "SELECT chainexec.chain_wait('$e5', 30000)->>'status'" >/dev/null
is "$(psql_q "SELECT status || ':' || coalesce(sqlstate, '-') FROM chainexec.step_runs WHERE execution_id = '$e5' AND step_id = 1")" \
	"failed:42501" "a sql step that calls chain_listen() in an executor fails (42501): steps run as a security-restricted operation"

# ---------------------------------------------------------------------------
# The single-tenant opt-in: events on chainexec.notify_channel itself.
psql -X -q -c "ALTER SYSTEM SET chainexec.notify_public = on" -c "SELECT pg_reload_conf()" >/dev/null
poll_query_until "SELECT current_setting('chainexec.notify_public')" on 10 >/dev/null
is "$(as "$OTHER" "$ORG1" "SELECT chainexec.chain_listen()")" "chainexec" \
	"with chainexec.notify_public on (set by a superuser), chain_listen() listens on chainexec.notify_channel itself"
psql -X -q -c "ALTER SYSTEM RESET chainexec.notify_public" -c "SELECT pg_reload_conf()" >/dev/null
poll_query_until "SELECT current_setting('chainexec.notify_public')" off 10 >/dev/null

done_testing
exit $?
