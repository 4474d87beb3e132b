"""Label Studio: tasks and a labeling config out, its own JSON export back in.

Export writes `tasks.json` (a streamed JSON array: `data.image` = the image URL, and
`data.asset_id`; an asset's approved labels go along as `predictions`, model version
`smartray-labels`, so annotators start from them) and `labeling_config.xml` for the project:
`Choices name="class"` (single), `Choices name="tags"` (multiple), `RectangleLabels
name="box"`, `PolygonLabels name="polygon"`, for the kinds the ontology makes. A model's
guess of the image's class (an active-learning batch's pre-annotation) is a second entry
in `predictions`, apart from the approved labels: `model_version` the model id, `score`
its confidence, and one `choices` result of `class`; a guess is left out, with a reason,
when the ontology has no `class` kind or not the class guessed.

Import reads Label Studio's JSON export: each task's non-cancelled `annotations` (never
its `predictions`: ours, or a model's, are not labels until someone submits them); a
result becomes an object (percent coordinates to pixels). A rectangle's `rotation`
(degrees clockwise about its top-left corner, Label Studio's convention) makes a rotated
box, and export writes it back the same way. The image is the task's `data.asset_id`,
or else `data.image` resolved like any reference (uploads by their original file name,
local files under `--image-root`: `resolve.py`); either way `data.image` must have an
allowed form (an upload path, a relative path, `s3://`, an allowed host), so a task
pointing at `http://169.254.169.254/` is refused. A task that cannot be matched is
quarantined, and each of its results is refused as an object.

Export leaves out, with a reason, what a Label Studio result cannot hold: a polygon of
several parts, a crowd region, a mask.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from xml.sax.saxutils import quoteattr

from smartray.annotate.formats.base import (
    Added,
    ImageMeta,
    LabelFileError,
    OutDir,
    Prediction,
    left_out,
)
from smartray.annotate.formats.coco import load_json
from smartray.annotate.geometry import from_corner_rotation, to_corner_rotation
from smartray.annotate.model import BAD_ENTRY, Annotation, Parsed, Refusal
from smartray.annotate.ontology import Ontology
from smartray.annotate.resolve import Resolver

TASKS = "tasks.json"
CONFIG = "labeling_config.xml"
MODEL_VERSION = "smartray-labels"


def labeling_config(ontology: Ontology) -> str:
    """A Label Studio labeling config for the ontology's kinds and classes."""
    names = ontology.class_names
    parts = ["<View>", '  <Image name="image" value="$image"/>']
    blocks = {
        "class": ("Choices", 'name="class" toName="image" choice="single"', "Choice"),
        "tags": ("Choices", 'name="tags" toName="image" choice="multiple"', "Choice"),
        "boxes": ("RectangleLabels", 'name="box" toName="image"', "Label"),
        "polygons": ("PolygonLabels", 'name="polygon" toName="image"', "Label"),
    }
    for kind in ontology.kinds:
        tag, attrs, item = blocks[kind]
        parts.append(f"  <{tag} {attrs}>")
        parts += [f"    <{item} value={quoteattr(n)}/>" for n in names]
        parts.append(f"  </{tag}>")
    parts.append("</View>")
    return "\n".join(parts) + "\n"


def results(ann: Annotation, width: int, height: int) -> dict[str, Any]:
    """One Label Studio result for an object (percent coordinates)."""
    base = {"to_name": "image", "original_width": width, "original_height": height}
    if ann.kind in ("class", "tag"):
        name = "class" if ann.kind == "class" else "tags"
        return {**base, "from_name": name, "type": "choices", "value": {"choices": [ann.label]}}
    if ann.kind == "box":
        assert ann.bbox is not None
        x, y, w, h = to_corner_rotation(ann.bbox, ann.rotation) if ann.rotation else ann.bbox
        value: dict[str, Any] = {
            "x": 100 * x / width,
            "y": 100 * y / height,
            "width": 100 * w / width,
            "height": 100 * h / height,
            "rotation": ann.rotation or 0,
            "rectanglelabels": [ann.label],
        }
        return {**base, "from_name": "box", "type": "rectanglelabels", "value": value}
    assert ann.points is not None
    pts = [[100 * px / width, 100 * py / height] for px, py in ann.points]
    value = {"points": pts, "polygonlabels": [ann.label], "closed": True}
    return {**base, "from_name": "polygon", "type": "polygonlabels", "value": value}


