-- Replica identity of each given relation and, for a partitioned one, of each leaf
-- partition (UPDATE/DELETE checks the leaf that holds the row).
-- kind: 'd' default (primary key), 'i' index, 'f' full, 'n' nothing.
-- columns: the identity's column names; NULL when there is none (or 'f').
WITH RECURSIVE rels AS (
    SELECT c.oid AS root, c.oid AS relid
      FROM pg_catalog.pg_class AS c
     WHERE c.oid = ANY(%(oids)s::oid[])
    UNION ALL
    SELECT rels.root, i.inhrelid
      FROM rels
      JOIN pg_catalog.pg_inherits AS i ON i.inhparent = rels.relid
)
SELECT rels.root::int8 AS root,
       rels.relid::int8 AS relid,
       c.relid_name AS relation,
       c.relkind,
       c.relreplident::text AS kind,
       idx.indexname,
       idx.is_primary,
       idx.columns
  FROM rels
  JOIN LATERAL (
        SELECT cl.relkind::text AS relkind, cl.relreplident,
               pg_catalog.format('%%I.%%I', ns.nspname, cl.relname) AS relid_name
          FROM pg_catalog.pg_class AS cl
          JOIN pg_catalog.pg_namespace AS ns ON ns.oid = cl.relnamespace
         WHERE cl.oid = rels.relid) AS c ON true
  LEFT JOIN LATERAL (
        SELECT ic.relname AS indexname,
               i.indisprimary AS is_primary,
               array_agg(a.attname ORDER BY k.ord) AS columns
          FROM pg_catalog.pg_index AS i
          JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
          CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = rels.relid
           AND ((c.relreplident = 'd' AND i.indisprimary)
                OR (c.relreplident = 'i' AND i.indisreplident))
         GROUP BY ic.relname, i.indisprimary) AS idx ON true
 ORDER BY rels.root, rels.relid
