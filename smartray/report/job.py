"""Write an experiment's report: `smartray report --experiment NAME --out report.html`.

One self-contained HTML page (no URL in it: thumbnails and plots are inline) with the
experiment's latest batch, the label issues awaiting review, image-quality histograms,
the worst slices of its last evaluation, and its learning curve. Several experiments
(`--experiment a,b` or the flag repeated) are compared on one learning curve. `--out`
is a local file or `s3://bucket/key.html`. An experiment that no batch, round or model
names is a config error (exit 2), and nothing is written.
"""

from typing import Any

from pydantic import Field, field_validator

from smartray.jobrun import JobSettings, run_job


class ReportJob(JobSettings):
    """One HTML page showing active-learning experiments."""

    experiment: list[str] = Field(
        min_length=1, description="experiment(s): NAME, NAME,NAME or the flag repeated"
    )
    out: str = Field("report.html", min_length=1, description="HTML file: path or s3://")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")

    @field_validator("experiment", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """`a,b` (a flag, the environment or YAML) as `[a, b]`."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


def run(cfg: ReportJob) -> str:
    """Writes the report and returns the summary line."""
    from smartray.report import write_report  # loads the lake and matplotlib

    return write_report(cfg.experiment, cfg.out, lake=cfg.lake).line()


def main(argv: list[str] | None = None) -> None:
    """`smartray report` and `python -m jobs.report`."""
    run_job(ReportJob, argv, "smartray report", run)
