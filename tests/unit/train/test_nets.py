import pytest
import torch
from torch import nn

from smartray.errors import ConfigError
from smartray.train import nets


def factory(num_classes):
    layers = [nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, num_classes)]
    return nn.Sequential(*layers)


def not_a_module(num_classes):
    return "a string"


@pytest.mark.parametrize(("name", "dim"), [("small-cnn", 128), ("resnet18", 512)])
def test_builtin_models_give_logits_and_an_embedding(name, dim):
    model = nets.build(name, 5).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 5)
    assert nets.embed(model, x).shape == (2, dim)


def test_resnet18_has_torchvision_names():
    names = set(nets.build("resnet18", 1000).state_dict())
    assert {"conv1.weight", "layer4.1.bn2.running_var", "fc.weight"} <= names
    assert "layer1.0.downsample.0.weight" not in names
    assert "layer2.0.downsample.1.weight" in names


def test_a_factory_without_embed_gives_its_last_linear_input():
    model = nets.build(f"{__name__}:factory", 4)
    x = torch.randn(3, 3, 8, 8)
    assert model(x).shape == (3, 4)
    assert nets.embed(model, x).shape == (3, 16)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("vgg", "choose small-cnn or resnet18"),
        ("no_such_module:f", "cannot load the factory"),
        (f"{__name__}:missing", "cannot load the factory"),
        (f"{__name__}:not_a_module", "returned str, not a torch nn.Module"),
    ],
)
def test_bad_models_are_usage_errors(name, message):
    with pytest.raises(ConfigError, match=message):
        nets.build(name, 3)
