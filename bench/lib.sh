#!/usr/bin/env bash
# bench/lib.sh: helpers shared by the benchmarks (source it; it runs nothing).
#
# The benchmarks run on a throwaway cluster of their own (scripts/cluster.sh).
# By default they first build the tree (BENCH_SRC, default this repository)
# and install it into a private copy of the server's installation, removed at
# exit, as "scripts/test.sh --private" does: several trees can be measured on
# one machine without installing over each other.  BENCH_PRIVATE=0 uses the
# extension installed in the system instead ("make && make install" first).
# Every figure is compared with a baseline measured in the same run on the
# same server, so what matters is the ratio, not the absolute numbers.
#
#   bench_install                 the private installation (see above); the
#                                 scripts call it before bench_cluster_start
#   bench_cluster_start WORKERS   a cluster with chainexec preloaded and
#                                 chainexec.max_workers = WORKERS, the
#                                 extension and the pgbench tables created;
#                                 destroyed when the calling script exits
#   bench_set_workers N           ALTER SYSTEM chainexec.max_workers, restart
#                                 (it is PGC_POSTMASTER), wait for the executors
#   bench_set_sync on|off         ALTER SYSTEM synchronous_commit, reload
#   bench_define_noop ID N        define and publish a chain of N no-op sql
#                                 steps, step i "SELECT i AS vi" with
#                                 outputVariables ["vi"] (BENCH_OUTPUTS=0:
#                                 "SELECT 1" without outputVariables)
#   bench_reset                   empty the execution and pgbench history tables,
#                                 add a history of finished executions, checkpoint
#   bench_pgbench SCRIPT CLIENTS SECONDS
#                                 run pgbench, set PGB_TPS and PGB_LAT_MS
#   bench_stats                   read numbers on stdin, print "n median p95 mean"
#
# Settings (environment):
#   BENCH_PROFILE   1: also preload pg_stat_statements (track = all,
#                   track_planning = on)
#   BENCH_HISTORY   finished executions in the tables at the start of each
#                   timed run (default 5000; see bench_reset)
#   BENCH_RESET_VACUUM  1: with BENCH_HISTORY=0, VACUUM ANALYZE the emptied
#                   tables (see bench_reset)
#   BENCH_PRIVATE   1 (default): build BENCH_SRC into a private installation;
#                   0: use the installed extension
#   BENCH_SRC       the tree to build (default: this repository)
#   BENCH_OUTPUTS   1 (default): every step sets an output variable
#   BENCH_EXTRA_CONF  lines added to the cluster's postgresql.conf

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/cluster.sh"

BENCH_PROFILE=${BENCH_PROFILE:-0}
BENCH_HISTORY=${BENCH_HISTORY:-5000}
BENCH_ACCOUNTS=100000
BENCH_PRIVATE=${BENCH_PRIVATE:-1}
BENCH_SRC=${BENCH_SRC:-$CE_REPO}
BENCH_OUTPUTS=${BENCH_OUTPUTS:-1}
BENCH_INSTALL_DIR=

