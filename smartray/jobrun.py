"""What every job module shares: settings from flags, env and YAML; exit codes; summary.

Exit codes (DESIGN.md): 0 when the job committed its result, however many inputs were
quarantined; 2 for a usage or config error, with nothing written; 1 for a failure after
which nothing was committed.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError
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

_CONFIG_FILE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "config_file", default=None
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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


def job_settings(job: str) -> type[JobSettings]:
    """The settings class of job module `jobs.<job>` (`job` kebab- or snake-case).

    Raises:
        ConfigError: the module defines no JobSettings class, or more than one.
    """
    import importlib

    module = importlib.import_module("jobs." + job.replace("-", "_"))
    found = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, JobSettings) and v.__module__ == module.__name__
    ]  # fmt: skip
    if len(found) != 1:
        raise ConfigError(f"jobs.{job} must define one JobSettings class, not {len(found)}")
    return found[0]


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
    settings_cls: type[S], argv: list[str] | None, prog: str, body: Callable[[S], Any]
) -> Any:
    """Parses settings, runs `body`, and maps failures to exit codes.

    Returns what `body` returns; raises `SystemExit(2)` for usage and config errors and
    `SystemExit(1)` for any other failure.
    """
    cfg = parse(settings_cls, argv, prog)
    setup_logging()
    try:
        return body(cfg)
    except (ConfigError, SourceError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except SmartrayError as e:
        log.error("%s failed: %s", prog, e)
        raise SystemExit(EXIT_FAILED) from None
    except Exception:
        log.exception("%s failed", prog)
        raise SystemExit(EXIT_FAILED) from None
