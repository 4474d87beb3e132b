"""What every label format module provides, and the output folder writers write into.

A format module has:

- `read(path, resolver, entry_prefix="") -> Parsed`: the annotation objects of a label
  file (or folder) with their asset ids resolved, and a `Refusal` for every entry that
  cannot be imported. It raises `LabelFileError` when the file itself is unusable (not
  JSON, not this format): nothing is imported then.
- `Writer(out, ontology, image_url_prefix, rotated=)`: `add(image, annotations)` once per
  image, in chunks as the export streams, then `close()`; memory stays bounded by one
  chunk. `add` returns a `Refusal` for each object the format cannot hold as it is: an
  object is written unchanged or left out with a reason, never changed to fit.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import IO, Protocol

import pyarrow.fs as pafs

from smartray.annotate.model import NOT_IN_FORMAT, Annotation, Parsed, Refusal
from smartray.annotate.resolve import Resolver
from smartray.errors import ConfigError


class LabelFileError(ConfigError):
    """A label file that cannot be read as the format named: nothing is imported."""


@dataclass(frozen=True)
class ImageMeta:
    """An exported image, as label writers see it.

    Attributes:
        asset_id: The asset.
        width: Pixels.
        height: Pixels.
        file_name: Path of the written image relative to the export root
            (`images/<asset_id>.jpg`).
        url: What annotation tools should load (a URL prefix + file name, or file_name).
    """

    asset_id: str
    width: int
    height: int
    file_name: str
    url: str


class OutDir:
    """An export root: a local folder or an `s3://bucket/prefix`."""

    def __init__(self, uri: str):
        if "://" in uri and not uri.startswith("s3://"):
            raise ConfigError(f"--out {uri!r}: use a local folder or s3://bucket/prefix")
        self.uri = uri.rstrip("/")
        self._made: set[str] = set()
        if uri.startswith("s3://"):
            from smartray.tables.storage import LakeLocation

            self.fs, self.root = LakeLocation.from_uri(uri).filesystem()
        else:
            import os

            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(uri)
            self.fs.create_dir(self.root, recursive=True)

    def path(self, rel: str) -> str:
        """The full path of `rel` in the filesystem."""
        return posixpath.join(self.root, rel)

    def open(self, rel: str) -> IO[bytes]:
        """A writable stream for `rel` (parent folders are made)."""
        parent = posixpath.dirname(self.path(rel))
        if isinstance(self.fs, pafs.LocalFileSystem) and parent not in self._made:
            self.fs.create_dir(parent, recursive=True)
            self._made.add(parent)
        stream: IO[bytes] = self.fs.open_output_stream(self.path(rel))
        return stream

    def write(self, rel: str, data: bytes) -> None:
        """Writes `data` to `rel`."""
        with self.open(rel) as f:
            f.write(data)


def left_out(ann: Annotation, fmt: str, why: str) -> Refusal:
    """An object an export cannot write: `why` says what format `fmt` lacks."""
    return Refusal(ann.describe(), NOT_IN_FORMAT, f"{fmt}: {why}")


class Writer(Protocol):
    """A streaming label writer."""

    def add(self, image: ImageMeta, annotations: list[Annotation]) -> list[Refusal]:
        """Adds one image and its objects; returns those left out, and why."""

    def close(self) -> list[str]:
        """Finishes the files; returns their paths relative to the export root."""


class Reader(Protocol):
    """A format's `read` function."""

    def __call__(self, path: str, resolver: Resolver) -> Parsed:
        """Reads a label file."""
