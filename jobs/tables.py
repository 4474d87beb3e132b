"""Print each lake table's version, rows and bytes: `smartray tables [--lake URI] [--json]`."""

import gc
import json

from pydantic import Field

from smartray.jobrun import JobSettings, run_job
from smartray.tables import Lake


class TablesJob(JobSettings):
    """List the lake's tables."""

    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    json_output: bool = Field(False, alias="json", description="one JSON object keyed by table")


def run(cfg: TablesJob) -> str:
    """Prints the tables and returns what was printed."""
    lake = Lake(cfg.lake)
    infos = lake.describe()
    if cfg.json_output:
        text = json.dumps(
            {i.name: {"version": i.version, "rows": i.rows, "bytes": i.bytes} for i in infos},
            indent=2,
        )
    else:
        lines = [f"lake {lake.uri}", f"{'table':<16}{'version':>8}{'rows':>10}{'bytes':>14}"]
        lines += [f"{i.name:<16}{i.version:>8}{i.rows:>10}{i.bytes:>14,}" for i in infos]
        if not infos:
            lines.append("(no tables yet: run `smartray ingest` first)")
        text = "\n".join(lines)
    print(text, flush=True)
    return text


def main(argv: list[str] | None = None) -> None:
    """`smartray tables` and `python -m jobs.tables`."""
    run_job(TablesJob, argv, "smartray tables", run)


if __name__ == "__main__":
    main()
    gc.collect()  # deltalake can abort at exit after reading a table (upstream bug)
