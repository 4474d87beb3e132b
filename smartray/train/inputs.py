"""What a training run learns from, and how its images become tensors. Ray-free.

`select` (on the driver) turns the pinned `labels` and `splits` into the labelled train and
val rows: approved image-level `class` labels of one ontology version, on the assets of
one named split. Class indices follow the ontology's stable class ids, in id order.

`decode_batch` turns a batch of `assets` rows into uint8 image tensors: decode the stored
bytes, augment (training only: `smartray.augment` ops, seeded by run seed, epoch and
asset, so an epoch's images are reproducible), resize; `normalize` makes them model input.
`read_decode` (in Ray Data tasks) reads whole Parquet files of `assets` and decodes them
row group by row group, so reading is not a pipeline stage of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from smartray.augment.ops import augment
from smartray.errors import ConfigError
from smartray.sanitize.cv import cv2

if TYPE_CHECKING:  # its package loads the lake: not on a GPU box without deltalake
    from smartray.annotate.ontology import Ontology
    from smartray.tables.storage import LakeLocation

LABEL_COLUMNS = ["asset_id", "kind", "class_id", "ontology", "ontology_version"]
SPLIT_COLUMNS = ["split_name", "asset_id", "split"]


@dataclass
class Selection:
    """The labelled assets of a training run.

    Attributes:
        train: `asset_id`, `label` (class index) of the `train` side.
        val: the same for `val`.
        classes: One entry per class index: `{"index", "class_id", "name"}`.
        counts: train, val, and the assets left out, by why.
    """

    train: pa.Table
    val: pa.Table
    classes: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)

    def class_weights(self) -> list[float]:
        """Inverse class frequency on `train`, normalised to a mean of 1.

        What `--class-weights auto` weighs the loss by; a class with no example gets 0.
        """
        n = len(self.classes)
        freq = np.bincount(np.asarray(self.train["label"]), minlength=n).astype(np.float64)
        weights = np.where(freq > 0, freq.sum() / np.maximum(freq, 1) / n, 0.0)
        present = weights[freq > 0]
        scaled = weights / present.mean() if present.size else weights
        return [round(float(w), 6) for w in scaled]


def select(
    labels: pa.Table,
    splits: pa.Table,
    *,
    ontology: Ontology,
    split: str,
    allow_unseen: bool = False,
) -> Selection:
    """The train and val rows of `split`, labelled under `ontology`.

    Args:
        labels: `labels` (`LABEL_COLUMNS`) at the pinned version.
        splits: `splits` (`SPLIT_COLUMNS`) at the pinned version.
        ontology: The ontology and version the model learns.
        split: The split name (`smartray split --split NAME`).
        allow_unseen: Keep `val` assets of classes `train` has no example of (counted
            as `val_unseen_classes`): an active-learning round early on, whose model
            is measured as it is.

    Raises:
        ConfigError: no approved labels for the ontology, or only under other versions;
            no split of that name; an empty `train`; a class in `val` absent from `train`
            (unless `allow_unseen`).
    """
    mine = labels.filter(pc.equal(labels["ontology"], ontology.name))
    if mine.num_rows == 0:
        raise ConfigError(f"no approved labels for ontology {ontology.name!r}")
    at_version = mine.filter(pc.equal(mine["ontology_version"], ontology.version))
    if at_version.num_rows == 0:
        others = sorted(set(mine["ontology_version"].to_pylist()))
        raise ConfigError(
            f"the approved labels of {ontology.name!r} are under version(s) {others}, "
            f"none under v{ontology.version}: re-label, or train with --ontology-version"
        )
    index = {c.id: i for i, c in enumerate(sorted(ontology.classes, key=lambda c: c.id))}
    by_asset: dict[str, set[int]] = {}
    kinds_of: dict[str, set[str]] = {}
    for row in at_version.select(["asset_id", "kind", "class_id"]).to_pylist():
        kinds_of.setdefault(row["asset_id"], set()).add(row["kind"])
        if row["kind"] == "class" and row["class_id"] in index:
            by_asset.setdefault(row["asset_id"], set()).add(row["class_id"])
    counts: Counter[str] = Counter()
    counts["no_class_label"] = sum(1 for a in kinds_of if a not in by_asset)
    labelled = {}
    for asset_id, ids in by_asset.items():
        if len(ids) == 1:
            labelled[asset_id] = index[next(iter(ids))]
        else:
            counts["conflicting"] += 1
    named = splits.filter(pc.equal(splits["split_name"], split))
    if named.num_rows == 0:
        names = sorted(set(splits["split_name"].to_pylist())) if splits.num_rows else []
        raise ConfigError(f"no split named {split!r}; splits: {names}")
    side = dict(zip(named["asset_id"].to_pylist(), named["split"].to_pylist(), strict=True))
    rows: dict[str, list[tuple[str, int]]] = {"train": [], "val": []}
    for asset_id, label in sorted(labelled.items()):
        where = side.get(asset_id)
        if where in rows:
            rows[where].append((asset_id, label))
        else:
            counts["unsplit" if where is None else f"in_{where}"] += 1
    if not rows["train"]:
        raise ConfigError(f"split {split!r} has no labelled asset in 'train'")
    classes = [
        {"index": i, "class_id": c.id, "name": c.name}
        for i, c in enumerate(sorted(ontology.classes, key=lambda c: c.id))
    ]
    in_train = {label for _, label in rows["train"]}
    missing = sorted({label for _, label in rows["val"]} - in_train)
    if missing:
        counts["val_unseen_classes"] = len(missing)
    if missing and not allow_unseen:
        names = [classes[i]["name"] for i in missing]
        raise ConfigError(
            f"split {split!r}: class(es) {names} are in 'val' but not in 'train'; "
            "the model cannot learn them"
        )

    def table(pairs: list[tuple[str, int]]) -> pa.Table:
        return pa.table(
            {
                "asset_id": pa.array([a for a, _ in pairs], pa.string()),
                "label": pa.array([lab for _, lab in pairs], pa.int64()),
            }
        )

    counts["train"], counts["val"] = len(rows["train"]), len(rows["val"])
    return Selection(table(rows["train"]), table(rows["val"]), classes, dict(counts))


MEAN, STD = 0.5, 0.5


def decode_batch(
    batch: pa.Table,
    *,
    labels: pa.Table,
    image_size: int,
    ops: list[dict[str, Any]] | None = None,
    seed: int = 0,
    epoch: int = 0,
    with_ids: bool = False,
) -> dict[str, np.ndarray]:
    """`assets` rows (`asset_id`, `data`) to `image` [N, 3, S, S] uint8 RGB and `label` [N].

    Rows whose asset is not in `labels` (`asset_id`, `label`) are dropped; `ops` (training
    only) augment each image with a generator keyed by seed, epoch and asset id. Images
    stay uint8 (a quarter of float32's bytes through the object store); `normalize` makes
    them model input on the training device. `with_ids` adds `asset_id` [N] (scoring).
    """
    at = pc.index_in(batch["asset_id"], value_set=labels["asset_id"])  # null: unlabelled
    keep = pc.is_valid(at)
    wanted = batch.filter(keep)
    classes = pc.take(labels["label"], at.filter(keep)).to_numpy()
    ids = wanted["asset_id"].to_pylist()
    images = np.empty((len(ids), 3, image_size, image_size), np.uint8)
    for i, (asset_id, data) in enumerate(zip(ids, wanted["data"].to_pylist(), strict=True)):
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:  # stored bytes were sanitized at ingest: this is a broken lake
            raise ValueError(f"asset {asset_id}: stored bytes do not decode")
        if ops:
            img = augment(img, ops, key=f"{seed}:{epoch}:{asset_id}")
        img = cv2.resize(img, (image_size, image_size), interpolation=cv2.INTER_AREA)
        images[i] = img[:, :, ::-1].transpose(2, 0, 1)  # BGR -> RGB, channels first
    out = {"image": images, "label": classes.astype(np.int64)}
    if with_ids:
        out["asset_id"] = np.array(ids, dtype=object)
    return out


def read_decode(
    files: dict[str, np.ndarray],
    *,
    location: LakeLocation,
    labels: pa.Table,
    image_size: int,
    ops: list[dict[str, Any]] | None = None,
    seed: int = 0,
    epoch: int = 0,
    with_ids: bool = False,
    max_rows: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """`decode_batch` over each row group of the `assets` Parquet files in `files["path"]`.

    Paths are inside `location.filesystem()` (keys come from this process's environment
    or role). Row groups without a labelled asset are skipped after reading their ids
    only. Yields one batch per row group that holds one, in slices of at most `max_rows`
    rows if given (scoring: the model's batch size).
    """
    fs, _ = location.filesystem()
    wanted = labels["asset_id"]
    for path in files["path"]:
        parquet = pq.ParquetFile(str(path), filesystem=fs)
        for group in range(parquet.num_row_groups):
            # delta-rs rewrites (erase, upsert) store strings as string_view: plain again
            ids = parquet.read_row_group(group, columns=["asset_id"])["asset_id"]
            ids = ids.cast(pa.string())
            if not pc.any(pc.is_in(ids, value_set=wanted)).as_py():
                continue  # no wanted asset here: its image bytes are never read
            data = parquet.read_row_group(group, columns=["data"])["data"]
            rows = pa.table({"asset_id": ids, "data": data.cast(pa.large_binary())})
            out = decode_batch(rows, labels=labels, image_size=image_size, ops=ops,
                               seed=seed, epoch=epoch, with_ids=with_ids)  # fmt: skip
            step = max_rows or len(out["label"]) or 1
            for start in range(0, len(out["label"]), step):
                yield {k: v[start : start + step] for k, v in out.items()}


def normalize(images: Any) -> Any:
    """uint8 images (a numpy array or torch tensor) as float model input in [-1, 1]."""
    return (
        (images.float() / 255.0 - MEAN) / STD
        if hasattr(images, "float")
        else ((images.astype(np.float32) / 255.0 - MEAN) / STD)
    )
