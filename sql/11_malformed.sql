--
-- 11_malformed: chain_define refuses every malformed definition with the
-- right SQLSTATE and a message that names where the problem is.
--
-- Part 1 replays every line of test/malformed_definitions.txt (tab
-- separated: expected SQLSTATE, JSON path, definition).  Part 2 adds
-- hostile inputs: SQL-injection-looking ids and names, deep nesting, huge
-- definitions and strings, too many steps, values that are not objects.
--
-- A case passes when chain_define fails with the expected SQLSTATE, the
-- message contains the path (when there is one) and the error is not an
-- internal one (XX000).  Nothing may be stored.
--

-- replay(definition, expected SQLSTATE, path): runs chain_define and judges
-- the error.  The definition is text so that its cast to jsonb is part of
-- the case.
CREATE FUNCTION pg_temp.replay(def text, want text, path text,
							   OUT ok boolean, OUT got text, OUT message text)
LANGUAGE plpgsql
AS $$
DECLARE
	v int;
BEGIN
	BEGIN
		v := chainexec.chain_define(def::jsonb);
		ok := false;
		got := '00000';
		message := 'accepted as version ' || v;
		RETURN;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
	END;
	ok := got = want AND got <> 'XX000'
		AND (coalesce(path, '') = '' OR strpos(message, path) > 0);
END
$$;

------------------------------------------------------------------------------
-- 1. test/malformed_definitions.txt, every line.  CSV with a quote
-- character that never occurs, so that backslashes and quotes in the JSON
-- are read as they are.
------------------------------------------------------------------------------
CREATE TEMP TABLE malformed (
	n		int GENERATED ALWAYS AS IDENTITY,
	sqlstate text NOT NULL,
	path	text,
	def		text NOT NULL
);
\copy malformed (sqlstate, path, def) FROM 'test/malformed_definitions.txt' WITH (FORMAT csv, DELIMITER E'\t', QUOTE E'\x01')

SELECT count(*) AS cases, count(DISTINCT sqlstate) AS sqlstates FROM malformed;

SELECT count(*) AS chains_before FROM chainexec.chains \gset

CREATE TEMP TABLE results AS
SELECT 'file' AS kind, m.n, m.sqlstate AS want, r.*
  FROM malformed m, pg_temp.replay(m.def, m.sqlstate, m.path) r;

SELECT r.n, CASE WHEN r.ok THEN 'ok' ELSE 'not ok' END AS result, r.want, r.got, r.message
  FROM results r WHERE r.kind = 'file'
 ORDER BY r.n;

------------------------------------------------------------------------------
-- 2. Hostile definitions.
------------------------------------------------------------------------------
CREATE TEMP TABLE hostile (
	n		int GENERATED ALWAYS AS IDENTITY,
	name	text NOT NULL,
	sqlstate text NOT NULL,
	path	text,
	def		text NOT NULL
);

-- A valid one-step chain with one key replaced or added.
CREATE FUNCTION pg_temp.chain_with(key text, val jsonb) RETURNS text
LANGUAGE sql AS $$
	SELECT (jsonb_build_object('id', 'hostile', 'steps',
			jsonb_build_array(jsonb_build_object('id', 1, 'name', 'a', 'type', 'sql', 'sql', 'SELECT 1')))
			|| jsonb_build_object(key, val))::text
$$;
CREATE FUNCTION pg_temp.step_with(key text, val jsonb) RETURNS text
LANGUAGE sql AS $$
	SELECT jsonb_build_object('id', 'hostile', 'steps',
			jsonb_build_array(jsonb_build_object('id', 1, 'name', 'a', 'type', 'sql', 'sql', 'SELECT 1')
							  || jsonb_build_object(key, val)))::text
$$;

