"""Unit tests of replication.config: reading, interpolation, validation, error paths."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from replication.config import OPERATIONS, Config, MaskSpec, QualifiedName, dsn_passwords
from replication.config_file import load_config, parse_config, resolve_config_path
from replication.errors import ConfigError
from replication.strategies import REGISTRY

ENV = {
    "PRODUCTION_DSN": "postgresql://repl:prod-pass@prod.example:5432/production_db",
    "PRODUCTION_DSN_FOR_STAGING": "host=prod.internal dbname=production_db user=repl "
                                  "password='stag ing'",
    "REPL_MASK_SECRET": "mask-secret-value",
    "ANALYTICS_DSN": "host=analytics dbname=analytics_staging_db password=analytics-pass",
    "DEV_DSN": "postgresql://repl:dev%40pass@dev/dev_staging_db",
}

SPEC_EXAMPLE = """\
version: 1
name: repl

source:
  dsn: ${PRODUCTION_DSN}
  subscriber_dsn: ${PRODUCTION_DSN_FOR_STAGING}

masking:
  secret: ${REPL_MASK_SECRET}

targets:
  analytics:
    dsn: ${ANALYTICS_DSN}
    tables:
      public.users:
        columns: [id, country, plan, created_at]
        exclude: [name, email, phone, birth_date, bio]
      public.events:
        columns: all
        where: "kind <> 'debug'"
        operations: [insert]
    roles:
      analyst: read

  dev:
    dsn: ${DEV_DSN}
    tables:
      public.users:
        columns: [id, name, email, phone, birth_date, country, created_at]
        mask:
          name: fake_name
          email: email
          phone: {partial: {keep_last: 4}}
          birth_date: {date_trunc: year}
      public.orders:
        columns: all
        operations: [insert]
        mask:
          card_number: redact
    roles:
      developer: read
"""

USERS = QualifiedName("public", "users")


def minimal(table_yaml: str = "columns: [id]", *, extra: str = "", table: str = "public.t"
            ) -> str:
    """A valid config with one target and one table, whose body is `table_yaml`."""
    body = textwrap.indent(textwrap.dedent(table_yaml).strip(), " " * 8)
    return (f"version: 1\nsource:\n  dsn: host=src\ntargets:\n  dev:\n    dsn: host=dev\n"
            f"    tables:\n      {table}:\n{body}\n{textwrap.dedent(extra)}")


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env or {})
    return info.value.problems


def problem_at(text: str, path: str, env: dict[str, str] | None = None) -> str:
    """The one problem reported at exactly `path` (fails if none)."""
    found = [p for p in problems(text, env) if p.startswith(path + ": ")]
    assert found, f"no problem at {path}: {problems(text, env)}"
    return found[0]


def mask_of(spec_yaml: str) -> MaskSpec:
    config = parse_config(minimal(f"columns: [id, c]\nmask:\n  c: {spec_yaml}"), {})
    return config.targets["dev"].tables[QualifiedName("public", "t")].mask["c"]


# --- a full valid file -------------------------------------------------------------------

def test_spec_example_is_valid_and_interpolated():
    config = parse_config(SPEC_EXAMPLE, ENV)
    assert config.version == 1 and config.name == "repl"
    assert config.source.dsn == ENV["PRODUCTION_DSN"]
    assert config.source.subscriber_dsn == ENV["PRODUCTION_DSN_FOR_STAGING"]
    assert config.masking.secret == "mask-secret-value"
    assert list(config.targets) == ["analytics", "dev"]

    analytics = config.targets["analytics"]
    users = analytics.tables[USERS]
    assert users.columns == ("id", "country", "plan", "created_at")
    assert users.exclude == ("name", "email", "phone", "birth_date", "bio")
    assert users.where is None and users.mask == {}
    assert users.operations == frozenset(OPERATIONS)
    events = analytics.tables[QualifiedName("public", "events")]
    assert events.columns == "all"
    assert events.where == "kind <> 'debug'"
    assert events.operations == frozenset({"insert"})
    assert analytics.roles["analyst"].privilege == "read"
    assert analytics.roles["analyst"].members == ()

    dev = config.targets["dev"].tables
    mask = dev[USERS].mask
    assert mask["name"] == MaskSpec("fake_name")
    assert mask["email"] == MaskSpec("email")
    assert mask["phone"] == MaskSpec("partial", (("fill", "*"), ("keep_first", 0),
                                                 ("keep_last", 4)))
    assert mask["birth_date"] == MaskSpec("date_trunc", (("unit", "year"),))
    assert dev[QualifiedName("public", "orders")].mask == {"card_number": MaskSpec("redact")}


def test_defaults():
    config = parse_config(minimal(), {})
    assert config.name == "repl"
    assert config.masking.secret is None
    assert config.source.subscriber_dsn is None
    target = config.targets["dev"]
    assert target.roles == {}
    table = target.tables[QualifiedName("public", "t")]
    assert table.exclude == () and table.where is None and table.mask == {}
    assert table.operations == frozenset(OPERATIONS)


def test_read_only_is_a_strict_boolean_per_target_default_true():
    def with_read_only(value: str) -> str:
        return minimal().replace("    dsn: host=dev\n",
                                 f"    dsn: host=dev\n    read_only: {value}\n")

    assert parse_config(minimal(), {}).targets["dev"].read_only is True
    assert parse_config(with_read_only("false"), {}).targets["dev"].read_only is False
    for value in ('"no"', "0", "~"):
        assert "expected a boolean" in problem_at(with_read_only(value), "targets.dev.read_only")


def test_config_is_frozen():
    config = parse_config(minimal(), {})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        config.name = "other"  # type: ignore[misc]


def test_all_problems_are_reported_at_once():
    text = """\
