"""`smartray export`: images and their current labels, for an annotation tool.

The assets come from a snapshot (pinned to its `assets` version), a `--where` filter
over the asset view, or an active-learning batch (`--batch EXPERIMENT:ROUND`: a round's
rows of `batches`, pinned to the `assets` version its selection read). Their rows stream
out of the pinned files in one pass, `--chunk` rows at a time: each image is written as
`images/<asset_id>.<ext>` under the output folder or `s3://` prefix and handed to the
format's writer with its approved labels (`labels`), so a 100,000-image export never
holds more than one chunk of image bytes. A batch's images go to the writer in pick
order (`rank`), once all are written: only their names and sizes wait, not their bytes.

A batch made with a model carries its guess of each image's class: the writer gets it as
a pre-annotation (`Prediction`), kept apart from the approved labels (Label Studio: a
`predictions` entry of its own, model version = the model id; CVAT: a `source="auto"`
tag with the score). COCO and YOLO have no image-level class: the guesses are left out,
counted, and logged once with their count; the images and approved labels are written.
A cold-start batch (made without a model) has no guesses.

An object the format cannot hold (a rotated box in COCO, a crowd region in YOLO, a
polygon of several parts in CVAT...) is never written changed: it is left out, logged
with the reason, and counted in the summary. `rotated` says what COCO and YOLO do with
rotated boxes: `refuse` (the default), `polygon` (their four corners as a polygon), or,
for YOLO, `obb` (Ultralytics' oriented-box layout: every box as its four corners).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from smartray.annotate.formats.base import Added, ImageMeta, OutDir, Prediction, Writer
from smartray.annotate.ledger import ontology_for
from smartray.annotate.model import Annotation
from smartray.annotate.ontology import Ontology
from smartray.curate.view import asset_view
from smartray.errors import ConfigError
from smartray.tables.catalog import ASSETS, BATCHES, LABELS
from smartray.tables.filters import text
from smartray.tables.lake import Lake

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("coco", "yolo", "labelstudio", "cvat")
ROTATED = ("refuse", "polygon", "obb")  # what COCO and YOLO make of a rotated box
LOGGED = 5  # objects left out for one reason that are logged one by one
CHUNK = 1000  # assets held in memory at once
EXTENSIONS = {"jpeg": "jpg", "png": "png"}


@dataclass
class ExportSummary:
    """What an export wrote."""

    out: str
    fmt: str
    images: int
    objects: int  # written
    files: list[str]
    left_out: Counter[str] = field(default_factory=Counter)  # objects, guesses not written
    batch: str | None = None  # EXPERIMENT:ROUND of a batch export
    guesses: int = 0  # the models' guesses written as pre-annotations
    models: list[str] = field(default_factory=list)  # the batch's models (none: cold start)

    def line(self) -> str:
        """The job's summary line."""
        why = ", ".join(f"{r} {n}" for r, n in sorted(self.left_out.items()))
        out = f"; {sum(self.left_out.values())} left out ({why})" if self.left_out else ""
        pre = ""
        if self.batch is not None and self.models:
            models = ("model " if len(self.models) == 1 else "models ") + ", ".join(self.models)
            pre = f", {self.guesses} pre-annotation(s) from {models}"
        elif self.batch is not None:
            pre = ", no pre-annotations (a cold-start batch)"
        return (
            f"export {self.fmt}: {self.images} image(s), {self.objects} label object(s){pre} -> "
            f"{self.out} ({', '.join(self.files)})" + out
        )


