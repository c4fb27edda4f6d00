--
-- 00_install: CREATE EXTENSION chainexec makes the schema's tables, with
-- tenant-leading keys, the indexes the worker and views need, row-level
-- security, and registers every table for pg_dump.
--
CREATE EXTENSION chainexec;

SELECT extname, extversion, extnamespace::regnamespace AS schema, extrelocatable
  FROM pg_extension WHERE extname = 'chainexec';

-- The tables (views are checked where they are tested).
SELECT c.relname, c.relrowsecurity AS rls, c.relpersistence
  FROM pg_class c
 WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;

-- Every table carries organization_id (uuid, not null) and every primary,
-- unique and foreign key starts with it.
SELECT table_name, data_type, is_nullable
  FROM information_schema.columns
 WHERE table_schema = 'chainexec' AND column_name = 'organization_id'
   AND table_name IN (SELECT relname FROM pg_class
                       WHERE relnamespace = 'chainexec'::regnamespace AND relkind IN ('r', 'p'))
 ORDER BY table_name;

SELECT con.conrelid::regclass AS table_name, con.contype,
       (SELECT string_agg(a.attname, ', ' ORDER BY k.n)
          FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS columns,
       con.confrelid::regclass AS refers_to
  FROM pg_constraint con
 WHERE con.connamespace = 'chainexec'::regnamespace AND con.contype IN ('p', 'u', 'f')
 ORDER BY con.conrelid::regclass::text, con.contype, con.conname;

-- Unique indexes that are not constraints follow the same rule.
SELECT i.indexrelid::regclass AS index_name,
       (SELECT a.attname FROM pg_attribute a
         WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0]) AS first_column
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'chainexec'::regnamespace AND i.indisunique AND NOT i.indisprimary
 ORDER BY i.indexrelid::regclass::text;

-- The indexes that are not keys: each serves the dispatch query, a sweep or a view.
SELECT i.indexrelid::regclass AS index_name, i.indrelid::regclass AS table_name,
       pg_get_expr(i.indpred, i.indrelid) AS predicate
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'chainexec'::regnamespace AND NOT i.indisprimary
 ORDER BY i.indexrelid::regclass::text;

-- The dispatch index: ready lines by priority, then due time.
SELECT pg_get_indexdef('chainexec.universal_transaction_lines_ready'::regclass);

-- pg_dump keeps the rows: every table is registered with
-- pg_extension_config_dump (no table is missing, none is filtered), but
-- channel_secret: each installation draws its own key of the event channel
-- names, which no dump should carry.
SELECT cfg::regclass AS config_table, coalesce(cond, '') AS condition
  FROM pg_extension e,
       unnest(e.extconfig, e.extcondition) AS x(cfg, cond)
 WHERE e.extname = 'chainexec'
 ORDER BY x.cfg::regclass::text;

SELECT c.oid::regclass AS not_dumped
  FROM pg_class c
 WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.oid <> ALL (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'chainexec');

-- The administrators' role exists and may not log in.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'chainexec_admin';

-- The extension can be dropped and created again (the role stays).
DROP EXTENSION chainexec;
SELECT count(*) AS chainexec_relations_left
  FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'chainexec');
CREATE EXTENSION chainexec;
SELECT count(*) AS tables
  FROM pg_class
 WHERE relnamespace = 'chainexec'::regnamespace AND relkind IN ('r', 'p');
