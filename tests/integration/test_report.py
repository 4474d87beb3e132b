"""`smartray report` opened in a real browser: headless Chromium over DevTools.

The page must show every thumbnail and plot, and ask for nothing but itself and its
`data:` URIs. The screenshot stays in `test-artifacts/report.png` to look at.
"""

import uuid
from pathlib import Path

import numpy as np
import pytest

from smartray.report import write_report
from smartray.report.job import main as report_main
from smartray.sanitize.cv import cv2
from smartray.testing.experiments import experiment_lake
from tests.integration.browser import BrowserError, check_page, chromium

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "test-artifacts" / "report.png"


def test_the_report_draws_every_image_and_plot_in_chromium_and_fetches_nothing(tmp_path):
    try:
        chromium()
    except BrowserError as e:  # never a skip: `make test` installs it
        pytest.fail(str(e))
    made = experiment_lake(str(tmp_path / "lake"), [("exp-margin", "margin")], budget=8)
    out = tmp_path / "report.html"
    report_main(["--experiment", "exp-margin", "--lake", made.root, "--out", str(out)])
    SCREENSHOT.unlink(missing_ok=True)

    page = check_page(out, SCREENSHOT, timeout=60)

    assert page.title == "smartray report: exp-margin"
    assert page.batch_images == page.batch_loaded == len(made.batch["exp-margin"]) == 8
    assert page.images == page.images_loaded == 8 + len(made.issues)
    assert page.plots == {"plot-learning-curve": True, "plot-quality": True}
    assert page.requests[0] == out.resolve().as_uri()
    assert page.remote_requests == []
    png = SCREENSHOT.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    shot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert shot.shape[1] == 1280
    assert shot.shape[0] > 900  # the full page, not the window
    assert shot.std() > 10  # something is drawn


def test_the_report_goes_to_s3(tmp_path, s3_server):
    made = experiment_lake(str(tmp_path / "lake"), [("exp-margin", "margin")], tables=())
    client, bucket = s3_server.client(), f"reports-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    summary = write_report(["exp-margin"], f"s3://{bucket}/exp/report.html", lake=made.root)
    body = client.get_object(Bucket=bucket, Key="exp/report.html")["Body"].read()
    assert body.startswith(b"<!DOCTYPE html>")
    assert len(body) == summary.bytes
    assert summary.out == f"s3://{bucket}/exp/report.html"
