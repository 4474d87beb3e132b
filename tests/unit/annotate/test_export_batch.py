"""`smartray export --batch EXPERIMENT:ROUND`: an active-learning round's picks, with the
model's class guesses as pre-annotations apart from the approved labels."""

import json
import xml.etree.ElementTree as ET

import pyarrow as pa
import pytest

from jobs import export as export_job
from jobs import import_labels as import_job
from jobs import review as review_job
from smartray import Lake
from smartray.annotate.export import parse_batch
from smartray.tables.catalog import BATCHES
from smartray.testing import rows

EXPERIMENT = "al:margin"  # holds a ':': --batch splits on the last one
CLASS = {"from_name": "class", "to_name": "image", "type": "choices"}


def choice(name):
    return {**CLASS, "value": {"choices": [name]}}


def import_ls(lake_dir, tmp_path, tasks, annotator, name):
    """Imports a Label Studio JSON export (a list of tasks) as `annotator`."""
    path = tmp_path / name
    path.write_text(json.dumps(tasks))
    import_job.main([str(path), "--format", "labelstudio", "--annotator", annotator,
                     "--lake", lake_dir])  # fmt: skip


def commit_batch(lake_dir, picks, *, model="m-1", round_=1):
    """Commits one round of `batches`: picks = [(asset id, class guessed, confidence)], in
    pick order; model None makes a cold-start round (no guesses)."""
    lake = Lake(lake_dir)
    version = lake.version("assets")
    table = []
    for rank, (aid, cls, conf) in enumerate(picks):
        row = rows(BATCHES, n=len(picks)).to_pylist()[rank]
        row.update(experiment=EXPERIMENT, round=round_, asset_id=aid, rank=rank,
                   model_id=model, predicted_class=cls if model else None,
                   predicted_class_id={"cat": 0, "dog": 1, "bird": 2}.get(cls) if model else None,
                   confidence=conf if model else None, assets_version=version)  # fmt: skip
        table.append(row)
    lake.session("select", {}).commit(BATCHES, pa.Table.from_pylist(table, BATCHES.schema))


@pytest.fixture
def batch_lake(labelled_lake, tmp_path):
    """The labelled lake with img0 approved as a `cat`, and round 1 of EXPERIMENT: img2,
    img0, img1 in that pick order, guessed zebra (no such class), dog 0.75 and bird 0.5."""
    lake_dir, _, ids = labelled_lake
    aid = [ids[f"img{i}.png"] for i in range(4)]
    import_ls(lake_dir, tmp_path, [{"id": 1, "data": {"image": "x", "asset_id": aid[0]},
                                    "annotations": [{"result": [choice("cat")]}]}],
              "ann1", "approved.json")  # fmt: skip
    review_job.main(["--approve", "--reviewer", "r", "--where", "kind != ''", "--lake", lake_dir])
    commit_batch(lake_dir, [(aid[2], "zebra", 0.25), (aid[0], "dog", 0.75), (aid[1], "bird", 0.5)])
    return lake_dir, aid


def export(lake_dir, tmp_path, fmt, batch=f"{EXPERIMENT}:1", *extra):
    out = tmp_path / f"export-{fmt}"
    export_job.main(["--format", fmt, "--out", str(out), "--batch", batch, "--lake", lake_dir,
                     *extra])  # fmt: skip
    return out


def test_parse_batch_splits_on_the_last_colon():
    assert parse_batch("al:margin:12") == ("al:margin", 12)
    assert parse_batch("plain:1") == ("plain", 1)


def test_labelstudio_tasks_carry_the_models_guess_apart_from_the_approved_labels(
    batch_lake, tmp_path, capsys, caplog
):
    lake_dir, aid = batch_lake
    capsys.readouterr()
    out = export(lake_dir, tmp_path, "labelstudio")
    line = capsys.readouterr().out
    assert "3 image(s), 1 label object(s), 2 pre-annotation(s) from model m-1 ->" in line
    assert "1 left out (unknown_class 1)" in line
    assert "class 'zebra' of model m-1 is not in ontology animals v1" in caplog.text
    tasks = json.loads((out / "tasks.json").read_text())
    assert [t["data"]["asset_id"] for t in tasks] == [aid[2], aid[0], aid[1]]  # pick order
    by_id = {t["data"]["asset_id"]: t for t in tasks}
    assert "predictions" not in by_id[aid[2]]  # zebra: refused, and no approved label
    approved, guess = by_id[aid[0]]["predictions"]
    assert approved["model_version"] == "smartray-labels"
    assert [r["value"]["choices"] for r in approved["result"]] == [["cat"]]
    assert guess["model_version"] == "m-1"
    assert guess["score"] == 0.75
    [result] = guess["result"]
    assert (result["from_name"], result["type"], result["value"]) == (
        "class", "choices", {"choices": ["dog"]})  # fmt: skip
    [only] = by_id[aid[1]]["predictions"]
    assert (only["model_version"], only["score"]) == ("m-1", 0.5)


