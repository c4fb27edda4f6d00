--
-- 45_resilience: the SQL face of the resilience keys (SPEC §9
-- "Resilience"): chain_define compiles circuitBreaker, cache, retryBudget,
-- verificationQuery, onFailure "escalate" and backoffStrategy "random" and
-- refuses their unknown keys and bad values with the JSON path;
-- chain_validate warns of a verificationQuery without rollbackAction; the
-- breaker and cache tables have row-level security and the views the
-- SPEC's columns; chain_circuit_reset and chain_cache_invalidate check
-- their arguments.  What they do at run time: test/integration/resilience*.sh.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(24);

SET LOCAL client_min_messages = warning;

-- Accepted.
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-all", "retryBudget": {"maxRetries": 4}, "rollbackEnabled": true,
	"steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT {k} AS v", "inputVariables": ["k"],
	"circuitBreaker": {"failureThreshold": 20, "minimumThroughput": 5, "windowMs": 1000, "openDurationMs": 500,
					   "halfOpenSuccesses": 2, "key": "payments"},
	"cache": {"ttlMs": 1000, "key": ["k"], "maxEntries": 10},
	"rollbackAction": "SELECT {v}", "verificationQuery": "SELECT {v} IS NULL",
	"onFailure": "escalate",
	"retryConfig": {"maxRetries": 2, "backoffStrategy": "random", "baseDelayMs": 100, "maxDelayMs": 300}}]}')$$,
	'every resilience key with every setting is accepted');
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-short", "retryBudget": 3,
	"steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1", "circuitBreaker": true, "cache": false}]}')$$,
	'the short forms: retryBudget N, circuitBreaker true, cache false');

-- Refused, with the path.
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1",
	"cache": {"ttl": 60}}]}')$$, '22023',
	'invalid chain definition: unknown key "ttl" in chain definition at steps[0].cache.ttl',
	'cache: an unknown key is refused (it was silently ignored)');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1",
	"circuitBreaker": {"threshold": 5}}]}')$$, '22023', NULL,
	'circuitBreaker: an unknown key is refused');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1",
	"circuitBreaker": {"failureThreshold": 150}}]}')$$, '22023', NULL,
	'circuitBreaker: failureThreshold over 100 is refused');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1",
	"cache": {"maxEntries": 0}}]}')$$, '22023', NULL,
	'cache: maxEntries 0 is refused');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1",
	"cache": 5}]}')$$, '22023', NULL,
	'cache: a number is refused');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "retryBudget": {"max": 3},
	"steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}')$$, '22023', NULL,
	'retryBudget: an unknown key is refused');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "retryBudget": {},
	"steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}')$$, '22023',
	'invalid chain definition: missing required key "maxRetries" in "retryBudget" at retryBudget.maxRetries',
	'retryBudget: maxRetries is required');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1",
	"onFailure": "page"}]}')$$, '22023', NULL,
	'onFailure: an unknown value is refused');
SELECT throws_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-bad", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1",
	"rollbackAction": "SELECT 1", "verificationQuery": "SELECT 1; SELECT 2"}]}')$$, '42601', NULL,
	'verificationQuery: two statements are refused');

-- A verificationQuery without a rollbackAction: a warning.
SELECT lives_ok($$SELECT chainexec.chain_define('{"id": "tap-rs-warn", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1",
	"verificationQuery": "SELECT true"}]}', true)$$, 'a verificationQuery without rollbackAction is accepted');
SELECT ok(chainexec.chain_validate('tap-rs-warn')->>'warnings' LIKE '%verificationQuery%no effect%',
	'chain_validate warns that it has no effect');

-- The tables: row-level security, written by the extension owner only.
SELECT is((SELECT count(*)::int FROM pg_class
			WHERE relnamespace = 'chainexec'::regnamespace
			  AND relname IN ('circuit_breaker_state', 'step_cache', 'step_cache_counters') AND relrowsecurity), 3,
	'the breaker and cache tables have row-level security');
SELECT table_privs_are('chainexec', 'step_cache', 'public', ARRAY['SELECT'], 'PUBLIC may only read step_cache');
SELECT table_privs_are('chainexec', 'circuit_breaker_state', 'public', ARRAY['SELECT'],
	'PUBLIC may only read circuit_breaker_state');

-- The views have the SPEC's columns.
SELECT ok((SELECT count(*) = 7 FROM information_schema.columns
			WHERE table_schema = 'chainexec' AND table_name = 'circuit_breakers'
			  AND column_name IN ('organization_id', 'key', 'state', 'calls', 'failures', 'opened_at', 'next_probe_at')),
	'circuit_breakers: organization_id, key, state, calls, failures, opened_at, next_probe_at');
SELECT ok((SELECT count(*) = 4 FROM information_schema.columns
			WHERE table_schema = 'chainexec' AND table_name = 'cache_stats'
			  AND column_name IN ('hits', 'misses', 'hit_rate', 'entries')),
	'cache_stats: hits, misses, hit_rate, entries');

-- The functions.
SELECT throws_ok($$SELECT chainexec.chain_circuit_reset(NULL)$$, '22004', 'circuit breaker key must not be null',
	'chain_circuit_reset(NULL) is refused');
SELECT is(chainexec.chain_circuit_reset('tap-rs-no-such-key'), false, 'chain_circuit_reset of an unknown key: false');
SELECT throws_ok($$SELECT chainexec.chain_cache_invalidate(NULL)$$, '22004', 'chain id must not be null',
	'chain_cache_invalidate(NULL) is refused');
SELECT is(chainexec.chain_cache_invalidate('tap-rs-all'), 0::bigint, 'chain_cache_invalidate with nothing cached: 0');
SELECT is(chainexec.chain_cache_invalidate('tap-rs-all', 'a'), 0::bigint, 'chain_cache_invalidate of one step: 0');
SELECT function_returns('chainexec', 'chain_cache_invalidate', ARRAY['text', 'text'], 'bigint',
	'chain_cache_invalidate returns bigint');

SELECT * FROM finish();
ROLLBACK;
