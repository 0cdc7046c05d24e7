-- repl's masking trigger on each given table: its enabled state (O origin, D disabled,
-- R replica, A always) and the body of the function it runs.
SELECT t.tgrelid::int8 AS oid,
       t.tgenabled::text AS enabled,
       n.nspname AS function_schema,
       p.proname AS function_name,
       p.prosrc AS body
  FROM pg_catalog.pg_trigger AS t
  JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
 WHERE t.tgrelid = ANY(%(oids)s::oid[])
   AND t.tgname = %(trigger)s
   AND NOT t.tgisinternal
