"""The test suite's own rules (tests/conftest.py): only tests marked slow build clusters
of their own. No server is started."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from replication.cluster import LocalCluster, installations

from conftest import private_cluster

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
