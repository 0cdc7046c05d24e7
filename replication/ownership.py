"""Whose objects these are, when names are not enough.

Names are repl's only link between a config and its objects: `<name>_<target>` for the
slot and subscription, `<name>_<target>_<operations>` for publications, schema `repl` on
a target. Two configs can make the same names: two teams with the default `name` and a
target `dev` each, replicating one production database into two staging databases;
`name: repl` with a target `eu_dev` beside `name: repl_eu` with a target `dev`. Each
target database therefore records, at its first setup, the config and target it serves
and a random id (repl.owner), and the publications made for it carry that in their
comment (Owner.marker). A config whose names are taken by another's objects is refused.
"""

from __future__ import annotations

from . import slots
from .catalog import SourceCatalog, TargetCatalog
from .config import Config
from .migrations import newer_revision
from .model import Owner, Publication
from .names import owns_publication, subscription_name
from .problems import REPL_SCHEMA, Problem, where
from .records import STATE_TABLES


def theirs_marker(marker: str | None, owner: Owner | None) -> bool:
    """Whether a publication named like one of a target's is another target database's:
    it is marked, and not with the marker of `owner` (the target database's record)."""
    return marker is not None and Owner.of_marker(marker) is not None \
        and (owner is None or marker != owner.marker)


def theirs(pub: Publication, owner: Owner | None) -> bool:
    return theirs_marker(pub.marker, owner)


def describe(pub: Publication) -> str:
    found = Owner.of_marker(pub.marker or "")
    if found is None:
        return "someone else (its comment is not repl's)"
    return f"config {found[0]}, target {found[1]}, in another target database"


def check_ownership(config: Config, source: SourceCatalog,
                    targets: dict[str, TargetCatalog]) -> list[Problem]:
    out = []
    for name, cat in targets.items():
        owner = cat.owner
        if owner is not None and (owner.config, owner.target) != (config.name, name):
            out.append(Problem(
                "error", where(name),
                f"this database is the target {owner.target} of another repl config (name "
                f"{owner.config}); a database is the target of one config and target only, "
                "as repl keeps its state in its schema repl: give this target another "
                "database, or first tear that target down with the config that names it "
                "(also when it is this config's target under an earlier name)",
                kind=REPL_SCHEMA))
            continue
        revision = cat.schema_revision
        if revision is not None and (newer_revision(revision)
                                     or int(revision) < int(STATE_TABLES["owner"])):
            continue  # no record to judge by: one is made (and the marks set) by setup
        for pub_name, pub in sorted(source.publications.items()):
            if owns_publication(config.name, name, pub_name) and theirs(pub, owner):
                out.append(Problem(
                    "error", where(name),
                    f"publication {pub_name} on the source belongs to {describe(pub)}: "
                    "another config uses the same names as this one (or this target's dsn "
                    "moved to another database while the first one still subscribes); give "
                    "this config another `name`, or tear the other target down first"
                    + _leftover_hint(config.name, name, pub_name, pub, owner)))
    return out


def another_configs(config_name: str, pub: Publication) -> bool:
    """Whether the publication's comment names another config than `config_name`."""
    found = Owner.of_marker(pub.marker or "")
    return found is not None and found[0] != config_name


def slot_of_another_config(config_name: str, slot: str, source: SourceCatalog) -> bool:
    """Whether a slot named like one of this config's goes with publications another
    config marked (a slot has no comment; its publications share its name)."""
    return any(another_configs(config_name, pub) for name, pub in source.publications.items()
               if name.startswith(f"{slot}_") and owns_publication(
                   config_name, slot.removeprefix(f"{config_name}_"), name))


def _leftover_hint(config_name: str, target: str, pub_name: str, pub: Publication,
                   owner: Owner | None) -> str:
    """What to do when the marked publication is this target's own, from a database that
    lost its record (a teardown while the source was unreachable, a re-created target
    database): repl cannot tell that from another team's, so it says how to drop it."""
    found = Owner.of_marker(pub.marker or "")
    if owner is not None or found is None or found[:2] != (config_name, target):
        return ""
    slot = subscription_name(config_name, target)
    return (f". If no other database subscribes to it (a leftover of this target's own, "
            f"after a teardown while the source was unreachable or a re-created target "
            f"database), drop it on the source: DROP PUBLICATION {pub_name}; and, if no "
            f"subscriber uses it, {slots.drop_by_hand(slot)}")
