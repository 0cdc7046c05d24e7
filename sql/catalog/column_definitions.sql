-- Per column of the given tables, what its definition holds beyond its type: its
-- default or generation expression (pg_get_expr, schema-qualified outside pg_catalog;
-- a generation expression only when the generation parameter asks: on the source),
-- whether it is generated ('s' stored, 'v' virtual) or an identity column ('a'
-- always, 'd' by default), and what the expression depends on:
--   attnums    the other columns of the table it reads (generated columns only);
--   sequences  the sequences it takes values from (a serial column's nextval);
--   requires   what it uses outside pg_catalog but types and sequences (functions,
--              operators, collations): the target has none of them;
--   types      the types outside pg_catalog it uses.
-- comment: the column's comment (repl's record of a generated column it made).
SELECT a.attrelid::int8 AS oid,
       a.attname AS name,
       a.attidentity::text AS identity,
       a.attgenerated::text AS generated,
       -- A default has no column reference: deparsed without the table (pg_get_expr with
       -- a table locks it, and a target table someone keeps locked must not hang repl).
       -- A generation expression needs the table: read only when asked.
       CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(ad.adbin, 0)
            WHEN %(generation)s THEN pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)
       END AS expression,
       ARRAY(SELECT DISTINCT d.refobjsubid::int
               FROM pg_catalog.pg_depend AS d
              WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
                AND d.refclassid = 'pg_catalog.pg_class'::regclass
                AND d.refobjid = a.attrelid AND d.refobjsubid NOT IN (0, a.attnum)
              ORDER BY 1) AS attnums,
       ARRAY(SELECT ARRAY[n.nspname::text, s.relname::text]
               FROM pg_catalog.pg_depend AS d
               JOIN pg_catalog.pg_class AS s ON s.oid = d.refobjid AND s.relkind = 'S'
               JOIN pg_catalog.pg_namespace AS n ON n.oid = s.relnamespace
              WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
                AND d.refclassid = 'pg_catalog.pg_class'::regclass
              ORDER BY 1) AS sequences,
       ARRAY(SELECT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)
               FROM pg_catalog.pg_depend AS d
              CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.refclassid, d.refobjid, 0)
                         AS o
              WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
                AND d.refclassid NOT IN ('pg_catalog.pg_class'::regclass,
                                         'pg_catalog.pg_type'::regclass)
                AND o.schema IS DISTINCT FROM 'pg_catalog'
              ORDER BY 1) AS requires,
       ARRAY(SELECT ARRAY[n.nspname::text, t.typname::text]
               FROM pg_catalog.pg_depend AS d
               JOIN pg_catalog.pg_type AS t ON t.oid = d.refobjid
               JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
              WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
                AND d.refclassid = 'pg_catalog.pg_type'::regclass
                AND n.nspname <> 'pg_catalog'
              ORDER BY 1) AS types,
       pg_catalog.col_description(a.attrelid, a.attnum) AS comment
  FROM pg_catalog.pg_attribute AS a
  LEFT JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE a.attrelid = ANY(%(oids)s::oid[])
   AND a.attnum > 0 AND NOT a.attisdropped
   AND (ad.oid IS NOT NULL OR a.attidentity <> '')
 ORDER BY a.attrelid, a.attnum
