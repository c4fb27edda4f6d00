#!/usr/bin/env bash
# test/integration/watch_tty.sh: chainexec_watch as a person sees it, in a
# real terminal (tmux), at 80 and at 160 columns.
#
# "make install" leaves chainexec_watch callable by name: a symbolic link in
# WATCH_LINKDIR (the Makefile's default /usr/local/bin; scripts/test.sh
# --private links into its private installation and says where in
# $CE_WATCH_LINKDIR) to the program in PostgreSQL's bindir, which is not on
# PATH on Debian; --help and --version work through it.
#
# Then a chain whose first step fails once and is retried, whose second
# fails for good (onFailure "warn"), whose third waits for a person
# (external) and whose fourth ends it.  One execution runs to its end first,
# so that the chain has a history to estimate the time left from; the
# watched one is left waiting for the person.  chainexec_watch follows it in
# two tmux sessions, 80 and 160 columns wide; capture-pane reads the screens:
# every field is there and whole (id, chain, bar, percent, status
# "waiting", step id and name, retries, failures, elapsed time, ETA), no
# line is wider than the terminal, the 160-column screen has it all on one
# line with a bar at least as wide as at 80; after chain_step_complete the
# watcher shows "completed" and exits 0.
#
# Skipped when tmux is missing (scripts/bootstrap.sh installs it).
#
# Runs from scripts/test.sh (see test/lib/README.md for the environment).
# chainexec-test: timeout=120
set -u
. "$CE_REPO/test/lib/tap.sh"
. "$CE_REPO/test/lib/pg.sh"

CHAIN=watch-tty-$$
SEQ=public.watch_tty_seq_$$
TMUX_SOCK=chainexec_watch_tty_$$
LINKDIR=${CE_WATCH_LINKDIR-/usr/local/bin}

cleanup()
{
	command -v tmux >/dev/null 2>&1 && tmux -L "$TMUX_SOCK" kill-server >/dev/null 2>&1
	psql -X -q -d "$PGDATABASE" >/dev/null 2>&1 <<-SQL
		SET chainexec.internal = on;
		DELETE FROM chainexec.universal_transaction_lines l USING chainexec.universal_transactions t
		 WHERE l.organization_id = t.organization_id AND l.transaction_id = t.id AND t.chain_id = '$CHAIN';
		DELETE FROM chainexec.universal_transactions WHERE chain_id = '$CHAIN';
		DELETE FROM chainexec.chains WHERE chain_id = '$CHAIN';
		DROP SEQUENCE IF EXISTS $SEQ;
	SQL
}
trap cleanup EXIT

if ! command -v tmux >/dev/null 2>&1; then
	echo "1..0 # SKIP tmux is not installed (scripts/bootstrap.sh installs it)"
	exit 0
fi

# ---- callable by name
if [ -z "$LINKDIR" ]; then
	skip "make install linked chainexec_watch into WATCH_LINKDIR" "WATCH_LINKDIR is empty: no link made"
	skip "chainexec_watch --help works by name" "no link"
	skip "chainexec_watch --version works by name" "no link"
else
	is "$(readlink "$LINKDIR/chainexec_watch")" "$CE_PGBIN/chainexec_watch" \
		"make install linked $LINKDIR/chainexec_watch to the program in PostgreSQL's bindir"
	# a PATH without the server's bindir, as on Debian
	out=$(env PATH="$LINKDIR:/usr/bin:/bin" chainexec_watch --help 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q '^Usage:'; then
		ok "chainexec_watch --help works by name with $LINKDIR on PATH"
	else
		not_ok "chainexec_watch --help works by name with $LINKDIR on PATH" "exit $rc: $out"
	fi
	is "$(env PATH="$LINKDIR:/usr/bin:/bin" chainexec_watch --version 2>&1)" \
		"chainexec_watch $(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$CE_REPO/chainexec.control")" \
		"chainexec_watch --version says the extension's version"
fi
WATCH=$CE_PGBIN/chainexec_watch
[ -x "$WATCH" ] || bail_out "no $WATCH (make install did not install the watcher)"

# ---- the chain: a retry, a failure (warn), a person, an end
psql_q "CREATE SEQUENCE $SEQ" >/dev/null || bail_out "cannot create $SEQ"
def=$(cat <<-JSON
	{"id": "$CHAIN", "steps": [
	 {"id": 1, "name": "fetch_rates", "type": "sql",
	  "sql": "SELECT 1 / (nextval('$SEQ') % 2 - 1) AS rate", "outputVariables": ["rate"],
	  "retryConfig": {"maxRetries": 2, "baseDelayMs": 100, "backoffStrategy": "fixed", "retryOnErrors": ["invalid_input"]}},
	 {"id": 2, "name": "optional_enrichment", "type": "sql", "sql": "SELECT 1 / 0 AS x",
	  "onFailure": "warn", "retryConfig": {"maxRetries": 0}},
	 {"id": 3, "name": "approve_by_manager", "type": "external"},
	 {"id": 4, "name": "finish", "type": "sql", "sql": "SELECT 2 AS y", "outputVariables": ["y"]}]}
	JSON
)
check "define the chain" psql_q "SELECT chainexec.chain_define('$(printf '%s' "$def" | sed "s/'/''/g")', true)"

