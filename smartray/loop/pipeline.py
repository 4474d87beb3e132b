"""`smartray loop`: whole active-learning rounds, each step a recorded run.

One round of experiment E on split S:

1. **Labels back.** The files named with `--labels` are imported as `import-labels`
   would (`--approve all`: approved by the loop; `reviewed`: left for `smartray
   review`). With `--oracle`, the oracle answers the open batch (the experiment's latest)
   through the same import path, only that batch's assets, annotator and reviewer
   `oracle`; in a simulation's first round it also labels the split's `val`/`test` side
   when nothing there is labelled yet (the fixed evaluation set). Every file is read
   and checked before anything is written: a file for another ontology version, or an
   oracle that answers none of the batch, stops the round with nothing written.
2. **Train** a model on the approved labels of S's train side (afresh, or fine-tuned
   from E's last model), **evaluate** it on `val` (and `test`), **score** the pool. With
   no label yet the round is a cold start: no model.
3. **Select** the next batch (`select`, with `repick`: an earlier pick that came back
   unanswered is in the pool again), **export** it with the model's guesses, record
   the round in `al_rounds` (the versions and seed the selection read: `--replay`
   selects again from them), and write the **report**.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from smartray.annotate import review
from smartray.annotate.ledger import (
    CheckedFile,
    commit_labels,
    ontology_for,
    read_labels,
    registered,
)
from smartray.annotate.ontology import Ontology
from smartray.cluster import ensure_ray
from smartray.errors import ConfigError
from smartray.loop.config import ORACLE, LoopConfig
from smartray.predict import EvaluateConfig, evaluate
from smartray.predict.model import has_model
from smartray.report import write_report
from smartray.selection import ScoreConfig, SelectConfig, score, select
from smartray.selection.pipeline import RECORDED_VERSIONS, Recorded, SelectSummary
from smartray.tables import Lake, TableSpec
from smartray.tables.catalog import AL_ROUNDS, BATCHES, LABEL_EVENTS, LABELS, SPLITS
from smartray.tables.filters import text
from smartray.train import TrainConfig, train

log = logging.getLogger(__name__)

HELD_OUT = ("val", "test")


@dataclass(frozen=True)
class OpenBatch:
    """The experiment's latest batch: its round (0: none yet) and ids in pick order."""

    round: int
    ids: list[str]


def loop(
    config: LoopConfig, *, lake: str | None = None, ray_address: str | None = None
) -> Iterator[str]:
    """Runs `config.rounds` rounds; yields each step's line, then one line per round.

    Raises:
        ConfigError: see `run_round`; the rounds before it stay recorded.
    """
    import ray

    started = ensure_ray(ray_address)
    try:
        for _ in range(config.rounds):
            yield from run_round(config, lake=lake, ray_address=ray_address)
    finally:
        if started:
            ray.shutdown()


def run_round(
    config: LoopConfig, *, lake: str | None = None, ray_address: str | None = None
) -> Iterator[str]:
    """One round (module doc); yields a line per step and ends with the round's line.

    Raises:
        ConfigError: an unknown split or ontology, a label file for another ontology
            version or with nothing that fits it, an oracle that answers none of the
            open batch: nothing written. Errors of a later step (an empty pool, say)
            leave the steps before it recorded, and no `al_rounds` row.
    """
    lk = Lake(lake)
    onto = experiment_ontology(lk, config)
    sides = _sides(lk, config.split)
    batch = open_batch(lk, config.experiment)
    answers = _read_answers(lk, config, onto, batch, sides)  # every check before a write
    approving = bool(config.oracle) or config.approve == "all"
    _measurable(lk, config, onto, sides, answers if approving else [])
    runs: dict[str, Any] = {}
    imported, approved = 0, 0
    events: list[str] = []
    for checked in answers:
        done = commit_labels(
            checked, lake=lk, annotator=ORACLE if config.oracle else config.annotator
        )
        runs.setdefault("import", []).append(done.run_id)
        imported += done.imported
        events += done.event_ids  # new or already in the ledger (an earlier, cut try)
        yield "labels:   " + done.line()
    if events and approving:
        reviewer = ORACLE if config.oracle else f"loop:{config.experiment}"
        chosen = ", ".join(f"'{e}'" for e in events)
        decided = review("approve", reviewer=reviewer, lake=lake, where=f"event_id IN ({chosen})")
        runs["review"] = decided.run_id
        approved = decided.decided
        yield "review:   " + decided.line()
    elif runs.get("import"):
        yield (
            "review:   policy `reviewed`: the imported annotations count once approved "
            "(`smartray review approve --where ...`)"
        )
    answered = len(_annotated(lk, onto, set(batch.ids)))
    labelled = _train_labels(lk, config.split, onto)
    model_id, init, accuracy = None, None, {}
    round_no = batch.round + 1
    if labelled:
        start = "latest" if config.fine_tune and has_model(lk, config.experiment) else None
        trained = train(
            TrainConfig(
                split=config.split,
                ontology=onto.name,
                ontology_version=onto.version,
                experiment=config.experiment,
                model=config.model,
                epochs=config.epochs,
                image_size=config.image_size,
                batch_size=config.batch_size,
                lr=config.lr,
                augment=config.augment,
                seed=config.seed or 0,
                init_model=start,
                allow_unseen_classes=True,  # early rounds may not have seen every class
                use_gpu=config.use_gpu,
            ),
            lake=lake,
            ray_address=ray_address,
        )
        model_id, init, runs["train"] = trained.model_id, trained.init_model, trained.run_id
        yield "train:    " + trained.line()
        for side in (s for s in HELD_OUT if s in sides):
            found = evaluate(
                EvaluateConfig(
                    model=model_id,
                    split=config.split,
                    on=side,
                    slice_by=config.slice_by,
                    use_gpu=config.use_gpu,
                ),
                lake=lake,
                ray_address=ray_address,
            )
            accuracy[side] = (float(found.overall["accuracy"]), int(found.overall["n"]))
            runs[f"evaluate_{side}"] = found.run_id
            yield "evaluate: " + found.line().splitlines()[0]
        scored = score(
            ScoreConfig(
                experiment=config.experiment,
                model=model_id,
                mc_dropout=config.passes(),
                repick=True,
                where=config.where,
                use_gpu=config.use_gpu,
            ),
            lake=lake,
            ray_address=ray_address,
        )
        runs["score"] = scored.run_id
        yield "score:    " + scored.line()
    chosen_batch = select(
        SelectConfig(
            experiment=config.experiment,
            budget=config.budget,
            strategy=config.strategy if model_id else config.cold_start,
            model=model_id or "none",
            split=config.split,
            ontology=onto.name,
            ontology_version=onto.version,
            seed=None if config.seed is None else config.seed + round_no,
            weights=config.weights,
            class_balance=config.class_balance,
            where=config.where,
            repick=True,
        ),
        lake=lake,
    )
    runs["select"] = chosen_batch.run_id
    yield "select:   " + chosen_batch.line()
    out = config.out if "://" in config.out else os.path.abspath(config.out)
    folder = f"{out.rstrip('/')}/{config.experiment}"
    export_uri = f"{folder}/round-{chosen_batch.round}"
    exported = _export(config, lake, export_uri, chosen_batch.round, onto)
    yield "export:   " + exported
    report_uri = f"{folder}/report.html"
    session = lk.session("loop", {**config.model_dump(mode="json"), "round": chosen_batch.round})
    runs["export"] = runs["loop"] = session.run_id
    row = _round_row(
        lk,
        config,
        onto,
        chosen_batch,
        model_id=model_id,
        init=init,
        labelled=labelled,
        asked=len(batch.ids),
        answered=answered,
        imported=imported,
        approved=approved,
        accuracy=accuracy,
        runs=runs,
        export_uri=export_uri,
        report_uri=report_uri,
        run_id=session.run_id,
    )
    session.commit(AL_ROUNDS, pa.Table.from_pylist([row], AL_ROUNDS.schema))
    session.counts.update(
        round=chosen_batch.round, labelled=labelled, imported=imported, approved=approved,
        picked=len(chosen_batch.ids),
    )  # fmt: skip
    session.record()
    written = write_report([config.experiment], report_uri, lake=lake)
    yield "report:   " + written.line()
    yield round_line(row)


