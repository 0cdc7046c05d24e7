-- Logical replication workers of the target's cluster: the limit, and the enabled
-- subscriptions of every database (pg_subscription is shared) other than repl's own in
-- this database, each of which keeps an apply worker busy.
SELECT pg_catalog.current_setting('max_logical_replication_workers')::int AS max_workers,
       pg_catalog.current_setting('max_sync_workers_per_subscription')::int AS max_sync_workers,
       (SELECT count(*) FROM pg_catalog.pg_subscription
         WHERE subenabled AND NOT (starts_with(subname, %(prefix)s) AND subdbid =
               (SELECT oid FROM pg_catalog.pg_database
                 WHERE datname = pg_catalog.current_database())))::int AS other_subscriptions
