"""YOLO (Ultralytics) detection and segmentation text labels.

Export: `labels/<asset_id>.txt` next to `images/<asset_id>.<ext>`, one line per object,
coordinates normalized to the image size: a box is `class cx cy w h`, a polygon a
segment line `class x1 y1 x2 y2 ...`; a model's score is appended as one more number
(`class cx cy w h score`, Ultralytics' `save_conf` layout). The class index is the
ontology class id. `data.yaml` has `train`/`val` (`images`), `nc` and `names` as a dict
`{id: name}`; ids the ontology does not use are named `_unused_<id>`, since Ultralytics
wants indices 0..nc-1 (no line uses them). It has no `path`: Ultralytics then takes the
folder of `data.yaml` as the dataset root (`path: .` would mean its datasets folder).
Image-level classes and tags, and attributes, have no place in YOLO and are not exported.

Import: `path` is the dataset root (the folder holding `data.yaml`) or a YAML file in it.
Every `*.txt` under a `labels` folder is one image's labels; its image is the file of the
same stem in the matching `images` folder (`labels/train/x.txt` -> `images/train/x.*`,
Ultralytics' rule). A stem that is an asset id (what smartray exports write) names its
asset; otherwise the image file is hashed. Image files are read under `--image-root`,
which defaults to the dataset root (a given one must contain the dataset). Line counts
tell the kinds apart: 4 numbers a box, 5 a box and score, an even number >= 6 a polygon,
an odd one >= 7 a polygon and score.
"""

from __future__ import annotations

import math
import os
import posixpath
from typing import Any

import yaml

from smartray.annotate.formats.base import ImageMeta, LabelFileError, OutDir
from smartray.annotate.formats.folders import IMAGE_EXTENSIONS, under_root
from smartray.annotate.model import (
    BAD_ENTRY,
    PATH_ESCAPE,
    UNKNOWN_ASSET,
    UNKNOWN_CLASS,
    Annotation,
    Parsed,
    Refusal,
)
from smartray.annotate.ontology import Ontology
from smartray.annotate.resolve import Resolver, is_asset_id

FILE = "data.yaml"
LABELS, IMAGES = "labels", "images"


def _num(v: float) -> str:
    # 10 significant digits: back in pixels, far below the 0.01 px that payloads keep
    return f"{v:.10g}"


