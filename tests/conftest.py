import os

import pytest

# Unit tests must never start Ray; integration tests get one session-scoped local Ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")


@pytest.fixture
def lake_dir(tmp_path):
    return str(tmp_path / "lake")


@pytest.fixture(scope="session")
def kuberay_crds():
    """The KubeRay v1.7.0 CRDs, loaded once; tests that need them skip, saying where to
    get them, when they are not here."""
    from smartray.deploy.manifests import crd_dir, load_crds, missing_crds_message

    folder = crd_dir()
    if folder is None:
        pytest.skip(missing_crds_message())
    return load_crds(str(folder))
