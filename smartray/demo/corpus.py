"""The demo corpus: real photos, digits and videos from packages, plus broken files.

scikit-image's sample photos (the astronaut portrait among them, so face blurring shows)
and scikit-learn's handwritten digits rendered as PNGs; one photo copied under a second
name (an exact duplicate), one with GPS EXIF; real videos from Debian's `opencv-doc`
(`vtest.avi`, pedestrians, and `Megamind.avi`) where they are found, and a generated
clip with scene cuts; and a handful of broken files, each of which ends as a
`quarantine` row with its reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from smartray.sanitize.cv import cv2
from smartray.testing import files

PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "coins",
    "hubble_deep_field",
    "retina",
)

# Broken files and the reason each should get.
BROKEN = {
    "broken/empty.jpg": "empty",
    "broken/random-bytes.jpg": "corrupt",
    "broken/truncated.jpg": "truncated",
    "broken/truncated.png": "truncated",
    "broken/bomb-30000x30000.png": "too_many_pixels",
    "broken/notes.txt": "unsupported_format",
    "broken/truncated.mp4": "truncated",
    "broken/random-bytes.mp4": "corrupt",
}

REAL_VIDEOS = ("vtest.avi", "Megamind.avi")
# Where Debian's opencv-doc keeps its sample videos: installed, or unpacked by `make demo`
# (`apt-get download opencv-doc` + `dpkg -x` into .cache/opencv-doc).
OPENCV_DOC_DATA = "usr/share/doc/opencv-doc/examples/data"
VIDEO_DIRS = (
    Path("/") / OPENCV_DOC_DATA,
    Path(__file__).resolve().parents[2] / ".cache" / "opencv-doc" / OPENCV_DOC_DATA,
)


def real_videos() -> list[Path]:
    """The opencv-doc sample videos found here (env `SMARTRAY_DEMO_VIDEOS` names a folder)."""
    env = os.environ.get("SMARTRAY_DEMO_VIDEOS")
    for folder in [Path(env)] if env else VIDEO_DIRS:
        found = [folder / name for name in REAL_VIDEOS if (folder / name).is_file()]
        if found:
            return found
    return []


def build_corpus(root: str | os.PathLike[str], *, digits: int = 40) -> Path:
    """Writes the demo corpus under `root` (idempotent: same bytes each time)."""
    from sklearn.datasets import load_digits

    out = Path(root)
    for sub in ("photos", "digits", "broken", "videos"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        _write(out / "photos" / f"{name}.jpg", files.jpeg(_photo(name)))
    astronaut = (out / "photos" / "astronaut.jpg").read_bytes()
    _write(out / "photos" / "astronaut copy.jpg", astronaut)  # same bytes, second name
    chelsea_gps = files.jpeg_with_exif(_photo("chelsea"), orientation=6)
    _write(out / "photos" / "chelsea-with-gps.jpg", chelsea_gps)
    ds = load_digits()
    for i in range(min(digits, len(ds.images))):
        px = (ds.images[i] * (255.0 / 16.0)).astype(np.uint8)
        big = cv2.resize(px, (32, 32), interpolation=cv2.INTER_NEAREST)
        _write(out / "digits" / f"digit-{ds.target[i]}-{i:04d}.png", files.png(big))
    coffee = files.jpeg(_photo("coffee"))
    _write(out / "broken/empty.jpg", b"")
    _write(out / "broken/random-bytes.jpg", files.random_bytes())
    _write(out / "broken/truncated.jpg", files.truncated(coffee))
    _write(out / "broken/truncated.png", files.truncated(files.png(files.pattern(64, 64))))
    _write(out / "broken/bomb-30000x30000.png", files.png_bomb_header())
    _write(out / "broken/notes.txt", b"not an image\n")
    _write_videos(out)
    return out


def _write_videos(out: Path) -> None:
    from smartray.testing.videos import scene_frames, write_video

    for video in real_videos():
        _write(out / "videos" / video.name, video.read_bytes())
    clip = out / "videos" / "scenes.mp4"
    if not clip.exists():  # x264's output is the same each time: written once
        write_video(clip, scene_frames(12, 10, 3.0, width=320, height=240), fps=10, gop=30)
    data = clip.read_bytes()
    _write(out / "broken/truncated.mp4", data[: len(data) // 2])
    _write(out / "broken/random-bytes.mp4", files.random_bytes(seed=11))


def _photo(name: str) -> np.ndarray:
    """A scikit-image sample photo, BGR (or gray) as OpenCV wants it."""
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img


def _write(path: Path, data: bytes) -> None:
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
