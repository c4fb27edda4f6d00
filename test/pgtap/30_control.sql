--
-- 30_control: the control functions' state machine (src/control.c).
--   Control never changes timing (runAt, retry back-off, wait timers keep
--   their due time through pause, resume, cancel and resume, retry); a
--   step may not control its own execution; a saga whose compensation has
--   started is never completed; every context write has the context's
--   rules; illegal calls are 55000; and many random sequences of control
--   calls and transitions keep every invariant.
-- Everything runs in this suite's transaction with chainexec._run_one(), so
-- now() is fixed: a line is due when not_before <= now(), and "time passes"
-- is written as moving a due time to now().
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(43);

SET LOCAL client_min_messages = warning;

CREATE FUNCTION pg_temp.line(eid uuid, step int)
RETURNS chainexec.universal_transaction_lines
LANGUAGE sql
AS $$
	SELECT * FROM chainexec.universal_transaction_lines
	 WHERE transaction_id = eid AND step_id = step ORDER BY line_number DESC LIMIT 1
$$;

CREATE FUNCTION pg_temp.status(eid uuid)
RETURNS text
LANGUAGE sql
AS $$ SELECT status FROM chainexec.universal_transactions WHERE id = eid $$;

/* SQLSTATE of q's error, or 'ok' */
CREATE FUNCTION pg_temp.state_of(q text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	st text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
	RETURN st;
END
$$;

/* run transitions (making back-offs and timers due) until nothing is left */
CREATE FUNCTION pg_temp.run_all(eid uuid)
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
	n int := 0;
BEGIN
	WHILE n < 200 LOOP
		IF chainexec._run_one(eid) THEN
			n := n + 1;
			CONTINUE;
		END IF;
		UPDATE chainexec.universal_transaction_lines SET not_before = now()
		 WHERE transaction_id = eid AND status IN ('ready', 'waiting') AND not_before > now()
		   AND not_before < 'infinity';
		EXIT WHEN NOT FOUND;
	END LOOP;
	RETURN n;
END
$$;

SELECT chainexec.chain_define($${"id": "tap-ctl-one",
  "steps": [{"id": 1, "name": "one", "type": "sql", "sql": "SELECT 1 AS one"}]}$$, true);
SELECT chainexec.chain_define($${"id": "tap-ctl-flaky",
  "steps": [{"id": 1, "name": "flaky", "type": "sql", "sql": "SELECT chainexec.raise_failure('api_timeout', 'down')",
             "retryConfig": {"maxRetries": 3, "backoffStrategy": "fixed", "baseDelayMs": 3600000, "retryOnErrors": ["api_timeout"]}}]}$$, true);
SELECT chainexec.chain_define($${"id": "tap-ctl-nap",
  "steps": [{"id": 1, "name": "nap", "type": "wait", "waitMs": 3600000},
            {"id": 2, "name": "after", "type": "sql", "sql": "SELECT 1 AS after"}]}$$, true);

CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);

-- ---------------------------------------------------------------------
-- Control never changes timing
-- ---------------------------------------------------------------------

-- runAt through pause and resume
INSERT INTO ids SELECT 'runat', chainexec.chain_execute('tap-ctl-one', '{}', '{"runAt": "2030-01-01T00:00:00Z"}');
SELECT chainexec.chain_pause(id), chainexec.chain_resume(id) FROM ids WHERE name = 'runat';
SELECT is((pg_temp.line(id, 1)).not_before, '2030-01-01T00:00:00Z'::timestamptz,
		  'pause and resume keep a runAt') FROM ids WHERE name = 'runat';
SELECT is(chainexec._run_one(id), false, 'and the step does not run before it') FROM ids WHERE name = 'runat';

-- runAt through cancel and resume
SELECT chainexec.chain_cancel(id), chainexec.chain_resume(id) FROM ids WHERE name = 'runat';
SELECT is((pg_temp.line(id, 1)).not_before, '2030-01-01T00:00:00Z'::timestamptz,
		  'cancel and resume keep a runAt') FROM ids WHERE name = 'runat';