version: 2
name: Bad-Name
source: {dsn: "${MISSING}"}
surprise: 1
targets:
  dev:
    dsn: host=dev
    tables:
      public.users:
        columns: [id, email]
        mask: {email: emial}
      nodot:
        columns: [id]
      public.t:
        columns: [id]
        operations: [upsert]
  Other:
    dsn: host=x
    tables: {public.a: {columns: all}}
"""
    found = problems(text)
    for path in ("version", "name", "source.dsn", "surprise",
                 "targets.dev.tables.public.users.mask.email", "targets.dev.tables.nodot",
                 "targets.dev.tables.public.t.operations[0]", "targets.Other"):
        assert any(p.startswith(path + ": ") for p in found), (path, found)
    assert len(found) == 8, found


def test_error_str_is_one_line_per_problem():
    with pytest.raises(ConfigError) as info:
        parse_config("version: 1\nsource: {dsn: x}\ntargets: {}\nbogus: 1\n", {})
    assert str(info.value).splitlines() == info.value.problems
    assert len(info.value.problems) == 2


# --- environment interpolation -----------------------------------------------------------

def test_interpolation_with_default_and_inside_text():
    text = minimal(extra="masking:\n  secret: ${SECRET:-fallback}\n").replace(
        "dsn: host=src", "dsn: host=${HOST} port=${PORT:-5432}")
    config = parse_config(text, {"HOST": "db1"})
    assert config.source.dsn == "host=db1 port=5432"
    assert config.masking.secret == "fallback"
    config = parse_config(text, {"HOST": "db1", "PORT": "6543", "SECRET": "s"})
    assert config.source.dsn == "host=db1 port=6543"
    assert config.masking.secret == "s"


def test_empty_default_means_absent_optional_value():
    text = minimal(extra="masking:\n  secret: ${REPL_MASK_SECRET:-}\n")
    assert parse_config(text, {}).masking.secret is None


def test_unset_variable_names_variable_and_path_once():
    found = problems(minimal().replace("host=dev", "${DEV_DSN}"))
    assert found == ["targets.dev.dsn: environment variable DEV_DSN is not set"]


def test_unset_variable_in_list_item():
    msg = problem_at(minimal("columns: [id, '${COL}']"), "targets.dev.tables.public.t.columns[1]")
    assert "COL is not set" in msg


def test_invalid_reference_is_an_error_and_dollar_dollar_escapes():
    assert "invalid reference" in problem_at(
        minimal("columns: [id]\nwhere: \"a = '${1x}'\""), "targets.dev.tables.public.t.where")
    config = parse_config(minimal("columns: [id]\nwhere: \"a = '$${X}'\""), {})
    assert config.targets["dev"].tables[QualifiedName("public", "t")].where == "a = '${X}'"


def test_substituted_value_cannot_inject_yaml_structure():
    evil = "x\ntargets: {}\nname: evil"
    config = parse_config(minimal().replace("host=src", "${DSN}"), {"DSN": evil})
    assert config.source.dsn == evil
    assert config.name == "repl" and "dev" in config.targets


def test_keys_are_not_interpolated():
    found = problems(minimal(extra="${KEY}: 1\n"), {"KEY": "name"})
    assert found == ["${KEY}: unknown key"]


def test_substituted_password_never_appears_in_errors():
    password = "hunter2-Sup3r"
    env = {"PW": password, "SHORT": "pw1"}
    text = """\
