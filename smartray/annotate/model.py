"""One annotation object, whatever format it came in or goes out as.

Every format reader turns its entries into `Annotation`s (pixel coordinates, class by
name) or `Refusal`s (an entry that cannot be one, with a reason); writers take
`Annotation`s and refuse, with a reason, what their format cannot hold. Coordinates are
rounded to 1/100 px (angles to 1/100 degree), so an object that went out and came back
through any format has the same payload, and so the same ledger key.

Fields added after labels were first stored (`rotation`, `parts`, `iscrowd`, `rle`) are
left out of the payload while they hold their default, so an upright box or a plain
one-part polygon keeps the payload, and the ledger key, it always had.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from smartray.annotate.geometry import box_corners, extent, norm_angle
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
AMBIGUOUS_IMAGE = "ambiguous_image"
# reasons an exported object is left out (logged and counted in the export summary)
NOT_IN_FORMAT = "not_in_format"

# how far past the image edge a box or polygon may run and still be clipped to it:
# the larger of EDGE_PX pixels and EDGE_FRACTION of the side (tools draw a few px over)
EDGE_PX = 8.0
EDGE_FRACTION = 0.01
ROUNDING = 0.5  # half a pixel of rounding: accepted as it is, not clipped

Point = tuple[float, float]
Ring = tuple[Point, ...]


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
            A rotated box: the box before rotation.
        points: Polygon vertices in pixels (its first part).
        attributes: Optional attributes (`occluded: true`).
        score: A model's confidence; None for human labels.
        rotation: A box's angle in degrees, clockwise on screen about its centre, in
            [0, 360) (CVAT's convention).
        parts: A multi-part polygon's further parts (COCO lists several per object).
        iscrowd: A COCO crowd region (evaluation ignores what matches it).
        rle: A mask as COCO's compressed RLE: (height, width, counts).
    """

    asset_id: str
    kind: str
    label: str
    bbox: tuple[float, float, float, float] | None = None
    points: Ring | None = None
    attributes: tuple[tuple[str, Any], ...] = ()
    score: float | None = None
    rotation: float = 0.0
    parts: tuple[Ring, ...] = ()
    iscrowd: bool = False
    rle: tuple[int, int, str] | None = None

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
        rotation: float = 0.0,
        parts: Any = (),
        iscrowd: bool = False,
        rle: tuple[int, int, str] | None = None,
    ) -> Annotation:
        """Builds one with coordinates rounded and attributes sorted."""
        box = None if bbox is None else (_r(bbox[0]), _r(bbox[1]), _r(bbox[2]), _r(bbox[3]))
        pts = None if points is None else tuple((_r(x), _r(y)) for x, y in points)
        more = tuple(tuple((_r(x), _r(y)) for x, y in part) for part in parts or ())
        attrs = tuple(sorted((attributes or {}).items()))
        angle = norm_angle(rotation) if box is not None else 0.0
        mask = None if rle is None else (int(rle[0]), int(rle[1]), str(rle[2]))
        return Annotation(
            asset_id, kind, label, box, pts, attrs, score, angle, more, bool(iscrowd), mask
        )

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
        # newer fields: only when set, so older objects keep their payload and key
        if self.rotation:
            out["rotation"] = self.rotation
        if self.parts:
            out["parts"] = [[list(p) for p in part] for part in self.parts]
        if self.iscrowd:
            out["iscrowd"] = True
        if self.rle is not None:
            out["rle"] = {"size": [self.rle[0], self.rle[1]], "counts": self.rle[2]}
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
            rotation=p.get("rotation", 0.0),
            parts=p.get("parts", ()),
            iscrowd=p.get("iscrowd", False),
            rle=None if "rle" not in p else (*p["rle"]["size"], p["rle"]["counts"]),
        )

    def rings(self) -> list[Ring]:
        """Every part of a polygon (one for a one-part polygon), or a box's corners."""
        if self.points is not None:
            return [self.points, *self.parts]
        assert self.bbox is not None, "a class or tag has no geometry"
        return [tuple(box_corners(self.bbox, self.rotation))]

    def xyxy(self) -> tuple[float, float, float, float]:
        """The extent (x1, y1, x2, y2) of the box as drawn, or of every polygon part."""
        if self.bbox is not None and not self.rotation:
            x, y, w, h = self.bbox
            return x, y, x + w, y + h
        return extent([p for ring in self.rings() for p in ring])

    def describe(self) -> str:
        """What the object is, for refusal messages: "rotated box of class 'cat'"."""
        if self.kind in ("class", "tag"):
            return f"{'image class' if self.kind == 'class' else 'tag'} {self.label!r}"
        what = self.kind
        if self.rle is not None:
            what = "mask"
        elif self.rotation:
            what = f"box rotated by {self.rotation} degrees"
        elif self.parts:
            what = f"polygon of {1 + len(self.parts)} parts"
        if self.iscrowd:
            what = f"crowd region ({what})"
        return f"{what} of class {self.label!r}"