@dataclass
class _Tally:
    """What the writer was handed and left out, as the export goes."""

    fmt: str
    images: int = 0
    objects: int = 0
    guesses: int = 0
    left_out: Counter[str] = field(default_factory=Counter)
    logged: Counter[str] = field(default_factory=Counter)  # objects left out, by detail
    unguessed: Counter[str] = field(default_factory=Counter)  # guesses left out, by detail

    def count(self, aid: str, objects: int, guessed: bool, added: Added) -> None:
        """Counts one image; logs the first few objects left out for each reason."""
        self.images += 1
        self.objects += objects - len(added.refused)
        for r in added.refused:
            self.left_out[r.reason] += 1
            self.logged[r.detail] += 1
            if self.logged[r.detail] <= LOGGED:  # the first few of each kind, then a count
                log.warning("export %s: %s on %s left out: %s", self.fmt, r.entry, aid, r.detail)
        if added.guess is not None:  # logged once at the end, with a count
            self.left_out[added.guess.reason] += 1
            self.unguessed[added.guess.detail] += 1
        elif guessed:
            self.guesses += 1

    def log_totals(self) -> None:
        """Logs the counts of what was left out beyond the first few, and of guesses."""
        for detail, n in self.logged.items():
            if n > LOGGED:
                log.warning("export %s: %d object(s) left out in all: %s", self.fmt, n, detail)
        for detail, n in self.unguessed.items():
            log.warning("export %s: %d pre-annotation(s) left out: %s", self.fmt, n, detail)


def select_assets(lake: Lake, snapshot: str | None, where: str | None) -> tuple[list[str], int]:
    """The asset ids to export and the `assets` version to read them from."""
    if (snapshot is None) == (where is None):
        raise ConfigError("give one of --snapshot NAME or --where EXPR")
    if snapshot is not None:
        from smartray.sample.snapshots import snapshot_members

        members = snapshot_members(lake, snapshot)
        if any(members.column("broken_by").to_pylist()):
            raise ConfigError(f"snapshot {snapshot!r} was broken by an erasure")
        return members["asset_id"].to_pylist(), int(members["assets_version"][0].as_py())
    from smartray.sample.snapshots import apply_filter

    view = asset_view(lake)
    rows = apply_filter(view, where)
    if not rows.num_rows:
        raise ConfigError(f"--where {where!r} matches no asset; nothing written")
    return rows["asset_id"].to_pylist(), view.versions["assets"]


def parse_batch(value: str) -> tuple[str, int]:
    """(experiment, round) of `EXPERIMENT:ROUND`; the experiment may hold ':' itself.

    Raises:
        ConfigError: no ':', no experiment, or a round that is not a number from 1.
    """
    experiment, colon, text_round = value.rpartition(":")
    if not colon or not experiment or not text_round.isdecimal() or not int(text_round):
        raise ConfigError(
            f"--batch {value!r}: give EXPERIMENT:ROUND, a round number from 1 after the "
            "last ':' (e.g. --batch margin-v1:2)"
        )
    return experiment, int(text_round)


@dataclass(frozen=True)
class BatchChoice:
    """An active-learning round's assets, as an export reads them from `batches`.

    Attributes:
        ids: Asset ids in pick order (`rank`).
        assets_version: The `assets` version the round's selection read.
        guesses: By asset id, the model's guess of its class (none in a cold-start
            batch, nor for a row without a predicted class).
        models: The models that made the round (none: a cold start).
    """

    ids: list[str]
    assets_version: int
    guesses: dict[str, Prediction]
    models: list[str]


