"""YOLO, CVAT and class-folder import (validated, into the ledger); YOLO and CVAT export
round trips."""

import os
import shutil

import pytest
import yaml

from jobs import export as export_job
from jobs import import_labels as import_job
from jobs import review as review_job
from smartray import Lake


def imp(lake_dir, path, fmt, annotator="ann1", *extra):
    import_job.main([str(path), "--format", fmt, "--annotator", annotator, "--lake", lake_dir,
                     *extra])  # fmt: skip


def events(lake_dir, annotator=None):
    rows = Lake(lake_dir).table("label_events").to_pylist()
    return [r for r in rows if annotator is None or r["annotator"] == annotator]


def quarantined(lake_dir):
    rows = Lake(lake_dir).table("quarantine").to_pylist()
    return {r["detail"].split(":")[0]: r["reason"] for r in rows if r["stage"] == "label_import"}


def round_trip(lake_dir, tmp_path, fmt, label_file):
    """Approves everything, exports in `fmt`, imports the export as ann2: the payloads of
    `labels` come back unchanged."""
    review_job.main(["--approve", "--reviewer", "r", "--where", "kind != ''", "--lake", lake_dir])
    labels = Lake(lake_dir).table("labels").to_pylist()
    out = tmp_path / f"export-{fmt}"
    export_job.main(["--format", fmt, "--out", str(out), "--where", "width = 64",
                     "--lake", lake_dir])  # fmt: skip
    imp(lake_dir, out / label_file if label_file else out, fmt, "ann2")  # by asset id
    again = {(e["asset_id"], e["payload"]) for e in events(lake_dir, "ann2")}
    assert again == {(r["asset_id"], r["payload"]) for r in labels}
    return out, labels


def yolo_set(tmp_path, root, labels, names=("cat", "dog", "bird")):
    """A YOLO dataset of the fixture's images: {stem: label file text}."""
    base = tmp_path / "yolo"
    (base / "labels").mkdir(parents=True)
    shutil.copytree(root, base / "images")
    (base / "data.yaml").write_text(yaml.safe_dump({"train": "images", "val": "images",
                                                    "names": names}))  # fmt: skip
    for stem, text in labels.items():
        (base / "labels" / f"{stem}.txt").write_text(text)
    return base


def test_yolo_imports_boxes_polygons_and_scores_and_round_trips(labelled_lake, tmp_path):
    lake_dir, root, ids = labelled_lake
    base = yolo_set(tmp_path, root, {
        "img0": "0 0.5 0.5 0.25 0.5\n",  # box 24,12 16x24
        "img1": "1 0.1 0.1 0.5 0.1 0.5 0.5\n\n",  # triangle
        "img2": "2 0.3 0.3 0.2 0.2 0.875\n",  # box and score
        "img3": "0 0.123456 0.654321 0.1 0.2\n1 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3 0.5\n",
    })  # fmt: skip
    imp(lake_dir, base, "yolo")  # no --image-root: the dataset root
    got = {(e["asset_id"], e["kind"], e["class_name"]) for e in events(lake_dir)}
    assert got == {(ids["img0.png"], "box", "cat"), (ids["img1.png"], "polygon", "dog"),
                   (ids["img2.png"], "box", "bird"), (ids["img3.png"], "box", "cat"),
                   (ids["img3.png"], "polygon", "dog")}  # fmt: skip
    payloads = {e["asset_id"]: e["payload"] for e in events(lake_dir)}
    assert '"bbox":[24.0,12.0,16.0,24.0]' in payloads[ids["img0.png"]]
    assert '"score":0.875' in payloads[ids["img2.png"]]
    assert not Lake(lake_dir).exists("quarantine")
    out, _ = round_trip(lake_dir, tmp_path, "yolo", None)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "cat", 1: "dog", 2: "bird"}
    assert data["nc"] == 3
    assert "path" not in data
    aid = ids["img0.png"]
    assert (out / "labels" / f"{aid}.txt").read_text() == "0 0.5 0.5 0.25 0.5\n"
    assert (out / "images" / f"{aid}.png").exists()
    # the same set through data.yaml itself, with the root given: nothing new
    imp(lake_dir, out / "data.yaml", "yolo", "ann2", "--image-root", str(out))
    assert len(events(lake_dir, "ann2")) == 5


