#!/usr/bin/env bash
# scripts/cluster.sh: throwaway PostgreSQL clusters for tests and the demo.
#
# A cluster lives in a fresh temporary folder, ${TMPDIR:-/tmp}/chainexec-cluster.XXXXXX:
#   data/        the data directory (PGDATA)
#   server.log   the server's log
#   .s.PGSQL.N   its unix socket (listen_addresses = '', no TCP)
# on a free port from 54320 upward, with test/chainexec.conf (or $CE_CLUSTER_CONF)
# appended to postgresql.conf, and the database chainexec_test created.  The
# server runs as the OS user "postgres" when we are root (the server refuses to
# run as root), else as the current user; clients connect as PGUSER=postgres
# with trust authentication over the socket.  Debian's default cluster on 5432
# is never used.
#
# As a library (. scripts/cluster.sh):
#   ce_cluster_new [CONF]    create and start a cluster; exports PGHOST, PGPORT,
#                            PGUSER, PGDATABASE, PGDATA, CE_CLUSTER_DIR,
#                            CE_CLUSTER_LOG, CE_CLUSTER_CTL, CE_PGBIN
#   ce_cluster_trap          destroy the cluster when the calling script exits
#                            (normally, on error, or on INT/TERM)
#   ce_cluster_ctl CMD       start | stop | restart | crash | status | reload
#   ce_cluster_destroy       stop (fast, then immediate) and remove the folder
#
# As a command (what $CE_CLUSTER_CTL points to in tests):
#   scripts/cluster.sh new [CONF]   create and start one, print "export ..."
#                                   lines: eval "$(scripts/cluster.sh new)"
#   scripts/cluster.sh start        start the cluster named by $CE_CLUSTER_DIR
#   scripts/cluster.sh stop         pg_ctl stop -m fast
#   scripts/cluster.sh restart      stop -m fast, then start
#   scripts/cluster.sh crash        pg_ctl stop -m immediate (no shutdown
#                                   checkpoint: the next start runs crash recovery)
#   scripts/cluster.sh status       exit 0 when the server runs, 3 when not
#   scripts/cluster.sh reload       pg_ctl reload (after editing postgresql.conf)
#   scripts/cluster.sh destroy      stop it and remove its folder
#
# Folders left by runs that were killed (the process that created them with
# ce_cluster_new is gone) are stopped and removed by the next ce_cluster_new;
# those made with "scripts/cluster.sh new" stay until "destroy".
#
# $CE_SERVER_ENV, when set, is a list of VAR=VALUE words (no spaces inside)
# added to the environment of the server when it starts, e.g. LD_PRELOAD for
# scripts/test.sh --sanitize.

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CE_TEST_DB=${CE_TEST_DB:-chainexec_test}
# Where cluster folders go: $TMPDIR unless its path is too long for a unix
# socket path (about 100 bytes).
CE_CLUSTER_BASE=${TMPDIR:-/tmp}
[ ${#CE_CLUSTER_BASE} -le 60 ] || CE_CLUSTER_BASE=/tmp

# ce_as_owner CMD...: run CMD as the OS user that owns the cluster, from the
# cluster folder (the caller's working directory may be unreadable to it).
ce_as_owner()
{
	(
		cd "${CE_CLUSTER_DIR:-/}" 2>/dev/null || cd /
		if [ "$(id -u)" -eq 0 ]; then
			runuser -u postgres -- "$@"
		else
			"$@"
		fi
	)
}

# ce_port_free PORT: whether nothing seems to serve PORT, over TCP or on a
# unix socket in the usual places or in another throwaway cluster.
ce_port_free()
{
	local p=$1 d

	for d in /var/run/postgresql /tmp "$CE_CLUSTER_BASE"/chainexec-cluster.*; do
		[ -e "$d/.s.PGSQL.$p" ] && return 1
	done
	"$CE_PGBIN/pg_isready" -q -h 127.0.0.1 -p "$p" -t 2 >/dev/null 2>&1
	[ $? -eq 2 ] || return 1
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 1
	return 0
}

# ce_cluster_reap: stop and remove throwaway clusters whose creating process
# no longer exists (a run that was killed before it could clean up).
ce_cluster_reap()
{
	local d pid

	for d in "$CE_CLUSTER_BASE"/chainexec-cluster.*; do
		[ -f "$d/owner.pid" ] || continue
		pid=$(cat "$d/owner.pid" 2>/dev/null || true)
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			continue
		fi
		if [ -f "$d/data/postmaster.pid" ]; then
			CE_CLUSTER_DIR=$d ce_as_owner "$CE_PGBIN/pg_ctl" -D "$d/data" -m immediate -w stop >/dev/null 2>&1 || true
		fi
		rm -rf "$d"
	done
}

# ce_cluster_new [CONF]: create, configure and start a throwaway cluster, and
# create the test database.  Exports the connection settings.  Returns
# non-zero (after removing the folder) when anything fails.
ce_cluster_new()
{
	local conf=${1:-${CE_CLUSTER_CONF:-$CE_REPO/test/chainexec.conf}}
	local dir port p owner_pid=${CE_CLUSTER_OWNER_PID-$$}

	[ -r "$conf" ] || { warn "cluster: cannot read $conf"; return 1; }
	[ -x "$CE_PGBIN/initdb" ] || { warn "cluster: $CE_PGBIN/initdb not found (run scripts/bootstrap.sh)"; return 1; }
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		warn "cluster: no OS user \"postgres\" to run the server as"
		return 1
	fi
	ce_cluster_reap

	dir=$(mktemp -d "$CE_CLUSTER_BASE/chainexec-cluster.XXXXXX") || return 1
	[ -n "$owner_pid" ] && echo "$owner_pid" >"$dir/owner.pid"
	# Traversable by everyone (clients reach the socket by its path), listable by none.
	chmod 0711 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
	fi

	port=
	for p in $(seq 54320 54419); do
		if ce_port_free "$p"; then
			port=$p
			break
		fi
	done
	if [ -z "$port" ]; then
		warn "cluster: no free port in 54320-54419"
		rm -rf "$dir"
		return 1
	fi

	export CE_CLUSTER_DIR=$dir
	export PGDATA=$dir/data
	export CE_CLUSTER_LOG=$dir/server.log
	export PGHOST=$dir
	export PGPORT=$port
	export PGUSER=postgres
	export PGDATABASE=$CE_TEST_DB
	export CE_CLUSTER_CTL=$CE_REPO/scripts/cluster.sh
	export CE_PGBIN
	unset PGSERVICE PGHOSTADDR PGPASSWORD PGOPTIONS PGSSLMODE

	if ! ce_as_owner "$CE_PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-locale \
			--no-sync >"$dir/initdb.log" 2>&1; then
		warn "cluster: initdb failed:"
		sed 's/^/  | /' "$dir/initdb.log" >&2
		rm -rf "$dir"
		return 1
	fi
	{
		echo
		echo "# ---- $conf (appended by scripts/cluster.sh)"
		cat "$conf"
		echo
		echo "# ---- this cluster (scripts/cluster.sh)"
		echo "port = $port"
		echo "unix_socket_directories = '$dir'"
		# pg_cron's jobs connect over the same socket
		echo "cron.host = '$dir'"
	} >>"$PGDATA/postgresql.conf"

	if ! ce_cluster_ctl start; then
		ce_cluster_destroy
		return 1
	fi
	if ! "$CE_PGBIN/psql" -X -q -d postgres -v ON_ERROR_STOP=1 \
			-c "CREATE DATABASE \"$CE_TEST_DB\"" >/dev/null 2>"$dir/createdb.log"; then
		warn "cluster: could not create database $CE_TEST_DB:"
		sed 's/^/  | /' "$dir/createdb.log" >&2
		ce_cluster_destroy
		return 1
	fi
	return 0
}

# ce_cluster_ctl CMD: start | stop | restart | crash | status | reload the
# cluster named by $CE_CLUSTER_DIR.
ce_cluster_ctl()
{
	local cmd=${1:-}

	[ -n "${CE_CLUSTER_DIR:-}" ] && [ -d "$CE_CLUSTER_DIR/data" ] ||
		{ warn "cluster: CE_CLUSTER_DIR does not name a cluster"; return 1; }
	local data=$CE_CLUSTER_DIR/data log=$CE_CLUSTER_DIR/server.log

	case $cmd in
		start)
			# shellcheck disable=SC2086 # VAR=VALUE words, split on purpose
			if ! ce_as_owner env ${CE_SERVER_ENV:-} "$CE_PGBIN/pg_ctl" -D "$data" -l "$log" -w -t 180 start >/dev/null 2>&1; then
				warn "cluster: the server did not start; end of $log:"
				tail -n 30 "$log" | sed 's/^/  | /' >&2
				return 1
			fi
			;;
		stop)
			ce_as_owner "$CE_PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null
			;;
		restart)
			ce_cluster_ctl stop && ce_cluster_ctl start
			;;
		crash)
			ce_as_owner "$CE_PGBIN/pg_ctl" -D "$data" -m immediate -w -t 60 stop >/dev/null
			;;
		status)
			ce_as_owner "$CE_PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1
			;;
		reload)
			ce_as_owner "$CE_PGBIN/pg_ctl" -D "$data" reload >/dev/null
			;;
		*)
			warn "cluster: unknown command \"$cmd\" (start, stop, restart, crash, status, reload)"
			return 2
			;;
	esac
}

