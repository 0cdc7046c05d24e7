-- Whether this session still holds `repl run`'s advisory lock of one config, and is
-- still the backend that took it (a pooler in transaction mode would hand out another).
SELECT EXISTS (
         SELECT FROM pg_catalog.pg_locks
          WHERE locktype = 'advisory' AND granted
            AND pid = pg_catalog.pg_backend_pid()
            AND database = (SELECT oid FROM pg_catalog.pg_database
                             WHERE datname = pg_catalog.current_database())
            AND classid = %(class)s::int8::oid AND objid = %(key)s::int8::oid
            AND objsubid = 2)
       AND pg_catalog.pg_backend_pid() = %(pid)s::int4 AS held
