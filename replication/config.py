"""The configuration's model: frozen desired-state values (`Config` and below) and every
rule that holds without a database (SPEC section 2, and the parameters of the masking
strategies of section 4). Reading `repl.yaml` into it is `config_file`'s job.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import unquote

from pydantic import AfterValidator as After
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, Strict, ValidationError
from pydantic import BeforeValidator as Before
from pydantic_core import PydanticCustomError

from .names import MAX_IDENTIFIER_BYTES, OPERATIONS, QualifiedName, bad_identifier, plain_name
from .strategies import REGISTRY

STRATEGIES = tuple(REGISTRY)
NAME_SUFFIX_BYTES = 5  # "_" + 4 characters that repl appends to "<name>_<target>"
_MAX_PREFIX = MAX_IDENTIFIER_BYTES - 2 - NAME_SUFFIX_BYTES  # room for "_" + a 1-char target

Loc = tuple[str | int, ...]
PathProblem = tuple[Loc, str]  # (path below the value being validated, message)


def _fail(*problems: PathProblem) -> NoReturn:
    """Reports problems from inside a validator; `_problems_of` puts each at its path."""
    detail = "; ".join(message for _, message in problems)
    raise PydanticCustomError("repl", "{detail}", {"detail": detail, "problems": problems})


def quoted(value: object) -> str:
    return f"'{value}'"


def kind_of(value: Any) -> str:
    kinds = {type(None): "nothing", bool: "a boolean", int: "an integer", float: "a number",
             str: "a string", list: "a list", dict: "a mapping"}
    return kinds.get(type(value), type(value).__name__)


# --- masking -----------------------------------------------------------------------------

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class MaskSpec:
    """A masking strategy with its parameters: defaults filled in, sorted, hashable."""

    strategy: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


def _mask_spec(value: Any) -> MaskSpec:
    """Reads `hash`, `~` or 'null', `{partial: {keep_last: 4}}`, `{date_trunc: year}`, ..."""
    if isinstance(value, MaskSpec):
        return value
    at: Loc = ()
    params: Any = {}
    if value is None or isinstance(value, str):
        strategy = "null" if value is None else value.strip()
    elif isinstance(value, dict) and len(value) == 1:
        [(strategy, params)] = value.items()
        at = (str(strategy),)
    else:
        _fail(((), "expected a strategy name or a one-key mapping such as "
                   "{partial: {keep_last: 4}}"))
    if strategy not in REGISTRY:
        _fail(((), f"unknown masking strategy {quoted(strategy)} "
                   f"(expected one of: {', '.join(STRATEGIES)})"))
    record = REGISTRY[strategy]
    model = record.params
    if model is None:
        return MaskSpec(strategy) if not params else _fail((at, f"{strategy} takes no parameters"))
    shorthand = record.shorthand is not None and not isinstance(params, dict | None)
    params = {record.shorthand: params} if shorthand else params or {}
    if not isinstance(params, dict):
        _fail((at, f"expected a mapping of parameters ({', '.join(model.model_fields)})"))
    if any(f.is_required() and k not in params for k, f in model.model_fields.items()):
        _fail((at, f"{strategy} needs a {record.shorthand}; write {record.example}"))
    try:
        validated = model.model_validate(params)
    except ValidationError as exc:
        _fail(*[(at if shorthand else at + loc, m) for loc, m in problems_of(exc)])
    return MaskSpec(strategy, tuple(sorted(validated.model_dump().items())))


# --- validated sections ------------------------------------------------------------------

def _names(value: Any, what: str = "column") -> tuple[str, ...]:
    """A list of distinct names of 1 to 63 bytes."""
    if not isinstance(value, list | tuple):
        _fail(((), f"expected a list of {what} names, got {kind_of(value)}"))
    problems: list[PathProblem] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            problems.append(((i,), f"expected a {what} name, got {kind_of(item)}"))
        elif problem := bad_identifier(item):
            problems.append(((i,), problem))
        elif item in value[:i]:
            problems.append(((i,), f"{what} {quoted(item)} is listed twice"))
    return tuple(value) if not problems else _fail(*problems)


def _columns(value: Any) -> Any:
    if value == "all":
        return value
    if not value or not isinstance(value, list | tuple):
        _fail(((), f"expected a non-empty list of column names, or 'all'; got {kind_of(value)}"))
    return _names(value)


def _where(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        _fail(((), "is empty (leave out where to replicate every row)"))
    return value.strip() if isinstance(value, str) else value


def _operations(value: Any) -> frozenset[str]:
    if value == []:
        _fail(((), f"must list at least one of: {', '.join(OPERATIONS)}"))
    unknown = [((i,), f"unknown operation {quoted(op)} (expected one of: {', '.join(OPERATIONS)})")
               for i, op in enumerate(_names(value, "operation")) if op not in OPERATIONS]
    return frozenset(value) if not unknown else _fail(*unknown)


def _table_key(value: Any) -> QualifiedName:
    if not isinstance(value, str):
        _fail(((), f"a table name must be a string, got {kind_of(value)}"))
    try:
        return QualifiedName.parse(value)
    except ValueError as exc:
        _fail(((), f"invalid table name: {exc}"))


def _distinct_tables(value: Any) -> Any:
    """`public.users` and `'"public".users'` are one table: refuse to merge them silently."""
    seen: dict[QualifiedName, str] = {}
    for key in value if isinstance(value, dict) else ():
        try:
            name = QualifiedName.parse(key)
        except (ValueError, TypeError):
            continue  # reported by _table_key
        if name in seen:
            _fail(((key,), f"names the same table as {quoted(seen[name])}"))
        seen[name] = key
    return value


def _role_name(value: str) -> str:
    if problem := bad_identifier(value):
        _fail(((), problem))
    if value.startswith("pg_") or value in ("public", "none", "current_user", "session_user"):
        _fail(((), "reserved role name (PostgreSQL keeps pg_* and 'public' for itself)"))
    return value


def valid_prefix(name: str) -> bool:
    return plain_name(name) and len(name) <= _MAX_PREFIX


def _prefix(value: str) -> str:
    if not valid_prefix(value):
        _fail(((), f"must match [a-z_][a-z0-9_]* and have at most {_MAX_PREFIX} "
                   "characters (it prefixes publication, subscription and slot names)"))
    return value


def _target_name(value: str, info: Any) -> str:
    if not plain_name(value):
        _fail(((), "a target name must match [a-z_][a-z0-9_]* (it is part of object names)"))
    prefix = (info.context or {}).get("name")
    if prefix and len(prefix) + 1 + len(value) + NAME_SUFFIX_BYTES > MAX_IDENTIFIER_BYTES:
        room = MAX_IDENTIFIER_BYTES - len(prefix) - 1 - NAME_SUFFIX_BYTES
        _fail(((), f"too long: with name {quoted(prefix)} a target name has at most {room} "
                   "characters (publication, subscription and slot names have 63 bytes)"))
    return value


def _version(value: Any) -> int:
    if isinstance(value, bool) or value not in (1, "1"):
        _fail(((), "unsupported version; this repl reads version: 1"))
    return 1


def _at_least_one(what: str) -> After:
    return After(lambda value: value or _fail(((), f"needs at least one {what}")))


Names = Annotated[tuple[str, ...], Before(_names)]
NonEmpty = Annotated[str, After(lambda v: v if v.strip() else _fail(((), "is empty")))]
OptionalText = Annotated[str | None, After(lambda v: v or None)]  # "" (${X:-}) is absent


class TableConfig(_Section):
    """What one target receives of one source table."""

    columns: Annotated[tuple[str, ...] | Literal["all"], Before(_columns)]
    exclude: Names = ()
    where: Annotated[str | None, Before(_where)] = None
    operations: Annotated[frozenset[str], Before(_operations)] = frozenset(OPERATIONS)
    mask: dict[str, Annotated[MaskSpec, PlainValidator(_mask_spec)]] = Field(
        default_factory=dict)

    def model_post_init(self, _context: Any) -> None:
        problems: list[PathProblem] = []
        # With `columns: all`, exclude names the columns that stay in production.
        listed = None if self.columns == "all" else set(self.columns)
        problems += [(("exclude", i), f"{quoted(column)} is also listed in columns")
                     for i, column in enumerate(self.exclude) if column in (listed or ())]
        for column in self.mask:
            if column in self.exclude:
                problems.append((("mask", column), "column is excluded; only a replicated "
                                                   "column can be masked"))
            elif listed is not None and column not in listed:
                problems.append((("mask", column), "column is not listed in columns"))
        if problems:
            _fail(*problems)


class RoleConfig(_Section):
    """A NOLOGIN role that may read the target's replicated tables."""

    privilege: Literal["read"]
    members: Annotated[tuple[str, ...], Before(lambda v: _names(v, "member"))] = ()