SELECT is(chainexec._run_one(id), false, 'and the step still does not run') FROM ids WHERE name = 'runat';
SELECT chainexec.chain_retry_step(id, 1) FROM ids WHERE name = 'runat';
SELECT is((pg_temp.line(id, 1)).not_before, '2030-01-01T00:00:00Z'::timestamptz,
		  'chain_retry_step keeps a runAt') FROM ids WHERE name = 'runat';

-- a retry back-off
INSERT INTO ids SELECT 'backoff', chainexec.chain_execute('tap-ctl-flaky');
SELECT chainexec._run_one(id) FROM ids WHERE name = 'backoff';
CREATE TEMP TABLE due AS SELECT (pg_temp.line(id, 1)).not_before AS at FROM ids WHERE name = 'backoff';
SELECT ok((SELECT at FROM due) > now() + interval '59 minutes', 'a failed attempt waits out its back-off');
SELECT chainexec.chain_pause(id), chainexec.chain_resume(id) FROM ids WHERE name = 'backoff';
SELECT is((pg_temp.line(id, 1)).not_before, (SELECT at FROM due), 'pause and resume keep a back-off')
  FROM ids WHERE name = 'backoff';
SELECT chainexec.chain_cancel(id), chainexec.chain_resume(id) FROM ids WHERE name = 'backoff';
SELECT is((pg_temp.line(id, 1)).not_before, (SELECT at FROM due), 'cancel and resume keep a back-off')
  FROM ids WHERE name = 'backoff';
SELECT chainexec.chain_retry_step(id, 1) FROM ids WHERE name = 'backoff';
SELECT is((pg_temp.line(id, 1)).not_before, (SELECT at FROM due), 'chain_retry_step keeps a back-off')
  FROM ids WHERE name = 'backoff';
SELECT is(chainexec._run_one(id), false, 'and nothing runs before it') FROM ids WHERE name = 'backoff';

-- a wait timer
INSERT INTO ids SELECT 'nap', chainexec.chain_execute('tap-ctl-nap');
SELECT chainexec._run_one(id) FROM ids WHERE name = 'nap';
CREATE TEMP TABLE nap_due AS SELECT (pg_temp.line(id, 1)).not_before AS at FROM ids WHERE name = 'nap';
SELECT chainexec.chain_pause(id), chainexec.chain_resume(id) FROM ids WHERE name = 'nap';
SELECT is(ARRAY[(pg_temp.line(id, 1)).status, (pg_temp.line(id, 1)).not_before::text],
		  ARRAY['waiting', (SELECT at FROM nap_due)::text], 'pause and resume keep a wait timer')
  FROM ids WHERE name = 'nap';
SELECT chainexec.chain_cancel(id), chainexec.chain_resume(id) FROM ids WHERE name = 'nap';
SELECT is(ARRAY[(pg_temp.line(id, 1)).status, (pg_temp.line(id, 1)).not_before::text, (pg_temp.line(id, 1)).attempt::text],
		  ARRAY['waiting', (SELECT at FROM nap_due)::text, '1'], 'cancel and resume keep a wait timer, as the same attempt')
  FROM ids WHERE name = 'nap';
-- the timer comes due while the execution is paused
SELECT chainexec.chain_pause(id) FROM ids WHERE name = 'nap';
UPDATE chainexec.universal_transaction_lines SET not_before = now()
 WHERE transaction_id = (SELECT id FROM ids WHERE name = 'nap') AND step_id = 1;
SELECT chainexec._run_one(id) FROM ids WHERE name = 'nap';
SELECT is((pg_temp.line(id, 1)).status, 'waiting', 'a timer due during a pause does not complete while paused')
  FROM ids WHERE name = 'nap';
