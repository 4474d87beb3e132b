"""`smartray score --mc-dropout`: what a model needs for Monte-Carlo dropout."""

import numpy as np
import pytest
import torch

from smartray.errors import ConfigError
from smartray.predict.model import RecordedModel
from smartray.predict.scorer import Scorer
from smartray.selection.pipeline import _has_dropout
from smartray.train import nets


def recorded(architecture):
    return RecordedModel(model_id="m1", experiment="al", architecture=architecture,
                         image_size=16, ontology="digits", ontology_version=1,
                         classes=[{"index": i, "class_id": i, "name": str(i)} for i in range(3)],
                         checkpoint_uri="", checkpoint_sha256={})  # fmt: skip


def test_a_model_without_dropout_layers_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="has no dropout layer, so every pass would be the same"):
        _has_dropout(recorded("resnet18"))
    _has_dropout(recorded("small-cnn"))  # has one: accepted


def test_mc_passes_disagree_and_leave_the_deterministic_probabilities_alone():
    torch.manual_seed(0)
    weights = nets.build("small-cnn", 3).state_dict()
    images = np.random.default_rng(0).integers(0, 256, (8, 3, 16, 16), dtype=np.uint8)
    batch = {"image": images, "asset_id": np.array([str(i) for i in range(8)])}
    plain = Scorer("small-cnn", 3, weights)(batch)
    mc = Scorer("small-cnn", 3, weights, mc_passes=6)(batch)
    np.testing.assert_allclose(mc["probabilities"], plain["probabilities"], atol=1e-6)
    assert "mutual_info" not in plain
    assert mc["mc_passes"].tolist() == [6] * 8
    assert (mc["mutual_info"] > 0).all()  # dropout on: the passes differ
    assert all(not m.training for m in Scorer("small-cnn", 3, weights).dropout)
