--
-- 35_privileges: the privileges and search paths of the extension's
-- objects, read from the catalog.
--   * PUBLIC holds no write privilege (INSERT, UPDATE, DELETE, TRUNCATE,
--     REFERENCES, TRIGGER; USAGE or UPDATE on a sequence) on any relation
--     of chainexec: writes go through the SQL API, as the extension owner;
--   * every SECURITY DEFINER function, and every function that is not C
--     apart from the schema-qualified helpers that row-level security
--     inlines, pins a search_path that ends in pg_temp;
--   * PUBLIC cannot execute any function that trusts a "caller" argument.
--

-- What PUBLIC may do with each relation (none may write).
SELECT c.oid::regclass AS relation, c.relkind, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS public_may
  FROM pg_class c
  CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
 WHERE c.relnamespace = 'chainexec'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND a.grantee = 0
 GROUP BY c.oid, c.relkind
 ORDER BY c.oid::regclass::text;

SELECT count(*) AS public_write_privileges
  FROM pg_class c
  CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
 WHERE c.relnamespace = 'chainexec'::regnamespace AND a.grantee = 0 AND a.privilege_type <> 'SELECT';

-- SECURITY DEFINER functions without a search_path that ends in pg_temp: none.
SELECT p.oid::regprocedure AS unpinned_security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'chainexec'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) s WHERE s ~ '^search_path=.*\mpg_temp$');

-- Functions that are not C without the pinned search_path: only the
-- helpers row-level security inlines (every name in them is qualified).
SELECT p.oid::regprocedure AS unpinned, l.lanname
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'chainexec'::regnamespace AND l.lanname <> 'c'
   AND NOT coalesce('search_path=pg_catalog, chainexec, pg_temp' = ANY (p.proconfig), false)
 ORDER BY 1::text;

-- Functions that trust an argument named "caller" (the role a privileged
-- implementation acts for) that PUBLIC may execute: none.
SELECT count(*) > 10 AS several_trust_caller, count(*) FILTER (WHERE EXISTS (
			SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
			 WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')) AS public_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'chainexec'::regnamespace AND 'caller' = ANY (p.proargnames);

-- The public functions that write run through ce_definer_call (as the extension owner).
SELECT p.oid::regprocedure AS runs_as_owner
  FROM pg_proc p
 WHERE p.pronamespace = 'chainexec'::regnamespace AND p.prosrc = 'ce_definer_call'
 ORDER BY 1::text;
