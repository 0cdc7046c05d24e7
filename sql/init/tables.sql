-- The tables `repl init` configures: ordinary and partitioned tables, a partition only
-- through its root, in the given schemas (none given: every schema but PostgreSQL's own
-- and repl's), with what decides whether and how they can be published and sampled.
-- An extension's tables (PostGIS's spatial_ref_sys) are the extension's, not the data's.
SELECT n.nspname AS schema,
       c.relname AS name,
       c.relpersistence = 'u' AS unlogged,
       pg_catalog.has_table_privilege(c.oid, 'SELECT') AS readable
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND NOT c.relispartition
   AND c.relpersistence <> 't'
   AND CASE WHEN pg_catalog.cardinality(%(schemas)s::text[]) > 0
            THEN n.nspname = ANY(%(schemas)s::text[])
            ELSE n.nspname NOT IN ('pg_catalog', 'information_schema', 'repl')
                 AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
       END
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND d.objid = c.oid
                      AND d.deptype = 'e')
 ORDER BY n.nspname, c.relname
