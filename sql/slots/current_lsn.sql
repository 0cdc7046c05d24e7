-- The source's current WAL position: everything committed so far lies before it.
SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn
