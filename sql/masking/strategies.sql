-- Masking strategies (SPEC section 4), called by the per-table masking triggers:
--     NEW.email := repl.mask_email(NEW.email, repl.mask_ikey(), repl.mask_okey());
-- (keys.sql explains why the keys are obtained that way).
--
-- Every function is deterministic for given keys and IMMUTABLE (the keys are
-- arguments; nothing is read from a table), PARALLEL SAFE, and returns NULL for a
-- NULL value and '' for '' (neither carries personal data, SPEC section 4). Calls are schema-qualified (the apply worker's search_path is empty).
-- None is SECURITY DEFINER or has a SET clause: either would prevent inlining, and
-- neither is needed by a function that reads nothing and is given its keys.
--
-- Most are LANGUAGE sql with a single-expression SQL-standard body, which PostgreSQL
-- inlines into the caller's expression: a call then costs only the builtins it is
-- made of. The bodies follow the rules for that:
--   * a STRICT SQL function is inlined only if its body is strict and uses every
--     argument; functions that ignore okey (repl.prf_text needs only ikey) or use
--     CASE are therefore not STRICT, and their bodies yield NULL for a NULL value;
--   * the body of an IMMUTABLE function must be immutable: no convert_to(), format(),
--     or date_trunc() of a timestamptz;
--   * a digest is never referenced twice in a body (the inliner would copy the
--     sha256() call); functions that need a digest twice are plpgsql.
--
-- PRF inputs are the value prefixed with one character per strategy (domain
-- separation, see repl.prf_text): h hash, u hash of a uuid, b hash of a bytea (in
-- HMAC), e email, f first name, l last name, n full name, d digits (D further digit
-- blocks), r noise. Changing a tag, or anything else
-- that changes outputs, changes every masked value: targets must then be re-copied.

-- hash: 64 lowercase hex digits of the keyed PRF of the tagged value.
CREATE OR REPLACE FUNCTION repl.mask_hash(value text, ikey bytea, okey bytea) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value = '' THEN ''
                ELSE pg_catalog.encode(repl.prf_text('h' || value, ikey), 'hex') END;

-- hash of a uuid: a uuid, so that the column keeps its type and joins on it keep
-- working. The first 16 bytes of the keyed PRF of the tagged canonical text (tag u),
-- with the version and variant bits of an RFC 9562 version 8 ("custom") uuid: 122
-- pseudorandom bits, so two distinct inputs collide with probability 2^-122 per pair.
-- plpgsql, as the digest is used thrice (see the header).
CREATE OR REPLACE FUNCTION repl.mask_hash(value uuid, ikey bytea, okey bytea) RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $body$
DECLARE
    bytes bytea := pg_catalog.substr(repl.prf_text('u' || value::text, ikey), 1, 16);
BEGIN
    bytes := pg_catalog.set_byte(bytes, 6, (pg_catalog.get_byte(bytes, 6) & 15) | 128);
    bytes := pg_catalog.set_byte(bytes, 8, (pg_catalog.get_byte(bytes, 8) & 63) | 128);
    RETURN pg_catalog.encode(bytes, 'hex')::uuid;
END
$body$;

-- hash of a bytea: the 32 bytes of HMAC-SHA256 of the tagged value (tag b), so that the
-- column keeps its type. HMAC rather than prf_text: a bytea may hold NUL bytes, which
-- the soundness argument of prf_text excludes. The empty value stays empty.
CREATE OR REPLACE FUNCTION repl.mask_hash(value bytea, ikey bytea, okey bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value = ''::bytea THEN value
                ELSE repl.prf('b'::bytea || value, ikey, okey) END;

-- email: user.<24 hex digits>@example.com (RFC 2606 reserved domain). 96 PRF bits:
-- two distinct inputs get the same address with probability 2^-96 per pair, i.e.
-- below 10^-9 for 10^10 distinct values. Case and whitespace are not normalised:
-- distinct inputs are distinct addresses, as a unique index on the source expects.
CREATE OR REPLACE FUNCTION repl.mask_email(value text, ikey bytea, okey bytea) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value = '' THEN ''
                ELSE 'user.'
                     || pg_catalog.left(pg_catalog.encode(repl.prf_text('e' || value, ikey),
                                                          'hex'), 24)
                     || '@example.com' END;

-- digits: each ASCII digit replaced by a pseudorandom digit, everything else (and so
-- the length and format) kept: '+49 (30) 1234-567' -> e.g. '+31 (02) 4966-960'. The
-- replacement digits depend on the whole value, not on the digit they replace.
-- They come 15 at a time from 60-bit slices of the digest, each taken modulo 10^15
-- (bias below 0.1% of the probability of any 15-digit block), 4 slices per digest;
-- values with more than 15 digits use further slices, and past 60 digits further
-- digests in counter mode over the first one: F('D' || i || ':' || first digest), so
-- each extra digest hashes a short input and long values cost linear time.
-- The digits are spliced in with format(): % is doubled, each digit becomes %s, and
-- the replacement digits are passed as a VARIADIC array of one-character strings.
-- (plpgsql: the splicing needs format(), which is STABLE, so a LANGUAGE sql body
-- could not be inlined into an IMMUTABLE function anyway.)
CREATE OR REPLACE FUNCTION repl.mask_digits(value text, ikey bytea, okey bytea) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $body$
DECLARE
    pattern text := pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
        pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
        pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(value, '%', '%%'),
        '0', '%s'), '1', '%s'), '2', '%s'), '3', '%s'), '4', '%s'), '5', '%s'), '6', '%s'),
        '7', '%s'), '8', '%s'), '9', '%s');
    -- The number of digits plus the number of % signs: at least as many arguments
    -- as format() needs (it ignores extra ones).
    wanted int := pg_catalog.length(pattern) - pg_catalog.length(value);
    first text;
    digest text;
    slices text[] := '{}';
