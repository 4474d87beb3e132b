import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from smartray.train import checkpoint, nets
from smartray.train.checkpoint import CheckpointError


def trained_step():
    torch.manual_seed(0)
    model = nets.build("small-cnn", 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(torch.randn(4, 3, 16, 16)).sum()
    loss.backward()
    opt.step()
    return model, opt


def test_a_checkpoint_round_trips_weights_optimizer_and_random_state(tmp_path):
    model, opt = trained_step()
    manifest = checkpoint.save(tmp_path, model=model, optimizer=opt, epoch=3,
                               state={"history": [{"epoch": 3}]})  # fmt: skip
    expected_next = torch.rand(3)
    saved = checkpoint.load(tmp_path, manifest)
    assert torch.equal(torch.rand(3), expected_next)  # the generator is back where it was
    assert saved.epoch == 3
    assert saved.state["history"] == [{"epoch": 3}]
    again = nets.build("small-cnn", 3)
    again.load_state_dict(saved.model)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    opt2 = torch.optim.AdamW(again.parameters(), lr=1e-2)
    opt2.load_state_dict(saved.optimizer)
    s1, s2 = opt.state_dict()["state"][0], opt2.state_dict()["state"][0]
    assert torch.equal(s1["exp_avg"], s2["exp_avg"])
    assert float(s1["step"]) == float(s2["step"]) == 1


def test_a_tampered_or_padded_checkpoint_is_refused(tmp_path):
    model, opt = trained_step()
    manifest = checkpoint.save(tmp_path, model=model, optimizer=opt, epoch=0, state={})
    state = json.loads((tmp_path / "state.json").read_text())
    (tmp_path / "state.json").write_text(json.dumps({**state, "epoch": 7}))
    with pytest.raises(CheckpointError, match=r"state\.json does not match"):
        checkpoint.load(tmp_path, manifest)
    checkpoint.save(tmp_path, model=model, optimizer=opt, epoch=0, state={})
    (tmp_path / "extra.pt").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(CheckpointError, match="files"):
        checkpoint.load(tmp_path)
    (tmp_path / "extra.pt").unlink()
    with pytest.raises(CheckpointError, match="not the one recorded"):
        checkpoint.load(tmp_path, {**manifest, "model.safetensors": "0" * 64})


def test_init_weights_take_safetensors_only_and_leave_a_new_head_out(tmp_path):
    source = nets.build("small-cnn", 10)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    target = nets.build("small-cnn", 3)
    skipped = checkpoint.apply_weights(target, checkpoint.read_weights(path))
    assert skipped == ["fc.bias", "fc.weight"]
    assert torch.equal(target.features[0][0].weight, source.features[0][0].weight)
    pickled = tmp_path / "w.pt"
    torch.save(source.state_dict(), pickled)  # a zip of pickles
    with pytest.raises(CheckpointError, match="never unpickled"):
        checkpoint.read_weights(pickled)
    raw = tmp_path / "raw.bin"
    raw.write_bytes(pickle.dumps(source.state_dict()))
    with pytest.raises(CheckpointError, match="never unpickled"):
        checkpoint.read_weights(raw)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        checkpoint.read_weights(junk)
