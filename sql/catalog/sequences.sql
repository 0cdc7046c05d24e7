-- The sequences that columns of the given tables own: a serial column's (OWNED BY,
-- dependency 'a') and an identity column's (dependency 'i'), with their options and
-- last value (NULL before the first nextval, or when the role may not read it).
SELECT d.refobjid::int8 AS oid,
       a.attname AS column_name,
       n.nspname AS schema,
       c.relname AS name,
       d.deptype = 'i' AS is_identity,
       pg_catalog.format_type(s.seqtypid, NULL) AS type,
       s.seqstart AS start,
       s.seqincrement AS increment,
       s.seqmin AS minimum,
       s.seqmax AS maximum,
       s.seqcache AS cache,
       s.seqcycle AS cycle,
       CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE')
            THEN pg_catalog.pg_sequence_last_value(c.oid)
       END AS last_value
  FROM pg_catalog.pg_depend AS d
  JOIN pg_catalog.pg_class AS c ON c.oid = d.objid AND c.relkind = 'S'
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_sequence AS s ON s.seqrelid = c.oid
  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE d.classid = 'pg_catalog.pg_class'::regclass
   AND d.refclassid = 'pg_catalog.pg_class'::regclass
   AND d.refobjid = ANY(%(oids)s::oid[])
   AND d.deptype IN ('a', 'i')
 ORDER BY d.refobjid, a.attnum
