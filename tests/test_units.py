"""The pure pieces, without a server: publication ownership, redaction, plan as data."""

from __future__ import annotations

from psycopg import sql

from replication.config import QualifiedName
from replication.model import (
    Column,
    Publication,
    PublishedTable,
    RelationSync,
    Slot,
    Subscription,
    TargetState,
    TargetTable,
)
from replication.names import owns_publication
from replication.plan import plan_target
from replication.redact import Redactor, redact, redact_conninfo, redact_data


def test_publication_ownership_is_unambiguous():
    assert owns_publication("repl", "dev", "repl_dev_iudt")
    assert owns_publication("repl", "dev", "repl_dev_i")
    assert not owns_publication("repl", "dev", "repl_dev_eu_i")  # target dev_eu's
    assert owns_publication("repl", "dev_eu", "repl_dev_eu_i")
    assert not owns_publication("repl", "dev", "repl_dev_ui")  # letters out of order
    assert not owns_publication("repl", "dev", "repl_dev_")
    assert not owns_publication("repl", "dev", "other_dev_i")


def test_redactor_masks_known_secrets_and_password_shapes():
    r = Redactor()
    r.add("s3cret", None, "")
    text = r("password=s3cret and postgresql://u:hunter2@h/db and password='it''s x' s3cret")
    assert "s3cret" not in text and "hunter2" not in text and "it''s" not in text
    redact.add('x"quoted-unit-secret')  # JSON would escape the quote: redact before encoding
    assert redact_data({"k": ['a x"quoted-unit-secret b']}) == {"k": ["a ******** b"]}
    shown = redact_conninfo("host=h dbname=d user=u password='it\\'s \"x\"'")
    assert "it" not in shown.split("password=")[1] and "host=h" in shown


USERS = QualifiedName("public", "users")


def state(pubs=(), sub=None, tables=(), slot=None) -> TargetState:
    return TargetState("dev", tuple(pubs), sub, tuple(tables), slot=slot, schema_revision="1")


def test_plan_is_data_and_empty_when_converged():
    table = TargetTable(USERS, (Column("id", "integer", True), Column("name", "text")), ("id",))
    pub = Publication("repl_dev_iudt", frozenset({"insert", "update", "delete", "truncate"}),
                      (PublishedTable(USERS, ("id", "name"), None),))
    want = state([pub], Subscription("repl_dev", "repl_dev", frozenset({pub.name}), True,
                                     "host=h password=pw"), [table])
    slot = Slot("repl_dev", "pgoutput", True, "reserved", None, 0, 0, None)
    have = state([pub], Subscription("repl_dev", "repl_dev", frozenset({pub.name}), True, None,
                                      table_states=(RelationSync(USERS, "r"),)), [table], slot)
    assert plan_target(want, have, {"public"}).empty

    fresh = plan_target(want, state(), set())
    kinds = [(s.database, s.summary.split()[0]) for s in fresh.steps]
    # A new target: its tables copied from a snapshot, then the subscription created.
    assert kinds == [("dev", "create"), ("dev", "create"), ("source", "create"),
                     ("dev", "copy")]
    create_sub = fresh.steps[-1]
    assert "password=pw" in create_sub.statements[0].as_string(None)
    assert "pw" not in create_sub.text()  # shown with the password masked
    assert [c.relation for c in fresh.copies] == [USERS]

    resync = plan_target(want, have, {"public"}, resync=frozenset({USERS}))
    summaries = [s.summary for s in resync.steps]
    assert summaries[0].startswith("remove 1 table(s) from publication")
    assert any(s.startswith("empty table public.users") for s in summaries)
    assert summaries[-1].startswith("refresh the subscription")
    assert isinstance(resync.steps[0].statements[0], sql.Composable)


def test_lag_says_what_it_rests_on():
    from replication.slot_health import lag

    def slot(**kw) -> Slot:
        base = dict(name="repl_dev", plugin="pgoutput", active=True, wal_status="reserved",
                    safe_wal_size=None, retained_bytes=10, lag_bytes=5_000_000,
                    replay_lag_seconds=0.04)
        return Slot(**{**base, **kw})

    assert lag(None) == (None, "unknown")
    assert lag(slot(caught_up=True)) == (0.0, "caught up")
    assert lag(slot(lag_bytes=0)) == (0.0, "caught up")
    assert lag(slot(unsent_bytes=0)) == (0.04, "replay_lag")
    # A walsender behind in decoding: its tracker has not timed the backlog yet.
    assert lag(slot(unsent_bytes=1_700_000_000)) == (0.04, "at least")
    assert lag(slot(active=False, replay_lag_seconds=None, inactive_seconds=8.0)) == \
        (8.0, "inactive")
    assert lag(slot(replay_lag_seconds=None)) == (None, "unknown")


def test_head_revision_constant_is_alembics_head():
    """Read-only commands take the schema's newest revision from a constant, so as not to
    import alembic; a new migration must update it."""
    from replication import migrations

    assert migrations.head_revision() == migrations.alembic_head_revision()


