-- Ends the walsenders holding slots of the given databases.
SELECT pg_catalog.pg_terminate_backend(active_pid)
  FROM pg_catalog.pg_replication_slots
 WHERE database = ANY(%(databases)s::text[])
   AND active_pid IS NOT NULL
