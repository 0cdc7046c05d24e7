-- What repl needs to know about a server and the role it connects as.
SELECT pg_catalog.current_setting('server_version_num')::int AS version_num,
       split_part(pg_catalog.current_setting('server_version'), ' ', 1) AS version,
       pg_catalog.current_setting('wal_level') AS wal_level,
       pg_catalog.current_setting('max_replication_slots')::int AS max_replication_slots,
       pg_catalog.current_setting('max_wal_senders')::int AS max_wal_senders,
       pg_catalog.current_setting('max_slot_wal_keep_size') AS max_slot_wal_keep_size,
       (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int AS slots_used,
       (SELECT count(*) FROM pg_catalog.pg_stat_replication)::int AS senders_used,
       pg_catalog.current_database() AS database,
       current_user AS role,
       r.rolsuper AS superuser,
       r.rolreplication AS replication,
       pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
       pg_catalog.has_database_privilege(current_user, pg_catalog.current_database(), 'CREATE')
           AS can_create_in_database,
       (SELECT s.system_identifier::text FROM pg_catalog.pg_control_system() AS s)
           AS system_identifier,
       -- As they apply to this role's sessions (ALTER ROLE/DATABASE ... SET included).
       pg_catalog.current_setting('log_statement') AS log_statement,
       pg_catalog.current_setting('log_min_duration_statement') AS log_min_duration_statement,
       pg_catalog.current_setting('log_min_error_statement') AS log_min_error_statement
  FROM pg_catalog.pg_roles AS r
 WHERE r.rolname = current_user
