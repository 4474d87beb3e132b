"""Logging set-up for jobs: one place, called once per process."""

import logging
import os

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str | None = None) -> None:
    """Configures the root logger once for a job's driver.

    Args:
        level: A level name; defaults to env `SMARTRAY_LOG_LEVEL` or INFO.
    """
    name = (level or os.environ.get("SMARTRAY_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=name, format=_FORMAT)
    logging.getLogger("smartray").setLevel(name)
