"""Real tool layouts, written here from the formats' specifications: Label Studio rotated
boxes and upload/local-files paths, COCO multi-part polygons and crowd RLE, CVAT rotated
boxes and project exports with subsets, YOLO's Darknet and classes.txt layouts; edge
clipping, object counts, in-file duplicates, and ledger identity across this change.
(Loading our exports in Datumaro: tests/integration/test_interop.py.)"""

import json
import shutil

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from jobs import export as export_job
from jobs import import_labels as import_job
from jobs import review as review_job
from smartray import Lake
from smartray.tables import ASSET_SOURCES, LakeLocation
from smartray.tables.commit import commit_rows
from smartray.testing import rows

W, H = 64, 48  # the fixture's images


def coco_file(out):
    """Where a COCO export's annotations are (CVAT's and Datumaro's layout)."""
    return out / "annotations" / "instances_default.json"


def imp(lake_dir, path, fmt, annotator="ann1", *extra):
    import_job.main([str(path), "--format", fmt, "--annotator", annotator, "--lake", lake_dir,
                     *extra])  # fmt: skip


def payloads(lake_dir, annotator="ann1"):
    return [json.loads(e["payload"]) for e in Lake(lake_dir).table("label_events").to_pylist()
            if e["annotator"] == annotator]  # fmt: skip


def quarantined(lake_dir):
    rows_ = Lake(lake_dir).table("quarantine").to_pylist()
    return {r["detail"].split(": ")[0]: (r["reason"], r["detail"]) for r in rows_}


def approve_and_export(lake_dir, tmp_path, fmt, *extra):
    review_job.main(["--approve", "--reviewer", "r", "--where", "kind != ''", "--lake", lake_dir])
    out = tmp_path / f"export-{fmt}"
    export_job.main(["--format", fmt, "--out", str(out), "--where", "width = 64",
                     "--lake", lake_dir, *extra])  # fmt: skip
    return out


