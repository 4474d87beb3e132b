"""One annotation object, whatever format it came in or goes out as.

Every format reader turns its entries into `Annotation`s (pixel coordinates, class by
name) or `Refusal`s (an entry that cannot be one, with a reason); writers take
`Annotation`s. Coordinates are rounded to 1/100 px, so an object that went out and came
back through any format has the same payload, and so the same ledger key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from smartray.annotate.ontology import Ontology

OBJECT_KINDS = ("class", "tag", "box", "polygon")
# the ontology kind each object kind needs
NEEDS_KIND = {"class": "class", "tag": "tags", "box": "boxes", "polygon": "polygons"}

# reasons an imported entry is refused (quarantine rows of stage `label_import`)
UNKNOWN_CLASS = "unknown_class"
BOX_OUTSIDE_IMAGE = "box_outside_image"
ZERO_AREA = "zero_area"
UNKNOWN_ASSET = "unknown_asset"
PATH_ESCAPE = "path_escape"
URL_NOT_ALLOWED = "url_not_allowed"
DUPLICATE_IMAGE_ID = "duplicate_image_id"
KIND_NOT_IN_ONTOLOGY = "kind_not_in_ontology"
BAD_ENTRY = "bad_entry"


def _r(v: float) -> float:
    return round(float(v), 2) + 0.0  # + 0.0: no -0.0


@dataclass(frozen=True)
class Annotation:
    """An annotation object on one asset.

    Attributes:
        asset_id: The asset.
        kind: class (one per image), tag (multi-label), box or polygon.
        label: Class name.
        bbox: Box as (x, y, width, height) in pixels from the top-left corner.
        points: Polygon vertices in pixels.
        attributes: Optional attributes (`occluded: true`).
        score: A model's confidence; None for human labels.
    """

    asset_id: str
    kind: str
    label: str
    bbox: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] | None = None
    attributes: tuple[tuple[str, Any], ...] = ()
    score: float | None = None

    @staticmethod
    def make(
        asset_id: str,
        kind: str,
        label: str,
        *,
        bbox: Any = None,
        points: Any = None,
        attributes: dict[str, Any] | None = None,
        score: float | None = None,
    ) -> Annotation:
        """Builds one with coordinates rounded and attributes sorted."""
        box = None if bbox is None else (_r(bbox[0]), _r(bbox[1]), _r(bbox[2]), _r(bbox[3]))
        pts = None if points is None else tuple((_r(x), _r(y)) for x, y in points)
        attrs = tuple(sorted((attributes or {}).items()))
        return Annotation(asset_id, kind, label, box, pts, attrs, score)

    def payload(self) -> dict[str, Any]:
        """What the ledger stores (and hashes) for this object."""
        out: dict[str, Any] = {"kind": self.kind, "class": self.label}
        if self.bbox is not None:
            out["bbox"] = list(self.bbox)
        if self.points is not None:
            out["points"] = [list(p) for p in self.points]
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        if self.score is not None:
            out["score"] = round(float(self.score), 4)
        return out

    def payload_json(self) -> str:
        """`payload()` as canonical JSON."""
        return json.dumps(self.payload(), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_payload(asset_id: str, payload: str | dict[str, Any]) -> Annotation:
        """The inverse of `payload()`."""
        p = json.loads(payload) if isinstance(payload, str) else payload
        return Annotation.make(
            asset_id,
            p["kind"],
            p["class"],
            bbox=p.get("bbox"),
            points=p.get("points"),
            attributes=p.get("attributes"),
            score=p.get("score"),
        )

    def xyxy(self) -> tuple[float, float, float, float]:
        """The box (or the polygon's bounding box) as (x1, y1, x2, y2)."""
        if self.bbox is not None:
            x, y, w, h = self.bbox
            return x, y, x + w, y + h
        assert self.points, "a class or tag has no geometry"
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)


def event_id(asset_id: str, annotator: str, payload_json: str, ontology: str, version: int) -> str:
    """The ledger key: sha256 of (asset id, annotator, payload, ontology@version)."""
    text = f"{asset_id}\x00{annotator}\x00{payload_json}\x00{ontology}@{version}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Refusal:
    """An entry of a label file that was not imported, and why."""

    entry: str  # where in the file: "images[3]", "task 12 / result 0", "x.txt line 4"
    reason: str
    detail: str


@dataclass
class Parsed:
    """What a format reader found in a file: objects (with where they were) and refusals."""

    annotations: list[Annotation] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)  # where each annotation was in the file


def check(
    ann: Annotation, ontology: Ontology, size: tuple[int, int] | None, entry: str
) -> Refusal | None:
    """Validates one object against the ontology and its image's (width, height).

    Returns a `Refusal` naming the class or coordinate at fault, or None if it is valid.
    """
    if NEEDS_KIND.get(ann.kind) not in ontology.kinds:
        return Refusal(
            entry,
            KIND_NOT_IN_ONTOLOGY,
            f"a {ann.kind} label, but ontology {ontology.name!r} v{ontology.version} "
            f"makes {', '.join(ontology.kinds)}",
        )
    if ontology.class_by_name(ann.label) is None:
        return Refusal(
            entry,
            UNKNOWN_CLASS,
            f"class {ann.label!r} is not in ontology {ontology.name!r} "
            f"v{ontology.version} ({', '.join(ontology.class_names)})",
        )
    if ann.kind not in ("box", "polygon"):
        return None
    x1, y1, x2, y2 = ann.xyxy()
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return Refusal(
            entry,
            ZERO_AREA,
            f"{ann.kind} of class {ann.label!r} has zero area ({x1}, {y1}, {x2}, {y2})",
        )
    if size is not None:
        w, h = size
        tol = 0.5  # half a pixel of rounding
        if x1 < -tol or y1 < -tol or x2 > w + tol or y2 > h + tol:
            return Refusal(
                entry,
                BOX_OUTSIDE_IMAGE,
                f"{ann.kind} of class {ann.label!r} spans ({x1}, {y1})-({x2}, {y2}), "
                f"outside the {w}x{h} image",
            )
    return None
