"""Export -> annotate in the real Label Studio -> import -> review -> labels."""

import json
import os

import pytest

from jobs import export as export_job
from jobs import import_labels as import_job
from jobs import ingest as ingest_job
from jobs import ontology as ontology_job
from jobs import review as review_job
from jobs import sample as sample_job
from smartray import Lake
from smartray.testing.corpus import write_corpus


@pytest.fixture(scope="module")
def round_one(tmp_path_factory):
    """A lake with the planted corpus and a 4-photo snapshot exported as tasks."""
    root = tmp_path_factory.mktemp("photos")
    write_corpus(root, video=False)
    lake = str(tmp_path_factory.mktemp("ls") / "lake")
    ingest_job.main([str(root), "--lake", lake, "--no-blur"])
    ontology_job.main(["add", "schemas/ontologies/animals.yaml", "--lake", lake])
    sample_job.main(["--lake", lake, "--name", "round1", "--n", "4",
                     "--where", "media_type = 'image'"])  # fmt: skip
    out = tmp_path_factory.mktemp("export")
    export_job.main(["--format", "labelstudio", "--out", str(out), "--snapshot", "round1",
                     "--lake", lake, "--image-url-prefix", "/data/local-files/?d="])  # fmt: skip
    return lake, out, root


def test_annotate_in_label_studio_then_import_review_and_labels(
    round_one, label_studio, tmp_path, capsys
):
    lake_dir, out, _ = round_one
    client = label_studio.client()
    project = client.create_project("round1", (out / "labeling_config.xml").read_text())
    tasks = json.loads((out / "tasks.json").read_text())
    assert client.import_tasks(project, tasks) == 4
    # an annotator labels each task: a class and a box (percent of the image)
    drawn = {}
    for k, task in enumerate(client.list_tasks(project)):
        cls = ["cat", "dog"][k % 2]
        box = {"x": 10.0 + k, "y": 20.0, "width": 50.0, "height": 25.0, "rotation": 0,
               "rectanglelabels": ["bird"]}  # fmt: skip
        client.create_annotation(task["id"], [
            {"from_name": "class", "to_name": "image", "type": "choices",
             "value": {"choices": [cls]}},
            {"from_name": "box", "to_name": "image", "type": "rectanglelabels", "value": box},
        ])  # fmt: skip
        drawn[task["data"]["asset_id"]] = (cls, box)
    exported = client.export(project)  # Label Studio's own JSON export
    assert len(exported) == 4
    path = tmp_path / "from-label-studio.json"
    path.write_text(json.dumps(exported))
    capsys.readouterr()
    import_job.main([str(path), "--format", "labelstudio", "--annotator", "ls-annotator",
                     "--lake", lake_dir])  # fmt: skip
    assert "8 object(s) on 4 asset(s) imported" in capsys.readouterr().out
    review_job.main(["--approve", "--reviewer", "lead", "--lake", lake_dir,
                     "--where", "annotator = 'ls-annotator'"])  # fmt: skip
    lake = Lake(lake_dir)
    assets = lake.table("assets", columns=["asset_id", "width", "height"]).to_pylist()
    sizes = {r["asset_id"]: (r["width"], r["height"]) for r in assets}
    labels = lake.table("labels").to_pylist()
    assert {r["asset_id"] for r in labels} == set(drawn)
    for r in labels:
        cls, box = drawn[r["asset_id"]]
        payload = json.loads(r["payload"])
        if r["kind"] == "class":
            assert r["class_name"] == cls
        else:
            w, h = sizes[r["asset_id"]]
            want = [box["x"] * w / 100, box["y"] * h / 100, box["width"] * w / 100,
                    box["height"] * h / 100]  # fmt: skip
            assert payload["bbox"] == pytest.approx(want, abs=0.01)
            assert r["class_name"] == "bird"
        assert r["approved_by"] == "lead"


def test_export_to_s3_with_presigned_image_urls(round_one, s3_server, tmp_path, capsys):
    """Tasks on S3 reference their images by presigned URLs that a tool can GET."""
    import urllib.request
    import uuid

    import pyarrow.fs as pafs

    lake_dir, _, _ = round_one
    bucket = f"exports-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    export_job.main(["--format", "labelstudio", "--out", f"s3://{bucket}/round1",
                     "--snapshot", "round1", "--lake", lake_dir,
                     "--presign-expiry-s", "600"])  # fmt: skip
    assert "4 image(s)" in capsys.readouterr().out
    path = f"{bucket}/round1/tasks.json"
    fs = pafs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], scheme="http",
                           region=os.environ.get("AWS_REGION", "us-east-1"))  # fmt: skip
    with fs.open_input_stream(path) as f:
        tasks = json.loads(f.read())
    rows = Lake(lake_dir).table("assets", columns=["asset_id", "data"]).to_pylist()
    data = {r["asset_id"]: r["data"] for r in rows}
    for task in tasks:
        url = task["data"]["image"]
        assert "X-Amz-Signature=" in url
        with urllib.request.urlopen(url, timeout=30) as r:  # the loopback S3 server
            assert r.read() == data[task["data"]["asset_id"]]


def test_coco_file_names_on_s3_are_read_and_matched_by_their_bytes(round_one, s3_server,
                                                                     tmp_path, capsys):  # fmt: skip
    import hashlib
    import uuid

    lake_dir, _, root = round_one
    bucket = f"originals-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    data = (root / "cats/astronaut.jpg").read_bytes()
    client.put_object(Bucket=bucket, Key="photos/astronaut.jpg", Body=data)
    doc = {"images": [{"id": 1, "file_name": f"s3://{bucket}/photos/astronaut.jpg"},
                      {"id": 2, "file_name": f"s3://{bucket}/photos/missing.jpg"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9]}],
           "categories": [{"id": 1, "name": "cat"}]}  # fmt: skip
    path = tmp_path / "s3-coco.json"
    path.write_text(json.dumps(doc))
    import_job.main([str(path), "--format", "coco", "--annotator", "s3-user", "--lake", lake_dir])
    assert "1 object(s) on 1 asset(s) imported" in capsys.readouterr().out
    events = [e for e in Lake(lake_dir).table("label_events").to_pylist()
              if e["annotator"] == "s3-user"]  # fmt: skip
    assert [e["asset_id"] for e in events] == [hashlib.sha256(data).hexdigest()]
    reasons = [r["reason"] for r in Lake(lake_dir).table("quarantine").to_pylist()
               if r["source_uri"] == str(path)]  # fmt: skip
    assert reasons == ["unknown_asset"]