version: 1
source: {dsn: "postgresql://u:${PW}@h/db"}
masking: {secret: "${PW}"}
targets:
  dev:
    dsn: "host=dev password=${PW}"
    tables:
      public.t:
        columns: ["${PW}", "${PW}", "${SHORT}", "${SHORT}"]
      public.u:
        columns: [id]
        where: "${PW}"
        operations: ["${PW}"]
        mask:
          id: "${PW}"
      public.v:
        columns: [a]
        mask: {a: {date_trunc: "${PW}"}}
      public.w:
        columns: [a]
        mask: {a: {partial: {fill: "${SHORT}"}}}
    roles:
      r: "${PW}"
      s: {privilege: read, members: ["${SHORT}", "${SHORT}"]}
  "${PW}":
    dsn: x
    tables: {public.t: {columns: [a]}}
version_extra: "${PW}"
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, env)
    output = str(info.value)
    assert len(info.value.problems) >= 6, output
    assert password not in output
    assert "'pw1'" not in output
    assert "'***'" in output


# --- YAML and top level ------------------------------------------------------------------

def test_yaml_syntax_error_has_line_number():
    found = problems("version: 1\nsource:\n  dsn: [unclosed\ntargets: {}\n")
    assert len(found) == 1
    assert found[0].startswith("repl.yaml:4:")
    assert "invalid YAML" in found[0]


def test_yaml_error_uses_origin():
    with pytest.raises(ConfigError) as info:
        parse_config("a: b: c", {}, origin="/etc/repl.yaml")
    assert info.value.problems[0].startswith("/etc/repl.yaml:1:")


def test_duplicate_key_is_an_error_with_line():
    found = problems(minimal() + "      public.t:\n        columns: all\n")
    assert len(found) == 1 and "duplicate key 'public.t'" in found[0]
    assert found[0].startswith("repl.yaml:10:")


def test_yaml_anchors_and_merge_keys_are_not_duplicates():
    text = minimal("&base\ncolumns: [id, email]\nmask: {email: hash}") + (
        "      public.u:\n        <<: *base\n        columns: [id, email, x]\n")
    tables = parse_config(text, {}).targets["dev"].tables
    assert tables[QualifiedName("public", "u")].columns == ("id", "email", "x")
    assert tables[QualifiedName("public", "u")].mask == {"email": MaskSpec("hash")}


@pytest.mark.parametrize("text, got", [("", "empty"), ("- a\n- b\n", "a list"),
                                       ("just text", "a string")])
def test_top_level_must_be_a_mapping(text, got):
    found = problems(text)
    assert len(found) == 1 and found[0].startswith("repl.yaml: expected a mapping")
    assert got in found[0]


