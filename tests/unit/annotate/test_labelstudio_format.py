"""Label Studio tasks out and its JSON export in, without the server (the server test is
tests/integration/test_labelstudio.py)."""

import json

from jobs import export as export_job
from jobs import import_labels as import_job
from jobs import review as review_job
from smartray import Lake
from smartray.annotate.formats.labelstudio import labeling_config
from smartray.annotate.ontology import load_ontology


def test_labeling_config_follows_the_ontology():
    xml = labeling_config(load_ontology("schemas/ontologies/animals.yaml"))
    assert '<Choices name="class" toName="image" choice="single">' in xml
    assert '<RectangleLabels name="box" toName="image">' in xml
    assert '<Label value="bird"/>' in xml


def as_label_studio_export(tasks):
    """What Label Studio's JSON export holds once an annotator accepted the predictions."""
    out = []
    for i, t in enumerate(tasks):
        anns = [{"id": i, "result": p["result"], "was_cancelled": False}
                for p in t.get("predictions", [])]  # fmt: skip
        out.append({"id": i + 1, "data": t["data"], "annotations": anns})
    return out


def test_tasks_round_trip_and_bad_urls_are_refused(labelled_lake, tmp_path, capsys):
    lake_dir, root, ids = labelled_lake
    names = list(ids)
    ls = [
        {"id": 1, "data": {"image": f"/data/upload/1/{names[0]}", "asset_id": ids[names[0]]},
         "annotations": [{"result": [
             {"from_name": "class", "to_name": "image", "type": "choices",
              "value": {"choices": ["cat"]}},
             {"from_name": "box", "to_name": "image", "type": "rectanglelabels",
              "original_width": 64, "original_height": 48,
              "value": {"x": 10, "y": 25, "width": 50, "height": 50,
                        "rectanglelabels": ["dog"]}},
             {"from_name": "polygon", "to_name": "image", "type": "polygonlabels",
              "original_width": 64, "original_height": 48,
              "value": {"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["bird"]}}]}]},
        {"id": 2, "data": {"image": "http://169.254.169.254/latest/meta-data/x.png",
                           "asset_id": ids[names[1]]},
         "annotations": [{"result": [{"from_name": "class", "to_name": "image",
                                      "type": "choices", "value": {"choices": ["cat"]}}]}]},
        {"id": 3, "data": {"image": "/data/upload/1/other.png"},
         "annotations": [{"result": []}]},
        {"id": 4, "data": {"image": names[2]},
         "annotations": [{"was_cancelled": True, "result": [
             {"from_name": "class", "type": "choices", "value": {"choices": ["dog"]}}]}]},
    ]  # fmt: skip
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(ls))
    import_job.main([str(path), "--format", "labelstudio", "--annotator", "ann1",
                     "--lake", lake_dir, "--image-root", str(root)])  # fmt: skip
    assert "3 object(s) on 1 asset(s) imported" in capsys.readouterr().out
    events = Lake(lake_dir).table("label_events").to_pylist()
    box = next(e for e in events if e["kind"] == "box")
    assert json.loads(box["payload"])["bbox"] == [6.4, 12.0, 32.0, 24.0]
    reasons = {r["detail"].split(":")[0]: r["reason"]
               for r in Lake(lake_dir).table("quarantine").to_pylist()}  # fmt: skip
    assert reasons["tasks[1] (id 2)"] == "url_not_allowed"
    # an upload path is matched by its file name in asset_sources: no asset has this one
    assert reasons["tasks[2] (id 3)"] == "unknown_asset"
    # approve, export tasks with the labels as predictions, accept them, import again
    review_job.main(["--approve", "--reviewer", "r", "--where", "kind != ''", "--lake", lake_dir])
    out = tmp_path / "ls-export"
    prefix = "/data/local-files/?d="
    export_job.main(["--format", "labelstudio", "--out", str(out), "--where", "width = 64",
                     "--lake", lake_dir, "--image-url-prefix", prefix])  # fmt: skip
    tasks = json.loads((out / "tasks.json").read_text())
    assert len(tasks) == 4
    assert all(t["data"]["image"].startswith("/data/local-files/?d=images/") for t in tasks)
    back = tmp_path / "back.json"
    back.write_text(json.dumps(as_label_studio_export(tasks)))
    import_job.main([str(back), "--format", "labelstudio", "--annotator", "ann2",
                     "--lake", lake_dir])  # fmt: skip
    lake = Lake(lake_dir)
    again = {(e["asset_id"], e["payload"]) for e in lake.table("label_events").to_pylist()
             if e["annotator"] == "ann2"}  # fmt: skip
    assert again == {(r["asset_id"], r["payload"]) for r in lake.table("labels").to_pylist()}
    assert len(again) == 3