def test_yolo_bad_lines_are_quarantined_with_a_reason(labelled_lake, tmp_path, capsys):
    lake_dir, root, _ = labelled_lake
    base = yolo_set(tmp_path, root, {
        "img0": "5 0.5 0.5 0.1 0.1\n0 0.9 0.9 0.5 0.5\n0 0.5 oops 1 1\n1 0.5 0.5\n"
                "1 0.5 0.5 0.2 0.2\n",
        "stranger": "0 0.5 0.5 0.1 0.1\n",
    }, names={0: "cat", 1: "dog"})  # fmt: skip
    imp(lake_dir, base, "yolo")
    assert "1 object(s) on 1 asset(s) imported" in capsys.readouterr().out
    assert [e["class_name"] for e in events(lake_dir)] == ["dog"]
    q = quarantined(lake_dir)
    assert q["labels/img0.txt line 1"] == "unknown_class"
    assert q["labels/img0.txt line 2"] == "box_outside_image"
    assert q["labels/img0.txt line 3"] == "bad_entry"
    assert q["labels/img0.txt line 4"] == "bad_entry"
    assert q["labels/stranger.txt line 1"] == "unknown_asset"


@pytest.mark.parametrize(("content", "message"), [(None, "no data.yaml"),
                                                  ("names: [cat\n", "not YAML"),
                                                  ("nc: 2\n", "no 'names'")])  # fmt: skip
def test_an_unusable_yolo_set_exits_2_and_writes_nothing(labelled_lake, tmp_path, capsys,
                                                        content, message):  # fmt: skip
    lake_dir, _, _ = labelled_lake
    (tmp_path / "set" / "labels").mkdir(parents=True)
    if content is not None:
        (tmp_path / "set" / "data.yaml").write_text(content)
    with pytest.raises(SystemExit) as e:
        imp(lake_dir, tmp_path / "set", "yolo")
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not Lake(lake_dir).exists("label_events")


CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels>
    <label><name>dog</name><attributes><attribute><name>occluded</name>
      <input_type>checkbox</input_type></attribute></attributes></label>
  </labels></task></meta>
  <image id="0" name="img0.png" width="64" height="48">
    <box label="cat" occluded="0" xtl="4.25" ytl="4" xbr="24.75" ybr="14" z_order="0"/>
    <tag label="cat" source="manual"><attribute name="smartray_kind">class</attribute></tag>
  </image>
  <image id="1" name="img1.png" width="64" height="48">
    <box label="dog" occluded="0" xtl="1" ytl="2" xbr="31" ybr="42">
      <attribute name="occluded">true</attribute></box>
    <tag label="bird"/>
  </image>
  <image id="2" name="img2.png" width="64" height="48">
    <polygon label="cat" occluded="0" points="10,10;30.5,10;30.5,30;10,30.33"/>
  </image>
  <image id="3" name="img3.png" width="64" height="48">
    <box label="dog" occluded="1" xtl="0" ytl="0" xbr="8" ybr="8">
      <attribute name="smartray_score">0.5</attribute></box>
  </image>
