"""Checkpoints that load without unpickling anything, and whose every file is checked.

A checkpoint is a folder:

- `model.safetensors`: the weights;
- `optimizer.safetensors` + `optimizer.json`: the optimizer's tensors, and the rest of its
  state (param groups, scalars) as JSON;
- `state.json`: epoch, scheduler state, metrics so far, and the random generators' state
  (torch's as a uint8 tensor in `optimizer.safetensors`, numpy's and Python's as JSON);
- `manifest.json`: the sha256 of each file above. `load` refuses a folder whose files do
  not match it, or that holds anything else (a pickle is never opened).

`read_weights` loads weights a user brings (`--init-weights`): safetensors only; a file
that is a pickle (or a zip of one, torch's default format) is refused unopened.
`fetch_weights` copies a recorded model's checkpoint out of the lake's storage and checks
it (`predict` scoring, `train --init-model` fine-tuning).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from smartray.errors import ConfigError
from smartray.tables.storage import LakeLocation

MANIFEST = "manifest.json"
FILES = ("model.safetensors", "optimizer.safetensors", "optimizer.json", "state.json")


class CheckpointError(ConfigError):
    """A checkpoint or weights file that must not be loaded (tampered, or a pickle)."""


@dataclass
class Saved:
    """What a checkpoint holds once loaded."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    epoch: int
    state: dict[str, Any] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _split_optimizer(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state dict as (tensors by flat key, the JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    rest: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for pid, entries in sd["state"].items():
        plain: dict[str, Any] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                plain[name] = value
        rest["state"][str(pid)] = plain
    return tensors, rest


def _join_optimizer(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in rest["state"].items()}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def save(
    folder: str | os.PathLike[str],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    state: dict[str, Any],
) -> dict[str, str]:
    """Writes a checkpoint into `folder`; returns the sha256 of each file (the manifest)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    inner = getattr(model, "module", model)
    weights = {k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()}
    save_file(weights, out / "model.safetensors")
    tensors, rest = _split_optimizer(optimizer.state_dict())
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, out / "optimizer.safetensors")
    (out / "optimizer.json").write_text(json.dumps(rest))
    py_state = random.getstate()
    np_state: Any = np.random.get_state()
    full = {
        **state,
        "epoch": epoch,
        "rng_python": [py_state[0], list(py_state[1]), py_state[2]],
        "rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    (out / "state.json").write_text(json.dumps(full))
    manifest = {name: sha256_file(out / name) for name in FILES}
    (out / MANIFEST).write_text(json.dumps(manifest, sort_keys=True))
    return manifest


def verify(folder: str | os.PathLike[str], expected: dict[str, str] | None = None) -> None:
    """Checks every file of a checkpoint against its manifest (and `expected`, if given).

    Raises:
        CheckpointError: a file is missing, extra, or its sha256 does not match.
    """
    root = Path(folder)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {root}: no readable {MANIFEST} ({e})") from None
    if expected is not None and manifest != expected:
        raise CheckpointError(f"checkpoint {root}: its manifest is not the one recorded")
    present = sorted(p.name for p in root.iterdir() if p.name != MANIFEST)
    if present != sorted(manifest) or sorted(manifest) != sorted(FILES):
        raise CheckpointError(f"checkpoint {root}: files {present}, expected {sorted(FILES)}")
    for name, digest in manifest.items():
        if sha256_file(root / name) != digest:
            raise CheckpointError(f"checkpoint {root}: {name} does not match its sha256")


def load(folder: str | os.PathLike[str], expected: dict[str, str] | None = None) -> Saved:
    """Reads a checkpoint after `verify`; restores the random generators' state.

    Raises:
        CheckpointError: see `verify`.
    """
    root = Path(folder)
    verify(root, expected)
    tensors = load_file(root / "optimizer.safetensors")
    torch.set_rng_state(tensors.pop("rng.torch"))
    optimizer = _join_optimizer(tensors, json.loads((root / "optimizer.json").read_text()))
    state = json.loads((root / "state.json").read_text())
    py = state.pop("rng_python")
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state.pop("rng_numpy")
    np.random.set_state((npst[0], np.asarray(npst[1], dtype=np.uint32), *npst[2:]))
    return Saved(load_file(root / "model.safetensors"), optimizer, int(state["epoch"]), state)


def load_weights(
    folder: str | os.PathLike[str], expected: dict[str, str] | None = None
) -> dict[str, torch.Tensor]:
    """A checkpoint's model weights after `verify`; nothing else is read or restored.

    Raises:
        CheckpointError: see `verify`.
    """
    verify(folder, expected)
    return load_file(Path(folder) / "model.safetensors")


def fetch_weights(
    location: LakeLocation, uri: str, expected: dict[str, str], owner: str
) -> dict[str, torch.Tensor]:
    """The weights of the checkpoint folder `uri` in the lake's storage, checked.

    `expected` is file name -> sha256 as recorded; `owner` names it in errors.

    Raises:
        CheckpointError: a file is missing, extra, or does not match its recorded sha256.
    """
    import tempfile

    import pyarrow.fs as pafs

    fs, _ = location.filesystem()
    with tempfile.TemporaryDirectory(prefix="smartray-ckpt-") as folder:
        try:
            pafs.copy_files(uri.removeprefix("s3://"), folder, source_filesystem=fs,
                            destination_filesystem=pafs.LocalFileSystem())  # fmt: skip
        except OSError as e:
            raise CheckpointError(f"{owner}: its checkpoint {uri} cannot be read ({e})") from None
        return load_weights(folder, expected)


def read_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Weights a user brings, as a safetensors file; anything else is refused unopened.

    Raises:
        CheckpointError: the file is missing, a pickle or zip (torch.save's formats), or
            not a valid safetensors file.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise CheckpointError(f"--init-weights {p}: {e.strerror or e}") from None
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(
            f"--init-weights {p}: a pickle (torch.save format), never unpickled; "
            "convert it to safetensors (safetensors.torch.save_file) first"
        )
    if len(head) < 8 or struct.unpack("<Q", head)[0] > p.stat().st_size:
        raise CheckpointError(f"--init-weights {p}: not a safetensors file")
    try:
        return load_file(p)
    except Exception as e:  # safetensors raises its own error types on a bad header
        raise CheckpointError(f"--init-weights {p}: not a valid safetensors file ({e})") from None


def apply_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """Loads `weights` into `model`, leaving out tensors whose shape differs (a new head).

    Returns the names left out. Raises `CheckpointError` when nothing matches.
    """
    own = model.state_dict()
    usable = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise CheckpointError("--init-weights: no tensor matches the model's names and shapes")
    model.load_state_dict(usable, strict=False)
    return sorted(set(weights) - set(usable))
