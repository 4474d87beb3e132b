"""Print each lake table's version, rows and bytes: `smartray tables [--lake URI] [--json]`."""

import json

from pydantic import Field

from smartray.jobrun import JobSettings, run_job
from smartray.query import format_lake
from smartray.tables import Lake


class TablesJob(JobSettings):
    """List the lake's tables."""

    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    json_output: bool = Field(False, alias="json", description="one JSON object keyed by table")


def run(cfg: TablesJob) -> str:
    """Returns the tables as text (or JSON)."""
    lake = Lake(cfg.lake)
    if not cfg.json_output:
        return format_lake(lake)
    return json.dumps(
        {i.name: {"version": i.version, "rows": i.rows, "bytes": i.bytes} for i in lake.describe()},
        indent=2,
    )


def main(argv: list[str] | None = None) -> None:
    """`smartray tables` and `python -m jobs.tables`."""
    run_job(TablesJob, argv, "smartray tables", run)
