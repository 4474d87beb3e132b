"""`smartray consensus`: one label per object from several annotators, and how far they agree.

For every asset that 2+ human annotators labelled (annotation events still `submitted`):

- image class: the majority vote; its agreement is the share of annotators who gave it
  (a tie has no majority, agreement of the tied share);
- tags: a tag is kept when more than half the annotators gave it;
- boxes: greedy IoU clustering per class (one box per annotator in a cluster); a cluster
  that more than half the annotators support becomes the mean box; its agreement is its
  support times the members' mean IoU with it. (Polygons, rotated boxes, crowd regions
  and masks are not merged.)

The asset's agreement is the lowest of its objects'. Consensus objects are appended to
the ledger (annotator and source `consensus`, with their agreement); those of assets at or
above `--min-agreement` are approved at once, the others stay `submitted`: the review
queue. The report gives agreement per annotator and per class, Fleiss' kappa over the
class votes and Cohen's kappa for each pair of annotators; `labels` is rebuilt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from smartray.annotate.agreement import (
    cluster_boxes,
    fleiss_kappa,
    iou,
    majority,
    pairwise_cohen,
)
from smartray.annotate.model import Annotation, event_id
from smartray.annotate.review import annotation_states, rebuild_labels
from smartray.errors import ConfigError
from smartray.tables.catalog import LABEL_EVENTS
from smartray.tables.lake import Lake

CONSENSUS = "consensus"

MIN_AGREEMENT = 0.7  # an asset's consensus is approved at or above this agreement
IOU = 0.5  # boxes of two annotators overlapping this much are one object


@dataclass
class ConsensusReport:
    """What a consensus run found."""

    run_id: str
    assets: int
    approved: int
    queued: list[tuple[str, float]]
    per_annotator: dict[str, float]
    per_class: dict[str, float]
    fleiss: float | None
    cohen: dict[tuple[str, str], float] = field(default_factory=dict)
    box_iou: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What the job prints."""
        fk = "n/a" if self.fleiss is None else f"{self.fleiss:.3f}"
        out = [
            f"consensus {self.run_id}: {self.assets} asset(s) with 2+ annotators; "
            f"{self.approved} approved, {len(self.queued)} queued for review; "
            f"Fleiss' kappa (classes) {fk}"
        ]
        for name, share in sorted(self.per_annotator.items()):
            iou = self.box_iou.get(name)
            box = "" if iou is None else f", mean box IoU {iou:.3f}"
            out.append(f"  annotator {name}: agrees with the majority {share:.3f}{box}")
        for name, share in sorted(self.per_class.items()):
            out.append(f"  class {name}: votes agreeing {share:.3f}")
        for (a, b), k in sorted(self.cohen.items()):
            out.append(f"  Cohen's kappa {a} / {b}: {k:.3f}")
        for asset, agreement in self.queued[:20]:
            out.append(f"  queued: {asset} (agreement {agreement:.2f})")
        return out


def _objects(
    rows: list[dict[str, Any]], n: int, iou_threshold: float
) -> tuple[list[tuple[Annotation, float]], dict[str, str], dict[str, list[float]]]:
    """Consensus objects of one asset, its class votes, and each annotator's box IoUs."""
    asset = rows[0]["asset_id"]
    out: list[tuple[Annotation, float]] = []
    votes = {r["annotator"]: r["class_name"] for r in rows if r["kind"] == "class"}
    if votes:
        label, share = majority(votes)
        if label is not None:
            out.append((Annotation.make(asset, "class", label), share))
        else:
            out.append((Annotation.make(asset, "class", sorted(set(votes.values()))[0]), share))
    tags: Counter[str] = Counter()
    for r in rows:
        if r["kind"] == "tag":
            tags[r["class_name"]] += 1
    for tag, count in sorted(tags.items()):
        if count * 2 > n:
            out.append((Annotation.make(asset, "tag", tag), count / n))
    boxes = []
    for r in rows:
        if r["kind"] == "box":
            a = Annotation.from_payload(asset, r["payload"])
            if a.rotation or a.iscrowd or a.rle is not None:
                continue  # a mean upright box would change it: not merged, like polygons
            boxes.append((r["annotator"], a.label, a.xyxy()))
    ious: dict[str, list[float]] = defaultdict(list)
    for cluster in cluster_boxes(boxes, iou_threshold):
        support = len(cluster.members) / n
        if support * 2 <= 1:
            out.append((Annotation.make(asset, "box", cluster.label, bbox=(0, 0, 0, 0)), 0.0))
            continue
        x1, y1, x2, y2 = cluster.mean
        ann = Annotation.make(asset, "box", cluster.label, bbox=(x1, y1, x2 - x1, y2 - y1))
        out.append((ann, support * cluster.mean_iou))
        for who, box in cluster.members.items():
            ious[who].append(iou(box, cluster.mean))
    return out, votes, ious


