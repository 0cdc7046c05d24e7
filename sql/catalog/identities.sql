-- Production's identity of each replicated target table, as the last setup recorded it
-- (repl.replicated_table): the source table's OID, and per target column its attnum and
-- type on the source.
SELECT schema_name AS schema, table_name AS name, source_oid::int8 AS source_oid,
       columns, attnums, types, all_columns, excluded, excluded_attnums
  FROM repl.replicated_table
