-- The schemas of this database, and whether the connected role may create objects there.
SELECT n.nspname AS schema,
       pg_catalog.has_schema_privilege(n.oid, 'CREATE') AS can_create
  FROM pg_catalog.pg_namespace AS n