SELECT chainexec.chain_resume(id) FROM ids WHERE name = 'nap';
SELECT chainexec._run_one(id) FROM ids WHERE name = 'nap';
SELECT is(ARRAY[(pg_temp.line(id, 1)).status, (pg_temp.line(id, 1)).attempt::text], ARRAY['completed', '1'],
		  'it completes at once on resume, without a new attempt') FROM ids WHERE name = 'nap';

-- ---------------------------------------------------------------------
-- A step that controls its own execution
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define(format($${"id": "tap-ctl-self-%s",
  "steps": [{"id": 1, "name": "self", "type": "sql", "sql": "SELECT chainexec.%s({chain.execution_id}::uuid) AS r"},
            {"id": 2, "name": "after", "type": "sql", "sql": "SELECT 1 AS after"}]}$$, f, f)::jsonb, true)
  FROM unnest(ARRAY['chain_cancel', 'chain_pause', 'chain_rollback', 'chain_resume']) f;
INSERT INTO ids SELECT 'self-' || f, chainexec.chain_execute('tap-ctl-self-' || f)
  FROM unnest(ARRAY['chain_cancel', 'chain_pause', 'chain_rollback', 'chain_resume']) f;
SELECT pg_temp.run_all(id) FROM ids WHERE name LIKE 'self-%';
SELECT is((SELECT array_agg(pg_temp.status(id) || ':' || ((pg_temp.line(id, 1)).error->>'sqlstate') ORDER BY name)
			 FROM ids WHERE name LIKE 'self-%'),
		  ARRAY['failed:55000', 'failed:55000', 'failed:55000', 'failed:55000'],
		  'a step calling chain_cancel, chain_pause, chain_resume or chain_rollback on its own execution fails (55000)');
SELECT is((SELECT count(*)::int FROM chainexec.universal_transaction_lines l JOIN ids ON ids.id = l.transaction_id
			WHERE ids.name LIKE 'self-%' AND l.status IN ('pending', 'ready', 'waiting')), 0,
		  'and leaves no open line behind');
SELECT alike((pg_temp.line(id, 1)).error->>'message', '%a step cannot cancel its own execution%',
			'the step''s error says why') FROM ids WHERE name = 'self-chain_cancel';

-- ---------------------------------------------------------------------
-- Sagas: once the compensation started, the execution never goes forward
-- ---------------------------------------------------------------------
CREATE TABLE public.tap_ctl_undo (step int);
SELECT chainexec.chain_define($${"id": "tap-ctl-saga", "rollbackEnabled": true,
  "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1 AS a", "rollbackAction": "INSERT INTO public.tap_ctl_undo VALUES (1)"},
            {"id": 2, "name": "b", "type": "sql", "sql": "SELECT 2 AS b", "rollbackAction": "INSERT INTO public.tap_ctl_undo VALUES (2)"},
            {"id": 3, "name": "c", "type": "sql", "sql": "SELECT 3 AS c", "rollbackAction": "INSERT INTO public.tap_ctl_undo VALUES (3)"},
            {"id": 4, "name": "boom", "type": "sql", "sql": "SELECT 1 / 0 AS d"}]}$$, true);
INSERT INTO ids SELECT 'saga', chainexec.chain_execute('tap-ctl-saga');
SELECT chainexec._run_one(id) FROM ids, generate_series(1, 5) WHERE name = 'saga';
SELECT is(pg_temp.status(id), 'compensating', 'the failure starts the compensation; one of three ran')
  FROM ids WHERE name = 'saga';
SELECT is(chainexec.chain_cancel(id, 'stop undoing'), true, 'chain_cancel stops the compensation')
  FROM ids WHERE name = 'saga';
SELECT is(pg_temp.state_of(format('SELECT chainexec.chain_skip_step(%L, 4)', id)), '55000',
		  'chain_skip_step then refuses to go forward (55000)') FROM ids WHERE name = 'saga';
