-- The changes a subscription's slot would send next, decoded by pgoutput without being
-- consumed (the slot must be idle), up to %(limit)s changes (whole transactions).
SELECT data
  FROM pg_catalog.pg_logical_slot_peek_binary_changes(
           %(slot)s, NULL, %(limit)s,
           'proto_version', '1', 'publication_names', %(publications)s)
