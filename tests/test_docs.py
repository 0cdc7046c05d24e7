"""The documentation (README.md, docs/): short README, no broken link or anchor, every
command of the CLI in the README's table and in docs/commands.md, the README's two
commands real Makefile targets, and no figure that goes stale. No database needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from replication.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//)")


def prose_lines(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def heading_text(raw: str) -> str:
    """The heading as GitHub renders it: code spans keep their text, links their label,
    HTML tags go."""
    text = CODE_SPAN.sub(lambda m: m.group(2), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"<[^>]+>", "", text)


def slug(text: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters, digits,
    `_`, `-` and spaces stay), each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def headings(path: Path) -> list[str]:
    return [heading_text(m.group(2)) for line in prose_lines(path)
            if (m := HEADING.match(line))]


def anchors(path: Path) -> set[str]:
    """Every anchor of a file; a repeated heading gets -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for text in headings(path):
        base = slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    found = []
    for line in prose_lines(path):
        # Code spans may hold brackets and parentheses; a link's label may be one.
        line = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
        found += [t for t in LINK.findall(line) if not EXTERNAL.match(t)]
    return found


def command_names() -> set[str]:
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert names, "no command registered in replication.cli.app"
    return names


def test_slug_follows_githubs_rules():
    assert slug("repl check") == "repl-check"
    assert slug("`status --json`") == "status---json"
    assert slug(heading_text("`status --json`")) == "status---json"
    assert slug("The subscription's password") == "the-subscriptions-password"
    assert slug("DROP COLUMN … CASCADE") == "drop-column--cascade"
    assert slug("Exit codes and `--json`") == "exit-codes-and---json"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_README_LINES, (
        f"README.md has {len(lines)} lines; keep it under {MAX_README_LINES} and move "
        "reference material to docs/")


def test_docs_exist():
    names = {p.name for p in DOCS}
    for wanted in ("configuration.md", "commands.md", "schema-changes.md", "operations.md",
                   "architecture.md", "testing.md"):
        assert wanted in names


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT)}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in "
                          f"{dest.relative_to(ROOT)}")
        elif anchor and dest.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not Markdown")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_doc_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(README)}
    missing = [p.name for p in [*DOCS, ROOT / "bench" / "README.md"] if p not in linked]
    assert not missing, f"README.md links none of: {', '.join(missing)}"


def readme_command_table() -> list[str]:
    """Commands named in the first cell of the README's table rows: | `repl NAME` |."""
    row = re.compile(r"^\|\s*\[?`repl ([a-z][\w-]*)")
    return [m.group(1) for line in prose_lines(README) if (m := row.match(line))]


def test_readme_command_table_is_the_cli():
    table = readme_command_table()
    assert len(table) == len(set(table)), f"a command listed twice: {table}"
    missing = command_names() - set(table)
    assert not missing, f"commands missing from README.md's table: {sorted(missing)}"
    unknown = set(table) - command_names()
    assert not unknown, f"README.md's table lists commands the CLI lacks: {sorted(unknown)}"


def test_every_command_has_a_section_in_commands_md():
    titled = re.compile(r"^repl ([a-z][\w-]*)")
    sections = {m.group(1) for text in headings(ROOT / "docs" / "commands.md")
                if (m := titled.match(text))}
    missing = command_names() - sections
    assert not missing, f"docs/commands.md has no section for: {sorted(missing)}"
    unknown = sections - command_names()
    assert not unknown, f"docs/commands.md documents commands the CLI lacks: {sorted(unknown)}"


def test_readme_two_commands_are_make_targets():
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Two commands\n(.*?)(?=^## )", text, re.M | re.S)
    assert section, "README.md has no '## Two commands' section"
    block = re.search(r"^```\w*\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, "the Two commands section has no code block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", (ROOT / "Makefile").read_text(),
                             re.M))
    assert {"demo", "test"} <= targets, f"Makefile targets: {sorted(targets)}"


STALE = [
    re.compile(r"\b\d[\d,]*\s+tests\b"),                     # "421 tests"
    re.compile(r"\b\d+ passed\b"),                            # pytest's summary
    re.compile(r"\btests? in \d+(\.\d+)?\s*s\b"),               # "N tests in M s"
    re.compile(r"\bsuite\b[^.]*\b\d+(\.\d+)?\s*(s|min|minutes?)\b", re.I),
    re.compile(r"\babout \w+ minutes\b"),                    # "about eight minutes"
]


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stale_figures(page: Path):
    """Test counts and timings live in CI's output, benchmark figures in
    bench/README.md: anywhere else they go stale."""
    found = [m.group(0) for line in page.read_text(encoding="utf-8").splitlines()
             for pattern in STALE if (m := pattern.search(line))]
    assert not found, f"{page.relative_to(ROOT)}: figures that go stale: {found}"


def test_architecture_lists_every_module():
    """docs/architecture.md's module table names every module of replication/, and no
    module that is gone."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("<!-- BEGIN module table", 1)[1].split("<!-- END module table", 1)[0]
    named = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            named |= set(re.findall(r"`([\w/]+\.py)`", row.split("|")[1]))
    package = ROOT / "replication"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if "_data" not in p.parts}
    assert not modules - named, f"not in the module table: {sorted(modules - named)}"
    assert not named - modules, f"in the module table but gone: {sorted(named - modules)}"
