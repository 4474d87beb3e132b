"""The label ledger: registered ontologies, and validated imports into `label_events`.

`label_events` is append-only. An import adds one `annotation` event per object; its key
hashes (asset id, annotator, payload, ontology@version), so the same file imported twice
adds nothing, and an object the file holds twice is imported once and reported as a
duplicate. Every entry that cannot be imported becomes a `quarantine` row (stage
`label_import`, the file, where in it, a reason) and the valid rest is imported. A box or
polygon a little past the image edge is clipped to it and counted (`model.check`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from smartray.annotate.model import (
    EDGE_FRACTION,
    EDGE_PX,
    UNKNOWN_CLASS,
    Annotation,
    Parsed,
    Refusal,
    check,
    event_id,
)
from smartray.annotate.ontology import Ontology, parse_ontology
from smartray.annotate.resolve import Resolver
from smartray.errors import ConfigError
from smartray.tables.catalog import ASSET_SOURCES, ASSETS, LABEL_EVENTS, ONTOLOGIES, QUARANTINE
from smartray.tables.lake import Lake

FORMATS = ("coco", "yolo", "labelstudio", "cvat", "folders")
SOURCES = ("human", "model")


def register(ontology: Ontology, *, lake: str | None = None) -> tuple[str, bool]:
    """Stores `ontology` in `ontologies`; returns (run id, whether it was new).

    Raises:
        ConfigError: that name and version exist with another definition.
    """
    lk = Lake(lake)
    known = registered(lk, ontology.name)
    if ontology.version in known:
        if known[ontology.version].digest() != ontology.digest():
            raise ConfigError(
                f"ontology {ontology.name!r} v{ontology.version} is registered with another "
                "definition: give the changed ontology a new version"
            )
        return "", False
    session = lk.session("ontology", {"ontology": ontology.name, "version": ontology.version})
    row = {
        "ontology": ontology.name,
        "version": ontology.version,
        "definition": ontology.canonical_json(),
        "sha256": ontology.digest(),
        "run_id": session.run_id,
        "registered_at": dt.datetime.now(dt.UTC),
    }
    session.commit(ONTOLOGIES, [row])
    session.counts["registered"] = 1
    session.record()
    return session.run_id, True


def registered(lake: Lake, name: str | None = None) -> dict[int, Ontology]:
    """The registered versions of ontology `name` (all names if None: then keyed by order)."""
    if not lake.exists(ONTOLOGIES.name):
        return {}
    rows = lake.table(ONTOLOGIES.name, columns=["ontology", "version", "definition"]).to_pylist()
    return {
        r["version"]: parse_ontology(json.loads(r["definition"]))
        for r in rows
        if name is None or r["ontology"] == name
    }


def ontology_for(lake: Lake, name: str | None, version: int | None) -> Ontology:
    """The ontology to label under: `name` at `version` (latest if None).

    Raises:
        ConfigError: none is registered, the name is ambiguous or unknown, or the version
            is not registered.
    """
    names: set[str] = set()
    if lake.exists(ONTOLOGIES.name):
        names = set(lake.table(ONTOLOGIES.name, columns=["ontology"])["ontology"].to_pylist())
    if not names:
        raise ConfigError("no ontology registered: `smartray ontology add FILE.yaml` first")
    if name is None:
        if len(names) > 1:
            raise ConfigError(f"several ontologies are registered ({sorted(names)}): --ontology")
        name = next(iter(names))
    if name not in names:
        raise ConfigError(f"unknown ontology {name!r}; registered: {sorted(names)}")
    versions = registered(lake, name)
    v = version if version is not None else max(versions)
    if v not in versions:
        raise ConfigError(f"ontology {name!r} has no v{v}; registered: {sorted(versions)}")
    return versions[v]


def asset_sizes(lake: Lake) -> dict[str, tuple[int, int]]:
    """asset_id -> (width, height) of every asset (reads three columns only)."""
    if not lake.exists(ASSETS.name):
        return {}
    t = lake.table(ASSETS.name, columns=["asset_id", "width", "height"])
    return {
        a: (w, h)
        for a, w, h in zip(
            t["asset_id"].to_pylist(), t["width"].to_pylist(), t["height"].to_pylist(), strict=True
        )
    }


def source_names(lake: Lake) -> dict[str, list[tuple[str, str]]]:
    """{file name: [(asset id, source URI), ...]} of every source in `asset_sources`."""
    out: dict[str, list[tuple[str, str]]] = {}
    if not lake.exists(ASSET_SOURCES.name):
        return out
    t = lake.table(ASSET_SOURCES.name, columns=["asset_id", "source_uri"])
    seen = set()
    for a, uri in zip(t["asset_id"].to_pylist(), t["source_uri"].to_pylist(), strict=True):
        if (a, uri) not in seen:
            seen.add((a, uri))
            out.setdefault(uri.rstrip("/").rsplit("/", 1)[-1], []).append((a, uri))
    return out


def reader(fmt: str) -> Any:
    """The `read` function of format `fmt`."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return importlib.import_module(f"smartray.annotate.formats.{fmt}").read


