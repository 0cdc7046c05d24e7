-- Keyed pseudorandom functions over core sha256() (PostgreSQL 11+; no pgcrypto).
--
-- Keys are the HMAC-SHA256 padded keys of the masking secret K, precomputed once by
-- repl (replication.masking_sql.padded_keys) and stored in repl.secret:
--   ikey = K0 xor 0x36.., okey = K0 xor 0x5c.., K0 = K (or sha256(K) when longer than
--   64 bytes) zero-padded to one 64-byte SHA-256 block.
--
-- Search path: the apply worker runs with an empty search_path, so every function
-- call is schema-qualified. Operators are not, but each has an exact match for its
-- argument types in pg_catalog (literals are cast where needed): pg_catalog is
-- searched first unless a search_path names it after another schema, and an exact
-- match there cannot be displaced by an operator of another schema. The functions
-- with a SQL-standard body (RETURN ...) are resolved once, when created, and depend
-- on what they call (pg_depend); the plpgsql ones when first run in a session.
--
-- Inlining: none of these functions is SECURITY DEFINER or has a SET clause (either
-- would stop PostgreSQL from inlining a LANGUAGE sql function into the caller's
-- expression); they need neither, as they read no table and take the keys as
-- arguments. An inlined call costs the builtins it is made of; a call that is not
-- inlined runs a small executor per call (several microseconds).

-- The UTF-8 bytes of a text value. In a UTF8 (or SQL_ASCII) database these are the
-- stored bytes, which decode(..., 'escape') returns once backslashes are doubled: an
-- IMMUTABLE body that callers can inline. convert_to() is STABLE, which would stop
-- every IMMUTABLE caller from being inlined, so it is used only in other encodings,
-- where it is needed for the result to be the same as in a UTF8 database.
DO $install_utf8$
BEGIN
    IF pg_catalog.getdatabaseencoding() IN ('UTF8', 'SQL_ASCII') THEN
        CREATE OR REPLACE FUNCTION repl.utf8(value text) RETURNS bytea
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            RETURN pg_catalog.decode(pg_catalog.replace(value, E'\\', E'\\\\'), 'escape');
    ELSE
        CREATE OR REPLACE FUNCTION repl.utf8(value text) RETURNS bytea
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            RETURN pg_catalog.convert_to(value, 'UTF8');
    END IF;
END
$install_utf8$;

-- HMAC-SHA256 (RFC 2104) with precomputed padded keys: sha256(okey || sha256(ikey || v)).
-- Equal to Python's hmac.new(K, value, hashlib.sha256).digest(). Hashes four 64-byte
-- blocks for a short value, with two sha256() calls.
CREATE OR REPLACE FUNCTION repl.prf(value bytea, ikey bytea, okey bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.sha256(okey || pg_catalog.sha256(ikey || value));

-- The keyed PRF the masking strategies use: F(m) = sha256(ikey || m) for m the UTF-8
-- bytes of a text value. One sha256() call and two 64-byte blocks for a short value
-- (HMAC: two calls, four blocks), about twice as fast.
--
-- Why this is sound here although secret-prefix hashing is not a MAC in general.
-- The generic weakness of sha256(key || m) is length extension: from F(m) anyone can
-- compute F(m || pad(m) || w), where pad(m) is SHA-256's padding: 0x80, zero bytes,
-- and the 64-bit big-endian bit length of ikey || m, whose first byte is 0x00 (the
-- length is below 2^56 bits). The argument is text, and no PostgreSQL text value
-- contains a 0x00 byte (nor does its UTF-8 encoding), so an extended message is never
-- an input of this function: nobody can derive the output for any input from the
-- outputs they see. More precisely, following the security proofs of NMAC/HMAC:
--  1. ikey fills exactly one block, so sha256(ikey || m) is the Merkle-Damgard cascade
--     of the compression function f over pad(ikey || m) starting from
--     k1 = f(IV, ikey). k1 is pseudorandom if f is a PRF keyed through its message
--     block input, the "dual PRF" assumption the proof of HMAC itself makes for
--     f(IV, K xor ipad) (Bellare, "New proofs for NMAC and HMAC", 2006).
--  2. The cascade keyed by a random k1 is a PRF on any prefix-free set of padded
--     inputs if f is a PRF keyed by the chaining value (Bellare, Canetti, Krawczyk,
--     "Pseudorandom functions revisited: the cascade construction", 1996): the same
--     assumption as for NMAC's inner function.
--  3. Padded NUL-free inputs are prefix-free: after the 64-byte key block, the first
--     0x00 byte of pad(ikey || m) is at offset 64 + |m| + 1, right after the 0x80 that
--     follows m (next come zero bytes or the length, whose first byte is 0x00). If
--     the padded form of m1 were a block prefix of that of m2, both would have their
--     first such 0x00 at the same offset, so |m1| = |m2|, so the same number of
--     blocks, so m1 = m2.
-- HMAC's outer hash, which this omits, exists to make the function a MAC on arbitrary
-- inputs; a masked value is a pseudorandom digest of a NUL-free input, never a tag
-- anyone verifies. The price is that outputs are not standard HMAC values: the
-- Python reference is hashlib.sha256(ikey + value.encode()).digest().
--
-- Each strategy prefixes its input with its own one-character tag (domain separation):
-- outputs of one strategy say nothing about another's for the same value, e.g. a
-- `hash` column does not reveal the factor a `noise` column applied to that value.
CREATE OR REPLACE FUNCTION repl.prf_text(value text, ikey bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.sha256(ikey || repl.utf8(value));
