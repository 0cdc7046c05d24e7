-- Whether a subscription has applied everything up to an LSN of the source: its slot's
-- confirmed_flush_lsn is what the subscriber reported as applied and flushed.
SELECT s.confirmed_flush_lsn >= %(lsn)s::pg_lsn AS caught_up,
       pg_catalog.pg_wal_lsn_diff(%(lsn)s::pg_lsn, s.confirmed_flush_lsn)::int8 AS behind_bytes
  FROM pg_catalog.pg_replication_slots AS s
 WHERE s.slot_name = %(slot)s
