"""Image classifiers in plain torch, and where a model's embedding comes from.

`--model` names one of:

- `small-cnn`: three conv blocks and a linear head; trains on a CPU in seconds;
- `resnet18`: ResNet-18 (He et al. 2016), the torchvision layout written out here
  (PyPI's torchvision does not import beside this torch), so weights a user brings as
  safetensors with torchvision's names load into it (`fc.*` is left out when the class
  count differs);
- `module:factory`: a user's function, called as `factory(num_classes=N)`, returning an
  `nn.Module` that maps `[B, 3, H, W]` float images to `[B, N]` logits.

**The embedding hook** (what predictions and selection store per asset): a model with a
method `embed(x)` returns its embedding from it; otherwise the embedding is the input of
the model's last `nn.Linear` (the penultimate features), captured with a forward hook.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from smartray.deadline import deadline
from smartray.errors import ConfigError

BUILTIN = ("small-cnn", "resnet18")
FACTORY_TIMEOUT_S = 300.0  # a factory may fetch weights; one that never returns fails


class SmallCNN(nn.Module):
    """Three conv blocks (32, 64, 128 channels), global pooling, dropout, a linear head."""

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.2):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.features = nn.Sequential(
            block(in_channels, 32), block(32, 64), block(64, 128), nn.AdaptiveAvgPool2d(1)
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(128, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d pooled features."""
        features: torch.Tensor = self.features(x)
        flat: torch.Tensor = torch.flatten(features, 1)
        return flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        logits: torch.Tensor = self.fc(self.dropout(self.embed(x)))
        return logits


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + skip)


class ResNet18(nn.Module):
    """ResNet-18 with torchvision's parameter names."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 128, 256, 512)
        cin = 64
        for i, w in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(_Basic(cin, w, stride), _Basic(w, w, 1)))
            cin = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 512-d pooled features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        pooled: torch.Tensor = self.avgpool(x)
        flat: torch.Tensor = torch.flatten(pooled, 1)
        return flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        logits: torch.Tensor = self.fc(self.embed(x))
        return logits


def build(name: str, num_classes: int, *, timeout_s: float | None = FACTORY_TIMEOUT_S) -> nn.Module:
    """The model `name` (see the module doc) for `num_classes` classes.

    Args:
        name: `small-cnn`, `resnet18` or `module:factory`.
        num_classes: Outputs of the model.
        timeout_s: Seconds a factory may take, its import included (`smartray.deadline`;
            None: no deadline).

    Raises:
        ConfigError: an unknown name, a factory that cannot be imported, or one that
            returns something other than an `nn.Module`.
        StepTimeoutError: the factory (or its import) did not return within `timeout_s`.
    """
    if name == "small-cnn":
        return SmallCNN(num_classes)
    if name == "resnet18":
        return ResNet18(num_classes)
    if ":" not in name:
        raise ConfigError(f"--model {name!r}: choose {' or '.join(BUILTIN)}, or module:factory")
    module_name, _, attr = name.partition(":")
    with deadline(timeout_s, f"model factory {name!r}"):
        try:
            factory: Callable[..., Any] = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"--model {name!r}: cannot load the factory ({e})") from None
        model = factory(num_classes=num_classes)
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"--model {name!r}: the factory returned {type(model).__name__}, not a torch nn.Module"
        )
    return model


def embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The embedding of `x` under `model` (its `embed(x)`, else its last Linear's input)."""
    return forward_with_embedding(model, x)[1]


def forward_with_embedding(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`model(x)` (the logits) and the embedding of `x`, as `[B, N]` and `[B, D]`.

    A model with `embed(x)` is called twice (forward, then `embed`); otherwise one
    forward pass gives both, the embedding captured at the last `nn.Linear`'s input.

    Raises:
        ConfigError: the model has neither `embed(x)` nor an `nn.Linear`.
    """
    inner: nn.Module = getattr(model, "module", model)  # a DistributedDataParallel wrapper
    method = getattr(inner, "embed", None)
    if callable(method):
        return inner(x), torch.flatten(method(x), 1)
    linears = [m for m in inner.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("the model has no embed(x) method and no nn.Linear layer")
    seen: list[torch.Tensor] = []
    hook = linears[-1].register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    try:
        logits = inner(x)
    finally:
        hook.remove()
    return logits, torch.flatten(seen[-1], 1)
