"""Settings of `smartray loop` (its job module makes the flags from them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smartray.selection.config import COLD_START, STRATEGIES

APPROVE = ("reviewed", "all")
ORACLE = "oracle"  # the annotator and reviewer of a simulation's answers


class LoopConfig(BaseModel):
    """One active-learning round, or `rounds` of them answered by an oracle.

    Attributes:
        experiment: The experiment: its models, batches and rounds.
        split: Its `train` side is learnt and picked from; `val` (and `test`, if the
            split has one) stay fixed and are what the accuracy is measured on.
        ontology: Ontology name (None: the only one registered).
        ontology_version: Its version (None: the experiment's, from its first round; a
            new experiment takes the latest).
        budget: Assets per batch.
        strategy: How a batch is picked once there is a model (`STRATEGIES`).
        cold_start: How the first batch is picked, before any label (`COLD_START`).
        weights, class_balance: `weighted`'s objectives, as for `select`.
        where: Narrow the pool by a SQL filter over the asset view, as for `select`
            (`source_uri LIKE '%/digits/%'`).
        mc_dropout: Monte-Carlo passes when scoring (None: 10 for `bald` or a weighted
            `bald`, else 0).
        seed: Round r selects with seed `seed + r` and trains with `seed` (None: each
            selection seed is drawn and recorded with its round; training uses seed 0).
        labels: Annotation files that came back, imported in order.
        format: Their format (coco, yolo, labelstudio, cvat, folders).
        annotator: Who made them.
        image_root: Where file names in them point (as for `import-labels`).
        approve: `reviewed`: the loop approves nothing, labels count once someone runs
            `smartray review approve`; `all`: the loop approves what it imported.
        rounds: Rounds to run; more than one needs an oracle.
        oracle: A complete label source (file or folder) that answers each batch through
            the import path (annotator and reviewer `oracle`): for simulations.
        oracle_format: Its format.
        model, epochs, image_size, batch_size, lr, augment, use_gpu: Training, as for
            `train`.
        fine_tune: Start each model from the experiment's last one (default: afresh).
        slice_by: Columns the val/test evaluation slices by (the report shows the worst).
        export_format: The batch's export format, with the model's guesses.
        out: Folder of the exports and the report: `<out>/<experiment>/round-<r>/` and
            `<out>/<experiment>/report.html`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: str = Field(min_length=1)
    split: str = Field(min_length=1)
    ontology: str | None = None
    ontology_version: int | None = Field(None, ge=1)
    budget: int = Field(50, ge=1, le=1_000_000)
    strategy: str = "margin"
    cold_start: str = "kcenter"
    weights: dict[str, float] = Field(default_factory=lambda: {"margin": 1.0, "kcenter": 1.0})
    class_balance: bool = True
    where: str | None = None
    mc_dropout: int | None = Field(None, ge=0, le=1000)
    seed: int | None = Field(None, ge=0, le=2**40)
    labels: tuple[str, ...] = ()
    format: str | None = None
    annotator: str = "annotators"
    image_root: str | None = None
    approve: Literal["reviewed", "all"] = "reviewed"
    rounds: int = Field(1, ge=1, le=1000)
    oracle: str | None = None
    oracle_format: str | None = None
    model: str = "small-cnn"
    epochs: int = Field(5, ge=1, le=10_000)
    image_size: int = Field(32, ge=8, le=1024)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(1e-3, gt=0, le=10)
    augment: str = "crop:0.9,jitter:0.1"
    use_gpu: bool = False
    fine_tune: bool = False
    slice_by: tuple[str, ...] = ("source_folder", "blur", "brightness", "contrast")
    export_format: str = "labelstudio"
    out: str = "al-rounds"

    @model_validator(mode="after")
    def _consistent(self) -> LoopConfig:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.strategy!r}: choose one of {', '.join(STRATEGIES)}"
            )
        if self.cold_start not in COLD_START:
            raise ValueError(f"--cold-start {self.cold_start!r}: choose {' or '.join(COLD_START)}")
        if self.labels and not self.format:
            raise ValueError("--labels needs --format (coco, yolo, labelstudio, cvat, folders)")
        if self.oracle and not self.oracle_format:
            raise ValueError("--oracle needs --oracle-format")
        if self.rounds > 1 and not self.oracle:
            raise ValueError(
                f"--rounds {self.rounds}: people answer one round at a time; more than one "
                "round needs --oracle (a simulation)"
            )
        if self.oracle and self.labels:
            raise ValueError("give --labels (people's answers) or --oracle, not both")
        return self

    def passes(self) -> int:
        """Monte-Carlo-dropout passes to score with."""
        if self.mc_dropout is not None:
            return self.mc_dropout
        wants = self.strategy == "bald" or (self.strategy == "weighted" and "bald" in self.weights)
        return 10 if wants else 0
