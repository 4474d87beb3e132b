"""Active learning, simulated on real data: how many labels each selection strategy saves.

    .venv/bin/python bench/al.py --part digits|fashion|both [--seeds N] [--pool N]
        [--rounds N] [--budget N] [--out bench/out/al]

Each run starts from a labelled set drawn at random (one draw per seed, shared by every
strategy of that seed), trains a model afresh, measures its accuracy on a fixed test
set, scores the unlabelled pool and picks the next batch the way `smartray select` does:
the model's outputs become the columns `predict` stores (`scorer.uncertainty` of the
softmax: predicted index, confidence, margin, entropy; `mutual_info` from
`scorer.mutual_information` of Monte-Carlo-dropout passes), the penultimate layer is
the embedding, the labelled set's embeddings are the centers, each asset is its own
group, and `selection.pipeline.choose` picks with `SelectConfig(strategy=S, budget=B)`.
The picks are labelled (their true class) and the next round trains afresh. Training
is seeded by (seed, round), so round 0 is the same model for every strategy of a seed.

1. `digits`: scikit-learn's 1,797 handwritten 8x8 digits; a fixed stratified 30 % test
   set (540), the other 1,257 the pool. An MLP 64 -> 128 ReLU -> dropout 0.3 -> 10,
   300 AdamW steps (lr 0.01, batch <= 64, cosine schedule). 20 initial labels, 10 per
   round, up to 500; every strategy of `STRATEGIES`, 5 seeds; BALD with 20 MC passes.
   Target: 95 % test accuracy (all 1,257 labelled: ~97.8 %). The literature (logistic
   regression): margin needs 2.2-2.7x fewer labels than random.
2. `fashion`: Fashion-MNIST (Debian's `dataset-fashion-mnist`): a pool of 20,000 drawn
   once from the 60,000 train images, the 10,000 test images for accuracy. A small
   plain-torch CNN (three conv-BN-ReLU-pool blocks of 16, 32, 64 channels, global
   pooling, dropout 0.2, linear head), 400 AdamW steps of 64 (lr 0.01, cosine) with
   random shifts (pad 2, crop) and horizontal flips. 100 initial labels, 100 per round,
   up to 1,100; random, margin, badge and, of the other strategies, the one that needed
   the fewest labels on digits; 3 seeds. Target: 78 % test accuracy (a pilot: random
   had 76 % at 300 labels, 80 % at 1,100). Goal: the best strategy needs <= 0.5x the
   labels random needs, and fewer than margin. Sized to ~45 min on the 2-core VM
   (measured: 2,829 s; a round 17.6 s for random, train and test, 22.7 s with the
   pool scored and the batch picked).

"Labels to reach" is the labelled-set size of the first round at or above the target;
a run that never reaches it counts as `>` its last size (printed so, and in means and
ratios as that last size plus one batch, a bound). Every finished (dataset, strategy,
seed, round) is appended to `<out>/results.jsonl` with its picks; a rerun with the same
settings skips what is there and continues a cut run. Learning curves (mean over seeds
with a +-1 sd band) go to `<out>/al_digits.png` and `<out>/al_fashion_mnist.png`.
`--target` changes only the summaries (it is not part of a result's key). One thread for
torch and BLAS (set here); run it under `nice -n 10`: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "al"
PNG = {"digits": "al_digits.png", "fashion": "al_fashion_mnist.png"}


@dataclass(frozen=True)
class Setup:
    """One dataset's simulation; every field but `target` and `seeds` keys the results."""

    dataset: str
    pool: int  # pool size (the digits pool is all 1,257 non-test images)
    initial: int
    budget: int
    rounds: int  # rounds of picks: the last model has initial + rounds x budget labels
    steps: int  # optimizer steps per training
    batch: int
    lr: float
    weight_decay: float
    dropout: float
    mc_passes: int
    target: float
    seeds: int
    version: int = 1  # bump when the simulation changes

    def key(self) -> dict[str, Any]:
        """What a stored result must match to be reused."""
        return {k: v for k, v in asdict(self).items() if k not in ("target", "seeds")}

    @property
    def final(self) -> int:
        """Labels after the last round."""
        return self.initial + self.rounds * self.budget


DIGITS = Setup("digits", pool=1257, initial=20, budget=10, rounds=48, steps=300, batch=64,
               lr=1e-2, weight_decay=1e-2, dropout=0.3, mc_passes=20, target=0.95,
               seeds=5)  # fmt: skip