def consensus(
    *,
    lake: str | None = None,
    min_agreement: float = MIN_AGREEMENT,
    iou_threshold: float = IOU,
) -> ConsensusReport:
    """Merges the labels of assets with 2+ annotators (see the module doc).

    Raises:
        ConfigError: a threshold out of [0, 1].
    """
    for name, v in (("--min-agreement", min_agreement), ("--iou", iou_threshold)):
        if not 0 <= v <= 1:
            raise ConfigError(f"{name} {v}: must be in [0, 1]")
    lk = Lake(lake)
    states = annotation_states(lk).to_pylist()
    pending = [r for r in states if r["state"] == "submitted" and r["source"] == "human"]
    by_asset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in pending:
        by_asset[r["asset_id"]].append(r)
    multi = {a: rs for a, rs in sorted(by_asset.items()) if len({r["annotator"] for r in rs}) >= 2}
    session = lk.session("consensus", {"min_agreement": min_agreement, "iou": iou_threshold})
    now = dt.datetime.now(dt.UTC)
    events: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    all_votes: dict[str, dict[str, str]] = {}
    agree: dict[str, list[bool]] = defaultdict(list)
    class_agree: dict[str, list[bool]] = defaultdict(list)
    box_ious: dict[str, list[float]] = defaultdict(list)
    queued: list[tuple[str, float]] = []
    approved = 0
    for asset, rows in multi.items():
        n = len({r["annotator"] for r in rows})
        objects, votes, ious = _objects(rows, n, iou_threshold)
        if votes:
            all_votes[asset] = votes
            winner, _ = majority(votes)
            for who, label in votes.items():
                agree[who].append(label == winner)
                class_agree[label].append(label == winner)
        for who, values in ious.items():
            box_ious[who] += values
        asset_agreement = min((a for _, a in objects), default=0.0)
        ok = asset_agreement >= min_agreement and bool(objects)
        onto, version = rows[0]["ontology"], rows[0]["ontology_version"]
        for ann, agreement in objects:
            if ann.kind == "box" and ann.bbox == (0.0, 0.0, 0.0, 0.0):
                continue  # an unsupported box: no object, but it lowers the agreement
            payload = ann.payload_json()
            eid = event_id(asset, CONSENSUS, payload, onto, version)
            events.append({
                "event_id": eid, "asset_id": asset, "event": "annotation", "kind": ann.kind,
                "class_id": None, "class_name": ann.label, "payload": payload,
                "annotator": CONSENSUS, "source": CONSENSUS, "ontology": onto,
                "ontology_version": version, "status": "submitted", "target_id": None,
                "comment": f"{n} annotators", "source_uri": None, "run_id": session.run_id,
                "created_at": now, "agreement": round(agreement, 4),
            })  # fmt: skip
            if ok:
                review_payload = json.dumps({"decision": "approve", "target": eid, "seq": 0},
                                            sort_keys=True, separators=(",", ":"))  # fmt: skip
                key = hashlib.sha256(f"review\x00{CONSENSUS}\x00{review_payload}".encode())
                reviews.append({
                    **events[-1], "event_id": key.hexdigest(), "event": "review",
                    "kind": "approve", "payload": review_payload, "status": "approved",
                    "target_id": eid,
                    "comment": f"agreement {asset_agreement:.2f} >= {min_agreement}",
                })  # fmt: skip
        if ok:
            approved += 1
        else:
            queued.append((asset, asset_agreement))
    _fill_class_ids(lk, events + reviews)
    table = pa.Table.from_pylist(events + reviews, LABEL_EVENTS.schema)
    session.commit(LABEL_EVENTS, table)
    rebuild_labels(lk, session)
    fleiss = fleiss_kappa(list(all_votes.values()))
    session.counts.update({"assets": len(multi), "approved": approved, "queued": len(queued)})
    session.record()
    return ConsensusReport(
        session.run_id, len(multi), approved, sorted(queued, key=lambda q: q[1]),
        {w: sum(v) / len(v) for w, v in agree.items()},
        {c: sum(v) / len(v) for c, v in class_agree.items()},
        fleiss, pairwise_cohen(all_votes),
        {w: sum(v) / len(v) for w, v in box_ious.items() if v},
    )  # fmt: skip


def _fill_class_ids(lake: Lake, rows: list[dict[str, Any]]) -> None:
    from smartray.annotate.ledger import registered

    cache: dict[tuple[str, int], dict[str, int]] = {}
    for r in rows:
        key = (r["ontology"], r["ontology_version"])
        if key not in cache:
            onto = registered(lake, key[0]).get(key[1])
            cache[key] = {} if onto is None else {c.name: c.id for c in onto.classes}
        r["class_id"] = cache[key].get(r["class_name"])
