"""Training faults: a worker killed right after checkpoint k, and tampered checkpoints.

Issue #17: "a training worker killed after checkpoint k (5 seeds): training resumes at
>= k, the checkpoint's sha256 is verified; a tampered checkpoint is refused".

Each seed trains small-cnn on real digits through Ray Train with the fault model
`smartray.testing.train_faults:dies_after_checkpoint`, which kills its worker (os._exit or
SIGKILL) as the epoch after k starts. Even seeds let Ray Train restart the worker and the
run finishes; odd seeds have the dying worker flip one bit of checkpoint k first (seeds 1,
5, ...: and rewrite the folder's manifest to match), so the restart must refuse it (the run
stops, nothing recorded); the checkpoint is put back as reported and `train --resume`
finishes the run. Either way the `models` row says which epoch training
resumed at (`epochs[*].resumed`, written by the loop from the checkpoint it loaded).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from pathlib import Path

import pytest

from jobs import predict as predict_job
from jobs import train as train_job
from smartray import Lake
from smartray.testing import digits, train_faults
from smartray.train import checkpoint
from tests.integration.test_train import label_and_split

N = 300
EPOCHS = 4
MODEL = "smartray.testing.train_faults:dies_after_checkpoint"
MISMATCH = "model.safetensors does not match its sha256"
FINISHED: list[str] = []  # model ids the campaign recorded, for the tamper cases


@pytest.fixture(scope="module")
def digits_lake(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("train-faults-digits")
    digits.write_pngs(root, N)
    lake_dir = str(tmp_path_factory.mktemp("train-faults-lake") / "lake")
    label_and_split(root, lake_dir)
    return lake_dir


def _train(lake_dir: str, *argv: str, epochs: int = EPOCHS) -> None:
    train_job.main(["--lake", lake_dir, "--split", "main", "--epochs", str(epochs),
                    "--image-size", "16", "--batch-size", "32", "--lr", "0.01",
                    "--augment", "none", *argv])  # fmt: skip


def _model_rows(lake: Lake, model_id: str) -> list[dict]:
    if not lake.exists("models"):
        return []
    return lake.table("models", to="polars").filter(model_id=model_id).to_dicts()


def _checkpoint_dirs(lake_dir: str, model_id: str) -> list[Path]:
    return sorted(p for p in Path(lake_dir, "checkpoints", model_id).glob("checkpoint_*")
                  if p.is_dir())  # fmt: skip


def test_a_worker_killed_after_checkpoint_k_resumes_from_it_verified(
    digits_lake, campaign, figures, tmp_path, capsys, caplog
):
    lake = Lake(digits_lake)
    plan = train_faults.plan_path(train_faults.AFTER_CHECKPOINT)
    per_seed = []
    for i in range(campaign.train_seeds):
        seed = campaign.seed + i
        rng = random.Random(f"train-faults-{seed}")
        k = rng.randrange(EPOCHS - 1)  # a next epoch must start for the kill to come
        how = rng.choice(["exit", "sigkill"])
        # odd seeds tamper: one bit of the weights, or that and the folder's manifest
        tamper = None if i % 2 == 0 else ("with-manifest", "bit")[(i // 2) % 2]
        marker = tmp_path / f"died-{seed}"
        plan.write_text(json.dumps({"epoch": k, "marker": str(marker), "how": how,
                                    "tamper": tamper}))  # fmt: skip
        caplog.clear()
        t0 = time.perf_counter()
        try:
            if not tamper:  # Ray Train restarts the worker group from the last checkpoint
                _train(digits_lake, "--model", MODEL, "--seed", str(seed), "--max-failures", "2")
            else:  # the restart meets the flipped bit and must refuse it
                with pytest.raises(SystemExit) as stopped:
                    _train(digits_lake, "--model", MODEL, "--seed", str(seed),
                           "--max-failures", "1")  # fmt: skip
        finally:
            plan.unlink()
        died = json.loads(marker.read_text())  # the worker did die after checkpoint k
        assert died["epoch"] == k
        if tamper:
            assert stopped.value.code == 1
            said = capsys.readouterr().err + caplog.text
            refusal = MISMATCH if tamper == "bit" else "its manifest is not the one recorded"
            assert refusal in said, said[-3000:]
            resume = re.search(r"continue it with `smartray train --resume (\S+)`", said)
            assert resume, said[-3000:]
            model_id = resume.group(1)
            assert _model_rows(lake, model_id) == []  # nothing recorded for the refused run
            weights = Path(died["checkpoint"], "model.safetensors")
            body = bytearray(weights.read_bytes())
            body[died["flipped"]] ^= 1  # the bit put back: the checkpoint as reported
            weights.write_bytes(bytes(body))
            if tamper == "with-manifest":
                Path(died["checkpoint"], checkpoint.MANIFEST).write_text(died["manifest"])
            train_job.main(["--lake", digits_lake, "--resume", model_id])
        out = capsys.readouterr().out
        wall = time.perf_counter() - t0
        model_id = re.search(r"^train (\S+): model (\S+),", out, re.M).group(2)
        (row,) = _model_rows(lake, model_id)  # exactly one row for the model
        epochs = json.loads(row["epochs"])
        assert [e["epoch"] for e in epochs] == list(range(EPOCHS))
        resumed = [e["epoch"] for e in epochs if e["resumed"]]
        # one resume, from checkpoint k: the one reported just before the kill (>= k)
        assert resumed == [k + 1], (k, resumed)
        steps = [e["optimizer_steps"] for e in epochs]
        assert steps == [(e + 1) * steps[0] for e in range(EPOCHS)]  # optimizer restored
        # one checkpoint per epoch, recorded and stored, each matching its sha256
        checkpoints = json.loads(row["checkpoints"])
        assert [c["epoch"] for c in checkpoints] == list(range(EPOCHS))
        for c in checkpoints:
            checkpoint.verify(c["uri"], c["sha256"])
        stored = _checkpoint_dirs(digits_lake, model_id)
        assert sorted(str(p) for p in stored) == sorted(c["uri"] for c in checkpoints)
        assert row["best_val_accuracy"] > 0.5  # ten classes: chance is 0.1
        FINISHED.append(model_id)
        per_seed.append({"seed": seed, "k": k, "kill": how, "tampered": tamper,
                         "resumed_epoch": resumed[0],
                         "best_val_accuracy": round(row["best_val_accuracy"], 4),
                         "wall_s": round(wall, 1)})  # fmt: skip
        logging.getLogger(__name__).info("seed %d: %s", seed, per_seed[-1])
    figures.record(
        "test_a_worker_killed_after_checkpoint_k_resumes_from_it_verified",
        seeds=len(per_seed),
        resumed_from_k=sum(s["resumed_epoch"] == s["k"] + 1 for s in per_seed),
        tampered_restarts_refused=sum(s["tampered"] is not None for s in per_seed),
        per_seed=per_seed,
    )


def _flip_weights(folder: Path) -> None:
    p = folder / "model.safetensors"
    body = bytearray(p.read_bytes())
    body[len(body) // 2] ^= 0x10
    p.write_bytes(bytes(body))


def _rewrite_with_manifest(folder: Path) -> None:
    """Weights changed and the folder's own manifest rewritten to match them."""
    _flip_weights(folder)
    manifest = json.loads((folder / checkpoint.MANIFEST).read_text())
    manifest["model.safetensors"] = checkpoint.sha256_file(folder / "model.safetensors")
    (folder / checkpoint.MANIFEST).write_text(json.dumps(manifest, sort_keys=True))


