"""The test suite's own rules (tests/conftest.py): the `pg(...)` version spec, and that
only tests marked slow build clusters of their own. No server is started."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from replication.cluster import LocalCluster, installations

from conftest import VersionSpec, private_cluster, version_mismatch


@pytest.mark.parametrize(("spec", "inside", "outside"), [
    (">= 16", [16, 17, 18, 19], [15]),
    ("< 18", [15, 16, 17], [18, 19]),
    ("== 15", [15], [16, 18]),
    ("15", [15], [14, 16]),
    ("!= 17", [15, 16, 18], [17]),
    ("> 15", [16, 18], [15]),
    ("<= 16", [15, 16], [17]),
    (">= 15, < 18", [15, 16, 17], [14, 18]),
    ("  >=16 ,<18  ", [16, 17], [15, 18]),
])
def test_version_spec_matches_majors(spec, inside, outside):
    parsed = VersionSpec(spec)
    assert [m for m in inside if m not in parsed] == []
    assert [m for m in outside if m in parsed] == []


def test_version_spec_shows_its_clauses():
    assert str(VersionSpec(">=15,<18")) == ">= 15, < 18"
    assert str(VersionSpec("16")) == "== 16"


@pytest.mark.parametrize("spec", [
    "", "  ", ">=", "16.2", ">= 9.6", "=> 16", "= 16", "~16", ">= 16,", ", < 18",
    ">= 16 < 18", ">= 16; < 18", "sixteen", 16, None,
])
def test_bad_version_specs_raise(spec):
    with pytest.raises(ValueError, match="bad PostgreSQL version spec"):
        VersionSpec(spec)


def marks(*decorators) -> list:
    return [d.mark for d in decorators]


def test_positional_spec_applies_to_every_server():
    every = marks(pytest.mark.pg(">= 16"))
    assert version_mismatch(every, 16, 18) is None
    assert version_mismatch(every, 15, 18) == \
        "needs PostgreSQL >= 16 on the source; this case has source 15, target 18"
    assert version_mismatch(every, 18, 15) == \
        "needs PostgreSQL >= 16 on the target; this case has source 18, target 15"


def test_keyword_spec_applies_to_one_side():
    target = marks(pytest.mark.pg(target=">= 16"))
    assert version_mismatch(target, 15, 18) is None
    assert "on the target" in version_mismatch(target, 18, 15)
    source = marks(pytest.mark.pg(source="< 18"))
    assert version_mismatch(source, 15, 18) is None
    assert "needs PostgreSQL < 18 on the source" in version_mismatch(source, 18, 15)


def test_every_mark_must_hold_and_bare_pg_needs_nothing():
    both = marks(pytest.mark.pg, pytest.mark.pg(">= 15"), pytest.mark.pg(target="== 18"))
    assert version_mismatch(both, 15, 18) is None
    assert "== 18 on the target" in version_mismatch(both, 15, 15)
    assert version_mismatch(marks(pytest.mark.pg), 15, 15) is None


def test_malformed_marks_raise():
    with pytest.raises(ValueError, match="unknown keyword"):
        version_mismatch(marks(pytest.mark.pg(traget=">= 16")), 15, 18)
    with pytest.raises(ValueError, match="bad PostgreSQL version spec"):
        version_mismatch(marks(pytest.mark.pg(source=">= 16.1")), 15, 18)


# --- slow ---------------------------------------------------------------------------------

@pytest.fixture
def installation():
    found = installations()
    if not found:
        pytest.skip("no PostgreSQL installation")
    return found[0]


def test_a_cluster_of_its_own_fails_a_test_not_marked_slow(installation):
    with pytest.raises(pytest.fail.Exception, match="is not marked slow"):
        with private_cluster(installation.major, {}, "repl-not-slow-"):
            pass
    base = Path(tempfile.mkdtemp(prefix="repl-not-slow-"))
    try:
        cluster = LocalCluster(installation, base / "data")
        for method in (cluster.init, cluster.start, cluster.restart):
            with pytest.raises(pytest.fail.Exception, match=r"test_markers\.py::.* runs "
                               r"LocalCluster\.(init|start)\(\) on a cluster of its own"):
                method()
        assert not cluster.initialized  # refused before initdb ran
    finally:
        shutil.rmtree(base, ignore_errors=True)
