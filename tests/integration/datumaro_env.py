"""Datumaro in a virtual environment of its own (`side_venv.py`), for `test_interop.py`."""

from __future__ import annotations

from pathlib import Path

from tests.integration import side_venv

VERSION = "1.13.12"
REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".cache" / "datumaro" / "venv"


def ensure_datumaro(venv: Path = VENV) -> Path:
    """The python of Datumaro's own venv; builds the venv when missing."""
    return side_venv.ensure(venv, f"datumaro=={VERSION}", f".installed-datumaro-{VERSION}")
