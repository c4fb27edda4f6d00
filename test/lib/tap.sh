# test/lib/tap.sh: TAP output for shell test scripts (test/integration/*.sh,
# test/fault/*.sh).  Source it:
#
#   . "$CE_REPO/test/lib/tap.sh"
#   plan 3                                   # or no plan, and done_testing at the end
#   ok "the worker is running"               # a passed test
#   not_ok "step ran twice" "line 4 has attempt 2"   # a failed test (+ diagnostics)
#   is "$(psql_q 'SELECT 1')" "1" "select works"     # equality
#   check "database answers" psql_q 'SELECT 1'        # a command's exit status
#   done_testing                             # prints the plan if none; exit status
#
# Output: "ok N - description", "not ok N - description", "# diagnostics",
# and the plan "1..N" (see test/lib/README.md for the whole contract).

TAP_N=0
TAP_FAILED=0
TAP_PLANNED=

# plan N: announce N tests (first, or use done_testing at the end instead).
plan()
{
	TAP_PLANNED=$1
	echo "1..$1"
}

# diag LINE...: diagnostics, one "# LINE" per argument.
diag()
{
	printf '%s\n' "$@" | sed 's/^/# /'
}

# ok DESCRIPTION: a passed test.
ok()
{
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1"
}

# not_ok DESCRIPTION [DIAGNOSTICS...]: a failed test.
not_ok()
{
	local desc=$1

	shift
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $desc"
	[ $# -gt 0 ] && diag "$@"
	return 0
}

# skip DESCRIPTION [REASON]: a test not run.
skip()
{
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1 # SKIP ${2:-}"
}

# is GOT EXPECTED DESCRIPTION: passes when the strings are equal.
is()
{
	if [ "$1" = "$2" ]; then
		ok "$3"
	else
		not_ok "$3" "     got: '$1'" "expected: '$2'"
	fi
}

# isnt GOT UNEXPECTED DESCRIPTION: passes when the strings differ.
isnt()
{
	if [ "$1" != "$2" ]; then
		ok "$3"
	else
		not_ok "$3" "     got: '$1'" "expected anything else"
	fi
}

# like GOT REGEX DESCRIPTION: passes when GOT matches the extended regex.
like()
{
	if printf '%s' "$1" | grep -qE -- "$2"; then
		ok "$3"
	else
		not_ok "$3" "     got: '$1'" "expected to match: /$2/"
	fi
}

# check DESCRIPTION CMD...: passes when CMD exits with status 0 (its output
# is shown as diagnostics when it fails).
check()
{
	local desc=$1 out

	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "command failed: $*" "$out"
	fi
}

# bail_out REASON: stop the whole script (the runner counts the tests that
# were planned and not run as failed).
bail_out()
{
	echo "Bail out! $*"
	exit 255
}

# done_testing: print the plan when none was given; return 0 when every test
# passed and the count matches the plan, else 1.  End scripts with
#   done_testing; exit $?
done_testing()
{
	if [ -z "$TAP_PLANNED" ]; then
		echo "1..$TAP_N"
	elif [ "$TAP_PLANNED" -ne "$TAP_N" ]; then
		diag "planned $TAP_PLANNED tests but ran $TAP_N"
		return 1
	fi
	[ "$TAP_FAILED" -eq 0 ]
}