SELECT is(pg_temp.state_of(format('SELECT chainexec.chain_resume(%L)', id)), '55000',
		  'so does chain_resume') FROM ids WHERE name = 'saga';
SELECT is(pg_temp.state_of(format('SELECT chainexec.chain_retry_step(%L, 4)', id)), '55000',
		  'and chain_retry_step') FROM ids WHERE name = 'saga';
SELECT is(pg_temp.state_of(format('SELECT chainexec.chain_pause(%L)', id)), '55000',
		  'chain_pause of a cancelled execution is 55000') FROM ids WHERE name = 'saga';
SELECT is(chainexec.chain_rollback(id), true, 'chain_rollback finishes the compensation') FROM ids WHERE name = 'saga';
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'saga';
SELECT is(ARRAY[pg_temp.status(id), (SELECT string_agg(step::text, ',' ORDER BY step) FROM public.tap_ctl_undo)],
		  ARRAY['compensated', '1,2,3'], 'every completed step was compensated, once')
  FROM ids WHERE name = 'saga';
SELECT is(chainexec.chain_rollback(id), false, 'a compensated execution is not compensated again')
  FROM ids WHERE name = 'saga';

-- Illegal calls on a completed execution
INSERT INTO ids SELECT 'done', chainexec.chain_execute('tap-ctl-one');
SELECT pg_temp.run_all(id) FROM ids WHERE name = 'done';
SELECT is(ARRAY[pg_temp.state_of(format('SELECT chainexec.chain_pause(%L)', id)),
				pg_temp.state_of(format('SELECT chainexec.chain_resume(%L)', id)),
				pg_temp.state_of(format('SELECT chainexec.chain_retry_step(%L, 1)', id)),
				pg_temp.state_of(format('SELECT chainexec.chain_skip_step(%L, 1)', id)),
				pg_temp.state_of(format('SELECT chainexec.chain_step_complete(%L, 1)', id))],
		  ARRAY['55000', '55000', '55000', '55000', '55000'],
		  'pause, resume, retry, skip and complete of a completed execution are 55000')
  FROM ids WHERE name = 'done';
SELECT is(chainexec.chain_cancel(id), false, 'cancelling a completed execution does nothing') FROM ids WHERE name = 'done';

-- ---------------------------------------------------------------------
-- Every context write has the context's rules (the step path's check)
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${"id": "tap-ctl-ext",
  "steps": [{"id": 1, "name": "ask", "type": "external"},
            {"id": 2, "name": "ask2", "type": "external"}]}$$, true);
INSERT INTO ids SELECT 'ext', chainexec.chain_execute('tap-ctl-ext');
SELECT chainexec._run_one(id) FROM ids WHERE name = 'ext';
SELECT is(pg_temp.state_of(format($q$SELECT chainexec.chain_skip_step(%L, 1, '{"chain": {"id": "x"}}')$q$, id)), '42939',
		  'chain_skip_step refuses an output named "chain"') FROM ids WHERE name = 'ext';
SELECT is(pg_temp.state_of(format($q$SELECT chainexec.chain_step_complete(%L, 1, '{"chain": 1}')$q$, id)), '42939',
		  'chain_step_complete refuses an output named "chain"') FROM ids WHERE name = 'ext';
SELECT is(pg_temp.state_of(format($q$SELECT chainexec.chain_skip_step(%L, 1, '[1]')$q$, id)), '22023',
		  'chain_skip_step refuses an output that is not an object') FROM ids WHERE name = 'ext';
SET LOCAL chainexec.max_context_bytes = 1024;
SELECT is(pg_temp.state_of(format($q$SELECT chainexec.chain_skip_step(%L, 1, jsonb_build_object('big', repeat('x', 2000)))$q$, id)), '54000',
		  'chain_skip_step refuses an output over chainexec.max_context_bytes') FROM ids WHERE name = 'ext';
