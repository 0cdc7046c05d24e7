-- The relations named by (schema, name) pairs or by OID (production's identity of a
-- table the last setup replicated), with what publishing them depends on.
-- reltuples of a partitioned table is its leaves' sum; NULL when never analyzed.
SELECT n.nspname AS schema,
       c.relname AS name,
       c.oid::int8 AS oid,
       c.relkind::text AS relkind,
       c.relispartition AS is_partition,
       c.relreplident::text AS replica_identity,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owned,
       CASE WHEN c.relkind = 'p' THEN
                (SELECT sum(l.reltuples)::int8
                   FROM pg_catalog.pg_partition_tree(c.oid) AS t
                   JOIN pg_catalog.pg_class AS l ON l.oid = t.relid
                  WHERE t.isleaf AND l.reltuples >= 0)
            WHEN c.reltuples >= 0 THEN c.reltuples::int8
       END AS estimated_rows
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND ((n.nspname, c.relname) IN (SELECT * FROM unnest(%(schemas)s::text[], %(names)s::text[]))
        OR c.oid = ANY(%(oids)s::oid[]))
