-- The row filters the source parsed at this target's last setup (repl.row_filter).
SELECT schema_name AS schema, table_name AS name, config_text, canonical, columns
  FROM repl.row_filter
