"""`train --init-model`: a recorded model's checked weights start the next one."""

import datetime as dt
import json

import pytest
import torch

from smartray.errors import ConfigError
from smartray.tables import Lake
from smartray.tables.catalog import MODELS
from smartray.testing import rows
from smartray.train import checkpoint, nets
from smartray.train.config import TrainConfig
from smartray.train.pipeline import _initial_model

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def recorded(tmp_path, lake, model_id, experiment, minute, seed):
    torch.manual_seed(seed)
    model = nets.build("small-cnn", 3)
    folder = tmp_path / "lake" / "checkpoints" / model_id / "best"
    sha = checkpoint.save(folder, model=model, optimizer=torch.optim.AdamW(model.parameters()),
                          epoch=0, state={})  # fmt: skip
    row = rows(MODELS, 1, model_id=model_id, experiment=experiment,
               trained_at=T0 + dt.timedelta(minutes=minute), checkpoint_uri=str(folder),
               checkpoint_sha256=json.dumps(sha))  # fmt: skip
    lake.session("test", {}).commit(MODELS, row)
    return model.state_dict()


def test_latest_resolves_to_the_experiments_newest_model_and_its_weights(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    recorded(tmp_path, lake, "m-old", "al", 0, seed=1)
    newest = recorded(tmp_path, lake, "m-new", "al", 5, seed=2)
    recorded(tmp_path, lake, "m-other", "elsewhere", 9, seed=3)
    found, weights = _initial_model(lake, TrainConfig(split="s", experiment="al",
                                                      init_model="latest"))  # fmt: skip
    assert found == "m-new"
    assert weights.keys() == newest.keys()
    assert all(torch.equal(weights[k], newest[k]) for k in newest)
    assert _initial_model(lake, TrainConfig(split="s", init_model="m-other"))[0] == "m-other"


def test_an_unknown_start_or_a_tampered_checkpoint_is_refused(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(ConfigError, match="experiment 'al' has no model yet"):
        _initial_model(lake, TrainConfig(split="s", experiment="al", init_model="latest"))
    recorded(tmp_path, lake, "m1", "al", 0, seed=1)
    with pytest.raises(ConfigError, match="--init-model nope: no model of that id"):
        _initial_model(lake, TrainConfig(split="s", init_model="nope"))
    weights = tmp_path / "lake" / "checkpoints" / "m1" / "best" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one bit pattern changed: its sha256 no longer matches
    weights.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError):
        _initial_model(lake, TrainConfig(split="s", init_model="m1"))
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(split="s", init_model="m1", init_weights="w.safetensors")