@dataclass
class ImportSummary:
    """What an import did."""

    run_id: str
    path: str
    fmt: str
    imported: int
    already: int
    assets: int
    refused: Counter[str] = field(default_factory=Counter)  # objects, by reason
    duplicates: int = 0  # objects the file holds more than once
    clipped: int = 0  # objects clipped to their image's edge
    unmatched: int = 0  # images or tasks not matched to an asset (their objects: refused)
    event_ids: tuple[str, ...] = ()  # the file's events, new or already in the ledger

    def line(self) -> str:
        """The job's summary line (every count is of objects, unless it says images)."""
        why = ", ".join(f"{r} {n}" for r, n in sorted(self.refused.items()))
        extra = "".join(
            f", {n} {what}"
            for n, what in (
                (self.duplicates, "duplicate(s) in the file"),
                (self.clipped, "clipped to the image edge"),
            )
            if n
        )
        images = f"; {self.unmatched} image(s)/task(s) not matched" if self.unmatched else ""
        return (
            f"import-labels {self.run_id}: {self.path} ({self.fmt}): {self.imported} object(s) "
            f"on {self.assets} asset(s) imported, {self.already} already in the ledger{extra}; "
            f"{sum(self.refused.values())} refused" + (f" ({why})" if why else "") + images
        )


@dataclass
class CheckedFile:
    """A label file read and validated, nothing written yet (`read_labels`).

    Attributes:
        path, fmt: The file and its format.
        file_uri: Its absolute path or URI (recorded with every event).
        ontology: The ontology version it was checked against.
        good: Valid objects (clipped where they had to be) with where they were.
        refusals: Entries and objects that cannot be imported.
        clipped: How many of `good` were clipped to their image's edge.
        outside: Objects and unmatched entries left aside by `only` (not asked).
        unknown_classes: Class names of the objects refused as not in the ontology.
    """

    path: str
    fmt: str
    file_uri: str
    ontology: Ontology
    good: list[tuple[Annotation, str]]
    refusals: list[Refusal]
    clipped: int = 0
    outside: int = 0
    unknown_classes: Counter[str] = field(default_factory=Counter)

    @property
    def assets(self) -> set[str]:
        """The assets with at least one valid object."""
        return {a.asset_id for a, _ in self.good}


def read_labels(
    path: str,
    fmt: str,
    *,
    lake: Lake,
    ontology: str | None = None,
    ontology_version: int | None = None,
    image_root: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
    edge_px: float = EDGE_PX,
    edge_fraction: float = EDGE_FRACTION,
    only: set[str] | None = None,
) -> CheckedFile:
    """Parses a label file and validates every object against the ontology; writes nothing.

    With `only`, the objects of other assets are left aside (counted in `outside`), and
    so are the entries the file could not match to any asset: an answer to a batch is
    read from a complete source, whose other entries are not this import's business.

    Raises:
        ConfigError: the file is unusable (not JSON, not the format), or the settings are
            (no ontology, unknown format).
    """
    read = reader(fmt)
    onto = ontology_for(lake, ontology, ontology_version)
    sizes = asset_sizes(lake)
    resolver = Resolver(
        sizes,
        image_root=image_root,
        allowed_hosts=allowed_hosts,
        read_s3=_s3_reader(),
        sources=lambda: source_names(lake),
    )
    parsed: Parsed = read(path, resolver)
    pairs = list(zip(parsed.annotations, parsed.entries, strict=True))
    refusals, outside = list(parsed.refusals), 0
    if only is not None:
        kept = [(a, e) for a, e in pairs if a.asset_id in only]
        outside = len(pairs) - len(kept) + len(refusals)
        pairs, refusals = kept, []
    good: list[tuple[Annotation, str]] = []
    clipped, unknown = 0, Counter[str]()
    for ann, entry in pairs:
        found = check(
            ann,
            onto,
            sizes.get(ann.asset_id),
            entry,
            edge_px=edge_px,
            edge_fraction=edge_fraction,
        )
        if isinstance(found, Refusal):
            refusals.append(found)
            unknown[ann.label] += found.reason == UNKNOWN_CLASS
        else:
            clipped += found != ann
            good.append((found, entry))
    file_uri = path if "://" in path else os.path.abspath(path)
    return CheckedFile(path, fmt, file_uri, onto, good, refusals, clipped, outside, +unknown)


