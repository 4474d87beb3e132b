"""The face blur on real photos: faces blurred, textures that look like faces left alone."""

import json

import numpy as np
import pytest

from smartray.sanitize import SanitizeConfig, sanitize_image
from smartray.sanitize.cv import cv2
from smartray.sanitize.detect import (
    FaceDetector,
    SingleCascadeFaceDetector,
    detect_regions,
    load_detectors,
)
from smartray.sanitize.ops import boxes_json
from smartray.testing import files
from tests.unit.sanitize.real_photos import CALIBRATION, mate, opencv_doc

DEFAULT = SanitizeConfig()


def boxes(row):
    return json.loads(row["blurred_boxes"])


def covers(found, truth):
    x, y, w, h = found["x"], found["y"], found["w"], found["h"]
    tx, ty, tw, th = truth
    ix = max(0, min(x + w, tx + tw) - max(x, tx))
    iy = max(0, min(y + h, ty + th) - max(y, ty))
    return ix * iy >= 0.5 * tw * th


def test_plates_are_opt_in():
    assert DEFAULT.detectors == ("face",)
    assert len(load_detectors(("face", "plate"))) == 2


def test_leaf_close_up_is_not_blurred():
    # Debian mate-backgrounds' Blinds.jpg: the single cascade put 7 squares on the leaf.
    gray = cv2.imdecode(np.frombuffer(mate("nature/Blinds.jpg"), np.uint8), cv2.IMREAD_GRAYSCALE)
    small = cv2.resize(gray, (640, 400), interpolation=cv2.INTER_AREA)
    assert len(SingleCascadeFaceDetector()(small)) >= 5  # what used to be blurred
    row = sanitize_image(mate("nature/Blinds.jpg"), config=DEFAULT, name="Blinds.jpg")
    assert (row["blurred_regions"], row["blurred_boxes"]) == (0, "[]")


@pytest.mark.parametrize("name", CALIBRATION)
def test_calibration_shots_are_not_blurred(name):
    row = sanitize_image(opencv_doc(name), config=DEFAULT, name=name)
    assert row["blurred_regions"] == 0, row["blurred_boxes"]


@pytest.mark.parametrize(
    ("name", "face"),
    [
        ("messi5.jpg", (227, 94, 37, 37)),
        ("basketball1.png", (72, 91, 39, 39)),
        ("basketball2.png", (72, 91, 38, 38)),
    ],
)
def test_real_faces_are_blurred_and_recorded(name, face):
    row = sanitize_image(opencv_doc(name), config=DEFAULT, name=name)
    found = boxes(row)
    assert row["blurred_regions"] == len(found) >= 1
    assert all(b["detector"] == "face" for b in found)
    assert any(covers(b, face) for b in found), found
    # the face is gone from the stored pixels: neither detector finds it again
    stored = cv2.imdecode(np.frombuffer(row["data"], np.uint8), cv2.IMREAD_GRAYSCALE)
    x, y, w, h = face
    crop = stored[max(0, y - h) : y + 2 * h, max(0, x - w) : x + 2 * w]
    assert FaceDetector(confirm=False)(crop) == []
    assert SingleCascadeFaceDetector()(crop) == []


def test_demo_astronaut_is_blurred():
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    row = sanitize_image(files.jpeg(img), config=DEFAULT, name="astronaut.jpg")
    assert any(covers(b, (177, 66, 96, 96)) for b in boxes(row))


def test_boxes_are_recorded_in_stored_pixels_with_their_detector():
    # A 1280 px image is searched at 640 px: boxes come back scaled up, named.
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    big = cv2.resize(face, (1024, 1024))
    canvas = np.full((1024, 1280, 3), 128, np.uint8)
    canvas[:, :1024] = big
    row = sanitize_image(files.png(canvas), config=DEFAULT, name="big.png")
    (b,) = boxes(row)
    assert b["detector"] == "face"
    assert covers(b, (354, 132, 192, 192))


def test_blur_off_records_no_audit():
    row = sanitize_image(files.png(files.pattern(64, 64)), config=SanitizeConfig(blur=False))
    assert (row["blurred_regions"], row["blurred_boxes"]) == (0, None)


def test_plugged_detectors_are_named_by_their_import_path():
    name = "tests.unit.sanitize.test_sanitize_ops:BoxEverything"
    gray = np.zeros((40, 60), np.uint8)
    found = detect_regions(gray, 2.0, load_detectors((name,)), (name,))
    assert found == [(name, (0, 0, 120, 80))]
    assert json.loads(boxes_json(found)) == [{"detector": name, "x": 0, "y": 0, "w": 120, "h": 80}]
