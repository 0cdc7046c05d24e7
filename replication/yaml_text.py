"""repl.yaml as text, with comments, for `repl init` (PyYAML writes no comments).

Every name goes through `scalar`: plain when YAML reads it back as the same string
(`users`, `public.users`), else double-quoted with YAML's escapes, so that a name with
dots, quotes, spaces, upper case, `#`, `: `, or a word YAML 1.1 reads as a boolean or
null (`on`, `no`, `null`) reads back as the catalog spells it. Comments never hold a
line break, whatever a name contains. init_config reads the text back before writing.
"""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .init_config import Draft, TableDraft, TargetDraft

WIDTH = 92
COMMENT_COLUMN = 40  # inline comments start here when the line is shorter

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
# Plain words that YAML 1.1 (PyYAML) reads as booleans or null, in any case.
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"}
# What PyYAML takes as itself in a double-quoted scalar; everything else is escaped
# (U+2028 and U+2029 are line breaks to YAML, U+FEFF a byte order mark).
_PRINTABLE = re.compile("[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
                        "\U00010000-\U0010ffff]")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r"}

HEADER = """\
Written by `repl init` from {source}.

Every column of every table is classified: replicated (columns), kept in production
(exclude) or masked (mask). A column that looks personal, by its name, its type or a
sample of its values, is masked on a masked target and excluded on a filtered one; its
comment says which rule flagged it (never a value). Detection is a start, not a
guarantee: read each table, then run `repl check --strict`."""


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if _PRINTABLE.fullmatch(char):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def scalar(text: str) -> str:
    """A string as a YAML scalar that reads back as exactly `text`: plain, else in single
    quotes (as the SPEC writes '"my.schema".orders'), else double-quoted with escapes
    when a character needs one."""
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    if text and all(_PRINTABLE.fullmatch(c) for c in text):
        return "'" + text.replace("'", "''") + "'"
    return '"' + "".join(_escape(c) for c in text) + '"'


def flow(value: Any) -> str:
    """A strategy in YAML's flow style, as a person writes it: `{date_trunc: year}`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    return "'null'" if value == "null" else str(value)


def comment_text(text: str) -> str:
    """Text for a comment: one line, whatever names it quotes."""
    return "".join(c if _PRINTABLE.fullmatch(c) else _escape(c) for c in text)


def comment_block(text: str, indent: int) -> list[str]:
    prefix = " " * indent + "# "
    lines: list[str] = []
    for paragraph in text.split("\n"):
        wrapped = textwrap.wrap(comment_text(paragraph), WIDTH - len(prefix),
                                break_long_words=False, break_on_hyphens=False)
        lines += [(prefix + line).rstrip() for line in wrapped] or [prefix.rstrip()]
    return lines


def with_comment(line: str, note: str | None) -> str:
    if not note:
        return line
    return f"{line.ljust(COMMENT_COLUMN - 2)}  # {comment_text(note)}"


def flow_list(indent: int, key: str, items: list[str] | tuple[str, ...]) -> list[str]:
    """`key: [a, b, c]`, wrapped under its first item when longer than WIDTH."""
    prefix = " " * indent + f"{key}: ["
    lines, current = [], prefix
    for i, item in enumerate(items):
        piece = scalar(item) + ("]" if i == len(items) - 1 else ",")
        if current != prefix and len(current) + 1 + len(piece) > WIDTH:
            lines.append(current)
            current = " " * len(prefix)
        current += ("" if current.endswith(("[", " ")) else " ") + piece
    return lines + [current]


def _table(table: TableDraft) -> list[str]:
    lines = [with_comment(f"      {scalar(str(table.relation))}:", table.note)]
    lines += flow_list(8, "columns", table.columns)
    if table.exclude:
        lines.append("        exclude:")
        lines += [with_comment(f"          - {scalar(c)}", why) for c, why in table.exclude]
    if table.mask:
        lines.append("        mask:")
        lines += [with_comment(f"          {scalar(c)}: {flow(value)}", why)
                  for c, value, _, why in table.mask]
    if table.insert_only:
        lines += comment_block(table.insert_only, 8)
        lines.append("        operations: [insert]")
    return lines


def _target(target: TargetDraft, kinds: dict[str, str]) -> list[str]:
    spec = target.spec
    lines = [with_comment(f"  {spec.name}:", f"{spec.kind}: {kinds[spec.kind]}"),
             f"    dsn: ${{{spec.variable}}}",
             with_comment("    # roles:", "NOLOGIN roles that may read this target's tables"),
             f"    #   {'developer' if spec.kind == 'masked' else 'analyst'}: read",
             "    tables:"]
    for table in target.tables:
        lines += _table(table)
    for relation, why in target.left_out:
        lines += comment_block(f"Left out: {relation}: {why}.", 6)
    return lines


def render(draft: Draft, source_variable: str, kinds: dict[str, str]) -> str:
    lines = comment_block(HEADER.format(source=draft.source), 0)
    lines += ["version: 1"]
    if draft.name != "repl":
        lines.append(with_comment(f"name: {draft.name}", "another database of the source's "
                                  "cluster has repl's slots of these targets' names"))
    lines += [
        "",
        "source:",
        "  # A placeholder, not the DSN given to repl init: no password is written to a file.",
        f"  dsn: ${{{source_variable}}}",
    ]
    if kept := draft.kept_in_production:
        lines += [with_comment("  exclude:", "tables that stay in production")]
        for relation, why in kept.items():
            lines += comment_block(why[0].upper() + why[1:] + ".", 4)
            lines.append(f"    - {scalar(str(relation))}")
    lines += [
        "",
        "# masking:",
        "#   secret: ${REPL_MASK_SECRET}   # the same masked values in every target; without",
        "#                                 # it, each masked target keeps a key of its own",
        "",
        "targets:",
    ]
    for i, target in enumerate(draft.targets):
        lines += ([""] if i else []) + _target(target, kinds)
    return "\n".join(lines) + "\n"
