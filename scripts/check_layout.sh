#!/usr/bin/env bash
# scripts/check_layout.sh: the rules of the source layout (README,
# "Development"), checked on the files of src/, as TAP.
#
#   1. no .c file over 900 lines (split it by concern); OVER_LIMIT below
#      names the files that are over it today, each with the reason, until
#      they are split (a file listed there that is back under the limit is
#      an error too, so that the list only shrinks)
#   2. no function over 150 lines, unless the comment just above it gives
#      the reason on a line that starts with "Long:"
#   3. no circle between the directories of src/ (pure, engine, api,
#      worker): a directory whose files include a header of another may not
#      be included back by it, directly or through a third; src/chainexec.c
#      (_PG_init, which calls every subsystem's init) may include anything,
#      and the headers at the root of src/ (settings, compat) include no
#      header of a directory
#   4. no status name as a C string literal outside the one name table
#      (src/engine/status.c): code uses CeExecStatus / CeLineStatus
#
# The last line is "layout: N passed, N failed"; the exit status is 0 only
# when nothing failed.  scripts/test.sh runs it with the unit tests.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

MAX_FILE=900
# file:reason; every entry is a debt to pay, not a licence
OVER_LIMIT=()
MAX_FUNC=150
DIRS="pure engine api worker"
n=0
failed=0

check()
{
	local desc=$1 problems=$2

	n=$((n + 1))
	if [ -z "$problems" ]; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		printf '%s\n' "$problems" | sed 's/^/#   /'
		failed=$((failed + 1))
	fi
}

mapfile -t CFILES < <(find src -name '*.c' | sort)
mapfile -t ALLFILES < <(find src -name '*.c' -o -name '*.h' | sort)

# 1. file sizes
listed=$(printf '%s\n' "${OVER_LIMIT[@]}" | cut -d: -f1)
problems=$(wc -l "${CFILES[@]}" | awk -v max=$MAX_FILE -v listed="$listed" '
	BEGIN { n = split(listed, l, "\n"); for (i = 1; i <= n; i++) if (l[i] != "") known[l[i]] = 1 }
	$2 == "total" { next }
	$1 > max && !($2 in known) { print $2 ": " $1 " lines" }
	$1 <= max && ($2 in known) { print $2 ": " $1 " lines, back under the limit: remove it from OVER_LIMIT" }
	{ seen[$2] = 1 }
	END { for (f in known) if (!(f in seen)) print f ": listed in OVER_LIMIT but gone" }')
check "no .c file of src/ has more than $MAX_FILE lines (but those of OVER_LIMIT)" "$problems"

# 2. function lengths (pgindent layout: the body opens with "{" alone on a
#    line and closes with "}" alone on a line)
problems=$(awk -v max=$MAX_FUNC '
	FNR == 1 { depth = 0; nlong = 0 }
	{ line[FNR] = $0 }
	/^\{$/ { start = FNR; name = ""
		for (i = FNR - 1; i > 0 && i > FNR - 6; i--)
			if (line[i] ~ /^[A-Za-z_][A-Za-z0-9_]*\(/) { name = line[i]; sub(/\(.*/, "", name); break }
		reason = 0
		for (i = FNR - 1; i > 0 && i > FNR - 40; i--) {
			if (line[i] ~ /^\}$/) break
			if (line[i] ~ /^ \* Long:/) { reason = 1; break }
		}
	}
	/^\}$/ && start > 0 {
		if (FNR - start + 1 > max && !reason)
			print FILENAME ": " name " has " (FNR - start + 1) " lines and no \"Long:\" reason"
		start = 0
	}' "${CFILES[@]}")
check "no function has more than $MAX_FUNC lines without a reason" "$problems"

# 3. includes between directories
dir_of_header()
{
	local h=$1 d

	for d in $DIRS; do
		[ -f "src/$d/$h" ] && { echo "$d"; return; }
	done
	[ -f "src/$h" ] && echo root
}
declare -A HDIR
edges=
root_problems=
for f in "${ALLFILES[@]}"; do
	[ "$f" = src/chainexec.c ] && continue
	from=$(basename "$(dirname "$f")")
	[ "$from" = src ] && from=root
	while read -r h; do
		[ -n "$h" ] || continue
		# the project's headers are named bare; "executor/executor.h" is the server's
		case $h in */*) continue ;; esac
		if [ -z "${HDIR[$h]+x}" ]; then
			HDIR[$h]=$(dir_of_header "$h")
		fi
		to=${HDIR[$h]}
		[ -n "$to" ] && [ "$to" != "$from" ] || continue
		if [ "$from" = root ] && [ "$to" != root ]; then
			root_problems+="$f includes $to/$h"$'\n'
		elif [ "$to" != root ]; then
			edges+="$from $to $f $h"$'\n'
		fi
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done
check "the headers at the root of src/ include no header of a directory" "${root_problems%$'\n'}"
problems=$(printf '%s' "$edges" | awk '
	NF == 4 { reach[$1, $2] = 1; ex[$1, $2] = $3 " includes " $4; node[$1]; node[$2] }
	END {
		for (k in node) for (i in node) for (j in node)
			if (reach[i, k] && reach[k, j]) reach[i, j] = 1
		for (i in node) for (j in node)
			if (i < j && reach[i, j] && reach[j, i])
				print "src/" i " and src/" j " include each other" \
					((i, j) in ex ? " (" ex[i, j] ")" : "") ((j, i) in ex ? " (" ex[j, i] ")" : "")
	}')
check "no circle of includes between the directories of src/" "$problems"

# 4. status names
names='pending|ready|running|waiting|completed|failed|skipped|cancelled|compensated|compensating|paused'
problems=$(grep -nE "\"($names)\"" "${ALLFILES[@]}" |
	grep -v '^src/engine/status\.c:' |
	grep -v '^src/pure/failure\.h:.*CE_FAILURE_CANCELLED')
check "no status name is a C string literal outside src/engine/status.c" "$problems"

echo "1..$n"
echo "layout: $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
