-- The masking keys: the HMAC-SHA256 padded keys (ikey, okey) of the secret, stored by
-- repl in its single row of repl.secret (readable only by repl's owner role).
--
-- Only repl's owner may execute these functions (REVOKE ... FROM PUBLIC below; the
-- `repl` schema is private too): the masking triggers must run as that role, e.g. by
-- being SECURITY DEFINER functions owned by it.

-- The plain lookup. plpgsql, so that it binds to repl.secret when first called, not
-- when created. Refuses a missing, duplicated or malformed secret rather than let
-- the strategies turn every masked value into NULL.
CREATE OR REPLACE FUNCTION repl.mask_keys(OUT ikey bytea, OUT okey bytea)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    found_rows int := 0;
BEGIN
    FOR ikey, okey IN SELECT s.ikey, s.okey FROM repl.secret AS s LIMIT 2 LOOP
        found_rows := found_rows + 1;
    END LOOP;
    IF found_rows <> 1 THEN
        RAISE EXCEPTION 'repl.secret holds % rows, expected exactly one', found_rows
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run repl setup for this target, which stores the masking keys.';
    END IF;
    IF octet_length(ikey) IS DISTINCT FROM 64 OR octet_length(okey) IS DISTINCT FROM 64 THEN
        RAISE EXCEPTION 'repl.secret does not hold two 64-byte padded keys'
            USING ERRCODE = 'data_corrupted',
                  HINT = 'Run repl setup for this target, which stores the masking keys.';
    END IF;
END
$body$;

-- The keys as the masking triggers should obtain them, one per call:
--     NEW.email := repl.mask_email(NEW.email, repl.mask_ikey(), repl.mask_okey());
-- (or assigned to local variables). These are deliberately declared IMMUTABLE,
-- although they read a table: a call without arguments to an IMMUTABLE function is
-- evaluated once, when the expression is planned, and the keys become a constant of
-- the plan that plpgsql caches for the session. A trigger then reads repl.secret once
-- per session and trigger function, not once per row. Calling mask_keys() per row
-- costs a SECURITY DEFINER call with a SET clause plus a query: 4.5-5.5 us per row
-- during a COPY on PG 15, several times the cost of masking a value.
--
-- Staleness, the price of the constant: a session keeps the keys it planned with
-- until its cached plans are invalidated (also when the transaction that stored them
-- rolls back). Re-creating these two functions (running install_statements() again)
-- invalidates them in every session: do it in the same transaction as any change to
-- repl.secret (restarting the subscription's workers afterwards would also do).
--
-- Considered and rejected: caching the keys in a custom GUC with set_config(). It
-- saves nothing when read through a SECURITY DEFINER function (the call is the cost),
-- and read directly it would be visible to any code in the session (SHOW,
-- current_setting()) and settable by anyone: placeholder GUCs are user-settable, so
-- `ALTER DATABASE ... SET` or `ALTER ROLE ... SET` by a database owner could make the
-- apply worker mask with a key of the attacker's choice. A plan constant cannot be
-- read or set from SQL. (auto_explain with log_verbose and log_nested_statements
-- could print it for a query that is not a plain plpgsql expression: call these in
-- assignments as above.)
CREATE OR REPLACE FUNCTION repl.mask_ikey() RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $body$
BEGIN
    RETURN (repl.mask_keys()).ikey;
END
$body$;

CREATE OR REPLACE FUNCTION repl.mask_okey() RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $body$
BEGIN
    RETURN (repl.mask_keys()).okey;
END
$body$;

REVOKE ALL ON FUNCTION repl.mask_keys() FROM PUBLIC;
REVOKE ALL ON FUNCTION repl.mask_ikey() FROM PUBLIC;
REVOKE ALL ON FUNCTION repl.mask_okey() FROM PUBLIC;
