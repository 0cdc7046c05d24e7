-- Take `repl run`'s advisory lock of one config on this database, if free: a
-- session-level lock, held until this session ends or gives it back.
SELECT pg_catalog.pg_try_advisory_lock(%(class)s::int4, %(key)s::int4) AS taken,
       pg_catalog.pg_backend_pid() AS pid
