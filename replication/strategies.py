"""The masking strategies of SPEC section 4, one record each, read by config validation,
the type checks, the target column types, the trigger builder, verify and the docs. A
strategy is its name, its parameters (a pydantic model, the key a scalar shorthand
sets, an example for error messages), the source columns it accepts (a function that
says why not, or None), the type the masked column gets on the target, whether two
distinct inputs can ever give one output (a unique index over the column then stays
unique), whether it reads the masking key, the SQL expression the trigger assigns, one
line of docs, and examples that the shared test (tests/test_strategies.py) masks on a
real server. Adding a strategy is one SQL function in sql/masking/ and one record here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from psycopg import sql
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # config and model import this module
    from .config import MaskSpec
    from .model import SourceColumn
    from .names import QualifiedName

# The trigger's assignment: the expression of the raw value `ref` (NEW."col"), the keys in
# the trigger's variables `ikey` and `okey`. verify evaluates the same text.
Expression = Callable[["MaskSpec", str, "SourceColumn", "QualifiedName"], str]


class Params(BaseModel):
    """A strategy's parameters: unknown keys refused, no coercion (`keep_last: true` is
    not 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class Example:
    """Inputs the shared test masks: a source column of SQL type `type` holding `values`
    (their text forms), masked by `mask` as written in repl.yaml (default: the strategy's
    name). NULL, and '' for text-like types, are added by the test."""

    type: str
    values: tuple[str, ...]
    mask: Any = None


@dataclass(frozen=True)
class Strategy:
    name: str
    types: str  # docs: the columns it accepts
    result: str  # docs: what the target stores
    refuses: Callable[[SourceColumn], str | None]  # why it cannot mask the column, or None
    target_type: Callable[[SourceColumn], str]  # the masked column's type on the target
    expression: Expression
    examples: tuple[Example, ...]
    injective: bool = False  # two distinct inputs never give one output
    keyed: bool = False  # reads the masking key (ikey, okey)
    nullable: bool = False  # the target column accepts NULL whatever the source's
    params: type[Params] | None = None
    shorthand: str | None = None  # the parameter `{name: value}` sets
    example: str | None = None  # how to write it, for "needs a <shorthand>" errors

    def doc_row(self) -> str:
        """Its line of the docs' table of strategies."""
        return f"| `{self.name}` | {self.types} | {self.result} |"


# --- shared facts --------------------------------------------------------------------------

TEXT_LIKE = "S"  # pg_type.typcategory of text, varchar, char, name, citext, ...
DATE_TYPES = {"date", "timestamp", "timestamptz"}
NUMBER_TYPES = {"int2", "int4", "int8", "numeric", "float4", "float8"}
INTEGER_TYPES = {"int2", "int4", "int8"}
FLOAT_TYPES = {"float4", "float8"}


def _needs_text(name: str) -> Callable[[SourceColumn], str | None]:
    def refuses(column: SourceColumn) -> str | None:
        if column.type_category != TEXT_LIKE:
            return (f"masking strategy {name} needs a text-like column, not {column.type}; "
                    "use null, sql or another strategy")
        return None
    return refuses


def _any_type(column: SourceColumn) -> str | None:
    return None


def _text(column: SourceColumn) -> str:
    """Results of any length: a 64-character hash fits where production had varchar(20)."""
    return "text"


def _same_type(column: SourceColumn) -> str:
    return column.type


def _literal(value: Any) -> str:
    return sql.Literal(value).as_string(None)


def _text_of(ref: str, column: SourceColumn) -> str:
    """The value as the text strategies read it. char(n)'s padding is not part of it
    (PostgreSQL compares char(n) without it, and its text arrives padded): 'ab' masks
    alike in a char(5) and a text column, and a blank char(n) is the empty string."""
    if column.type_name == "bpchar":
        return f"pg_catalog.rtrim({ref}::text, {_literal(' ')})"
    return f"{ref}::text"


def _keyed_text_function(name: str) -> Expression:
    """repl.mask_<name>(value text, ikey, okey): the keyed strategies over text."""
    def expression(spec: MaskSpec, ref: str, column: SourceColumn,
                   relation: QualifiedName) -> str:
        return f"repl.mask_{name}({_text_of(ref, column)}, ikey, okey)"
    return expression


def _text_strategy(name: str, result: str, examples: tuple[Example, ...],
                   injective: bool = False) -> Strategy:
    """A keyed strategy from text to text, one SQL function repl.mask_<name>."""
    return Strategy(name, "text-like", result, refuses=_needs_text(name), target_type=_text,
                    expression=_keyed_text_function(name), examples=examples,
                    injective=injective, keyed=True)