def round_line(row: dict[str, Any]) -> str:
    """One line for an `al_rounds` row: labels, accuracy, what was picked."""
    acc = ", ".join(
        f"{side} accuracy {100 * row[f'{side}_accuracy']:.1f} % (n {row[f'{side}_n']})"
        for side in HELD_OUT
        if row[f"{side}_accuracy"] is not None
    )
    model = f"model {row['model_id']}: {acc}" if row["model_id"] else "no model yet (cold start)"
    back = f"{row['answered']} of the {row['asked']} asked answered; " if row["asked"] else ""
    return (
        f"round {row['round']}: {back}{row['labelled']} train labels, {model}; picked "
        f"{len(row['selected_ids'])} of {row['pool_size']} by {row['strategy']}"
    )


def replay(experiment: str, round_no: int, *, lake: str | None = None) -> SelectSummary:
    """Selects round `round_no` again from its `al_rounds` row; writes nothing.

    Raises:
        ConfigError: no such round. `ReplayMismatch`: other ids came out.
    """
    lk = Lake(lake)
    rows = _scan(
        lk, AL_ROUNDS, filter=(text("experiment") == experiment) & (pc.field("round") == round_no)
    ).to_pylist()
    if not rows:
        raise ConfigError(f"--replay {round_no}: experiment {experiment!r} has no such round")
    recorded = Recorded.of(rows[0], list(rows[0]["selected_ids"]))
    return select(recorded.config, lake=lake, recorded=recorded)


def _scan(
    lake: Lake, spec: TableSpec, *, columns: list[str] | None = None, filter: Any = None
) -> pa.Table:
    """The latest version of `spec`'s rows that match `filter` (none if no table)."""
    if not lake.exists(spec.name):
        return spec.schema.empty_table().select(columns or spec.schema.names)
    found: pa.Table = lake.dataset(spec.name).to_table(columns=columns, filter=filter)
    return found


def experiment_ontology(lake: Lake, config: LoopConfig) -> Ontology:
    """The ontology version the experiment labels in (see `LoopConfig.ontology_version`).

    Raises:
        ConfigError: no ontology, or another one than the experiment's.
    """
    version = config.ontology_version
    if version is None and lake.exists(AL_ROUNDS.name):
        rows = lake.table(AL_ROUNDS.name, columns=["experiment", "round", "ontology",
                                                   "ontology_version"]).to_pylist()  # fmt: skip
        mine = sorted((r for r in rows if r["experiment"] == config.experiment),
                      key=lambda r: r["round"])  # fmt: skip
        if mine:
            if config.ontology not in (None, mine[0]["ontology"]):
                raise ConfigError(
                    f"--ontology {config.ontology!r}: experiment {config.experiment!r} labels "
                    f"in {mine[0]['ontology']!r}; start a new experiment for another ontology"
                )
            return ontology_for(lake, mine[0]["ontology"], int(mine[0]["ontology_version"]))
    return ontology_for(lake, config.ontology, version)


def open_batch(lake: Lake, experiment: str) -> OpenBatch:
    """The experiment's latest batch (round 0, no ids: none yet)."""
    if not lake.exists(BATCHES.name):
        return OpenBatch(0, [])
    rows = lake.table(BATCHES.name, columns=["experiment", "round", "rank", "asset_id"])
    mine = rows.filter(pc.equal(rows["experiment"], experiment))
    if not mine.num_rows:
        return OpenBatch(0, [])
    last = int(pc.max(mine["round"]).as_py())
    picked = mine.filter(pc.equal(mine["round"], last)).sort_by("rank")
    return OpenBatch(last, picked["asset_id"].to_pylist())


