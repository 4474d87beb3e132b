"""Settings of `smartray score` and `smartray select` (their job modules make the flags)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartray.errors import ConfigError
from smartray.predict.config import Scoring

STRATEGIES = (
    "random", "least-confidence", "margin", "entropy", "bald", "kcenter", "badge", "weighted",
)  # fmt: skip
# without a model (cold start): random, or k-center over the stored image descriptors
COLD_START = ("random", "kcenter")
# what `weighted` may combine; `kcenter` is the distance to what is labelled or picked
OBJECTIVES = ("least-confidence", "margin", "entropy", "bald", "kcenter")
# the uncertainty a two-stage selection keeps the most uncertain rows by
PREFILTER_BY = ("least-confidence", "margin", "entropy", "bald")


class ScoreConfig(Scoring):
    """Which model scores the experiment's pool (the scoring settings: `Scoring`).

    Attributes:
        model: A model id of the experiment, or `latest` (its newest).
        experiment: The experiment whose pool is scored: the assets with no approved
            label for the model's ontology, never those on the `val` or `test` side of
            the model's split; its labelled `train` assets are scored too (k-center
            measures distance from them).
        snapshot: Narrow the pool to this snapshot's members.
        where: Narrow the pool by a SQL filter over the asset view.
        mc_dropout: Monte-Carlo-dropout passes per image (0: none); fills `mutual_info`
            (BALD) and `mc_passes`. The model needs dropout layers.
        repick: Score the earlier picks that came back unanswered too (as `select`'s).
    """

    model: str = Field("latest", min_length=1)
    experiment: str = Field(min_length=1)
    snapshot: str | None = None
    where: str | None = None
    mc_dropout: int = Field(0, ge=0, le=1000)
    repick: bool = False


class SelectConfig(BaseModel):
    """How `smartray select` picks the next batch of an experiment.

    Attributes:
        experiment: The experiment (its models, its earlier batches).
        budget: Assets to pick.
        strategy: One of `STRATEGIES` (`COLD_START` when the experiment has no model).
        model: A model id of the experiment, `latest`, or `none` (cold start even if
            there is a model).
        split: The split whose `val` and `test` sides stay out of the pool (default:
            the model's).
        ontology: Cold start: the ontology whose approved labels leave the pool (default:
            the only one).
        ontology_version: Cold start: its version (default: the latest).
        seed: Fixes random draws (None: drawn, and recorded with the round).
        weights: `weighted`: objective -> strength (`OBJECTIVES`).
        class_balance: `weighted`: rotate the picks over the predicted classes.
        prefilter_over: Pools larger than this are two-stage for kcenter, badge and
            weighted: the most uncertain `prefilter_factor x budget` rows, then diversity.
        prefilter_factor: How many survivors per pick.
        prefilter_by: The uncertainty of the first stage (`PREFILTER_BY`).
        snapshot, where: Narrow the pool as for `score`.
        repick: Earlier picks that came back with no annotation are in the pool again
            (`smartray loop` sets it: a round is closed when the next one starts).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: str = Field(min_length=1)
    budget: int = Field(ge=1, le=10_000_000)
    strategy: str = "margin"
    model: str = Field("latest", min_length=1)
    split: str | None = None
    ontology: str | None = None
    ontology_version: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0, le=2**62)
    weights: dict[str, float] = Field(default_factory=lambda: {"margin": 1.0, "kcenter": 1.0})
    class_balance: bool = True
    prefilter_over: int = Field(50_000, ge=1)
    prefilter_factor: int = Field(10, ge=1)
    prefilter_by: str = "margin"
    snapshot: str | None = None
    where: str | None = None
    repick: bool = False

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        if v not in STRATEGIES:
            raise ValueError(f"unknown strategy {v!r}: choose one of {', '.join(STRATEGIES)}")
        return v

    @field_validator("weights")
    @classmethod
    def _known_objectives(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(OBJECTIVES))
        if unknown:
            raise ValueError(f"unknown objective(s) {unknown}: choose from {', '.join(OBJECTIVES)}")
        if any(not math.isfinite(w) or w < 0 for w in v.values()) or not any(v.values()):
            raise ValueError(f"weights {v}: each must be a finite number >= 0, not all 0")
        return {name: w for name, w in v.items() if w}  # a zero strength: not an objective

    @field_validator("prefilter_by")
    @classmethod
    def _known_prefilter(cls, v: str) -> str:
        if v not in PREFILTER_BY:
            raise ValueError(f"unknown uncertainty {v!r}: choose one of {', '.join(PREFILTER_BY)}")
        return v


def parse_weights(text: str) -> dict[str, float]:
    """`margin=1,kcenter=0.5` as a dict.

    Raises:
        ConfigError: an entry that is not NAME=NUMBER.
    """
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, eq, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq:
            raise ConfigError(f"--weights {text!r}: write NAME=STRENGTH,... ({item!r})")
    return out