NAMES = (Example("text", ("Jane Doe", "Ørjan Ødegård", "x")),
         Example("varchar(8)", ("Ann Lee", "Bo")),
         Example("char(12)", ("Ann Lee",)))

# --- the records ---------------------------------------------------------------------------

HASH_KEEPS_TYPE = {"uuid", "bytea"}  # hashed into a value of their own type: joins keep working


def _hash_refuses(column: SourceColumn) -> str | None:
    if column.type_category == TEXT_LIKE or _builtin(column, HASH_KEEPS_TYPE):
        return None
    return (f"masking strategy hash needs a text-like, uuid or bytea column, not "
            f"{column.type}; use null, sql or another strategy")


def _hash_type(column: SourceColumn) -> str:
    return column.type if _builtin(column, HASH_KEEPS_TYPE) else "text"


def _hash(spec: MaskSpec, ref: str, column: SourceColumn, relation: QualifiedName) -> str:
    if _builtin(column, HASH_KEEPS_TYPE):  # repl.mask_hash(uuid) and repl.mask_hash(bytea)
        return f"repl.mask_hash({ref}::{column.type_name}, ikey, okey)"
    return f"repl.mask_hash({_text_of(ref, column)}, ikey, okey)"


HASH = Strategy(
    "hash", "text-like, uuid, bytea", "64 hex characters of a keyed SHA-256 PRF; for uuid "
    "a uuid (version 8) made of its first 122 bits, for bytea its 32 bytes (HMAC-SHA256)",
    refuses=_hash_refuses, target_type=_hash_type, expression=_hash, injective=True,
    keyed=True,
    examples=(Example("text", ("4111 1111 1111 1111", "ünïcødé 漢字", "x", "\\x41")),
              Example("varchar(20)", ("SSN-1234", "SSN-1235")),
              Example("char(5)", ("ab", "abc")),
              Example("uuid", ("6f1c2a9e-4b7d-4e0a-9c3f-2d8e5b1a7c64",
                               "00000000-0000-0000-0000-000000000000",
                               "ffffffff-ffff-ffff-ffff-ffffffffffff")),
              Example("bytea", ("\\x00", "\\x0000", "\\xdeadbeef", "plain text"))))

EMAIL = _text_strategy(
    "email", "`user.<24 hex>@example.com`, unique per input",
    (Example("text", ("a@b.io", "A@b.io", " a@b.io")),
     Example("varchar(10)", ("p1@corp.io", "p2@corp.io"))),
    injective=True)

FAKE_NAME = _text_strategy("fake_name", "a name from built-in lists", NAMES)
FAKE_FIRST_NAME = _text_strategy("fake_first_name", "a first name from a built-in list", NAMES)
FAKE_LAST_NAME = _text_strategy("fake_last_name", "a last name from a built-in list", NAMES)

DIGITS = _text_strategy(
    "digits", "every digit replaced, length and other characters kept",
    (Example("text", ("+49 (30) 1234-567", "100% sure: 42", "no digits", "1-" + "9" * 70)),
     Example("varchar(12)", ("555-0123",))))


class PartialParams(Params):
    keep_first: int = Field(0, ge=0)
    keep_last: int = Field(0, ge=0)
    fill: str = Field("*", min_length=1, max_length=1)


def _partial(spec: MaskSpec, ref: str, column: SourceColumn, relation: QualifiedName) -> str:
    return "repl.mask_partial({}, {}, {}, {})".format(
        _text_of(ref, column), int(spec.param("keep_first", 0)), int(spec.param("keep_last", 0)),
        _literal(str(spec.param("fill", "*"))))


PARTIAL = Strategy(
    "partial", "text-like", "the ends kept, the middle filled (a value too short is filled "
    "whole)", refuses=_needs_text("partial"), target_type=_text, expression=_partial,
    params=PartialParams,
    examples=(Example("text", ("4111 1111 1111 1111", "ab"), {"partial": {"keep_last": 4}}),
              Example("char(6)", ("abcdef", "ab"),
                      {"partial": {"keep_first": 1, "keep_last": 1, "fill": "'"}})))

REDACT = Strategy(
    "redact", "text-like", "`REDACTED`", refuses=_needs_text("redact"), target_type=_text,
    expression=lambda spec, ref, column, relation:
        f"repl.mask_redact({_text_of(ref, column)})",
    examples=(Example("text", ("secret",)), Example("varchar(3)", ("abc",))))


def _null(spec: MaskSpec, ref: str, column: SourceColumn, relation: QualifiedName) -> str:
    """NULL; '' of a text-like column stays '' (as under every strategy)."""
    if column.type_category == TEXT_LIKE:
        return f"CASE WHEN {ref}::text = '' THEN {ref} END"
    return "NULL"