def _role(value: Any) -> Any:  # short form `analyst: read`
    if isinstance(value, str) and value != "read":
        _fail(((), f"unknown privilege {quoted(value)} (expected 'read')"))
    return {"privilege": value} if isinstance(value, str) else value


class TargetConfig(_Section):
    dsn: NonEmpty
    tables: Annotated[dict[Annotated[QualifiedName, PlainValidator(_table_key)], TableConfig],
                      Before(_distinct_tables), _at_least_one("table")]
    roles: dict[Annotated[str, After(_role_name)], Annotated[RoleConfig, Before(_role)]] = (
        Field(default_factory=dict))
    # PostgreSQL's subscription option: on an apply error, disable the subscription
    # instead of retrying every few seconds. Off by default: a lost connection (the source
    # restarting) counts as an error too, and then replication waits for `repl setup`.
    disable_on_error: bool = False
    # Replicated tables refuse local INSERT, UPDATE, DELETE and TRUNCATE (a local row is
    # the usual cause of apply conflicts). false: people may write, and repl keeps each
    # replicated sequence ahead of production's. Strict: `read_only: "no"` is a mistake.
    read_only: Annotated[bool, Strict()] = True


def _table_list(value: Any) -> tuple[QualifiedName, ...]:
    """A list of distinct table names, as `schema.table`."""
    if not isinstance(value, list | tuple):
        _fail(((), f"expected a list of table names, got {kind_of(value)}"))
    problems: list[PathProblem] = []
    found: list[QualifiedName] = []
    for i, item in enumerate(value):
        try:
            name = _table_key(item)
        except PydanticCustomError as exc:
            problems += [((i, *loc), m) for loc, m in exc.context["problems"]]
            continue
        if name in found:
            problems.append(((i,), f"table {name} is listed twice"))
        found.append(name)
    return tuple(found) if not problems else _fail(*problems)


