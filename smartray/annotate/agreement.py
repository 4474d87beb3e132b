"""Agreement between annotators: majority votes, IoU clustering, Cohen's and Fleiss' kappa.

Pure functions over plain Python values, so they are easy to test and reuse.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x1, y1, x2, y2


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def majority(votes: Mapping[str, str]) -> tuple[str | None, float]:
    """The label most annotators gave (annotator -> label) and the share who gave it.

    A tie for the top gives None: there is no majority.
    """
    if not votes:
        return None, 0.0
    counts = Counter(votes.values()).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, counts[0][1] / len(votes)
    return counts[0][0], counts[0][1] / len(votes)


@dataclass(frozen=True)
class BoxCluster:
    """Boxes of one class from different annotators that overlap: one object."""

    label: str
    members: dict[str, Box]  # annotator -> box

    @property
    def mean(self) -> Box:
        """The consensus box: the members' mean corners."""
        boxes = list(self.members.values())
        return tuple(sum(b[i] for b in boxes) / len(boxes) for i in range(4))  # type: ignore[return-value]

    @property
    def mean_iou(self) -> float:
        """Mean IoU of the members with the consensus box."""
        m = self.mean
        return sum(iou(b, m) for b in self.members.values()) / len(self.members)


def cluster_boxes(boxes: Sequence[tuple[str, str, Box]], threshold: float) -> list[BoxCluster]:
    """Greedy IoU clustering of (annotator, label, box) triples.

    Larger boxes seed clusters first; a box joins the cluster of its label whose seed it
    overlaps most (IoU >= `threshold`) and where its annotator has no box yet.
    """
    order = sorted(boxes, key=lambda t: -(t[2][2] - t[2][0]) * (t[2][3] - t[2][1]))
    clusters: list[tuple[Box, str, dict[str, Box]]] = []
    for annotator, label, box in order:
        best, best_iou = None, threshold
        for seed, seed_label, members in clusters:
            if seed_label != label or annotator in members:
                continue
            v = iou(box, seed)
            if v >= best_iou:
                best, best_iou = members, v
        if best is None:
            clusters.append((box, label, {annotator: box}))
        else:
            best[annotator] = box
    return [BoxCluster(label, members) for _, label, members in clusters]


def fleiss_kappa(items: Sequence[Mapping[str, str]]) -> float | None:
    """Fleiss' kappa over items rated by 2+ raters each (rater -> category).

    Items may have different numbers of raters (per-item agreement is normalized by its
    own count). None when fewer than one item qualifies or chance agreement is 1.
    """
    rated = [Counter(v.values()) for v in items if len(v) >= 2]
    if not rated:
        return None
    per_item = []
    totals: Counter[str] = Counter()
    n_all = 0
    for counts in rated:
        n = sum(counts.values())
        per_item.append((sum(c * c for c in counts.values()) - n) / (n * (n - 1)))
        totals.update(counts)
        n_all += n
    p_bar = sum(per_item) / len(per_item)
    p_e = sum((c / n_all) ** 2 for c in totals.values())
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1 - p_e)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters over the same items (None if chance agreement is 1)."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def pairwise_cohen(votes: Mapping[str, Mapping[str, str]]) -> dict[tuple[str, str], float]:
    """Cohen's kappa of each pair of annotators over the assets both labelled.

    Args:
        votes: asset -> {annotator -> class}.
    """
    by_pair: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for v in votes.values():
        names = sorted(v)
        for i, x in enumerate(names):
            for y in names[i + 1 :]:
                by_pair[(x, y)][0].append(v[x])
                by_pair[(x, y)][1].append(v[y])
    out = {}
    for pair, (a, b) in sorted(by_pair.items()):
        k = cohen_kappa(a, b)
        if k is not None:
            out[pair] = k
    return out
