-- Per-table sync state of the given subscriptions, with the progress of a running COPY
-- (rows so far, and for how long its table-sync worker has been at it).
-- srsubstate: i = initialize, d = data copy, f = finished copy, s = synchronized, r = ready.
SELECT sr.srsubid::int8 AS subid,
       n.nspname AS schema,
       c.relname AS name,
       sr.srsubstate::text AS state,
       sr.srsublsn::text AS lsn,
       p.tuples_processed AS rows_copied,
       extract(epoch FROM pg_catalog.now() - a.backend_start)::float8 AS copy_seconds
  FROM pg_catalog.pg_subscription_rel AS sr
  JOIN pg_catalog.pg_class AS c ON c.oid = sr.srrelid
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_stat_progress_copy AS p
         ON p.relid = sr.srrelid AND p.command = 'COPY FROM'
  LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = p.pid
 WHERE sr.srsubid = ANY(%(subids)s::oid[])
 ORDER BY n.nspname, c.relname