def _sides(lake: Lake, split: str) -> dict[str, set[str]]:
    """Side -> its assets, of split `split`.

    Raises:
        ConfigError: no such split.
    """
    rows = (
        lake.table(SPLITS.name, columns=["split_name", "asset_id", "split"])
        if lake.exists(SPLITS.name)
        else SPLITS.schema.empty_table().select(["split_name", "asset_id", "split"])
    )
    mine = rows.filter(pc.equal(rows["split_name"], split)).to_pylist()
    if not mine:
        raise ConfigError(f"--split {split!r}: no split of that name (`smartray split` makes one)")
    out: dict[str, set[str]] = {}
    for r in mine:
        out.setdefault(r["split"], set()).add(r["asset_id"])
    return out


def _read_answers(
    lake: Lake, config: LoopConfig, onto: Ontology, batch: OpenBatch, sides: dict[str, set[str]]
) -> list[CheckedFile]:
    """Every file this round imports, read and checked; nothing written.

    Raises:
        ConfigError: see `run_round`.
    """
    out = []
    if config.oracle:
        assert config.oracle_format is not None
        held = set().union(*(sides.get(s, set()) for s in HELD_OUT))
        if held and not _annotated(lake, onto, held):  # a simulation's evaluation set
            answer = _oracle(lake, config, onto, held)
            if not answer.good:
                raise ConfigError(
                    f"--oracle {config.oracle}: answers none of the {len(held)} val/test "
                    f"asset(s) of split {config.split!r}; nothing written"
                )
            out.append(answer)
        if batch.ids:
            answer = _oracle(lake, config, onto, set(batch.ids))
            if not answer.good:
                raise ConfigError(
                    f"--oracle {config.oracle}: answers none of the {len(batch.ids)} asset(s) "
                    f"of batch {config.experiment}:{batch.round} (is it the label source of "
                    "this corpus?); nothing written"
                )
            out.append(answer)
    for path in config.labels:
        assert config.format is not None
        checked = read_labels(
            path,
            config.format,
            lake=lake,
            ontology=onto.name,
            ontology_version=onto.version,
            image_root=config.image_root,
        )
        fits_ontology(lake, checked)
        out.append(checked)
    return out


def _oracle(lake: Lake, config: LoopConfig, onto: Ontology, ids: set[str]) -> CheckedFile:
    assert config.oracle is not None
    assert config.oracle_format is not None
    return read_labels(
        config.oracle,
        config.oracle_format,
        lake=lake,
        ontology=onto.name,
        ontology_version=onto.version,
        image_root=config.image_root,
        only=ids,
    )


def fits_ontology(lake: Lake, checked: CheckedFile) -> None:
    """Refuses a label file made for another version of the ontology, or fitting none of it.

    Raises:
        ConfigError: classes of the file that the experiment's version lacks are classes
            of another registered version, or no object of the file is valid.
    """
    onto, unknown = checked.ontology, sorted(checked.unknown_classes)
    if unknown:
        others = [
            v for v, o in sorted(registered(lake, onto.name).items())
            if v != onto.version and any(o.class_by_name(c) is not None for c in unknown)
        ]  # fmt: skip
        if others:
            raise ConfigError(
                f"--labels {checked.path}: class(es) {unknown[:5]} are not in ontology "
                f"{onto.name!r} v{onto.version}, which the experiment labels in, but are in "
                f"v{', v'.join(map(str, others))}: the file was made for another version; "
                "nothing imported"
            )
    if not checked.good:
        why = ", ".join(sorted({r.reason for r in checked.refusals})) or "no objects"
        raise ConfigError(
            f"--labels {checked.path}: nothing in it fits ontology {onto.name!r} "
            f"v{onto.version} ({why}); nothing imported"
        )


def _annotated(lake: Lake, onto: Ontology, ids: set[str]) -> set[str]:
    """Those of `ids` with an annotation event under the ontology version, any state."""
    if not ids or not lake.exists(LABEL_EVENTS.name):
        return set()
    rows = _scan(
        lake,
        LABEL_EVENTS,
        columns=["asset_id"],
        filter=(text("event") == "annotation")
        & (text("ontology") == onto.name)
        & (pc.field("ontology_version") == onto.version)
        & text("asset_id").isin(sorted(ids)),
    )
    return set(rows["asset_id"].to_pylist())


