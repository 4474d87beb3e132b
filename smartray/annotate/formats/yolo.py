"""YOLO detection and segmentation text labels: Ultralytics, Darknet and `classes.txt`.

Export: `labels/<asset_id>.txt` next to `images/<asset_id>.<ext>`, one line per object,
coordinates normalized to the image size: a box is `class cx cy w h`, a polygon a
segment line `class x1 y1 x2 y2 ...`; a model's score is appended as one more number
(`class cx cy w h score`, Ultralytics' `save_conf` layout). The class index is the
ontology class id. `data.yaml` has `train`/`val` (`images`), `nc` and `names` as a dict
`{id: name}`; ids the ontology does not use are named `_unused_<id>`, since Ultralytics
wants indices 0..nc-1 (no line uses them). It has no `path`: Ultralytics then takes the
folder of `data.yaml` as the dataset root (`path: .` would mean its datasets folder).
Image-level classes and tags, and attributes, have no place in YOLO and are not exported;
nor is a model's guess of the image's class (an active-learning batch's pre-annotation),
which is left out with a reason.
Left out with a reason: crowd regions and masks (YOLO has neither), polygons of several
parts (a segment line holds one), and rotated boxes unless asked: `rotated="polygon"`
writes one as a segment line of its four corners, `rotated="obb"` writes Ultralytics'
OBB layout (`class x1 y1 x2 y2 x3 y3 x4 y4`, every box; polygons are left out then).

Import: `path` is the dataset root or its class-names file. The class names come from
whichever the dataset has, in this order: `data.yaml` (Ultralytics: `names` a list or a
mapping), `obj.data` (Darknet: its `names = data/obj.names` line, looked up under the
root), `obj.names` or `classes.txt` (one name per line: what CVAT's YOLO 1.1 and the
Label Studio converter write). Label files: every `*.txt` under a `labels` folder is one
image's labels, its image the file of the same stem in the matching `images` folder
(`labels/train/x.txt` -> `images/train/x.*`, Ultralytics' rule); any other `*.txt` with
an image of the same stem next to it is that image's labels (Darknet's rule:
`obj_train_data/x.jpg` + `x.txt`; `train.txt` and the names files have no such image).
A stem that is an asset id (what smartray exports write) names its asset; otherwise the
image file is hashed. Image files are read under `--image-root`, which defaults to the
dataset root (a given one must contain the dataset). Line counts tell the kinds apart:
4 numbers a box, 5 a box and score, an even number >= 6 a polygon (an OBB line reads as
its 4-point polygon), an odd one >= 7 a polygon and score.
"""

from __future__ import annotations

import math
import os
import posixpath
from dataclasses import replace
from typing import Any

import yaml

from smartray.annotate.formats.base import (
    Added,
    ImageMeta,
    LabelFileError,
    OutDir,
    Prediction,
    left_out,
)
from smartray.annotate.formats.folders import IMAGE_EXTENSIONS, under_root
from smartray.annotate.geometry import box_corners
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
DARKNET, NAMES_FILES = "obj.data", ("obj.names", "classes.txt")
LABELS, IMAGES = "labels", "images"
NO_GUESSES = "YOLO has no image-level class: the model's class guesses are not written"


def _num(v: float) -> str:
    # 10 significant digits: back in pixels, far below the 0.01 px that payloads keep
    return f"{v:.10g}"


class Writer:
    """Writes one label file per image, and `data.yaml` at the end."""

    def __init__(
        self,
        out: OutDir,
        ontology: Ontology,
        image_url_prefix: str | None = None,
        *,
        rotated: str = "refuse",
    ):
        self.out, self.ontology, self.rotated = out, ontology, rotated

    def add(
        self,
        image: ImageMeta,
        annotations: list[Annotation],
        predicted: Prediction | None = None,
    ) -> Added:
        """Writes the image's label file (empty if it has no box or polygon)."""
        w, h = image.width, image.height
        lines, refused = [], []
        for ann in annotations:
            if ann.kind not in ("box", "polygon"):
                refused.append(left_out(ann, "yolo", "YOLO has no image-level classes or tags"))
                continue
            values = self._values(ann, w, h)
            if isinstance(values, str):
                refused.append(left_out(ann, "yolo", values))
                continue
            cls = self.ontology.class_by_name(ann.label)
            assert cls is not None, ann.label
            if ann.score is not None:
                values.append(ann.score)
            lines.append(" ".join([str(cls.id), *(_num(v) for v in values)]) + "\n")
        stem = posixpath.splitext(posixpath.basename(image.file_name))[0]
        self.out.write(f"{LABELS}/{stem}.txt", "".join(lines).encode())
        return Added(refused, None if predicted is None else predicted.left_out("yolo", NO_GUESSES))

    def _values(self, ann: Annotation, w: int, h: int) -> list[float] | str:
        """The normalized numbers of `ann`'s line, or why it has none."""
        if ann.iscrowd:
            return "YOLO has no crowd (ignore) regions"
        if ann.rle is not None:
            return "a mask: YOLO lines hold boxes and polygons"
        if ann.parts:
            return f"a YOLO segment line holds one polygon, this one has {1 + len(ann.parts)}"
        if ann.points:
            if self.rotated == "obb":
                return "an OBB dataset (--rotated obb) holds oriented boxes only"
            return [c for x, y in ann.points for c in (x / w, y / h)]
        assert ann.bbox is not None
        if self.rotated == "obb" or (ann.rotation and self.rotated == "polygon"):
            return [c for x, y in box_corners(ann.bbox, ann.rotation) for c in (x / w, y / h)]
        if ann.rotation:
            return "YOLO boxes are upright (--rotated obb or polygon writes rotated ones)"
        x1, y1, x2, y2 = ann.xyxy()
        return [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]

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
            "class index = ontology class id"
            + ("; oriented boxes (Ultralytics OBB)" if self.rotated == "obb" else "")
            + "\n"
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


