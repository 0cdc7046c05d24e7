-- Who holds `repl run`'s advisory lock of one config on this database: the backend,
-- and what its client said of itself (application_name: "repl run PID@HOST") and where
-- it connects from. pg_stat_activity hides these from roles that may not see them.
SELECT l.pid,
       a.application_name,
       pg_catalog.host(a.client_addr) AS client_addr,
       a.backend_start
  FROM pg_catalog.pg_locks AS l
  LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted
   AND l.database = (SELECT oid FROM pg_catalog.pg_database
                      WHERE datname = pg_catalog.current_database())
   AND l.classid = %(class)s::int8::oid AND l.objid = %(key)s::int8::oid
   AND l.objsubid = 2
