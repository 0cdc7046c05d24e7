"""The planner as a table: (desired, actual) pairs of every object kind, and the steps they
make, in order. No server: states are built as the catalog readers would build them.

Each case starts from a converged target (the plan is empty) and changes one thing on
one side; the expected steps are (database, kind, summary) triples.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from replication.config import MaskSpec
from replication.model import (
    Column,
    Owner,
    Publication,
    PublishedTable,
    RelationSync,
    Role,
    Slot,
    Subscription,
    TargetState,
    TargetTable,
    UserType,
)
from replication.names import QualifiedName
from replication.plan import indexes as planned_indexes
from replication.plan import plan_target
from replication.plan.diff import TargetDiff
from replication.plan.sequences import ahead_of, is_ahead
from replication.snapshot_copy import CopyOptions
from replication.state import torn_down
from replication.table_model import GeneratedColumn, Index, Sequence

USERS = QualifiedName("public", "users")
EVENTS = QualifiedName("sales", "events")
ALL = frozenset({"insert", "update", "delete", "truncate"})
OWNER = Owner("repl", "dev", "0d6e5c7a")
KEYS = (b"i" * 64, b"o" * 64, "config")
BODY = "\nBEGIN\n    NEW.email := NULL;\n    RETURN NEW;\nEND\n"


EMAIL_INDEX = Index("repl_users_email_idx_0123456789", "USING btree (email)", False,
                    "users_email_idx")
KIND_UPPER = GeneratedColumn("kind_upper", "text", "upper(kind)", "s", ("kind",))
GUARD = "\nBEGIN\n    RAISE EXCEPTION 'read-only';\nEND\n"


def events_seq(**kw) -> Sequence:
    base = dict(name=QualifiedName("sales", "events_id_seq"), column="id", identity="d",
                type="bigint", start=1, increment=1, minimum=1, maximum=2**63 - 1, cache=1,
                cycle=False, last_value=100)
    return Sequence(**{**base, **kw})


def users(**kw) -> TargetTable:
    base = dict(relation=USERS, columns=(Column("id", "integer", True), Column("email", "text")),
                key=("id",), mask_function=BODY, mask_trigger="A",
                masks=(("email", MaskSpec("null")),), indexes=(EMAIL_INDEX,), read_only="O")
    return TargetTable(**{**base, **kw})


def events(**kw) -> TargetTable:
    base = dict(relation=EVENTS, columns=(Column("id", "bigint", True), Column("kind", "text")),
                key=("id",), generated=(KIND_UPPER,), defaults=(("kind", "'view'::text"),),
                sequences=(events_seq(),), read_only="O")
    return TargetTable(**{**base, **kw})


def pub(name="repl_dev_iudt", ops=ALL, entries=None) -> Publication:
    entries = entries if entries is not None else (
        PublishedTable(USERS, ("id", "email"), None),
        PublishedTable(EVENTS, ("id", "kind"), "(kind <> 'debug'::text)"))
    return Publication(name, ops, tuple(entries), marker=OWNER.marker)


def sub(**kw) -> Subscription:
    base = dict(name="repl_dev", slot_name="repl_dev", publications=frozenset({"repl_dev_iudt"}),
                enabled=True, conninfo="host=prod password=pw", oid=16400, worker_pid=42)
    return Subscription(**{**base, **kw})


def slot(**kw) -> Slot:
    base = dict(name="repl_dev", plugin="pgoutput", active=True, wal_status="reserved",
                safe_wal_size=None, retained_bytes=0, lag_bytes=0, replay_lag_seconds=None)
    return Slot(**{**base, **kw})


ROLE = Role("analyst", readable=frozenset({USERS, EVENTS}), schemas=frozenset({"public", "sales"}))
MOOD = UserType(QualifiedName("public", "mood"), "enum", labels=("sad", "ok", "happy"),
                spelled="public.mood", source_oid=16390)
FEELING = replace(MOOD, name=QualifiedName("public", "feeling"), spelled="public.feeling")


def events_of(type_name: str) -> TargetTable:
    return events(columns=(Column("id", "bigint", True), Column("kind", type_name)))


def converged() -> tuple[TargetState, TargetState]:
    want = TargetState(
        "dev", (pub(),), sub(), (users(), events()), types=(MOOD,), schema_revision="0006",
        mask_keys=KEYS,
        masking_version="v1", roles=(ROLE,), managed_roles=frozenset({"analyst"}), owner=OWNER,
        guard_function=GUARD, estimated_rows={USERS: 20, EVENTS: 100})
    have = replace(want, subscription=sub(table_states=(RelationSync(USERS, "r"),
                                                        RelationSync(EVENTS, "r"))),
                   slot=slot())
    return want, have


# A new target (or one whose subscription cannot stream) is copied from a snapshot: its
# slot is made anew with it; `--table-sync` leaves the copy to PostgreSQL.
SNAPSHOT_COPY = ("dev", "snapshot_copy", "copy 2 table(s) from a snapshot of the source, "
                                         "then create subscription repl_dev on its slot")
REMADE_SLOT = ("source", "drop_slot", "drop replication slot repl_dev: a new one is made with "
                                      "the snapshot the tables are copied from")
TABLE_SYNC = CopyOptions(table_sync=True)


def steps(want: TargetState, have: TargetState, schemas=("public", "sales"), **kw):
    plan = plan_target(want, have, set(schemas), **kw)
    return [(s.database, s.kind, s.summary) for s in plan.steps]


def test_converged_target_plans_nothing():
    want, have = converged()
    assert steps(want, have) == []


def W(**kw):  # noqa: N802 - a change to the desired side
    return lambda want, have: (replace(want, **kw), have)


def H(**kw):  # noqa: N802 - a change to the actual side
    return lambda want, have: (want, replace(have, **kw))


FORGET = [("source", "await_slot", "wait until repl_dev has applied what was sent before"),
          ("dev", "sql", "forget the tables removed from the publications")]
REFRESH = ("dev", "sql", "refresh the subscription: copy new and changed tables")
# A table copied again loses repl's indexes until its copy is done.
SET_ASIDE = ("dev", "sql", "drop repl's indexes on public.users until its copy is done")
# A subscription made anew copies every table: each is emptied, a masked one masked first.
RECOPY_ALL = [SET_ASIDE, ("dev", "sql", "empty table public.users before its copy"),
              ("dev", "sql", "masking trigger on public.users"),
              ("dev", "sql", "empty table sales.events before its copy")]
DEFINITIONS = ("dev", "sql", "sequences, defaults and generated columns of sales.events as "
                             "production's")

CASES = {
    # --- target schemas and repl's own schema
    "schema missing on the target": (
        lambda w, h: (w, h), {"schemas": ("public",)},
        [("dev", "sql", "create schema sales")]),
    "repl schema behind": (
        H(schema_revision="0005"), {},
        [("dev", "migrate", "migrate the repl schema to revision 0006")]),
    "owner not recorded": (
        H(owner=None), {},
        [("dev", "sql", "record this database as target dev of config repl")]),
    # --- tables
    "target table missing": (
        H(tables=(users(),)), {},
        [("dev", "sql", "create table sales.events"),
         ("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"), *FORGET,
         DEFINITIONS, ("dev", "sql", "read-only guard on sales.events"),
         ("source", "sql", "add 1 table(s) to publication repl_dev_iudt"), REFRESH]),
    "target table differs": (
        H(tables=(users(), events(columns=(Column("id", "bigint", True),)))), {},
        [("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"), *FORGET,
         ("dev", "sql", "empty table sales.events before its copy"),
         ("source", "sql", "add 1 table(s) to publication repl_dev_iudt"), REFRESH]),
    # --- types
    "type missing on the target": (
        H(types=()), {},
        [("dev", "sql", "create enum type public.mood")]),
    "type made on the target with production's structure, not recorded": (
        H(types=(replace(MOOD, source_oid=None),)), {},
        [("dev", "sql", "record enum type public.mood, which has production's structure, "
                        "as production's")]),
    "enum label added on production": (
        W(types=(replace(MOOD, labels=("sad", "ok", "ecstatic", "happy")),)), {},
        [("dev", "sql", "bring enum type public.mood in step with production: "
                        "add label(s) 'ecstatic'")]),
    "type renamed on production: renamed, no table copied": (
        lambda w, h: (replace(w, types=(FEELING,), tables=(users(), events_of("public.feeling"))),
                      replace(h, tables=(users(), events_of("public.mood")))), {},
        [("dev", "sql", "rename enum type public.mood to public.feeling, as production did")]),
    "enum label renamed on production: no step (check refuses it)": (
        W(types=(replace(MOOD, labels=("blue", "ok", "happy")),)), {}, []),
    "type of that name not made by repl and different: no step (check refuses it)": (
        H(types=(replace(MOOD, labels=("sad",), source_oid=None),)), {}, []),
    # --- masking
    "masking library changed": (
        H(masking_version="v0"), {},
        [("dev", "install_masking", "install the masking functions and the masking key "
                                    "(from the config)"),
         ("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"), *FORGET,
         SET_ASIDE, ("dev", "sql", "empty table public.users before its copy"),
         ("dev", "sql", "masking trigger on public.users"),
         ("source", "sql", "add 1 table(s) to publication repl_dev_iudt"), REFRESH]),
    "masking trigger disabled": (
        H(tables=(users(mask_trigger="D"), events())), {},
        [("dev", "sql", "hold back changes to public.users until it is copied again"),
         ("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"), *FORGET,
         SET_ASIDE, ("dev", "sql", "empty table public.users before its copy"),
         ("dev", "sql", "masking trigger on public.users"),
         ("source", "sql", "add 1 table(s) to publication repl_dev_iudt"), REFRESH]),
    "mask removed from the config": (
        W(tables=(users(mask_function=None, mask_trigger=None, masks=()), events())), {},
        [("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"), *FORGET,
         SET_ASIDE, ("dev", "sql", "empty table public.users before its copy"),
         ("dev", "sql", "drop the masking trigger of public.users"),
         ("source", "sql", "add 1 table(s) to publication repl_dev_iudt"), REFRESH]),
    # --- reader roles
    "reader role missing": (
        H(roles=(), managed_roles=frozenset()), {},
        [("dev", "sql", "reader role analyst")]),
    "reader role no longer configured": (
        W(roles=(), managed_roles=frozenset()), {},
        [("dev", "sql", "revoke the grants of role analyst, no longer configured")]),
    # --- publications
    "publication missing (what DROP COLUMN ... CASCADE does)": (
        H(publications=()), {},
        [*FORGET, *RECOPY_ALL, ("source", "sql", "create publication repl_dev_iudt"), REFRESH]),
    "publication unmarked": (
        H(publications=(replace(pub(), marker=None),)), {},
        [("source", "sql", "mark publication repl_dev_iudt as this target's")]),
    "row filter changed": (
        H(publications=(pub(entries=(PublishedTable(USERS, ("id", "email"), None),
                                     PublishedTable(EVENTS, ("id", "kind"), None))),)), {},
        [("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"), *FORGET,
         ("dev", "sql", "empty table sales.events before its copy"),
         ("source", "sql", "add 1 table(s) to publication repl_dev_iudt"), REFRESH]),
    "operations changed": (
        W(publications=(pub(entries=(PublishedTable(USERS, ("id", "email"), None),)),
                        pub("repl_dev_i", frozenset({"insert"}),
                            (PublishedTable(EVENTS, ("id", "kind"), "(kind <> 'debug'::text)"),
                             ))),
          subscription=sub(publications=frozenset({"repl_dev_iudt", "repl_dev_i"}))), {},
        [("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"), *FORGET,
         ("dev", "sql", "empty table sales.events before its copy"),
         ("source", "sql", "create publication repl_dev_i"),
         ("source", "await_slot", "wait until repl_dev has passed the new publications"),
         ("dev", "sql", "set the subscription's publications"), REFRESH]),
    "publication no longer used": (
        H(publications=(pub(), pub("repl_dev_i", frozenset({"insert"}), ()))), {},
        [("source", "sql", "drop publication repl_dev_i")]),
    # --- the slot
    "slot lost": (
        H(slot=slot(wal_status="lost", active=False)), {},
        [("dev", "sql", "drop the subscription whose slot is lost (it is recreated below)"),
         *RECOPY_ALL,
         ("source", "drop_slot", "drop replication slot repl_dev, invalidated (wal_status "
                                 "lost): a new one is made with the snapshot the tables are "
                                 "copied from"), SNAPSHOT_COPY]),
    "slot lost (table sync)": (
        H(slot=slot(wal_status="lost", active=False)), {"copy": TABLE_SYNC},
        [("dev", "sql", "drop the subscription whose slot is lost (it is recreated below)"),
         *RECOPY_ALL,
         ("source", "drop_slot", "drop replication slot repl_dev, invalidated "
                                 "(wal_status lost)"),
         ("source", "sql", "create replication slot repl_dev"),
         ("dev", "sql", "create subscription repl_dev")]),
    "slot missing": (
        H(slot=None), {},
        [("dev", "sql", "drop the subscription whose slot is missing (it is recreated below)"),
         *RECOPY_ALL, SNAPSHOT_COPY]),
    "slot missing (table sync)": (
        H(slot=None), {"copy": TABLE_SYNC},
        [("dev", "sql", "drop the subscription whose slot is missing (it is recreated below)"),
         *RECOPY_ALL, ("source", "sql", "create replication slot repl_dev"),
         ("dev", "sql", "create subscription repl_dev")]),
    # --- the subscription
    "subscription missing": (
        H(subscription=None), {}, [*RECOPY_ALL, REMADE_SLOT, SNAPSHOT_COPY]),
    "subscription missing (table sync)": (
        H(subscription=None), {"copy": TABLE_SYNC},
        [*RECOPY_ALL, ("dev", "sql", "create subscription repl_dev")]),
    "subscription detached from its slot": (
        H(subscription=sub(slot_name=None)), {},
        [("dev", "sql", "drop the subscription whose slot is detached (it is recreated below)"),
         *RECOPY_ALL, REMADE_SLOT, SNAPSHOT_COPY]),
    "subscription disabled": (
        H(subscription=sub(enabled=False, table_states=(RelationSync(USERS, "r"),
                                                        RelationSync(EVENTS, "r")))), {},
        [("dev", "sql", "enable the subscription")]),
    "connection changed": (
        W(subscription=sub(conninfo="host=prod2 password=pw")), {},
        [("dev", "sql", "change the subscription's connection to the source")]),
    "disable_on_error changed": (
        W(subscription=sub(disable_on_error=True)), {},
        [("dev", "sql", "set disable_on_error = true")]),
    "table not copied yet": (
        H(subscription=sub(table_states=(RelationSync(USERS, "r"),))), {},
        [("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"),
         ("source", "await_slot", "wait until repl_dev has applied what was sent before"),
         ("dev", "sql", "forget the tables removed from the publications"),
         ("dev", "sql", "empty table sales.events before its copy"),
         ("source", "sql", "add 1 table(s) to publication repl_dev_iudt"), REFRESH]),
    "resync requested": (
        lambda w, h: (w, h), {"resync": frozenset({USERS})},
        [("source", "sql", "remove 1 table(s) from publication repl_dev_iudt"), *FORGET,
         SET_ASIDE, ("dev", "sql", "empty table public.users before its copy"),
         ("dev", "sql", "masking trigger on public.users"),
         ("source", "sql", "add 1 table(s) to publication repl_dev_iudt"), REFRESH]),
    # --- production's indexes: built once the table is copied, never during its copy
    "index missing on a copied table": (
        H(tables=(users(indexes=()), events())), {},
        [("dev", "sql", "build 1 index(es) on public.users after production's "
                        "(users_email_idx)")]),
    "index missing while the table copies (status: it waits for the copy)": (
        lambda w, h: (w, replace(h, tables=(users(indexes=()), events()),
                                 subscription=sub(table_states=(RelationSync(USERS, "d"),
                                                                RelationSync(EVENTS, "r"))))),
        {}, []),
    "index production no longer has": (
        W(tables=(users(indexes=()), events())), {},
        [("dev", "sql", "drop 1 index(es) on public.users that production's definition or "
                        "the config no longer gives it")]),
    # --- sequences, defaults, generated columns: no copy
    "generated column missing": (H(tables=(users(), events(generated=()))), {}, [DEFINITIONS]),
    "generated column's expression changed on production": (
        W(tables=(users(), events(generated=(replace(KIND_UPPER, expression="lower(kind)"),)))),
        {}, [DEFINITIONS]),
    "default missing": (H(tables=(users(), events(defaults=()))), {}, [DEFINITIONS]),
    "sequence missing": (H(tables=(users(), events(sequences=()))), {}, [DEFINITIONS]),
    "sequence's increment changed on production": (
        W(tables=(users(), events(sequences=(events_seq(increment=2),)))), {}, [DEFINITIONS]),
    # --- the read-only guard
    "read-only guard disabled": (
        H(tables=(users(read_only="D"), events())), {},
        [("dev", "sql", "read-only guard on public.users")]),
    "read-only guard's function changed": (
        H(guard_function="old"), {}, [("dev", "sql", "read-only guard function")]),
    "read_only: false (the target's sequence is not ahead)": (
        W(read_only=False, guard_function=None,
          tables=(users(read_only=None), events(read_only=None))), {},
        [("dev", "sql", "move 1 sequence(s) ahead of production's (read_only: false)"),
         ("dev", "sql", "remove the read-only guard from public.users, sales.events")]),
    "read_only: false, the target's sequence ahead": (
        lambda w, h: (replace(w, read_only=False, guard_function=None,
                              tables=(users(read_only=None), events(read_only=None))),
                      replace(h, tables=(users(read_only=None), events(
                          read_only=None, sequences=(events_seq(last_value=2**62),))))),
        {}, []),
}


@pytest.mark.parametrize("change, options, expected", CASES.values(), ids=CASES.keys())
def test_one_change_plans_these_steps(change, options, expected):
    want, have = change(*converged())
    schemas = options.pop("schemas", ("public", "sales"))
    assert steps(want, have, schemas, **options) == expected


TEARDOWN = [
    ("dev", "sql", "drop subscription repl_dev"),
    ("dev", "sql", "drop the masking trigger of public.users"),
    ("source", "drop_slot", "drop replication slot repl_dev"),
    ("source", "drop_slot", "drop replication slot pg_16400_sync_16385_7300000000000000001"),
    ("source", "sql", "drop publication repl_dev_iudt"),
    ("dev", "sql", "drop repl's indexes on public.users"),
    ("dev", "sql", "remove the read-only guard from public.users, sales.events"),
    ("dev", "sql", "drop repl's schema (its functions and state)"),
]


def test_teardown_is_the_plan_against_an_empty_desired_state():
    _, have = converged()
    have = replace(have, sync_slots=("pg_16400_sync_16385_7300000000000000001",))
    assert steps(torn_down(have, drop_tables=False, keep_schema=False), have) == TEARDOWN
    dropped = steps(torn_down(have, drop_tables=True, keep_schema=False), have)
    assert ("dev", "sql", "drop table public.users") in dropped
    assert ("dev", "sql", "drop table sales.events") in dropped
    assert not any("masking trigger" in summary or "index" in summary or "guard" in summary
                   for _, _, summary in dropped)
    # Source out of reach: nothing of it known, repl's schema kept (its record is needed).
    away = replace(have, publications=(), slot=None, sync_slots=())
    assert steps(torn_down(away, drop_tables=False, keep_schema=True), away) == [
        ("dev", "sql", "drop subscription repl_dev"),
        ("dev", "sql", "drop the masking trigger of public.users"),
        ("dev", "sql", "drop repl's indexes on public.users"),
        ("dev", "sql", "remove the read-only guard from public.users, sales.events")]
    # Reader roles are cluster-wide: teardown leaves them as they are; types too (tables
    # use them), which TEARDOWN above has no step for.
    assert not any("role" in summary for _, _, summary in dropped)
    # Torn down already: nothing left to do.
    gone = TargetState("dev", (), None, (), roles=have.roles, managed_roles=have.managed_roles)
    assert steps(torn_down(gone, drop_tables=True, keep_schema=False), gone) == []


NEW_TARGET = [
    ("dev", "sql", "create schema sales"),
    ("dev", "migrate", "migrate the repl schema to revision 0006"),
    ("dev", "sql", "record this database as target dev of config repl"),
    ("dev", "sql", "create enum type public.mood"),
    ("dev", "install_masking", "install the masking functions and the masking key "
                               "(from the config)"),
    ("dev", "sql", "create table public.users"),
    ("dev", "sql", "create table sales.events"),
    ("dev", "sql", "masking trigger on public.users"),
    ("dev", "sql", "reader role analyst"),
    DEFINITIONS,
    ("dev", "sql", "read-only guard on public.users, sales.events"),
    ("source", "sql", "create publication repl_dev_iudt"),
]


def test_new_target_plans_every_object_in_order():
    want, _ = converged()
    fresh = TargetState("dev", (), None, ())
    assert steps(want, fresh, ("public",)) == [*NEW_TARGET, SNAPSHOT_COPY]
    assert steps(want, fresh, ("public",), copy=TABLE_SYNC) == [
        *NEW_TARGET, ("source", "sql", "create replication slot repl_dev"),
        ("dev", "sql", "create subscription repl_dev")]
    plan = plan_target(want, fresh, {"public"})
    assert [(c.relation, c.reason) for c in plan.copies] == [(USERS, "initial copy"),
                                                            (EVENTS, "initial copy")]
    install = plan.steps[4]
    assert install.text() == "-- (statements not shown: they store the masking key)"
    create = plan.steps[-1]
    assert "password=pw" in create.statements[0].as_string(None) and "pw" not in create.text()
    assert "copy_data = false" in create.text()
    # Each table as the publication shapes it, its indexes built once it is copied; binary
    # only where every column has a built-in type on the target (public.mood is not).
    copied = {t.relation: t for t in create.tables}
    assert [(c.relation, c.columns, c.row_filter) for c in create.tables] == [
        (e.relation, e.columns, e.row_filter) for e in want.publications[0].tables]
    assert [c.binary for c in create.tables] == [
        all("." not in c.type for c in want.table(rel).columns) for rel in copied]
    assert [len(c.indexes) for c in create.tables] == [
        2 * len(want.table(rel).indexes) for rel in copied]


def numbered(table: TargetTable, oid: int) -> TargetTable:
    """The table with production's identity: its source OID, each column's attnum."""
    return replace(table, source_oid=oid, columns=tuple(
        replace(c, attnum=i) for i, c in enumerate(table.columns, 1)))


def test_renames_on_production_are_followed_without_a_copy():
    want, have = converged()
    plain = replace(users(), mask_function=None, mask_trigger=None, masks=())
    have = replace(have, tables=(numbered(plain, 16401), numbered(events(), 16402)))
    # Column email renamed to mail (attnum 2), table sales.events moved to app.events.
    moved = QualifiedName("app", "events")
    renamed_users = numbered(replace(plain, columns=(
        Column("id", "integer", True), Column("mail", "text"))), 16401)
    # Its identity sequence moved with it (SET SCHEMA moves what the table owns).
    moved_events = replace(numbered(events(), 16402), relation=moved, sequences=(
        events_seq(name=QualifiedName("app", "events_id_seq")),))
    want = replace(want, tables=(renamed_users, moved_events),
                   publications=(pub(entries=(PublishedTable(USERS, ("id", "mail"), None),
                                              PublishedTable(moved, ("id", "kind"),
                                                             "(kind <> 'debug'::text)"))),),
                   mask_keys=None, masking_version=None,
                   roles=(replace(ROLE, readable=frozenset({USERS, moved}),
                                  schemas=frozenset({"public", "app"})),))
    have = replace(have, publications=want.publications, mask_keys=None, masking_version=None,
                   subscription=sub(table_states=(RelationSync(USERS, "r"),
                                                  RelationSync(EVENTS, "r"))))
    plan = plan_target(want, have, {"public", "sales", "app"})
    assert [(s.database, s.kind, s.summary) for s in plan.steps] == [
        ("dev", "follow_rename", "rename, as production did, column email to mail of "
                                 "public.users (no copy)"),
        ("dev", "follow_rename", "rename, as production did, table sales.events to "
                                 "app.events (no copy)"),
        # SELECT follows the table; its new schema needs USAGE (and no re-grant of SELECT).
        ("dev", "sql", "reader role analyst"),
    ]
    assert [s.as_string(None) for s in plan.steps[2].statements] == [
        'GRANT USAGE ON SCHEMA "app" TO "analyst"']
    assert plan.copies == []
    assert [s.as_string(None) for s in plan.steps[0].statements] == [
        'ALTER TABLE "public"."users" RENAME COLUMN "email" TO "mail"']
    assert [s.as_string(None) for s in plan.steps[1].statements] == [
        'ALTER TABLE "sales"."events" SET SCHEMA "app"']


def test_a_column_left_out_of_the_config_is_released_without_a_copy():
    want, have = converged()
    plain = replace(users(), mask_function=None, mask_trigger=None, masks=())
    have = replace(have, tables=(replace(plain, columns=(
        Column("id", "integer", True), Column("email", "text", True))), events()))
    narrow = replace(plain, columns=(Column("id", "integer", True),))
    entries = (PublishedTable(USERS, ("id",), None),
               PublishedTable(EVENTS, ("id", "kind"), "(kind <> 'debug'::text)"))
    want = replace(want, tables=(narrow, events()), publications=(pub(entries=entries),))
    assert steps(want, have) == [
        ("dev", "sql", "keep email of public.users, no longer replicated, nullable"),
        ("source", "sql", "release email of public.users from publication repl_dev_iudt "
                          "(no copy)")]
    assert steps(replace(want, drop_columns=True), have)[2:] == [
        ("source", "await_slot", "wait until repl_dev has applied the changes sent with "
                                 "those columns"),
        ("dev", "sql", "drop email of public.users, no longer replicated")]
    # Released, the target keeps the column: nothing more to do.
    released = replace(have, publications=(pub(entries=entries),), tables=(replace(
        plain, columns=(Column("id", "integer", True), Column("email", "text"))), events()))
    assert steps(want, released) == []
def test_indexes_wait_for_the_copy_of_their_table():
    want, have = converged()
    have = replace(have, tables=(users(indexes=()), events()),
                   subscription=sub(table_states=(RelationSync(USERS, "d"),
                                                  RelationSync(EVENTS, "r"))))
    assert planned_indexes.waiting(TargetDiff(want, have, frozenset({"public", "sales"}))) \
        == {USERS: 1}


def test_sequences_are_kept_halfway_to_the_end_of_their_type():
    production = events_seq(last_value=1000, maximum=2**31 - 1)
    assert ahead_of(production) == 1000 + (2**31 - 1 - 1000) // 2
    assert not is_ahead(events_seq(last_value=1000), production)
    assert is_ahead(events_seq(last_value=ahead_of(production)), production)
    # Never used: the position is the one before the first value.
    assert ahead_of(events_seq(last_value=None, maximum=101)) == 50
    # Counting down: halfway to its minimum.
    down = events_seq(increment=-1, start=-1, minimum=-1001, maximum=-1, last_value=-1)
    assert ahead_of(down) == -501 and is_ahead(events_seq(increment=-1, last_value=-600), down)