BEGIN
    IF wanted <= 15 THEN  -- phone numbers and most identifiers: one statement
        RETURN pg_catalog.format(pattern, VARIADIC pg_catalog.string_to_array(pg_catalog.right((
            ('x' || pg_catalog.left(pg_catalog.encode(
                repl.prf_text('d' || value, ikey), 'hex'), 15))
            ::bit(60)::int8 % 1000000000000000 + 1000000000000000)::text, wanted), NULL));
    END IF;
    first := pg_catalog.encode(repl.prf_text('d' || value, ikey), 'hex');
    digest := first;
    FOR part IN 0 .. (wanted - 1) / 15 LOOP
        IF part > 0 AND part % 4 = 0 THEN
            digest := pg_catalog.encode(
                repl.prf_text('D' || (part / 4)::text || ':' || first, ikey), 'hex');
        END IF;
        slices := pg_catalog.array_append(slices, pg_catalog.right((
            ('x' || pg_catalog.substr(digest, 1 + 15 * (part % 4), 15))
            ::bit(60)::int8 % 1000000000000000 + 1000000000000000)::text, 15));
    END LOOP;
    RETURN pg_catalog.format(pattern, VARIADIC pg_catalog.string_to_array(
        pg_catalog.left(pg_catalog.array_to_string(slices, ''), wanted), NULL));
END
$body$;

-- partial: the first keep_first and last keep_last characters kept, every other
-- character replaced by fill (its first character; '*' if fill is NULL or empty), so
-- the length is kept. A value of keep_first + keep_last characters or fewer would be
-- returned whole, unmasked: it is entirely filled instead ('1234' with keep_last 4
-- gives '****'). Negative counts count as 0. No keys: the result is not pseudorandom.
CREATE OR REPLACE FUNCTION repl.mask_partial(value text, keep_first int, keep_last int, fill text)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN pg_catalog.length(value)
             > GREATEST(keep_first, 0) + GREATEST(keep_last, 0)
        THEN pg_catalog.left(value, GREATEST(keep_first, 0))
             || pg_catalog.repeat(COALESCE(NULLIF(pg_catalog.left(fill, 1), ''), '*'),
                                  pg_catalog.length(value) - GREATEST(keep_first, 0)
                                  - GREATEST(keep_last, 0))
             || pg_catalog.right(value, GREATEST(keep_last, 0))
        ELSE pg_catalog.repeat(COALESCE(NULLIF(pg_catalog.left(fill, 1), ''), '*'),
                               pg_catalog.length(value))
    END;