def ls_box(x, y, w, h, label="cat", rotation=None):
    value = {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": [label]}
    if rotation is not None:
        value["rotation"] = rotation
    return {"from_name": "box", "to_name": "image", "type": "rectanglelabels",
            "original_width": W, "original_height": H, "value": value}  # fmt: skip


def ls_export(tasks):
    """A Label Studio JSON export: [(data, [result, ...]), ...]."""
    return [{"id": i + 1, "data": data, "annotations": [{"id": i, "result": results}]}
            for i, (data, results) in enumerate(tasks)]  # fmt: skip


def write_json(tmp_path, doc, name="labels.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


# --- Label Studio ---------------------------------------------------------------------


def test_label_studio_rotated_box_is_kept_and_written_back(labelled_lake, tmp_path, capsys):
    lake_dir, _, ids = labelled_lake
    aid = ids["img0.png"]
    # Label Studio: x, y the top-left corner, rotated 30 degrees clockwise about it
    path = write_json(tmp_path, ls_export([({"image": "x.png", "asset_id": aid},
                                            [ls_box(25, 25, 25, 25, rotation=30)])]))  # fmt: skip
    imp(lake_dir, path, "labelstudio")
    [p] = payloads(lake_dir)
    # stored as CVAT does: the box before rotation, turned about its centre
    assert p["rotation"] == 30.0
    assert p["bbox"] == [11.93, 15.2, 16.0, 12.0]
    from smartray.annotate.geometry import box_corners

    corners = box_corners(tuple(p["bbox"]), 30.0)
    assert corners[0] == pytest.approx((16.0, 12.0), abs=0.01)  # Label Studio's (x, y)
    out = approve_and_export(lake_dir, tmp_path, "labelstudio")
    [task] = [t for t in json.loads((out / "tasks.json").read_text()) if "predictions" in t]
    value = task["predictions"][0]["result"][0]["value"]
    assert value["rotation"] == 30.0
    assert value["x"] == pytest.approx(25, abs=0.02)
    assert value["y"] == pytest.approx(25, abs=0.03)
    back = write_json(tmp_path, ls_export([(task["data"], task["predictions"][0]["result"])]),
                      "back.json")  # fmt: skip
    imp(lake_dir, back, "labelstudio", "ann2")
    assert payloads(lake_dir, "ann2") == [p]
    # CVAT writes it with `rotation` and reads it back the same
    cvat = approve_and_export(lake_dir, tmp_path, "cvat")
    text = (cvat / "annotations.xml").read_text()
    assert 'xtl="11.93" ytl="15.2" xbr="27.93" ybr="27.2" rotation="30"' in text
    imp(lake_dir, cvat / "annotations.xml", "cvat", "ann3")
    assert payloads(lake_dir, "ann3") == [p]
    # COCO and YOLO have no rotated box: left out with a reason unless asked
    capsys.readouterr()
    coco = approve_and_export(lake_dir, tmp_path, "coco")
    assert "0 label object(s)" in capsys.readouterr().out
    assert json.loads((coco_file(coco)).read_text())["annotations"] == []
    yolo = approve_and_export(lake_dir, tmp_path, "yolo", "--rotated", "obb")
    line = (yolo / "labels" / f"{aid}.txt").read_text().splitlines()[0].split()
    assert len(line) == 9  # class x1 y1 ... x4 y4
    assert float(line[1]) * W == pytest.approx(16.0, abs=0.01)
    assert float(line[2]) * H == pytest.approx(12.0, abs=0.01)


def test_a_rotated_box_export_is_refused_with_a_reason(labelled_lake, tmp_path, capsys):
    lake_dir, _, ids = labelled_lake
    path = write_json(tmp_path, ls_export([({"image": "x", "asset_id": ids["img0.png"]},
                                            [ls_box(25, 25, 25, 25, rotation=-45),
                                             ls_box(10, 10, 20, 20, "dog")])]))  # fmt: skip
    imp(lake_dir, path, "labelstudio")
    assert sorted(p.get("rotation", 0) for p in payloads(lake_dir)) == [0, 315.0]
    capsys.readouterr()
    approve_and_export(lake_dir, tmp_path, "yolo")
    out = capsys.readouterr().out
    assert "1 label object(s)" in out
    assert "1 left out (not_in_format 1)" in out
    with pytest.raises(SystemExit) as e:
        approve_and_export(lake_dir, tmp_path, "coco", "--rotated", "obb")
    assert e.value.code == 2


@pytest.fixture
def sources(labelled_lake):
    """asset_sources rows: img0..3 ingested from photos/img0.png..., and img3's name twice
    (another asset ingested from elsewhere/img3.png too)."""
    lake_dir, _, ids = labelled_lake
    pairs = [(aid, f"file:///data/photos/{name}") for name, aid in ids.items()]
    pairs.append((ids["img2.png"], "file:///data/elsewhere/img3.png"))
    table = rows(ASSET_SOURCES, n=len(pairs))
    table = table.set_column(0, "asset_id", [[a for a, _ in pairs]])
    table = table.set_column(1, "source_uri", [[u for _, u in pairs]])
    commit_rows(LakeLocation.from_uri(lake_dir), ASSET_SOURCES, table, app_id="seed-sources")
    return labelled_lake


def test_label_studio_uploads_and_local_files_are_matched(sources, tmp_path):
    lake_dir, root, ids = sources
    box = ls_box(10, 10, 20, 20)
    path = write_json(tmp_path, ls_export([
        ({"image": "/data/upload/29/1a2b3c4d-img0.png"}, [box]),  # by original file name
        ({"image": "/data/upload/29/img1.png"}, [box]),  # older Label Studio: no prefix
        ({"image": "/data/upload/29/0badf00d-img3.png"}, [box, ls_box(5, 5, 5, 5)]),
        ({"image": "/data/upload/29/0badf00d-nowhere.png"}, [box]),
    ]))  # fmt: skip
    imp(lake_dir, path, "labelstudio")
    assert {e["asset_id"] for e in Lake(lake_dir).table("label_events").to_pylist()} == {
        ids["img0.png"], ids["img1.png"]}  # fmt: skip
    q = quarantined(lake_dir)
    reason, detail = q["tasks[2] (id 3)"]
    assert reason == "ambiguous_image"
    assert ids["img2.png"] in detail  # the candidates
    assert ids["img3.png"] in detail
    assert q["tasks[2] (id 3) annotation 0 result 1"][0] == "ambiguous_image"
    assert q["tasks[3] (id 4)"][0] == "unknown_asset"
    # local files storage: the path under --image-root (the document root)
    local = write_json(tmp_path, ls_export([
        ({"image": "/data/local-files/?d=img2.png"}, [box]),
        ({"image": "/data/local-files/?d=../outside.png"}, [box]),
    ]), "local.json")  # fmt: skip
    imp(lake_dir, local, "labelstudio", "ann2", "--image-root", str(root))
    assert [e["asset_id"] for e in Lake(lake_dir).table("label_events").to_pylist()
            if e["annotator"] == "ann2"] == [ids["img2.png"]]  # fmt: skip
    assert quarantined(lake_dir)["tasks[1] (id 2)"][0] == "path_escape"


def test_summaries_count_objects_clip_edges_and_name_duplicates(labelled_lake, tmp_path,
                                                                capsys):  # fmt: skip
    lake_dir, _, ids = labelled_lake
    aid = ids["img0.png"]
    path = write_json(tmp_path, ls_export([
        ({"image": "x", "asset_id": aid}, [
            ls_box(90, 10, 15.625, 20),  # 57.6..67.6 px: 3.6 px past the right edge
            ls_box(10, 10, 20, 20), ls_box(10, 10, 20, 20),  # the same object twice
            ls_box(80, 10, 70, 20),  # 44.8 px past the edge: refused
        ]),
        ({"image": "http://169.254.169.254/x.png"}, [ls_box(1, 1, 2, 2)] * 3),
    ]))  # fmt: skip
    imp(lake_dir, path, "labelstudio")
    out = capsys.readouterr().out
    assert "2 object(s) on 1 asset(s) imported, 0 already in the ledger, " in out
    assert "1 duplicate(s) in the file, 1 clipped to the image edge; " in out
    assert "4 refused (box_outside_image 1, url_not_allowed 3); 1 image(s)/task(s)" in out
    clipped = next(p for p in payloads(lake_dir) if p["bbox"][0] == 57.6)
    assert clipped["bbox"] == [57.6, 4.8, 6.4, 9.6]
    # a tighter tolerance refuses it
    imp(lake_dir, path, "labelstudio", "ann2", "--edge-px", "1", "--edge-fraction", "0")
    assert "box_outside_image 2" in capsys.readouterr().out


# --- COCO -----------------------------------------------------------------------------


def coco_doc(annotations, file_name="img0.png"):
    return {"images": [{"id": 1, "file_name": file_name, "width": W, "height": H}],
            "annotations": annotations,
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}  # fmt: skip


def test_coco_multi_part_polygon_keeps_every_part(labelled_lake, tmp_path):
    lake_dir, root, _ = labelled_lake
    parts = [[2, 2, 10, 2, 10, 10], [20, 20, 30, 20, 30, 30, 20, 30], [40, 5, 50, 5, 45, 15]]
    path = write_json(tmp_path, coco_doc([{"id": 1, "image_id": 1, "category_id": 1,
                                           "segmentation": parts, "bbox": [2, 2, 48, 28],
                                           "area": 182, "iscrowd": 0}]))  # fmt: skip
    imp(lake_dir, path, "coco", "ann1", "--image-root", str(root))
    [p] = payloads(lake_dir)
    assert p["kind"] == "polygon"
    assert len(p["parts"]) == 2
    out = approve_and_export(lake_dir, tmp_path, "coco")
    [a] = json.loads((coco_file(out)).read_text())["annotations"]
    assert [[float(v) for v in part] for part in parts] == a["segmentation"]
    assert a["bbox"] == [2.0, 2.0, 48.0, 28.0]
    assert a["area"] == 32 + 100 + 50
    imp(lake_dir, coco_file(out), "coco", "ann2")
    assert payloads(lake_dir, "ann2") == [p]


def rle_of(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def test_coco_crowd_rle_is_kept_as_crowd(labelled_lake, tmp_path):
    lake_dir, root, _ = labelled_lake
    crowd = np.zeros((H, W), bool)
    crowd[10:20, 5:30] = True
    other = np.zeros((H, W), bool)
    other[30:40, 40:60] = True
    runs, flat, value, n = [], other.flatten(order="F"), False, 0  # uncompressed RLE
    for v in flat:
        if v != value:
            runs.append(n)
            value, n = v, 0
        n += 1
    runs.append(n)
    path = write_json(tmp_path, coco_doc([
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": rle_of(crowd),
         "bbox": [5, 10, 25, 10], "area": 250},
        {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 1,
         "segmentation": {"size": [H, W], "counts": runs}, "bbox": [40, 30, 20, 10],
         "area": 200},
        {"id": 3, "image_id": 1, "category_id": 2, "iscrowd": 0, "bbox": [1, 1, 5, 5],
         "segmentation": []},
    ]))  # fmt: skip
    imp(lake_dir, path, "coco", "ann1", "--image-root", str(root))
    got = payloads(lake_dir)
    crowds = [p for p in got if p.get("iscrowd")]
    assert len(crowds) == 2
    assert {p["rle"]["counts"] for p in crowds} == {rle_of(crowd)["counts"],
                                                    rle_of(other)["counts"]}  # fmt: skip
    plain = next(p for p in got if not p.get("iscrowd"))
    assert plain == {"kind": "box", "class": "dog", "bbox": [1.0, 1.0, 5.0, 5.0]}
    out = approve_and_export(lake_dir, tmp_path, "coco")
    anns = json.loads((coco_file(out)).read_text())["annotations"]
    assert sorted(a["iscrowd"] for a in anns) == [0, 1, 1]
    exported = {a["segmentation"]["counts"] for a in anns if a["iscrowd"]}
    assert exported == {p["rle"]["counts"] for p in crowds}
    assert sorted(a["area"] for a in anns if a["iscrowd"]) == [200, 250]
    imp(lake_dir, coco_file(out), "coco", "ann2")
    assert sorted(map(json.dumps, payloads(lake_dir, "ann2"))) == sorted(map(json.dumps, got))


def test_coco_export_evaluates_in_pycocotools_bbox_and_segm(labelled_lake, tmp_path):
    lake_dir, root, ids = labelled_lake
    mask = np.zeros((H, W), bool)
    mask[5:15, 5:25] = True
    doc = {"images": [{"id": i, "file_name": n, "width": W, "height": H}
                      for i, n in enumerate(ids, 1)],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 10]},
               {"id": 2, "image_id": 2, "category_id": 2, "bbox": [10, 10, 30, 20],
                "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]]},
               {"id": 3, "image_id": 3, "category_id": 1, "bbox": [5, 5, 20, 10],
                "segmentation": rle_of(mask), "iscrowd": 1},
               {"id": 4, "image_id": 3, "category_id": 2, "bbox": [30, 20, 10, 10]}],
           "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}  # fmt: skip
    imp(lake_dir, write_json(tmp_path, doc), "coco", "ann1", "--image-root", str(root))
    out = approve_and_export(lake_dir, tmp_path, "coco")
    gt = COCO(str(coco_file(out)))
    assert len(gt.getAnnIds()) == 4
    assert all("segmentation" in a for a in gt.dataset["annotations"])
    # the ground truth's own objects as detections score AP 1 in both evaluations
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": gt.annToRLE(a), "score": 1.0}
            for a in gt.dataset["annotations"] if not a["iscrowd"]]  # fmt: skip
    for kind in ("bbox", "segm"):
        res = gt.loadRes([{k: v for k, v in d.items() if kind == "segm" or k != "segmentation"}
                          for d in dets])  # fmt: skip
        ev = COCOeval(gt, res, kind)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0), kind
    # and the boxes come back as boxes
    imp(lake_dir, coco_file(out), "coco", "ann2")
    assert sorted(p["kind"] for p in payloads(lake_dir, "ann2")) == ["box", "box", "box",
                                                                      "polygon"]  # fmt: skip


