import json

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from smartray.errors import ConfigError
from smartray.predict import metrics
from smartray.predict.evaluation import _truth
from smartray.predict.model import RecordedModel
from smartray.predict.scorer import uncertainty

CLASSES = [{"index": 0, "class_id": 4, "name": "cat"}, {"index": 1, "class_id": 9, "name": "dog"}]


def rows(y_true, y_pred, **columns):
    probs = [[0.9, 0.1] if p == 0 else [0.2, 0.8] for p in y_pred]
    return pa.table({"y_true": pa.array(y_true, pa.int64()), "y_pred": pa.array(y_pred, pa.int64()),
                     "probabilities": probs, **columns})  # fmt: skip


def test_a_large_worse_slice_is_flagged_and_a_slice_of_three_is_not():
    rng = np.random.default_rng(0)
    n = 400
    y_true = rng.integers(0, 2, n)
    site = np.array(["a"] * 200 + ["b"] * 197 + ["tiny"] * 3)
    wrong = np.zeros(n, bool)
    wrong[:200] = rng.random(200) < 0.30  # site a: 70 % right
    wrong[200:397] = rng.random(197) < 0.05  # site b: 95 % right
    wrong[397] = True  # tiny: 1 of 3 wrong
    y_pred = np.where(wrong, 1 - y_true, y_true)
    out = metrics.evaluate_slices(rows(y_true.tolist(), y_pred.tolist(), site=site.tolist()),
                                  ["site"], CLASSES)  # fmt: skip
    by = {r["slice"]: r for r in out}
    assert by["all"]["n"] == n
    assert by["all"]["correct"] == int((~wrong).sum())
    assert by["a"]["flagged"]
    assert by["a"]["p_adjusted"] < 0.05
    assert not by["tiny"]["flagged"]
    assert by["tiny"]["accuracy"] == pytest.approx(2 / 3)
    assert not by["b"]["flagged"]
    assert next(r["slice"] for r in metrics.worst_first(out)) == "a"
    assert sum(c["support"] for c in json.loads(by["a"]["per_class"])) == 200


def test_wilson_interval_and_calibration_come_out_as_published():
    low, high = metrics.wilson(1, 3)  # Wilson (1927): 0.0615-0.7923 for 1 of 3
    assert (round(low, 4), round(high, 4)) == (0.0615, 0.7923)
    perfect = metrics.scores(np.array([0, 1]), np.array([0, 1]),
                             np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), CLASSES)  # fmt: skip
    assert perfect["accuracy"] == 1.0
    assert perfect["ece"] == pytest.approx(0.0)
    # confident and half wrong: ECE = |0.9 - 0.5|
    half = metrics.scores(np.array([0, 1]), np.array([0, 0]),
                          np.array([[0.9, 0.1], [0.9, 0.1]], np.float32), CLASSES)  # fmt: skip
    assert half["ece"] == pytest.approx(0.4, abs=1e-6)
    assert json.loads(half["confusion"]) == [[1, 0], [1, 0]]


def test_numbers_fall_into_quartile_buckets_and_few_values_stay_values():
    blur = pa.array([float(i) for i in range(100)] + [None])
    buckets = metrics.slice_values(blur)
    assert len(set(buckets) - {"(none)"}) == 4
    assert buckets[-1] == "(none)"
    assert buckets[0].startswith("[0, ")
    assert buckets[99].endswith(", 99]")
    assert metrics.slice_values(pa.array([1, 2, 2, 1])) == ["1", "2", "2", "1"]
    assert metrics.slice_values(pa.array([True, False])) == ["true", "false"]
    many = metrics.slice_values(pa.array([f"v{i}" for i in range(60)] + ["v0"]))
    assert many.count("(other)") == 11
    assert many.count("v0") == 2


def test_uncertainty_of_probabilities():
    u = uncertainty(np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]], np.float32))
    assert u["predicted_index"].tolist() == [0, 0]
    assert u["confidence"].tolist() == pytest.approx([0.7, 1 / 3])
    assert u["margin"].tolist() == pytest.approx([0.5, 0.0], abs=1e-6)
    assert u["entropy"][1] == pytest.approx(np.log(3), abs=1e-5)


class Labels:
    """What `_truth` reads through a run's session: `labels` rows, filtered as a dataset."""

    def __init__(self, table):
        self.table = table

    def read(self, spec, *, columns=None, filter=None):
        return pads.dataset(self.table).to_table(columns=columns, filter=filter)


def labels(version):
    return pa.table({
        "asset_id": ["a", "b"], "kind": ["class", "class"],
        "class_id": pa.array([4, 9], pa.int32()),
        "class_name": ["cat", "dog"], "annotator": ["x", "y"],
        "agreement": pa.array([None, None], pa.float32()), "ontology": ["pets", "pets"],
        "ontology_version": pa.array([version, version], pa.int32()),
    })  # fmt: skip


def test_labels_of_another_ontology_version_are_refused():
    model = RecordedModel("m", "default", "small-cnn", 16, "pets", 1, CLASSES, "/x", {})
    truth, skipped = _truth(Labels(labels(1)), model, ["a", "b"], "split 'main' side 'val'")
    assert truth["y_true"].to_pylist() == [0, 1]
    assert not skipped
    with pytest.raises(
        ConfigError, match=r"labels use 'pets' version\(s\) \[2\]; model m learnt v1"
    ):
        _truth(Labels(labels(2)), model, ["a", "b"], "split 'main' side 'val'")