# bq SQL: run SQL, print the result unaligned and tuples only; stop on error.
bq()
{
	"$CE_PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}

# bench_machine: one line describing the machine.
bench_machine()
{
	local mem cpu

	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	printf 'nproc %s, memory %s, %s, %s\n' "$(nproc)" "$mem" "${cpu:-unknown cpu}" \
		"$("$CE_PGBIN/postgres" --version)"
}

# bench_wait_executors N: wait until N chainexec executors run (at most 60 s).
bench_wait_executors()
{
	local n=$1 i got

	for i in $(seq 1 600); do
		got=$(bq "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'chainexec executor'") || got=-1
		[ "$got" = "$n" ] && return 0
		sleep 0.1
	done
	die "expected $n chainexec executors, found $got"
}

# bench_install: with BENCH_PRIVATE=1, copy the server's installation to a
# temporary folder, point CE_PGBIN and CE_PG_CONFIG at it, and build and
# install BENCH_SRC there (output in $BENCH_INSTALL_DIR/build.log).
bench_install()
{
	local d root log

	[ "$BENCH_PRIVATE" = 1 ] || return 0
	BENCH_INSTALL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chainexec-bench-install.XXXXXX") || die "mktemp failed"
	chmod 0755 "$BENCH_INSTALL_DIR"
	trap 'rm -rf "$BENCH_INSTALL_DIR"' EXIT
	root=$BENCH_INSTALL_DIR/pg
	for d in $("$CE_PG_CONFIG" --bindir --pkglibdir --sharedir --pkgincludedir); do
		mkdir -p "$root$(dirname "$d")" && cp -a "$d" "$root$d" || die "could not copy $d"
	done
	d=$("$root$("$CE_PG_CONFIG" --bindir)/pg_config" --pkglibdir)
	[ "$d" = "$root$("$CE_PG_CONFIG" --pkglibdir)" ] ||
		die "the copy of the installation is not relocatable (its pkglibdir is $d); use BENCH_PRIVATE=0"
	CE_PGBIN=$root$("$CE_PG_CONFIG" --bindir)
	CE_PG_CONFIG=$CE_PGBIN/pg_config
	export CE_PGBIN CE_PG_CONFIG
	log=$BENCH_INSTALL_DIR/build.log
	if ! (cd "$BENCH_SRC" && make PG_CONFIG="$CE_PG_CONFIG" && make PG_CONFIG="$CE_PG_CONFIG" install) >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "building $BENCH_SRC failed"
	fi
	say "build: $BENCH_SRC at $(git -C "$BENCH_SRC" log -1 --format='%h %s' 2>/dev/null | cut -c1-70), private installation"
}

# bench_cluster_start WORKERS: start the benchmark cluster (see above).
bench_cluster_start()
{
	local workers=$1 conf preload=chainexec

	[ "$BENCH_PROFILE" = 1 ] && preload="chainexec,pg_stat_statements"
	BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/chainexec-bench.XXXXXX") || die "mktemp failed"
	conf=$BENCH_TMP/bench.conf
	cat >"$conf" <<-EOF
		shared_preload_libraries = '$preload'
		chainexec.database = 'chainexec_test'
		chainexec.max_workers = $workers
		max_worker_processes = 32
		listen_addresses = ''
		log_line_prefix = '%m [%p] %q%a '
		synchronous_commit = on
	EOF
	[ -n "${BENCH_EXTRA_CONF:-}" ] && printf '%s\n' "$BENCH_EXTRA_CONF" >>"$conf"
	if [ "$BENCH_PROFILE" = 1 ]; then
		cat >>"$conf" <<-EOF
			pg_stat_statements.track = all
			pg_stat_statements.track_planning = on
			pg_stat_statements.max = 10000
		EOF
	fi
	ce_cluster_new "$conf" || die "could not start a cluster"
	trap 'ce_cluster_destroy; rm -rf "$BENCH_TMP"; [ -n "$BENCH_INSTALL_DIR" ] && rm -rf "$BENCH_INSTALL_DIR"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	bq "CREATE EXTENSION chainexec" >/dev/null
	[ "$BENCH_PROFILE" = 1 ] && bq "CREATE EXTENSION pg_stat_statements" >/dev/null
	bq "CREATE TABLE bench_acct (id int PRIMARY KEY, balance bigint NOT NULL DEFAULT 0);
		INSERT INTO bench_acct (id) SELECT g FROM generate_series(1, $BENCH_ACCOUNTS) g;
		ANALYZE bench_acct;
		CREATE TABLE bench_hist (id bigserial PRIMARY KEY, acct int NOT NULL, delta int NOT NULL,
								 at timestamptz NOT NULL DEFAULT now());" >/dev/null
	bench_write_scripts
	[ "$workers" -gt 0 ] && bench_wait_executors "$workers"
	return 0
}

# bench_write_scripts: the pgbench scripts, in $BENCH_TMP.
#   update_insert.sql         one-row UPDATE + one-row INSERT, in one transaction
#   update_insert_notify.sql  the same + pg_notify with a payload the size of a
#                             chainexec step event (about 230 bytes)
bench_write_scripts()
{
	# (no colons: pgbench would read ":name" as a variable)
	local payload='{"event"="step_completed","executionId"="1d3e78aa-db9e-483d-b05d-56d82e24c5c3","chainId"="bench-noop-10","stepId"=1,"stepName"="s1","status"="completed","attempt"=1,"progress"=10,"etaMs"=null,"ts"="2026-01-01T00.00.00.000000+00.00"}'

	cat >"$BENCH_TMP/update_insert.sql" <<-EOF
		\set id random(1, $BENCH_ACCOUNTS)
		\set d random(-5000, 5000)
		BEGIN;
		UPDATE bench_acct SET balance = balance + :d WHERE id = :id;
		INSERT INTO bench_hist (acct, delta) VALUES (:id, :d);
		END;
	EOF
	cat >"$BENCH_TMP/update_insert_notify.sql" <<-EOF
		\set id random(1, $BENCH_ACCOUNTS)
		\set d random(-5000, 5000)
		BEGIN;
		UPDATE bench_acct SET balance = balance + :d WHERE id = :id;
		INSERT INTO bench_hist (acct, delta) VALUES (:id, :d);
		SELECT pg_notify('bench', '$payload');
		END;
	EOF
}

# bench_set_workers N: chainexec.max_workers = N (restarts the server).
bench_set_workers()
{
	local n=$1

	[ "$(bq "SHOW chainexec.max_workers")" = "$n" ] && return 0
	bq "ALTER SYSTEM SET chainexec.max_workers = $n" >/dev/null
	ce_cluster_ctl restart || die "the server did not restart"
	[ "$n" -gt 0 ] && bench_wait_executors "$n"
	return 0
}

# bench_set_sync on|off: synchronous_commit for every session and the executors.
bench_set_sync()
{
	local v=$1 i

	bq "ALTER SYSTEM SET synchronous_commit = $v" >/dev/null
	bq "SELECT pg_reload_conf()" >/dev/null
	for i in $(seq 1 100); do
		[ "$(bq "SHOW synchronous_commit")" = "$v" ] && { sleep 0.2; return 0; }
		sleep 0.05
	done
	die "synchronous_commit did not become $v"
}

# bench_define_noop ID N: a published chain of N sequential "SELECT 1" sql steps.
bench_define_noop()
{
	local step="'sql', 'SELECT 1'"

	[ "$BENCH_OUTPUTS" = 1 ] &&
		step="'sql', format('SELECT %s AS v%s', i, i), 'outputVariables', jsonb_build_array('v' || i)"
	bq "SELECT chainexec.chain_define(jsonb_build_object(
			'id', '$1', 'name', 'benchmark: $2 no-op steps',
			'steps', (SELECT jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i,
														  'type', 'sql', $step) ORDER BY i)
					  FROM generate_series(1, $2) i)), true)" >/dev/null
	BENCH_HISTORY_CHAIN=$1
	BENCH_HISTORY_STEPS=$2
	BENCH_SINCE=$(bq "SELECT now()")
}