INSERT INTO hostile (name, sqlstate, path, def) VALUES
	-- SQL injection in names: refused as names, never run
	('id with a quote and DROP', '22023', 'id', pg_temp.chain_with('id', to_jsonb($s$x'; DROP TABLE chainexec.chains; --$s$::text))),
	('id with a semicolon', '22023', 'id', pg_temp.chain_with('id', '"a;b"')),
	('id with a dollar quote', '22023', 'id', pg_temp.chain_with('id', to_jsonb('$$;SELECT pg_sleep(10);$$'::text))),
	('id in upper case', '22023', 'id', pg_temp.chain_with('id', '"Robert"')),
	('id with a NUL escape', '22P05', '', '{"id": "a\u0000b", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}'),
	('id with an escaped quote', '22023', 'id', '{"id": "a\"b", "steps": [{"id": 1, "name": "a", "type": "sql", "sql": "SELECT 1"}]}'),
	('step name with a quote', '22023', 'steps[0].name', pg_temp.step_with('name', to_jsonb($s$a'); DELETE FROM chainexec.chains; --$s$::text))),
	('step name with a space', '22023', 'steps[0].name', pg_temp.step_with('name', '"a b"')),
	('variable name with a quote', '22023', 'steps[0].inputVariables[0]', pg_temp.step_with('inputVariables', to_jsonb(ARRAY[$s$x' OR '1'='1$s$]))),
	('variable name "chain"', '42939', 'steps[0].outputVariables[0]', pg_temp.step_with('outputVariables', '["chain"]')),
	('placeholder with a quote', '42601', 'steps[0].sql', pg_temp.step_with('sql', to_jsonb($s$SELECT {x'}$s$::text))),
	('unknown key that looks like SQL', '22023', $s$'; DROP TABLE x; --$s$, pg_temp.chain_with($s$'; DROP TABLE x; --$s$, '1')),
	-- nesting
	('metadata nested 1000 levels', '54000', '',
		pg_temp.chain_with('metadata', (repeat('{"a": ', 1000) || '1' || repeat('}', 1000))::jsonb)),
	('array nested 1000 levels in a step', '54000', '',
		pg_temp.step_with('cache', (repeat('[', 1000) || '1' || repeat(']', 1000))::jsonb)),
	('inputSchema nested 1000 levels', '54000', '',
		pg_temp.chain_with('inputSchema', (repeat('{"type": "object", "properties": {"a": ', 1000) || '{}' || repeat('}}', 1000))::jsonb)),
	('expression nested 1000 parentheses', '54000', 'steps[0].conditionalExecution',
		pg_temp.step_with('conditionalExecution', to_jsonb(repeat('(', 1000) || '1' || repeat(')', 1000)))),
	('expression of 1000 negations', '54000', 'steps[0].conditionalExecution',
		pg_temp.step_with('conditionalExecution', to_jsonb(repeat('!', 1000) || 'true'))),
	('template with nested conditionals', '54000', 'steps[0].sql',
		pg_temp.step_with('sql', to_jsonb('SELECT {' || repeat('a ? (', 500) || '1' || repeat(') : 2', 500) || '}'))),
	-- size
	('definition of 2 MB', '54000', '',
		pg_temp.chain_with('description', to_jsonb(repeat('x', 2 * 1024 * 1024)))),
	('definition of 2 MB in metadata', '54000', '',
		pg_temp.chain_with('metadata', (SELECT jsonb_object_agg('k' || i, repeat('v', 1000)) FROM generate_series(1, 2100) i))),
	('600 steps', '54000', 'steps',
		(SELECT jsonb_build_object('id', 'hostile', 'steps',
				jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql', 'sql', 'SELECT ' || i) ORDER BY i))::text
		   FROM generate_series(1, 600) i)),
	('sql of 100000 characters', '54000', 'steps[0].sql', pg_temp.step_with('sql', to_jsonb('SELECT ' || repeat('1+', 50000) || '1'))),
	('expression of 10000 characters', '54000', 'steps[0].conditionalExecution',
		pg_temp.step_with('conditionalExecution', to_jsonb(repeat('x == 1 && ', 1000) || 'true'))),
	('step name of 100000 characters', '22023', 'steps[0].name', pg_temp.step_with('name', to_jsonb(repeat('a', 100000)))),
	('id of 100000 characters', '22023', 'id', pg_temp.chain_with('id', to_jsonb(repeat('a', 100000)))),
	('key of 100000 characters', '22023', '', pg_temp.chain_with(repeat('k', 100000), '1')),
	('10000 input variables', '54000', 'steps[0].inputVariables',
		pg_temp.step_with('inputVariables', (SELECT jsonb_agg('v' || i) FROM generate_series(1, 10000) i))),
	('10000 dependsOn entries', '54000', 'steps[0].dependsOn',
		pg_temp.step_with('dependsOn', (SELECT jsonb_agg(1) FROM generate_series(1, 10000) i))),
	('cycle through 500 steps', '42P17', 'dependsOn',
		(SELECT jsonb_build_object('id', 'hostile', 'steps',
				jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql', 'sql', 'SELECT 1',
											 'dependsOn', jsonb_build_array(CASE WHEN i = 1 THEN 500 ELSE i - 1 END)) ORDER BY i))::text
		   FROM generate_series(1, 500) i)),
	-- numbers
	('step id 1e308', '22023', 'steps[0].id', pg_temp.step_with('id', '1e308')),
	('step id 2^31', '22023', 'steps[0].id', pg_temp.step_with('id', '2147483648')),
	('step id 1.5', '22023', 'steps[0].id', pg_temp.step_with('id', '1.5')),
	('maxRetries -1', '22023', 'steps[0].retryConfig.maxRetries', pg_temp.step_with('retryConfig', '{"maxRetries": -1}')),
	('timeoutMs 1e400 digits', '22023', 'steps[0].timeoutMs', pg_temp.step_with('timeoutMs', ('1' || repeat('0', 400))::jsonb)),
	-- not an object
	('empty object', '22023', 'id', '{}'),
	('array', '22023', '', '[{"id": "x", "steps": []}]'),
	('string', '22023', '', '"{\"id\": \"x\"}"'),
	('number', '22023', '', '42'),
	('true', '22023', '', 'true'),
	('JSON null', '22023', '', 'null'),
	('steps null', '22023', 'steps', '{"id": "x", "steps": null}'),
	('step null', '22023', 'steps[0]', '{"id": "x", "steps": [null]}'),
	('not JSON', '22P02', '', '{"id": "x", steps: []}');

INSERT INTO results
SELECT 'hostile', h.n, h.sqlstate, r.*
  FROM hostile h, pg_temp.replay(h.def, h.sqlstate, h.path) r;
-- SQL NULL.
INSERT INTO results
SELECT 'hostile', (SELECT max(n) + 1 FROM hostile), '22004', r.*
  FROM pg_temp.replay(NULL, '22004', '') r;

SELECT r.n, coalesce(h.name, 'SQL NULL') AS name, CASE WHEN r.ok THEN 'ok' ELSE 'not ok' END AS result,
	   r.want, r.got, left(r.message, 160) AS message
  FROM results r LEFT JOIN hostile h USING (n)
 WHERE r.kind = 'hostile'
 ORDER BY r.n;

-- Nothing refused was stored.
SELECT count(*) - :chains_before AS new_versions FROM chainexec.chains;

-- Large but within the limits: accepted.
SELECT chainexec.chain_define(pg_temp.chain_with('description', to_jsonb(repeat('x', 900000)))::jsonb) AS v;
SELECT chainexec.chain_define((SELECT jsonb_build_object('id', 'hostile', 'steps',
		jsonb_agg(jsonb_build_object('id', i, 'name', 's' || i, 'type', 'sql', 'sql', 'SELECT ' || i) ORDER BY i))
	FROM generate_series(1, 500) i)) AS v;
SELECT chainexec.chain_define(pg_temp.chain_with('metadata', (repeat('{"a": ', 40) || '1' || repeat('}', 40))::jsonb)::jsonb) AS v;
-- An id that only looks hostile is a fine id.
SELECT chainexec.chain_define(pg_temp.chain_with('id', '"drop.table-chains_--"')::jsonb) AS v;
-- Text that looks like SQL is stored as given, and runs nothing.
SELECT chainexec.chain_define(pg_temp.chain_with('description', to_jsonb($s$'); DROP TABLE chainexec.chains; --$s$::text))::jsonb) AS v;
SELECT chain_id, version, status, description
  FROM chainexec.chains WHERE chain_id IN ('hostile', 'drop.table-chains_--') ORDER BY 1, 2;

-- Handler names ("instructionSet") and template ids ("templateId") must be
-- names that chain_register_handler / chain_register_template accept
-- ([A-Za-z0-9_.-]{1,128}): refused with 22023 at the key.
SELECT r.got, r.message
  FROM pg_temp.replay('{"id": "hostile-gap", "steps": [{"id": 1, "name": "a", "type": "function", "instructionSet": "h'');--"}]}',
					  '22023', 'steps[0].instructionSet') r;
SELECT r.got, r.message
  FROM pg_temp.replay('{"id": "hostile-gap", "steps": [{"id": 1, "name": "a", "type": "template", "templateId": "bad id; --"}]}',
					  '22023', 'steps[0].templateId') r;

------------------------------------------------------------------------------
-- Totals.
------------------------------------------------------------------------------
SELECT kind, count(*) FILTER (WHERE ok) AS passed, count(*) FILTER (WHERE NOT ok) AS failed,
	   count(*) FILTER (WHERE got = 'XX000') AS internal_errors
  FROM results GROUP BY ROLLUP (kind) ORDER BY kind;

SET chainexec.internal = on;
DELETE FROM chainexec.chains WHERE chain_id IN ('hostile', 'hostile-gap', 'drop.table-chains_--');
RESET chainexec.internal;
