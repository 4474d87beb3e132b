"""A recorded model: found by id or `latest`; its best checkpoint, checked, loaded.

Every file of the checkpoint is checked against the sha256 that `models` recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from smartray.errors import ConfigError
from smartray.tables.catalog import MODELS
from smartray.tables.lake import Lake
from smartray.train import checkpoint

LATEST = "latest"
# `find-label-issues` trains its fold models in experiments named so; `latest` without
# an experiment never picks one (each learnt only part of the split).
FOLD_EXPERIMENT = "label-issues:"


@dataclass(frozen=True)
class RecordedModel:
    """A row of `models`, with what scoring needs parsed out of it.

    Attributes:
        model_id: Its id (the training run's id).
        experiment: The experiment it belongs to.
        architecture: `--model` it was trained with (`nets.build` builds it again).
        image_size: Side its input images are resized to.
        ontology, ontology_version: What its classes come from.
        classes: `{"index", "class_id", "name"}` per output, in index order.
        checkpoint_uri: The best epoch's checkpoint folder in the lake's storage.
        checkpoint_sha256: File name -> sha256, as recorded at training.
    """

    model_id: str
    experiment: str
    architecture: str
    image_size: int
    ontology: str
    ontology_version: int
    classes: list[dict[str, Any]]
    checkpoint_uri: str
    checkpoint_sha256: dict[str, str]

    @classmethod
    def of(cls, row: dict[str, Any]) -> RecordedModel:
        """From a `models` row."""
        return cls(
            model_id=row["model_id"],
            experiment=row["experiment"],
            architecture=row["architecture"],
            image_size=int(json.loads(row["config"])["image_size"]),
            ontology=row["ontology"],
            ontology_version=int(row["ontology_version"]),
            classes=json.loads(row["classes"]),
            checkpoint_uri=row["checkpoint_uri"],
            checkpoint_sha256=json.loads(row["checkpoint_sha256"]),
        )


def find_model(lake: Lake, model: str, experiment: str | None = None) -> RecordedModel:
    """The model `model` (an id, or `latest`: the newest, of `experiment` if given).

    Without an experiment, `latest` leaves out `find-label-issues`' fold models.

    Raises:
        ConfigError: no model is recorded, the id is unknown, or it belongs to another
            experiment than the one given.
    """
    if not lake.exists(MODELS.name):
        raise ConfigError(f"--model {model}: no model is recorded yet (run `smartray train`)")
    cols = [c for c in MODELS.schema.names if c not in ("epochs", "checkpoints")]
    rows = lake.table(MODELS.name, columns=cols).to_pylist()
    if model == LATEST:
        mine = [r for r in rows if _candidate(r["experiment"], experiment)]
        if not mine:
            known = sorted({r["experiment"] for r in rows})
            which = f"experiment {experiment!r} has" if experiment else "there is"
            raise ConfigError(
                f"--model latest: {which} no model (fold models of find-label-issues are "
                f"only picked with --experiment); experiments: {known}"
            )
        return RecordedModel.of(max(mine, key=lambda r: (r["trained_at"], r["model_id"])))
    match = [r for r in rows if r["model_id"] == model]
    if not match:
        newest = [r["model_id"] for r in sorted(rows, key=lambda r: r["trained_at"])][-3:]
        raise ConfigError(
            f"--model {model!r}: unknown model; the newest are {newest} (or say `latest`)"
        )
    found = RecordedModel.of(match[0])
    if experiment is not None and found.experiment != experiment:
        raise ConfigError(
            f"--model {model!r} belongs to experiment {found.experiment!r}, not {experiment!r}"
        )
    return found


def has_model(lake: Lake, experiment: str) -> bool:
    """Whether `experiment` has a recorded model yet."""
    if not lake.exists(MODELS.name):
        return False
    return experiment in set(
        lake.table(MODELS.name, columns=["experiment"])["experiment"].to_pylist()
    )


def _candidate(experiment: str, wanted: str | None) -> bool:
    """Whether a model of `experiment` may be `latest` when `wanted` was asked for."""
    if wanted is not None:
        return experiment == wanted
    return not experiment.startswith(FOLD_EXPERIMENT)


def load_weights(lake: Lake, model: RecordedModel) -> dict[str, torch.Tensor]:
    """The best checkpoint's weights, fetched from the lake's storage and checked.

    Raises:
        CheckpointError: a file is missing, extra, or does not match its recorded sha256.
    """
    return checkpoint.fetch_weights(
        lake.location, model.checkpoint_uri, model.checkpoint_sha256, f"model {model.model_id}"
    )
