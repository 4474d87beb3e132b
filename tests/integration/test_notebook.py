"""notebooks/explore.ipynb, executed the way a user runs it, on a lake of two ingest runs."""

import base64
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

from jobs.ingest import main as ingest
from smartray.sanitize.cv import cv2
from smartray.testing import files

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXPLORE = NOTEBOOKS / "explore.ipynb"


def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo at a quarter of its size, BGR (or gray)."""
    from skimage import data

    img = np.asarray(getattr(data, name)())
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    return cv2.resize(img, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def lake(tmp_path_factory, ray_session):
    """A lake written by two ingest runs: 3 assets + 2 refusals, then 2 assets + 1."""
    root = tmp_path_factory.mktemp("notebook")
    runs = {
        "first": {
            "coffee.jpg": files.jpeg(photo("coffee")),
            "camera.png": files.png(photo("camera")),
            "coins.jpg": files.jpeg(photo("coins")),
            "empty.jpg": b"",
            "random.jpg": files.random_bytes(),
        },
        "second": {
            "chelsea.jpg": files.jpeg(photo("chelsea")),
            "rocket.png": files.png(photo("rocket")),
            "truncated.jpg": files.truncated(files.jpeg(photo("astronaut"))),
        },
    }
    for folder, contents in runs.items():
        (root / folder).mkdir()
        for name, body in contents.items():
            (root / folder / name).write_bytes(body)
        ingest([str(root / folder), "--lake", str(root / "lake"), "--no-blur"])
    return root / "lake"


def run_notebook(lake_uri: str, monkeypatch) -> list:
    """Executes explore.ipynb in notebooks/ on `lake_uri`; returns its code cells' outputs.

    A cell that raises fails the test (nbclient's CellExecutionError names the cell).
    """
    monkeypatch.setenv("SMARTRAY_LAKE", lake_uri)
    nb = nbformat.read(EXPLORE, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return [cell.outputs for cell in nb.cells if cell.cell_type == "code"]


def shown(outputs: list) -> tuple[str, str, list[Image.Image]]:
    """What a user sees: printed text, displayed tables (as text) and images."""
    printed, tables, images = [], [], []
    for cell in outputs:
        for out in cell:
            if out.output_type == "stream":
                printed.append(out.text)
            data = out.get("data", {})
            tables.append(data.get("text/plain", ""))
            if "image/png" in data:
                images.append(Image.open(io.BytesIO(base64.b64decode(data["image/png"]))))
    return "".join(printed), "\n".join(tables), images


def check_what_a_user_sees(outputs: list) -> None:
    printed, tables, images = shown(outputs)
    # DuckDB's delta_scan and Polars (through Lake) count the same rows.
    counts = re.search(r"assets rows: DuckDB (\d+), Polars (\d+)", printed)
    assert counts, printed
    duckdb_rows, polars_rows = map(int, counts.groups())
    assert duckdb_rows == polars_rows == 5
    # Time travel: the version the first run wrote has fewer rows than the latest.
    match = re.search(r"assets v(\d+): (\d+) rows; v(\d+) \(latest\): (\d+) rows", printed)
    assert match, printed
    v_earlier, rows_earlier, v_latest, rows_latest = map(int, match.groups())
    assert v_earlier < v_latest
    assert (rows_earlier, rows_latest) == (3, 5)
    for reason in ("empty", "corrupt", "truncated"):  # quarantine reasons counted
        assert reason in tables
    # The thumbnail grid, then the three quality histograms.
    assert len(images) == 2
    assert all(img.width > 300 and img.height > 100 for img in images)


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(EXPLORE, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_explore_notebook_on_a_local_lake(lake, monkeypatch):
    check_what_a_user_sees(run_notebook(str(lake), monkeypatch))


def test_explore_notebook_on_an_s3_lake(lake, s3_server, monkeypatch):
    # A Delta table's log names its files relative to the table: the folder is the lake.
    client = s3_server.client()
    client.create_bucket(Bucket="notebook-lake")
    for path in lake.rglob("*"):
        if path.is_file():
            key = f"lake/{path.relative_to(lake).as_posix()}"
            client.put_object(Bucket="notebook-lake", Key=key, Body=path.read_bytes())
    check_what_a_user_sees(run_notebook("s3://notebook-lake/lake", monkeypatch))