def test_required_sections():
    found = problems("name: x\n")
    assert set(found) == {"version: required", "source: required", "targets: required"}


@pytest.mark.parametrize("version", ["2", "'one'", "true", "[1]"])
def test_version_must_be_1(version):
    text = minimal().replace("version: 1", f"version: {version}")
    assert "version 1" in problem_at(text, "version").replace("version: 1", "version 1")


def test_version_from_environment_string():
    assert parse_config(minimal().replace("version: 1", "version: '${V}'"), {"V": "1"}).version == 1


def test_unknown_keys_with_suggestion():
    text = minimal("colums: [id]\ncolumns: [id]", extra="sorce: {}\n")
    assert "did you mean 'columns'" in problem_at(text, "targets.dev.tables.public.t.colums")
    assert "did you mean 'source'" in problem_at(text, "sorce")
    text = minimal().replace("dsn: host=dev", "dsn: host=dev\n    rolez: {}")
    assert problem_at(text, "targets.dev.rolez").startswith("targets.dev.rolez: unknown key")


def test_wrong_types_have_paths():
    text = minimal("columns: [id]\nwhere: 5").replace("dsn: host=src", "dsn: [a]")
    assert problem_at(text, "source.dsn") == "source.dsn: expected a string, got a list"
    assert "expected a string" in problem_at(text, "targets.dev.tables.public.t.where")
    text = minimal().replace("targets:\n", "targets: 5\nx:\n")
    assert problem_at(text, "targets") == "targets: expected a mapping, got an integer"
    assert "expected a mapping" in problem_at(minimal("~"), "targets.dev.tables.public.t")


@pytest.mark.parametrize("name", ["Repl", "1repl", "re-pl", "", "x" * 57])
def test_invalid_name(name):
    assert problem_at(minimal(extra=f"name: '{name}'\n"), "name")


def test_name_and_target_name_must_fit_in_63_bytes():
    # name + "_" + target + "_" + 4 characters <= 63
    ok = "t" * (63 - len("repl") - 1 - 5)
    parse_config(minimal().replace("  dev:", f"  {ok}:"), {})
    msg = problem_at(minimal().replace("  dev:", f"  {ok}x:"), f"targets.{ok}x")
    assert "too long" in msg and "63" in msg
    long_name = "n" * 56
    parse_config(minimal(extra=f"name: {long_name}\n").replace("  dev:", "  d:"), {})
    assert problem_at(minimal(extra=f"name: {long_name}\n"), "targets.dev")


@pytest.mark.parametrize("target", ["Dev", "dev-1", "1dev", "'dev staging'"])
def test_invalid_target_names(target):
    text = minimal().replace("  dev:", f"  {target}:")
    assert "must match" in problem_at(text, "targets." + target.strip("'"))


def test_at_least_one_target_and_table():
    assert problem_at(minimal().split("targets:")[0] + "targets: {}\n", "targets")
    text = minimal().split("    tables:")[0] + "    tables: {}\n"
    assert "at least one table" in problem_at(text, "targets.dev.tables")


def test_source_dsn_must_not_be_empty():
    assert problem_at(minimal().replace("dsn: host=src", "dsn: ''"), "source.dsn")


# --- tables ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["users", "a.b.c", "public.", "'\"unterminated.x'",
                                 "'public. users'", "'\"\".x'"])
def test_invalid_table_keys(key):
    written = key.strip("'") if key.startswith("'") else key
    msg = problem_at(minimal(table=key), f"targets.dev.tables.{written}")
    assert "invalid table name" in msg


def test_quoted_and_dotted_table_keys():
    text = minimal(table="'\"my.schema\".orders'") + (
        "      'public.\"My Table\"':\n        columns: all\n"
        "      Sales.Orders:\n        columns: all\n")
    tables = parse_config(text, {}).targets["dev"].tables
    assert set(tables) == {QualifiedName("my.schema", "orders"),
                           QualifiedName("public", "My Table"), QualifiedName("Sales", "Orders")}


