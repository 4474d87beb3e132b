"""The reliability suite: seeded fault, load and hostile-input campaigns (RELIABILITY.md).

`make test-reliability` runs it at the sizes CI affords; the flags below set the sizes of
the full campaigns, run by hand and recorded in RELIABILITY.md.

Nothing here may send traffic beyond loopback: a guard (`guard/netguard.py`) is installed
in this process and, through `guard/sitecustomize.py` on `PYTHONPATH`, in every Python
process the suite starts (drivers, Ray workers). It refuses any other connection and
records it; a test during which a refusal was recorded fails, unless it is marked
`net_refusals_expected` and counts them itself. Refusals outside any test fail the run too,
except the ones `netguard.upstream_probe` attributes to a dependency's fixed start-up
behaviour (Ray's cloud-provider probe); the run's summary counts each kind.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

GUARD_DIR = Path(__file__).parent / "guard"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability"
sys.path.insert(0, str(GUARD_DIR))
import netguard  # noqa: E402

from tests.integration.conftest import s3_server  # noqa: E402, F401  (SeaweedFS, once)


@dataclass(frozen=True)
class Campaign:
    """Campaign sizes and the base seed, from the command line.

    Attributes:
        seed: Base seed; campaign i uses seed + i.
        kill_seeds: Seeds of the worker-kill and driver-kill campaigns.
        train_seeds: Seeds of the training-worker-kill campaign.
        fuzz_files: Mutated media files sent through ingest.
        s3_commits: Commits each of the two concurrent S3 ingest jobs makes.
        appends: Small appends before `maintain` in the compaction campaign.
    """

    seed: int
    kill_seeds: int
    train_seeds: int
    fuzz_files: int
    s3_commits: int
    appends: int


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("reliability", "campaign sizes of tests/reliability (RELIABILITY.md)")
    g.addoption("--seed", type=int, default=0, help="base seed (default 0)")
    g.addoption("--kill-seeds", type=int, default=10, help="worker/driver kill seeds (10)")
    g.addoption("--train-seeds", type=int, default=5, help="training-kill seeds (5)")
    g.addoption("--fuzz-files", type=int, default=10_000, help="mutated files (10,000)")
    g.addoption("--s3-commits", type=int, default=20, help="commits per S3 writer (20)")
    g.addoption("--appends", type=int, default=200, help="small appends before maintain (200)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "net_refusals_expected: the test provokes refused connections and counts them"
    )
    log = ARTIFACTS / f"net-guard-{os.getpid()}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    os.environ[netguard.ENV] = str(log)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(GUARD_DIR), os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    # no usage report is sent (Ray's dashboard still probes the cloud metadata address at
    # start-up whatever this says: see netguard.UPSTREAM_PROBES)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    netguard.install(str(log))
    config.stash[_FIGURES] = {}
    config.stash[_PROVOKED] = set()


_FIGURES = pytest.StashKey[dict]()
_PROVOKED = pytest.StashKey[set]()  # indices in the guard log of refusals tests provoked


@pytest.fixture(scope="session")
def campaign(request: pytest.FixtureRequest) -> Campaign:
    o = request.config.getoption
    return Campaign(
        seed=o("--seed"),
        kill_seeds=o("--kill-seeds"),
        train_seeds=o("--train-seeds"),
        fuzz_files=o("--fuzz-files"),
        s3_commits=o("--s3-commits"),
        appends=o("--appends"),
    )


class Figures:
    """What the campaigns measured: written to test-artifacts/reliability/figures.json
    and printed at the end of the run, for RELIABILITY.md."""

    def __init__(self, store: dict) -> None:
        self._store = store

    def record(self, test: str, **numbers: object) -> None:
        self._store.setdefault(test, {}).update(numbers)


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.config.stash[_FIGURES])


def net_refusals() -> list[dict]:
    """Every connection refused so far in this run, by any process of the suite."""
    return netguard.refusals(os.environ[netguard.ENV])


@pytest.fixture(autouse=True)
def _nothing_beyond_loopback(request: pytest.FixtureRequest):
    before = len(net_refusals())
    yield
    after = net_refusals()
    if request.node.get_closest_marker("net_refusals_expected") is not None:
        request.config.stash[_PROVOKED].update(
            i for i in range(before, len(after)) if netguard.upstream_probe(after[i]) is None
        )
        return
    new = [r for r in after[before:] if netguard.upstream_probe(r) is None]
    if new:
        pytest.fail(
            f"{len(new)} connection(s) beyond loopback refused during the test: "
            + "; ".join(f"{r['event']} {r['address']} at {r['where'][-1]}" for r in new[:3])
        )


def _refusal_counts(config: pytest.Config) -> tuple[dict[str, int], list[dict]]:
    """The run's refusals by kind, and the ones nothing explains (each fails the run)."""
    refused = net_refusals()
    provoked = config.stash.get(_PROVOKED, set())
    upstream = {i for i, r in enumerate(refused) if netguard.upstream_probe(r) is not None}
    unexplained = [r for i, r in enumerate(refused) if i not in provoked | upstream]
    counts = {
        "refused": len(refused),
        "provoked_by_tests": len(provoked),
        "upstream_probes": len(upstream),
        "unexplained": len(unexplained),
    }
    return counts, unexplained


def pytest_sessionfinish(session: pytest.Session) -> None:
    counts, unexplained = _refusal_counts(session.config)
    if unexplained and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    found = session.config.stash.get(_FIGURES, {})
    if not found:
        return
    found["net_guard"] = counts
    opt = session.config.getoption
    found["_sizes"] = {k: opt("--" + k.replace("_", "-")) for k in Campaign.__dataclass_fields__}
    path = ARTIFACTS / "figures.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(found)
    path.write_text(json.dumps(old, indent=1, sort_keys=True, default=str) + "\n")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    terminalreporter.section("reliability figures")
    for test, numbers in config.stash.get(_FIGURES, {}).items():
        terminalreporter.write_line(f"{test}: {json.dumps(numbers, default=str)}")
    counts, unexplained = _refusal_counts(config)
    terminalreporter.write_line(
        "connections beyond loopback refused in this run: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    kinds = sorted({netguard.upstream_probe(r) for r in net_refusals()} - {None})
    for what in kinds:
        terminalreporter.write_line(f"  upstream: {what}")
    for r in unexplained[:5]:
        terminalreporter.write_line(
            f"  UNEXPLAINED (fails the run): pid {r['pid']} {r.get('argv')} {r['event']} "
            f"{r['address']} at {' <- '.join(reversed(r['where'][-4:]))}"
        )


@pytest.fixture(scope="session")
def ray_session(request: pytest.FixtureRequest):
    """One local Ray for the suite, on loopback: 2 CPUs, no dashboard; after SeaweedFS, so
    workers inherit its settings as a cluster's would."""
    import ray

    request.getfixturevalue("s3_server")

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a Ray head of their own (`own_cluster`) run last; they shut the
    shared Ray down first (two Rays on two cores starve each other)."""
    items.sort(key=lambda item: item.get_closest_marker("own_cluster") is not None)