FASHION = Setup("fashion", pool=20_000, initial=100, budget=100, rounds=10, steps=400,
                batch=64, lr=1e-2, weight_decay=5e-4, dropout=0.2, mc_passes=20,
                target=0.78, seeds=3)  # fmt: skip


@dataclass
class Data:
    """Pool and test set as float tensors (the pool's labels play the annotator)."""

    x_pool: torch.Tensor
    y_pool: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def digits_data() -> Data:
    """The 1,797 digits, a fixed stratified 30 % test split, pixels scaled to 0..1."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_pool, x_test, y_pool, y_test = train_test_split(
        x.astype(np.float32) / 16.0, y, test_size=0.3, stratify=y, random_state=0
    )
    return Data(*(torch.from_numpy(np.asarray(a)) for a in (x_pool, y_pool, x_test, y_test)))


def fashion_data(pool: int) -> Data:
    """`pool` train images drawn once (seed 0) and the 10,000 test images, normalised."""
    from smartray.testing import fashion_mnist

    x_train, y_train = fashion_mnist.load("train")
    x_test, y_test = fashion_mnist.load("test")
    keep = np.sort(np.random.default_rng(0).choice(len(x_train), pool, replace=False))

    def tensor(images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
        return (x - 0.286) / 0.353

    return Data(tensor(x_train[keep]), torch.from_numpy(y_train[keep].astype(np.int64)),
                tensor(x_test), torch.from_numpy(y_test.astype(np.int64)))  # fmt: skip


class Net(nn.Module):
    """A feature extractor, dropout and a linear head; `embed` is the penultimate layer."""

    def __init__(self, features: nn.Module, width: int, dropout: float, classes: int = 10):
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the last linear layer (what `smartray.train.nets.embed` returns)."""
        out: torch.Tensor = torch.flatten(self.features(x), 1)
        return out

    def head(self, emb: torch.Tensor) -> torch.Tensor:
        """Logits from the embedding (dropout active only in train mode)."""
        out: torch.Tensor = self.fc(self.dropout(emb))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.head(self.embed(x))


def build(setup: Setup) -> Net:
    """The MLP of digits or the small CNN of Fashion-MNIST."""
    if setup.dataset == "digits":
        return Net(nn.Sequential(nn.Linear(64, 128), nn.ReLU()), 128, setup.dropout)

    def block(cin: int, cout: int) -> nn.Sequential:
        conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))

    cnn = nn.Sequential(block(1, 16), block(16, 32), block(32, 64), nn.AdaptiveAvgPool2d(1))
    return Net(cnn, 64, setup.dropout)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts by up to 2 px (zero padding, crop) and horizontal flips, per image."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=gen)
    dx = torch.randint(0, 5, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    flip = torch.rand(n, generator=gen) < 0.5
    cols = torch.where(flip[:, None, None], cols.flip(-1), cols)
    out: torch.Tensor = padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]
    return out


