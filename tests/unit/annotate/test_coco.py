"""COCO import (validated, into the ledger), review, export, pycocotools both ways."""

import json
import os

import pytest

from jobs import export as export_job
from jobs import import_labels as import_job
from jobs import review as review_job
from smartray import Lake


def coco_file(out):
    """Where a COCO export's annotations are (CVAT's and Datumaro's layout)."""
    return out / "annotations" / "instances_default.json"


def coco(images, annotations, categories=None):
    cats = categories or [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    return {"images": images, "annotations": annotations, "categories": cats}


def write(tmp_path, doc, name="labels.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def imp(lake_dir, path, root, annotator="ann1", fmt="coco", *extra):
    import_job.main([path, "--format", fmt, "--annotator", annotator, "--lake", lake_dir,
                     "--image-root", str(root), *extra])  # fmt: skip


def events(lake_dir):
    return Lake(lake_dir).table("label_events").to_pylist()


def quarantined(lake_dir):
    rows = Lake(lake_dir).table("quarantine").to_pylist()
    return {r["detail"].split(":")[0]: r["reason"] for r in rows if r["stage"] == "label_import"}


def test_valid_entries_import_and_each_bad_one_is_quarantined_with_a_reason(
    labelled_lake, tmp_path, capsys
):
    lake_dir, root, ids = labelled_lake
    outside = tmp_path / "outside.png"
    outside.write_bytes((root / "img0.png").read_bytes())
    os.symlink(outside, root / "link.png")
    images = [
        {"id": 1, "file_name": "img0.png", "width": 64, "height": 48},
        {"id": 2, "file_name": "img1.png", "width": 64, "height": 48},
        {"id": 3, "file_name": "../outside.png"},
        {"id": 4, "file_name": "/etc/passwd"},
        {"id": 5, "file_name": "link.png"},
        {"id": 6, "file_name": "file:///etc/passwd"},
        {"id": 7, "file_name": "http://169.254.169.254/latest/meta-data"},
        {"id": 8, "file_name": "not-in-the-lake.png"},
        {"id": 9, "file_name": "img2.png"},
        {"id": 9, "file_name": "img3.png"},
    ]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 10]},  # ok
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 64, 48]},  # ok, edge to edge
        {"id": 3, "image_id": 1, "category_id": 7, "bbox": [1, 1, 2, 2]},  # unknown category
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [50, 40, 30, 30]},  # outside
        {"id": 5, "image_id": 2, "category_id": 1, "bbox": [5, 5, 0, 9]},  # zero area
        {"id": 6, "image_id": 3, "category_id": 1, "bbox": [1, 1, 2, 2]},
        {"id": 7, "image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]},
    ]
    (tmp_path / "not-in-the-lake.png").write_bytes(b"x")
    doc = coco(images, anns, [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"},
                              {"id": 7, "name": "zebra"}])  # fmt: skip
    path = write(tmp_path, doc)
    imp(lake_dir, path, root)
    out = capsys.readouterr().out
    assert "2 object(s) on 2 asset(s) imported" in out
    got = {(e["asset_id"], e["class_name"]) for e in events(lake_dir)}
    assert got == {(ids["img0.png"], "cat"), (ids["img1.png"], "dog")}
    q = quarantined(lake_dir)
    assert q["images[2]"] == "path_escape"
    assert q["images[3]"] == "path_escape"
    assert q["images[4]"] == "path_escape"  # the symlink leaves the root
    assert q["images[5]"] == "url_not_allowed"
    assert q["images[6]"] == "url_not_allowed"
    assert q["images[7]"] == "unknown_asset"
    assert q["images[8]"] == q["images[9]"] == "duplicate_image_id"
    assert q["annotations[2]"] == "unknown_class"
    assert q["annotations[3]"] == "box_outside_image"
    assert q["annotations[4]"] == "zero_area"
    assert q["annotations[5]"] == "path_escape"
    assert q["annotations[6]"] == "unknown_asset"
    # the same file again adds nothing, not even quarantine rows
    versions = {i.name: i.version for i in Lake(lake_dir).describe()}
    imp(lake_dir, path, root)
    assert "0 object(s) on 2 asset(s) imported, 2 already in the ledger" in capsys.readouterr().out
    after = {i.name: i.version for i in Lake(lake_dir).describe()}
    assert after["label_events"] == versions["label_events"]
    assert after["quarantine"] == versions["quarantine"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not JSON"), (json.dumps({"tasks": []}), "not COCO"), ("[1, 2]", "not COCO")],
)
def test_an_unusable_file_exits_2_and_writes_nothing(labelled_lake, tmp_path, capsys,
                                                     content, message):  # fmt: skip
    lake_dir, root, _ = labelled_lake
    with pytest.raises(SystemExit) as e:
        imp(lake_dir, write(tmp_path, content), root)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not Lake(lake_dir).exists("label_events")


