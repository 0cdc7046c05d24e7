-- Who holds the lock of the setup converging this target database (workflow.exclusive):
-- its backend and what its client said of itself.
SELECT l.pid, a.application_name, a.backend_start
  FROM pg_catalog.pg_locks AS l
  LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted
   AND l.database = (SELECT oid FROM pg_catalog.pg_database
                      WHERE datname = pg_catalog.current_database())
   AND l.classid = %(class)s::int8::oid AND l.objid = 0 AND l.objsubid = 2