# bench_unfinished [CONDITION]: how many executions of the benchmark chain
# created since the benchmark started (and meeting the SQL CONDITION) have
# not finished.  Polled while the executors run,
# so it reads through universal_transactions_by_chain (chain, organization,
# created_at) a range that holds only the measured executions: a count over
# the whole table would scan the history every time, and with a million
# finished executions that scan takes a core away from the executors.
bench_unfinished()
{
	bq "SELECT count(*) FROM chainexec.universal_transactions
		WHERE chain_id = '$BENCH_HISTORY_CHAIN' AND created_at >= '$BENCH_SINCE'
		  AND organization_id = (SELECT organization_id FROM chainexec.chains
								 WHERE chain_id = '$BENCH_HISTORY_CHAIN' LIMIT 1)
		  AND finished_at IS NULL AND (${1:-true})"
}

# bench_reset: empty the execution tables and the pgbench history, then
# give the execution tables a history of BENCH_HISTORY (default 5000)
# finished executions of 10 steps of the last chain defined with
# bench_define_noop, ANALYZE them and checkpoint: every timed run starts from
# the same state, that of a server that has been running for a while.
#
# BENCH_HISTORY=0 leaves the tables empty with unknown statistics, as on a
# fresh install; BENCH_RESET_VACUUM=1 then also runs VACUUM ANALYZE on them,
# as after a chain_cleanup that removed everything and an autovacuum.  In
# both cases the plans that backends prepare while the tables are small are
# kept (until the next ANALYZE invalidates them) and may be poor ones for
# the tables once they have grown: see bench/README.md.
bench_reset()
{
	local try

	# An executor's sweep reads the tables while the TRUNCATE locks them one
	# after the other: a deadlock is possible (one was seen); go again.
	for try in 1 2 3 4 5; do
		bq "TRUNCATE chainexec.step_approvals, chainexec.universal_transaction_lines, chainexec.universal_transactions, bench_hist" \
			>/dev/null 2>&1 && break
		[ "$try" = 5 ] && die "cannot empty the execution tables"
		sleep 1
	done
	if [ "$BENCH_HISTORY" -gt 0 ]; then
		bq "$(bench_history_sql "$BENCH_HISTORY")" >/dev/null
		bq "ANALYZE chainexec.universal_transaction_lines, chainexec.universal_transactions" >/dev/null
	elif [ "${BENCH_RESET_VACUUM:-0}" = 1 ]; then
		bq "VACUUM ANALYZE chainexec.universal_transaction_lines, chainexec.universal_transactions" >/dev/null
	fi
	bq "VACUUM bench_acct" >/dev/null
	bq "CHECKPOINT" >/dev/null
	bench_stats_reset
	return 0
}

