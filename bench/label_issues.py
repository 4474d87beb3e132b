"""Label-error finding: planted flips in real digits, found by `smartray find-label-issues`.

    .venv/bin/python bench/label_issues.py [--seeds 5] [--flip 0.10] [--folds 3] [--epochs 3]

For each seed: scikit-learn's 1,797 handwritten digits as PNGs in class folders, 10 % of
them moved into a wrong class folder (`smartray.testing.digits.plant_flips`), ingested,
labelled from the folders, approved and split; then `find-label-issues` (K fold models,
small CNN, 32 px). Printed per seed, all on the same out-of-sample probabilities (each
asset scored by the fold model that never saw it, read back from `predictions`):

- smartray: the `label_issues` rows: precision and recall of the flagged set, and the
  share of the flips in the top 2 x (number of flips) of the ranking (goal >= 70 %);
- cleanlab: `cleanlab.filter.find_label_issues` called afresh on those probabilities
  (the reference: the flagged set must be the same);
- argmax: flag every asset whose most likely class is not its label (the naive rule).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's jobs/
OUT = ROOT / "bench" / "out" / "label-issues"


def scores(flagged: set[str], flips: set[str]) -> dict[str, float]:
    """Precision and recall of `flagged` against the planted `flips`."""
    hit = len(flagged & flips)
    return {"flagged": len(flagged), "precision": hit / max(len(flagged), 1),
            "recall": hit / len(flips)}  # fmt: skip


def one_seed(seed: int, flip: float, folds: int, epochs: int) -> dict[str, object]:
    """Builds the noisy lake of `seed`, finds the issues, scores the three flaggers."""
    from cleanlab.filter import find_label_issues

    from jobs import curate, import_labels, ingest, ontology, review, split
    from smartray.predict import LabelIssuesConfig
    from smartray.predict import find_label_issues as smartray_issues
    from smartray.tables import Lake
    from smartray.testing import digits

    work = OUT / f"seed-{seed}"
    shutil.rmtree(work, ignore_errors=True)
    src, lake_dir = work / "digits", str(work / "lake")
    flips = set(digits.plant_flips(digits.write_pngs(src), round(flip * digits.COUNT), seed=seed))
    ingest.main([str(src), "--lake", lake_dir, "--no-blur"])
    ontology.main(["add", str(ROOT / "schemas/ontologies/digits.yaml"), "--lake", lake_dir])
    import_labels.main([str(src), "--format", "folders", "--annotator", "folders",
                        "--lake", lake_dir])  # fmt: skip
    review.main(["--approve", "--reviewer", "bench", "--where", "annotator = 'folders'",
                 "--lake", lake_dir])  # fmt: skip
    curate.main(["--lake", lake_dir])  # near-duplicate groups: folds keep them whole
    split.main(["--split", "main", "--ratios", "train=0.8,val=0.2", "--lake", lake_dir])
    t0 = time.perf_counter()
    found = smartray_issues(
        LabelIssuesConfig(split="main", folds=folds, epochs=epochs, seed=seed), lake=lake_dir
    )
    seconds = time.perf_counter() - t0
    lake = Lake(lake_dir)
    issues = lake.table("label_issues").to_pylist()
    ranked = [r["asset_id"] for r in sorted(issues, key=lambda r: r["rank"])]
    # the same out-of-sample probabilities, read back: each asset from its fold's model
    fold_of = {r["asset_id"]: r["fold_model"] for r in issues}
    preds = lake.table("predictions", columns=["model_id", "asset_id", "probabilities"])
    models = set(found.fold_models)
    labels = {r["asset_id"]: r["class_id"] for r in lake.table("labels").to_pylist()}
    fold_split = {
        (r["split_name"], r["asset_id"]): r["split"] for r in lake.table("splits").to_pylist()
    }
    held_by = {}
    for i, m in enumerate(found.fold_models):
        for (name, asset), side in fold_split.items():
            if name == f"main.fold{i}of{folds}" and side == "val":
                held_by[asset] = m
    probs = {}
    for m, a, p in zip(preds["model_id"].to_pylist(), preds["asset_id"].to_pylist(),
                       preds["probabilities"].to_pylist(), strict=True):  # fmt: skip
        if m in models and held_by.get(a) == m:
            probs[a] = p
    assert all(held_by[a] == m for a, m in fold_of.items())
    ids = sorted(probs)
    p = np.asarray([probs[a] for a in ids])
    given = np.asarray([labels[a] for a in ids])  # digits: class id = index
    reference = {ids[i] for i in np.flatnonzero(find_label_issues(given, p))}
    naive = {ids[i] for i in np.flatnonzero(p.argmax(1) != given)}
    top = set(ranked[: 2 * len(flips)])
    row = {
        "seed": seed, "flips": len(flips), "scored": len(ids), "seconds": round(seconds, 1),
        "smartray": scores(set(ranked), flips), "cleanlab": scores(reference, flips),
        "argmax": scores(naive, flips), "same_as_cleanlab": set(ranked) == reference,
        "flips_in_top_2x": len(top & flips) / len(flips),
    }  # fmt: skip
    import gc

    gc.collect()
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--flip", type=float, default=0.10)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for seed in range(args.seeds):
            row = one_seed(seed, args.flip, args.folds, args.epochs)
            rows.append(row)
            s, c, n = row["smartray"], row["cleanlab"], row["argmax"]
            print(
                f"seed {seed}: {row['flips']} flips in {row['scored']} digits; smartray flags "
                f"{s['flagged']} (precision {s['precision']:.3f}, recall {s['recall']:.3f}), "
                f"{100 * row['flips_in_top_2x']:.1f} % of the flips in the top "
                f"{2 * row['flips']}; cleanlab afresh {c['flagged']} (P {c['precision']:.3f}, "
                f"R {c['recall']:.3f}, same set: {row['same_as_cleanlab']}); argmax "
                f"{n['flagged']} (P {n['precision']:.3f}, R {n['recall']:.3f}); "
                f"{row['seconds']} s",
                flush=True,
            )
    finally:
        ray.shutdown()
    top = [r["flips_in_top_2x"] for r in rows]
    prec = [r["smartray"]["precision"] for r in rows]
    rec = [r["smartray"]["recall"] for r in rows]
    print(f"== flips in the top 2x: median {100 * np.median(top):.1f} % "
          f"({100 * min(top):.1f}-{100 * max(top):.1f}); smartray precision median "
          f"{np.median(prec):.3f}, recall median {np.median(rec):.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
