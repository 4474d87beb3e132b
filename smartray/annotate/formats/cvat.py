"""CVAT for images 1.1 XML: boxes, polygons and tags.

Export: one `annotations.xml`, streamed: `<meta>` declares the ontology's labels and
their attributes, then one `<image name="<asset_id>.<ext>">` per image (the name under
`images/`, as CVAT and Datumaro look it up) holding `<box>` (a rotated one with
`rotation`, degrees clockwise about its centre), `<polygon>` and `<tag>` elements,
attributes as `<attribute name=..>` children. A polygon of several parts, a crowd region
and a mask have no CVAT element here and are left out with a reason.
Import: images matched by a name whose stem is an asset id, else by the bytes of the
named file under the image root, which defaults to the XML file's folder. The name is
looked up as given, under `images/`, and, for a project export (an image with a
`subset`), under `<subset>/` and `images/<subset>/`, so `--image-root` is the export's
root. Labels matched to classes by name.

CVAT has one image-level element, `<tag>`, for both smartray kinds: a tag carries the
attribute `smartray_kind` (`class` for the one class of an image, `tag` for a multi-label
tag; declared on every label as a select, defaulting to `tag` unless the ontology makes
classes but not tags). A `<tag>` without it imports as a tag. A model's score travels as
the attribute `smartray_score`, which `<meta>` does not declare: CVAT drops it on upload,
so what comes back from CVAT is a human's label. A model's guess of the image's class (an
active-learning batch's pre-annotation) is one more `<tag>` of that class with
`source="auto"` and its score, apart from the approved labels (`source="manual"`); it is
left out, with a reason, when the ontology has no `class` kind or not the class guessed.
CVAT's own `occluded` flag is set from an `occluded` attribute; on import it adds
`occluded: true` unless an `occluded` attribute is given. An attribute's text is typed by
its `input_type` in `<meta>` (checkbox: bool, number: int or float); one `<meta>` does not
declare reads as a bool or number if it spells one, else as text.

Files are parsed with `defusedxml` and no DTD is accepted, so entity expansion (XML
bombs) and external entities are refused with the whole file.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import IO, Any

import defusedxml.ElementTree as safe_et  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from smartray.annotate.formats.base import (
    Added,
    ImageMeta,
    LabelFileError,
    OutDir,
    Prediction,
    left_out,
)
from smartray.annotate.formats.folders import under_root
from smartray.annotate.model import BAD_ENTRY, Annotation, Parsed, Refusal
from smartray.annotate.ontology import Ontology
from smartray.annotate.resolve import Resolver

FILE = "annotations.xml"
KIND_ATTR, SCORE_ATTR = "smartray_kind", "smartray_score"
INPUT_TYPES = {"bool": "checkbox", "text": "text", "number": "number", "choice": "select"}
SHAPES = ("box", "polygon", "tag")


def _num(v: float) -> str:
    return f"{round(v, 2):.10g}"


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else json.dumps(v)


def _spec(type_: str, name: str, choices: tuple[str, ...]) -> tuple[str, str, str, list[str]]:
    """(name, input_type, default, values) of an attribute in `<meta>`."""
    if type_ == "bool":
        return name, "checkbox", "false", ["false", "true"]
    return name, INPUT_TYPES[type_], choices[0] if choices else "", list(choices)


def _meta(ontology: Ontology) -> ET.Element:
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    name = f"smartray export, ontology {ontology.name} v{ontology.version}"
    ET.SubElement(task, "name").text = name
    ET.SubElement(task, "mode").text = "annotation"
    labels = ET.SubElement(task, "labels")
    image_kinds = [k for k in ("tags", "class") if k in ontology.kinds]
    for c in sorted(ontology.classes, key=lambda c: c.id):
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = c.name
        ET.SubElement(label, "type").text = "any"
        attrs = ET.SubElement(label, "attributes")
        specs = [_spec(a.type, a.name, a.choices) for a in c.attributes]
        if image_kinds:
            kinds = ["tag" if k == "tags" else k for k in image_kinds]
            specs.append((KIND_ATTR, "select", kinds[0], kinds))
        for name, input_type, default, values in specs:
            attr = ET.SubElement(attrs, "attribute")
            ET.SubElement(attr, "name").text = name
            ET.SubElement(attr, "mutable").text = "False"
            ET.SubElement(attr, "input_type").text = input_type
            ET.SubElement(attr, "default_value").text = default
            ET.SubElement(attr, "values").text = "\n".join(values)
    return meta


class Writer:
    """Streams a CVAT file."""

    def __init__(
        self,
        out: OutDir,
        ontology: Ontology,
        image_url_prefix: str | None = None,
        *,
        rotated: str = "refuse",
    ):
        self.ontology = ontology
        self._f: IO[bytes] = out.open(FILE)  # closed in close()
        meta = _meta(ontology)
        ET.indent(meta, "  ", level=1)
        self._f.write(b'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n')
        self._f.write(b"  <version>1.1</version>\n  " + ET.tostring(meta) + b"\n")
        self._n = 0

    def add(
        self,
        image: ImageMeta,
        annotations: list[Annotation],
        predicted: Prediction | None = None,
    ) -> Added:
        """Adds one image and its objects; returns those left out, and the guess if it is."""
        el = ET.Element(
            "image",
            id=str(self._n),
            name=image.file_name.removeprefix("images/"),
            width=str(image.width),
            height=str(image.height),
        )
        self._n += 1
        refused = []
        for ann in annotations:
            if ann.iscrowd or ann.rle is not None or ann.parts:
                why = "a CVAT shape is one polygon or box, with no crowd flag or RLE here"
                refused.append(left_out(ann, "cvat", why))
                continue
            _shape(el, ann, "manual" if ann.score is None else "auto")
        guess = None if predicted is None else predicted.check(self.ontology, "cvat")
        if predicted is not None and guess is None:  # a model's, even without a score
            _shape(el, predicted.annotation(image.asset_id), "auto")
        ET.indent(el, "  ", level=1)
        self._f.write(b"  " + ET.tostring(el) + b"\n")
        return Added(refused, guess)

    def close(self) -> list[str]:
        """Ends `annotations.xml`."""
        self._f.write(b"</annotations>\n")
        self._f.close()
        return [FILE]


def _shape(el: ET.Element, ann: Annotation, source: str) -> None:
    """Appends `ann` to `<image>` element `el` as a `<tag>`, `<polygon>` or `<box>`."""
    attrs = dict(ann.attributes)
    if ann.kind in ("class", "tag"):
        shape = ET.SubElement(el, "tag", label=ann.label, source=source)
        attrs[KIND_ATTR] = ann.kind
    elif ann.points:
        points = ";".join(f"{_num(x)},{_num(y)}" for x, y in ann.points)
        shape = ET.SubElement(el, "polygon", label=ann.label, source=source)
        shape.set("occluded", "1" if attrs.get("occluded") is True else "0")
        shape.set("points", points)
        shape.set("z_order", "0")
    else:
        x1, y1, x2, y2 = ann.xyxy()
        shape = ET.SubElement(el, "box", label=ann.label, source=source)
        shape.set("occluded", "1" if attrs.get("occluded") is True else "0")
        if ann.rotation:  # the box before rotation, and the angle
            assert ann.bbox is not None
            bx, by, bw, bh = ann.bbox
            x1, y1, x2, y2 = bx, by, bx + bw, by + bh
        for k, v in (("xtl", x1), ("ytl", y1), ("xbr", x2), ("ybr", y2)):
            shape.set(k, _num(v))
        if ann.rotation:
            shape.set("rotation", _num(ann.rotation))
        shape.set("z_order", "0")
    if ann.score is not None:
        attrs[SCORE_ATTR] = ann.score
    for name, value in attrs.items():
        ET.SubElement(shape, "attribute", name=name).text = _text(value)


def read(path: str, resolver: Resolver) -> Parsed:
    """Reads a CVAT for images file; entries that cannot be imported become refusals."""
    if not os.path.isfile(path):
        raise LabelFileError(f"{path!r}: no such file")
    resolver = under_root(resolver, os.path.dirname(os.path.abspath(path)))
    parsed = Parsed()
    types: dict[tuple[str, str], str] = {}  # (label, attribute) -> input_type
    root: ET.Element | None = None
    n_images = 0
    try:
        for event, el in safe_et.iterparse(path, events=("start", "end"), forbid_dtd=True):
            if root is None:
                root = el
                if el.tag != "annotations":
                    raise LabelFileError(
                        f"{path!r}: not CVAT for images (root <{el.tag}>, not <annotations>)"
                    )
                continue
            if event != "end":
                continue
            if el.tag == "meta":
                types.update(_attribute_types(el))
                root.clear()
            elif el.tag == "image":
                _image(el, f"image[{n_images}]", resolver, types, parsed)
                n_images += 1
                root.clear()  # keeps memory to one image
            elif el.tag == "track":
                why = "tracks (CVAT for video) are not read"
                parsed.refusals.append(Refusal(f"track {el.get('id')}", BAD_ENTRY, why))
                root.clear()
    except ET.ParseError as e:
        raise LabelFileError(f"{path!r}: not XML ({e})") from None
    except DefusedXmlException as e:
        raise LabelFileError(f"{path!r}: refused, a DTD or entity in it ({e!r})") from None
    except OSError as e:
        raise LabelFileError(f"{path!r}: cannot read it ({e.strerror})") from None
    return parsed


def _attribute_types(meta: ET.Element) -> dict[tuple[str, str], str]:
    out = {}
    for label in meta.iter("label"):
        lname = label.findtext("name") or ""
        for attr in label.iterfind("attributes/attribute"):
            out[(lname, attr.findtext("name") or "")] = attr.findtext("input_type") or "text"
    return out


def _image(
    el: ET.Element,
    entry: str,
    resolver: Resolver,
    types: dict[tuple[str, str], str],
    parsed: Parsed,
) -> None:
    shapes = list(el)
    if not shapes:
        return
    image = resolver.resolve(_image_ref(el, resolver), entry)
    if isinstance(image, Refusal):
        parsed.refusals.append(replace(image, is_object=False))
    for j, shape in enumerate(shapes):
        where = f"{entry} {shape.tag}[{j}]"
        if isinstance(image, Refusal):
            parsed.refusals.append(Refusal(where, image.reason, f"its image: {image.detail}"))
            continue
        try:
            ann = _annotation(image, shape, types)
        except (TypeError, ValueError) as e:
            parsed.refusals.append(Refusal(where, BAD_ENTRY, str(e)))
            continue
        parsed.annotations.append(ann)
        parsed.entries.append(where)


def _image_ref(el: ET.Element, resolver: Resolver) -> str:
    """The image an `<image name=.. subset=..>` names.

    The first candidate path that exists under the image root: as given, under
    `images/`, under the subset, under `images/<subset>/`.
    """
    name = el.get("name") or ""
    if resolver.check_form(name, "", has_id=False) is not None:
        return name  # refused as it is (an absolute path, one leaving the root...)
    subset = el.get("subset")
    candidates = [name, f"images/{name}"]
    if subset:
        candidates += [f"{subset}/{name}", f"images/{subset}/{name}"]
    return next((c for c in candidates if resolver.exists(c)), name)


def _value(text: str, input_type: str | None) -> Any:
    if input_type == "checkbox":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"checkbox value {text!r} is not true or false")
        return text.lower() == "true"
    if input_type == "number":
        try:
            return int(text)
        except ValueError:
            return float(text)
    if input_type is None:
        try:
            guess = json.loads(text)
        except ValueError:
            return text
        return guess if isinstance(guess, bool | int | float) else text
    return text


def _annotation(asset_id: str, shape: ET.Element, types: dict[tuple[str, str], str]) -> Annotation:
    if shape.tag not in SHAPES:
        raise ValueError(f"<{shape.tag}> is not read (boxes, polygons and tags are)")
    label = shape.get("label")
    if not label:
        raise ValueError(f"<{shape.tag}> has no label")
    attrs: dict[str, Any] = {}
    for a in shape.iterfind("attribute"):
        name = a.get("name")
        if not name:
            raise ValueError("an <attribute> without a name")
        attrs[name] = _value(a.text or "", types.get((label, name)))
    kind = str(attrs.pop(KIND_ATTR, "tag"))
    score_text = attrs.pop(SCORE_ATTR, None)
    score = None if score_text in (None, "") else float(score_text)
    if shape.tag == "tag":
        if kind not in ("class", "tag"):
            raise ValueError(f"{KIND_ATTR} {kind!r} is not class or tag")
        return Annotation.make(asset_id, kind, label, attributes=attrs, score=score)
    if shape.get("occluded") == "1":
        attrs.setdefault("occluded", True)
    if shape.tag == "polygon":
        points = [p.split(",") for p in (shape.get("points") or "").split(";") if p.strip()]
        if len(points) < 3:
            raise ValueError(f"a polygon needs 3 points or more, has {len(points)}")
        pts = [(float(x), float(y)) for x, y in points]
        return Annotation.make(
            asset_id, "polygon", label, points=pts, attributes=attrs, score=score
        )
    corners = [shape.get(k) for k in ("xtl", "ytl", "xbr", "ybr")]
    if None in corners:
        raise ValueError("a box needs xtl, ytl, xbr and ybr")
    x1, y1, x2, y2 = (float(v) for v in corners)  # type: ignore[arg-type]
    box = (x1, y1, x2 - x1, y2 - y1)
    rotation = float(shape.get("rotation") or 0)  # degrees clockwise about the centre
    return Annotation.make(
        asset_id, "box", label, bbox=box, attributes=attrs, score=score, rotation=rotation
    )
