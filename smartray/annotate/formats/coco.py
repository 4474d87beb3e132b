"""COCO object detection JSON: boxes (`bbox`) and polygons (`segmentation`).

Export: one `annotations.json` with `images` (`file_name` = `images/<asset_id>.<ext>`,
plus `asset_id`), `categories` (id = ontology class id + 1, so none is 0) and
`annotations`. The two arrays are streamed to temporary files and joined at the end.
Import: images matched by `asset_id`, by a file name that is one, or by the bytes of
`file_name` under the image root; categories matched to classes by name. Image-level
classes and tags have no place in COCO and are not exported.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from typing import Any

from smartray.annotate.formats.base import ImageMeta, LabelFileError, OutDir
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

FILE = "annotations.json"


class Writer:
    """Streams a COCO file."""

    def __init__(self, out: OutDir, ontology: Ontology, image_url_prefix: str | None = None):
        self.out, self.ontology = out, ontology
        # closed in close(), after they are copied into the final file
        self._images = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._anns = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._n_images = self._n_anns = 0

    def add(self, image: ImageMeta, annotations: list[Annotation]) -> None:
        """Adds one image and its boxes and polygons."""
        self._n_images += 1
        entry = {
            "id": self._n_images,
            "file_name": image.file_name,
            "width": image.width,
            "height": image.height,
            "asset_id": image.asset_id,
        }
        self._images.write(("," if self._n_images > 1 else "") + json.dumps(entry))
        for ann in annotations:
            if ann.kind not in ("box", "polygon"):
                continue
            cls = self.ontology.class_by_name(ann.label)
            assert cls is not None, ann.label
            x1, y1, x2, y2 = ann.xyxy()
            self._n_anns += 1
            item: dict[str, Any] = {
                "id": self._n_anns,
                "image_id": self._n_images,
                "category_id": cls.id + 1,
                "bbox": list(ann.bbox) if ann.bbox else [x1, y1, x2 - x1, y2 - y1],
                "area": round((x2 - x1) * (y2 - y1), 2),
                "iscrowd": 0,
            }
            if ann.points:
                item["segmentation"] = [[c for p in ann.points for c in p]]
                item["area"] = round(_polygon_area(ann.points), 2)
            if ann.attributes:
                item["attributes"] = dict(ann.attributes)
            if ann.score is not None:
                item["score"] = ann.score
            self._anns.write(("," if self._n_anns > 1 else "") + json.dumps(item))

    def close(self) -> list[str]:
        """Writes `annotations.json`."""
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


def _polygon_area(points: tuple[tuple[float, float], ...]) -> float:
    s = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        s += x1 * y2 - x2 * y1
    return abs(s) / 2


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
    parsed = Parsed()
    names = {c.get("id"): c.get("name") for c in doc.get("categories", []) if isinstance(c, dict)}
    ids = Counter(im.get("id") for im in doc["images"] if isinstance(im, dict))
    images: dict[Any, str | Refusal] = {}
    for i, im in enumerate(doc["images"]):
        entry = f"images[{i}]"
        if not isinstance(im, dict) or "id" not in im:
            parsed.refusals.append(Refusal(entry, BAD_ENTRY, "an image needs an 'id'"))
            continue
        if ids[im["id"]] > 1:
            images[im["id"]] = Refusal(
                entry,
                DUPLICATE_IMAGE_ID,
                f"image id {im['id']!r} is used by {ids[im['id']]} images: "
                "their annotations cannot be told apart",
            )
            parsed.refusals.append(images[im["id"]])  # type: ignore[arg-type]
            continue
        found = resolver.resolve(im.get("file_name"), entry, asset_id=im.get("asset_id"))
        images[im["id"]] = found
        if isinstance(found, Refusal):
            parsed.refusals.append(found)
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
        except (TypeError, ValueError, IndexError) as e:
            parsed.refusals.append(Refusal(entry, BAD_ENTRY, f"bad bbox or segmentation ({e})"))
            continue
        parsed.annotations.append(ann)
        parsed.entries.append(entry)
    return parsed


def _annotation(asset_id: str, label: str, a: dict[str, Any]) -> Annotation:
    seg = a.get("segmentation")
    attrs = a.get("attributes") if isinstance(a.get("attributes"), dict) else None
    score = a.get("score")
    if isinstance(seg, list) and seg and isinstance(seg[0], list) and len(seg[0]) >= 6:
        flat = [float(v) for v in seg[0]]
        points = list(zip(flat[0::2], flat[1::2], strict=True))
        return Annotation.make(
            asset_id, "polygon", label, points=points, attributes=attrs, score=score
        )
    x, y, w, h = (float(v) for v in a["bbox"])
    return Annotation.make(asset_id, "box", label, bbox=(x, y, w, h), attributes=attrs, score=score)