NULL = Strategy(
    "null", "any", "NULL ('' stays '')", refuses=_any_type, target_type=_same_type,
    nullable=True, expression=_null,
    examples=(Example("text", ("x",)), Example("int4", ("42",)),
              Example("jsonb", ('{"a": 1}',)),
              Example("uuid", ("6f1c2a9e-4b7d-4e0a-9c3f-2d8e5b1a7c64",))))


class DateTruncParams(Params):
    unit: Literal["year", "month", "day"]


def _builtin(column: SourceColumn, names: set[str]) -> bool:
    """One of PostgreSQL's own types of these names: not a domain over one (its
    constraints could refuse the result) nor a type of another schema so named."""
    return column.type_schema == "pg_catalog" and column.type_name in names


def _needs_date(column: SourceColumn) -> str | None:
    if not _builtin(column, DATE_TYPES):
        return (f"date_trunc needs a date or timestamp column, not {column.type} (the "
                "built-in date, timestamp and timestamptz, whose ranges its results are "
                "kept in; use sql or null for other types)")
    return None


def _date_trunc(spec: MaskSpec, ref: str, column: SourceColumn, relation: QualifiedName
                ) -> str:
    return "repl.mask_date_trunc({}, {})".format(ref, _literal(str(spec.param("unit"))))


DATE_TRUNC = Strategy(
    "date_trunc", "date, timestamp", "truncated (timestamptz in UTC)", refuses=_needs_date,
    target_type=_same_type, expression=_date_trunc, params=DateTruncParams, shorthand="unit",
    example="{date_trunc: year}",
    examples=(Example("date", ("2024-05-17", "1999-12-31", "infinity", "-infinity",
                               "4714-11-24 BC", "4713-02-01 BC", "5874897-12-31"),
                      {"date_trunc": "year"}),
              Example("date", ("2024-05-17", "4714-12-31 BC", "294277-03-04"),
                      {"date_trunc": "month"}),
              Example("timestamp(0)", ("2024-05-17 10:11:12", "4714-11-24 00:00:00 BC",
                                       "294276-12-31 23:59:59", "-infinity"),
                      {"date_trunc": "month"}),
              Example("timestamptz", ("2024-03-01 05:00:00+00", "2024-03-01 00:30:00+02",
                                      "4714-11-24 00:00:00+00 BC",
                                      "294276-12-31 23:59:59+00", "infinity"),
                      {"date_trunc": "day"}),
              Example("timestamptz(3)", ("4714-11-24 12:00:00.123+00 BC",),
                      {"date_trunc": "year"})))


class NoiseParams(Params):
    ratio: float = Field(gt=0, le=1)


# Bounds of the results, so that no noisy value stops the stream (out of range, numeric
# field overflow, underflow): (smallest normal, largest finite) magnitudes of the floats,
# the range of the integers.
FLOAT_RANGE = {"float4": (1.1754943508222875e-38, 3.4028234663852886e+38),
               "float8": (2.2250738585072014e-308, 1.7976931348623157e+308)}
INTEGER_RANGE = {"int2": (-2**15, 2**15 - 1), "int4": (-2**31, 2**31 - 1),
                 "int8": (-2**63, 2**63 - 1)}
_NUMERIC_TYPMOD = re.compile(r"numeric\((\d+),(-?\d+)\)")


def _needs_number(column: SourceColumn) -> str | None:
    if not _builtin(column, NUMBER_TYPES):
        return (f"noise needs a numeric column, not {column.type} (the built-in smallint, "
                "integer, bigint, numeric, real and double precision, whose ranges its "
                "results are kept in; use sql or null for other types)")
    return None


def numeric_bounds(column: SourceColumn) -> tuple[int, Decimal, Decimal] | None:
    """(scale, low, high) of an integer or numeric(p,s) column; None for numeric."""
    if column.type_name in INTEGER_RANGE:
        low, high = INTEGER_RANGE[column.type_name]
        return 0, Decimal(low), Decimal(high)
    typmod = _NUMERIC_TYPMOD.fullmatch(column.type)  # format_type's spelling
    if typmod is None:
        return None
    precision, scale = int(typmod[1]), int(typmod[2])
    high = Decimal((0, (9,) * precision, -scale))  # 10^(p-s) - 10^-s: p nines, s decimals
    return scale, high.copy_negate(), high


def _numeric_literal(value: Decimal) -> str:
    return _literal(format(value, "f")) + "::numeric"


