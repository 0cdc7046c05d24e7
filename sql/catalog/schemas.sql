SELECT nspname AS schema FROM pg_catalog.pg_namespace
