-- The walsenders holding a snapshot that an initial copy reads (repl setup's replication
-- connection, named so): their pids, which the target's repl.initial_copy records.
SELECT pid
  FROM pg_catalog.pg_stat_activity
 WHERE backend_type = 'walsender' AND application_name = %(application)s
