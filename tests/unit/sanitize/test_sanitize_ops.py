import io

import numpy as np
import pytest
from PIL import Image

from smartray.sanitize import FaceDetector, SanitizeConfig, sanitize_image
from smartray.sanitize.cv import cv2
from smartray.sanitize.hashes import hamming
from smartray.sanitize.ops import orient
from smartray.testing import files
from smartray.types import Reason, RejectedInput

NO_BLUR = SanitizeConfig(blur=False)


def decoded(row):
    return cv2.imdecode(np.frombuffer(row["data"], np.uint8), cv2.IMREAD_UNCHANGED)


def test_gps_exif_is_gone_from_the_stored_bytes():
    src = files.jpeg_with_exif(files.pattern(32, 48), gps=(52.52, 13.40))
    assert Image.open(io.BytesIO(src)).getexif().get_ifd(files.GPS_IFD)  # the source has GPS
    row = sanitize_image(src, config=NO_BLUR, name="gps.jpg")
    stored = Image.open(io.BytesIO(row["data"]))
    assert len(stored.getexif()) == 0
    assert "exif" not in stored.info
    assert b"Exif\x00\x00" not in row["data"]
    assert b"SmartrayTestCam" not in row["data"]
    assert row["captured_at"].isoformat() == "2021-06-01T12:34:56"


def test_png_text_chunks_are_dropped():
    im = Image.fromarray(files.pattern(8, 8)[:, :, ::-1])
    from PIL import PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "secret location")
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=meta)
    row = sanitize_image(buf.getvalue(), config=NO_BLUR, name="t.png")
    assert b"secret location" not in row["data"]
    assert b"tEXt" not in row["data"]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied(orientation):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:10, :20] = 255  # a white top-left quarter
    expected = orient(img, orientation)
    src = files.jpeg_with_exif(img, orientation=orientation, gps=None)
    row = sanitize_image(src, config=NO_BLUR, name="o.jpg")
    out = decoded(row)
    assert (row["height"], row["width"]) == expected.shape[:2]
    assert row["orientation"] == orientation
    white = out[..., 0] > 128
    assert np.mean(white == (expected[..., 0] > 128)) > 0.95


def test_orientation_6_rotates_clockwise():
    img = np.zeros((2, 4, 3), np.uint8)
    img[0, 0] = 255  # top-left pixel
    out = orient(img, 6)
    assert out.shape[:2] == (4, 2)
    assert out[0, 1].max() == 255  # now top-right


def test_jpeg_source_stays_jpeg_q90_and_png_source_becomes_png():
    row = sanitize_image(files.jpeg(files.pattern(16, 16)), config=NO_BLUR, name="a.jpg")
    assert (row["format"], row["source_format"]) == ("jpeg", "jpeg")
    assert row["data"][:3] == b"\xff\xd8\xff"
    row = sanitize_image(files.png(files.pattern(16, 16)), config=NO_BLUR, name="a.png")
    assert (row["format"], row["data"][:4]) == ("png", b"\x89PNG")
    assert np.array_equal(decoded(row), files.pattern(16, 16))  # lossless kept lossless


def test_cmyk_jpeg_becomes_three_channel_jpeg():
    row = sanitize_image(files.cmyk_jpeg(16, 16), config=NO_BLUR, name="cmyk.jpg")
    assert row["channels"] == 3
    assert row["format"] == "jpeg"
    assert decoded(row).shape == (16, 16, 3)


def test_16_bit_png_is_scaled_to_8_bit():
    row = sanitize_image(files.png16(16, 16), config=NO_BLUR, name="deep.png")
    out = decoded(row)
    assert out.dtype == np.uint8
    assert np.array_equal(out, files.pattern(16, 16, 1))  # 16-bit value v*257 >> 8 == v
    assert row["channels"] == 1
    assert row["is_grayscale"]


def test_grayscale_jpeg():
    row = sanitize_image(files.jpeg(files.pattern(16, 16, 1)), config=NO_BLUR, name="g.jpg")
    assert row["channels"] == 1
    assert row["is_grayscale"]
    assert decoded(row).ndim == 2


def test_rgba_png_keeps_alpha_as_png():
    row = sanitize_image(files.rgba_png(16, 16), config=NO_BLUR, name="rgba.png")
    out = decoded(row)
    assert row["format"] == "png"
    assert row["channels"] == 4
    assert out.shape == (16, 16, 4)
    assert out[:, :8, 3].max() == 0
    assert out[:, 8:, 3].min() == 255


