"""`smartray export`: images and their current labels, for an annotation tool.

The assets come from a snapshot (pinned to its `assets` version) or a `--where` filter
over the asset view. Their rows stream out of the pinned files in one pass, `--chunk`
rows at a time: each image is written as `images/<asset_id>.<ext>` under the output
folder or `s3://` prefix and handed to the format's writer with its approved labels
(`labels`), so a 100,000-image export never holds more than one chunk of image bytes.

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
import pyarrow.dataset as pads

from smartray.annotate.formats.base import ImageMeta, OutDir, Writer
from smartray.annotate.ledger import ontology_for
from smartray.annotate.model import Annotation
from smartray.curate.view import asset_view
from smartray.errors import ConfigError
from smartray.tables.catalog import ASSETS, LABELS
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
    left_out: Counter[str] = field(default_factory=Counter)  # objects not written, by reason

    def line(self) -> str:
        """The job's summary line."""
        why = ", ".join(f"{r} {n}" for r, n in sorted(self.left_out.items()))
        out = f"; {sum(self.left_out.values())} left out ({why})" if self.left_out else ""
        return (
            f"export {self.fmt}: {self.images} image(s), {self.objects} label object(s) -> "
            f"{self.out} ({', '.join(self.files)})" + out
        )


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


def current_labels(lake: Lake, ids: list[str]) -> dict[str, list[Annotation]]:
    """The approved label objects of `ids`, from `labels`."""
    out: dict[str, list[Annotation]] = defaultdict(list)
    if not lake.exists(LABELS.name):
        return out
    t = (
        lake.delta(LABELS.name)
        .to_pyarrow_dataset()
        .to_table(columns=["asset_id", "payload"], filter=text("asset_id").isin(ids))
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
    ontology: str | None = None,
    image_url_prefix: str | None = None,
    presign_expiry_s: int | None = None,
    chunk: int = CHUNK,
    rotated: str = "refuse",
) -> ExportSummary:
    """Writes the selected assets' images and labels in format `fmt` under `out`.

    Objects the format cannot hold are left out, logged and counted (see the module doc).

    With `presign_expiry_s` (an `s3://` output only), each image is referenced by a
    presigned GET URL valid that long, instead of `image_url_prefix` + its path.

    Raises:
        ConfigError: an unknown format, no or both selections, an unknown snapshot, a
            filter that fails or matches nothing, no ontology, presigning a local out,
            or a `rotated` choice the format has not.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    if rotated not in ROTATED or (rotated == "obb" and fmt != "yolo"):
        raise ConfigError(
            f"--rotated {rotated!r}: choose refuse or polygon"
            + (", or obb" if fmt == "yolo" else "")
            + " (obb is YOLO's)"
        )
    lk = Lake(lake)
    onto = ontology_for(lk, ontology, None)
    ids, version = select_assets(lk, snapshot, where)
    target = OutDir(out)
    presign = _presigner(target, presign_expiry_s) if presign_expiry_s else None
    module = importlib.import_module(f"smartray.annotate.formats.{fmt}")
    writer: Writer = module.Writer(target, onto, image_url_prefix, rotated=rotated)
    labels = current_labels(lk, ids)  # small: no image bytes
    images = objects = 0
    left_out: Counter[str] = Counter()
    logged: Counter[str] = Counter()
    # one pass over the pinned files, one row group at a time, `chunk` rows at a time:
    # only that much image data is in memory, and no file is read twice (Arrow's own
    # scanner reads ahead without bound when the consumer is slower than the disk)
    batches = _stream(lk.dataset(ASSETS.name, version), text("asset_id").isin(ids), chunk)
    for batch in batches:
        for row in batch.to_pylist():
            aid = row["asset_id"]
            name = f"images/{aid}.{EXTENSIONS.get(row['format'], row['format'])}"
            target.write(name, row["data"])
            url = presign(name) if presign else (image_url_prefix or "") + name
            anns = labels.get(aid, [])
            refused = writer.add(ImageMeta(aid, row["width"], row["height"], name, url), anns)
            images += 1
            objects += len(anns) - len(refused)
            for r in refused:
                left_out[r.reason] += 1
                logged[r.detail] += 1
                if logged[r.detail] <= LOGGED:  # the first few of each kind, then a count
                    log.warning("export %s: %s on %s left out: %s", fmt, r.entry, aid, r.detail)
    files = writer.close()
    for detail, n in logged.items():
        if n > LOGGED:
            log.warning("export %s: %d object(s) left out in all: %s", fmt, n, detail)
    return ExportSummary(target.uri, fmt, images, objects, files, left_out)


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
