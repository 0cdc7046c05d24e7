-- Which of the given (schema, name) types exist here.
SELECT n.nspname AS schema, t.typname AS name
  FROM unnest(%(schemas)s::text[], %(names)s::text[]) AS wanted(schema, name)
  JOIN pg_catalog.pg_namespace AS n ON n.nspname = wanted.schema
  JOIN pg_catalog.pg_type AS t ON t.typnamespace = n.oid AND t.typname = wanted.name
