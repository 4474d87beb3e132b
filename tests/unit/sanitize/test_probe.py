import pytest

from smartray.sanitize.probe import probe, sniff_format
from smartray.testing import files
from smartray.types import Reason, RejectedInput

LIMIT = 100_000_000


def reason_of(data, name="x.jpg", max_pixels=LIMIT):
    with pytest.raises(RejectedInput) as e:
        probe(data, max_pixels=max_pixels, name=name)
    return e.value.reason


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (files.jpeg(files.pattern()), "jpeg"),
        (files.png(files.pattern()), "png"),
        (files.animated_gif(), "gif"),
        (b"BM" + b"\0" * 60, "bmp"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "webp"),
        (b"II*\0" + b"\0" * 10, "tiff"),
        (b"\0\0\0\x18ftypheic", None),
    ],
)
def test_sniff_format(data, fmt):
    assert sniff_format(data) == fmt


def test_empty():
    assert reason_of(b"") == Reason.EMPTY


def test_random_bytes_named_jpg_are_corrupt():
    assert reason_of(files.random_bytes(), name="photo.jpg") == Reason.CORRUPT


def test_non_image_file_is_unsupported_format():
    assert reason_of(b"hello, world\n", name="notes.txt") == Reason.UNSUPPORTED_FORMAT


def test_truncated_jpeg_is_truncated_even_though_decoders_return_pixels(monkeypatch):
    import io

    from PIL import Image, ImageFile

    data = files.truncated(files.jpeg(files.pattern(64, 64)))
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert Image.open(io.BytesIO(data)).convert("RGB").size == (64, 64)  # grey rows, no error
    assert reason_of(data) == Reason.TRUNCATED


def test_truncated_png():
    assert reason_of(files.truncated(files.png(files.pattern(64, 64))), "x.png") == Reason.TRUNCATED


def test_jpeg_cut_inside_header_is_truncated():
    assert reason_of(files.jpeg(files.pattern(64, 64))[:40]) == Reason.TRUNCATED


def test_pixel_bomb_is_refused_from_the_header():
    assert reason_of(files.png_bomb_header(), "bomb.png") == Reason.TOO_MANY_PIXELS


def test_pixel_limit_is_configurable():
    data = files.png(files.pattern(20, 20))
    assert reason_of(data, "x.png", max_pixels=399) == Reason.TOO_MANY_PIXELS
    assert probe(data, max_pixels=400).width == 20


def test_exif_orientation_and_capture_time_are_read():
    info = probe(files.jpeg_with_exif(files.pattern(16, 24), orientation=6), max_pixels=LIMIT)
    assert info.orientation == 6
    assert info.captured_at.isoformat() == "2021-06-01T12:34:56"
    assert (info.width, info.height) == (24, 16)


def test_animated_gif_frames_counted():
    assert probe(files.animated_gif(frames=3), max_pixels=LIMIT).frames == 3