class Writer:
    """Streams Label Studio tasks."""

    def __init__(
        self,
        out: OutDir,
        ontology: Ontology,
        image_url_prefix: str | None = None,
        *,
        rotated: str = "refuse",
    ):
        self.out, self.ontology = out, ontology
        self.out.write(CONFIG, labeling_config(ontology).encode())
        self._f = out.open(TASKS)
        self._f.write(b"[")
        self._n = 0

    def add(
        self,
        image: ImageMeta,
        annotations: list[Annotation],
        predicted: Prediction | None = None,
    ) -> Added:
        """Adds one task; returns the objects left out, and the guess if it is."""
        task: dict[str, Any] = {"data": {"image": image.url, "asset_id": image.asset_id}}
        refused, kept = [], []
        for a in annotations:
            why = _cannot_hold(a)
            if why:
                refused.append(left_out(a, "labelstudio", why))
            else:
                kept.append(a)
        predictions: list[dict[str, Any]] = []
        if kept:
            predictions.append({
                "model_version": MODEL_VERSION,
                "result": [results(a, image.width, image.height) for a in kept],
            })  # fmt: skip
        guess = None if predicted is None else predicted.check(self.ontology, "labelstudio")
        if predicted is not None and guess is None:
            ann = predicted.annotation(image.asset_id)
            entry: dict[str, Any] = {"model_version": predicted.model_id}
            if predicted.score is not None:
                entry["score"] = predicted.score
            entry["result"] = [results(ann, image.width, image.height)]
            predictions.append(entry)
        if predictions:
            task["predictions"] = predictions
        self._f.write((b"," if self._n else b"") + json.dumps(task).encode())
        self._n += 1
        return Added(refused, guess)

    def close(self) -> list[str]:
        """Finishes `tasks.json`."""
        self._f.write(b"]")
        self._f.close()
        return [TASKS, CONFIG]


def _cannot_hold(ann: Annotation) -> str:
    """Why a Label Studio result cannot hold `ann` ("" if it can)."""
    if ann.iscrowd:
        return "Label Studio has no crowd regions"
    if ann.rle is not None:
        return "masks are not exported to Label Studio (its brush RLE is another encoding)"
    if ann.parts:
        return "a Label Studio polygon has one part"
    return ""


def read(path: str, resolver: Resolver) -> Parsed:
    """Reads a Label Studio JSON export (a list of tasks with `annotations`)."""
    doc = load_json(path)
    if not isinstance(doc, list) or not all(isinstance(t, dict) and "data" in t for t in doc):
        raise LabelFileError(f"{path!r}: not a Label Studio JSON export (a list of tasks)")
    parsed = Parsed()
    for i, task in enumerate(doc):
        entry = f"tasks[{i}] (id {task.get('id')})"
        data = task.get("data") or {}
        found = resolver.resolve(str(data.get("image") or ""), entry, asset_id=data.get("asset_id"))
        if isinstance(found, Refusal):
            parsed.refusals.append(replace(found, is_object=False))
        size = None if isinstance(found, Refusal) else resolver.sizes.get(found)
        for j, annotation in enumerate(task.get("annotations") or []):
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            for k, result in enumerate(annotation.get("result") or []):
                where = f"{entry} annotation {j} result {k}"
                if isinstance(found, Refusal):
                    why = f"its task's image: {found.detail}"
                    parsed.refusals.append(Refusal(where, found.reason, why))
                    continue
                try:
                    objects = _objects(found, result, size)
                except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
                    parsed.refusals.append(Refusal(where, BAD_ENTRY, f"bad result ({e!r})"))
                    continue
                for obj in objects:
                    parsed.annotations.append(obj)
                    parsed.entries.append(where)
    return parsed


def _objects(
    asset_id: str, result: dict[str, Any], size: tuple[int, int] | None
) -> list[Annotation]:
    kind, value = result["type"], result["value"]
    if kind == "choices":
        label_kind = "class" if result.get("from_name") == "class" else "tag"
        return [Annotation.make(asset_id, label_kind, c) for c in value["choices"]]
    w = float(result.get("original_width") or (size or (0, 0))[0])
    h = float(result.get("original_height") or (size or (0, 0))[1])
    if kind == "rectanglelabels":
        box = (value["x"] * w / 100, value["y"] * h / 100, value["width"] * w / 100,
               value["height"] * h / 100)  # fmt: skip
        angle = float(value.get("rotation") or 0)
        if angle % 360:  # about the top-left corner: stored about the centre
            box = from_corner_rotation(box, angle)
        return [
            Annotation.make(asset_id, "box", c, bbox=box, rotation=angle)
            for c in value["rectanglelabels"]
        ]
    if kind == "polygonlabels":
        pts = [(px * w / 100, py * h / 100) for px, py in value["points"]]
        return [Annotation.make(asset_id, "polygon", c, points=pts) for c in value["polygonlabels"]]
    raise ValueError(f"result type {kind!r} is not one smartray imports")
