"""The `runs` table: one row per job run, so a round is reproducible from table versions."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Self

from smartray.tables.catalog import RUNS
from smartray.tables.commit import CommitResult, commit_rows
from smartray.tables.storage import LakeLocation


def new_run_id(job: str) -> str:
    """A sortable, unique run id: `<job>-<UTC time>-<random>`."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{job}-{stamp}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunSummary:
    """What a run did, for its job's summary line: its id, counts and the versions it wrote.

    Each job's summary subclasses it and defines `line()`.
    """

    run_id: str
    counts: dict[str, int]
    versions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, run: Run) -> Self:
        """The summary of a recorded run."""
        return cls(run.run_id, dict(run.counts), dict(run.output_versions))

    def line(self) -> str:
        """One line: the run id and its counts."""
        return f"{self.run_id}: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))


@dataclass
class Run:
    """A job run being recorded.

    Attributes:
        job: Job name (`ingest`, ...).
        config: The run's settings, without secrets.
        run_id: Unique id; names part files and app transactions.
        started_at: When the run started (UTC).
        input_versions: Table versions the run read.
        output_versions: Table versions its commits produced.
        counts: Named counts for the summary.
    """

    job: str
    config: dict[str, Any]
    run_id: str = ""
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    input_versions: dict[str, int | None] = field(default_factory=dict)
    output_versions: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_id = self.run_id or new_run_id(self.job)

    def commit_metadata(self) -> dict[str, str]:
        """Custom metadata for each Delta commit the run makes."""
        return {"smartray.run_id": self.run_id, "smartray.job": self.job}

    def output(self, result: CommitResult) -> CommitResult:
        """Notes a commit's resulting version; returns it unchanged."""
        self.output_versions[result.table] = result.version
        return result

    def record(
        self, location: LakeLocation, status: str = "succeeded", *, txn_version: int = 1
    ) -> CommitResult:
        """Writes the run's row to `runs` (exactly once per run id).

        `txn_version` must be above that of any earlier commit this run made to `runs`.
        """
        from smartray.version import __version__

        row = {
            "run_id": self.run_id,
            "job": self.job,
            "status": status,
            "started_at": self.started_at,
            "finished_at": dt.datetime.now(dt.UTC),
            "config": json.dumps(self.config, sort_keys=True, default=str),
            "input_versions": json.dumps(self.input_versions, sort_keys=True),
            "output_versions": json.dumps(self.output_versions, sort_keys=True),
            "counts": json.dumps(self.counts, sort_keys=True),
            "smartray_version": __version__,
        }
        return self.output(
            commit_rows(
                location,
                RUNS,
                [row],
                app_id=self.run_id,
                metadata=self.commit_metadata(),
                txn_version=txn_version,
            )
        )


def run_configs(location: LakeLocation, job: str) -> list[dict[str, Any]]:
    """The configs of every recorded run of `job`, oldest first ([] if there are none)."""
    from deltalake import DeltaTable

    from smartray.tables.filters import text

    uri = location.table_uri(RUNS.name)
    options = location.storage_options or None
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        return []
    runs = (
        DeltaTable(uri, storage_options=options)
        .to_pyarrow_dataset()
        .to_table(columns=["config", "started_at"], filter=text("job") == job)
    )
    ordered = sorted(runs.to_pylist(), key=lambda r: r["started_at"])
    return [json.loads(r["config"]) for r in ordered]