def test_coco_from_cvat_with_rotation_attribute_is_a_rotated_box(labelled_lake, tmp_path):
    lake_dir, root, _ = labelled_lake
    path = write_json(tmp_path, coco_doc([
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "iscrowd": 0,
         "segmentation": [], "attributes": {"occluded": False, "rotation": 15.0}},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [30, 20, 10, 10], "iscrowd": 0,
         "segmentation": [], "attributes": {"occluded": False, "rotation": 0.0}},
    ]))  # fmt: skip
    imp(lake_dir, path, "coco", "ann1", "--image-root", str(root))
    got = sorted(payloads(lake_dir), key=lambda p: p["class"])
    assert got[0]["rotation"] == 15.0
    assert got[0]["attributes"] == {"occluded": False}
    assert "rotation" not in got[1]  # upright: as it was read before
    assert got[1]["attributes"] == {"occluded": False, "rotation": 0.0}


# --- CVAT -----------------------------------------------------------------------------


def test_cvat_export_names_images_as_cvat_and_datumaro_look_them_up(labelled_lake, tmp_path):
    lake_dir, root, _ = labelled_lake
    path = write_json(tmp_path, coco_doc([{"id": 1, "image_id": 1, "category_id": 1,
                                           "bbox": [4, 4, 20, 10]}]))  # fmt: skip
    imp(lake_dir, path, "coco", "ann1", "--image-root", str(root))
    out = approve_and_export(lake_dir, tmp_path, "cvat")
    import defusedxml.ElementTree as safe_et

    names = [im.get("name") for im in safe_et.parse(out / "annotations.xml").iter("image")]
    assert len(names) == 4
    assert all((out / "images" / n).is_file() for n in names)  # CVAT's layout: images/<name>