SELECT is(pg_temp.state_of(format($q$SELECT chainexec.chain_step_complete(%L, 1, jsonb_build_object('big', repeat('x', 2000)))$q$, id)), '54000',
		  'so does chain_step_complete') FROM ids WHERE name = 'ext';
SELECT chainexec.chain_define(($${"id": "tap-ctl-defaults",
  "inputSchema": {"type": "object", "properties": {"pad": {"type": "string", "default": "$$ || repeat('y', 1500) || $$"}}},
  "steps": [{"id": 1, "name": "one", "type": "sql", "sql": "SELECT 1 AS one"}]}$$)::jsonb, true);
SELECT is(pg_temp.state_of($q$SELECT chainexec.chain_execute('tap-ctl-defaults', '{}')$q$), '54000',
		  'chain_execute checks the context after the input schema''s defaults too');
RESET chainexec.max_context_bytes;
SELECT is((pg_temp.line(id, 1)).status, 'waiting', 'refused outputs change nothing') FROM ids WHERE name = 'ext';
SELECT is(chainexec.chain_skip_step(id, 1, '{"given": 1}'), true, 'a valid output is merged') FROM ids WHERE name = 'ext';
SELECT is((SELECT context->'given' FROM chainexec.universal_transactions WHERE id = ids.id), '1'::jsonb,
		  'into the context') FROM ids WHERE name = 'ext';

-- ---------------------------------------------------------------------
-- Random sequences of control calls and transitions keep the invariants
-- ---------------------------------------------------------------------
SELECT chainexec.chain_define($${"id": "tap-ctl-rand-a", "rollbackEnabled": true,
  "steps": [{"id": 1, "name": "s1", "type": "sql", "sql": "SELECT 1 AS a", "rollbackAction": "SELECT 1"},
            {"id": 2, "name": "ext", "type": "external", "outputVariables": ["approved"], "rollbackAction": "SELECT 2"},
            {"id": 3, "name": "flaky", "type": "sql", "sql": "SELECT 1 / 0 AS x", "onFailure": "fallback",
             "fallbackStep": {"id": 30, "name": "fb", "type": "sql", "sql": "SELECT 3 AS x"}},
            {"id": 4, "name": "nap", "type": "wait", "waitMs": 60000},
            {"id": 5, "name": "warnme", "type": "sql", "sql": "SELECT 1 / 0 AS w", "onFailure": "warn"},
            {"id": 6, "name": "retrying", "type": "sql", "sql": "SELECT chainexec.raise_failure('api_timeout', 'down')",
             "onFailure": "skip", "retryConfig": {"maxRetries": 1, "backoffStrategy": "fixed", "baseDelayMs": 1000, "retryOnErrors": ["api_timeout"]}},
            {"id": 7, "name": "last", "type": "sql", "sql": "SELECT 1 AS z", "rollbackAction": "SELECT 7"}]}$$, true);
SELECT chainexec.chain_define($${"id": "tap-ctl-rand-b", "rollbackEnabled": true,
  "steps": [{"id": 1, "name": "r1", "type": "sql", "sql": "SELECT 1 AS a", "rollbackAction": "SELECT 1"},
            {"id": 2, "name": "r2", "type": "external", "rollbackAction": "SELECT 1 / 0"},
            {"id": 3, "name": "r3", "type": "sql", "sql": "SELECT 1 AS c", "rollbackAction": "SELECT 3"},
            {"id": 4, "name": "r4", "type": "sql", "sql": "SELECT 1 / 0 AS d"}]}$$, true);

CREATE TEMP TABLE rand_log (seq int, execution uuid, op text, outcome text, violation text);
CREATE TEMP TABLE rand_seen (execution uuid PRIMARY KEY, progress int);

/* The invariants of one execution; returns what is violated, or NULL. */
CREATE FUNCTION pg_temp.violation(eid uuid)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	st text := pg_temp.status(eid);
	p int := (chainexec.chain_status(eid)->'progress'->>'percent')::int;
	last int;