def test_read_only_commands_do_not_import_alembic():
    """alembic and SQLAlchemy take ~0.3 s to import: only a migration may load them."""
    import subprocess
    import sys

    probe = ("import sys, replication.cli; "
             "print(sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_table_sync_slots_are_matched_with_the_subscribers_system_identifier():
    """Two target servers can each have a subscription with OID 16400: teardown of one
    must not take the other's table-sync slots."""
    from replication.slots import is_sync_slot, sync_slot_pattern

    ours = "7312345678901234567"
    assert is_sync_slot(f"pg_16400_sync_16384_{ours}", 16400, ours)
    assert not is_sync_slot("pg_16400_sync_16384_7312345678901234568", 16400, ours)
    assert not is_sync_slot(f"pg_164001_sync_16384_{ours}", 16400, ours)
    assert not is_sync_slot(f"pg_16400_sync_16384_{ours}_x", 16400, ours)
    assert sync_slot_pattern(16400, ours) == rf"pg\_16400\_sync\_%\_{ours}"


def test_types_compare_by_structure_and_say_what_setup_can_change():
    from dataclasses import replace

    from replication.model import UserType
    from replication.user_types import as_renamed, compare, respell

    mood = UserType(QualifiedName("public", "mood"), "enum", labels=("a", "c"))
    # Labels production added go before the target label that follows them, or at the end.
    added = compare(replace(mood, labels=("a", "b", "c", "d")), mood)
    assert added.labels == (("b", "c"), ("d", None)) and not added.blocking
    assert added.words() == ["add label(s) 'b', 'd'"]
    for labels, shown in (((("c", "a"), "('c', 'a')")), ((("a", "x"), "('a', 'x')")),
                          ((("a",), "('a')"))):  # reordered, renamed, removed
        refused = compare(replace(mood, labels=labels), mood)
        assert not refused.fixes and refused.blocking == (
            f"labels ('a', 'c') on the target, {shown} on production",)
    home = UserType(QualifiedName("public", "home"), "composite",
                    attributes=(("street", "text"), ("zip", "text")))
    assert compare(replace(home, attributes=(*home.attributes, ("city", "text"))),
                   home).attributes == (("city", "text"),)
    swapped = compare(replace(home, attributes=home.attributes[::-1]), home)
    assert swapped.blocking and not swapped.fixes
    zip_ = UserType(QualifiedName("public", "zip"), "domain", base="text",
                    checks=(("digits", "CHECK ((VALUE ~ '^[0-9]+$'::text))"),))
    changed = compare(replace(zip_, checks=(("digits", "CHECK ((length(VALUE) < 9))"),),
                              default="'0'::text"), zip_)
    assert (changed.drop_checks, changed.add_checks, changed.default) == (
        ("digits",), (("digits", "CHECK ((length(VALUE) < 9))"),), ("'0'::text",))
    assert compare(replace(zip_, base="character varying"), zip_).blocking
    assert compare(replace(zip_, kind="enum", base=None, checks=()), zip_).blocking
    # A renamed type's users read with its new name; a longer name is another type.
    names = {"public.mood": "kinds.feeling"}
    assert respell("public.mood[]", names) == "kinds.feeling[]"
    assert respell("public.mood COLLATE pg_catalog.\"C\"", names) == \
        'kinds.feeling COLLATE pg_catalog."C"'
    assert respell("public.mood2", names) == "public.mood2"
    moods = UserType(QualifiedName("public", "moods"), "domain", base="public.mood[]",
                     default="'{a}'::public.mood[]",
                     checks=(("one", "CHECK ((VALUE <> '{}'::public.mood2[]))"),))
    assert as_renamed(moods, names) == replace(moods, base="kinds.feeling[]",
                                               default="'{a}'::kinds.feeling[]")


def test_snapshot_copy_sizes_and_statements():
    from replication.plan.initial_copy import builtin
    from replication.snapshot_copy import Chunk, TableCopy, parse_size

    assert parse_size("64MB") == 64 * 1024**2 and parse_size("8kB") == 8192
    assert parse_size("1 gb") == 1024**3 and parse_size("4096") == 4096
    for bad in ("", "0MB", "-1MB", "12 parsecs", "1.5GB"):
        try:
            parse_size(bad)
        except ValueError as exc:
            assert "is not a size" in str(exc)
        else:
            raise AssertionError(f"{bad!r} read as a size")
    # Built-in types read the same in binary everywhere; user types are qualified.
    assert builtin("character varying(20)") and builtin("numeric(12,2)") and builtin("text[]")
    assert not builtin("public.mood") and not builtin('"My Schema".t')
    table = TableCopy(QualifiedName("app", "Events"), ("id", "Kind"), "(id > 10)", True, 5)
    chunk = Chunk(table, 3, QualifiedName("app", "events_2026"), 128, None)
    assert chunk.copy_out().as_string(None) == (
        'COPY (SELECT "id", "Kind" FROM ONLY "app"."events_2026" WHERE ((id > 10)) AND '
        "ctid >= '(128,0)'::tid) TO STDOUT (FORMAT binary)")
    assert table.copy_in().as_string(None) == \
        'COPY "app"."Events" ("id", "Kind") FROM STDIN (FORMAT binary)'
    text = TableCopy(QualifiedName("app", "t"), ("id",), None, False, None)
    assert Chunk(text, 0, text.relation, 0, 64).copy_out().as_string(None) == (
        "COPY (SELECT \"id\" FROM ONLY \"app\".\"t\" WHERE ctid >= '(0,0)'::tid AND "
        "ctid < '(64,0)'::tid) TO STDOUT")