def train(setup: Setup, data: Data, labelled: np.ndarray, seed: int) -> Net:
    """A fresh model trained on the labelled pool rows (seeded by `seed`)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build(setup).train()
    opt = torch.optim.AdamW(model.parameters(), lr=setup.lr, weight_decay=setup.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=setup.steps)
    x, y = data.x_pool[labelled], data.y_pool[labelled]
    batch = min(setup.batch, len(labelled))
    order = torch.randperm(len(x), generator=gen)
    at = 0
    for _ in range(setup.steps):
        if at + batch > len(x):
            order, at = torch.randperm(len(x), generator=gen), 0
        idx = order[at : at + batch]
        at += batch
        xb = augment(x[idx], gen) if setup.dataset == "fashion" else x[idx]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), y[idx])
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        sched.step()
    return model.eval()


def accuracy(model: Net, data: Data) -> float:
    """Top-1 accuracy on the test set."""
    with torch.inference_mode():
        hits = sum(int((model(data.x_test[s : s + 2048]).argmax(1) == data.y_test[s : s + 2048])
                       .sum()) for s in range(0, len(data.x_test), 2048))  # fmt: skip
    return hits / len(data.x_test)


def score(model: Net, x: torch.Tensor, mc_passes: int) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray | None]:  # fmt: skip
    """Probabilities [N, C], embeddings [N, D] and MC-dropout probabilities [T, N, C].

    The dropout sits only between the embedding and the head, so a pass with the
    dropout layers in train mode (what `scorer.Scorer` runs on the whole model) is the
    head on the same embedding with dropout on.
    """
    from smartray.predict.scorer import dropout_layers

    probs, embs, passes = [], [], []
    with torch.inference_mode():
        for s in range(0, len(x), 2048):
            emb = model.embed(x[s : s + 2048])
            probs.append(torch.softmax(model.head(emb), 1).numpy())
            embs.append(emb.numpy())
            if mc_passes:
                for m in dropout_layers(model):
                    m.train()
                passes.append(np.stack([torch.softmax(model.head(emb), 1).numpy()
                                        for _ in range(mc_passes)]))  # fmt: skip
                for m in dropout_layers(model):
                    m.eval()
    mc = np.concatenate(passes, axis=1) if passes else None
    return np.concatenate(probs), np.concatenate(embs), mc


def pick(setup: Setup, model: Net | None, data: Data, labelled: np.ndarray, strategy: str,
         seed: int) -> np.ndarray:  # fmt: skip
    """The next batch (pool rows) as `smartray select` would pick it from these scores."""
    from smartray.predict.scorer import mutual_information, uncertainty
    from smartray.selection.config import SelectConfig
    from smartray.selection.pipeline import Inputs, choose

    rest = np.setdiff1d(np.arange(len(data.x_pool)), labelled)
    ids = [str(i) for i in rest.tolist()]
    cfg = SelectConfig(experiment="bench", budget=setup.budget, strategy=strategy, seed=seed)
    if model is None:  # random reads no scores
        inputs = Inputs(ids, np.arange(len(rest)), {})
    else:
        mc = setup.mc_passes if strategy == "bald" else 0
        probs, emb, passes = score(model, data.x_pool, mc)
        columns: dict[str, np.ndarray] = dict(uncertainty(probs[rest]))
        columns["predicted_class_id"] = columns["predicted_index"]
        columns["mutual_info"] = (mutual_information(passes[:, rest]) if passes is not None
                                  else np.full(len(rest), np.nan, np.float32))  # fmt: skip
        inputs = Inputs(ids, np.arange(len(rest)), columns, probabilities=probs[rest],
                        embedding=emb[rest], centers=emb[labelled])  # fmt: skip
    picks, _ = choose(inputs, cfg, seed)
    chosen: np.ndarray = rest[picks.index]
    return chosen


# -- runs and results --------------------------------------------------------------------


def stored(path: Path) -> list[dict[str, Any]]:
    """The result lines of `path` (a line cut by a kill is skipped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def runs_of(
    rows: list[dict[str, Any]], setup: Setup
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """(strategy, seed) -> its rounds in order, for results made with `setup`'s settings."""
    out: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
    for r in rows:
        if r["setup"] == setup.key():
            out.setdefault((r["strategy"], r["seed"]), {})[r["round"]] = r
    runs = {}
    for k, by_round in out.items():
        done: list[dict[str, Any]] = []
        while len(done) in by_round:  # contiguous from round 0
            done.append(by_round[len(done)])
        runs[k] = done
    return runs


def run(setup: Setup, data: Data, strategy: str, seed: int, path: Path,
        done: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    """Runs (or continues) one strategy and seed; each finished round is appended to `path`."""
    initial = np.random.default_rng(seed).choice(len(data.x_pool), setup.initial, replace=False)
    labelled = np.concatenate([initial] + [np.array(r["picked"], np.int64) for r in done])
    rounds = list(done)
    for r in range(len(done), setup.rounds + 1):
        start = time.perf_counter()
        model = train(setup, data, labelled, seed * 1000 + r)
        acc = accuracy(model, data)
        picked = np.array([], np.int64)
        if r < setup.rounds:
            scored = None if strategy == "random" else model
            picked = pick(setup, scored, data, labelled, strategy, seed * 1000 + r)
        row = {"dataset": setup.dataset, "strategy": strategy, "seed": seed, "round": r,
               "labels": len(labelled), "accuracy": acc, "picked": picked.tolist(),
               "seconds": round(time.perf_counter() - start, 3), "setup": setup.key()}  # fmt: skip
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rounds.append(row)
        labelled = np.concatenate([labelled, picked])
        print(f"  {setup.dataset} {strategy} seed {seed} round {r}: {row['labels']} labels, "
              f"accuracy {100 * acc:.1f} %, {row['seconds']:.1f} s", flush=True)  # fmt: skip
    return rounds


def sd(values: np.ndarray) -> Any:
    """The sample standard deviation over axis 0 (0 for a single seed)."""
    return values.std(0, ddof=1) if len(values) > 1 else np.zeros_like(values[0])


def labels_to(rounds: list[dict[str, Any]], target: float) -> int | None:
    """Labels of the first round at or above `target` (None: never)."""
    return next((r["labels"] for r in rounds if r["accuracy"] >= target), None)


def summarise(setup: Setup, runs: dict[tuple[str, int], list[dict[str, Any]]],
              strategies: list[str]) -> dict[str, list[int | None]]:  # fmt: skip
    """Prints the table; returns strategy -> labels to the target per seed."""
    cap = setup.final + setup.budget  # a run that never reached the target, as a bound
    need: dict[str, list[int | None]] = {}
    print(f"\n== {setup.dataset}: labels to reach {100 * setup.target:.0f} % test accuracy "
          f"({setup.initial} initial + {setup.budget} per round, up to {setup.final}; "
          f"{setup.seeds} seeds)", flush=True)  # fmt: skip
    print(f"{'strategy':<17} {'labels (mean ± sd)':<22} {'reached':<8} {'per seed':<36} "
          "final accuracy")  # fmt: skip
    for s in strategies:
        seeds = [runs.get((s, k), []) for k in range(setup.seeds)]
        if any(len(r) != setup.rounds + 1 for r in seeds):
            print(f"{s:<17} (unfinished)")
            continue
        got = [labels_to(r, setup.target) for r in seeds]
        need[s] = got
        vals = np.array([cap if g is None else g for g in got], float)
        final = np.array([r[-1]["accuracy"] for r in seeds]) * 100
        bound = "≥ " if None in got else ""
        per = " ".join(f">{setup.final}" if g is None else str(g) for g in got)
        print(f"{s:<17} {bound}{vals.mean():.0f} ± {sd(vals):.0f}".ljust(41)
              + f"{sum(g is not None for g in got)}/{len(got)}".ljust(9) + per.ljust(37)
              + f"{final.mean():.1f} ± {sd(final):.1f} %")  # fmt: skip
    return need


def ratio_line(name: str, top: list[int | None], bottom: list[int | None], cap: int) -> str:
    """Per-seed ratio top/bottom, median and range (`>`/`<`: a bound from a capped run)."""
    parts, values = [], []
    for a, b in zip(top, bottom, strict=True):
        v = (cap if a is None else a) / (cap if b is None else b)
        mark = "" if a is not None and b is not None else (
            "?" if a is None and b is None else ">" if a is None else "<")  # fmt: skip
        parts.append(f"{mark}{v:.2f}")
        values.append(v)
    return (f"{name}: median {np.median(values):.2f}x (range {min(values):.2f}-"
            f"{max(values):.2f}); per seed {' '.join(parts)}")  # fmt: skip


def plot(setup: Setup, runs: dict[tuple[str, int], list[dict[str, Any]]],
         strategies: list[str], path: Path) -> None:  # fmt: skip
    """Accuracy against labels: mean over seeds, +-1 sd band, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=100)
    low, high = 100 * setup.target, 100 * setup.target
    for s in strategies:
        seeds = [runs.get((s, k), []) for k in range(setup.seeds)]
        if any(len(r) != setup.rounds + 1 for r in seeds):
            continue
        x = np.array([r["labels"] for r in seeds[0]])
        acc = np.array([[r["accuracy"] for r in rs] for rs in seeds]) * 100
        mean, band = acc.mean(0), sd(acc)
        low, high = min(low, mean.min() - 2), max(high, (mean + band).max() + 1)
        (line,) = ax.plot(x, mean, label=s, lw=1.6)
        ax.fill_between(x, mean - band, mean + band, color=line.get_color(), alpha=0.12, lw=0)
    ax.axhline(100 * setup.target, color="k", ls="--", lw=0.8)
    ax.set_ylim(max(low, 100 * setup.target - 25), min(100.0, high))
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test accuracy (%)")
    name = {"digits": "scikit-learn digits, MLP", "fashion": "Fashion-MNIST, small CNN"}
    ax.set_title(f"{name[setup.dataset]}: mean of {setup.seeds} seeds, ±1 sd")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def part(setup: Setup, data: Callable[[], Data], strategies: list[str], out: Path) -> None:
    """Runs every (strategy, seed) not finished, prints the table, draws the curves."""
    path = out / "results.jsonl"
    start = time.perf_counter()
    loaded: Data | None = None
    for seed in range(setup.seeds):
        for s in strategies:
            done = runs_of(stored(path), setup).get((s, seed), [])
            if len(done) == setup.rounds + 1:
                continue
            loaded = loaded or data()
            run(setup, loaded, s, seed, path, done)
    print(f"{setup.dataset}: {time.perf_counter() - start:.0f} s this run", flush=True)
    runs = runs_of(stored(path), setup)
    need = summarise(setup, runs, strategies)
    cap = setup.final + setup.budget
    others = [s for s in strategies if s != "random" and s in need]
    if setup.dataset == "digits" and "random" in need:
        print("ratio random/strategy (labels to the target; > 1: the strategy saves labels)")
        for s in others:
            print("  " + ratio_line(s, need["random"], need[s], cap))
    if setup.dataset == "fashion" and others:
        mean = {s: np.mean([cap if g is None else g for g in need[s]]) for s in others}
        best = [s for s in others if mean[s] == min(mean.values())]
        print(f"best strategy here: {' = '.join(best)} (goal: best/random <= 0.5, best/"
              "margin < 1)\nratio strategy/other (labels to the target; < 1: fewer)")  # fmt: skip
        for s in others:
            for other in ("random", "margin"):
                if other in need and other != s:
                    print("  " + ratio_line(f"{s}/{other}", need[s], need[other], cap))
    plot(setup, runs, strategies, out / PNG[setup.dataset])
    print(f"curves: {out / PNG[setup.dataset]}", flush=True)


def best_on_digits(out: Path, setup: Setup, taken: list[str]) -> str:
    """The strategy not in `taken` that needed the fewest labels on digits, as stored."""
    runs = runs_of(stored(out / "results.jsonl"), setup)
    cap = setup.final + setup.budget
    means = {}
    for s in {s for s, _ in runs} - {"random", *taken}:
        seeds = [runs.get((s, k), []) for k in range(setup.seeds)]
        if all(len(r) == setup.rounds + 1 for r in seeds):
            got = [labels_to(r, setup.target) for r in seeds]
            means[s] = np.mean([cap if g is None else g for g in got])
    if not means:
        raise SystemExit("no finished digits runs: run --part digits first, or name the "
                         "strategies with --strategies")  # fmt: skip
    return min(means, key=lambda s: means[s])


def main() -> None:
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from smartray.selection.config import STRATEGIES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("digits", "fashion", "both"), default="both")
    ap.add_argument("--seeds", type=int, help="seeds 0..N-1 (digits 5, fashion 3)")
    ap.add_argument("--pool", type=int, help="Fashion-MNIST pool size (20,000)")
    ap.add_argument("--rounds", type=int, help="rounds of picks (digits 38, fashion 10)")
    ap.add_argument("--budget", type=int, help="labels per round (digits 10, fashion 100)")
    ap.add_argument("--initial", type=int, help="initial labels (digits 20, fashion 100)")
    ap.add_argument("--steps", type=int, help="optimizer steps per training (300, 400)")
    ap.add_argument("--strategies", help="comma-separated; fashion default: random,margin,"
                    "badge,best (best: the fewest labels on digits of the others)")  # fmt: skip
    ap.add_argument("--target", type=float, help="test accuracy the summaries count labels "
                    "to (digits 0.95, fashion 0.78); `best` is always judged at 0.95")  # fmt: skip
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the machine is shared: one thread for torch and BLAS
    threadpool_limits(1)
    args.out.mkdir(parents=True, exist_ok=True)
    flags = ("seeds", "pool", "rounds", "budget", "initial", "steps", "target")
    given = {k: getattr(args, k) for k in flags if getattr(args, k) is not None}
    digits = replace(DIGITS, **{k: v for k, v in given.items() if k != "pool"})
    if args.part in ("digits", "both"):
        names = args.strategies.split(",") if args.strategies else list(STRATEGIES)
        part(digits, digits_data, names, args.out)
    if args.part in ("fashion", "both"):
        fashion = replace(FASHION, **given)
        names = (args.strategies or "random,margin,badge,best").split(",")
        if "best" in names:
            judged = replace(digits, target=DIGITS.target)  # --target is for the summaries
            names[names.index("best")] = best_on_digits(args.out, judged, names)
        part(fashion, lambda: fashion_data(fashion.pool), list(dict.fromkeys(names)), args.out)


if __name__ == "__main__":
    main()