BEGIN
	IF st IN ('completed', 'failed', 'cancelled', 'timeout', 'compensated') AND EXISTS (
		SELECT FROM chainexec.universal_transaction_lines
		 WHERE transaction_id = eid AND status IN ('pending', 'ready', 'waiting', 'running')) THEN
		RETURN 'a ' || st || ' execution has an open line';
	END IF;
	/* A paused execution may have no open line: every step settled while
	   it was paused (chain_skip_step of the last one), or a step escalated
	   to a person (its line failed); chain_resume goes on from there. */
	IF st NOT IN ('completed', 'failed', 'cancelled', 'timeout', 'compensated', 'paused') AND NOT EXISTS (
		SELECT FROM chainexec.universal_transaction_lines
		 WHERE transaction_id = eid AND status IN ('pending', 'ready', 'waiting', 'running')) THEN
		RETURN 'a ' || st || ' execution has no open line';
	END IF;
	IF st = 'completed' AND EXISTS (SELECT FROM chainexec.universal_transaction_lines
									 WHERE transaction_id = eid AND line_type = 'compensation') THEN
		RETURN 'completed after its compensation ran';
	END IF;
	IF st = 'completed' AND EXISTS (SELECT FROM chainexec.universal_transaction_lines
									 WHERE transaction_id = eid AND line_type = 'step'
									   AND status NOT IN ('completed', 'skipped', 'failed')) THEN
		RETURN 'completed with a step that did not finish';
	END IF;
	IF st = 'compensated' AND EXISTS (
		SELECT FROM chainexec.universal_transaction_lines l
		  JOIN chainexec.chains c ON c.chain_id = (SELECT chain_id FROM chainexec.universal_transactions WHERE id = eid)
		  JOIN LATERAL jsonb_array_elements(c.definition->'steps') s ON (s->>'id')::int = l.step_id
		 WHERE l.transaction_id = eid AND l.line_type = 'step' AND l.status = 'completed' AND s ? 'rollbackAction') THEN
		RETURN 'compensated with a completed step not compensated';
	END IF;
	SELECT progress INTO last FROM rand_seen WHERE execution = eid;
	IF last IS NOT NULL AND p < last THEN
		RETURN format('progress went from %s to %s', last, p);
	END IF;
	INSERT INTO rand_seen VALUES (eid, p) ON CONFLICT (execution) DO UPDATE SET progress = excluded.progress;
	RETURN NULL;
END
$$;

/* One random operation on the execution; its outcome (ok, a SQLSTATE). */
CREATE FUNCTION pg_temp.random_op(eid uuid, OUT op text, OUT outcome text)
LANGUAGE plpgsql
AS $$
DECLARE
	k int := floor(random() * 12)::int;
	s int := 1 + floor(random() * 7)::int;
	st text;
BEGIN
	op := CASE k WHEN 0 THEN 'cancel' WHEN 1 THEN 'pause' WHEN 2 THEN 'resume' WHEN 3 THEN 'retry ' || s
				 WHEN 4 THEN 'skip ' || s WHEN 5 THEN 'rollback' WHEN 6 THEN 'complete ' || s
				 WHEN 7 THEN 'fail ' || s WHEN 8 THEN 'time passes' ELSE 'transition' END;
	BEGIN
		CASE k
			WHEN 0 THEN PERFORM chainexec.chain_cancel(eid);
			WHEN 1 THEN PERFORM chainexec.chain_pause(eid);
			WHEN 2 THEN PERFORM chainexec.chain_resume(eid);
			WHEN 3 THEN PERFORM chainexec.chain_retry_step(eid, s);
			WHEN 4 THEN PERFORM chainexec.chain_skip_step(eid, s, '{"approved": true}');
			WHEN 5 THEN PERFORM chainexec.chain_rollback(eid);
			WHEN 6 THEN PERFORM chainexec.chain_step_complete(eid, s, '{"approved": true}');
			WHEN 7 THEN PERFORM chainexec.chain_step_fail(eid, s, 'declined', 'no');
			WHEN 8 THEN UPDATE chainexec.universal_transaction_lines SET not_before = now()
						 WHERE transaction_id = eid AND status IN ('ready', 'waiting') AND not_before > now()
						   AND not_before < 'infinity';
			ELSE PERFORM chainexec._run_one(eid);
		END CASE;
		outcome := 'ok';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
		outcome := st;
	END;