def test_two_keys_for_the_same_table():
    text = minimal() + "      '\"public\".\"t\"':\n        columns: all\n"
    msg = problem_at(text, 'targets.dev.tables."public"."t"')
    assert "same table as 'public.t'" in msg


def test_columns_rules():
    base = "targets.dev.tables.public.t.columns"
    assert "non-empty list" in problem_at(minimal("columns: []"), base)
    assert "non-empty list" in problem_at(minimal("columns: id"), base)
    assert "or 'all'" in problem_at(minimal("columns: id"), base)
    assert "required" in problem_at(minimal("where: 'a'"), base)
    assert "listed twice" in problem_at(minimal("columns: [id, a, id]"), base + "[2]")
    assert "expected a column name" in problem_at(minimal("columns: [id, 3]"), base + "[1]")
    assert "63 bytes" in problem_at(minimal(f"columns: [{'c' * 64}]"), base + "[0]")
    assert "63 bytes" in problem_at(minimal("columns: [id, '']"), base + "[1]")


def test_columns_keep_exact_spelling_and_a_column_named_all():
    config = parse_config(minimal("columns: [all, 'Mixed Case', \"quo\\\"te\"]"), {})
    assert config.targets["dev"].tables[QualifiedName("public", "t")].columns == (
        "all", "Mixed Case", 'quo"te')


def test_exclude_rules():
    base = "targets.dev.tables.public.t.exclude"
    # columns: all with exclude: every column but those (and one added later waits).
    config = parse_config(minimal("columns: all\nexclude: [a]"), {})
    assert config.targets["dev"].tables[QualifiedName("public", "t")].exclude == ("a",)
    assert "column is excluded" in problem_at(
        minimal("columns: all\nexclude: [a]\nmask: {a: redact}"), base.replace("exclude",
                                                                               "mask.a"))
    assert "also listed in columns" in problem_at(minimal("columns: [a, b]\nexclude: [c, b]"),
                                                  base + "[1]")
    assert "listed twice" in problem_at(minimal("columns: [a]\nexclude: [b, b]"), base + "[1]")
    assert "expected a list" in problem_at(minimal("columns: [a]\nexclude: b"), base)


def test_where_is_stripped_and_must_not_be_empty():
    config = parse_config(minimal("columns: [id]\nwhere: '  id > 10  '"), {})
    assert config.targets["dev"].tables[QualifiedName("public", "t")].where == "id > 10"
    assert "is empty" in problem_at(minimal("columns: [id]\nwhere: '  '"),
                                    "targets.dev.tables.public.t.where")
    config = parse_config(minimal("columns: [id]\nwhere:"), {})
    assert config.targets["dev"].tables[QualifiedName("public", "t")].where is None


def test_operations_rules():
    base = "targets.dev.tables.public.t.operations"
    config = parse_config(minimal("columns: [id]\noperations: [delete, insert]"), {})
    assert config.targets["dev"].tables[QualifiedName("public", "t")].operations == frozenset(
        {"insert", "delete"})
    assert "at least one" in problem_at(minimal("columns: [id]\noperations: []"), base)
    assert "listed twice" in problem_at(minimal("columns: [id]\noperations: [insert, insert]"),
                                        base + "[1]")
    msg = problem_at(minimal("columns: [id]\noperations: [insert, upsert]"), base + "[1]")
    assert "unknown operation 'upsert'" in msg
    assert "expected a list" in problem_at(minimal("columns: [id]\noperations: insert"), base)


def test_mask_column_must_be_listed_and_not_excluded():
    base = "targets.dev.tables.public.t.mask"
    text = minimal("columns: [id, a]\nexclude: [b]\nmask: {a: hash, b: hash, c: hash}")
    assert "excluded" in problem_at(text, base + ".b")
    assert "not listed in columns" in problem_at(text, base + ".c")
    assert len(problems(text)) == 2
    text = minimal("columns: all\nmask: {anything: hash}")
    assert parse_config(text, {}).targets["dev"].tables[QualifiedName("public", "t")].mask


