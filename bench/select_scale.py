"""Selection at scale: two-stage selection on 1,000,000 rows, exact k-center on 100,000.

    .venv/bin/python bench/select_scale.py [--part both|two-stage|kcenter] [--runs 3]

The embeddings are real data: Fashion-MNIST's 70,000 images (Debian's
`dataset-fashion-mnist`), and shifted or flipped copies of them for the larger pools,
through a fixed random ReLU projection to D dimensions (a stand-in for a network's
penultimate layer that keeps the corpus' structure: classes, near-duplicates, clusters).
Class probabilities come from a fixed random linear head on the embedding.

1. Two-stage (`--rows 1000000 --dim 128 --budget 1000`): a `predictions`-shaped Delta
   table of 1,000,000 rows (written once under bench/out) is read as `select` reads it
   (`pipeline._matrix` on the pinned table), then `pipeline.choose` runs k-center with
   the margin prefilter (10 x budget survivors) from 1,000 labelled centers. Baseline:
   the same two stages in plain numpy (`argsort` of the margins, then farthest-point
   greedy recomputing every distance). Goal: smartray under 60 s, read included; peak
   memory (RSS) is printed.
2. Exact k-center (`--kc-rows 100000 --kc-dim 512 --kc-picks 1000`, 100 labelled
   centers): `maths.kcenter_greedy` against the plain numpy greedy, checked to pick the
   same rows in the same order. Goal: >= 2x numpy.
3. `--part select`: `smartray.selection.select` end to end, each run in a fresh process
   (time and peak RSS), on a lake of 1,000,000 assets (rows with placeholder image
   bytes), their 1,000,000 predictions (the embeddings of part 1), 1,000 approved
   labels, a split, an ontology and a model row: the pool built from the pinned tables,
   the scores read, two stages, the round committed. Goal: under 60 s.

Rounds are interleaved (smartray, baseline, ...); medians with their ranges.
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUT = HERE / "out" / "select_scale"
READ: list[float] = []  # seconds each two-stage run spent reading the table


def fashion_embeddings(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """`rows` Fashion-MNIST images (shifted/flipped copies past 70,000) as D-dim features."""
    from smartray.testing import fashion_mnist

    train, _ = fashion_mnist.load("train")
    test, _ = fashion_mnist.load("test")
    base = np.concatenate([train, test]).reshape(-1, 28, 28)
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((784, dim)) / np.sqrt(784)).astype(np.float32)
    out = np.empty((rows, dim), np.float32)
    done, copy = 0, 0
    while done < rows:
        imgs = base if copy == 0 else _variant(base, copy)
        take = min(len(imgs), rows - done)
        for s in range(0, take, 50_000):
            block = imgs[s : min(s + 50_000, take)].reshape(-1, 784).astype(np.float32) / 255
            out[done + s : done + s + len(block)] = np.maximum(block @ weights, 0.0)
        done += take
        copy += 1
    return out


def _variant(images: np.ndarray, k: int) -> np.ndarray:
    """The k-th copy: flipped and/or shifted by a pixel or two (a real augmentation)."""
    shifted = np.roll(images, shift=(k % 3 - 1, (k // 3) % 3 - 1), axis=(1, 2))
    return shifted[:, :, ::-1] if k % 2 else shifted


def probabilities(emb: np.ndarray, classes: int = 10, seed: int = 1) -> np.ndarray:
    """A fixed random linear head's softmax over the embeddings."""
    rng = np.random.default_rng(seed)
    head = rng.standard_normal((emb.shape[1], classes)).astype(np.float32) * 0.3
    out = np.empty((len(emb), classes), np.float32)
    for s in range(0, len(emb), 100_000):
        z = emb[s : s + 100_000] @ head
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out[s : s + 100_000] = e / e.sum(axis=1, keepdims=True)
    return out


def brute_kcenter(x: np.ndarray, picks: int, centers: np.ndarray) -> list[int]:
    """Farthest-point greedy in plain numpy: every distance recomputed at every pick."""
    xn = np.einsum("ij,ij->i", x, x)
    mind = np.full(len(x), np.inf, np.float32)
    for c in centers:
        np.minimum(mind, xn + c @ c - 2.0 * (x @ c), out=mind)
    out = []
    for _ in range(picks):
        i = int(mind.argmax())
        out.append(i)
        c = x[i]
        np.minimum(mind, xn + c @ c - 2.0 * (x @ c), out=mind)
    return out


# -- two-stage --------------------------------------------------------------------------


