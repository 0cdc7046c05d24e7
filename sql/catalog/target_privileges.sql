-- Can the connected role create subscriptions here? (superuser; PG 16+: member of
-- pg_create_subscription with CREATE on the database.) Can it create roles?
SELECT r.rolsuper AS superuser,
       r.rolcreaterole AS can_create_roles,
       pg_catalog.has_database_privilege(current_user, pg_catalog.current_database(), 'CREATE')
           AS can_create_in_database,
       EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS g
                WHERE g.rolname = 'pg_create_subscription'
                  AND pg_catalog.pg_has_role(current_user, g.oid, 'USAGE'))
           AS member_of_pg_create_subscription
  FROM pg_catalog.pg_roles AS r
 WHERE r.rolname = current_user
