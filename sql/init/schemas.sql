-- Which of the given schema names exist in this database.
SELECT n.nspname AS schema
  FROM pg_catalog.pg_namespace AS n
 WHERE n.nspname = ANY(%(schemas)s::text[])