# bench_stats_reset: with BENCH_PROFILE=1, reset pg_stat_statements and the
# table statistics.
bench_stats_reset()
{
	if [ "$BENCH_PROFILE" = 1 ]; then
		bq "SELECT pg_stat_statements_reset()" >/dev/null
		bq "SELECT pg_stat_reset()" >/dev/null
	fi
	return 0
}

# bench_context_sql: a SQL expression, the final context of an execution of
# the benchmark chain (v1..vN and the input's "phase", here PHASE).
bench_context_sql()
{
	if [ "$BENCH_OUTPUTS" = 1 ]; then
		echo "(SELECT jsonb_object_agg('v' || i, i) || jsonb_build_object('phase', '$1')
			   FROM generate_series(1, $BENCH_HISTORY_STEPS) i)"
	else
		echo "jsonb_build_object('?column?', 1, 'phase', '$1')"
	fi
}

# bench_history_sql N: statements that add N finished executions of the
# benchmark chain (BENCH_HISTORY_CHAIN, BENCH_HISTORY_STEPS lines each) to the
# execution tables, shaped as the engine writes them (context, output,
# metadata, every line's output and times), straight into the tables.
# Rows go in in key order (sorted random uuids), so that even a million
# executions load at the speed of sequential writes, and without the
# foreign-key triggers (session_replication_role = replica, superuser): the
# rows are consistent by construction.
bench_history_sql()
{
	local n=$1 line_out="jsonb_build_object('rowCount', 1)"

	[ "$BENCH_OUTPUTS" = 1 ] && line_out="jsonb_build_object('rowCount', 1, 'variables', jsonb_build_object('v' || i, i))"
	cat <<-EOF
		SET work_mem = '512MB';
		SET session_replication_role = replica;
		CREATE TEMP TABLE bench_new_hist ON COMMIT DROP AS
			SELECT gen_random_uuid() AS id, now() - interval '30 days' + g * interval '1 s' * (2000000.0 / $n) AS t
			FROM generate_series(1, $n) g;
		INSERT INTO chainexec.universal_transactions (organization_id, id, chain_id, chain_version, status,
			input, context, output, owner, created_at, started_at, finished_at, smart_code, metadata)
		SELECT c.org, h.id, '$BENCH_HISTORY_CHAIN', 1, 'completed',
			'{"phase": "history"}', c.ctx, c.ctx, c.owner, h.t, h.t + interval '20 ms',
			h.t + interval '20 ms' + $BENCH_HISTORY_STEPS * interval '1 ms',
			'CHAINEXEC.RUN.' || upper(replace('$BENCH_HISTORY_CHAIN', '-', '_')) || '.V1',
			'{"options": {}, "saveIntermediateResults": true}'
		FROM bench_new_hist h, (SELECT $(bench_context_sql history) AS ctx, chainexec.current_organization() AS org,
										current_user::regrole AS owner) c
		ORDER BY h.id;
		INSERT INTO chainexec.universal_transaction_lines (organization_id, transaction_id, line_number,
			line_type, step_id, step_name, status, attempt, not_before, started_at, first_started_at,
			finished_at, duration_ms, smart_code, output)
		SELECT c.org, h.id, i, 'step', i, 's' || i, 'completed', 1,
			h.t + (i - 1) * interval '1 ms', h.t + interval '20 ms' + (i - 1) * interval '1 ms',
			h.t + interval '20 ms' + (i - 1) * interval '1 ms', h.t + interval '20 ms' + i * interval '1 ms' - interval '0.2 ms',
			0.8, 'CHAINEXEC.STEP.S' || i || '.V1', $line_out
		FROM bench_new_hist h, generate_series(1, $BENCH_HISTORY_STEPS) i,
			(SELECT chainexec.current_organization() AS org) c
		ORDER BY h.id, i;
		RESET session_replication_role;
	EOF
}

