-- What an initial copy from a snapshot reads of one table (%(rel)s, a quoted name): the
-- table itself, or the leaves of its partition tree (which has no rows for a table
-- outside one), each with its size in bytes, the server's block size, and its storage
-- (relfilenode, read from pg_class in the copy's snapshot: a rewrite since changes it).
SELECT n.nspname AS schema, c.relname AS name,
       pg_catalog.pg_relation_size(c.oid) AS size,
       pg_catalog.current_setting('block_size')::int AS block,
       c.relfilenode AS filenode
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND (c.oid = %(rel)s::regclass
        OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree(%(rel)s::regclass)
                      WHERE isleaf))
 ORDER BY c.oid
