-- One slot's state: whether a walsender holds it, and the position its consumer confirmed.
-- No row: the slot does not exist.
SELECT s.active,
       s.active_pid,
       s.confirmed_flush_lsn::text AS confirmed_flush_lsn,
       s.wal_status
  FROM pg_catalog.pg_replication_slots AS s
 WHERE s.slot_name = %(slot)s