def test_animated_gif_first_frame():
    row = sanitize_image(files.animated_gif(8, 8, frames=3), config=NO_BLUR, name="a.gif")
    out = decoded(row)
    assert row["format"] == "png"
    assert row["source_format"] == "gif"
    assert out.shape == (8, 8, 3)
    assert tuple(out[0, 0]) == (0, 0, 255)  # BGR red: the first frame


def test_metrics():
    flat = np.full((32, 32, 3), 200, np.uint8)
    row = sanitize_image(files.png(flat), config=NO_BLUR, name="flat.png")
    assert row["blur"] == pytest.approx(0.0, abs=1e-6)
    assert row["brightness"] == pytest.approx(200 / 255, abs=1e-3)
    assert row["contrast"] == pytest.approx(0.0, abs=1e-6)
    assert row["is_grayscale"]
    sharp = sanitize_image(files.png(files.pattern(32, 32)), config=NO_BLUR, name="s.png")
    assert sharp["blur"] > 100
    assert sharp["contrast"] > 0.05
    assert not sharp["is_grayscale"]
    assert sharp["aspect"] == 1.0


def test_perceptual_hash_is_stable_under_recompression_and_differs_between_images():
    from skimage import data

    a = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)
    b = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    ra = sanitize_image(files.jpeg(a, 95), config=NO_BLUR, name="a.jpg")
    ra2 = sanitize_image(files.jpeg(a, 60), config=NO_BLUR, name="a2.jpg")
    rb = sanitize_image(files.jpeg(b, 95), config=NO_BLUR, name="b.jpg")
    assert hamming(ra["phash"], ra2["phash"]) <= 4
    assert hamming(ra["phash"], rb["phash"]) > 16
    assert hamming(ra["dhash"], ra2["dhash"]) <= 6


def test_thumbnail_is_a_small_jpeg():
    row = sanitize_image(files.jpeg(files.pattern(300, 500)), config=NO_BLUR, name="t.jpg")
    thumb = cv2.imdecode(np.frombuffer(row["thumbnail"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert row["thumbnail"][:3] == b"\xff\xd8\xff"
    assert max(thumb.shape[:2]) == 128
    assert thumb.shape[:2] == (77, 128)


def test_astronaut_face_is_blurred_and_not_found_again():
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    assert FaceDetector()(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))  # the photo has a face
    row = sanitize_image(files.jpeg(img), config=SanitizeConfig(), name="astronaut.jpg")
    assert row["blurred_regions"] >= 1
    out = cv2.imdecode(np.frombuffer(row["data"], np.uint8), cv2.IMREAD_GRAYSCALE)
    assert FaceDetector()(out) == []
    # Metrics and hashes describe the photo, not the blur.
    plain = sanitize_image(files.jpeg(img), config=NO_BLUR, name="astronaut.jpg")
    assert row["phash"] == plain["phash"]
    assert row["blur"] == plain["blur"]


def test_blur_off_keeps_faces():
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    row = sanitize_image(files.jpeg(img), config=NO_BLUR, name="astronaut.jpg")
    assert row["blurred_regions"] == 0
    out = cv2.imdecode(np.frombuffer(row["data"], np.uint8), cv2.IMREAD_GRAYSCALE)
    assert FaceDetector()(out)


class BoxEverything:
    def __call__(self, gray):
        return [(0, 0, gray.shape[1], gray.shape[0])]


def test_detector_is_pluggable_by_import_path():
    cfg = SanitizeConfig(detectors=(f"{__name__}:BoxEverything",))
    row = sanitize_image(files.png(files.pattern(64, 64)), config=cfg, name="p.png")
    assert row["blurred_regions"] == 1
    assert decoded(row).std() < files.pattern(64, 64).std() / 2


def test_unknown_detector_lists_the_valid_ones():
    from smartray.errors import ConfigError

    with pytest.raises(ConfigError, match="face"):
        sanitize_image(files.png(files.pattern()), config=SanitizeConfig(detectors=("eyes",)))


def test_undecodable_pixels_are_corrupt():
    good = files.jpeg(files.pattern(64, 64))
    sos = good.index(b"\xff\xda")
    broken = good[:sos] + b"\xff\xda\x00\x02" + b"\xff\xd9"  # a scan with no data
    with pytest.raises(RejectedInput) as e:
        sanitize_image(broken, config=NO_BLUR, name="b.jpg")
    assert e.value.reason in (Reason.CORRUPT, Reason.TRUNCATED)
