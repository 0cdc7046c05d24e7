-- repl's subscriptions in this database (names start with the prefix). PostgreSQL 16+:
-- parallel apply workers have no relid either; the leader is the one without leader_pid.
-- (subconninfo, which only superusers may read, has a query of its own:
-- subscription_conninfo.sql.)
SELECT s.oid::int8 AS oid,
       s.subname AS name,
       s.subenabled AS enabled,
       s.subslotname AS slot_name,
       s.subpublications AS publications,
       s.subdisableonerr AS disable_on_error,
       w.pid AS worker_pid,
       w.received_lsn::text AS received_lsn,
       w.last_msg_receipt_time,
       w.latest_end_time,
       extract(epoch FROM pg_catalog.now() - a.backend_start)::float8 AS worker_age_seconds,
       st.apply_error_count,
       st.sync_error_count
  FROM pg_catalog.pg_subscription AS s
  LEFT JOIN pg_catalog.pg_stat_subscription AS w
       ON w.subid = s.oid AND w.relid IS NULL AND w.leader_pid IS NULL
  LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = w.pid
  LEFT JOIN pg_catalog.pg_stat_subscription_stats AS st ON st.subid = s.oid
 WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database
                     WHERE datname = pg_catalog.current_database())
   AND starts_with(s.subname, %(prefix)s)
 ORDER BY s.subname