def event_id(asset_id: str, annotator: str, payload_json: str, ontology: str, version: int) -> str:
    """The ledger key: sha256 of (asset id, annotator, payload, ontology@version)."""
    text = f"{asset_id}\x00{annotator}\x00{payload_json}\x00{ontology}@{version}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Refusal:
    """An entry of a label file that was not imported (or an object not exported), and why.

    `is_object` is False for an entry that is not itself an object (an image or task
    that could not be matched): it is kept in `quarantine`, and its objects are refused
    one by one, so summaries count objects.
    """

    entry: str  # where in the file: "images[3]", "task 12 / result 0", "x.txt line 4"
    reason: str
    detail: str
    is_object: bool = True


@dataclass
class Parsed:
    """What a format reader found in a file: objects (with where they were) and refusals."""

    annotations: list[Annotation] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)  # where each annotation was in the file


def check(
    ann: Annotation,
    ontology: Ontology,
    size: tuple[int, int] | None,
    entry: str,
    *,
    edge_px: float = EDGE_PX,
    edge_fraction: float = EDGE_FRACTION,
) -> Annotation | Refusal:
    """Validates one object against the ontology and its image's (width, height).

    A box or polygon that runs past the image edge by at most half a pixel is kept as it
    is; by at most the larger of `edge_px` and `edge_fraction` of the side it is clipped
    to the image (a rotated box is kept as drawn); further out it is refused.

    Returns:
        The object (clipped if it had to be: compare with `ann`), or a `Refusal`
        naming the class or coordinate at fault.
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
        return ann
    x1, y1, x2, y2 = ann.xyxy()
    flat = ann.bbox is not None and (ann.bbox[2] <= 0 or ann.bbox[3] <= 0)
    if flat or x2 - x1 <= 0 or y2 - y1 <= 0:
        return Refusal(entry, ZERO_AREA, f"{ann.describe()} has zero area ({x1}, {y1}, {x2}, {y2})")
    if size is None:
        return ann
    w, h = size
    if ann.rle is not None and (ann.rle[0], ann.rle[1]) != (h, w):
        return Refusal(
            entry,
            BAD_ENTRY,
            f"{ann.describe()}: its mask is {ann.rle[1]}x{ann.rle[0]}, the image {w}x{h}",
        )
    over_x, over_y = max(-x1, x2 - w, 0.0), max(-y1, y2 - h, 0.0)
    if over_x <= ROUNDING and over_y <= ROUNDING:
        return ann
    tol_x, tol_y = max(edge_px, edge_fraction * w), max(edge_px, edge_fraction * h)
    if over_x > max(tol_x, ROUNDING) or over_y > max(tol_y, ROUNDING):
        return Refusal(
            entry,
            BOX_OUTSIDE_IMAGE,
            f"{ann.describe()} spans ({x1}, {y1})-({x2}, {y2}), outside the {w}x{h} image "
            f"by more than {max(tol_x, tol_y):g} px (the edge tolerance)",
        )
    return clip(ann, w, h)


def clip(ann: Annotation, width: int, height: int) -> Annotation:
    """`ann` clipped to the image: a box's sides, a polygon's vertices.

    A rotated box is returned as drawn: clipping would make it another shape.
    """
    if ann.rotation:
        return ann

    def cx(v: float) -> float:
        return min(max(v, 0.0), float(width))

    def cy(v: float) -> float:
        return min(max(v, 0.0), float(height))

    if ann.bbox is not None:
        x1, y1, x2, y2 = ann.xyxy()
        box = (cx(x1), cy(y1), cx(x2) - cx(x1), cy(y2) - cy(y1))
        return replace(ann, bbox=tuple(_r(v) for v in box))  # type: ignore[arg-type]
    assert ann.points is not None
    pts = tuple((_r(cx(x)), _r(cy(y))) for x, y in ann.points)
    parts = tuple(tuple((_r(cx(x)), _r(cy(y))) for x, y in part) for part in ann.parts)
    return replace(ann, points=pts, parts=parts)
