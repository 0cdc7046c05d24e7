-- Source columns that repl's publications depend on (a column list or a row filter
-- names them: pg_depend records both). PostgreSQL refuses DROP COLUMN and ALTER COLUMN
-- TYPE on them while the publication uses them; DROP COLUMN ... CASCADE takes the whole
-- table out of the publication instead.
SELECT n.nspname AS schema, c.relname AS name, a.attname AS column_name,
       pg_catalog.array_agg(DISTINCT p.pubname ORDER BY p.pubname) AS publications
  FROM pg_catalog.pg_depend AS d
  JOIN pg_catalog.pg_publication_rel AS pr ON pr.oid = d.objid
  JOIN pg_catalog.pg_publication AS p ON p.oid = pr.prpubid
  JOIN pg_catalog.pg_class AS c ON c.oid = d.refobjid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE d.classid = 'pg_catalog.pg_publication_rel'::pg_catalog.regclass
   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND d.refobjsubid > 0
   AND starts_with(p.pubname, %(prefix)s)
 GROUP BY n.nspname, c.relname, a.attname, a.attnum
 ORDER BY n.nspname, c.relname, a.attnum
