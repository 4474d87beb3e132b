import contextlib
import os
import threading
from collections.abc import Callable

import pytest

from smartray.sanitize.cv import cv2
from smartray.testing import files


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """SeaweedFS on loopback for the session; its settings are in this process's env.

    The env is set before Ray starts, so local Ray workers inherit the credentials the
    way a cluster's workers get them from their own environment or role: no key ever
    travels in a job's `runtime_env`.
    """
    from tests.integration import seaweed

    server = seaweed.start(tmp_path_factory.mktemp("seaweedfs"))
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """The real Label Studio on 127.0.0.1 for the session (its own venv, made on first use)."""
    from tests.integration import labelstudio

    server = labelstudio.start(tmp_path_factory.mktemp("label-studio"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_session(s3_server):
    """One local Ray for the whole integration suite (2 CPUs, no dashboard)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def _integration(request):
    request.applymarker(pytest.mark.integration)
    if request.node.get_closest_marker("own_cluster") is None:
        request.getfixturevalue("ray_session")


def pytest_collection_modifyitems(items):
    """Tests that start a Ray cluster of their own run last: they shut the shared one
    down first (two Rays on two cores would starve each other)."""
    items.sort(key=lambda item: item.get_closest_marker("own_cluster") is not None)


def pytest_collection_finish(session):
    """Starts building Label Studio's and Datumaro's own venvs, on a thread, if the
    collected tests need them.

    Installing them takes about two minutes on two cores (Label Studio also migrates its
    template database): built while the unit tests run on one core, they leave the suite's
    critical path. The tests that need them call the same builders, which wait on the
    build's lock and then find its stamp.
    """
    from tests.integration import datumaro_env, labelstudio

    if session.config.option.collectonly:
        return
    wanted = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    builds: list[Callable[[], object]] = []
    if "label_studio" in wanted:
        builds.append(labelstudio.ensure_template_db)
    if "datumaro" in wanted:
        builds.append(datumaro_env.ensure_datumaro)
    if builds:
        early = threading.Thread(target=_build_early, args=(builds,), name="venvs", daemon=True)
        early.start()


def _build_early(builds):
    for build in builds:
        # a failed build writes no stamp: the test that needs it builds again and says why
        with contextlib.suppress(Exception):
            build()


# What each input of the corpus must become: an asset or a quarantine reason.
GOOD = ("photo.jpg", "photo copy.jpg", "cmyk.jpg", "deep16.png", "gray.jpg", "rgba.png",
        "anim.gif", "sub/naïve façade 写真.jpg", "gps.jpg", "astronaut.jpg")  # fmt: skip
BAD = {
    "empty.jpg": "empty",
    "random.jpg": "corrupt",
    "truncated.jpg": "truncated",
    "truncated.png": "truncated",
    "bomb.png": "too_many_pixels",
    "escape.jpg": "outside_root",
}


@pytest.fixture
def corpus(tmp_path):
    """A folder with every kind of good and bad input the ingest must handle."""
    from skimage import data

    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    photo = files.jpeg(files.pattern(48, 64, seed=1))
    astronaut = files.jpeg(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    contents = {
        "photo.jpg": photo,
        "photo copy.jpg": photo,
        "cmyk.jpg": files.cmyk_jpeg(24, 24),
        "deep16.png": files.png16(24, 24),
        "gray.jpg": files.jpeg(files.pattern(24, 24, 1, seed=2)),
        "rgba.png": files.rgba_png(24, 24),
        "anim.gif": files.animated_gif(24, 24),
        "sub/naïve façade 写真.jpg": files.jpeg(files.pattern(24, 32, seed=3)),
        "gps.jpg": files.jpeg_with_exif(files.pattern(40, 30, seed=4), gps=(59.33, 18.07)),
        "astronaut.jpg": astronaut,
        "empty.jpg": b"",
        "random.jpg": files.random_bytes(),
        "truncated.jpg": files.truncated(files.jpeg(files.pattern(64, 64, seed=5))),
        "truncated.png": files.truncated(files.png(files.pattern(64, 64, seed=6))),
        "bomb.png": files.png_bomb_header(30000, 30000),
    }
    for name, body in contents.items():
        (root / name).write_bytes(body)
    secret = tmp_path / "outside.jpg"
    secret.write_bytes(files.jpeg(files.pattern(8, 8, seed=7)))
    os.symlink(secret, root / "escape.jpg")
    return root
