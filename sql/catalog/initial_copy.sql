-- The last initial copy from a snapshot on this target, per table: how far it got.
SELECT schema_name, table_name, slot_name, walsender_pid, chunks, chunks_done,
       rows_copied, estimated_rows,
       extract(epoch FROM coalesce(finished_at, pg_catalog.now()) - started_at)::float8
           AS seconds,
       finished_at IS NOT NULL AS finished
  FROM repl.initial_copy
