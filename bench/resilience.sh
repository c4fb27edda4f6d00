#!/usr/bin/env bash
# bench/resilience.sh: the cost of a step with a circuit breaker and a cache
# miss against a plain step.
#
# Two chains of BENCH_STEPS (default 100) sql steps "SELECT {n} AS v": plain,
# and the same with "circuitBreaker": {} (closed, every call recorded) and
# "cache": {"key": ["n"]} (the input n is new at every call, so every step
# misses: a lookup, the run, the miss counted, the result stored, the
# eviction check).  CALL chainexec.chain_run() of each, in one session,
# alternating for BENCH_ROUNDS rounds (default 3) of about BENCH_SECONDS
# (default 5) each; prints microseconds per step of each and their ratio
# (resilient / plain).  No executor runs (chainexec.max_workers = 0).
# Builds the tree into a private installation first (bench/lib.sh;
# BENCH_PRIVATE=0 uses the installed extension).  Usage:
#   bench/resilience.sh
#   BENCH_STEPS=50 BENCH_ROUNDS=5 bench/resilience.sh
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_STEPS=${BENCH_STEPS:-100}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_HISTORY=${BENCH_HISTORY:-0}

# define ID EXTRA: a chain of BENCH_STEPS steps, each with the extra keys
define()
{
	bq "SELECT chainexec.chain_define(jsonb_build_object('id', '$1',
			'steps', (SELECT jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql',
														  'sql', 'SELECT {n}::int AS v', 'inputVariables', jsonb_build_array('n'))
										|| '$2'::jsonb ORDER BY i)
					  FROM generate_series(1, $BENCH_STEPS) i)), true)" >/dev/null
}

# call_times ID REPS: REPS timed chain_run calls (each with a new n, from
# the sequence bench_n); ms each
call_times()
{
	local id=$1 reps=$2 i

	{
		echo '\timing on'
		for i in $(seq 1 "$reps"); do
			echo "CALL chainexec.chain_run('$id', jsonb_build_object('n', nextval('bench_n')));"
		done
	} | "$CE_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -o /dev/null |
		awk '/^Time: / { print $2 }'
}

# us_per_step ID REPS: microseconds per step over REPS calls
us_per_step()
{
	call_times "$1" "$2" | awk -v s="$BENCH_STEPS" '{ t += $1; n++ } END { printf "%.1f", t * 1000 / (n * s) }'
}

say "chainexec resilience benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(bench_machine)"
say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_install
bench_cluster_start 0
bq "CREATE SEQUENCE bench_n" >/dev/null
define bench-plain '{}'
define bench-resil '{"circuitBreaker": {}, "cache": {"key": ["n"]}}'
BENCH_HISTORY_CHAIN=bench-plain
BENCH_HISTORY_STEPS=$BENCH_STEPS
bench_set_sync off
say "chains: $BENCH_STEPS sql steps, plain and with circuitBreaker + cache (every step a miss); synchronous_commit off"
bench_reset
call_times bench-plain 1 >/dev/null
call_times bench-resil 1 >/dev/null
one=$(call_times bench-plain 1)
reps=$(awk -v d="$BENCH_SECONDS" -v t="$one" 'BEGIN { r = int(d * 1000 / t + 0.5); print (r < 3 ? 3 : r) }')

plain_all=0 resil_all=0
for round in $(seq 1 "$BENCH_ROUNDS"); do
	p=$(us_per_step bench-plain "$reps")
	r=$(us_per_step bench-resil "$reps")
	say "  round $round: plain $p us/step, breaker + cache miss $r us/step, ratio $(calc "$r / $p" 2)"
	plain_all=$(calc "$plain_all + $p" 3)
	resil_all=$(calc "$resil_all + $r" 3)
done
bad=$(bq "SELECT count(*) FROM chainexec.universal_transactions WHERE status <> 'completed'")
[ "$bad" = 0 ] || die "$bad executions did not complete"
misses=$(bq "SELECT sum(misses) FROM chainexec.cache_stats WHERE chain_id = 'bench-resil'")
hits=$(bq "SELECT sum(hits) FROM chainexec.cache_stats WHERE chain_id = 'bench-resil'")
say ""
say "cache of bench-resil: $hits hits, $misses misses"
say "summary: plain $(calc "$plain_all / $BENCH_ROUNDS" 1) us/step, breaker + cache miss $(calc "$resil_all / $BENCH_ROUNDS" 1) us/step," \
	"ratio $(calc "$resil_all / $plain_all" 2)"