class SourceConfig(_Section):
    dsn: NonEmpty
    subscriber_dsn: OptionalText = None
    # Production tables that stay there: acknowledged, so that `check --strict` does not
    # count them among the tables no target mentions.
    exclude: Annotated[tuple[QualifiedName, ...], Before(_table_list)] = ()


class MaskingConfig(_Section):
    secret: OptionalText = None


class Config(_Section):
    """The whole desired state, as read from `repl.yaml`."""

    version: Annotated[int, Before(_version)]
    name: Annotated[str, After(_prefix)] = "repl"
    source: SourceConfig
    masking: MaskingConfig = MaskingConfig()
    targets: Annotated[dict[Annotated[str, After(_target_name)], TargetConfig],
                       _at_least_one("target")]

    def model_post_init(self, _context: Any) -> None:
        configured = {rel: name for name, t in self.targets.items() for rel in t.tables}
        problems = [(("source", "exclude", i), f"table {rel} is configured for target "
                                                f"{configured[rel]}; exclude it or replicate it")
                    for i, rel in enumerate(self.source.exclude) if rel in configured]
        if problems:
            _fail(*problems)

    def secrets(self) -> list[str]:
        """Every password in a DSN, and the masking secret: what output must never show."""
        dsns = [self.source.dsn, self.source.subscriber_dsn,
                *(target.dsn for target in self.targets.values())]
        found = [p for dsn in dsns if dsn for p in dsn_passwords(dsn)]
        if self.masking.secret:
            found.append(self.masking.secret)
        return list(dict.fromkeys(found))


KEYS = sorted({k for m in (Config, SourceConfig, MaskingConfig, TargetConfig, TableConfig,
                            RoleConfig, *(s.params for s in REGISTRY.values() if s.params))
               for k in m.model_fields})
_KV_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def dsn_passwords(dsn: str) -> list[str]:
    """Passwords in a libpq URI (user:PASS@, ?password=) or key=value string, both as
    written and decoded (percent-encoding, quotes and backslashes)."""
    found: list[str] = []
    uri = re.match(r"\s*postgres(?:ql)?://([^/]*)", dsn, re.IGNORECASE)
    if uri:
        userinfo = uri.group(1).rpartition("@")[0]
        found += [userinfo.partition(":")[2]] if ":" in userinfo else []
        query = dsn.partition("?")[2].partition("#")[0]
        found += [v for k, _, v in (item.partition("=") for item in query.split("&"))
                  if unquote(k) == "password"]
        found += [unquote(p) for p in found]
    else:
        for value in _KV_PASSWORD.findall(dsn):
            if value.startswith("'"):
                value = value[1:-1]
                found.append(re.sub(r"\\(.)", r"\1", value))
            found.append(value)
    return list(dict.fromkeys(p for p in found if p))


_TYPES = {"dict_type": "a mapping", "model_type": "a mapping", "string_type": "a string",
          "int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
          "float_parsing": "a number", "tuple_type": "a list", "frozen_set_type": "a list",
          "bool_type": "a boolean"}


def problems_of(error: ValidationError) -> list[PathProblem]:
    """pydantic's errors as (path, message), in words that never quote the input value."""
    problems: list[PathProblem] = []
    for e in error.errors(include_url=False):
        loc, kind = tuple(p for p in e["loc"] if p != "[key]"), e["type"]
        if kind == "repl":
            problems += [(loc + sub, message) for sub, message in e["ctx"]["problems"]]
        elif kind == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), KEYS, n=1)
            hint = f"; did you mean {quoted(close[0])}?" if close else ""
            problems.append((loc, f"unknown key{hint}"))
        elif kind == "missing":
            problems.append((loc, "required"))
        elif kind in _TYPES:
            problems.append((loc, f"expected {_TYPES[kind]}, got {kind_of(e['input'])}"))
        else:
            problems.append((loc, e["msg"].removeprefix("Value error, ")))
    return problems
