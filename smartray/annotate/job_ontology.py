"""Register or list label ontologies: `smartray ontology add FILE.yaml` / `smartray ontology list`.

Each version is stored in the `ontologies` table, so jobs on a cluster read the same
definition; a changed ontology needs a new `version`. Examples: `schemas/ontologies/`.
"""

from typing import Literal

from pydantic import Field
from pydantic_settings import CliPositionalArg

from smartray.jobrun import JobSettings, run_job


class OntologyJob(JobSettings):
    """Register (add) or list ontologies."""

    action: CliPositionalArg[Literal["add", "list"]] = Field(description="add FILE, or list")
    files: CliPositionalArg[list[str]] = Field([], description="ontology YAML files to add")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: OntologyJob) -> str:
    """Adds the files' ontologies, or lists those registered; returns the lines."""
    from smartray.annotate import load_ontology, register, registered
    from smartray.errors import ConfigError
    from smartray.tables import Lake

    lines = []
    if cfg.action == "add":
        if not cfg.files:
            raise ConfigError("smartray ontology add FILE.yaml ...: give at least one file")
        for onto in [load_ontology(f) for f in cfg.files]:  # all valid before any is stored
            run_id, new = register(onto, lake=cfg.lake)
            what = f"registered ({run_id})" if new else "already registered, unchanged"
            lines.append(
                f"ontology {onto.name} v{onto.version}: {what}; kinds "
                f"{', '.join(onto.kinds)}; {len(onto.classes)} classes"
            )
    else:
        for onto in sorted(registered(Lake(cfg.lake)).values(), key=lambda o: (o.name, o.version)):
            lines.append(
                f"{onto.name} v{onto.version}: {', '.join(onto.kinds)}; classes "
                f"{', '.join(onto.class_names)}"
            )
        lines = lines or ["(no ontology registered: smartray ontology add FILE.yaml)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """`smartray ontology` and `python -m jobs.ontology`."""
    run_job(OntologyJob, argv, "smartray ontology", run)