def select_batch(lake: Lake, batch: str) -> BatchChoice:
    """The round `batch` (`EXPERIMENT:ROUND`) names, from the `batches` table.

    Raises:
        ConfigError: a malformed value, no `batches` table, an unknown experiment or
            round (the message lists those there are), or a round whose rows read
            several `assets` versions.
    """
    experiment, round_ = parse_batch(batch)
    if not lake.exists(BATCHES.name):
        raise ConfigError(
            f"--batch {batch!r}: this lake has no active-learning batches yet "
            f"(no `{BATCHES.name}` table under {lake.uri!r})"
        )
    ds = lake.delta(BATCHES.name).to_pyarrow_dataset()
    columns = ["round", "asset_id", "rank", "model_id", "predicted_class_id",
               "predicted_class", "confidence", "assets_version"]  # fmt: skip
    rows = ds.to_table(columns=columns, filter=text("experiment") == experiment)
    if not rows.num_rows:
        known = sorted(set(ds.to_table(columns=["experiment"])["experiment"].to_pylist()))
        raise ConfigError(
            f"--batch {batch!r}: unknown experiment {experiment!r}; experiments: "
            + (", ".join(repr(e) for e in known) or "none")
        )
    rounds = sorted(set(rows["round"].to_pylist()))
    if round_ not in rounds:
        raise ConfigError(
            f"--batch {batch!r}: experiment {experiment!r} has no round {round_}; its rounds: "
            + ", ".join(map(str, rounds))
        )
    picked = sorted((r for r in rows.to_pylist() if r["round"] == round_), key=lambda r: r["rank"])
    versions = sorted({r["assets_version"] for r in picked})
    if len(versions) > 1:
        raise ConfigError(
            f"--batch {batch!r}: its rows read several assets versions {versions}; "
            "a round reads one"
        )
    guesses = {  # a model's rows with no class guessed (a detector's, say): nothing to send
        r["asset_id"]: Prediction(
            r["model_id"],
            r["predicted_class"],
            r["predicted_class_id"],
            None if r["confidence"] is None else round(r["confidence"], 4),  # float32
        )
        for r in picked
        if r["model_id"] is not None and r["predicted_class"] is not None
    }
    models = sorted({r["model_id"] for r in picked if r["model_id"] is not None})
    return BatchChoice([r["asset_id"] for r in picked], int(versions[0]), guesses, models)


def current_labels(lake: Lake, ids: list[str], ontology: Ontology) -> dict[str, list[Annotation]]:
    """The approved label objects of `ids` under the ontology version, from `labels`."""
    out: dict[str, list[Annotation]] = defaultdict(list)
    if not lake.exists(LABELS.name):
        return out
    mine = (text("ontology") == ontology.name) & (pc.field("ontology_version") == ontology.version)
    t = (
        lake.delta(LABELS.name)
        .to_pyarrow_dataset()
        .to_table(columns=["asset_id", "payload"], filter=text("asset_id").isin(ids) & mine)
    )
    for aid, payload in zip(t["asset_id"].to_pylist(), t["payload"].to_pylist(), strict=True):
        out[aid].append(Annotation.from_payload(aid, json.loads(payload)))
    return out