def build_table(rows: int, dim: int) -> Path:
    """A `predictions`-shaped Delta table of `rows` rows (written once)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from smartray.predict.scorer import uncertainty
    from smartray.predict.scoring import _list_column

    path = OUT / f"predictions-{rows}x{dim}"
    if (path / "_delta_log").exists():
        return path
    emb = fashion_embeddings(rows, dim)
    probs = probabilities(emb)
    for s in range(0, rows, 200_000):
        e, p = emb[s : s + 200_000], probs[s : s + 200_000]
        u = uncertainty(p)
        ids = [f"{i:064x}" for i in range(s, s + len(e))]
        table = pa.table({
            "model_id": pa.array(["bench"] * len(e)), "asset_id": pa.array(ids),
            "predicted_index": pa.array(u["predicted_index"]),
            "confidence": pa.array(u["confidence"]), "margin": pa.array(u["margin"]),
            "entropy": pa.array(u["entropy"]), "probabilities": _list_column(p),
            "embedding": _list_column(e),
        })  # fmt: skip
        write_deltalake(str(path), table, mode="append")
    return path


def build_lake(rows: int, dim: int, labelled: int = 1000) -> Path:
    """A lake of `rows` assets scored by one model (written once; see part 3)."""
    import json

    import pyarrow as pa
    from deltalake import write_deltalake

    from jobs import ontology as ontology_job
    from smartray.tables.catalog import ASSETS, LABELS, MODELS, SPLITS
    from smartray.testing import _value
    from smartray.testing import rows as spec_rows

    lake = OUT / f"lake-{rows}x{dim}"
    if (lake / "batches").exists() or (lake / "models" / "_delta_log").exists():
        return lake
    source = build_table(rows, dim)
    ids = pa.array([f"{i:064x}" for i in range(rows)])

    def constant(spec, n, **columns):  # type: ignore[no-untyped-def]
        data = {}
        for f in spec.schema:
            if f.name in columns:
                data[f.name] = columns[f.name]
            elif f.nullable:
                data[f.name] = pa.nulls(n, f.type)
            else:
                data[f.name] = pa.repeat(pa.scalar(_value(f, 0), f.type), n)
        return pa.table(data, schema=spec.schema)

    write_deltalake(str(lake / "assets"), constant(ASSETS, rows, asset_id=ids))
    split = constant(SPLITS, rows, asset_id=ids, split_name=pa.repeat("bench", rows),
                     split=pa.repeat("train", rows))  # fmt: skip
    write_deltalake(str(lake / "splits"), split)
    ontology_job.main(["add", "schemas/ontologies/fashion-mnist.yaml", "--lake", str(lake)])
    labels = spec_rows(LABELS, labelled, ontology="fashion-mnist", ontology_version=1,
                       kind="class")  # fmt: skip
    labels = labels.set_column(0, "asset_id", ids[:labelled])
    write_deltalake(str(lake / "labels"), labels)
    classes = [{"index": i, "class_id": i, "name": f"c{i}"} for i in range(10)]
    model = spec_rows(MODELS, 1, model_id="bench-model", experiment="bench",
                      ontology="fashion-mnist", ontology_version=1, split_name="bench",
                      classes=json.dumps(classes),
                      config=json.dumps({"image_size": 28}), checkpoint_sha256="{}")  # fmt: skip
    write_deltalake(str(lake / "models"), model)
    from deltalake import DeltaTable

    scored = DeltaTable(str(source)).to_pyarrow_dataset()
    from smartray.tables.catalog import PREDICTIONS

    for batch in scored.to_batches(batch_size=200_000):
        t = pa.Table.from_batches([batch])
        n = t.num_rows
        columns = {name: t[name] for name in t.column_names}
        columns["model_id"] = pa.repeat("bench-model", n)
        full = constant(PREDICTIONS, n, **columns)
        write_deltalake(str(lake / "predictions"), full, mode="append")
    return lake


def select_end_to_end(lake: Path, budget: int) -> None:
    """One `select` in this process; prints its line, seconds and peak RSS."""
    from smartray.selection import SelectConfig, select

    start = time.perf_counter()
    summary = select(SelectConfig(experiment="bench", budget=budget, strategy="kcenter",
                                  seed=0), lake=str(lake))  # fmt: skip
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{summary.line()}\nselect end to end: {took:.2f} s, peak RSS {peak:.0f} MiB",
          flush=True)  # fmt: skip
    gc.collect()


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The table as `select` reads it: embeddings, probabilities, uncertainty columns."""
    from deltalake import DeltaTable

    from smartray.selection.pipeline import _matrix

    cols = ["asset_id", "predicted_index", "confidence", "margin", "entropy", "probabilities",
            "embedding"]  # fmt: skip
    table = DeltaTable(str(path)).to_pyarrow_dataset().to_table(columns=cols)
    columns = {n: table[n].to_numpy() for n in ("predicted_index", "confidence", "margin",
                                                "entropy")}  # fmt: skip
    return _matrix(table["embedding"]), _matrix(table["probabilities"]), columns


