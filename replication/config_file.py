"""The configuration file: finding and reading `repl.yaml`, replacing `${VAR}` from the
environment, and validating it into a `Config`. Problems are collected, not raised one at
a time: `ConfigError` carries one "dotted.path: message" line per problem, and never
echoes a value that came from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import (
    Config,
    Loc,
    PathProblem,
    dsn_passwords,
    kind_of,
    problems_of,
    quoted,
    valid_prefix,
)
from .errors import ConfigError


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader that rejects a key written twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        nodes = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
        keys = [self.construct_object(k, deep=True) for k in nodes]
        for i, key in enumerate(keys):
            if isinstance(key, str | int | float) and key in keys[:i]:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", nodes[i].start_mark)
        return super().construct_mapping(node, deep=deep)


_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def _interpolate(node: Any, env: Mapping[str, str], path: Loc,
                 problems: list[PathProblem], used: set[str]) -> Any:
    """Replaces ${VAR} and ${VAR:-default} in string values (never keys) of the parsed tree,
    so that a value cannot inject YAML structure."""
    if isinstance(node, dict):
        return {k: _interpolate(v, env, path + (k,), problems, used) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, path + (i,), problems, used) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def replace(match: re.Match[str]) -> str:
        variable, default = match.group(1), match.group(2)
        if match.group(0) == "$${":
            return "${"
        value = env.get(variable) if variable else None
        if default is not None and not value:
            return default
        if value is None:
            problems.append((path, f"environment variable {variable} is not set" if variable
                             else "invalid reference: write ${NAME} or ${NAME:-default}"))
            return ""
        used.add(value)
        return value

    return _VARIABLE.sub(replace, node)


def _dotted(path: Loc) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _render(problems: list[PathProblem], substituted: set[str]) -> list[str]:
    lines: list[str] = []
    for path, message in problems:
        # A value taken from the environment may be a password: never echo one back.
        for value in sorted(substituted, key=len, reverse=True):
            message = message.replace(quoted(value), "'***'")
            message = message.replace(value, "***") if len(value) >= 4 else message
        lines.append(f"{_dotted(path)}: {message}")
    return list(dict.fromkeys(lines))


def parse_config(text: str, env: Mapping[str, str], origin: str = "repl.yaml") -> Config:
    """Validates a configuration document; raises ConfigError listing every problem."""
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        raise ConfigError([f"{where}: invalid YAML: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{origin}: invalid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        got = "the file is empty" if raw is None else f"got {kind_of(raw)}"
        raise ConfigError([f"{origin}: expected a mapping of version, source, targets; {got}"])
    problems: list[PathProblem] = []
    substituted: set[str] = set()
    data = _interpolate(raw, env, (), problems, substituted)
    name = data.get("name", "repl")
    context = {"name": name if isinstance(name, str) and valid_prefix(name) else None}
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as exc:
        unset = {path for path, _ in problems}  # already reported; its value is a stand-in
        problems += [p for p in problems_of(exc) if p[0] not in unset]
    if problems:
        raise ConfigError(_render(problems, substituted), secrets=_raw_secrets(data))
    return config


def _raw_secrets(data: dict) -> list[str]:
    """The secrets of a document that did not validate, wherever they are well placed."""
    def get(node: object, *path: str) -> object:
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    targets = get(data, "targets")
    dsns = [get(data, "source", "dsn"), get(data, "source", "subscriber_dsn"),
            *(get(t, "dsn") for t in (targets.values() if isinstance(targets, dict) else ()))]
    found = [p for dsn in dsns if isinstance(dsn, str) for p in dsn_passwords(dsn)]
    secret = get(data, "masking", "secret")
    return found + ([secret] if isinstance(secret, str) and secret else [])


def resolve_config_path(option: str | None, env: Mapping[str, str]) -> Path:
    """--config, else $REPL_CONFIG, else ./repl.yaml."""
    return Path(option or env.get("REPL_CONFIG") or "repl.yaml")


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Reads and validates the file at `path`; env defaults to the process environment."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: configuration file not found "
                           "(pass --config PATH or set REPL_CONFIG)"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: the configuration file is not UTF-8 text"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the configuration file: "
                           f"{exc.strerror or exc}"]) from None
    return parse_config(text, os.environ if env is None else env, origin=str(path))