def _pickle_weights(folder: Path) -> None:
    import pickle

    (folder / "model.safetensors").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))


def _extra_file(folder: Path) -> None:
    (folder / "payload.pkl").write_bytes(b"\x80\x04K\x01.")


def _drop_state(folder: Path) -> None:
    (folder / "state.json").unlink()


def _truncate_optimizer(folder: Path) -> None:
    p = folder / "optimizer.safetensors"
    p.write_bytes(p.read_bytes()[:-7])


TAMPERS = [
    (_flip_weights, MISMATCH),
    (_rewrite_with_manifest, "its manifest is not the one recorded"),
    (_pickle_weights, MISMATCH),
    (_extra_file, "'optimizer.safetensors', 'payload.pkl', 'state.json'], expected"),
    (_drop_state, "'optimizer.json', 'optimizer.safetensors'], expected"),
    (_truncate_optimizer, "optimizer.safetensors does not match its sha256"),
]


def test_a_tampered_checkpoint_is_refused_and_nothing_is_written(digits_lake, figures, capsys):
    import shutil

    lake = Lake(digits_lake)
    if not FINISHED:  # run alone: a plain model to tamper with
        _train(digits_lake, epochs=2)
        FINISHED.append(re.search(r"^train (\S+):", capsys.readouterr().out, re.M).group(1))
    model_id = FINISHED[0]
    (row,) = _model_rows(lake, model_id)
    best = Path(row["checkpoint_uri"])
    recorded = json.loads(row["checkpoint_sha256"])
    pristine = best.with_name(best.name + ".pristine")
    shutil.copytree(best, pristine)
    tables = ("models", "predictions", "runs")
    refused = 0
    try:
        for tamper, message in TAMPERS:
            tamper(best)
            before = {t: lake.version(t) if lake.exists(t) else None for t in tables}
            folders = sorted(p.name for p in Path(digits_lake, "checkpoints").iterdir())
            with pytest.raises(checkpoint.CheckpointError, match=re.escape(message)):
                checkpoint.fetch_weights(lake.location, str(best), recorded, f"model {model_id}")
            for job, argv in [
                (predict_job, ["--model", model_id, "--split", "main"]),
                (train_job, ["--split", "main", "--init-model", model_id, "--epochs", "1"]),
            ]:
                with pytest.raises(SystemExit) as e:
                    job.main(["--lake", digits_lake, *argv])
                assert e.value.code == 2, (tamper.__name__, argv)
                err = capsys.readouterr().err
                assert message in err, (tamper.__name__, argv, err[-2000:])
            after = {t: lake.version(t) if lake.exists(t) else None for t in tables}
            assert after == before, tamper.__name__  # nothing written
            assert sorted(p.name for p in Path(digits_lake, "checkpoints").iterdir()) == folders
            refused += 1
            shutil.rmtree(best)
            shutil.copytree(pristine, best)
    finally:
        shutil.rmtree(best, ignore_errors=True)
        shutil.copytree(pristine, best)
        shutil.rmtree(pristine)
    checkpoint.fetch_weights(lake.location, str(best), recorded, model_id)  # restored: loads
    figures.record(
        "test_a_tampered_checkpoint_is_refused_and_nothing_is_written",
        tamper_cases=len(TAMPERS),
        refused_by_fetch_predict_and_init_model=refused,
    )