# --- masking strategies ------------------------------------------------------------------

@pytest.mark.parametrize("strategy", [n for n, s in REGISTRY.items() if s.params is None])
def test_parameterless_strategies(strategy):
    assert mask_of(strategy) == MaskSpec(strategy)
    assert mask_of(f"{{'{strategy}': }}") == MaskSpec(strategy)


@pytest.mark.parametrize("written", ["~", "", "'null'", "null", "{'null': ~}"])
def test_null_strategy_forms(written):
    assert mask_of(written) == MaskSpec("null")


@pytest.mark.parametrize("written, params", [
    ("partial", {"keep_first": 0, "keep_last": 0, "fill": "*"}),
    ("{partial: {keep_last: 4}}", {"keep_first": 0, "keep_last": 4, "fill": "*"}),
    ("{partial: {fill: '#', keep_first: 2, keep_last: 1}}",
     {"keep_first": 2, "keep_last": 1, "fill": "#"}),
    ("{date_trunc: month}", {"unit": "month"}),
    ("{date_trunc: {unit: day}}", {"unit": "day"}),
    ("{noise: {ratio: 0.1}}", {"ratio": 0.1}),
    ("{noise: 1}", {"ratio": 1.0}),
    ("{sql: '  upper(value) '}", {"expression": "upper(value)"}),
    ("{sql: {expression: 'left(value, 3)'}}", {"expression": "left(value, 3)"}),
])
def test_parameterised_strategies(written, params):
    spec = mask_of(written)
    assert spec.params == tuple(sorted(params.items()))
    for key, value in params.items():
        assert spec.param(key) == value
    assert spec.param("missing", "d") == "d"
    hash(spec)


def test_equal_specs_whether_defaults_are_written_or_not():
    assert mask_of("{partial: {keep_last: 4}}") == mask_of(
        "{partial: {keep_first: 0, keep_last: 4, fill: '*'}}")


@pytest.mark.parametrize("written, path, words", [
    ("emial", "", "unknown masking strategy 'emial' (expected one of: hash, email"),
    ("{partal: {keep_last: 4}}", "", "unknown masking strategy 'partal'"),
    ("{hash: {}, email: {}}", "", "one-key mapping"),
    ("[hash]", "", "one-key mapping"),
    ("{hash: {salt: x}}", ".hash", "takes no parameters"),
    ("{partial: 4}", ".partial", "expected a mapping of parameters (keep_first"),
    ("{partial: {keep_last: -1}}", ".partial.keep_last", "greater than or equal to 0"),
    ("{partial: {keep_last: true}}", ".partial.keep_last", "expected an integer"),
    ("{partial: {keep_first: x}}", ".partial.keep_first", "expected an integer"),
    ("{partial: {fill: '**'}}", ".partial.fill", "at most 1 character"),
    ("{partial: {fill: ''}}", ".partial.fill", "at least 1 character"),
    ("{partial: {keep: 1}}", ".partial.keep", "unknown key"),
    ("date_trunc", "", "date_trunc needs a unit; write {date_trunc: year}"),
    ("{date_trunc: ~}", ".date_trunc", "needs a unit"),
    ("{date_trunc: week}", ".date_trunc", "'year', 'month' or 'day'"),
    ("{date_trunc: {unit: week}}", ".date_trunc.unit", "'year', 'month' or 'day'"),
    ("noise", "", "noise needs a ratio"),
    ("{noise: {ratio: 0}}", ".noise.ratio", "greater than 0"),
    ("{noise: {ratio: 1.5}}", ".noise.ratio", "less than or equal to 1"),
    ("{noise: {ratio: x}}", ".noise.ratio", "expected a number"),
    ("{noise: {ratio: 0.1, seed: 3}}", ".noise.seed", "unknown key"),
    ("sql", "", "sql needs a expression"),
    ("{sql: '  '}", ".sql", "is empty"),
    ("{sql: 5}", ".sql", "expected a string"),
])
def test_invalid_strategies(written, path, words):
    text = minimal(f"columns: [id, c]\nmask:\n  c: {written}")
    msg = problem_at(text, "targets.dev.tables.public.t.mask.c" + path)
    assert words in msg