def test_importing_an_export_back_reads_annotations_never_predictions(batch_lake, tmp_path):
    lake_dir, aid = batch_lake
    tasks = json.loads((export(lake_dir, tmp_path, "labelstudio") / "tasks.json").read_text())
    # what Label Studio exports: its tasks with their predictions, and what annotators did
    for t in tasks:
        t["annotations"] = [{"result": [choice("bird")]}] if t["data"]["asset_id"] == aid[0] else []
    import_ls(lake_dir, tmp_path, tasks, "ann2", "back.json")
    events = Lake(lake_dir).table("label_events").to_pylist()
    got = [(e["asset_id"], e["class_name"]) for e in events if e["annotator"] == "ann2"]
    assert got == [(aid[0], "bird")]  # neither the approved cat nor the model's dog


def test_cvat_tags_the_guess_as_auto_with_its_score(batch_lake, tmp_path, capsys):
    lake_dir, aid = batch_lake
    capsys.readouterr()
    out = export(lake_dir, tmp_path, "cvat")
    assert "2 pre-annotation(s) from model m-1" in capsys.readouterr().out
    images = {im.get("name").split(".")[0]: im
              for im in ET.parse(out / "annotations.xml").getroot().iter("image")}  # fmt: skip
    tags = [(t.get("label"), t.get("source"), {a.get("name"): a.text for a in t})
            for t in images[aid[0]].iter("tag")]  # fmt: skip
    assert tags == [
        ("cat", "manual", {"smartray_kind": "class"}),
        ("dog", "auto", {"smartray_kind": "class", "smartray_score": "0.75"}),
    ]
    assert list(images[aid[2]]) == []  # zebra is not in the ontology's labels


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
def test_coco_and_yolo_leave_the_guesses_out_and_write_the_images(
    batch_lake, tmp_path, capsys, caplog, fmt
):
    lake_dir, aid = batch_lake
    capsys.readouterr()
    out = export(lake_dir, tmp_path, fmt)
    line = capsys.readouterr().out
    assert "3 image(s), 0 label object(s), 0 pre-annotation(s) from model m-1" in line
    assert "4 left out (not_in_format 4)" in line  # 3 guesses and the approved image class
    name = fmt.upper()
    why = f"{name} has no image-level class: the model's class guesses are not written"
    assert f"3 pre-annotation(s) left out: {fmt}: {why}" in caplog.text
    assert caplog.text.count(why) == 1  # logged once, with the count
    assert sorted(p.stem for p in (out / "images").iterdir()) == sorted(aid[:3])


def test_a_cold_start_batch_has_no_pre_annotations(labelled_lake, tmp_path, capsys):
    lake_dir, _, ids = labelled_lake
    commit_batch(lake_dir, [(aid, None, None) for aid in ids.values()], model=None)
    capsys.readouterr()
    out = export(lake_dir, tmp_path, "labelstudio")
    line = capsys.readouterr().out
    assert "4 image(s), 0 label object(s), no pre-annotations (a cold-start batch)" in line
    assert "left out" not in line
    tasks = json.loads((out / "tasks.json").read_text())
    assert [t["data"]["asset_id"] for t in tasks] == list(ids.values())
    assert not any("predictions" in t for t in tasks)


@pytest.mark.parametrize(
    ("batch", "extra", "message"),
    [
        ("nocolon", [], "give EXPERIMENT:ROUND"),
        (f"{EXPERIMENT}:x", [], "give EXPERIMENT:ROUND"),
        (f"{EXPERIMENT}:9", [], f"experiment '{EXPERIMENT}' has no round 9; its rounds: 1"),
        ("ghost:1", [], f"unknown experiment 'ghost'; experiments: '{EXPERIMENT}'"),
        (f"{EXPERIMENT}:1", ["--snapshot", "s"], "--snapshot and --batch: choose the assets"),
        (f"{EXPERIMENT}:1", ["--from-label-issues"], "choose the assets one way"),
    ],
)
def test_bad_batch_values_exit_2(batch_lake, tmp_path, capsys, batch, extra, message):
    lake_dir, _ = batch_lake
    with pytest.raises(SystemExit) as e:
        export(lake_dir, tmp_path, "labelstudio", batch, *extra)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "export-labelstudio").exists()


def test_a_lake_without_batches_exits_2(labelled_lake, tmp_path, capsys):
    lake_dir, _, _ = labelled_lake
    with pytest.raises(SystemExit) as e:
        export(lake_dir, tmp_path, "coco", "exp:1")
    assert e.value.code == 2
    assert "no active-learning batches yet" in capsys.readouterr().err