CVAT_PROJECT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><project><name>p</name><labels>
    <label><name>cat</name><type>any</type><attributes/></label>
    <label><name>dog</name><type>any</type><attributes/></label>
  </labels></project></meta>
  <image id="0" name="a.png" subset="Train" task_id="1" width="64" height="48">
    <box label="cat" source="manual" occluded="0" xtl="4" ytl="4" xbr="24" ybr="14"
         rotation="45.5" z_order="0"/>
  </image>
  <image id="1" name="a.png" subset="Validation" task_id="2" width="64" height="48">
    <box label="dog" source="manual" occluded="0" xtl="1" ytl="2" xbr="31" ybr="42" z_order="0"/>
  </image>
</annotations>
"""


def test_cvat_project_export_with_subsets_and_rotated_boxes(labelled_lake, tmp_path):
    lake_dir, root, ids = labelled_lake
    export = tmp_path / "project"
    for subset, src in (("Train", "img0.png"), ("Validation", "img1.png")):
        (export / "images" / subset).mkdir(parents=True)
        shutil.copy(root / src, export / "images" / subset / "a.png")  # one name, two subsets
    (export / "annotations.xml").write_text(CVAT_PROJECT)
    imp(lake_dir, export / "annotations.xml", "cvat", "ann1", "--image-root", str(export))
    got = {e["asset_id"]: json.loads(e["payload"])
           for e in Lake(lake_dir).table("label_events").to_pylist()}  # fmt: skip
    assert got[ids["img0.png"]]["rotation"] == 45.5
    assert got[ids["img0.png"]]["bbox"] == [4.0, 4.0, 20.0, 10.0]
    assert got[ids["img1.png"]]["class"] == "dog"
    assert not Lake(lake_dir).exists("quarantine")
    # no --image-root: the XML's folder is the export root
    imp(lake_dir, export / "annotations.xml", "cvat", "ann2")
    assert len(payloads(lake_dir, "ann2")) == 2


# --- YOLO -----------------------------------------------------------------------------


def test_yolo_darknet_layout_imports(labelled_lake, tmp_path):
    """CVAT's YOLO 1.1 / Darknet: obj.data, obj.names, train.txt, obj_train_data/."""
    lake_dir, root, ids = labelled_lake
    base = tmp_path / "darknet"
    (base / "obj_train_data").mkdir(parents=True)
    (base / "obj.names").write_text("cat\ndog\nbird\n")
    (base / "obj.data").write_text("classes = 3\ntrain = data/train.txt\n"
                                   "names = data/obj.names\nbackup = backup/\n")  # fmt: skip
    (base / "train.txt").write_text("data/obj_train_data/img0.png\ndata/obj_train_data/img1.png\n")
    for name, text in (("img0", "0 0.5 0.5 0.25 0.5\n"), ("img1", "2 0.25 0.25 0.1 0.1\n")):
        shutil.copy(root / f"{name}.png", base / "obj_train_data")
        (base / "obj_train_data" / f"{name}.txt").write_text(text)
    imp(lake_dir, base, "yolo")
    got = {(e["asset_id"], e["class_name"]) for e in Lake(lake_dir).table("label_events")
           .to_pylist()}  # fmt: skip
    assert got == {(ids["img0.png"], "cat"), (ids["img1.png"], "bird")}
    imp(lake_dir, base / "obj.data", "yolo", "ann2")  # the file itself names the dataset
    assert len(payloads(lake_dir, "ann2")) == 2


