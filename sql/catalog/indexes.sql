-- The indexes of the given tables (a partitioned table's own, which cover every
-- partition), valid and ready, as a target may mirror them:
--   definition  pg_get_indexdef from " USING ..." on: the access method, the keys with
--               their opclasses, collations and orderings, INCLUDE, WITH, WHERE; without
--               the names of the index and the table, which the target's copy differs in.
--               NULL should the text not start as pg_get_indexdef is known to write it.
--   attnums     every column the index reads: keys, INCLUDE, expressions and predicate.
--   default_opclasses  every key column uses its type's default operator class, so the
--               definition still holds for a column of another type (a masked column).
--   requires    what it uses outside pg_catalog but types (functions, operators,
--               operator classes, collations): the target has none of them.
--   types       the types outside pg_catalog it uses: the target has them only as the
--               types of replicated columns.
-- Exclusion constraints are left out: their index alone is not the constraint.
SELECT i.indrelid::int8 AS oid,
       ic.relname AS name,
       i.indisunique AS is_unique,
       i.indisprimary AS is_primary,
       i.indisreplident AS is_replica_identity,
       (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) AS has_expressions,
       COALESCE(con.condeferrable, false) AS is_deferrable,
       CASE WHEN pg_catalog.starts_with(def.text, def.prefix)
            THEN pg_catalog.substr(def.text, pg_catalog.length(def.prefix) + 1)
       END AS definition,
       ARRAY(SELECT DISTINCT a.attnum::int
               FROM (SELECT unnest(i.indkey::int2[]) AS attnum
                     UNION
                     SELECT d.refobjsubid
                       FROM pg_catalog.pg_depend AS d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass
                        AND d.objid = i.indexrelid
                        AND d.refclassid = 'pg_catalog.pg_class'::regclass
                        AND d.refobjid = i.indrelid) AS a
              WHERE a.attnum > 0
              ORDER BY 1) AS attnums,
       NOT EXISTS (SELECT
                     FROM unnest(i.indclass::oid[]) AS k(opclass)
                     JOIN pg_catalog.pg_opclass AS o ON o.oid = k.opclass
                    WHERE NOT o.opcdefault) AS default_opclasses,
       ARRAY(SELECT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)
               FROM pg_catalog.pg_depend AS d
              CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.refclassid, d.refobjid, 0)
                         AS o
              WHERE d.classid = 'pg_catalog.pg_class'::regclass
                AND d.objid = i.indexrelid
                AND d.refclassid NOT IN ('pg_catalog.pg_class'::regclass,
                                         'pg_catalog.pg_type'::regclass,
                                         'pg_catalog.pg_constraint'::regclass)
                AND o.schema IS DISTINCT FROM 'pg_catalog'
              ORDER BY 1) AS requires,
       ARRAY(SELECT ARRAY[n.nspname::text, t.typname::text]
               FROM pg_catalog.pg_depend AS d
               JOIN pg_catalog.pg_type AS t ON t.oid = d.refobjid
               JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
              WHERE d.classid = 'pg_catalog.pg_class'::regclass
                AND d.objid = i.indexrelid
                AND d.refclassid = 'pg_catalog.pg_type'::regclass
                AND n.nspname <> 'pg_catalog'
              ORDER BY 1) AS types
  FROM pg_catalog.pg_index AS i
  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_class AS c ON c.oid = i.indrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_constraint AS con
         ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
        AND con.contype IN ('p', 'u', 'x')
 CROSS JOIN LATERAL (
        SELECT pg_catalog.pg_get_indexdef(i.indexrelid) AS text,
               pg_catalog.format('CREATE %%sINDEX %%s ON %%s%%s.%%s ',
                                 CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                                 pg_catalog.quote_ident(ic.relname),
                                 CASE WHEN ic.relkind = 'I' THEN 'ONLY ' ELSE '' END,
                                 pg_catalog.quote_ident(n.nspname),
                                 pg_catalog.quote_ident(c.relname)) AS prefix) AS def
 WHERE i.indrelid = ANY(%(oids)s::oid[])
   AND i.indisvalid AND i.indisready AND i.indislive
   AND con.contype IS DISTINCT FROM 'x'
 ORDER BY i.indrelid, ic.relname
