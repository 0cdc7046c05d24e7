-- Drops every slot of the given databases; their walsenders are ended first by
-- terminate_in_databases.sql (a walsender may hold its slot a moment after that).
SELECT pg_catalog.pg_drop_replication_slot(slot_name)
  FROM pg_catalog.pg_replication_slots
 WHERE database = ANY(%(databases)s::text[])
