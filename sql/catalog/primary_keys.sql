-- The primary key of each given table: its constraint name and columns in key order.
SELECT i.indrelid::int8 AS oid,
       c.conname AS name,
       array_agg(a.attname ORDER BY k.ord) AS columns
  FROM pg_catalog.pg_index AS i
  JOIN pg_catalog.pg_constraint AS c ON c.conindid = i.indexrelid AND c.contype = 'p'
 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = ANY(%(oids)s::oid[]) AND i.indisprimary
 GROUP BY i.indrelid, c.conname
