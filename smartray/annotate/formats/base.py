"""What every label format module provides, and the output folder writers write into.

A format module has:

- `read(path, resolver, entry_prefix="") -> Parsed`: the annotation objects of a label
  file (or folder) with their asset ids resolved, and a `Refusal` for every entry that
  cannot be imported. It raises `LabelFileError` when the file itself is unusable (not
  JSON, not this format): nothing is imported then.
- `Writer(out, ontology, image_url_prefix, rotated=)`: `add(image, annotations,
  predicted=None)` once per image, in chunks as the export streams, then `close()`;
  memory stays bounded by one chunk. `add` returns, as `Added`, a `Refusal` for each
  object the format cannot hold as it is: an object is written unchanged or left out with
  a reason, never changed to fit. `predicted` is a model's guess of the image's class (an
  active-learning batch's `Prediction`): written as a pre-annotation, kept apart from the
  approved labels (Label Studio: its own `predictions` entry; CVAT: a `source="auto"`
  tag with a score), or left out with a reason (`Added.guess`) where the format or the
  ontology has no image class to hold it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import IO, NamedTuple, Protocol

import pyarrow.fs as pafs

from smartray.annotate.model import (
    KIND_NOT_IN_ONTOLOGY,
    NOT_IN_FORMAT,
    UNKNOWN_CLASS,
    Annotation,
    Parsed,
    Refusal,
)
from smartray.annotate.ontology import Ontology
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


@dataclass(frozen=True)
class Prediction:
    """A model's guess of an image's class, exported as a pre-annotation.

    Annotators start from it; it is never one of the approved labels, and importing the
    tool's export back reads only what annotators submitted.

    Attributes:
        model_id: The model that guessed (`models.model_id`).
        label: The class it guessed, by name (classes are matched by name).
        class_id: That class's id, as the model knew it.
        score: The model's confidence, or None.
    """

    model_id: str
    label: str
    class_id: int | None = None
    score: float | None = None

    @property
    def entry(self) -> str:
        """What it is, for refusal messages."""
        return f"class guess {self.label!r} of model {self.model_id}"

    def annotation(self, asset_id: str) -> Annotation:
        """The guess as an image `class` object with the model's score."""
        return Annotation.make(asset_id, "class", self.label, score=self.score)

    def left_out(self, fmt: str, why: str, reason: str = NOT_IN_FORMAT) -> Refusal:
        """The guess, not written: `why` says what format `fmt` lacks."""
        return Refusal(self.entry, reason, f"{fmt}: {why}")

    def check(self, ontology: Ontology, fmt: str) -> Refusal | None:
        """Why `ontology` cannot hold the guess (no image class kind, an unknown class)."""
        onto = f"ontology {ontology.name} v{ontology.version}"
        if "class" not in ontology.kinds:
            why = f"{onto} has no image class (kind `class`): the model's guesses are not written"
            return self.left_out(fmt, why, KIND_NOT_IN_ONTOLOGY)
        if ontology.class_by_name(self.label) is None:
            why = f"class {self.label!r} of model {self.model_id} is not in {onto}"
            return self.left_out(fmt, why, UNKNOWN_CLASS)
        return None


class Added(NamedTuple):
    """What `Writer.add` left out, and why."""

    refused: list[Refusal]  # approved objects the format cannot hold
    guess: Refusal | None = None  # the model's guess, if one was given and not written


class Writer(Protocol):
    """A streaming label writer."""

    def add(
        self,
        image: ImageMeta,
        annotations: list[Annotation],
        predicted: Prediction | None = None,
    ) -> Added:
        """Adds one image, its approved objects and the model's guess, if any."""

    def close(self) -> list[str]:
        """Finishes the files; returns their paths relative to the export root."""


class Reader(Protocol):
    """A format's `read` function."""

    def __call__(self, path: str, resolver: Resolver) -> Parsed:
        """Reads a label file."""
