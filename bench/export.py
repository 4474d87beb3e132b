"""Export memory: smartray's streamed export against reading the selection at once.

    .venv/bin/python bench/export.py [--assets 20000 --kib 20 --chunk 1000]

Builds a lake of `--assets` assets of `--kib` KiB each (random bytes standing in for JPEGs;
the export copies bytes, it does not decode them) with one approved box each, then in
separate processes: (1) `smartray export --format coco` (streamed, `--chunk` rows at a
time); (2) the baseline, what an in-memory tool does: read every selected row's bytes
into one table, then write the same image files and COCO JSON. Prints wall time and peak
RSS of each process, and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

BASELINE = r"""
import json, os, sys
from smartray import Lake
lake, out = sys.argv[1], sys.argv[2]
t = Lake(lake).table("assets", columns=["asset_id", "format", "width", "height", "data"])
labels = Lake(lake).table("labels", columns=["asset_id", "payload"]).to_pylist()
os.makedirs(f"{out}/images", exist_ok=True)
images = []
for i, r in enumerate(t.to_pylist()):
    with open(f"{out}/images/{r['asset_id']}.jpg", "wb") as f:
        f.write(r["data"])
    images.append({"id": i + 1, "file_name": f"images/{r['asset_id']}.jpg",
                   "width": r["width"], "height": r["height"], "asset_id": r["asset_id"]})
ids = {im["asset_id"]: im["id"] for im in images}
anns = [{"id": k + 1, "image_id": ids[r["asset_id"]], "category_id": 1,
         "bbox": json.loads(r["payload"])["bbox"]} for k, r in enumerate(labels)]
json.dump({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cat"}]},
          open(f"{out}/annotations.json", "w"))
import gc; gc.collect()
"""


def build(lake: str, n: int, kib: int) -> None:
    from smartray.tables import ASSETS, LakeLocation
    from smartray.tables.catalog import LABELS
    from smartray.tables.commit import commit_rows
    from smartray.testing import rows

    loc = LakeLocation.from_uri(lake)
    rng = np.random.default_rng(0)
    now = dt.datetime.now(dt.UTC)
    step = 2000
    for start in range(0, n, step):
        k = min(step, n - start)
        t = rows(ASSETS, n=start + k).slice(start)
        data = [rng.bytes(kib * 1024) for _ in range(k)]
        ids = [hashlib.sha256(d).hexdigest() for d in data]
        t = t.set_column(0, "asset_id", pa.array(ids))
        t = t.set_column(
            t.schema.get_field_index("data"), "data", pa.array(data, pa.large_binary())
        )
        for name, value in (("width", 640), ("height", 480), ("format", "jpeg")):
            col = pa.array([value] * k, t.schema.field(name).type)
            t = t.set_column(t.schema.get_field_index(name), name, col)
        commit_rows(loc, ASSETS, t, app_id=f"bench-assets-{start}")
        payload = json.dumps({"bbox": [1.0, 1.0, 10.0, 10.0], "class": "cat", "kind": "box"},
                             sort_keys=True, separators=(",", ":"))  # fmt: skip
        labels = [{"asset_id": a, "label_id": a, "kind": "box", "class_id": 0, "class_name": "cat",
                   "payload": payload, "annotator": "b", "source": "human",
                   "ontology": "animals", "ontology_version": 1, "approved_by": "b",
                   "approved_at": now, "run_id": "bench"} for a in ids]  # fmt: skip
        commit_rows(loc, LABELS, labels, app_id=f"bench-labels-{start}")


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a child process."""
    t0 = time.perf_counter()
    pid = subprocess.Popen(cmd).pid
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd[:4]} failed: status {status}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=20_000)
    ap.add_argument("--kib", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=1000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="smartray-export-bench-")
    lake = f"{work}/lake"
    t0 = time.perf_counter()
    build(lake, args.assets, args.kib)
    subprocess.run([sys.executable, "-m", "jobs.ontology", "add",
                    "schemas/ontologies/animals.yaml", "--lake", lake], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    size = args.assets * args.kib / 1024
    print(f"lake: {args.assets:,} assets x {args.kib} KiB = {size:,.0f} MiB of image bytes, "
          f"built in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    smart = measure([sys.executable, "-m", "jobs.export", "--format", "coco", "--out",
                     f"{work}/smartray", "--where", "width = 640", "--lake", lake,
                     "--chunk", str(args.chunk)])  # fmt: skip
    base = measure([sys.executable, "-c", BASELINE, lake, f"{work}/baseline"])
    for name, (secs, rss) in (("smartray export (streamed)", smart), ("read-all baseline", base)):
        print(f"{name:<28} {secs:7.1f} s  peak RSS {rss:8,.0f} MiB")
    print(
        f"peak memory ratio baseline / smartray: {base[1] / smart[1]:.1f}x; "
        f"time ratio: {base[0] / smart[0]:.2f}x; chunk {args.chunk}; cores {os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
