-- The given roles as this database sees them: whether they exist and can log in, whether
-- they carry repl's comment (pg_shdescription: the same in every database of the
-- cluster), their members, and their privileges on the given tables (schema, name) and
-- their schemas.
WITH wanted_tables AS (
    SELECT c.oid, n.nspname AS schema, c.relname AS name
      FROM unnest(%(schemas)s::text[], %(names)s::text[]) AS w(schema, name)
      JOIN pg_catalog.pg_namespace AS n ON n.nspname = w.schema
      JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = w.name
)
SELECT r.rolname AS name,
       r.rolcanlogin AS can_login,
       coalesce(pg_catalog.shobj_description(r.oid, 'pg_authid') = %(marker)s, false)
           AS marked,
       -- PostgreSQL 16+ makes a non-superuser who creates a role an ADMIN member of
       -- it: that membership is not one of the config's.
       coalesce((SELECT array_agg(m.rolname ORDER BY m.rolname)
                   FROM pg_catalog.pg_auth_members AS am
                   JOIN pg_catalog.pg_roles AS m ON m.oid = am.member
                  WHERE am.roleid = r.oid AND m.rolname <> current_user), '{}') AS members,
       coalesce((SELECT array_agg(ARRAY[t.schema, t.name])
                   FROM wanted_tables AS t
                  WHERE pg_catalog.has_table_privilege(r.oid, t.oid, 'SELECT')),
                '{}') AS readable,
       -- Writes granted to the role itself: what a REVOKE ... FROM it can take away.
       coalesce((SELECT array_agg(DISTINCT ARRAY[t.schema, t.name])
                   FROM wanted_tables AS t
                   JOIN pg_catalog.pg_class AS c ON c.oid = t.oid
                  CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS acl
                  WHERE acl.grantee = r.oid
                    AND acl.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
                '{}') AS writable,
       coalesce((SELECT array_agg(DISTINCT t.schema)
                   FROM wanted_tables AS t
                  WHERE pg_catalog.has_schema_privilege(r.oid, t.schema, 'USAGE')),
                '{}') AS schemas
  FROM pg_catalog.pg_roles AS r
 WHERE r.rolname = ANY(%(roles)s::text[])
