-- User-defined types with their structure: the given types (by OID, or by schema and
-- name) and every user type they need in turn (a domain's base type, a composite's
-- attribute types, a range's subtype). An array stands for its element type and a
-- multirange for its range: both come with the type PostgreSQL makes them for.
-- Types are spelled by format_type under repl's search_path (pg_catalog, pg_temp):
-- qualified unless PostgreSQL's own. A table's row type is reported, never followed
-- into its columns; PostgreSQL's own types are not followed.
WITH RECURSIVE
start(oid) AS (
    SELECT pg_catalog.unnest(%(oids)s::oid[])
    UNION
    SELECT t.oid
      FROM ROWS FROM (pg_catalog.unnest(%(schemas)s::text[]),
                     pg_catalog.unnest(%(names)s::text[])) AS wanted(schema, name)
      JOIN pg_catalog.pg_namespace AS n ON n.nspname = wanted.schema
      JOIN pg_catalog.pg_type AS t ON t.typnamespace = n.oid AND t.typname = wanted.name
),
-- Each needed type, and the type that uses it (NULL for those asked for).
needed(oid, used_by) AS (
    SELECT oid, NULL::oid FROM start
    UNION
    SELECT r.ref, t.oid
      FROM needed
      JOIN pg_catalog.pg_type AS t ON t.oid = needed.oid
      JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
      LEFT JOIN pg_catalog.pg_class AS c ON c.oid = t.typrelid
     CROSS JOIN LATERAL (
            SELECT t.typelem
             WHERE t.typelem <> 0
               AND t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
            UNION ALL
            SELECT t.typbasetype WHERE t.typtype = 'd'
            UNION ALL
            SELECT a.atttypid
              FROM pg_catalog.pg_attribute AS a
             WHERE t.typtype = 'c' AND c.relkind = 'c'
               AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
            UNION ALL
            SELECT rg.rngsubtype FROM pg_catalog.pg_range AS rg WHERE rg.rngtypid = t.oid
            UNION ALL
            SELECT rg.rngtypid FROM pg_catalog.pg_range AS rg WHERE rg.rngmultitypid = t.oid
           ) AS r(ref)
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
),
-- As arrays, so that the planner does not expect a row per recursion step: a large
-- estimate would have the server compile the query (JIT) for seconds.
needed_oids(oids) AS (
    SELECT pg_catalog.array_agg(DISTINCT oid) FROM needed
),
refs_of(oid, refs) AS (
    SELECT used_by, pg_catalog.array_agg(oid::int8) FROM needed
     WHERE used_by IS NOT NULL GROUP BY used_by
)
SELECT t.oid::int8 AS oid,
       n.nspname AS schema,
       t.typname AS name,
       pg_catalog.format_type(t.oid, NULL) AS spelled,
       t.typtype::text AS typtype,
       c.relkind::text AS relkind,
       -- what an array or a multirange stands for
       CASE WHEN t.typelem <> 0
                 AND t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
            THEN t.typelem::int8
            WHEN t.typtype = 'm'
            THEN (SELECT rg.rngtypid::int8 FROM pg_catalog.pg_range AS rg
                   WHERE rg.rngmultitypid = t.oid)
       END AS stands_for,
       COALESCE(refs_of.refs, '{}') AS refs,
       (SELECT e.extname
          FROM pg_catalog.pg_depend AS d
          JOIN pg_catalog.pg_extension AS e ON e.oid = d.refobjid
         WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid = t.oid
           AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.deptype = 'e') AS extension,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum AS e
              WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
              WHERE t.typtype = 'c' AND c.relkind = 'c' AND a.attrelid = t.typrelid
                AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum) AS attribute_names,
       ARRAY(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)
                    || CASE WHEN a.attcollation <> at.typcollation
                            THEN ' COLLATE ' || pg_catalog.quote_ident(cn.nspname) || '.'
                                 || pg_catalog.quote_ident(co.collname)
                            ELSE '' END
               FROM pg_catalog.pg_attribute AS a
               JOIN pg_catalog.pg_type AS at ON at.oid = a.atttypid
               LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation
               LEFT JOIN pg_catalog.pg_namespace AS cn ON cn.oid = co.collnamespace
              WHERE t.typtype = 'c' AND c.relkind = 'c' AND a.attrelid = t.typrelid
                AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum) AS attribute_types,
       CASE t.typtype WHEN 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod)
                      WHEN 'r' THEN pg_catalog.format_type(rg.rngsubtype, NULL)
       END AS base,
       t.typnotnull AS not_null,
       pg_catalog.pg_get_expr(t.typdefaultbin, 0) AS "default",
       -- CHECK constraints only: PostgreSQL 17+ also keeps NOT NULL as a constraint
       ARRAY(SELECT k.conname::text FROM pg_catalog.pg_constraint AS k
              WHERE k.contypid = t.oid AND k.contype = 'c' ORDER BY k.conname) AS check_names,
       ARRAY(SELECT pg_catalog.pg_get_constraintdef(k.oid) FROM pg_catalog.pg_constraint AS k
              WHERE k.contypid = t.oid AND k.contype = 'c' ORDER BY k.conname) AS check_defs,
       -- a collation other than the one the base type or subtype gives
       (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
          FROM pg_catalog.pg_collation AS co
          JOIN pg_catalog.pg_namespace AS cn ON cn.oid = co.collnamespace
         WHERE co.oid = CASE t.typtype WHEN 'd' THEN NULLIF(t.typcollation, bt.typcollation)
                                       WHEN 'r' THEN NULLIF(rg.rngcollation, st.typcollation)
                        END) AS collation,
       (SELECT pg_catalog.quote_ident(opn.nspname) || '.' || pg_catalog.quote_ident(opc.opcname)
          FROM pg_catalog.pg_opclass AS opc
          JOIN pg_catalog.pg_namespace AS opn ON opn.oid = opc.opcnamespace
         WHERE opc.oid = rg.rngsubopc AND NOT opc.opcdefault) AS subtype_opclass,
       NULLIF(rg.rngcanonical, 0)::pg_catalog.regproc::text AS canonical,
       NULLIF(rg.rngsubdiff, 0)::pg_catalog.regproc::text AS subtype_diff,
       pg_catalog.format_type(NULLIF(rg.rngmultitypid, 0), NULL) AS multirange,
       -- functions of the definition that are not PostgreSQL's own
       ARRAY(SELECT p.oid::pg_catalog.regproc::text FROM pg_catalog.pg_proc AS p
              WHERE p.oid IN (rg.rngcanonical, rg.rngsubdiff)
                AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace) AS own_functions
  FROM needed_oids
  JOIN pg_catalog.pg_type AS t ON t.oid = ANY (needed_oids.oids)
  JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
  LEFT JOIN refs_of ON refs_of.oid = t.oid
  LEFT JOIN pg_catalog.pg_class AS c ON c.oid = t.typrelid
  LEFT JOIN pg_catalog.pg_type AS bt ON bt.oid = t.typbasetype AND t.typtype = 'd'
  LEFT JOIN pg_catalog.pg_range AS rg ON rg.rngtypid = t.oid
  LEFT JOIN pg_catalog.pg_type AS st ON st.oid = rg.rngsubtype
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY t.oid
