"""Agreement maths, and consensus over a ledger of three annotators (no Ray)."""

import json

import pytest

from jobs import consensus as consensus_job
from jobs import import_labels as import_job
from smartray import Lake
from smartray.annotate.agreement import cluster_boxes, cohen_kappa, fleiss_kappa, iou, majority

FLEISS_WIKIPEDIA = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                    [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                    [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip


def test_fleiss_kappa_matches_the_textbook_example():
    items = []
    for counts in FLEISS_WIKIPEDIA:
        raters = [c for c, n in enumerate(counts) for _ in range(n)]
        items.append({f"r{i}": str(c) for i, c in enumerate(raters)})
    assert fleiss_kappa(items) == pytest.approx(0.210, abs=0.001)


def test_cohen_majority_iou_and_clusters():
    assert cohen_kappa(["y", "y", "n", "n"], ["y", "n", "n", "n"]) == pytest.approx(0.5)
    assert majority({"a": "cat", "b": "cat", "c": "dog"}) == ("cat", pytest.approx(2 / 3))
    assert majority({"a": "cat", "b": "dog"})[0] is None
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    clusters = cluster_boxes([("a", "dog", (0, 0, 10, 10)), ("b", "dog", (1, 1, 10, 10)),
                              ("b", "dog", (30, 30, 40, 40)), ("c", "cat", (0, 0, 10, 10))],
                             0.5)  # fmt: skip
    assert sorted(len(c.members) for c in clusters) == [1, 1, 2]


def ls_task(asset_id, cls, box=None):
    result = [{"from_name": "class", "to_name": "image", "type": "choices",
               "value": {"choices": [cls]}}]  # fmt: skip
    if box:
        x, y, w, h = box
        result.append({"from_name": "box", "to_name": "image", "type": "rectanglelabels",
                       "original_width": 64, "original_height": 48,
                       "value": {"x": x / 0.64, "y": y / 0.48, "width": w / 0.64,
                                 "height": h / 0.48, "rectanglelabels": ["dog"]}})  # fmt: skip
    return {"id": 1, "data": {"image": "/data/upload/1/x.png", "asset_id": asset_id},
            "annotations": [{"result": result}]}  # fmt: skip


def test_consensus_approves_agreement_and_queues_the_rest(labelled_lake, tmp_path, capsys):
    lake_dir, _, ids = labelled_lake
    a0, a1, a2 = list(ids.values())[:3]
    votes = {"ann1": [("cat", (10, 10, 20, 20)), ("cat", None), ("dog", None)],
             "ann2": [("cat", (11, 10, 20, 21)), ("dog", None), None],
             "ann3": [("dog", (10, 11, 19, 20)), ("bird", None), None]}  # fmt: skip
    for who, labels in votes.items():
        tasks = [ls_task(aid, v[0], v[1]) for aid, v in zip((a0, a1, a2), labels, strict=True) if v]
        path = tmp_path / f"{who}.json"
        path.write_text(json.dumps(tasks))
        import_job.main([str(path), "--format", "labelstudio", "--annotator", who,
                         "--lake", lake_dir])  # fmt: skip
    capsys.readouterr()
    consensus_job.main(["--lake", lake_dir, "--min-agreement", "0.6"])
    out = capsys.readouterr().out
    assert "2 asset(s) with 2+ annotators; 1 approved, 1 queued for review" in out
    assert f"queued: {a1}" in out
    assert "annotator ann1: agrees with the majority 0.500, mean box IoU" in out
    assert "Cohen's kappa ann1 / ann2" in out
    labels = Lake(lake_dir).table("labels").to_pylist()
    assert {r["asset_id"] for r in labels} == {a0}
    by_kind = {r["kind"]: r for r in labels}
    assert by_kind["class"]["class_name"] == "cat"
    assert by_kind["class"]["agreement"] == pytest.approx(2 / 3, abs=1e-3)
    assert by_kind["box"]["annotator"] == "consensus"
    x, y, w, h = json.loads(by_kind["box"]["payload"])["bbox"]
    # the mean corners of (10,10)-(30,30), (11,10)-(31,31), (10,11)-(29,31)
    assert (x, y, w, h) == pytest.approx((10.33, 10.33, 19.67, 20.33), abs=0.01)
    # a second run adds nothing to the ledger
    version = Lake(lake_dir).version("label_events")
    consensus_job.main(["--lake", lake_dir, "--min-agreement", "0.6"])
    assert Lake(lake_dir).version("label_events") == version
