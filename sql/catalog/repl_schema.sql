-- The target's schema named repl, if any: whether the connected role may use it, and
-- whether it has the version table repl's migrations make. Read from the catalogs, so
-- that a schema the role may not use is not an error (to_regclass would raise one).
SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE') AS usable,
       EXISTS (SELECT FROM pg_catalog.pg_class AS c
                WHERE c.relnamespace = n.oid AND c.relname = 'alembic_version'
                  AND c.relkind = 'r') AS versioned
  FROM pg_catalog.pg_namespace AS n
 WHERE n.nspname = 'repl'
