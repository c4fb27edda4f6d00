# test/lib/pg.sh: helpers for shell test scripts that talk to the test
# cluster (see test/lib/README.md).  Source it after tap.sh:
#
#   . "$CE_REPO/test/lib/pg.sh"
#
# They use the environment the runner sets: PGHOST, PGPORT, PGUSER,
# PGDATABASE, PGDATA, CE_CLUSTER_LOG, CE_CLUSTER_CTL, CE_PGBIN.

# psql_q SQL: run SQL in $PGDATABASE; print the result unaligned, tuples
# only ("|" between columns); fail on the first error.
psql_q()
{
	"${CE_PGBIN:-/usr/lib/postgresql/15/bin}/psql" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"
}

# psql_file FILE: run a SQL file in $PGDATABASE; fail on the first error.
psql_file()
{
	"${CE_PGBIN:-/usr/lib/postgresql/15/bin}/psql" -X -A -t -q -v ON_ERROR_STOP=1 -f "$1"
}

# poll_query_until SQL [EXPECTED [TIMEOUT_SECONDS]]: run SQL every 0.2 s
# until it prints EXPECTED (default "t"); fail after TIMEOUT_SECONDS
# (default 60), printing the last result as a diagnostic.
poll_query_until()
{
	local sql=$1 expected=${2:-t} timeout=${3:-60} got= deadline

	deadline=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$deadline" ]; do
		got=$(psql_q "$sql" 2>&1) || true
		[ "$got" = "$expected" ] && return 0
		sleep 0.2
	done
	echo "# poll_query_until: timed out after ${timeout}s; last result: $got"
	return 1
}

# log_offset: the current size of the server log in bytes, to pass to
# wait_for_log so that only later lines count.
log_offset()
{
	stat -c %s "$CE_CLUSTER_LOG" 2>/dev/null || echo 0
}

# wait_for_log REGEX [OFFSET [TIMEOUT_SECONDS]]: wait until a line of the
# server log after OFFSET bytes matches the extended REGEX (default timeout 60).
wait_for_log()
{
	local re=$1 offset=${2:-0} timeout=${3:-60} deadline

	deadline=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$deadline" ]; do
		tail -c +"$((offset + 1))" "$CE_CLUSTER_LOG" 2>/dev/null | grep -qE -- "$re" && return 0
		sleep 0.2
	done
	echo "# wait_for_log: /$re/ did not appear within ${timeout}s"
	return 1
}

# cluster_ctl start|stop|restart|crash|status|reload: control the test
# cluster (crash = pg_ctl stop -m immediate; the next start recovers).
cluster_ctl()
{
	"$CE_CLUSTER_CTL" "$@"
}

# wait_ready [TIMEOUT_SECONDS]: wait until the server accepts connections
# (after a crash of a backend the postmaster restarts everything).
wait_ready()
{
	local timeout=${1:-60} deadline

	deadline=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$deadline" ]; do
		"${CE_PGBIN:-/usr/lib/postgresql/15/bin}/pg_isready" -q -t 2 && psql_q 'SELECT 1' >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "# wait_ready: the server did not accept connections within ${timeout}s"
	return 1
}