def _noise(spec: MaskSpec, ref: str, column: SourceColumn, relation: QualifiedName) -> str:
    ratio = float(spec.param("ratio"))
    if column.type_name in FLOAT_TYPES:
        smallest, largest = FLOAT_RANGE[column.type_name]
        return (f"repl.mask_noise({ref}::float8, {ratio!r}::float8, ikey, okey, "
                f"{smallest!r}::float8, {largest!r}::float8)")
    bounds = numeric_bounds(column)
    if bounds is None:
        return f"repl.mask_noise({ref}::numeric, {ratio!r}::float8, ikey, okey)"
    scale, low, high = bounds
    return (f"repl.mask_noise({ref}::numeric, {ratio!r}::float8, ikey, okey, {scale}, "
            f"{_numeric_literal(low)}, {_numeric_literal(high)})")


NOISE = Strategy(
    "noise", "numeric", "value × (1 ± ≤r), deterministic per value, rounded and clamped to "
    "the column type's scale and range", refuses=_needs_number,
    target_type=_same_type, expression=_noise, keyed=True, params=NoiseParams,
    shorthand="ratio", example="{noise: {ratio: 0.1}}",
    examples=(Example("int2", ("100", "-7", "0", "32767", "-32768"), {"noise": 0.5}),
              Example("int4", ("123456", "-1", "2147483647", "-2147483648"), {"noise": 0.1}),
              Example("int8", ("9000000000", "9223372036854775807", "-9223372036854775808"),
                      {"noise": 0.1}),
              Example("numeric(5,2)", ("123.45", "-0.01", "999.99", "-999.99", "NaN"),
                      {"noise": 0.1}),
              Example("numeric(3,-2)", ("99900", "-12345"), {"noise": 0.5}),
              Example("numeric(2,4)", ("0.0099", "0.0050", "-0.0031"), {"noise": 0.5}),
              Example("numeric", ("1.5", "NaN", "Infinity"), {"noise": 0.2}),
              Example("real", ("3.25", "3.4028235e38", "-3.4028235e38", "1.1754944e-38",
                               "1e-45", "NaN", "-Infinity"), {"noise": 1}),
              Example("float8", ("1e300", "-2.5", "1.7976931348623157e308",
                                 "-1.7976931348623157e308", "2.2250738585072014e-308",
                                 "5e-324", "-Infinity"), {"noise": 1})))


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty")
    return value.strip()


class SqlParams(Params):
    expression: Annotated[str, AfterValidator(_not_blank)]


def _sql_result(column: SourceColumn) -> str:
    return "text" if column.type_category == TEXT_LIKE else column.type  # a varchar(5) grows


def sql_body(column: SourceColumn, spec: MaskSpec) -> sql.Composable:
    """The body of a custom mask's function (masking.create_sql_mask): the user's
    expression of `value`, one SQL expression parsed when the function is created, except
    that NULL and the empty string stay as they are (a blank char(n) arrives padded). The
    newline ends a comment the text may end with (see validate.probe_row_filters)."""
    keep = sql.SQL("")
    if column.type_name == "bpchar":
        keep = sql.SQL(" WHEN pg_catalog.rtrim(value, ' ') = '' THEN ''")
    elif column.type_category == TEXT_LIKE:
        keep = sql.SQL(" WHEN value = '' THEN value")
    return sql.SQL("RETURN CASE WHEN value IS NULL THEN value{} ELSE ({}\n) END").format(
        keep, sql.SQL(str(spec.param("expression"))))


def sql_function(relation: QualifiedName, column: SourceColumn, spec: MaskSpec) -> str:
    """A custom `sql` mask is a SQL function of its own (masking.create_sql_mask), named
    by a digest of everything that defines it, its body included, so that any change
    makes a new function (and so a new trigger body, hence a re-copy)."""
    parts = (relation.schema, relation.name, column.name, _sql_result(column),
             sql_body(column, spec).as_string(None))
    return f"mask_sql_{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:24]}"


SQL = Strategy(
    "sql", "any", "your expression of `value` (not called for NULL and '')", refuses=_any_type,
    target_type=_sql_result,
    expression=lambda spec, ref, column, relation:
        f"repl.{sql_function(relation, column, spec)}({ref})",
    params=SqlParams, shorthand="expression", example='{sql: "upper(value)"}',
    examples=(Example("text", ("nick", "ÄÖ"), {"sql": "upper(value)"}),
              Example("varchar(3)", ("abc",), {"sql": "value || '-masked'"}),
              Example("char(4)", ("ab",), {"sql": "value || '!'"}),
              Example("int4", ("41", "-3"), {"sql": "value * 2"}),
              Example("json", ("[1]",), {"sql": "json_build_object('masked', true)"})))

# In the order error messages list them.
REGISTRY: dict[str, Strategy] = {s.name: s for s in (
    HASH, EMAIL, FAKE_NAME, FAKE_FIRST_NAME, FAKE_LAST_NAME, DIGITS, PARTIAL, REDACT, NULL,
    DATE_TRUNC, NOISE, SQL)}
