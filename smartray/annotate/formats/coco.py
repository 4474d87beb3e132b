"""COCO object detection JSON: boxes (`bbox`), polygons and masks (`segmentation`).

Export: `annotations/instances_default.json`, the layout of CVAT's and Datumaro's COCO
exports, with `images` (`file_name` = `<asset_id>.<ext>`, relative to `images/`, plus
`asset_id`), `categories` (id = ontology class id + 1, so none is 0) and
`annotations`. The two arrays are streamed to temporary files and joined at the end.
Every object has a `segmentation` that pycocotools can turn into a mask, so both its
bbox and segm evaluations run: every part of a polygon, a mask's RLE, and for a plain
box its rectangle (an empty list makes pycocotools' `frPyObjects` raise), marked
`"smartray_kind": "box"` so that it reads back as a box. Crowd regions are written with
`iscrowd: 1`. COCO has no rotated box: one is left out with a reason, or, with
`rotated="polygon"`, written as the polygon of its four corners. Image-level classes and
tags have no place in COCO and are not exported; nor is a model's guess of the image's
class (an active-learning batch's pre-annotation), which is left out with a reason.

Import: images matched by `asset_id`, by a file name that is one, or by the bytes of
`file_name` under the image root (as given, else under `images/`); the image root
defaults to the dataset root (the folder above `annotations/`, or the file's own folder).
Categories are matched to classes by name. A polygon keeps
every part of its `segmentation` (parts of under 3 points have no area and are dropped);
an RLE `segmentation` (compressed or not; decoded with pycocotools to check it) is kept as
the object's mask, with its `bbox`; `iscrowd: 1` is kept as a crowd region. An empty
`segmentation` (`[]`, what CVAT and Datumaro write for boxes) or none makes a box. A non-zero
`attributes.rotation` (how CVAT's COCO export writes a rotated box: `bbox` before the
rotation about its centre) makes a rotated box.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import replace
from typing import Any

from smartray.annotate.formats.base import (
    Added,
    ImageMeta,
    LabelFileError,
    OutDir,
    Prediction,
    left_out,
)
from smartray.annotate.formats.folders import under_root
from smartray.annotate.geometry import polygon_area
from smartray.annotate.model import (
    BAD_ENTRY,
    DUPLICATE_IMAGE_ID,
    UNKNOWN_ASSET,
    Annotation,
    Parsed,
    Refusal,
)
from smartray.annotate.ontology import Ontology
from smartray.annotate.resolve import Resolver

FILE = "annotations/instances_default.json"
NO_GUESSES = "COCO has no image-level class: the model's class guesses are not written"
BOX_MARKER = "smartray_kind"  # "box": the segmentation is only the box's rectangle


class Writer:
    """Streams a COCO file."""

    def __init__(
        self,
        out: OutDir,
        ontology: Ontology,
        image_url_prefix: str | None = None,
        *,
        rotated: str = "refuse",
    ):
        self.out, self.ontology, self.rotated = out, ontology, rotated
        # closed in close(), after they are copied into the final file
        self._images = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._anns = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._n_images = self._n_anns = 0

    def add(
        self,
        image: ImageMeta,
        annotations: list[Annotation],
        predicted: Prediction | None = None,
    ) -> Added:
        """Adds one image and its boxes, polygons and masks; returns those left out."""
        self._n_images += 1
        entry = {
            "id": self._n_images,
            "file_name": image.file_name.removeprefix("images/"),
            "width": image.width,
            "height": image.height,
            "asset_id": image.asset_id,
        }
        self._images.write(("," if self._n_images > 1 else "") + json.dumps(entry))
        refused = []
        for ann in annotations:
            if ann.kind not in ("box", "polygon"):
                refused.append(left_out(ann, "coco", "COCO has no image-level classes or tags"))
                continue
            item = self._item(ann)
            if isinstance(item, Refusal):
                refused.append(item)
                continue
            self._n_anns += 1
            item = {"id": self._n_anns, "image_id": self._n_images, **item}
            self._anns.write(("," if self._n_anns > 1 else "") + json.dumps(item))
        return Added(refused, None if predicted is None else predicted.left_out("coco", NO_GUESSES))

    def _item(self, ann: Annotation) -> dict[str, Any] | Refusal:
        cls = self.ontology.class_by_name(ann.label)
        assert cls is not None, ann.label
        x1, y1, x2, y2 = ann.xyxy()
        # a plain box as its rectangle: pycocotools' segm evaluation needs a mask for
        # every object (`[]` raises in frPyObjects); the marker reads it back as a box
        seg: Any = [[x1, y1, x2, y1, x2, y2, x1, y2]]
        marker = {BOX_MARKER: "box"}
        area = (x2 - x1) * (y2 - y1)
        if ann.rle is not None:
            marker = {}
            seg = {"size": [ann.rle[0], ann.rle[1]], "counts": ann.rle[2]}
            area = rle_area(ann.rle)
        elif ann.points is not None or ann.rotation:
            if ann.rotation and self.rotated != "polygon":
                return left_out(
                    ann, "coco", "COCO has no rotated boxes (--rotated polygon writes its corners)"
                )
            rings = ann.rings()
            seg = [[c for p in ring for c in p] for ring in rings]
            area = sum(polygon_area(ring) for ring in rings)
            marker = {}
        item: dict[str, Any] = {
            "category_id": cls.id + 1,
            "bbox": list(ann.bbox) if ann.bbox and not ann.rotation else [x1, y1, x2 - x1, y2 - y1],
            "area": round(area, 2),
            "segmentation": seg,
            "iscrowd": int(ann.iscrowd),
            **marker,
        }
        if ann.attributes:
            item["attributes"] = dict(ann.attributes)
        if ann.score is not None:
            item["score"] = ann.score
        return item

    def close(self) -> list[str]:
        """Writes the annotation file."""
        cats = [
            {"id": c.id + 1, "name": c.name, "supercategory": ""}
            for c in sorted(self.ontology.classes, key=lambda c: c.id)
        ]
        head = {
            "info": {
                "description": f"smartray export, ontology {self.ontology.name} "
                f"v{self.ontology.version}"
            },
            "licenses": [],
            "categories": cats,
        }
        with self.out.open(FILE) as f:
            f.write(json.dumps(head)[:-1].encode() + b', "images": [')
            for tmp, tail in ((self._images, b'], "annotations": ['), (self._anns, b"]}")):
                tmp.seek(0)
                while chunk := tmp.read(1 << 20):
                    f.write(chunk.encode())
                f.write(tail)
                tmp.close()
        return [FILE]


def rle_area(rle: tuple[int, int, str]) -> float:
    """Pixels in a compressed RLE mask (pycocotools)."""
    from pycocotools import mask as mask_utils  # type: ignore[import-untyped]

    h, w, counts = rle
    return float(mask_utils.area({"size": [h, w], "counts": counts.encode()}))


def _rle(seg: dict[str, Any]) -> tuple[tuple[int, int, str], list[float]]:
    """A COCO RLE segmentation as (height, width, compressed counts), and its bbox.

    Compressed or not, it is checked by decoding it.

    Raises:
        ValueError: not a valid RLE.
    """
    from pycocotools import mask as mask_utils

    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise ValueError(f"an RLE 'size' must be [height, width], not {size!r}")
    h, w = size
    if h <= 0 or w <= 0:
        raise ValueError(f"an RLE of size {h}x{w}")
    if isinstance(counts, list):
        if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != h * w:
            raise ValueError(f"uncompressed RLE counts must be runs summing to {h}x{w}")
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, str):
        rle = {"size": [h, w], "counts": counts.encode()}
    else:
        raise ValueError("RLE 'counts' must be a list of runs or a compressed string")
    if not 0 < float(mask_utils.area(rle)) <= h * w:
        raise ValueError("an RLE that decodes to no pixels, or to more than its size holds")
    box = [float(v) for v in mask_utils.toBbox(rle)]
    return (h, w, rle["counts"].decode()), box


def load_json(path: str) -> Any:
    """Parses a JSON file, or raises `LabelFileError` saying why not."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except OSError as e:
        raise LabelFileError(f"{path!r}: cannot read it ({e.strerror})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise LabelFileError(f"{path!r}: not JSON ({e})") from None


def read(path: str, resolver: Resolver) -> Parsed:
    """Reads a COCO file; entries that cannot be imported become refusals."""
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise LabelFileError(f"{path!r}: not COCO (no 'images' list)")
    if not isinstance(doc.get("annotations", []), list) or not isinstance(
        doc.get("categories", []), list
    ):
        raise LabelFileError(f"{path!r}: not COCO ('annotations'/'categories' not lists)")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.basename(folder) == "annotations":
        folder = os.path.dirname(folder)
    resolver = under_root(resolver, folder)
    parsed = Parsed()
    names = {c.get("id"): c.get("name") for c in doc.get("categories", []) if isinstance(c, dict)}
    ids = Counter(im.get("id") for im in doc["images"] if isinstance(im, dict))
    images: dict[Any, str | Refusal] = {}
    for i, im in enumerate(doc["images"]):
        entry = f"images[{i}]"
        if not isinstance(im, dict) or "id" not in im:
            why = "an image needs an 'id'"
            parsed.refusals.append(Refusal(entry, BAD_ENTRY, why, is_object=False))
            continue
        if ids[im["id"]] > 1:
            dup = Refusal(
                entry,
                DUPLICATE_IMAGE_ID,
                f"image id {im['id']!r} is used by {ids[im['id']]} images: "
                "their annotations cannot be told apart",
                is_object=False,
            )
            images[im["id"]] = dup
            parsed.refusals.append(dup)
            continue
        name = str(im.get("file_name") or "")
        if name and not resolver.exists(name) and resolver.exists(f"images/{name}"):
            name = f"images/{name}"
        found = resolver.resolve(name, entry, asset_id=im.get("asset_id"))
        images[im["id"]] = found
        if isinstance(found, Refusal):
            parsed.refusals.append(replace(found, is_object=False))
    for i, a in enumerate(doc.get("annotations", [])):
        entry = f"annotations[{i}]"
        if not isinstance(a, dict):
            parsed.refusals.append(Refusal(entry, BAD_ENTRY, "not an object"))
            continue
        image = images.get(a.get("image_id"))
        if image is None:
            parsed.refusals.append(
                Refusal(entry, UNKNOWN_ASSET, f"image_id {a.get('image_id')!r} is not in 'images'")
            )
            continue
        if isinstance(image, Refusal):
            parsed.refusals.append(Refusal(entry, image.reason, f"its image: {image.detail}"))
            continue
        label = names.get(a.get("category_id"))
        if label is None:
            parsed.refusals.append(
                Refusal(
                    entry,
                    "unknown_class",
                    f"category_id {a.get('category_id')!r} is not in 'categories'",
                )
            )
            continue
        try:
            ann = _annotation(image, str(label), a)
        except (TypeError, ValueError, IndexError, KeyError) as e:
            parsed.refusals.append(Refusal(entry, BAD_ENTRY, f"bad bbox or segmentation ({e})"))
            continue
        parsed.annotations.append(ann)
        parsed.entries.append(entry)
    return parsed


def _annotation(asset_id: str, label: str, a: dict[str, Any]) -> Annotation:
    seg = a.get("segmentation")
    attrs = dict(a["attributes"]) if isinstance(a.get("attributes"), dict) else None
    score = a.get("score")
    crowd = bool(a.get("iscrowd"))
    rotation = 0.0
    if attrs and isinstance(attrs.get("rotation"), int | float) and attrs["rotation"] % 360:
        rotation = float(attrs.pop("rotation"))  # CVAT's COCO export of a rotated box
    if isinstance(seg, dict):
        rle, extent = _rle(seg)
        box = a.get("bbox") or [extent[0], extent[1], extent[2], extent[3]]
        x, y, w, h = (float(v) for v in box)
        return Annotation.make(
            asset_id, "box", label, bbox=(x, y, w, h), attributes=attrs, score=score,
            iscrowd=crowd, rle=rle,
        )  # fmt: skip
    if isinstance(seg, list) and seg and isinstance(seg[0], list) and a.get(BOX_MARKER) != "box":
        rings = []
        for part in seg:
            flat = [float(v) for v in part]
            if len(flat) >= 6:  # fewer than 3 points: no area
                rings.append(list(zip(flat[0::2], flat[1::2], strict=True)))
        if rings:
            return Annotation.make(
                asset_id, "polygon", label, points=rings[0], parts=rings[1:], attributes=attrs,
                score=score, iscrowd=crowd,
            )  # fmt: skip
    x, y, w, h = (float(v) for v in a["bbox"])
    return Annotation.make(
        asset_id, "box", label, bbox=(x, y, w, h), attributes=attrs, score=score,
        rotation=rotation, iscrowd=crowd,
    )  # fmt: skip