# start_waiting: start an execution (its first attempt of step 1 fails: the
# sequence's next value is odd) and wait until step 3 waits for a person;
# prints its id.
start_waiting()
{
	local id

	psql_q "SELECT setval('$SEQ', 2)" >/dev/null
	id=$(psql_q "SELECT chainexec.chain_execute('$CHAIN')") || return 1
	poll_query_until "SELECT status FROM chainexec.step_runs WHERE execution_id = '$id' AND step_id = 3" waiting 30 >&2 || return 1
	echo "$id"
}

first=$(start_waiting)
check "a first execution waits for the person" test -n "$first"
psql_q "SELECT chainexec.chain_step_complete('$first', 3, '{}')" >/dev/null
check "and completes (the chain has a history for the ETA)" \
	poll_query_until "SELECT status FROM chainexec.executions WHERE execution_id = '$first'" completed 30

id=$(start_waiting)
[ -n "$id" ] || bail_out "the watched execution never waited for the person"
is "$(psql_q "SELECT (chainexec.chain_status('$id')->'progress'->>'etaMs') IS NOT NULL")" "t" \
	"the watched execution has an estimate of the time left"

# ---- two terminals
for w in 80 160; do
	tmux -L "$TMUX_SOCK" new-session -d -s "w$w" -x "$w" -y 24 \
		"env PGHOST='$PGHOST' PGPORT='$PGPORT' PGUSER='$PGUSER' PGDATABASE='$PGDATABASE' TERM=xterm \
		 '$WATCH' --no-color '$id'; echo \"EXIT=\$?\"; sleep 600" ||
		bail_out "tmux cannot start a session"
done

# screen W: the text of the session W columns wide.
screen()
{
	tmux -L "$TMUX_SOCK" capture-pane -p -t "w$1"
}

# wait_screen W REGEX: wait (10 s at most) until the screen matches REGEX.
wait_screen()
{
	local i

	for i in $(seq 1 50); do
		screen "$1" | grep -Eq "$2" && return 0
		sleep 0.2
	done
	return 1
}

short=${id:0:8}
for w in 80 160; do
	wait_screen "$w" 'approve_by_manager' || true
	sleep 1.2			# one redraw more: elapsed and ETA tick
	s=$(screen "$w")
	diag "screen at $w columns:" "$(printf '%s\n' "$s" | sed '/^$/d')"
	widest=$(tmux -L "$TMUX_SOCK" capture-pane -p -J -t "w$w" | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }')
	check "$w columns: no line is wider than the terminal (widest $widest)" test "$widest" -lt "$w"
	like "$s" "^$short $CHAIN +\[[#-]+\] +50% waiting" "$w columns: id, chain, bar, percent and status \"waiting\" on the first line"
	like "$s" "step 3 approve_by_manager( |$)" "$w columns: the step waiting, whole"
	like "$s" "retries 1 " "$w columns: the retry of step 1"
	like "$s" "failures 1 " "$w columns: the failure of step 2"
	like "$s" "elapsed [0-9.]+s" "$w columns: the time since it started"
	like "$s" "eta [0-9]+(s|m[0-9]{2}s)" "$w columns: the estimated time left"
	bar=$(printf '%s\n' "$s" | grep -Eo '\[[#-]+\]' | head -n 1)
	eval "bar_$w=\$((\${#bar} - 2))"
done
check "80 columns: the bar is at least 20 characters (it is $bar_80)" test "$bar_80" -ge 20
like "$(screen 160)" "^$short $CHAIN +\[[#-]+\] +50% waiting +step 3 approve_by_manager +retries 1 +failures 1 +elapsed [0-9.]+s +eta [0-9]" \
	"160 columns: every field on one line"
check "160 columns: the bar is wider than at 80 ($bar_160 > $bar_80)" test "$bar_160" -gt "$bar_80"

# ---- the person answers
psql_q "SELECT chainexec.chain_step_complete('$id', 3, '{}')" >/dev/null
for w in 80 160; do
	check "$w columns: the watcher exits 0 when the execution completes" wait_screen "$w" '^EXIT=0$'
	like "$(screen "$w")" "^$short $CHAIN +\[#+\] +100% completed" "$w columns: a full bar, 100% and \"completed\""
done

done_testing
exit $?
