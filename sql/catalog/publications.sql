-- Publications whose names start with the given prefix, one row per published table
-- (a publication without tables gives one row with NULL relation).
SELECT p.pubname AS publication,
       p.puballtables AS all_tables,
       p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate,
       p.pubviaroot AS via_root,
       n.nspname AS schema,
       c.relname AS name,
       CASE WHEN pr.prattrs IS NULL THEN NULL
            ELSE (SELECT array_agg(a.attname ORDER BY a.attnum)
                    FROM pg_catalog.pg_attribute AS a
                   WHERE a.attrelid = pr.prrelid AND a.attnum = ANY(pr.prattrs::int2[]))
       END AS columns,
       pg_catalog.pg_get_expr(pr.prqual, pr.prrelid) AS row_filter,
       pr.prqual::text AS row_filter_tree,
       pg_catalog.obj_description(p.oid, 'pg_publication') AS comment
  FROM pg_catalog.pg_publication AS p
  LEFT JOIN pg_catalog.pg_publication_rel AS pr ON pr.prpubid = p.oid
  LEFT JOIN pg_catalog.pg_class AS c ON c.oid = pr.prrelid
  LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE starts_with(p.pubname, %(prefix)s)
 ORDER BY p.pubname, n.nspname, c.relname