def test_yolo_classes_txt_layout_imports(labelled_lake, tmp_path):
    """The Label Studio converter's YOLO export: classes.txt, images/, labels/."""
    lake_dir, root, ids = labelled_lake
    base = tmp_path / "ls-yolo"
    (base / "labels").mkdir(parents=True)
    shutil.copytree(root, base / "images")
    (base / "classes.txt").write_text("dog\ncat\n")
    (base / "notes.json").write_text('{"categories": [{"id": 0, "name": "dog"}]}')
    (base / "labels" / "img2.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    imp(lake_dir, base, "yolo")
    [e] = Lake(lake_dir).table("label_events").to_pylist()
    assert (e["asset_id"], e["class_name"]) == (ids["img2.png"], "cat")


def test_yolo_without_any_names_file_exits_2(labelled_lake, tmp_path, capsys):
    lake_dir, _, _ = labelled_lake
    (tmp_path / "set" / "labels").mkdir(parents=True)
    with pytest.raises(SystemExit) as e:
        imp(lake_dir, tmp_path / "set", "yolo")
    assert e.value.code == 2
    assert "no data.yaml, obj.data, obj.names or classes.txt" in capsys.readouterr().err


# --- identity ---------------------------------------------------------------------------

# What the code before rotated boxes, parts and crowds wrote for these objects: the
# payloads (and so the event ids) of labels already in ledgers must not change.
BEFORE = {
    "box": '{"bbox":[6.4,12.0,32.0,24.0],"class":"dog","kind":"box"}',
    "polygon": '{"class":"bird","kind":"polygon","points":[[0.0,0.0],[32.0,0.0],[32.0,24.0]]}',
    "class": '{"class":"cat","kind":"class"}',
}


def test_labels_imported_before_keep_their_identity(labelled_lake, tmp_path, capsys):
    lake_dir, _, ids = labelled_lake
    aid = ids["img0.png"]
    results = [
        {"from_name": "class", "to_name": "image", "type": "choices",
         "value": {"choices": ["cat"]}},
        {**ls_box(10, 25, 50, 50, "dog"), "value": {"x": 10, "y": 25, "width": 50, "height": 50,
                                                   "rotation": 0, "rectanglelabels": ["dog"]}},
        {"from_name": "polygon", "to_name": "image", "type": "polygonlabels",
         "original_width": W, "original_height": H,
         "value": {"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["bird"]}},
    ]  # fmt: skip
    path = write_json(tmp_path, ls_export([({"image": "x", "asset_id": aid}, results)]))
    imp(lake_dir, path, "labelstudio")
    got = sorted(e["payload"] for e in Lake(lake_dir).table("label_events").to_pylist())
    assert got == sorted(BEFORE.values())
    # and a COCO file with a plain box (no segmentation, iscrowd 0) and one-part polygon
    doc = {"images": [{"id": 1, "file_name": f"{aid}.png"}],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 2, "bbox": [6.4, 12, 32, 24],
                "iscrowd": 0},
               {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 32, 24], "iscrowd": 0,
                "segmentation": [[0, 0, 32, 0, 32, 24]]}],
           "categories": [{"id": 2, "name": "dog"}, {"id": 3, "name": "bird"}]}  # fmt: skip
    coco = write_json(tmp_path, doc, "coco.json")
    capsys.readouterr()
    imp(lake_dir, coco, "coco")
    assert "0 object(s) on 1 asset(s) imported, 2 already in the ledger" in capsys.readouterr().out


