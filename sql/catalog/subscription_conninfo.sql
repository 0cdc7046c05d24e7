-- The connection strings of repl's subscriptions in this database. Only superusers may
-- read pg_subscription.subconninfo (the column privilege is revoked from public).
SELECT s.subname AS name,
       s.subconninfo AS conninfo
  FROM pg_catalog.pg_subscription AS s
 WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database
                     WHERE datname = pg_catalog.current_database())
   AND starts_with(s.subname, %(prefix)s)