def test_review_builds_labels_and_coco_round_trips(labelled_lake, tmp_path, capsys):
    from pycocotools.coco import COCO

    lake_dir, root, ids = labelled_lake
    images = [{"id": i + 1, "file_name": n, "width": 64, "height": 48} for i, n in enumerate(ids)]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4.25, 4, 20.5, 10]},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [1, 2, 30, 40],
         "attributes": {"occluded": True}},
        {"id": 3, "image_id": 3, "category_id": 1,
         "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]], "bbox": [10, 10, 20, 20]},
        {"id": 4, "image_id": 4, "category_id": 2, "bbox": [0, 0, 8, 8]},
    ]  # fmt: skip
    # a COCO file built with pycocotools imports
    built = COCO()
    built.dataset = coco(images, anns)
    built.createIndex()
    imp(lake_dir, write(tmp_path, built.dataset), root)
    evs = {e["asset_id"]: e for e in events(lake_dir)}
    assert len(evs) == 4
    # review: approve three, reject the last, fix it, resubmit, approve it
    last = evs[ids["img3.png"]]["event_id"]
    review_job.main(["--approve", "--reviewer", "rev", "--lake", lake_dir,
                     "--where", f"event_id != '{last}'"])  # fmt: skip
    review_job.main(["--reject", "--reviewer", "rev", "--ids", last, "--lake", lake_dir,
                     "--comment", "too small"])  # fmt: skip
    with pytest.raises(SystemExit) as e:  # a rejected label cannot be approved
        review_job.main(["--approve", "--reviewer", "rev", "--ids", last, "--lake", lake_dir])
    assert e.value.code == 2
    assert "is rejected (needs submitted)" in capsys.readouterr().err
    for step in ("--fix", "--resubmit", "--approve"):
        review_job.main([step, "--reviewer", "rev", "--ids", last, "--lake", lake_dir])
    labels = Lake(lake_dir).table("labels").to_pylist()
    assert len(labels) == 4
    assert {r["approved_by"] for r in labels} == {"rev"}
    # export -> pycocotools loads it -> import as another annotator: the same payloads
    out = tmp_path / "export"
    export_job.main(["--format", "coco", "--out", str(out), "--where", "width = 64",
                     "--lake", lake_dir])  # fmt: skip
    loaded = COCO(str(coco_file(out)))
    assert len(loaded.getImgIds()) == 4
    assert len(loaded.getAnnIds()) == 4
    assert sorted(c["name"] for c in loaded.loadCats(loaded.getCatIds())) == ["bird", "cat", "dog"]
    # file names under images/, as CVAT's and Datumaro's COCO layouts have them
    assert all((out / "images" / loaded.imgs[i]["file_name"]).exists() for i in loaded.getImgIds())
    import_job.main([str(coco_file(out)), "--format", "coco", "--annotator", "ann2",
                     "--lake", lake_dir])  # matched by asset id: no image root needed  # fmt: skip
    again = {(e["asset_id"], e["payload"]) for e in events(lake_dir)
             if e["annotator"] == "ann2"}  # fmt: skip
    assert again == {(r["asset_id"], r["payload"]) for r in labels}


def test_export_streams_in_chunks_with_the_same_result(labelled_lake, tmp_path):
    lake_dir, root, ids = labelled_lake
    images = [{"id": i + 1, "file_name": n, "width": 64, "height": 48} for i, n in enumerate(ids)]
    anns = [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, 5 + i, 5]}
            for i in range(4)]  # fmt: skip
    imp(lake_dir, write(tmp_path, coco(images, anns)), root)
    review_job.main(["--approve", "--reviewer", "r", "--where", "kind = 'box'", "--lake", lake_dir])
    outs = []
    for chunk in ("1", "3", "1000"):
        out = tmp_path / f"chunk{chunk}"
        export_job.main(["--format", "coco", "--out", str(out), "--where", "width = 64",
                         "--lake", lake_dir, "--chunk", chunk])  # fmt: skip
        outs.append(json.loads(coco_file(out).read_text()))
    assert outs[0] == outs[1] == outs[2]
    assert len(outs[0]["images"]) == 4
    assert len(outs[0]["annotations"]) == 4


def test_a_label_studio_file_is_not_coco_and_vice_versa(labelled_lake, tmp_path, capsys):
    lake_dir, root, _ = labelled_lake
    with pytest.raises(SystemExit) as e:
        imp(lake_dir, write(tmp_path, coco([], [])), root, "ann1", "labelstudio")
    assert e.value.code == 2
    assert "not a Label Studio JSON export" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        imp(lake_dir, write(tmp_path, [{"data": {"image": "x.png"}}]), root)
    assert "not COCO" in capsys.readouterr().err
    assert not Lake(lake_dir).exists("label_events")


def test_an_image_keeps_one_class_the_one_approved_last(labelled_lake, tmp_path, capsys):
    import json as _json

    lake_dir, _, ids = labelled_lake
    asset = next(iter(ids.values()))
    for who, cls in (("ann1", "cat"), ("ann2", "dog")):
        task = [{"id": 1, "data": {"image": "/data/upload/1/x.png", "asset_id": asset},
                 "annotations": [{"result": [{"from_name": "class", "type": "choices",
                                              "value": {"choices": [cls]}}]}]}]  # fmt: skip
        path = tmp_path / f"{who}.json"
        path.write_text(_json.dumps(task))
        import_job.main([str(path), "--format", "labelstudio", "--annotator", who,
                         "--lake", lake_dir])  # fmt: skip
    review_job.main(["--approve", "--reviewer", "r", "--where", "annotator = 'ann1'",
                     "--lake", lake_dir])  # fmt: skip
    review_job.main(["--approve", "--reviewer", "r", "--where", "annotator = 'ann2'",
                     "--lake", lake_dir])  # fmt: skip
    labels = Lake(lake_dir).table("labels").to_pylist()
    assert [(r["asset_id"], r["class_name"]) for r in labels] == [(asset, "dog")]