def test_what_a_format_cannot_hold_is_left_out_and_counted(labelled_lake, tmp_path, capsys):
    lake_dir, root, _ = labelled_lake
    crowd = np.zeros((H, W), bool)
    crowd[10:20, 5:30] = True
    path = write_json(tmp_path, coco_doc([
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": rle_of(crowd),
         "bbox": [5, 10, 25, 10]},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [2, 2, 28, 28],
         "segmentation": [[2, 2, 10, 2, 10, 10], [20, 20, 30, 20, 30, 30, 20, 30]]},
        {"id": 3, "image_id": 1, "category_id": 2, "bbox": [40, 30, 10, 10]},
    ]))  # fmt: skip
    imp(lake_dir, path, "coco", "ann1", "--image-root", str(root))
    capsys.readouterr()
    for fmt, written in (("yolo", 1), ("cvat", 1), ("labelstudio", 1), ("coco", 3)):
        approve_and_export(lake_dir, tmp_path, fmt)
        out = capsys.readouterr().out
        assert f"{written} label object(s)" in out, out
        left = 3 - written
        assert (f"; {left} left out (not_in_format {left})" in out) == bool(left), out


def test_geometry_conventions():
    from smartray.annotate.geometry import (
        from_corner_rotation,
        norm_angle,
        to_corner_rotation,
    )
    from smartray.annotate.model import Annotation

    box = (10.0, 20.0, 30.0, 8.0)
    for angle in (0, 15, 90, 181.5, 359.99):
        back = to_corner_rotation(from_corner_rotation(box, angle), angle)
        assert back == pytest.approx(box)
    assert from_corner_rotation((0, 0, 2, 2), 90) == pytest.approx((-2, 0, 2, 2))
    assert [norm_angle(a) for a in (-30, 360, 720.004, 359.999)] == [330.0, 0.0, 0.0, 0.0]
    a = Annotation.make("a", "box", "cat", bbox=(0, 0, 2, 2), rotation=-360)
    assert a.payload() == {"kind": "box", "class": "cat", "bbox": [0.0, 0.0, 2.0, 2.0]}
    r = Annotation.make("a", "box", "cat", bbox=(0, 0, 2, 2), rotation=45)
    assert Annotation.from_payload("a", r.payload_json()) == r
    assert r.xyxy() == pytest.approx((1 - 2**0.5, 1 - 2**0.5, 1 + 2**0.5, 1 + 2**0.5))