def two_stage_smartray(path: Path, budget: int, labelled: int) -> tuple[float, list[int]]:
    from smartray.selection.config import SelectConfig
    from smartray.selection.pipeline import Inputs, choose

    start = time.perf_counter()
    emb, probs, columns = read_table(path)
    READ.append(time.perf_counter() - start)
    centers = emb[:labelled]  # the first rows play the labelled set
    pool = slice(labelled, None)
    inputs = Inputs(
        ids=[str(i) for i in range(len(emb) - labelled)],
        groups=np.arange(len(emb) - labelled),
        columns={k: v[pool] for k, v in columns.items()},
        probabilities=probs[pool], embedding=emb[pool], centers=centers,
    )  # fmt: skip
    config = SelectConfig(experiment="bench", budget=budget, strategy="kcenter", seed=0)
    picks, survivors = choose(inputs, config, seed=0)
    assert survivors == 10 * budget
    return time.perf_counter() - start, picks.index.tolist()


def two_stage_numpy(path: Path, budget: int, labelled: int) -> tuple[float, list[int]]:
    start = time.perf_counter()
    emb, _, columns = read_table(path)
    READ.append(time.perf_counter() - start)
    margin = columns["margin"][labelled:]
    keep = np.sort(np.argsort(margin, kind="stable")[: 10 * budget])
    picks = brute_kcenter(emb[labelled:][keep], budget, emb[:labelled])
    return time.perf_counter() - start, keep[picks].tolist()


# -- exact k-center ---------------------------------------------------------------------


def kcenter_smartray(x: np.ndarray, picks: int, centers: np.ndarray) -> tuple[float, list[int]]:
    from smartray.selection.maths import kcenter_greedy

    start = time.perf_counter()
    got = kcenter_greedy(x, picks, np.arange(len(x)), centers).index.tolist()
    return time.perf_counter() - start, got


def kcenter_numpy(x: np.ndarray, picks: int, centers: np.ndarray) -> tuple[float, list[int]]:
    start = time.perf_counter()
    got = brute_kcenter(x, picks, centers)
    return time.perf_counter() - start, got


def rounds(name: str, runs: int, ours, baseline) -> None:  # type: ignore[no-untyped-def]
    ratios, ours_s = [], []
    for r in range(runs):
        a, picks_a = ours()
        gc.collect()
        b, picks_b = baseline()
        gc.collect()
        same = sum(p == q for p, q in zip(picks_a, picks_b, strict=True))
        ratios.append(b / a)
        ours_s.append(a)
        read = f" (reading the table: {READ[-2]:.2f} s and {READ[-1]:.2f} s)" if READ else ""
        print(f"{name} round {r}: smartray {a:.2f} s, numpy {b:.2f} s, speed-up {b / a:.2f}x, "
              f"same picks {same}/{len(picks_a)}{read}", flush=True)  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"== {name}: smartray median {np.median(ours_s):.2f} s ({min(ours_s):.2f}-"
        f"{max(ours_s):.2f}); median speed-up over numpy {np.median(ratios):.2f}x "
        f"({min(ratios):.2f}-{max(ratios):.2f}); peak RSS so far {peak:.0f} MiB",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("both", "two-stage", "kcenter", "select", "one-select"),
                    default="both")  # fmt: skip
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--kc-rows", type=int, default=100_000)
    ap.add_argument("--kc-dim", type=int, default=512)
    ap.add_argument("--kc-picks", type=int, default=1000)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.part == "one-select":  # a fresh process of part 3
        select_end_to_end(build_lake(args.rows, args.dim), args.budget)
        return
    if args.part == "select":
        import subprocess

        lake = build_lake(args.rows, args.dim)
        print(f"select end to end: {args.budget} from {args.rows} assets ({lake})", flush=True)
        for _ in range(args.runs):
            shutil.rmtree(lake / "batches", ignore_errors=True)  # each run is round 1
            subprocess.run([sys.executable, __file__, "--part", "one-select", "--rows",
                            str(args.rows), "--dim", str(args.dim), "--budget",
                            str(args.budget)], check=True)  # fmt: skip
        return
    if args.part in ("both", "kcenter"):
        x = fashion_embeddings(args.kc_rows, args.kc_dim)
        centers = x[np.random.default_rng(2).choice(len(x), 100, replace=False)]
        print(f"exact k-center: {args.kc_picks} picks from {args.kc_rows} x {args.kc_dim}, "
              "100 labelled centers", flush=True)  # fmt: skip
        rounds("k-center", args.runs, lambda: kcenter_smartray(x, args.kc_picks, centers),
               lambda: kcenter_numpy(x, args.kc_picks, centers))  # fmt: skip
        del x
        gc.collect()
    if args.part in ("both", "two-stage"):
        path = build_table(args.rows, args.dim)
        print(f"two-stage: {args.budget} from {args.rows} x {args.dim} (Delta table {path}), "
              "margin prefilter to 10x the budget, 1,000 labelled centers", flush=True)  # fmt: skip
        rounds("two-stage", args.runs, lambda: two_stage_smartray(path, args.budget, 1000),
               lambda: two_stage_numpy(path, args.budget, 1000))  # fmt: skip


if __name__ == "__main__":
    main()
