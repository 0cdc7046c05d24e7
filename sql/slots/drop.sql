-- Drops a slot no walsender holds (PostgreSQL refuses an active one: ObjectInUse).
SELECT pg_catalog.pg_drop_replication_slot(%(slot)s)
