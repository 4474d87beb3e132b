"""`smartray report`: an active-learning experiment as one self-contained HTML page.

1. Pin the version of every table the page reads (`TABLES`); a table that is not there
   yet (a lake that never ran evaluate, find-label-issues or loop) gives its section a
   "not run yet" note instead.
2. Refuse an experiment that none of `batches`, `al_rounds` and `models` names, listing
   those there are, before anything is written.
3. Read only the columns each section needs (`sections.COLUMNS`), and thumbnails only of
   the assets shown; never the image bytes.
4. Draw the plots (`plots.py`), render the page (`page.py`) and write it in one go: a
   local `out` through a temporary file renamed over it, an `s3://bucket/key` in one PUT
   (endpoint and region from the environment, as the lake's). The lake is not written.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from smartray.annotate import issue_queue
from smartray.errors import ConfigError
from smartray.report import plots
from smartray.report.page import Page, render
from smartray.report.sections import (
    COLUMNS,
    QUALITY,
    Batch,
    Curve,
    Evaluation,
    Issue,
    latest_batch,
    latest_evaluation,
    latest_model,
    learning_curves,
)
from smartray.tables import Lake, LakeLocation
from smartray.tables.filters import text

log = logging.getLogger(__name__)

TABLES = ("assets", "batches", "al_rounds", "models", "evaluations", "label_issues")
EXPERIMENT_TABLES = ("batches", "al_rounds", "models")
ISSUES_SHOWN = 24


@dataclass(frozen=True)
class ReportSummary:
    """What a report shows, and where it went."""

    out: str
    experiments: list[str]
    bytes: int
    batch_assets: int  # cards of the latest batches, every experiment together
    issues: int
    slices: int  # worst-slice rows shown
    points: int  # learning-curve points
    versions: dict[str, int | None]

    def line(self) -> str:
        """The job's summary line."""
        read = ", ".join(f"{t} v{v}" for t, v in self.versions.items() if v is not None)
        return (
            f"report {', '.join(self.experiments)} -> {self.out} ({self.bytes / 1024:.0f} KiB): "
            f"{self.batch_assets} batch asset(s), {self.issues} label issue(s), {self.slices} "
            f"slice(s), {self.points} learning-curve point(s); read {read or 'no table'}"
        )


class _Pinned:
    """The lake's tables at the versions found when the report began."""

    def __init__(self, lake: Lake):
        self.lake = lake
        self.versions = {name: lake.version(name) for name in TABLES}

    def read(
        self, name: str, columns: list[str], where: pads.Expression | None = None
    ) -> pa.Table | None:
        """Columns of `name` at its pinned version; None if it is not there."""
        version = self.versions[name]
        if version is None:
            return None
        return self.lake.dataset(name, version).to_table(columns=columns, filter=where)

    def thumbnails(self, ids: Sequence[str]) -> dict[str, bytes]:
        """Asset id -> its JPEG thumbnail, for the assets of `ids` that are there."""
        rows = self.read("assets", ["asset_id", "thumbnail"], text("asset_id").isin(list(ids)))
        return {} if rows is None else {r["asset_id"]: r["thumbnail"] for r in rows.to_pylist()}


def _check_out(out: str) -> None:
    if "://" in out and not out.startswith("s3://"):
        raise ConfigError(f"--out {out!r}: write to a local file or s3://bucket/key.html")
    if out.endswith("/") or os.path.isdir(out):
        raise ConfigError(f"--out {out!r} is a folder: name the HTML file to write")


def _experiments(pinned: _Pinned, experiments: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(e.strip() for e in experiments if e.strip()))
    if not wanted:
        raise ConfigError("--experiment: name at least one experiment")
    known: set[str] = set()
    for name in EXPERIMENT_TABLES:
        rows = pinned.read(name, ["experiment"])
        if rows is not None:
            known.update(pc.unique(rows["experiment"].cast(pa.string())).to_pylist())
    unknown = [e for e in wanted if e not in known]
    if unknown:
        there = ", ".join(sorted(known)) if known else "none yet (run `smartray loop`)"
        raise ConfigError(
            f"--experiment {', '.join(unknown)}: no batch, round or model of it in lake "
            f"{pinned.lake.uri!r}; experiments: {there}"
        )
    return wanted


def _batches(pinned: _Pinned, experiments: list[str]) -> dict[str, Batch | str]:
    rows = pinned.read("batches", COLUMNS["batches"], text("experiment").isin(experiments))
    if rows is None:
        return dict.fromkeys(experiments, "not run yet: no batch (run `smartray select`)")
    found = {e: latest_batch(rows, e) for e in experiments}
    thumbs = pinned.thumbnails([c.asset_id for b in found.values() if b for c in b.cards])
    out: dict[str, Batch | str] = {}
    for e, batch in found.items():
        if batch is None:
            out[e] = "no batch selected yet for this experiment"
        else:
            cards = [replace(c, thumbnail=thumbs.get(c.asset_id)) for c in batch.cards]
            out[e] = replace(batch, cards=cards)
    return out


