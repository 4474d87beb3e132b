"""Where ingest tasks read local files on a cluster (Ray's node table faked, no Ray)."""

import pytest

from smartray.errors import SourceError
from smartray.ingest import tasks
from smartray.sources.base import SourceEntry


def entry(uri):
    return SourceEntry(uri=uri, size=1, mtime_ns=0, etag=None)


DRIVER, WORKER = "a1" * 28, "b2" * 28  # Ray node ids are 28-byte hex strings


class Context:
    def get_node_id(self):
        return DRIVER


@pytest.fixture
def nodes(monkeypatch):
    table = []
    monkeypatch.setattr(tasks.ray, "nodes", lambda: table)
    monkeypatch.setattr(tasks.ray, "get_runtime_context", Context)
    return table


def node(node_id, cpus, alive=True):
    return {"NodeID": node_id, "Alive": alive, "Resources": {"CPU": cpus} if cpus else {}}


def test_one_node_and_s3_inputs_are_not_pinned(nodes):
    nodes += [node(DRIVER, 2)]
    assert tasks.local_files_placement([entry("/data/a.jpg")]) == {}
    nodes += [node(WORKER, 8)]
    assert tasks.local_files_placement([entry("s3://b/a.jpg")]) == {}


def test_local_files_on_a_cluster_are_read_on_the_drivers_node(nodes):
    nodes += [node(DRIVER, 2), node(WORKER, 8), node("c3" * 28, 8, alive=False)]
    placement = tasks.local_files_placement([entry("s3://b/x.jpg"), entry("/data/a.jpg")])
    strategy = placement["scheduling_strategy"]
    assert (strategy.node_id, strategy.soft) == (DRIVER, False)


def test_a_driver_node_without_cpus_is_a_clear_error(nodes):
    nodes += [node(DRIVER, 0), node(WORKER, 8)]
    with pytest.raises(SourceError, match="entrypointNumCpus"):
        tasks.local_files_placement([entry("/data/a.jpg")])
