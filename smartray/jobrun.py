"""What every job shares: the registry, settings from flags, env and YAML; exit codes; output.

A job is a module in the library (`smartray/<stage>/job.py`, or `job_<name>.py` where a
package runs several) with one `JobSettings` class, a `run(cfg)` that returns the job's
text, and a `main(argv)` that calls `run_job`. `JOBS` names them all; `smartray <job>`,
`python -m jobs.<job>` (the thin entry points a RayJob runs) and `smartray submit` go
through it.

Exit codes (DESIGN.md): 0 when the job committed its result, however many inputs were
quarantined; 2 for a usage or config error, with nothing written; 1 for a failure after
which nothing was committed.
"""

from __future__ import annotations

import contextvars
import gc
import importlib
import logging
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, TypeVar

import annotated_types as at
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import PydanticUndefined
from pydantic_settings import (
    BaseSettings,
    CliApp,
    CliSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from yaml import YAMLError

from smartray.errors import ConfigError, SmartrayError, SourceError
from smartray.logging import setup_logging

log = logging.getLogger(__name__)

# Every job, by CLI name: the library module holding its settings, `run` and `main`.
# `jobs/<name>.py` (name in snake_case) is each one's `python -m` entry point.
JOBS = {
    "augment": "smartray.augment.job",
    "check-leaks": "smartray.split.job_check_leaks",
    "consensus": "smartray.annotate.job_consensus",
    "curate": "smartray.curate.job",
    "demo": "smartray.demo.job",
    "erase": "smartray.upkeep.job_erase",
    "evaluate": "smartray.predict.job_evaluate",
    "export": "smartray.annotate.job_export",
    "find-label-issues": "smartray.predict.job_find_label_issues",
    "import-labels": "smartray.annotate.job_import_labels",
    "ingest": "smartray.ingest.job",
    "loop": "smartray.loop.job",
    "maintain": "smartray.upkeep.job_maintain",
    "ontology": "smartray.annotate.job_ontology",
    "predict": "smartray.predict.job_predict",
    "query": "smartray.query.job_query",
    "report": "smartray.report.job",
    "review": "smartray.annotate.job_review",
    "sample": "smartray.sample.job",
    "score": "smartray.selection.job_score",
    "select": "smartray.selection.job_select",
    "split": "smartray.split.job_split",
    "tables": "smartray.query.job_tables",
    "train": "smartray.train.job",
}

_CONFIG_FILE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "config_file", default=None
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Constraints a library field may carry, as `Field()` spells them.
_BOUNDS: dict[type, str] = {
    at.Gt: "gt",
    at.Ge: "ge",
    at.Lt: "lt",
    at.Le: "le",
    at.MultipleOf: "multiple_of",
    at.MinLen: "min_length",
    at.MaxLen: "max_length",
}


class JobSettings(BaseSettings):
    """Base of every job's settings: kebab-case flags, env `SMARTRAY_*`, `--config FILE`.

    Precedence: flags, then environment, then the YAML file, then defaults.
    """

    model_config = SettingsConfigDict(
        env_prefix="SMARTRAY_",
        extra="forbid",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Adds the `--config` YAML file below flags and environment."""
        path = _CONFIG_FILE.get()
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if path:
            sources += (YamlConfigSettingsSource(settings_cls, yaml_file=path),)
        return sources


S = TypeVar("S", bound=JobSettings)


def field_from(model: type[BaseModel], name: str, *, description: str, **change: Any) -> Any:
    """A job's flat flag field with the default and bounds of library field `model.name`.

    So a default or bound is declared once, next to the code it configures, and a job's
    flag follows it. `change` replaces what a flag must spell differently (a list default
    for a tuple field, say).

    Raises:
        TypeError: the library field carries a constraint this helper cannot copy.
    """
    info = model.model_fields[name]
    kwargs: dict[str, Any] = {}
    for meta in info.metadata:
        key = _BOUNDS.get(type(meta))
        if key is None:
            raise TypeError(f"{model.__name__}.{name}: cannot copy constraint {meta!r}")
        kwargs[key] = getattr(meta, key)  # each constraint's attribute is its Field name
    if info.default_factory is not None:
        kwargs["default_factory"] = info.default_factory
    elif info.default is not PydanticUndefined:
        kwargs["default"] = info.default
    return Field(**(kwargs | change), description=description)


def job_module(job: str) -> ModuleType:
    """The library module of job `job` (kebab- or snake-case).

    Raises:
        ConfigError: no such job; the message lists those there are.
    """
    name = job.replace("_", "-")
    if name not in JOBS:
        raise ConfigError(f"unknown job {job!r}; jobs: {', '.join(sorted(JOBS))}")
    return importlib.import_module(JOBS[name])


def job_settings(job: str) -> type[JobSettings]:
    """The settings class of job `job` (kebab- or snake-case).

    Raises:
        ConfigError: no such job, or its module defines no JobSettings class or several.
    """
    module = job_module(job)
    found = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, JobSettings) and v.__module__ == module.__name__
    ]  # fmt: skip
    if len(found) != 1:
        raise ConfigError(f"{module.__name__} must define one JobSettings class, not {len(found)}")
    return found[0]


def _pop_config(argv: list[str]) -> tuple[list[str], str | None]:
    out, path, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            path, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            out.append(arg)
        i += 1
    return out, path


def config_path(argv: list[str]) -> str | None:
    """The `--config FILE` among job flags, if any."""
    return _pop_config(argv)[1]


def parse(settings_cls: type[S], argv: list[str] | None, prog: str) -> S:
    """Parses flags (and `--config FILE`) into settings; exits 2 on a usage error."""
    args, path = _pop_config(list(sys.argv[1:] if argv is None else argv))
    if path is not None:
        import os

        if not os.path.isfile(path):
            print(f"{prog}: error: --config {path!r}: no such file", file=sys.stderr)
            raise SystemExit(EXIT_USAGE)
    token = _CONFIG_FILE.set(path)
    try:
        source: CliSettingsSource[Any] = CliSettingsSource(settings_cls, cli_prog_name=prog)
        # argparse prints usage and exits 2 on unknown or missing flags
        return CliApp.run(settings_cls, cli_args=args, cli_settings_source=source)
    except (ValidationError, ValueError, OSError, YAMLError) as e:  # bad values, YAML, file
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    finally:
        _CONFIG_FILE.reset(token)


def run_job(
    settings_cls: type[S],
    argv: list[str] | None,
    prog: str,
    body: Callable[[S], str | Iterable[str] | None],
) -> str:
    """Parses settings, runs `body`, prints what it returns, and maps failures to exit codes.

    `body` returns the job's text (its summary line, or a report), or yields it line by
    line as it goes (printed as each line comes). Returns the text printed; raises
    `SystemExit(2)` for usage and config errors and `SystemExit(1)` for any other failure.
    """
    cfg = parse(settings_cls, argv, prog)
    setup_logging()
    printed: list[str] = []
    code: int | str | None = EXIT_OK
    try:
        out = body(cfg)
        for text in [out] if isinstance(out, str) else out or ():
            print(text, flush=True)
            printed.append(text)
    except (ConfigError, SourceError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        code = EXIT_USAGE
    except SmartrayError as e:
        log.error("%s failed: %s", prog, e)
        code = EXIT_FAILED
    except SystemExit as e:  # a job whose report says it failed (check-leaks --fail)
        code = e.code
    except Exception:
        log.exception("%s failed", prog)
        code = EXIT_FAILED
    # Once per job, with the exception and its frames gone: deltalake can abort at
    # interpreter exit after reading a table (upstream bug) unless its objects are freed.
    gc.collect()
    if code not in (EXIT_OK, None):
        raise SystemExit(code)
    return "\n".join(printed)
