"""Real photos from Debian packages, unpacked under .cache/ by `make test` (or installed)."""

from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[3]
OPENCV_DOC = "usr/share/doc/opencv-doc/examples/data"
MATE = "usr/share/backgrounds/mate"


def _folder(package: str, inside: str) -> Path:
    for base in (Path("/"), _ROOT / ".cache" / package):
        if (base / inside).is_dir():
            return base / inside
    pytest.fail(f"Debian {package} is not unpacked: `make test` fetches it into .cache/")


def opencv_doc(name: str) -> bytes:
    """A sample image of Debian's opencv-doc."""
    return (_folder("opencv-doc", OPENCV_DOC) / name).read_bytes()


def mate(name: str) -> bytes:
    """A wallpaper of Debian's mate-backgrounds (`nature/Blinds.jpg`)."""
    return (_folder("mate-backgrounds", MATE) / name).read_bytes()


# opencv-doc's chessboard calibration shots. left06 and right06 show a man's profile next
# to the board (no frontal face); in the others the board hides his face.
CALIBRATION = [f"{side}{i:02d}.jpg" for side in ("left", "right") for i in range(1, 15) if i != 10]
