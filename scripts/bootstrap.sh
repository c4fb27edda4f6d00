#!/usr/bin/env bash
# scripts/bootstrap.sh: install, with apt, whatever chainexec needs to build
# and test and is not installed yet.  Idempotent: when everything is there it
# installs nothing and does not touch the network.  Runs as root, or as a
# user with sudo.
#
# Debian's postgresql-15 package creates (and may start) a default cluster on
# port 5432; chainexec's scripts leave it alone and never use it.
#
# clang is optional (fuzz and sanitizer targets of test/unit only) and is not
# installed here.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PACKAGES=(
	postgresql-15				# server
	postgresql-server-dev-15	# PGXS, server headers
	postgresql-15-cron			# pg_cron (chain schedules)
	postgresql-15-pgtap			# pgTAP extension
	pgtap						# pg_prove
	libpq-dev					# the watcher (libpq client)
	make
	gcc
	libipc-run-perl				# TAP tests with PostgreSQL::Test::Cluster
	tmux						# the watcher in a real terminal (test/integration/watch_tty.sh)
	python3-psycopg				# the Python example (examples/python)
	graphviz					# dot: chain_graph's DOT rendered to SVG (test/integration/observe.sh)
	python3-yaml				# reads contrib/postgres_exporter.yaml (test/integration/observe.sh)
)

# installed PKG: whether dpkg has PKG installed.
installed()
{
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
# The Node.js example (examples/node): Debian's nodejs and npm, unless a
# node and an npm are on PATH already (from another source, say).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	for p in nodejs npm; do
		installed "$p" || missing+=("$p")
	done
fi

if [ ${#missing[@]} -eq 0 ]; then
	say "bootstrap: all ${#PACKAGES[@]} packages present"
	exit 0
fi

say "bootstrap: installing ${missing[*]}"
mkdir -p "$CE_LOGDIR"
log=$CE_LOGDIR/bootstrap.log
apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >"$log" 2>&1 ||
   ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" --no-install-recommends \
		"${missing[@]}" >>"$log" 2>&1; then
	ce_show_tail "$log" 40
	die "bootstrap: apt-get failed (full output in $log)"
fi
for p in "${missing[@]}"; do
	installed "$p" || die "bootstrap: $p is still not installed (see $log)"
done
say "bootstrap: installed ${#missing[@]} package(s)"