def _approved(lake: Lake, onto: Ontology) -> set[str]:
    """Assets with an approved label under the ontology version."""
    labels = _scan(
        lake,
        LABELS,
        columns=["asset_id"],
        filter=(text("ontology") == onto.name) & (pc.field("ontology_version") == onto.version),
    )
    return set(labels["asset_id"].to_pylist())


def _train_labels(lake: Lake, split: str, onto: Ontology) -> int:
    """Assets of the split's train side with an approved label under the ontology version."""
    return len(_approved(lake, onto) & _sides(lake, split).get("train", set()))


def _measurable(
    lake: Lake,
    config: LoopConfig,
    onto: Ontology,
    sides: dict[str, set[str]],
    approving: list[CheckedFile],
) -> None:
    """Refuses a round that would train a model with no labelled `val` to measure it by.

    `approving`: the files whose objects this round approves.

    Raises:
        ConfigError: the split's train side will have labels and its val side none.
    """
    labelled = _approved(lake, onto).union(*(c.assets for c in approving))
    if labelled & sides.get("train", set()) and not labelled & sides.get("val", set()):
        raise ConfigError(
            f"split {config.split!r}: its val side has no approved label under ontology "
            f"{onto.name!r} v{onto.version}, so no model could be measured: label the val "
            "(and test) side first (`smartray import-labels` and `smartray review approve`, "
            "or name those files in --labels with --approve all); nothing written"
        )


def _export(config: LoopConfig, lake: str | None, out: str, round_no: int, onto: Ontology) -> str:
    from smartray.annotate import export

    done = export(
        config.export_format, out, lake=lake, batch=f"{config.experiment}:{round_no}",
        ontology=onto.name, ontology_version=onto.version,
    )  # fmt: skip
    return done.line()


def _round_row(
    lake: Lake,
    config: LoopConfig,
    onto: Ontology,
    chosen: SelectSummary,
    *,
    model_id: str | None,
    init: str | None,  # the model it started from, resolved (None: afresh)
    labelled: int,
    asked: int,
    answered: int,
    imported: int,
    approved: int,
    accuracy: dict[str, tuple[float, int]],
    runs: dict[str, Any],
    export_uri: str,
    report_uri: str,
    run_id: str,
) -> dict[str, Any]:
    """The `al_rounds` row: the batch's own record (settings, versions) and the round's."""
    rows = _scan(
        lake,
        BATCHES,
        filter=(text("experiment") == config.experiment) & (pc.field("round") == chosen.round),
    ).to_pylist()
    rows.sort(key=lambda r: r["rank"])
    first = rows[0]
    versions = {f"{n}_version": first.get(f"{n}_version") for n in RECORDED_VERSIONS}
    return {
        "experiment": config.experiment,
        "round": chosen.round,
        "strategy": chosen.strategy,
        "budget": config.budget,
        "seed": first["seed"],
        "split_name": config.split,
        "ontology": onto.name,
        "ontology_version": onto.version,
        "model_id": model_id,
        "init_model": init,
        "labelled": labelled,
        "asked": asked,
        "answered": answered,
        "imported": imported,
        "approved": approved,
        "selected_ids": [r["asset_id"] for r in rows],
        "pool_size": first["pool_size"],
        "val_accuracy": accuracy.get("val", (None, None))[0],
        "val_n": accuracy.get("val", (None, None))[1],
        "test_accuracy": accuracy.get("test", (None, None))[0],
        "test_n": accuracy.get("test", (None, None))[1],
        "settings": first["settings"],
        **versions,
        "runs": json.dumps(runs, sort_keys=True),
        "export_uri": export_uri,
        "report_uri": report_uri,
        "run_id": run_id,
        "finished_at": dt.datetime.now(dt.UTC),
    }
