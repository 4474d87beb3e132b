"""What a `predict` actor does with its files: read, score (`scorer.Scorer`), write parts.

Ray-free; the uncertainty statistics and the model call are in `scorer.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa

from smartray.predict.scorer import Scorer
from smartray.tables.catalog import PREDICTIONS
from smartray.tables.parts import write_part
from smartray.tables.storage import LakeLocation
from smartray.train.inputs import read_decode

AT = PREDICTIONS.schema.field("predicted_at").type


class FileScorer(Scorer):
    """A `Scorer` that reads its input and writes its output: files in, parts out.

    Each call takes paths (`files["path"]`) of the pinned `assets` version, decodes the
    `wanted` images in slices of at most `max_rows` (`train.inputs.read_decode`, no
    augmentation), scores them, and writes the rows as `predictions` parts of at most
    `part_rows` (`write_predictions`), yielding each part's `PartFile` row for the driver
    to commit. Reading and writing inside the actor leave no stage that could wait for
    the CPUs the actors hold, and no image or embedding crosses the object store.
    """

    def __init__(
        self,
        *,
        location: LakeLocation,
        wanted: pa.Table,
        image_size: int,
        max_rows: int,
        part_rows: int,
        part: dict[str, Any],
        **model: Any,
    ):
        super().__init__(**model)
        self.location, self.wanted = location, wanted
        self.image_size, self.max_rows, self.part_rows = image_size, max_rows, part_rows
        self.part = part  # write_predictions' model_id, classes, assets_version, run_id

    def __call__(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, list[Any]]]:  # type: ignore[override]
        """Scores the wanted images of the files in `batch["path"]`; yields part files."""
        held: list[dict[str, np.ndarray]] = []
        rows = 0
        for images in read_decode(batch, location=self.location, labels=self.wanted,
                                  image_size=self.image_size, with_ids=True,
                                  max_rows=self.max_rows):  # fmt: skip
            held.append(super().__call__(images))
            rows += len(images["label"])
            if rows >= self.part_rows:
                yield self._write(held)
                held, rows = [], 0
        if held:
            yield self._write(held)

    def _write(self, held: list[dict[str, np.ndarray]]) -> dict[str, list[Any]]:
        joined = {k: np.concatenate([h[k] for h in held]) for k in held[0]}
        return write_predictions(joined, location=self.location, **self.part)


def _list_column(values: np.ndarray) -> pa.Array:
    """A `[N, D]` float array as a `list<float32>` column."""
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    width = values.shape[1] if values.ndim == 2 else 0
    return pa.FixedSizeListArray.from_arrays(flat, width).cast(pa.list_(pa.float32()))


def _mc_column(batch: dict[str, np.ndarray], name: str, n: int, kind: pa.DataType) -> pa.Array:
    """A Monte-Carlo column: its values when the batch was scored with passes, else nulls."""
    if "mutual_info" not in batch:
        return pa.nulls(n, kind)
    return pa.array(batch[name].astype(kind.to_pandas_dtype()))


def write_predictions(
    batch: dict[str, np.ndarray],
    *,
    location: LakeLocation,
    model_id: str,
    classes: list[dict[str, Any]],
    assets_version: int,
    run_id: str,
) -> dict[str, list[Any]]:
    """Writes a batch of `Scorer` output as one `predictions` part.

    Returns its `PartFile` as one row, for the driver to commit.
    """
    index = batch["predicted_index"].astype(np.int64)
    class_ids = np.array([c["class_id"] for c in classes], np.int32)
    names = np.array([c["name"] for c in classes], dtype=object)
    n = len(index)
    rows = pa.table(
        {
            "model_id": pa.array([model_id] * n, pa.string()),
            "asset_id": pa.array(batch["asset_id"].tolist(), pa.string()),
            "predicted_index": pa.array(index.astype(np.int32)),
            "predicted_class_id": pa.array(class_ids[index]),
            "predicted_class": pa.array(names[index].tolist(), pa.string()),
            "confidence": pa.array(batch["confidence"]),
            "margin": pa.array(batch["margin"]),
            "entropy": pa.array(batch["entropy"]),
            "probabilities": _list_column(batch["probabilities"]),
            "embedding": _list_column(batch["embedding"]),
            "mc_passes": _mc_column(batch, "mc_passes", n, pa.int32()),
            "mutual_info": _mc_column(batch, "mutual_info", n, pa.float32()),
            "assets_version": pa.array([assets_version] * n, pa.int64()),
            "run_id": pa.array([run_id] * n, pa.string()),
            "predicted_at": pa.array([dt.datetime.now(dt.UTC)] * n, AT),
        }
    )
    part = write_part(location, PREDICTIONS, rows, prefix=run_id)
    return {k: [v] for k, v in asdict(part).items()}