def _names_list(path: str) -> dict[int, str]:
    """Class names of a `*.names` / `classes.txt` file: one per line, blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise LabelFileError(f"{path!r}: cannot read it as text ({e})") from None
    names = [n for n in lines if n]
    if not names:
        raise LabelFileError(f"{path!r}: no class names in it")
    return dict(enumerate(names))


def _darknet(path: str, root: str) -> dict[int, str]:
    """Class names of a Darknet `obj.data` (its `names = data/obj.names` line)."""
    try:
        with open(path, encoding="utf-8") as f:
            pairs = [line.split("=", 1) for line in f if "=" in line]
    except (OSError, UnicodeDecodeError) as e:
        raise LabelFileError(f"{path!r}: cannot read it as text ({e})") from None
    values = {k.strip(): v.strip() for k, v in pairs}
    ref = values.get("names", "").replace("\\", "/")
    if not ref:
        raise LabelFileError(f"{path!r}: no 'names = ...' line")
    # Darknet paths are relative to where darknet runs (`data/obj.names`), or absolute
    # on the machine that made them: the longest tail of the path under the root
    parts = [p for p in ref.split("/") if p not in ("", ".", "..")]
    for k in range(len(parts)):
        candidate = os.path.join(root, *parts[k:])
        if os.path.isfile(candidate):
            return _names_list(candidate)
    raise LabelFileError(f"{path!r}: its names file {ref!r} is not in {root!r}")


def _dataset(path: str) -> tuple[str, dict[int, str]]:
    """(root folder, class names) of the dataset `path` names."""
    if os.path.isdir(path):
        root = os.path.abspath(path)
        for name in (FILE, DARKNET, *NAMES_FILES):
            if os.path.isfile(os.path.join(root, name)):
                return _dataset(os.path.join(root, name))
        raise LabelFileError(
            f"{path!r}: no {FILE}, {DARKNET}, {' or '.join(NAMES_FILES)} in it "
            "(give the YOLO dataset root)"
        )
    if not os.path.isfile(path):
        raise LabelFileError(f"{path!r}: no such folder or file")
    root, name = os.path.split(os.path.abspath(path))
    if name.endswith((".yaml", ".yml")):
        return root, _names(path)
    if name.endswith(".data"):
        return root, _darknet(path, root)
    return root, _names_list(path)


def _label_files(root: str) -> list[tuple[str, str | None]]:
    """(label file, its image or None: found by Ultralytics' rule) relative to `root`.

    Every `*.txt` under a `labels` folder, and every other `*.txt` with an image of the
    same stem next to it (links are not walked).
    """
    found: list[tuple[str, str | None]] = []
    for here, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        rel = os.path.relpath(here, root)
        parts = [] if rel == "." else rel.split(os.sep)
        if LABELS in parts:
            found += [("/".join([*parts, f]), None) for f in sorted(files) if f.endswith(".txt")]
            continue
        images: dict[str, str] = {}
        for f in sorted(files):
            stem, ext = os.path.splitext(f)
            if ext.lower() in IMAGE_EXTENSIONS:
                images.setdefault(stem, f)
        for f in sorted(files):
            stem, ext = os.path.splitext(f)
            if ext == ".txt" and stem in images:
                found.append(("/".join([*parts, f]), "/".join([*parts, images[stem]])))
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
        wanted = posixpath.splitext(parts[-1])[0]
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(os.path.join(self.root, folder))
        if os.path.commonpath([real_root, real]) != real_root:
            return f"{folder}/{wanted}"  # a link out of the dataset: never listed; refused
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
        name = self._dirs[folder].get(wanted)
        return None if name is None else f"{folder}/{name}"


def read(path: str, resolver: Resolver) -> Parsed:
    """Reads a YOLO dataset's labels; entries that cannot be imported become refusals."""
    root, names = _dataset(path)
    label_files = _label_files(root)
    if not label_files and not os.path.isdir(os.path.join(root, LABELS)):
        raise LabelFileError(
            f"{path!r}: no {LABELS}/ folder of *.txt files, and no *.txt next to an image"
        )
    resolver = under_root(resolver, root)
    assert resolver.image_root is not None
    image_root = os.path.abspath(resolver.image_root)
    images = _Images(root)
    parsed = Parsed()
    real_root = os.path.realpath(root)
    for rel, image_rel in label_files:
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
        image = _image(rel, image_rel, images, resolver, root, image_root)
        if isinstance(image, Refusal):
            parsed.refusals.append(replace(image, is_object=False))
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
    rel: str,
    image_rel: str | None,
    images: _Images,
    resolver: Resolver,
    root: str,
    image_root: str,
) -> str | Refusal:
    stem = posixpath.splitext(posixpath.basename(rel))[0]
    if is_asset_id(stem):  # a smartray export: the image need not be read
        return resolver.resolve(None, rel, asset_id=stem)
    if image_rel is None:
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