# bench_inflight_sql N: statements that add N unfinished executions of the
# benchmark chain that no executor will take during a run: each is running,
# with a random number of its steps done; its current line is either
# waiting (as an external step waits for chain_step_complete, due in a day)
# or ready with a retry due in an hour (attempt 1 failed); the lines after
# it are pending.  Their input says "phase": "inflight".
bench_inflight_sql()
{
	local n=$1 line_out="jsonb_build_object('rowCount', 1)"

	[ "$BENCH_OUTPUTS" = 1 ] && line_out="jsonb_build_object('rowCount', 1, 'variables', jsonb_build_object('v' || i, i))"
	cat <<-EOF
		SET work_mem = '256MB';
		SET session_replication_role = replica;
		CREATE TEMP TABLE bench_new_inflight ON COMMIT DROP AS
			SELECT gen_random_uuid() AS id, now() - interval '1 hour' + g * interval '1 ms' AS t,
				1 + (g % $BENCH_HISTORY_STEPS) AS cur, g % 2 = 0 AS waits
			FROM generate_series(1, $n) g;
		INSERT INTO chainexec.universal_transactions (organization_id, id, chain_id, chain_version, status,
			input, context, owner, created_at, started_at, smart_code, metadata)
		SELECT chainexec.current_organization(), h.id, '$BENCH_HISTORY_CHAIN', 1,
			CASE WHEN h.waits THEN 'waiting' ELSE 'running' END,
			'{"phase": "inflight"}',
			coalesce((SELECT jsonb_object_agg('v' || i, i) FROM generate_series(1, h.cur - 1) i), '{}')
				|| '{"phase": "inflight"}',
			current_user::regrole, h.t, h.t + interval '20 ms',
			'CHAINEXEC.RUN.' || upper(replace('$BENCH_HISTORY_CHAIN', '-', '_')) || '.V1',
			'{"options": {}, "saveIntermediateResults": true}'
		FROM bench_new_inflight h
		ORDER BY h.id;
		INSERT INTO chainexec.universal_transaction_lines (organization_id, transaction_id, line_number,
			line_type, step_id, step_name, status, attempt, not_before, started_at, first_started_at,
			finished_at, duration_ms, smart_code, output, error)
		SELECT chainexec.current_organization(), h.id, i, 'step', i, 's' || i,
			CASE WHEN i < h.cur THEN 'completed' WHEN i > h.cur THEN 'pending'
				 WHEN h.waits THEN 'waiting' ELSE 'ready' END,
			CASE WHEN i < h.cur THEN 1 WHEN i > h.cur THEN 0 WHEN h.waits THEN 1 ELSE 1 END,
			CASE WHEN i < h.cur THEN h.t WHEN i > h.cur THEN h.t
				 WHEN h.waits THEN now() + interval '1 day' ELSE now() + interval '1 hour' END,
			CASE WHEN i <= h.cur THEN h.t + interval '20 ms' END,
			CASE WHEN i <= h.cur THEN h.t + interval '20 ms' END,
			CASE WHEN i < h.cur OR (i = h.cur AND NOT h.waits) THEN h.t + interval '21 ms' END,
			CASE WHEN i < h.cur OR (i = h.cur AND NOT h.waits) THEN 1 END,
			'CHAINEXEC.STEP.S' || i || '.V1',
			CASE WHEN i < h.cur THEN $line_out END,
			CASE WHEN i = h.cur AND NOT h.waits THEN
				'{"failure_type": "sql_error", "sqlstate": "40001", "message": "could not serialize access"}'::jsonb END
		FROM bench_new_inflight h, generate_series(1, $BENCH_HISTORY_STEPS) i
		ORDER BY h.id, i;
		RESET session_replication_role;
	EOF
}

