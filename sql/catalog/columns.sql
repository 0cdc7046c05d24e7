-- Live columns of the given relations, in table order.
SELECT a.attrelid::int8 AS oid,
       a.attnum AS attnum,
       a.attname AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null,
       a.attgenerated::text AS generated,
       tn.nspname AS type_schema,
       t.typname AS type_name,
       t.typcategory::text AS type_category,
       a.atttypid::int8 AS type_oid
  FROM pg_catalog.pg_attribute AS a
  JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
  JOIN pg_catalog.pg_namespace AS tn ON tn.oid = t.typnamespace
 WHERE a.attrelid = ANY(%(oids)s::oid[])
   AND a.attnum > 0
   AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
