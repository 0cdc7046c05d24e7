-- The indexes on the given tables that repl made: their comment starts with repl's mark.
SELECT i.indrelid::int8 AS oid,
       ic.relname AS name
  FROM pg_catalog.pg_index AS i
  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
 WHERE i.indrelid = ANY(%(oids)s::oid[])
   AND pg_catalog.starts_with(pg_catalog.obj_description(i.indexrelid, 'pg_class'),
                              %(marker)s)
 ORDER BY i.indrelid, ic.relname
