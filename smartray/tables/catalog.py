"""The lake's tables, each declared once. Later work adds its own tables here."""

import pyarrow as pa

from smartray.errors import UnknownTableError
from smartray.tables.spec import TableSpec

_UTC = pa.timestamp("us", tz="UTC")


def _f(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


ASSETS = TableSpec(
    name="assets",
    description="sanitized images and video frames: re-encoded bytes, thumbnail, intrinsic "
    "metrics and hashes",
    key=("asset_id",),
    heavy_columns=("data", "thumbnail", "descriptor"),
    schema=pa.schema(
        [
            # lowercase hex sha256 of the source bytes; a frame: of "{video_id}:{frame_index}"
            _f("asset_id", pa.string()),
            _f("media_type", pa.string()),  # "image" or "frame"
            _f("format", pa.string()),  # stored encoding: "jpeg" or "png"
            _f("source_format", pa.string()),  # jpeg, png, gif, ...; a frame: the codec
            _f("width", pa.int32()),
            _f("height", pa.int32()),
            _f("channels", pa.int8()),  # 1 gray, 3 colour, 4 colour with alpha
            _f("aspect", pa.float32()),  # width / height
            _f("source_bytes", pa.int64()),  # a frame: its video file's size
            _f("stored_bytes", pa.int64()),
            _f("orientation", pa.int8()),  # EXIF orientation that was applied (1 = none)
            _f("captured_at", pa.timestamp("us"), nullable=True),  # EXIF DateTimeOriginal
            _f("blur", pa.float32()),  # variance of the Laplacian; low = blurry
            _f("brightness", pa.float32()),  # mean gray level, 0..1
            _f("contrast", pa.float32()),  # std of gray levels, 0..1
            _f("is_grayscale", pa.bool_()),
            _f("phash", pa.int64()),  # 64-bit DCT perceptual hash (bit pattern)
            _f("dhash", pa.int64()),  # 64-bit difference hash (bit pattern)
            _f("blurred_regions", pa.int32()),  # faces and plates blurred
            _f("data", pa.large_binary()),  # the sanitized, re-encoded image
            _f("thumbnail", pa.binary()),  # JPEG, longest side 128 px
            _f("run_id", pa.string()),
            _f("ingested_at", _UTC),
            # frames only (added after the first release: nullable, at the end)
            _f("video_id", pa.string(), nullable=True),
            _f("frame_index", pa.int64(), nullable=True),  # the frame's time x average fps
            _f("timestamp_ms", pa.int64(), nullable=True),  # from the video's start
            # augmented children only (`smartray augment`)
            _f("parent_id", pa.string(), nullable=True),  # the asset it was derived from
            _f("augment_ops", pa.string(), nullable=True),  # canonical JSON op list
            _f("augment_seed", pa.int64(), nullable=True),  # with the ops: the same bytes
            # 32x32 grayscale of the unblurred pixels (1,024 bytes): near-duplicates are
            # confirmed on it; null for assets ingested before it existed (curate then
            # makes it from the thumbnail)
            _f("descriptor", pa.binary(), nullable=True),
            # the blur's audit: JSON list of {"detector", "x", "y", "w", "h"} in stored
            # pixels; "[]" when nothing was found, null when blurring was off or for
            # assets ingested before it existed (`smartray ingest --resanitize` fills it)
            _f("blurred_boxes", pa.string(), nullable=True),
        ]
    ),
)

VIDEOS = TableSpec(
    name="videos",
    description="decodable videos: stream facts (their sampled frames are assets)",
    key=("video_id",),
    schema=pa.schema(
        [
            _f("video_id", pa.string()),  # lowercase hex sha256 of the video file
            # where it was first found (every place it was seen: `asset_sources`)
            _f("source_uri", pa.string()),
            _f("container", pa.string()),  # as FFmpeg names it: mov,mp4,..., avi, matroska
            _f("codec", pa.string()),  # h264, hevc, mpeg4, vp9, ...
            _f("width", pa.int32()),
            _f("height", pa.int32()),
            _f("fps", pa.float64()),  # average frame rate
            _f("duration_s", pa.float64()),
            _f("frame_count", pa.int64()),  # as the container declares it
            _f("source_bytes", pa.int64()),
            _f("run_id", pa.string()),
            _f("ingested_at", _UTC),
        ]
    ),
)

ASSET_SOURCES = TableSpec(
    name="asset_sources",
    description="every (asset or video, source URI, size, mtime or ETag) seen: one row per "
    "version of a source, so the same bytes at two paths are two rows",
    key=("asset_id", "source_uri", "size", "mtime", "etag"),
    schema=pa.schema(
        [
            _f("asset_id", pa.string()),
            _f("source_uri", pa.string()),
            _f("size", pa.int64()),
            _f("mtime", _UTC, nullable=True),
            _f("etag", pa.string(), nullable=True),
            _f("run_id", pa.string()),
            _f("recorded_at", _UTC),
        ]
    ),
)

QUARANTINE = TableSpec(
    name="quarantine",
    description="every input that was not ingested, with a reason code",
    key=("quarantine_id",),
    schema=pa.schema(
        [
            # sha256 of source URI, reason and content fingerprint: an unchanged bad file
            # quarantined again by a re-run is the same row.
            _f("quarantine_id", pa.string()),
            _f("source_uri", pa.string()),
            _f("reason", pa.string()),
            _f("detail", pa.string()),
            _f("size", pa.int64(), nullable=True),
            _f("mtime", _UTC, nullable=True),
            _f("etag", pa.string(), nullable=True),
            _f("source_sha256", pa.string(), nullable=True),
            _f("run_id", pa.string()),
            _f("quarantined_at", _UTC),
            # what refused it: "ingest" for media (null in rows from before this column),
            # "label_import" for label files
            _f("stage", pa.string(), nullable=True),
        ]
    ),
)

RUNS = TableSpec(
    name="runs",
    description="one row per job run: config, table versions read and written, counts",
    key=("run_id",),
    schema=pa.schema(
        [
            _f("run_id", pa.string()),
            _f("job", pa.string()),
            _f("status", pa.string()),
            _f("started_at", _UTC),
            _f("finished_at", _UTC),
            _f("config", pa.string()),  # JSON, without secrets
            _f("input_versions", pa.string()),  # JSON {table: version or null}
            _f("output_versions", pa.string()),  # JSON {table: version}
            _f("counts", pa.string()),  # JSON {name: count}
            _f("smartray_version", pa.string()),
            # set by `smartray erase` when the versions the run pinned lost erased rows
            _f("broken_by", pa.string(), nullable=True),
        ]
    ),
)

DUP_GROUPS = TableSpec(
    name="dup_groups",
    description="near-duplicate group of every asset (`smartray curate`): frames of a video "
    "and augmented children share their parent's group",
    key=("asset_id",),
    schema=pa.schema(
        [
            _f("asset_id", pa.string()),
            _f("dup_group", pa.string()),  # the smallest asset_id of the component
            _f("threshold", pa.int32()),  # Hamming distance on phash that linked it
            _f("run_id", pa.string()),
            _f("grouped_at", _UTC),
        ]
    ),
)

SPLITS = TableSpec(
    name="splits",
    description="named train/val/test assignments (`smartray split`): one row per "
    "(split name, asset)",
    key=("split_name", "asset_id"),
    schema=pa.schema(
        [
            _f("split_name", pa.string()),
            _f("asset_id", pa.string()),
            _f("split", pa.string()),  # train, val, test, or the names given in --ratios
            _f("group_key", pa.string()),  # the group kept whole (empty with --no-groups)
            _f("run_id", pa.string()),
            _f("assigned_at", _UTC),
        ]
    ),
)

SNAPSHOTS = TableSpec(
    name="snapshots",
    description="named samples (`smartray sample`): spec, seed and the `assets` version "
    "drawn from, one row per member asset",
    key=("snapshot", "asset_id"),
    schema=pa.schema(
        [
            _f("snapshot", pa.string()),
            _f("asset_id", pa.string()),
            _f("rank", pa.int64()),  # order of the draw, from 0
            _f("strategy", pa.string()),
            _f("spec", pa.string()),  # JSON: strategy, n, where, by, seed
            _f("seed", pa.int64()),
            _f("assets_version", pa.int64()),
            _f("run_id", pa.string()),
            _f("created_at", _UTC),
            # set by `smartray erase` when a member or its pinned version was erased
            _f("broken_by", pa.string(), nullable=True),
        ]
    ),
)

ONTOLOGIES = TableSpec(
    name="ontologies",
    description="every registered version of every label ontology (`smartray ontology add`)",
    key=("ontology", "version"),
    schema=pa.schema(
        [
            _f("ontology", pa.string()),
            _f("version", pa.int32()),
            _f("definition", pa.string()),  # canonical JSON of the validated ontology
            _f("sha256", pa.string()),  # of the definition
            _f("run_id", pa.string()),
            _f("registered_at", _UTC),
        ]
    ),
)

LABEL_EVENTS = TableSpec(
    name="label_events",
    description="append-only label ledger: one row per annotation object imported, and one "
    "per review decision",
    key=("event_id",),
    schema=pa.schema(
        [
            # sha256 of (asset_id, annotator, payload, ontology@version): the same file
            # imported twice adds nothing
            _f("event_id", pa.string()),
            _f("asset_id", pa.string()),
            _f("event", pa.string()),  # "annotation" or "review"
            _f("kind", pa.string()),  # class, tag, box, polygon; a review: its decision
            _f("class_id", pa.int32(), nullable=True),
            _f("class_name", pa.string(), nullable=True),
            _f("payload", pa.string()),  # canonical JSON
            _f("annotator", pa.string()),  # who made it (a review: the reviewer)
            _f("source", pa.string()),  # human, model, consensus
            _f("ontology", pa.string()),
            _f("ontology_version", pa.int32()),
            _f("status", pa.string()),  # annotation: submitted; review: the state it sets
            _f("target_id", pa.string(), nullable=True),  # a review: the annotation event
            _f("comment", pa.string(), nullable=True),
            _f("source_uri", pa.string(), nullable=True),  # the imported file
            _f("run_id", pa.string()),
            _f("created_at", _UTC),
            _f("agreement", pa.float32(), nullable=True),  # consensus objects: 0..1
        ]
    ),
)

LABELS = TableSpec(
    name="labels",
    description="the current approved labels of each asset, rebuilt from `label_events`",
    key=("asset_id", "label_id"),
    schema=pa.schema(
        [
            _f("asset_id", pa.string()),
            _f("label_id", pa.string()),  # the approved annotation event
            _f("kind", pa.string()),
            _f("class_id", pa.int32(), nullable=True),
            _f("class_name", pa.string(), nullable=True),
            _f("payload", pa.string()),
            _f("annotator", pa.string()),
            _f("source", pa.string()),
            _f("ontology", pa.string()),
            _f("ontology_version", pa.int32()),
            _f("approved_by", pa.string()),
            _f("approved_at", _UTC),
            _f("agreement", pa.float32(), nullable=True),  # consensus labels only
            _f("run_id", pa.string()),
        ]
    ),
)

MODELS = TableSpec(
    name="models",
    description="trained models (`smartray train`): architecture, classes, the pinned input "
    "versions, each epoch's checkpoint (URI and sha256 of its files) and metrics",
    key=("model_id",),
    schema=pa.schema(
        [
            _f("model_id", pa.string()),  # the training run's id
            _f("experiment", pa.string()),
            _f("architecture", pa.string()),  # small-cnn, resnet18, module:factory
            _f("config", pa.string()),  # JSON: the run's settings
            _f("ontology", pa.string()),
            _f("ontology_version", pa.int32()),
            _f("classes", pa.string()),  # JSON: [{index, class_id, name}], index order
            _f("split_name", pa.string()),
            _f("assets_version", pa.int64()),
            _f("labels_version", pa.int64()),
            _f("splits_version", pa.int64()),
            _f("train_assets", pa.int64()),
            _f("val_assets", pa.int64()),
            _f("best_epoch", pa.int32()),
            _f("last_epoch", pa.int32()),
            _f("best_val_accuracy", pa.float64()),
            _f("checkpoint_uri", pa.string()),  # the best epoch's checkpoint folder
            _f("checkpoint_sha256", pa.string()),  # JSON: file -> sha256 of that folder
            _f("checkpoints", pa.string()),  # JSON: [{epoch, uri, sha256}] of every epoch
            _f("epochs", pa.string()),  # JSON: per-epoch train/val loss and accuracy
            _f("run_id", pa.string()),
            _f("trained_at", _UTC),
        ]
    ),
)

PREDICTIONS = TableSpec(
    name="predictions",
    description="a model's class probabilities and embedding per asset (`smartray predict`): "
    "what evaluation, label issues and selection read",
    key=("model_id", "asset_id"),
    heavy_columns=("embedding",),
    schema=pa.schema(
        [
            _f("model_id", pa.string()),
            _f("asset_id", pa.string()),
            _f("predicted_index", pa.int32()),  # index into the model's `classes`
            _f("predicted_class_id", pa.int32()),  # the ontology's stable class id
            _f("predicted_class", pa.string()),
            _f("confidence", pa.float32()),  # the largest probability
            _f("margin", pa.float32()),  # largest minus second largest probability
            _f("entropy", pa.float32()),  # of the probabilities, in nats
            _f("probabilities", pa.list_(pa.float32())),  # in the model's class index order
            _f("embedding", pa.list_(pa.float32())),  # the model's embedding hook
            # `smartray score --mc-dropout N`: the passes, and BALD's mutual information
            # (nats); null when scored without them
            _f("mc_passes", pa.int32(), nullable=True),
            _f("mutual_info", pa.float32(), nullable=True),  # BALD
            _f("assets_version", pa.int64()),  # the version the image was read at
            _f("run_id", pa.string()),
            _f("predicted_at", _UTC),
        ]
    ),
)

EVALUATIONS = TableSpec(
    name="evaluations",
    description="a model's metrics on one side of a split (`smartray evaluate`): overall "
    "and per slice, each with its 95 % interval and whether it is significantly worse",
    key=("run_id", "slice_by", "slice"),
    schema=pa.schema(
        [
            _f("run_id", pa.string()),  # the evaluation run
            _f("model_id", pa.string()),
            _f("split_name", pa.string()),
            _f("side", pa.string()),  # val, test, ...
            _f("slice_by", pa.string()),  # a column of the evaluated assets; "all": overall
            _f("slice", pa.string()),  # its value or bucket; "all": overall
            _f("n", pa.int64()),
            _f("correct", pa.int64()),
            _f("accuracy", pa.float64()),
            _f("ci_low", pa.float64()),  # Wilson 95 % interval of the accuracy
            _f("ci_high", pa.float64()),
            # one-sided Fisher exact test, slice against the rest; Benjamini-Hochberg
            # adjusted over every slice of the run; flagged when adjusted p < 0.05
            _f("p_value", pa.float64(), nullable=True),
            _f("p_adjusted", pa.float64(), nullable=True),
            _f("flagged", pa.bool_()),
            _f("macro_f1", pa.float64()),
            _f("ece", pa.float64()),  # expected calibration error, 15 bins
            # JSON: [{class_id, name, precision, recall, f1, support}]
            _f("per_class", pa.string()),
            _f("confusion", pa.string()),  # JSON: rows true class, columns predicted
            _f("labels_version", pa.int64()),
            _f("splits_version", pa.int64()),
            _f("predictions_version", pa.int64()),
            _f("evaluated_at", _UTC),
        ]
    ),
)

LABEL_ISSUES = TableSpec(
    name="label_issues",
    description="suspected label errors (`smartray find-label-issues`): confident learning on "
    "out-of-sample probabilities from K-fold models, ranked (`smartray review "
    "--from-label-issues` takes its queue from here)",
    key=("run_id", "asset_id"),
    schema=pa.schema(
        [
            _f("run_id", pa.string()),  # the find-label-issues run
            _f("asset_id", pa.string()),
            _f("split_name", pa.string()),
            _f("label_id", pa.string()),  # the approved annotation event in question
            _f("given_class_id", pa.int32()),
            _f("given_class", pa.string()),
            _f("suggested_class_id", pa.int32()),  # the out-of-sample model's choice
            _f("suggested_class", pa.string()),
            _f("self_confidence", pa.float64()),  # out-of-sample probability of the given class
            _f("rank", pa.int64()),  # 0 = the most likely error
            _f("fold", pa.int32()),  # the fold the asset was held out in
            _f("fold_model", pa.string()),  # the model that scored it (never trained on it)
            _f("found_at", _UTC),
        ]
    ),
)

BATCHES = TableSpec(
    name="batches",
    description="active-learning batches (`smartray select`): per experiment and round, the "
    "assets picked for annotation, in pick order, with the strategy's scores and every "
    "version it read, so the round can be selected again identically",
    key=("experiment", "round", "asset_id"),
    schema=pa.schema(
        [
            _f("experiment", pa.string()),
            _f("round", pa.int32()),  # 1, 2, ... per experiment
            _f("asset_id", pa.string()),
            _f("rank", pa.int32()),  # 0 = picked first
            _f("strategy", pa.string()),  # random, margin, kcenter, badge, weighted, ...
            _f("score", pa.float64(), nullable=True),  # the strategy's value at the pick
            _f("model_id", pa.string(), nullable=True),  # null: cold start (no model yet)
            _f("predicted_class_id", pa.int32(), nullable=True),
            _f("predicted_class", pa.string(), nullable=True),
            _f("confidence", pa.float32(), nullable=True),
            _f("margin", pa.float32(), nullable=True),
            _f("entropy", pa.float32(), nullable=True),
            _f("mutual_info", pa.float32(), nullable=True),  # BALD, with MC-dropout scores
            _f("budget", pa.int32()),
            _f("pool_size", pa.int64()),  # candidates after the duplicate/video exclusion
            _f("seed", pa.int64()),
            _f("settings", pa.string()),  # JSON: split, ontology, weights, prefilter, ...
            # the versions the selection read: selecting again at them gives the same ids
            _f("assets_version", pa.int64()),
            _f("labels_version", pa.int64(), nullable=True),
            _f("splits_version", pa.int64(), nullable=True),
            _f("predictions_version", pa.int64(), nullable=True),
            _f("dup_groups_version", pa.int64(), nullable=True),
            _f("asset_sources_version", pa.int64(), nullable=True),  # --where's source_*
            _f("batches_version", pa.int64(), nullable=True),  # the earlier rounds
            _f("run_id", pa.string()),
            _f("selected_at", _UTC),
            # added with `smartray loop`: which earlier picks were answered (`--repick`)
            _f("label_events_version", pa.int64(), nullable=True),
        ]
    ),
)

AL_ROUNDS = TableSpec(
    name="al_rounds",
    description="active-learning rounds (`smartray loop`): per experiment and round, the "
    "labels that came back, the model trained on them and its accuracy, the batch selected "
    "with it, every version the selection read and its seed (`loop --replay ROUND` selects "
    "again from this row), and the run of each step",
    key=("experiment", "round"),
    schema=pa.schema(
        [
            _f("experiment", pa.string()),
            _f("round", pa.int32()),  # = the round of the batch in `batches`
            _f("strategy", pa.string()),  # as selected (cold start: random or kcenter)
            _f("budget", pa.int32()),
            _f("seed", pa.int64()),
            _f("split_name", pa.string(), nullable=True),
            _f("ontology", pa.string()),
            _f("ontology_version", pa.int32()),
            _f("model_id", pa.string(), nullable=True),  # null: cold start (no labels yet)
            _f("init_model", pa.string(), nullable=True),  # fine-tuned from (null: afresh)
            _f("labelled", pa.int64()),  # approved labels on the train side the model learnt
            _f("asked", pa.int64()),  # assets of the previous batch
            _f("answered", pa.int64()),  # of them, with an annotation once this round's are in
            # annotation objects imported this round, and approved by the loop's policy (a
            # simulation's first round: the oracle's val/test labels too)
            _f("imported", pa.int64()),
            _f("approved", pa.int64()),
            _f("selected_ids", pa.list_(pa.string())),  # the batch, in pick order
            _f("pool_size", pa.int64()),
            _f("val_accuracy", pa.float64(), nullable=True),
            _f("val_n", pa.int64(), nullable=True),
            _f("test_accuracy", pa.float64(), nullable=True),
            _f("test_n", pa.int64(), nullable=True),
            _f("settings", pa.string()),  # JSON: the select settings, seed and pool ontology
            # the versions the selection read: selecting again at them gives the same ids
            _f("assets_version", pa.int64()),
            _f("asset_sources_version", pa.int64(), nullable=True),
            _f("labels_version", pa.int64(), nullable=True),
            _f("splits_version", pa.int64(), nullable=True),
            _f("dup_groups_version", pa.int64(), nullable=True),
            _f("predictions_version", pa.int64(), nullable=True),
            _f("batches_version", pa.int64(), nullable=True),
            _f("label_events_version", pa.int64(), nullable=True),
            _f("runs", pa.string()),  # JSON: step -> run id (import, review, train, ...)
            _f("export_uri", pa.string(), nullable=True),
            _f("report_uri", pa.string(), nullable=True),
            _f("run_id", pa.string()),  # the loop run
            _f("finished_at", _UTC),
        ]
    ),
)

ALL_TABLES: dict[str, TableSpec] = {
    s.name: s
    for s in (
        ASSETS,
        ASSET_SOURCES,
        QUARANTINE,
        RUNS,
        VIDEOS,
        DUP_GROUPS,
        SPLITS,
        SNAPSHOTS,
        ONTOLOGIES,
        LABEL_EVENTS,
        LABELS,
        MODELS,
        PREDICTIONS,
        EVALUATIONS,
        LABEL_ISSUES,
        BATCHES,
        AL_ROUNDS,
    )
}


def spec_for(name: str) -> TableSpec:
    """The declared spec for table `name`.

    Raises:
        UnknownTableError: no table has that name (the message lists the known tables).
    """
    try:
        return ALL_TABLES[name]
    except KeyError:
        raise UnknownTableError(
            f"unknown table {name!r}; known tables: {', '.join(sorted(ALL_TABLES))}"
        ) from None
