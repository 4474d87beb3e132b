"""The demo: build a small real corpus, ingest it twice, curate and split it, show the lake.

`smartray demo [--lake ./lake] [--data ./demo-data]` (what `make demo` runs).
"""

from collections.abc import Iterator

from pydantic import Field

from smartray.jobrun import JobSettings, run_job


class DemoJob(JobSettings):
    """Run the demo end to end on data that ships inside packages."""

    lake: str | None = Field(None, description="lake root (default ./lake)")
    data: str = Field("./demo-data", description="where the demo corpus is written")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")
    loop_rounds: int = Field(
        4, ge=0, le=20, description="active-learning rounds on the digits (0: none)"
    )


def run(cfg: DemoJob) -> Iterator[str]:
    """Yields the demo's lines: runs, tables and four queries."""
    from smartray.demo import run_demo  # loads Ray: not for `--help`

    return run_demo(
        cfg.data, lake=cfg.lake, ray_address=cfg.ray_address, loop_rounds=cfg.loop_rounds
    )


def main(argv: list[str] | None = None) -> None:
    """`smartray demo` and `python -m jobs.demo`."""
    run_job(DemoJob, argv, "smartray demo", run)
