-- The source type's OID of each type repl created on this target (repl.replicated_type).
SELECT schema_name AS schema, type_name AS name, source_oid::int8 AS source_oid
  FROM repl.replicated_type