# ce_cluster_destroy: stop the cluster (fast; immediate if that fails) and
# remove its folder.  Safe to call twice, or when no cluster was made.
ce_cluster_destroy()
{
	local dir=${CE_CLUSTER_DIR:-}

	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	case $dir in
		*/chainexec-cluster.*) ;;
		*) warn "cluster: refusing to remove $dir"; return 1 ;;
	esac
	if [ -f "$dir/data/postmaster.pid" ]; then
		ce_as_owner "$CE_PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			ce_as_owner "$CE_PGBIN/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	unset CE_CLUSTER_DIR
}

# ce_cluster_trap: destroy the cluster when this shell exits, however it exits.
ce_cluster_trap()
{
	trap 'ce_cluster_destroy' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

# Run as a command: dispatch the subcommand.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -uo pipefail
	case ${1:-} in
		new)
			# No owner: such a cluster lives until "destroy".
			CE_CLUSTER_OWNER_PID= ce_cluster_new "${2:-}" || exit 1
			for v in CE_CLUSTER_DIR PGDATA CE_CLUSTER_LOG PGHOST PGPORT PGUSER PGDATABASE CE_CLUSTER_CTL CE_PGBIN; do
				printf 'export %s=%q\n' "$v" "${!v}"
			done
			;;
		destroy)
			ce_cluster_destroy
			;;
		start | stop | restart | crash | status | reload)
			ce_cluster_ctl "$1"
			;;
		*)
			sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
			exit 2
			;;
	esac
fi