-- redact: a constant placeholder; NULL and '' stay as they are.
CREATE OR REPLACE FUNCTION repl.mask_redact(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value <> '' THEN 'REDACTED' ELSE value END;

-- date_trunc: truncated to unit (year, month, day, or any date_trunc() unit), type kept.
-- Every result is a value of the type, so that no value stops the stream: a value
-- before 4713-01-01 BC (the last weeks of 4714 BC, whose year and month start before
-- the types' first day) becomes 4713-01-01 BC, and a date after the last day a
-- timestamp holds (294276-12-31) is truncated as that day. Infinities stay as they
-- are; NULL too (isfinite() is NULL).
CREATE OR REPLACE FUNCTION repl.mask_date_trunc(value date, unit text) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN pg_catalog.isfinite(value)
        THEN pg_catalog.date_trunc(unit, LEAST(GREATEST(value, '4713-01-01 BC'::date),
                                               '294276-12-31'::date)::timestamp)::date
        ELSE value END;

CREATE OR REPLACE FUNCTION repl.mask_date_trunc(value timestamp, unit text) RETURNS timestamp
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN pg_catalog.isfinite(value)
        THEN pg_catalog.date_trunc(unit, GREATEST(value, '4713-01-01 00:00:00 BC'::timestamp))
        ELSE value END;

-- timestamptz: truncated in UTC, so the result does not depend on the session's
-- TimeZone (apply workers, psql sessions and repl's own connections differ).
CREATE OR REPLACE FUNCTION repl.mask_date_trunc(value timestamptz, unit text)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN pg_catalog.isfinite(value)
        THEN pg_catalog.timezone('UTC', pg_catalog.date_trunc(unit, GREATEST(
            pg_catalog.timezone('UTC', value), '4713-01-01 00:00:00 BC'::timestamp)))
        ELSE value END;

-- noise: value * (1 + e), e = ratio * (2u - 1) with u uniform in [0, 1) from 52 PRF bits
-- of the value's canonical text (trim_scale: 1.50 and 1.5 are the same value, and an
-- integer column gives the same text as a numeric one), so |e| <= ratio and the same
-- value always gets the same factor. NaN and infinities stay as they are.
CREATE OR REPLACE FUNCTION repl.mask_noise_factor(value numeric, ratio float8, ikey bytea)
    RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 1::float8 + ratio * (2::float8 * (
        ('x' || pg_catalog.left(pg_catalog.encode(
            repl.prf_text('r' || pg_catalog.trim_scale(value)::text, ikey), 'hex'), 13))
        ::bit(52)::int8::float8 / 4503599627370496::float8) - 1::float8);

-- A column without a typmod (numeric): the noisy value as it is.
CREATE OR REPLACE FUNCTION repl.mask_noise(value numeric, ratio float8, ikey bytea, okey bytea)
    RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN value * repl.mask_noise_factor(value, ratio, ikey)::numeric;

-- Integers and numeric(p,s): the noisy value fitted to the column's type, so that no
-- value stops the stream with "out of range" or "numeric field overflow": rounded to
-- `scale` decimal places (0 for integers), then clamped into [low, high] (the type's
-- bounds: -32768 and 32767 for smallint, +-(10^(p-s) - 10^-s) for numeric(p,s)). NaN
-- stays NaN (numeric(p,s) holds it; the comparison is also false for NULL).
CREATE OR REPLACE FUNCTION repl.mask_noise(value numeric, ratio float8, ikey bytea, okey bytea,
                                           scale int, low numeric, high numeric)
    RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value <> 'NaN'::numeric
        THEN LEAST(GREATEST(pg_catalog.round(repl.mask_noise(value, ratio, ikey, okey), scale),
                            low), high)
        ELSE value END;

-- real and double precision: the same factor as for the numeric of the same value
-- (float8 to numeric keeps 15 significant digits, independently of extra_float_digits),
-- the product's magnitude clamped into [smallest, largest], the type's smallest normal
-- and largest finite values: float8 arithmetic raises an error on overflow and on
-- underflow to zero, and so does the cast of the result to real. For a magnitude of 1
-- or more, half the value is multiplied and the clamped product doubled, so that no
-- intermediate overflows (below 1 none can, the factor being under 2); halving and
-- doubling a normal number are exact, so every result inside the range is the rounded
-- value * factor. A value of a smaller magnitude than `smallest` (0, subnormals)
-- becomes 0 with its sign; NaN and infinities stay as they are. (The two branches that
-- multiply each call the PRF; only one of them runs for a value.)
CREATE OR REPLACE FUNCTION repl.mask_noise(value float8, ratio float8, ikey bytea, okey bytea,
                                           smallest float8, largest float8)
    RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN pg_catalog.abs(value) >= 'Infinity'::float8 THEN value  -- NaN sorts above too
        WHEN pg_catalog.abs(value) >= 1::float8
        THEN pg_catalog.sign(value) * LEAST(GREATEST(
                 pg_catalog.abs(value) * 0.5::float8
                 * repl.mask_noise_factor(value::numeric, ratio, ikey),
                 smallest * 0.5::float8), largest * 0.5::float8) * 2::float8
        WHEN pg_catalog.abs(value) >= smallest
        THEN pg_catalog.sign(value) * LEAST(GREATEST(
                 pg_catalog.abs(value) * repl.mask_noise_factor(value::numeric, ratio, ikey),
                 smallest), largest)
        ELSE value * 0::float8 END;
