# scripts/common.sh: helpers shared by bootstrap.sh, cluster.sh, test.sh and
# demo.sh.  Source it; it defines functions and a few variables and runs
# nothing.
#
#   CE_REPO       the repository root (the folder above scripts/)
#   CE_PGBIN      the PostgreSQL 15 programs (initdb, pg_ctl, postgres, ...)
#   CE_PG_CONFIG  the pg_config the build uses
#   CE_LOGDIR     where the scripts keep build and suite output (test/results/,
#                 ignored by git; not log/, which "make clean" removes)
#   CE_WATCH_LINKDIR  (when set) where "make install" links chainexec_watch
#                 (the Makefile's WATCH_LINKDIR, default /usr/local/bin)

CE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CE_PG_MAJOR=${CE_PG_MAJOR:-15}
CE_PGBIN=${CE_PGBIN:-/usr/lib/postgresql/$CE_PG_MAJOR/bin}
CE_PG_CONFIG=${PG_CONFIG:-$CE_PGBIN/pg_config}
CE_LOGDIR=${CE_LOGDIR:-$CE_REPO/test/results}

# say TEXT: a progress line on stdout.
say()
{
	printf '%s\n' "$*"
}

# warn TEXT: a line on stderr.
warn()
{
	printf '%s\n' "$*" >&2
}

# die TEXT: complain and exit 1.
die()
{
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# as_root CMD...: run a command as root (directly when we are root, else with sudo).
as_root()
{
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root for: $* (run as root, or install sudo)"
	fi
}

# ce_elapsed START: seconds since START (a $SECONDS value), as "12s" or "3m04s".
ce_elapsed()
{
	local s=$((SECONDS - $1))

	if [ "$s" -ge 60 ]; then
		printf '%dm%02ds' $((s / 60)) $((s % 60))
	else
		printf '%ds' "$s"
	fi
}

# ce_show_tail FILE [N]: print the last N (default 60) lines of FILE, indented.
ce_show_tail()
{
	local f=$1 n=${2:-60}

	[ -s "$f" ] || return 0
	say "  --- last lines of $f"
	tail -n "$n" "$f" | sed 's/^/  | /'
	say "  ---"
}

# ce_build [--werror]: build and install the extension (make, make install),
# output in $CE_LOGDIR/build.log.  With --werror every compiler warning in our
# sources is an error, and the tree is cleaned first so that nothing built
# earlier without it is reused.  Returns make's status.
ce_build()
{
	local werror= log=$CE_LOGDIR/build.log

	[ "${1:-}" = "--werror" ] && werror=-Werror
	mkdir -p "$CE_LOGDIR"
	: >"$log"
	(
		cd "$CE_REPO" || exit 1
		if [ -n "$werror" ]; then
			make PG_CONFIG="$CE_PG_CONFIG" clean >>"$log" 2>&1 || exit 1
		fi
		# PG_CFLAGS comes from the environment so that the Makefile's own
		# "PG_CFLAGS += ..." still applies.
		PG_CFLAGS="${PG_CFLAGS:-} $werror" make PG_CONFIG="$CE_PG_CONFIG" >>"$log" 2>&1 || exit 1
		# CE_WATCH_LINKDIR, when set, is where make install links the
		# watcher (WATCH_LINKDIR; empty: no link); else the Makefile's
		# default, /usr/local/bin.
		as_root make PG_CONFIG="$CE_PG_CONFIG" ${CE_WATCH_LINKDIR+WATCH_LINKDIR="$CE_WATCH_LINKDIR"} \
			install >>"$log" 2>&1 || exit 1
	)
}

# ce_build_report: after a failed ce_build, show the errors and warnings.
ce_build_report()
{
	local log=$CE_LOGDIR/build.log

	if grep -qE '(error|warning):' "$log"; then
		say "  --- compiler messages (from $log)"
		grep -E -A3 '(error|warning):' "$log" | head -n 80 | sed 's/^/  | /'
		say "  ---"
	else
		ce_show_tail "$log" 40
	fi
}