def test_mask_error_uses_the_table_key_as_written():
    text = SPEC_EXAMPLE.replace("email: email", "email: emial")
    assert problems(text, ENV) == [
        "targets.dev.tables.public.users.mask.email: unknown masking strategy 'emial' "
        f"(expected one of: {', '.join(REGISTRY)})"]


# --- roles -------------------------------------------------------------------------------

def test_roles_short_and_long_form():
    text = minimal().replace("dsn: host=dev", "dsn: host=dev\n    roles:\n      analyst: read\n"
                             "      developer: {privilege: read, members: [alice, bob]}")
    roles = parse_config(text, {}).targets["dev"].roles
    assert roles["analyst"].privilege == "read" and roles["analyst"].members == ()
    assert roles["developer"].members == ("alice", "bob")


@pytest.mark.parametrize("role, path, words", [
    ("analyst: write", "analyst", "unknown privilege 'write'"),
    ("analyst: {privilege: write}", "analyst.privilege", "'read'"),
    ("analyst: {members: [a]}", "analyst.privilege", "required"),
    ("analyst: {privilege: read, members: [a, a]}", "analyst.members[1]", "listed twice"),
    ("analyst: {privilege: read, members: a}", "analyst.members", "expected a list"),
    ("analyst: {privilege: read, grant: all}", "analyst.grant", "unknown key"),
    ("analyst: ~", "analyst", "expected a mapping"),
    ("pg_reader: read", "pg_reader", "reserved"),
    ("public: read", "public", "reserved"),
])
def test_invalid_roles(role, path, words):
    text = minimal().replace("dsn: host=dev", f"dsn: host=dev\n    roles:\n      {role}")
    assert words in problem_at(text, "targets.dev.roles." + path)


# --- secrets -----------------------------------------------------------------------------

def test_secrets_from_every_dsn_and_the_mask_secret():
    secrets = parse_config(SPEC_EXAMPLE, ENV).secrets()
    for expected in ("prod-pass", "stag ing", "mask-secret-value", "analytics-pass",
                     "dev%40pass", "dev@pass"):
        assert expected in secrets
    assert len(secrets) == len(set(secrets))


def test_secrets_empty_without_passwords():
    assert parse_config(minimal(), {}).secrets() == []


@pytest.mark.parametrize("dsn, expected", [
    ("postgresql://u:pw@h/db", ["pw"]),
    ("postgres://u:p%2Fw@h1:5432,h2:5433/db?sslmode=require", ["p%2Fw", "p/w"]),
    ("postgresql://u@h/db?password=q%20s&sslmode=disable", ["q%20s", "q s"]),
    ("postgresql://u@h/db", []),
    ("postgresql://:onlypw@h/db", ["onlypw"]),
    ("host=h password=plain user=u", ["plain"]),
    ("password = spaced host=h", ["spaced"]),
    ("host=h password='with space' user=u", ["with space"]),
    (r"host=h password='it\'s' user=u", ["it's", r"it\'s"]),
    ("host=h user=u", []),
    ("host=h mypassword=x", []),
])
def test_dsn_passwords(dsn, expected):
    assert sorted(dsn_passwords(dsn)) == sorted(expected)


# --- qualified names ---------------------------------------------------------------------