def export(
    fmt: str,
    out: str,
    *,
    lake: str | None = None,
    snapshot: str | None = None,
    where: str | None = None,
    batch: str | None = None,
    ontology: str | None = None,
    ontology_version: int | None = None,
    image_url_prefix: str | None = None,
    presign_expiry_s: int | None = None,
    chunk: int = CHUNK,
    rotated: str = "refuse",
) -> ExportSummary:
    """Writes the selected assets' images and labels in format `fmt` under `out`.

    Objects the format cannot hold are left out, logged and counted (see the module doc).
    The assets are a `snapshot`'s, those `where` selects, or an active-learning `batch`'s
    (`EXPERIMENT:ROUND`), whose model's guesses go along as pre-annotations.

    With `presign_expiry_s` (an `s3://` output only), each image is referenced by a
    presigned GET URL valid that long, instead of `image_url_prefix` + its path.

    Raises:
        ConfigError: an unknown format, no selection or several, an unknown snapshot, a
            filter that fails or matches nothing, a malformed or unknown batch, no
            ontology, presigning a local out, or a `rotated` choice the format has not.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    if rotated not in ROTATED or (rotated == "obb" and fmt != "yolo"):
        raise ConfigError(
            f"--rotated {rotated!r}: choose refuse or polygon"
            + (", or obb" if fmt == "yolo" else "")
            + " (obb is YOLO's)"
        )
    if sum(x is not None for x in (snapshot, where, batch)) != 1:
        raise ConfigError("give one of --snapshot NAME, --where EXPR or --batch EXPERIMENT:ROUND")
    lk = Lake(lake)
    onto = ontology_for(lk, ontology, ontology_version)
    chosen = None if batch is None else select_batch(lk, batch)
    if chosen is not None:
        ids, version, guesses = chosen.ids, chosen.assets_version, chosen.guesses
    else:
        ids, version = select_assets(lk, snapshot, where)
        guesses = {}
    target = OutDir(out)
    presign = _presigner(target, presign_expiry_s) if presign_expiry_s else None
    module = importlib.import_module(f"smartray.annotate.formats.{fmt}")
    writer: Writer = module.Writer(target, onto, image_url_prefix, rotated=rotated)
    labels = current_labels(lk, ids, onto)  # small: no image bytes
    tally = _Tally(fmt)

    def add(image: ImageMeta) -> None:
        anns, guess = labels.get(image.asset_id, []), guesses.get(image.asset_id)
        tally.count(image.asset_id, len(anns), guess is not None, writer.add(image, anns, guess))

    waiting: dict[str, ImageMeta] = {}  # a batch's, added in pick order once all are read
    # one pass over the pinned files, one row group at a time, `chunk` rows at a time:
    # only that much image data is in memory, and no file is read twice (Arrow's own
    # scanner reads ahead without bound when the consumer is slower than the disk)
    chunks = _stream(lk.dataset(ASSETS.name, version), text("asset_id").isin(ids), chunk)
    for rows in chunks:
        for row in rows.to_pylist():
            aid = row["asset_id"]
            name = f"images/{aid}.{EXTENSIONS.get(row['format'], row['format'])}"
            target.write(name, row["data"])
            url = presign(name) if presign else (image_url_prefix or "") + name
            image = ImageMeta(aid, row["width"], row["height"], name, url)
            if chosen is not None:
                waiting[aid] = image
            else:
                add(image)
    for aid in ids if waiting else ():  # the batch's, in pick order
        if aid in waiting:
            add(waiting.pop(aid))
    files = writer.close()
    tally.log_totals()
    if tally.images < len(ids):
        log.warning(
            "export %s: %d of the %d assets chosen are not in assets v%d: not exported",
            fmt, len(ids) - tally.images, len(ids), version,
        )  # fmt: skip
    return ExportSummary(
        target.uri, fmt, tally.images, tally.objects, files, tally.left_out,
        batch=batch, guesses=tally.guesses, models=chosen.models if chosen else [],
    )  # fmt: skip


def _presigner(out: OutDir, expiry_s: int) -> Callable[[str], str]:
    """Presigned GET URLs for files under an `s3://` export root."""
    if not out.uri.startswith("s3://"):
        raise ConfigError("--presign-expiry-s needs an s3:// --out")
    import boto3
    from botocore.config import Config

    from smartray.tables.storage import LakeLocation

    opts = LakeLocation.from_uri(out.uri).storage_options
    client = boto3.client(
        "s3",
        endpoint_url=opts.get("endpoint_url"),
        region_name=opts.get("region"),
        config=Config(signature_version="s3v4"),  # SigV2 URLs are refused by most regions
    )
    bucket, _, prefix = out.uri.removeprefix("s3://").partition("/")

    def url(rel: str) -> str:
        key = f"{prefix}/{rel}" if prefix else rel
        signed: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expiry_s
        )
        return signed

    return url


def _stream(dataset: pads.Dataset, where: pads.Expression, chunk: int) -> Iterator[pa.RecordBatch]:
    """The matching rows of `dataset`, read one row group at a time, as batches of `chunk`."""
    columns = ["asset_id", "format", "width", "height", "data"]
    for fragment in dataset.get_fragments(filter=where):
        for row_group in fragment.split_by_row_group(filter=where):
            table = row_group.to_table(columns=columns, filter=where, use_threads=False)
            yield from table.to_batches(max_chunksize=chunk)