def import_labels(
    path: str,
    fmt: str,
    *,
    annotator: str,
    lake: str | None = None,
    ontology: str | None = None,
    ontology_version: int | None = None,
    image_root: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
    source: str = "human",
    edge_px: float = EDGE_PX,
    edge_fraction: float = EDGE_FRACTION,
    only: set[str] | None = None,
) -> ImportSummary:
    """Validates a label file and appends its objects to `label_events`.

    A box or polygon past its image's edge by at most the larger of `edge_px` and
    `edge_fraction` of the side is clipped to the image; further out it is refused.
    `only`: import the objects of these assets alone (see `read_labels`).

    Raises:
        ConfigError: the file is unusable (not JSON, not the format), or the settings are
            (no ontology, unknown format); nothing is written then.
    """
    check_who(annotator, source)
    lk = Lake(lake)
    checked = read_labels(
        path,
        fmt,
        lake=lk,
        ontology=ontology,
        ontology_version=ontology_version,
        image_root=image_root,
        allowed_hosts=allowed_hosts,
        edge_px=edge_px,
        edge_fraction=edge_fraction,
        only=only,
    )
    return commit_labels(checked, lake=lk, annotator=annotator, source=source)


def check_who(annotator: str, source: str) -> None:
    """Refuses an unknown `--source` or an empty `--annotator`.

    Raises:
        ConfigError: either is.
    """
    if source not in SOURCES:
        raise ConfigError(f"--source {source!r}: choose one of {', '.join(SOURCES)}")
    if not annotator.strip():
        raise ConfigError("--annotator must name who made the labels")


def commit_labels(
    checked: CheckedFile, *, lake: Lake, annotator: str, source: str = "human"
) -> ImportSummary:
    """Appends a checked file's objects to `label_events` and its refusals to `quarantine`."""
    check_who(annotator, source)
    onto, file_uri = checked.ontology, checked.file_uri
    session = lake.session(
        "import-labels",
        {
            "file": file_uri,
            "format": checked.fmt,
            "annotator": annotator,
            "ontology": onto.name,
            "ontology_version": onto.version,
            "source": source,
            "outside": checked.outside,
        },
    )
    now = dt.datetime.now(dt.UTC)
    rows = []
    seen: set[str] = set()
    for ann, _ in checked.good:
        payload = ann.payload_json()
        eid = event_id(ann.asset_id, annotator, payload, onto.name, onto.version)
        if eid in seen:  # the same object twice in the file: one event
            continue
        seen.add(eid)
        cls = onto.class_by_name(ann.label)
        rows.append(
            {
                "event_id": eid,
                "asset_id": ann.asset_id,
                "event": "annotation",
                "kind": ann.kind,
                "class_id": None if cls is None else cls.id,
                "class_name": ann.label,
                "payload": payload,
                "annotator": annotator,
                "source": source,
                "ontology": onto.name,
                "ontology_version": onto.version,
                "status": "submitted",
                "target_id": None,
                "comment": None,
                "source_uri": file_uri,
                "run_id": session.run_id,
                "created_at": now,
            }
        )
    result = session.commit(LABEL_EVENTS, pa.Table.from_pylist(rows))
    refusals = checked.refusals
    if refusals:
        session.commit(
            QUARANTINE, [_quarantine_row(file_uri, r, session.run_id, now) for r in refusals]
        )
    refused = Counter(r.reason for r in refusals if r.is_object)
    unmatched = sum(not r.is_object for r in refusals)
    duplicates = len(checked.good) - len(rows)
    session.counts.update(
        {
            "imported": result.rows_written,
            "already": result.rows_skipped,
            "duplicates": duplicates,
            "clipped": checked.clipped,
            "refused": sum(refused.values()),
        }
    )
    session.record()
    return ImportSummary(
        session.run_id,
        checked.path,
        checked.fmt,
        result.rows_written,
        result.rows_skipped,
        len(checked.assets),
        refused,
        duplicates,
        checked.clipped,
        unmatched,
        tuple(str(r["event_id"]) for r in rows),
    )


def _quarantine_row(file_uri: str, r: Refusal, run_id: str, now: dt.datetime) -> dict[str, Any]:
    qid = hashlib.sha256(f"label_import\x00{file_uri}\x00{r.entry}\x00{r.reason}".encode())
    return {
        "quarantine_id": qid.hexdigest(),
        "source_uri": file_uri,
        "reason": r.reason,
        "detail": f"{r.entry}: {r.detail}",
        "run_id": run_id,
        "quarantined_at": now,
        "stage": "label_import",
    }


def _s3_reader() -> Any:
    """Reads `s3://` image references with the same client and settings as ingest."""

    def read_s3(uri: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        from smartray.sources.s3 import S3Settings, split_s3_uri

        bucket, key = split_s3_uri(uri)
        try:
            body = S3Settings.from_env().client().get_object(Bucket=bucket, Key=key)["Body"]
            return bytes(body.read())
        except (BotoCoreError, ClientError) as e:
            raise OSError(str(e)) from None

    return read_s3


def events(lake: Lake, *, columns: list[str] | None = None, where: Any = None) -> pa.Table:
    """The ledger (optionally a pyarrow dataset filter); empty if there is none yet."""
    if not lake.exists(LABEL_EVENTS.name):
        return LABEL_EVENTS.schema.empty_table().select(columns or LABEL_EVENTS.schema.names)
    ds: pads.Dataset = lake.delta(LABEL_EVENTS.name).to_pyarrow_dataset()
    return ds.to_table(columns=columns, filter=where)