@pytest.mark.parametrize("text, schema, name, display", [
    ("public.users", "public", "users", "public.users"),
    ('"my.schema".orders', "my.schema", "orders", '"my.schema".orders'),
    ('"Odd ""Name""".x', 'Odd "Name"', "x", '"Odd ""Name""".x'),
    ('public."My Table"', "public", "My Table", 'public."My Table"'),
    ("Public.Users", "Public", "Users", '"Public"."Users"'),
    ('"public"."users"', "public", "users", "public.users"),
    ("s1.t_2", "s1", "t_2", "s1.t_2"),
    ('"a.b"."c.d"', "a.b", "c.d", '"a.b"."c.d"'),
    ("sales.ordérs", "sales", "ordérs", 'sales."ordérs"'),
])
def test_qualified_name_parse_and_display(text, schema, name, display):
    parsed = QualifiedName.parse(text)
    assert (parsed.schema, parsed.name) == (schema, name)
    assert str(parsed) == display
    assert QualifiedName.parse(str(parsed)) == parsed


@pytest.mark.parametrize("text", ["users", "a.b.c", ".t", "s.", "", '"s.t', 's."t',
                                  '"".t', 's."a"b', "s. t", "s .t", '"s"x.t',
                                  "s." + "x" * 64])
def test_qualified_name_rejects(text):
    with pytest.raises(ValueError, match=r"\S"):
        QualifiedName.parse(text)


def test_qualified_name_message_explains_quoting():
    with pytest.raises(ValueError, match="schema.table"):
        QualifiedName.parse("my.schema.orders")


def test_qualified_name_orders_and_hashes():
    names = [QualifiedName("public", "b"), QualifiedName("a", "z"), QualifiedName("public", "a")]
    assert sorted(names)[0] == QualifiedName("a", "z")
    assert len({QualifiedName("s", "t"), QualifiedName.parse('"s"."t"')}) == 1


# --- finding and loading the file --------------------------------------------------------

def test_resolve_config_path():
    assert resolve_config_path("x.yaml", {"REPL_CONFIG": "env.yaml"}) == Path("x.yaml")
    assert resolve_config_path(None, {"REPL_CONFIG": "env.yaml"}) == Path("env.yaml")
    assert resolve_config_path(None, {}) == Path("repl.yaml")
    assert resolve_config_path(None, {"REPL_CONFIG": ""}) == Path("repl.yaml")


def test_load_config(tmp_path):
    path = tmp_path / "repl.yaml"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    assert isinstance(load_config(path, ENV), Config)


def test_load_config_uses_process_environment(tmp_path, monkeypatch):
    path = tmp_path / "repl.yaml"
    path.write_text(minimal().replace("host=src", "${SRC_DSN_FOR_TEST}"), encoding="utf-8")
    monkeypatch.setenv("SRC_DSN_FOR_TEST", "host=from-env")
    assert load_config(path).source.dsn == "host=from-env"


def test_load_config_reports_file_in_yaml_errors(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("version: [1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems[0].startswith(f"{path}:")


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "missing.yaml", "not found"),
    (lambda p: p, "cannot read"),
    (lambda p: (p / "latin1.yaml").write_bytes(b"name: \xe9\n") and p / "latin1.yaml",
     "not UTF-8"),
])
def test_load_config_unreadable(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    [message] = info.value.problems
    assert message.startswith(str(path)) and words in message


def test_source_exclude_lists_tables_that_stay_in_production():
    config = parse_config("""
version: 1
source: {dsn: x, exclude: [public.audit, '"Odd.Schema".t']}
targets: {dev: {dsn: y, tables: {public.t: {columns: all}}}}""", {})
    assert config.source.exclude == (QualifiedName("public", "audit"),
                                     QualifiedName("Odd.Schema", "t"))
    for exclude, message in (
            ("[public.t]", "source.exclude[0]: table public.t is configured for target dev; "
                           "exclude it or replicate it"),
            ("[public.a, public.a]", "source.exclude[1]: table public.a is listed twice"),
            ("public.a", "source.exclude: expected a list of table names, got a string")):
        with pytest.raises(ConfigError) as caught:
            parse_config(f"""
version: 1
source: {{dsn: x, exclude: {exclude}}}
targets: {{dev: {{dsn: y, tables: {{public.t: {{columns: all}}}}}}}}""", {})
        assert caught.value.problems == [message]