# bench_ticks PID [children]: user + system CPU ticks (1/getconf CLK_TCK s)
# of PID, or of its exited and waited-for children.  Linux only.
bench_ticks()
{
	if [ "${2:-}" = children ]; then
		awk '{ print $16 + $17 }' "/proc/$1/stat"
	else
		awk '{ print $14 + $15 }' "/proc/$1/stat"
	fi
}

# bench_executor_ticks: the CPU ticks the running executors have used.
bench_executor_ticks()
{
	local pid sum=0

	for pid in $(bq "SELECT pid FROM pg_stat_activity WHERE backend_type = 'chainexec executor'"); do
		sum=$((sum + $(bench_ticks "$pid")))
	done
	echo "$sum"
}

# bench_pgbench SCRIPT CLIENTS SECONDS: run pgbench (prepared statements, one
# thread per client); sets PGB_TPS and PGB_LAT_MS (average latency), and
# PGB_CPU_US: the server CPU per transaction, in microseconds (the ticks of
# the postmaster's exited children over the run: pgbench's backends, once
# they have exited; a load on the machine does not count, only work does).
bench_pgbench()
{
	local script=$1 clients=$2 secs=$3 out c0 c1 n postmaster

	postmaster=$(head -n 1 "$PGDATA/postmaster.pid")
	c0=$(bench_ticks "$postmaster" children)
	out=$("$CE_PGBIN/pgbench" -n -M prepared -f "$script" -c "$clients" -j "$clients" -T "$secs" 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "pgbench failed"; }
	sleep 0.3
	c1=$(bench_ticks "$postmaster" children)
	n=$(printf '%s\n' "$out" | awk '/^number of transactions actually processed: / { print $6; exit }')
	PGB_CPU_US=$(calc "($c1 - $c0) * 1000000 / $(getconf CLK_TCK) / ${n:-1}" 1)
	PGB_TPS=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
	PGB_LAT_MS=$(printf '%s\n' "$out" | awk '/^latency average = / { print $4; exit }')
	[ -n "$PGB_TPS" ] && [ -n "$PGB_LAT_MS" ] || { printf '%s\n' "$out" >&2; die "could not read pgbench's output"; }
}

# bench_stats: numbers on stdin, one a line; prints "n median p95 mean"
# (nearest-rank percentiles).
bench_stats()
{
	sort -g | awk '{ v[NR] = $1; s += $1 }
		END {
			if (NR == 0) { print "0 0 0 0"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.95 * NR); if (r < 0.95 * NR) r++
			printf "%d %.3f %.3f %.3f\n", NR, m, v[r], s / NR
		}'
}

# calc EXPR: evaluate a floating point expression with awk, print it.
calc()
{
	awk "BEGIN { printf \"%.${2:-2}f\", $1 }"
}