def _issues(pinned: _Pinned) -> tuple[list[Issue] | str, str | None]:
    if pinned.versions["label_issues"] is None:
        return "not run yet: no label issues (run `smartray find-label-issues`)", None
    try:
        queue = issue_queue(pinned.lake, top=ISSUES_SHOWN).to_pylist()
    except ConfigError:  # the table is there, its latest run found nothing
        return "none", None
    run_id = queue[0]["run_id"]
    rows = pinned.read("label_issues", COLUMNS["label_issues"], text("run_id") == run_id)
    about = {r["asset_id"]: r for r in rows.to_pylist()} if rows is not None else {}
    thumbs = pinned.thumbnails([q["asset_id"] for q in queue])
    issues = [
        Issue(q["asset_id"], q["rank"], d["given_class"], d["suggested_class"],
              d["self_confidence"], thumbs.get(q["asset_id"]))
        for q in queue
        if (d := about.get(q["asset_id"]))
    ]  # fmt: skip
    return (issues or "none"), run_id


def _quality(pinned: _Pinned, batches: dict[str, Batch | str]) -> tuple[str | None, str]:
    rows = pinned.read("assets", COLUMNS["quality"])
    if rows is None:
        return None, "not run yet: no assets (run `smartray ingest`)"
    values = {m: rows[m].to_numpy(zero_copy_only=False) for m in QUALITY}
    index = {a: i for i, a in enumerate(rows["asset_id"].to_pylist())}
    marks = {}
    for e, batch in batches.items():
        if isinstance(batch, Batch):
            at = np.array([index[c.asset_id] for c in batch.cards if c.asset_id in index], int)
            marks[f"{e} round {batch.round}"] = {m: v[at] for m, v in values.items()}
    note = f"over all {rows.num_rows} asset(s) of the lake" + (
        "; ticks and dashed lines: each latest batch's assets and their median" if marks else ""
    )
    return plots.quality_histograms(values, marks), note


def _evaluations(pinned: _Pinned, experiments: list[str]) -> dict[str, Evaluation | str]:
    models = pinned.read("models", COLUMNS["models"])
    out: dict[str, Evaluation | str] = {}
    for e in experiments:
        model = latest_model(models, e) if models is not None else None
        if model is None:
            out[e] = "not run yet: the experiment has no trained model (cold start)"
            continue
        evals = pinned.read("evaluations", COLUMNS["evaluations"], text("model_id") == model)
        found = latest_evaluation(evals, model) if evals is not None else None
        out[e] = found or (
            f"not run yet: its latest model {model} is not evaluated "
            f"(run `smartray evaluate --model {model}`)"
        )
    return out


def _curves(pinned: _Pinned, experiments: list[str]) -> list[Curve] | str:
    rows = pinned.read("al_rounds", COLUMNS["al_rounds"], text("experiment").isin(experiments))
    if rows is None:
        return "not run yet: no active-learning rounds (run `smartray loop`)"
    return learning_curves(rows, experiments) or "no rounds yet for these experiments"


def build_page(experiments: Sequence[str], *, lake: str | None = None) -> Page:
    """Reads the lake and gathers what the page shows (nothing is written).

    Raises:
        ConfigError: no experiment named, or one that no table names.
    """
    pinned = _Pinned(Lake(lake))
    names = _experiments(pinned, experiments)
    batches = _batches(pinned, names)
    issues, issues_run = _issues(pinned)
    quality_svg, quality_note = _quality(pinned, batches)
    curves = _curves(pinned, names)
    return Page(
        experiments=names,
        lake=pinned.lake.uri,
        made_at=dt.datetime.now(dt.UTC),
        versions=pinned.versions,
        batches=batches,
        issues=issues,
        issues_run=issues_run,
        quality_svg=quality_svg,
        quality_note=quality_note,
        evaluations=_evaluations(pinned, names),
        curves=curves,
        curve_svg=plots.learning_curve(curves) if isinstance(curves, list) else None,
    )


def _write(out: str, data: bytes) -> str:
    if out.startswith("s3://"):
        fs, path = LakeLocation.from_uri(out).filesystem()
        with fs.open_output_stream(path) as f:
            f.write(data)
        return out
    path = os.path.abspath(os.path.expanduser(out))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_report(experiments: list[str], out: str, *, lake: str | None = None) -> ReportSummary:
    """Writes the report of `experiments` (compared on one learning curve) to `out`.

    Args:
        experiments: Experiment names, as `smartray select` / `loop` recorded them.
        out: The HTML file: a local path or `s3://bucket/key.html`.
        lake: The lake root (default env `SMARTRAY_LAKE` or `./lake`).

    Raises:
        ConfigError: a bad `out`, no experiment, or one that no table names; nothing is
            written.
    """
    _check_out(out)
    page = build_page(experiments, lake=lake)
    data = render(page).encode("utf-8")
    where = _write(out, data)
    log.info("report of %s written to %s (%d bytes)", page.experiments, where, len(data))
    batches = [b for b in page.batches.values() if isinstance(b, Batch)]
    evaluations = [v for v in page.evaluations.values() if isinstance(v, Evaluation)]
    return ReportSummary(
        out=where,
        experiments=page.experiments,
        bytes=len(data),
        batch_assets=sum(len(b.cards) for b in batches),
        issues=len(page.issues) if isinstance(page.issues, list) else 0,
        slices=sum(len(v.worst) for v in evaluations),
        points=sum(len(c.labelled) for c in page.curves) if isinstance(page.curves, list) else 0,
        versions=page.versions,
    )