</annotations>
"""


def test_cvat_imports_boxes_polygons_tags_and_classes_and_round_trips(labelled_lake, tmp_path):
    lake_dir, root, ids = labelled_lake
    path = tmp_path / "annotations.xml"
    path.write_text(CVAT)
    imp(lake_dir, path, "cvat", "ann1", "--image-root", str(root))
    got = {(e["asset_id"], e["kind"], e["class_name"]) for e in events(lake_dir)}
    assert got == {(ids["img0.png"], "box", "cat"), (ids["img0.png"], "class", "cat"),
                   (ids["img1.png"], "box", "dog"), (ids["img1.png"], "tag", "bird"),
                   (ids["img2.png"], "polygon", "cat"),
                   (ids["img3.png"], "box", "dog")}  # fmt: skip
    dogs = [e["payload"] for e in events(lake_dir) if e["class_name"] == "dog"]
    assert all('"attributes":{"occluded":true}' in p for p in dogs)  # attribute, CVAT's flag
    assert sum('"score":0.5' in p for p in dogs) == 1
    assert not Lake(lake_dir).exists("quarantine")
    out, labels = round_trip(lake_dir, tmp_path, "cvat", "annotations.xml")
    assert len(labels) == 6
    text = (out / "annotations.xml").read_text()
    assert f'name="{ids["img0.png"]}.png"' in text  # under images/, as CVAT has it
    assert '<attribute name="smartray_kind">class</attribute>' in text


def test_cvat_bad_entries_are_quarantined_with_a_reason(labelled_lake, tmp_path):
    lake_dir, root, _ = labelled_lake
    doc = """<annotations>
      <image id="0" name="img0.png" width="64" height="48">
        <box label="zebra" xtl="1" ytl="1" xbr="5" ybr="5"/>
        <box label="cat" xtl="50" ytl="40" xbr="80" ybr="70"/>
        <mask label="cat" rle="1, 2" left="0" top="0" width="2" height="2"/>
        <polygon label="cat" points="1,1;2,2"/>
        <box label="cat" xtl="1" ytl="1"/>
        <box label="cat" xtl="1" ytl="1" xbr="9" ybr="9"/>
      </image>
      <image id="1" name="not-in-the-lake.png"><tag label="cat"/></image>
      <image id="2" name="../img1.png"><tag label="cat"/></image>
    </annotations>"""
    (tmp_path / "not-in-the-lake.png").write_bytes(b"x")
    path = tmp_path / "bad.xml"
    path.write_text(doc)
    imp(lake_dir, path, "cvat", "ann1", "--image-root", str(root))
    assert [e["class_name"] for e in events(lake_dir)] == ["cat"]
    q = quarantined(lake_dir)
    assert q["image[0] box[0]"] == "unknown_class"
    assert q["image[0] box[1]"] == "box_outside_image"
    assert q["image[0] mask[2]"] == "bad_entry"
    assert q["image[0] polygon[3]"] == "bad_entry"
    assert q["image[0] box[4]"] == "bad_entry"
    assert q["image[1]"] == q["image[1] tag[0]"] == "unknown_asset"
    assert q["image[2]"] == "path_escape"


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotations><image id="0" name="&lol2;"/></annotations>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotations><image id="0" name="&xxe;"/></annotations>"""


@pytest.mark.parametrize(("content", "message"), [("{not xml", "not XML"), ("", "not XML"),
                                                  ("<tasks/>", "not CVAT"),
                                                  (BOMB, "refused"), (XXE, "refused")])  # fmt: skip
def test_an_unusable_cvat_file_exits_2_and_writes_nothing(labelled_lake, tmp_path, capsys,
                                                         content, message):  # fmt: skip
    lake_dir, root, _ = labelled_lake
    path = tmp_path / "annotations.xml"
    path.write_text(content)
    with pytest.raises(SystemExit) as e:
        imp(lake_dir, path, "cvat", "ann1", "--image-root", str(root))
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not Lake(lake_dir).exists("label_events")


def test_class_folders_import_as_classes_and_refuse_what_they_cannot(labelled_lake, tmp_path):
    lake_dir, root, ids = labelled_lake
    base = tmp_path / "classes"
    for cls, img in (("cat", "img0.png"), ("dog", "img1.png"), ("zebra", "img2.png")):
        (base / cls).mkdir(parents=True)
        shutil.copy(root / img, base / cls / img)
    outside = tmp_path / "outside.png"
    shutil.copy(root / "img3.png", outside)  # an asset, but outside the root
    os.symlink(outside, base / "cat" / "escape.png")
    (base / "dog" / "stranger.png").write_bytes(b"not in the lake")
    (base / "dog" / "notes.txt").write_text("not an image")
    (base / "README.md").write_text("not a class")
    os.symlink(tmp_path, base / "bird")  # a symlinked folder leaving the root: not walked
    imp(lake_dir, base, "folders")  # --image-root defaults to the folder itself
    got = {(e["asset_id"], e["kind"], e["class_name"]) for e in events(lake_dir)}
    assert got == {(ids["img0.png"], "class", "cat"), (ids["img1.png"], "class", "dog")}
    q = quarantined(lake_dir)
    assert q == {"zebra/img2.png": "unknown_class", "cat/escape.png": "path_escape",
                 "dog/stranger.png": "unknown_asset", "bird": "path_escape"}  # fmt: skip


def test_a_missing_class_folder_exits_2(labelled_lake, tmp_path, capsys):
    lake_dir, _, _ = labelled_lake
    with pytest.raises(SystemExit) as e:
        imp(lake_dir, tmp_path / "nowhere", "folders")
    assert e.value.code == 2
    assert "not a folder" in capsys.readouterr().err
