-- PostgreSQL 17+: inactive_since dates the moment a slot lost its consumer.
-- Replication slots of this database whose names start with the given prefix
-- (repl's own, and the table-sync slots PostgreSQL names pg_<subid>_sync_...), with
-- what status needs to judge them:
--   retained_bytes  WAL the slot keeps on the source (from its restart_lsn to the WAL
--                   inserted so far: with asynchronous commit, not all of it is written);
--   lag_bytes       WAL the subscriber has not confirmed yet (from confirmed_flush_lsn);
--   replay_lag      PostgreSQL's own lag measurement. A logical walsender's lag tracker
--                   times a position from when the walsender decoded its commit until the
--                   subscriber reports it applied: WAL the walsender has not decoded yet is
--                   not in it (unsent_bytes says how much). NULL when nothing was measured
--                   lately (idle, or no walsender);
--   unsent_bytes    flushed WAL the walsender has not decoded and sent yet;
--   caught_up       the walsender has sent all flushed WAL and the subscriber has applied
--                   everything it was sent: the lag is zero, whatever replay_lag says.
SELECT s.slot_name,
       s.plugin,
       s.slot_type,
       s.database,
       s.active,
       s.active_pid,
       s.wal_status,
       s.safe_wal_size,
       s.restart_lsn::text AS restart_lsn,
       s.confirmed_flush_lsn::text AS confirmed_flush_lsn,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(), s.restart_lsn)::int8
           AS retained_bytes,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(), s.confirmed_flush_lsn)::int8
           AS lag_bytes,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag_seconds,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_flush_lsn(), r.sent_lsn)::int8
           AS unsent_bytes,
       coalesce(r.sent_lsn >= pg_catalog.pg_current_wal_flush_lsn()
                AND r.replay_lsn >= r.sent_lsn, false) AS caught_up,
       extract(epoch FROM pg_catalog.now() - s.inactive_since)::float8 AS inactive_seconds
  FROM pg_catalog.pg_replication_slots AS s
  LEFT JOIN pg_catalog.pg_stat_replication AS r ON r.pid = s.active_pid
 WHERE s.database = pg_catalog.current_database()
   AND (starts_with(s.slot_name, %(prefix)s) OR s.slot_name ~ '^pg_[0-9]+_sync_')
 ORDER BY s.slot_name
