import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from smartray.annotate.ontology import parse_ontology
from smartray.errors import ConfigError
from smartray.sanitize.cv import cv2
from smartray.train.inputs import decode_batch, normalize, read_decode, select

ONTOLOGY = parse_ontology(
    {"name": "digits", "version": 2, "kinds": ["class", "boxes"],
     "classes": [{"id": 7, "name": "seven"}, {"id": 1, "name": "one"}, {"id": 3, "name": "three"}]}
)  # fmt: skip


def labels(rows):
    keys = ["asset_id", "kind", "class_id", "ontology", "ontology_version"]
    return pa.Table.from_pylist([dict(zip(keys, r, strict=True)) for r in rows])


def splits(rows, name="main"):
    return pa.Table.from_pylist([{"split_name": name, "asset_id": a, "split": s} for a, s in rows])


def test_class_labels_of_the_version_on_the_split_become_indices_in_class_id_order():
    lab = labels([
        ("a", "class", 1, "digits", 2), ("b", "class", 7, "digits", 2),
        ("c", "class", 3, "digits", 2), ("d", "boxes", 3, "digits", 2),
        ("e", "class", 1, "digits", 2), ("e", "class", 3, "digits", 2),  # conflicting
        ("f", "class", 1, "digits", 1), ("g", "class", 7, "digits", 2),
        ("h", "class", 1, "digits", 2),
    ])  # fmt: skip
    spl = splits([("a", "train"), ("b", "train"), ("c", "train"), ("g", "val"), ("h", "test")])
    chosen = select(lab, spl, ontology=ONTOLOGY, split="main")
    assert [c["name"] for c in chosen.classes] == ["one", "three", "seven"]
    assert chosen.train.to_pylist() == [
        {"asset_id": "a", "label": 0}, {"asset_id": "b", "label": 2}, {"asset_id": "c", "label": 1}
    ]  # fmt: skip
    assert chosen.val.to_pylist() == [{"asset_id": "g", "label": 2}]
    assert chosen.counts == {"train": 3, "val": 1, "no_class_label": 1, "conflicting": 1,
                             "in_test": 1}  # fmt: skip
    assert chosen.class_weights() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("lab", "spl", "split", "message"),
    [
        ([("a", "class", 1, "other", 1)], [("a", "train")], "main", "no approved labels"),
        ([("a", "class", 1, "digits", 1)], [("a", "train")], "main", r"version\(s\) \[1\]"),
        ([("a", "class", 1, "digits", 2)], [("a", "train")], "nope", "no split named 'nope'"),
        ([("a", "class", 1, "digits", 2)], [("a", "val")], "main", "no labelled asset in 'train'"),
        ([("a", "class", 1, "digits", 2), ("b", "class", 7, "digits", 2)],
         [("a", "train"), ("b", "val")], "main", r"\['seven'\] are in 'val' but not in 'train'"),
    ],
)  # fmt: skip
def test_bad_training_inputs_are_named(lab, spl, split, message):
    with pytest.raises(ConfigError, match=message):
        select(labels(lab), splits(spl), ontology=ONTOLOGY, split=split)


def test_decode_keeps_labelled_rows_and_seeds_augmentation_by_epoch():
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, :15] = (0, 0, 255)  # red left half (BGR)
    data = cv2.imencode(".png", img)[1].tobytes()
    batch = pa.table({"asset_id": ["x", "y"], "data": [data, data]})
    wanted = pa.table({"asset_id": ["y"], "label": pa.array([4], pa.int64())})
    plain = decode_batch(batch, labels=wanted, image_size=8)
    assert plain["image"].shape == (1, 3, 8, 8)
    assert plain["label"].tolist() == [4]
    assert plain["image"].dtype == np.uint8
    assert plain["image"][0, 0, :, 0].min() == 255  # red, RGB
    assert normalize(plain["image"])[0, 0, 0, 0] == pytest.approx(1.0)
    assert normalize(plain["image"])[0, 1, 0, 0] == pytest.approx(-1.0)
    ops = [{"op": "crop", "strength": 0.6}, {"op": "rotate", "strength": 20.0}]

    def aug(epoch):
        return decode_batch(batch, labels=wanted, image_size=8, ops=ops, seed=1, epoch=epoch)

    assert np.array_equal(aug(0)["image"], aug(0)["image"])
    assert not np.array_equal(aug(0)["image"], aug(1)["image"])


def test_read_decode_reads_every_row_group_and_yields_only_labelled_images(tmp_path):
    import pyarrow.parquet as pq

    from smartray.tables.storage import LakeLocation

    data = cv2.imencode(".png", np.full((10, 10, 3), 200, np.uint8))[1].tobytes()
    ids = [f"a{i}" for i in range(10)]
    # as delta-rs rewrites files (erase, upsert): view types
    stored = pa.table({"asset_id": pa.array(ids).cast(pa.string_view()),
                       "data": pa.array([data] * 10).cast(pa.binary_view())})  # fmt: skip
    pq.write_table(stored, tmp_path / "p.parquet", row_group_size=3)
    # a0..a2 (the first row group) unlabelled; a4 and a9 in later groups
    wanted = pa.table({"asset_id": ["a9", "a4"], "label": pa.array([2, 1], pa.int64())})
    out = list(
        read_decode({"path": np.array([str(tmp_path / "p.parquet")])},
                    location=LakeLocation.from_uri(str(tmp_path)), labels=wanted, image_size=4)
    )  # fmt: skip
    assert [b["label"].tolist() for b in out] == [[1], [2]]  # one batch per row group
    assert all(b["image"].shape == (1, 3, 4, 4) for b in out)


def test_models_decode_and_scorer_load_without_ray_deltalake_or_pydantic():
    # what bench/gpu_train.py and bench/gpu_score.py import on a GPU machine that has neither
    code = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "deltalake", "pydantic", "yaml"):
            raise ImportError(f"no module named {name}")
sys.meta_path.insert(0, Missing())
from smartray.train import nets
from smartray.train.inputs import decode_batch, normalize
from smartray.predict.scorer import Scorer, uncertainty
print(type(nets.build("small-cnn", 3)).__name__)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SmallCNN"
