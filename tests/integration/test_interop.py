"""Our COCO, CVAT and YOLO exports, loaded by the peers' own loaders: Datumaro (in a
virtual environment of its own, as Label Studio has) and pycocotools (bbox and segm
evaluation), with the same objects.

Datumaro pins its own numpy, pyarrow and friends, so it lives in `.cache/datumaro/venv`
(`tests/integration/datumaro_env.py`), made from the system `python3` once and reused
after. Nothing but PyPI is reached, once.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from jobs import export as export_job
from jobs import import_labels as import_job
from jobs import ontology as ontology_job
from jobs import review as review_job
from smartray.tables import ASSETS, LakeLocation
from smartray.tables.commit import commit_rows
from smartray.testing import files, rows
from tests.integration.datumaro_env import ensure_datumaro

REPO = Path(__file__).resolve().parents[2]
W, H = 64, 48

# run in Datumaro's venv: {format: {"items", "objects", "kinds"}} of each dataset given.
# An object is one (item, annotation id): Datumaro's COCO loader makes a box and a
# polygon (one per part) or mask from one COCO annotation, all with its id.
PROBE = """
import json, sys
from collections import Counter
import datumaro as dm
out = {}
for path, fmt in zip(sys.argv[1::2], sys.argv[2::2]):
    ds = dm.Dataset.import_from(path, fmt)
    kinds, objects = Counter(), set()
    for item in ds:
        for a in item.annotations:
            kinds[a.type.name] += 1
            objects.add((item.id, item.subset, a.id if fmt == "coco_instances" else id(a)))
    out[fmt] = {"items": len(ds), "objects": len(objects), "kinds": dict(kinds)}
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def datumaro() -> Path:
    return ensure_datumaro()


def load_in_datumaro(python: Path, *pairs: tuple[Path, str]) -> dict:
    args = [str(a) for path, fmt in pairs for a in (path, fmt)]
    done = subprocess.run([str(python), "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def rle_of(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


@pytest.fixture
def exported(tmp_path):
    """A lake of 4 images with boxes, a polygon, a 2-part polygon and a crowd region,
    approved and exported as COCO, CVAT and (the images with boxes only) YOLO."""
    lake_dir, root = str(tmp_path / "lake"), tmp_path / "images"
    root.mkdir()
    ids = {}
    for i in range(4):
        data = files.png(files.pattern(H, W, seed=i))
        (root / f"img{i}.png").write_bytes(data)
        ids[f"img{i}.png"] = hashlib.sha256(data).hexdigest()
    table = rows(ASSETS, n=4).set_column(0, "asset_id", [list(ids.values())])
    for name, value in (("width", W), ("height", H), ("format", "png")):
        table = table.set_column(table.schema.get_field_index(name), name, [[value] * 4])
    table = table.set_column(table.schema.get_field_index("data"), "data",
                             [[(root / n).read_bytes() for n in ids]])  # fmt: skip
    commit_rows(LakeLocation.from_uri(lake_dir), ASSETS, ASSETS.cast(table), app_id="seed")
    ontology_job.main(["add", str(REPO / "schemas/ontologies/animals.yaml"), "--lake", lake_dir])
    crowd = np.zeros((H, W), bool)
    crowd[10:20, 5:30] = True
    doc = {"images": [{"id": i + 1, "file_name": n, "width": W, "height": H}
                      for i, n in enumerate(ids)],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 10]},
               {"id": 2, "image_id": 1, "category_id": 2, "bbox": [30, 20, 10, 10]},
               {"id": 3, "image_id": 2, "category_id": 3, "bbox": [1, 1, 30, 40]},
               {"id": 4, "image_id": 3, "category_id": 2, "bbox": [10, 10, 30, 20],
                "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]]},
               {"id": 5, "image_id": 3, "category_id": 1, "bbox": [2, 2, 28, 28],
                "segmentation": [[2, 2, 10, 2, 10, 10], [20, 20, 30, 20, 30, 30, 20, 30]]},
               {"id": 6, "image_id": 4, "category_id": 1, "bbox": [5, 10, 25, 10],
                "segmentation": rle_of(crowd), "iscrowd": 1},
               {"id": 7, "image_id": 4, "category_id": 3, "bbox": [40, 30, 10, 10]}],
           "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"},
                          {"id": 3, "name": "bird"}]}  # fmt: skip
    (tmp_path / "in.json").write_text(json.dumps(doc))
    import_job.main([str(tmp_path / "in.json"), "--format", "coco", "--annotator", "a",
                     "--lake", lake_dir, "--image-root", str(root)])  # fmt: skip
    review_job.main(["--approve", "--reviewer", "r", "--where", "kind != ''", "--lake", lake_dir])
    out = {}
    for fmt in ("coco", "cvat", "yolo"):
        out[fmt] = tmp_path / fmt
        where = "width = 64"
        if fmt == "yolo":  # Datumaro's YOLO loader reads boxes only (5 fields a line)
            where = "asset_id IN ({})".format(", ".join(f"'{ids[n]}'" for n in ids if n < "img2"))
        export_job.main(["--format", fmt, "--out", str(out[fmt]), "--where", where,
                         "--lake", lake_dir])  # fmt: skip
    return out


def test_exports_load_in_datumaro_with_the_same_objects(exported, datumaro, capsys):
    got = load_in_datumaro(datumaro, (exported["coco"], "coco_instances"),
                           (exported["cvat"], "cvat"), (exported["yolo"], "yolo"))  # fmt: skip
    print(json.dumps(got), file=sys.stderr)  # the counts, for the record
    coco = got["coco_instances"]
    assert (coco["items"], coco["objects"]) == (4, 7)
    # every object's box; a polygon per part (boxes are their rectangles); the crowd mask
    assert coco["kinds"] == {"bbox": 7, "polygon": 7, "mask": 1}
    # CVAT: the 2-part polygon and the crowd region are left out, with a reason each
    assert got["cvat"] == {"items": 4, "objects": 5, "kinds": {"bbox": 4, "polygon": 1}}
    assert got["yolo"] == {"items": 2, "objects": 3, "kinds": {"bbox": 3}}
    cvat_files = list((exported["cvat"] / "images").iterdir())
    assert len(cvat_files) == 4


def test_coco_export_evaluates_in_pycocotools(exported):
    gt = COCO(str(exported["coco"] / "annotations" / "instances_default.json"))
    assert len(gt.getAnnIds()) == 7
    assert sum(a["iscrowd"] for a in gt.dataset["annotations"]) == 1
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
