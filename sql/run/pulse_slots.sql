-- What `repl run` reads of the source between passes: the given slots that exist, and
-- their wal_status ('lost': invalidated).
SELECT slot_name AS name, coalesce(wal_status, 'unknown') AS wal_status
  FROM pg_catalog.pg_replication_slots
 WHERE slot_name = ANY(%(slots)s::text[])