class Writer:
    """Writes one label file per image, and `data.yaml` at the end."""

    def __init__(self, out: OutDir, ontology: Ontology, image_url_prefix: str | None = None):
        self.out, self.ontology = out, ontology

    def add(self, image: ImageMeta, annotations: list[Annotation]) -> None:
        """Writes the image's label file (empty if it has no box or polygon)."""
        w, h = image.width, image.height
        lines = []
        for ann in annotations:
            if ann.kind not in ("box", "polygon"):
                continue
            cls = self.ontology.class_by_name(ann.label)
            assert cls is not None, ann.label
            if ann.points:
                values = [c for x, y in ann.points for c in (x / w, y / h)]
            else:
                x1, y1, x2, y2 = ann.xyxy()
                values = [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
            if ann.score is not None:
                values.append(ann.score)
            lines.append(" ".join([str(cls.id), *(_num(v) for v in values)]) + "\n")
        stem = posixpath.splitext(posixpath.basename(image.file_name))[0]
        self.out.write(f"{LABELS}/{stem}.txt", "".join(lines).encode())

    def close(self) -> list[str]:
        """Writes `data.yaml`."""
        by_id = {c.id: c.name for c in self.ontology.classes}
        nc = max(by_id) + 1
        doc: dict[str, Any] = {
            "train": IMAGES,
            "val": IMAGES,
            "nc": nc,
            "names": {i: by_id.get(i, f"_unused_{i}") for i in range(nc)},
        }
        head = (
            f"# smartray export, ontology {self.ontology.name} v{self.ontology.version}; "
            "class index = ontology class id\n"
        )
        text = head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        self.out.write(FILE, text.encode())
        return [FILE, f"{LABELS}/"]


def _names(path: str) -> dict[int, str]:
    try:
        with open(path, "rb") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise LabelFileError(f"{path!r}: cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise LabelFileError(f"{path!r}: not YAML ({e})") from None
    if not isinstance(doc, dict) or "names" not in doc:
        raise LabelFileError(f"{path!r}: not a YOLO data.yaml (no 'names')")
    names = doc["names"]
    if isinstance(names, list):
        return {i: str(n) for i, n in enumerate(names)}
    if isinstance(names, dict):
        try:
            return {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise LabelFileError(f"{path!r}: 'names' keys must be class indices") from None
    raise LabelFileError(f"{path!r}: 'names' must be a list or a mapping of index to name")


def _dataset(path: str) -> tuple[str, str]:
    """(root folder, YAML file) of the dataset `path` names."""
    if os.path.isdir(path):
        yml = os.path.join(path, FILE)
        if not os.path.isfile(yml):
            raise LabelFileError(f"{path!r}: no {FILE} in it (give the YOLO dataset root)")
        return os.path.abspath(path), yml
    if not os.path.isfile(path):
        raise LabelFileError(f"{path!r}: no such folder or file")
    return os.path.dirname(os.path.abspath(path)), path


def _label_files(root: str) -> list[str]:
    """Relative paths of the `*.txt` files under `labels` folders (links not walked)."""
    found = []
    for here, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        rel = os.path.relpath(here, root)
        parts = [] if rel == "." else rel.split(os.sep)
        if LABELS not in parts:
            continue
        found += ["/".join([*parts, f]) for f in sorted(files) if f.endswith(".txt")]
    return found


class _Images:
    """Image files by stem, per `images` folder (each folder listed once)."""

    def __init__(self, root: str):
        self.root = root
        self._dirs: dict[str, dict[str, str]] = {}

    def find(self, label_rel: str) -> str | None:
        """The image path (relative to the root) that labels `label_rel`."""
        parts = label_rel.split("/")
        i = len(parts) - 1 - parts[::-1].index(LABELS)
        folder = "/".join([*parts[:i], IMAGES, *parts[i + 1 : -1]])
        if folder not in self._dirs:
            try:
                names = sorted(os.listdir(os.path.join(self.root, folder)))
            except OSError:
                names = []
            stems: dict[str, str] = {}
            for n in names:
                stem, ext = os.path.splitext(n)
                if ext.lower() in IMAGE_EXTENSIONS:
                    stems.setdefault(stem, n)
            self._dirs[folder] = stems
        name = self._dirs[folder].get(posixpath.splitext(parts[-1])[0])
        return None if name is None else f"{folder}/{name}"


def read(path: str, resolver: Resolver) -> Parsed:
    """Reads a YOLO dataset's labels; entries that cannot be imported become refusals."""
    root, yml = _dataset(path)
    names = _names(yml)
    label_files = _label_files(root)
    if not label_files and not os.path.isdir(os.path.join(root, LABELS)):
        raise LabelFileError(f"{path!r}: no {LABELS}/ folder of *.txt files next to {FILE}")
    resolver = under_root(resolver, root)
    assert resolver.image_root is not None
    image_root = os.path.abspath(resolver.image_root)
    images = _Images(root)
    parsed = Parsed()
    real_root = os.path.realpath(root)
    for rel in label_files:
        full = os.path.join(root, rel)
        if os.path.commonpath([real_root, os.path.realpath(full)]) != real_root:
            parsed.refusals.append(
                Refusal(rel, PATH_ESCAPE, "the label file resolves outside the dataset (a symlink)")
            )
            continue
        try:
            with open(full, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            parsed.refusals.append(Refusal(rel, BAD_ENTRY, f"cannot read it as text ({e})"))
            continue
        numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
        if not numbered:
            continue
        image = _image(rel, images, resolver, root, image_root)
        for n, line in numbered:
            entry = f"{rel} line {n}"
            if isinstance(image, Refusal):
                parsed.refusals.append(Refusal(entry, image.reason, f"its image: {image.detail}"))
                continue
            found = _parse(line, image, names, resolver.sizes[image], entry)
            if isinstance(found, Refusal):
                parsed.refusals.append(found)
            else:
                parsed.annotations.append(found)
                parsed.entries.append(entry)
    return parsed


def _image(
    rel: str, images: _Images, resolver: Resolver, root: str, image_root: str
) -> str | Refusal:
    stem = posixpath.splitext(posixpath.basename(rel))[0]
    if is_asset_id(stem):  # a smartray export: the image need not be read
        return resolver.resolve(None, rel, asset_id=stem)
    image_rel = images.find(rel)
    if image_rel is None:
        return Refusal(rel, UNKNOWN_ASSET, f"no image named {stem}.* in the images folder")
    full = os.path.join(root, *image_rel.split("/"))
    return resolver.resolve(os.path.relpath(full, image_root).replace(os.sep, "/"), rel)


def _parse(
    line: str, asset_id: str, names: dict[int, str], size: tuple[int, int], entry: str
) -> Annotation | Refusal:
    tokens = line.split()
    try:
        index = int(tokens[0])
        values = [float(t) for t in tokens[1:]]
    except ValueError:
        return Refusal(entry, BAD_ENTRY, "expected a class index and numbers")
    n = len(values)
    if n < 4:
        return Refusal(entry, BAD_ENTRY, f"{n} numbers: a box has 4, a polygon 6 or more")
    if not all(math.isfinite(v) for v in values):
        return Refusal(entry, BAD_ENTRY, "a coordinate is not a finite number")
    label = names.get(index)
    if label is None:
        return Refusal(entry, UNKNOWN_CLASS, f"class index {index} is not in 'names'")
    score = values.pop() if n % 2 else None  # 5, 7, 9...: the last number is a score
    w, h = size
    if len(values) == 4:
        cx, cy, bw, bh = values
        box = ((cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h)
        return Annotation.make(asset_id, "box", label, bbox=box, score=score)
    points = [(x * w, y * h) for x, y in zip(values[0::2], values[1::2], strict=True)]
    return Annotation.make(asset_id, "polygon", label, points=points, score=score)
