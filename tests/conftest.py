import os

import pytest

# Unit tests must never start Ray; integration tests get one session-scoped local Ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")


@pytest.fixture
def lake_dir(tmp_path):
    return str(tmp_path / "lake")