END
$$;

DO $$
DECLARE
	seed float8 := random();
	e uuid;
	i int;
	j int;
	r record;
	v text;
	n int := 0;
BEGIN
	PERFORM setseed(seed * 2 - 1);
	INSERT INTO rand_log VALUES (0, NULL, 'seed', seed::text, NULL);
	FOR i IN 1..120 LOOP
		e := chainexec.chain_execute(CASE WHEN i % 3 = 0 THEN 'tap-ctl-rand-b' ELSE 'tap-ctl-rand-a' END);
		FOR j IN 1..14 LOOP
			r := pg_temp.random_op(e);
			v := pg_temp.violation(e);
			n := n + 1;
			INSERT INTO rand_log VALUES (n, e, r.op, r.outcome, v);
		END LOOP;
		/* then let it run to its end (or its next wait) */
		PERFORM pg_temp.run_all(e);
		INSERT INTO rand_log VALUES (n, e, 'run to the end', 'ok', pg_temp.violation(e));
	END LOOP;
END
$$;

SELECT is((SELECT count(*)::int FROM rand_log WHERE violation IS NOT NULL), 0,
		  'after each of 1,680 random control calls and transitions over 120 executions, every invariant holds');
SELECT is((SELECT string_agg(DISTINCT outcome, ',' ORDER BY outcome) FROM rand_log
			WHERE op <> 'seed' AND outcome NOT IN ('ok', '55000', '55P03', '42704')), NULL,
		  'every refused call is a clear 55000 (or 42704 for a step the execution does not have)');
SELECT ok((SELECT count(DISTINCT pg_temp.status(execution)) >= 4 FROM rand_log WHERE execution IS NOT NULL),
		  'the random executions end in several different states');
SELECT diag('seed ' || (SELECT outcome FROM rand_log WHERE op = 'seed') || '; first violations: ' ||
			coalesce((SELECT string_agg(format('#%s %s %s -> %s: %s', seq, execution, op, outcome, violation), '; ')
						FROM (SELECT * FROM rand_log WHERE violation IS NOT NULL ORDER BY seq LIMIT 5) x), 'none'));

-- A paused execution whose every step was skipped stays paused (nothing
-- advances while paused); chain_resume then completes it.
CREATE TEMP TABLE pk AS SELECT chainexec.chain_execute('tap-ctl-rand-b') AS id;
SELECT chainexec.chain_pause(id) FROM pk;
SELECT chainexec.chain_skip_step(id, s) FROM pk, generate_series(1, 4) s;
SELECT is((SELECT pg_temp.status(id) FROM pk), 'paused',
		  'skipping every step of a paused execution leaves it paused');
SELECT chainexec.chain_resume(id) FROM pk;
SELECT pg_temp.run_all(id) FROM pk;
SELECT is((SELECT pg_temp.status(id) FROM pk), 'completed',
		  'chain_resume of a paused execution with every step settled completes it');

-- ---------------------------------------------------------------------
-- The state machine is C: no SQL or PL/pgSQL function writes executions
-- ---------------------------------------------------------------------
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ')
			 FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
			WHERE p.pronamespace = 'chainexec'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
			  AND p.prosrc ~* '(insert\s+into|update|delete\s+from)\s+chainexec\.universal_transaction'), NULL,
		  'no SQL or PL/pgSQL function of chainexec writes universal_transactions or universal_transaction_lines');

SELECT * FROM finish();
ROLLBACK;
