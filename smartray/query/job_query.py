"""Run SQL over the lake's tables: `smartray query "SQL" [--lake URI]`."""

from pydantic import Field
from pydantic_settings import CliPositionalArg

from smartray.jobrun import JobSettings, run_job
from smartray.query import format_table, query


class QueryJob(JobSettings):
    """Query the lake with SQL (deltalake's DataFusion engine)."""

    sql: CliPositionalArg[str] = Field(description="SQL; tables are named as in `smartray tables`")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    output: str = Field("table", pattern="^(table|csv|json)$", description="table, csv or json")
    max_rows: int = Field(100, ge=1, description="rows printed in table format")


def run(cfg: QueryJob) -> str:
    """Returns the query's result as text."""
    return format_table(query(cfg.sql, lake=cfg.lake), cfg.output, max_rows=cfg.max_rows)


def main(argv: list[str] | None = None) -> None:
    """`smartray query` and `python -m jobs.query`."""
    run_job(QueryJob, argv, "smartray query", run)
