#!/usr/bin/env bash
# scripts/test.sh: build chainexec and pass every test suite, on a throwaway
# cluster.  This is the command CI runs (.ci/run) and the README's second
# command.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    skip the slow suites: test/fault/ and any file
#                              marked "chainexec-test: slow" (see test/lib/README.md)
#   scripts/test.sh --only unit,regress,pgtap,integration,security,fault,perl,citus
#                              run only these suites (the build always runs)
#   scripts/test.sh --private  build and install into a private copy of the
#                              server's installation (removed at exit), so
#                              that runs from several trees on one machine do
#                              not install over each other
#   scripts/test.sh --sanitize build the extension with AddressSanitizer and
#                              UBSan and run the server with gcc's ASan runtime
#                              preloaded (combines with the options above)
#
# Steps: install what is missing (scripts/bootstrap.sh); make, make install
# with -Werror; unit tests (make -C test/unit) and the layout rules
# (scripts/check_layout.sh); start a throwaway cluster
# (scripts/cluster.sh, settings test/chainexec.conf); pg_regress (make
# installcheck, database contrib_regression); CREATE EXTENSION chainexec in
# chainexec_test and the pgTAP suites test/pgtap/*.sql (and test/pgtap/*/*.sql)
# with pg_prove; the TAP scripts test/integration/*.sh and test/fault/*.sh;
# Perl TAP tests test/t/*.pl (PostgreSQL::Test::Cluster) when there are any;
# test/citus/*.sh (a Citus coordinator and two workers of their own; skipped
# when Citus is not installed).
# The cluster is stopped and removed at the end, whatever happens.
#
# With --sanitize the server's installation (pg_config --bindir, --pkglibdir,
# --sharedir, --pkgincludedir) is copied to a temporary folder first, and the
# extension is built and installed there only: the installed extension and any
# other cluster are left alone.  Debian's postgres is not instrumented, the
# extension is; palloc'd memory is carved out of malloc'd blocks, so ASan sees
# overruns past a block, use of freed malloc'd memory, stack and global
# overruns, and UBSan the rest (bounds, null, shifts, misaligned accesses).
# Leak detection is off (the server leaks by design).  Reports go to the
# server log, and one more test fails when it has any.  The Perl TAP tests
# (their own clusters, no preload) and test/integration/scale.sh (it measures
# executors' memory and CPU) are skipped.  The tree is cleaned at the end, so
# that a later "make install" cannot install instrumented objects.
#
# Every individual test counts: each unit check, each pg_regress test file,
# each pgTAP assertion, each TAP line of the scripts.  A step that breaks
# before its tests can run (build, cluster start, a script that dies before
# its plan) counts as one failed test; tests that a plan announced and that
# never ran count as failed.  One more test checks, at the end, that no server
# process of the cluster crashed (SIGSEGV, SIGABRT, ..., PANIC, assertion).  A file skipped by --quick, or whose plan is
# "1..0 # SKIP", counts as one skipped test.  The last line is
#   N passed, N failed[, N skipped]
# and the exit status is 0 only when nothing failed.  Suite output is kept in
# test/results/ (ignored by git); failures are shown inline.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
. "$CE_REPO/scripts/cluster.sh"

QUICK=0
ONLY=
SANITIZE=0
PRIVATE=0
while [ $# -gt 0 ]; do
	case $1 in
		--quick) QUICK=1 ;;
		--only) ONLY=${2:-}; shift ;;
		--only=*) ONLY=${1#--only=} ;;
		--sanitize) SANITIZE=1 ;;
		--private) PRIVATE=1 ;;
		-h | --help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
		*) die "unknown option \"$1\" (see scripts/test.sh --help)" ;;
	esac
	shift
done

cd "$CE_REPO" || exit 1
export CE_REPO CE_QUICK=$QUICK
export PATH=$CE_PGBIN:$PATH
LOGS=$CE_LOGDIR
rm -rf "$LOGS"
mkdir -p "$LOGS"

TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
SUMMARY=()
START=$SECONDS

# wanted SUITE: whether --only (if given) names SUITE.
wanted()
{
	[ -z "$ONLY" ] && return 0
	case ",$ONLY," in
		*",$1,"*) return 0 ;;
	esac
	return 1
}

# record NAME PASSED FAILED SKIPPED START: add a suite's counts to the totals
# and print its line.
record()
{
	local name=$1 p=$2 f=$3 s=$4 line

	TOTAL_PASSED=$((TOTAL_PASSED + p))
	TOTAL_FAILED=$((TOTAL_FAILED + f))
	TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
	line=$(printf '%-44s %4d passed, %d failed' "$name" "$p" "$f")
	[ "$s" -gt 0 ] && line+=", $s skipped"
	[ "$f" -gt 0 ] && line+="  <-- FAILED"
	SUMMARY+=("$line")
	say "  $(printf '%-44s' "$name") $p passed, $f failed$([ "$s" -gt 0 ] && echo ", $s skipped") ($(ce_elapsed "$5"))"
}

# tap_count FILE: count the TAP lines of FILE; prints "PASSED FAILED SKIPPED".
# Only numbered lines at the start of a line count ("ok 3", "not ok 4"):
# "# SKIP" oks are skipped, "# TODO" not-oks are skipped (expected failures).
# A plan "1..0 # SKIP" counts as one skipped test.  Planned tests that did
# not run, a missing plan, more tests than planned or a "Bail out!" count as
# failures.
tap_count()
{
	awk '
	BEGIN { p = 0; f = 0; s = 0; seen = 0; plan = -1; skipall = 0; bail = 0 }
	/^not ok [0-9]+/ { seen++; if (tolower($0) ~ /#[ \t]*todo/) s++; else f++; next }
	/^ok [0-9]+/ { seen++; if (tolower($0) ~ /#[ \t]*skip/) s++; else p++; next }
	/^1\.\.[0-9]+/ {
		match($0, /^1\.\.[0-9]+/); plan = substr($0, 4, RLENGTH - 3) + 0
		if (plan == 0) skipall = 1
		next
	}
	/^Bail out!/ { bail = 1 }
	END {
		if (skipall && seen == 0) s++
		else if (plan < 0) f++
		else if (seen < plan) f += plan - seen
		else if (seen > plan) f++
		if (bail && seen >= plan) f++
		print p, f, s
	}' "$1"
}

# show_tap_failures FILE: print the failed TAP lines of FILE with the
# diagnostics that follow them.
show_tap_failures()
{
	awk '
	/^not ok [0-9]+/ && tolower($0) !~ /#[ \t]*todo/ { show = 1; n++; if (n <= 40) print "  | " $0; next }
	/^(ok|not ok) [0-9]+/ { show = 0; next }
	/^Bail out!/ { print "  | " $0; next }
	/^[ \t]*#/ && show && n <= 40 { print "  | " $0; next }
	' "$1"
}

# header_has FILE WORD: whether the first 20 lines of FILE contain
# "chainexec-test:" followed by WORD (e.g. slow, timeout=900).
header_has()
{
	head -n 20 "$1" | grep -qE "chainexec-test:.*\b$2\b"
}

# header_timeout FILE DEFAULT: the file's "chainexec-test: timeout=N", or DEFAULT.
header_timeout()
{
	local t

	t=$(head -n 20 "$1" | sed -n 's/.*chainexec-test:.*timeout=\([0-9][0-9]*\).*/\1/p' | head -n 1)
	echo "${t:-$2}"
}

# quick_skip FILE NAME: under --quick, record a slow FILE as skipped; returns
# 0 when it was skipped.
quick_skip()
{
	if [ "$QUICK" -eq 1 ] && header_has "$1" slow; then
		record "$2 (slow, --quick)" 0 0 1 "$SECONDS"
		return 0
	fi
	return 1
}

# ensure_cluster NAME: after a suite, make sure the server runs (a script may
# have stopped or crashed it); returns non-zero when it cannot be started.
ensure_cluster()
{
	ce_cluster_ctl status && return 0
	say "  ($1 left the server stopped; starting it again)"
	ce_cluster_ctl start
}

CLUSTER_LOG_SHOWN=0
# show_server_log: after a failure in a cluster suite, the end of the server log (once).
show_server_log()
{
	[ "$CLUSTER_LOG_SHOWN" -eq 0 ] || return 0
	CLUSTER_LOG_SHOWN=1
	[ -n "${CE_CLUSTER_LOG:-}" ] && ce_show_tail "$CE_CLUSTER_LOG" 40
	cp "$CE_CLUSTER_LOG" "$LOGS/server.log" 2>/dev/null || true
}

# private_setup: copy the server's installation to a temporary folder
# ($SAN_DIR, removed at exit) and point CE_PGBIN and CE_PG_CONFIG at the
# copy (--private, --sanitize).  Returns non-zero (after saying why) when it
# cannot.
private_setup()
{
	local d root

	SAN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chainexec-install.XXXXXX") || return 1
	chmod 0755 "$SAN_DIR"
	root=$SAN_DIR/pg
	for d in $("$CE_PG_CONFIG" --bindir --pkglibdir --sharedir --pkgincludedir); do
		mkdir -p "$root$(dirname "$d")" && cp -a "$d" "$root$d" || return 1
	done
	# The server's programs find their files relative to their own folder.
	d=$("$root$("$CE_PG_CONFIG" --bindir)/pg_config" --pkglibdir)
	if [ "$d" != "$root$("$CE_PG_CONFIG" --pkglibdir)" ]; then
		warn "the copy of the installation is not relocatable (its pkglibdir is $d)"
		return 1
	fi
	CE_PGBIN=$root$("$CE_PG_CONFIG" --bindir)
	CE_PG_CONFIG=$CE_PGBIN/pg_config
	# make install links the watcher here, not in /usr/local/bin
	CE_WATCH_LINKDIR=$SAN_DIR/bin
	export CE_PGBIN CE_PG_CONFIG CE_WATCH_LINKDIR
}

# sanitize_setup: for --sanitize, a private installation (private_setup)
# and the flags and the environment the build and the server get.
sanitize_setup()
{
	local libasan

	libasan=$(gcc -print-file-name=libasan.so 2>/dev/null)
	case $libasan in
		/*) ;;
		*) warn "sanitize: gcc has no libasan.so (install libasan of gcc's version)"; return 1 ;;
	esac
	private_setup || return 1
	# glibc's bindtextdomain() hangs in a process that preloads libasan:
	# the copy's postgres gets no message catalogs (the cluster runs in C).
	gcc -shared -fPIC -O2 -o "$SAN_DIR/libnonls.so" "$CE_REPO/scripts/asan_nonls.c" || return 1
	export PG_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer ${PG_CFLAGS:-}"
	# Inherited by the server and by every instrumented client (the watcher);
	# reports go to standard error, i.e. the server log.
	export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:quarantine_size_mb=64
	export UBSAN_OPTIONS=print_stacktrace=1
	# Only the server's processes get the runtime (scripts/cluster.sh).
	export CE_SERVER_ENV="LD_PRELOAD=$libasan:$SAN_DIR/libnonls.so"
}

# ---------------------------------------------------------------------------
say "== bootstrap"
if ! "$CE_REPO/scripts/bootstrap.sh"; then
	record "bootstrap" 0 1 0 "$START"
	say "0 passed, 1 failed"
	exit 1
fi

SAN_DIR=
if [ "$SANITIZE" -eq 1 ]; then
	say "== sanitizers (AddressSanitizer, UBSan)"
	t=$SECONDS
	trap '[ -n "$SAN_DIR" ] && rm -rf "$SAN_DIR"' EXIT
	if ! sanitize_setup; then
		record "sanitizer setup" 0 1 0 "$t"
		say "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
		exit 1
	fi
	export PATH=$CE_PGBIN:$PATH
	say "  a copy of the server's installation in $SAN_DIR ($(ce_elapsed "$t"))"
elif [ "$PRIVATE" -eq 1 ]; then
	say "== private installation"
	t=$SECONDS
	trap '[ -n "$SAN_DIR" ] && rm -rf "$SAN_DIR"' EXIT
	if ! private_setup; then
		record "private installation" 0 1 0 "$t"
		say "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
		exit 1
	fi
	export PATH=$CE_PGBIN:$PATH
	say "  a copy of the server's installation in $SAN_DIR ($(ce_elapsed "$t"))"
fi

say "== build (make, make install; warnings are errors)"
t=$SECONDS
BUILD_OK=1
if ce_build --werror; then
	say "  built and installed ($(ce_elapsed "$t"))"
else
	BUILD_OK=0
	say "  build FAILED ($(ce_elapsed "$t"))"
	ce_build_report
	record "build" 0 1 0 "$t"
fi

# ---------------------------------------------------------------------------
if wanted unit && [ -d test/unit ]; then
	say "== unit tests (make -C test/unit)"
	t=$SECONDS
	log=$LOGS/unit.log
	make -C test/unit clean >/dev/null 2>&1
	timeout -k 10 600 make -C test/unit >"$log" 2>&1
	rc=$?
	counts=$(sed -n 's/^unit: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1 \2/p' "$log" | tail -n 1)
	if [ -n "$counts" ]; then
		read -r p f <<<"$counts"
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	else
		p=0 f=1
	fi
	if grep -q 'warning:' "$log"; then
		say "  compiler warnings in the unit test build:"
		grep -A3 'warning:' "$log" | head -n 40 | sed 's/^/  | /'
		f=$((f + 1))
	fi
	record "unit" "$p" "$f" 0 "$t"
	if [ "$f" -gt 0 ]; then
		grep -E 'FAIL|error' "$log" | head -n 60 | sed 's/^/  | /'
		[ -n "$counts" ] || ce_show_tail "$log" 40
	fi
fi

# The rules of the source layout (file and function sizes, no include
# circle between directories, status names only in their table).
if wanted unit; then
	say "== layout (scripts/check_layout.sh)"
	t=$SECONDS
	log=$LOGS/layout.log
	"$CE_REPO/scripts/check_layout.sh" >"$log" 2>&1
	rc=$?
	counts=$(sed -n 's/^layout: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1 \2/p' "$log" | tail -n 1)
	if [ -n "$counts" ]; then
		read -r p f <<<"$counts"
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	else
		p=0 f=1
	fi
	record "layout" "$p" "$f" 0 "$t"
	[ "$f" -gt 0 ] && grep -E '^(not ok|#)' "$log" | head -n 40 | sed 's/^/  | /'
fi

# ---------------------------------------------------------------------------
# The suites below need the extension and a cluster.
if [ "$BUILD_OK" -eq 0 ]; then
	say "== the build failed: pg_regress, pgTAP and script suites not run"
else
	say "== cluster"
	t=$SECONDS
	ce_cluster_trap
	# (after the cluster, whose programs are in it)
	[ -n "$SAN_DIR" ] && trap 'ce_cluster_destroy; rm -rf "$SAN_DIR"' EXIT
	if ! ce_cluster_new; then
		record "cluster start" 0 1 0 "$t"
		CLUSTER_OK=0
	else
		CLUSTER_OK=1
		say "  started on port $PGPORT in $CE_CLUSTER_DIR ($(ce_elapsed "$t"))"
	fi

	# ---- pg_regress
	if [ "$CLUSTER_OK" -eq 1 ] && wanted regress && compgen -G 'sql/*.sql' >/dev/null; then
		say "== pg_regress (make installcheck)"
		t=$SECONDS
		log=$LOGS/regress.log
		rm -f regression.diffs regression.out
		rm -rf output_iso
		# (with test/specs/*.spec, installcheck also runs the isolation specs)
		timeout -k 10 1200 make PG_CONFIG="$CE_PG_CONFIG" installcheck >"$log" 2>&1
		rc=$?
		read -r p f s <<<"$(awk '
			BEGIN { p = 0; f = 0; s = 0 }
			/\.\.\. +ok/ || /^ok [0-9]+ / { p++; next }
			/\.\.\. +failed \(ignored\)/ { s++; next }
			/\.\.\. +FAILED/ || /^not ok [0-9]+ / { f++; next }
			END { print p, f, s }' "$log")"
		n=$(( $(find sql -maxdepth 1 -name '*.sql' | wc -l) + $(find test/specs -maxdepth 1 -name '*.spec' 2>/dev/null | wc -l) ))
		[ $((p + f + s)) -lt "$n" ] && f=$((f + n - p - f - s))
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
		record "pg_regress" "$p" "$f" "$s" "$t"
		if [ "$f" -gt 0 ]; then
			grep -E 'FAILED|failed|error' "$log" | head -n 20 | sed 's/^/  | /'
			if [ -s regression.diffs ] || [ -s output_iso/regression.diffs ]; then
				for d in regression.diffs output_iso/regression.diffs; do
					[ -s "$d" ] || continue
					cp "$d" "$LOGS/$(echo "$d" | tr / _)"
					say "  --- $d"
					head -n 300 "$d" | sed 's/^/  | /'
					say "  ---"
				done
			else
				ce_show_tail "$log" 30
			fi
			show_server_log
		fi
	fi

	# ---- pgTAP
	mapfile -t PGTAP < <(find test/pgtap -mindepth 1 -maxdepth 2 -name '*.sql' 2>/dev/null | sort)
	if [ "$CLUSTER_OK" -eq 1 ] && wanted pgtap && [ ${#PGTAP[@]} -gt 0 ]; then
		say "== pgTAP (pg_prove, database $PGDATABASE)"
		t=$SECONDS
		if ! out=$(psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION IF NOT EXISTS chainexec' 2>&1); then
			record "CREATE EXTENSION chainexec" 0 1 0 "$t"
			printf '%s\n' "$out" | sed 's/^/  | /'
			show_server_log
		fi
		for f in "${PGTAP[@]}"; do
			name=${f#test/}
			quick_skip "$f" "$name" && continue
			t=$SECONDS
			log=$LOGS/${name//\//_}.log
			timeout -k 10 "$(header_timeout "$f" 600)" pg_prove -v -d "$PGDATABASE" "$f" >"$log" 2>&1
			rc=$?
			read -r p nf s <<<"$(tap_count "$log")"
			[ "$rc" -ne 0 ] && [ "$nf" -eq 0 ] && nf=1
			record "$name" "$p" "$nf" "$s" "$t"
			if [ "$nf" -gt 0 ]; then
				show_tap_failures "$log"
				grep -E 'ERROR|FATAL|psql:|Dubious|Bad plan|Parse errors|Timeout' "$log" | head -n 20 | sed 's/^/  | /'
				[ "$rc" -eq 124 ] && say "  | (timed out)"
				show_server_log
			fi
			ensure_cluster "$name" || { CLUSTER_OK=0; break; }
		done
	elif [ ${#PGTAP[@]} -gt 0 ] && wanted pgtap; then
		record "pgTAP (server down)" 0 1 0 "$SECONDS"
	fi

	# ---- TAP scripts: integration, security (attacks by LOGIN-only roles),
	# then fault (which crash the server)
	for kind in integration security fault; do
		wanted "$kind" || continue
		mapfile -t SCRIPTS < <(find "test/$kind" -maxdepth 1 -name '*.sh' -perm -u+x 2>/dev/null | sort)
		[ ${#SCRIPTS[@]} -gt 0 ] || continue
		say "== $kind scripts"
		for f in "${SCRIPTS[@]}"; do
			name=${f#test/}
			if [ "$QUICK" -eq 1 ] && [ "$kind" = fault ]; then
				record "$name (fault, --quick)" 0 0 1 "$SECONDS"
				continue
			fi
			quick_skip "$f" "$name" && continue
			if [ "$SANITIZE" -eq 1 ] && [ "$name" = integration/scale.sh ]; then
				record "$name (measures memory, --sanitize)" 0 0 1 "$SECONDS"
				continue
			fi
			if [ "$CLUSTER_OK" -ne 1 ]; then
				record "$name (server down)" 0 1 0 "$SECONDS"
				continue
			fi
			t=$SECONDS
			log=$LOGS/${name//\//_}
			timeout -k 10 "$(header_timeout "$f" 600)" "$f" </dev/null >"$log.tap" 2>"$log.err"
			rc=$?
			read -r p nf s <<<"$(tap_count "$log.tap")"
			[ "$rc" -ne 0 ] && [ "$nf" -eq 0 ] && nf=1
			record "$name" "$p" "$nf" "$s" "$t"
			if [ "$nf" -gt 0 ]; then
				show_tap_failures "$log.tap"
				[ "$rc" -eq 124 ] && say "  | (timed out)"
				[ "$rc" -ne 0 ] && say "  | (exit status $rc)"
				ce_show_tail "$log.err" 20
				show_server_log
			fi
			ensure_cluster "$name" || CLUSTER_OK=0
		done
	done

	# ---- Perl TAP tests (PostgreSQL::Test::Cluster makes its own clusters)
	mapfile -t PERLT < <(find test/t -maxdepth 1 -name '*.pl' 2>/dev/null | sort)
	if wanted perl && [ ${#PERLT[@]} -gt 0 ] && [ "$SANITIZE" -eq 1 ]; then
		record "Perl TAP tests (no preload, --sanitize)" 0 0 ${#PERLT[@]} "$SECONDS"
	elif wanted perl && [ ${#PERLT[@]} -gt 0 ]; then
		say "== Perl TAP tests (test/t)"
		perlinc=$("$CE_PG_CONFIG" --pkglibdir)/pgxs/src/test/perl
		pgregress=$("$CE_PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress
		# initdb refuses to run as root: run them as postgres, from a copy
		# of test/ that postgres can read.
		tdir=$(mktemp -d "${TMPDIR:-/tmp}/chainexec-tap.XXXXXX")
		cp -r test "$tdir/"
		[ "$(id -u)" -eq 0 ] && chown -R postgres: "$tdir"
		for f in "${PERLT[@]}"; do
			name=${f#test/}
			quick_skip "$f" "$name" && continue
			t=$SECONDS
			log=$LOGS/${name//\//_}.log
			(
				cd "$tdir" || exit 1
				runner=()
				[ "$(id -u)" -eq 0 ] && runner=(runuser -u postgres --)
				timeout -k 10 "$(header_timeout "$f" 900)" "${runner[@]}" env PATH="$PATH" \
					TESTDIR="$tdir" PG_REGRESS="$pgregress" CE_REPO="$tdir" \
					prove -v -I "$perlinc" "$f"
			) </dev/null >"$log" 2>&1
			rc=$?
			read -r p nf s <<<"$(tap_count "$log")"
			[ "$rc" -ne 0 ] && [ "$nf" -eq 0 ] && nf=1
			record "$name" "$p" "$nf" "$s" "$t"
			if [ "$nf" -gt 0 ]; then
				show_tap_failures "$log"
				ce_show_tail "$log" 20
			fi
		done
		rm -rf "$tdir"
	fi

	# ---- Citus (test/citus/*.sh start their own coordinator and workers;
	# each one's plan is "1..0 # SKIP" when Citus is not installed, which
	# counts as skipped)
	mapfile -t CITUS < <(find test/citus -maxdepth 1 -name '*.sh' -perm -u+x 2>/dev/null | sort)
	if wanted citus && [ ${#CITUS[@]} -gt 0 ]; then
		say "== Citus scripts (test/citus)"
		for f in "${CITUS[@]}"; do
			name=${f#test/}
			quick_skip "$f" "$name" && continue
			if [ "$SANITIZE" -eq 1 ]; then
				record "$name (no preload, --sanitize)" 0 0 1 "$SECONDS"
				continue
			fi
			t=$SECONDS
			log=$LOGS/${name//\//_}
			timeout -k 10 "$(header_timeout "$f" 600)" "$f" </dev/null >"$log.tap" 2>"$log.err"
			rc=$?
			read -r p nf s <<<"$(tap_count "$log.tap")"
			[ "$rc" -ne 0 ] && [ "$nf" -eq 0 ] && nf=1
			grep -q '^1\.\.0 # SKIP' "$log.tap" && name+=" ($(sed -n 's/^1\.\.0 # SKIP //p' "$log.tap" | cut -d' ' -f1-4))"
			record "$name" "$p" "$nf" "$s" "$t"
			if [ "$nf" -gt 0 ]; then
				show_tap_failures "$log.tap"
				[ "$rc" -eq 124 ] && say "  | (timed out)"
				[ "$rc" -ne 0 ] && say "  | (exit status $rc)"
				ce_show_tail "$log.err" 20
			fi
		done
	fi

	# ---- the server log: no server process may have crashed on its own
	# (fault tests kill with SIGKILL or stop -m immediate, never these).
	if [ -n "${CE_CLUSTER_DIR:-}" ] && [ -f "$CE_CLUSTER_LOG" ]; then
		cp "$CE_CLUSTER_LOG" "$LOGS/server.log" 2>/dev/null || true
		t=$SECONDS
		crashes=$(grep -E 'terminated by signal (4|6|7|8|11)\b|PANIC:|TRAP:' "$CE_CLUSTER_LOG" | head -n 20)
		if [ -n "$crashes" ]; then
			record "server log: no crash" 0 1 0 "$t"
			printf '%s\n' "$crashes" | sed 's/^/  | /'
		else
			record "server log: no crash" 1 0 0 "$t"
		fi
		if [ "$SANITIZE" -eq 1 ]; then
			reports=$(grep -E '^==[0-9]+==ERROR: |runtime error: |^SUMMARY: [A-Za-z]+Sanitizer' "$CE_CLUSTER_LOG")
			if [ -n "$reports" ]; then
				record "server log: no sanitizer report" 0 1 0 "$t"
				printf '%s\n' "$reports" | head -n 20 | sed 's/^/  | /'
				say "  (the reports with their stacks are in ${LOGS#"$CE_REPO"/}/server.log)"
			else
				record "server log: no sanitizer report" 1 0 0 "$t"
			fi
		fi
	fi

	say "== stopping the cluster"
	ce_cluster_destroy
fi

# The instrumented objects must not be installed by a later plain "make install".
[ "$SANITIZE" -eq 1 ] && make PG_CONFIG="$CE_PG_CONFIG" clean >/dev/null 2>&1

# ---------------------------------------------------------------------------
say ""
say "== summary ($(ce_elapsed "$START"); logs in ${LOGS#"$CE_REPO"/})"
for line in "${SUMMARY[@]}"; do
	say "  $line"
done
final="$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_SKIPPED" -gt 0 ] && final+=", $TOTAL_SKIPPED skipped"
say "$final"
[ "$TOTAL_FAILED" -eq 0 ]
