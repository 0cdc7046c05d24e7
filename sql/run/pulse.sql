-- What `repl run` reads of a target between passes, in one small query: its
-- subscription (enabled, apply worker running, error counts, tables not ready yet) and
-- the enabled state of every masking trigger (O origin, D disabled, R replica, A always).
SELECT s.oid IS NOT NULL AS subscribed,
       coalesce(s.subenabled, false) AS enabled,
       EXISTS (SELECT FROM pg_catalog.pg_stat_subscription AS w
                WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL) AS worker,
       coalesce(st.apply_error_count, 0) AS apply_errors,
       coalesce(st.sync_error_count, 0) AS sync_errors,
       ARRAY(SELECT r.srrelid::regclass::text FROM pg_catalog.pg_subscription_rel AS r
              WHERE r.srsubid = s.oid AND r.srsubstate <> 'r' ORDER BY 1) AS not_ready,
       (SELECT coalesce(pg_catalog.jsonb_object_agg(t.tgrelid::regclass::text,
                                                 t.tgenabled::text),
                        '{}')
          FROM pg_catalog.pg_trigger AS t
         WHERE t.tgname = %(trigger)s AND NOT t.tgisinternal) AS triggers
  FROM (SELECT) AS one
  LEFT JOIN pg_catalog.pg_subscription AS s
         ON s.subname = %(subscription)s
        AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database
                          WHERE datname = pg_catalog.current_database())
  LEFT JOIN pg_catalog.pg_stat_subscription_stats AS st ON st.subid = s.oid
