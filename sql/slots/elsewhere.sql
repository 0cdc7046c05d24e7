-- Slots with the given names that belong to another database of the cluster (or are
-- physical): slot names are cluster-wide, so repl cannot create its own with that name.
SELECT slot_name, coalesce(database, '(physical)') AS database
  FROM pg_catalog.pg_replication_slots
 WHERE slot_name = ANY(%(names)s::text[])
   AND database IS DISTINCT FROM pg_catalog.current_database()
