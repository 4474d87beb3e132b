"""What scoring computes per image: no Ray, no lake (the GPU benchmark imports it alone).

The uncertainty statistics (`uncertainty`, `mutual_information` for BALD) and the
`Scorer` an actor pool runs (`scoring.FileScorer` adds reading and writing).
"""

from __future__ import annotations

import numpy as np
import torch

from smartray.train import nets
from smartray.train.inputs import normalize


def uncertainty(probs: np.ndarray) -> dict[str, np.ndarray]:
    """Per row of class probabilities `[N, C]`: predicted index, confidence, margin, entropy.

    Confidence is the largest probability, margin the largest minus the second largest
    (1 for a single class), entropy `-sum p ln p` in nats.
    """
    top = np.sort(probs, axis=1)[:, ::-1]
    second = top[:, 1] if probs.shape[1] > 1 else np.zeros(len(probs), probs.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0, probs * np.log(probs), 0.0)
    return {
        "predicted_index": probs.argmax(axis=1).astype(np.int32),
        "confidence": top[:, 0].astype(np.float32),
        "margin": (top[:, 0] - second).astype(np.float32),
        "entropy": (-plogp.sum(axis=1)).astype(np.float32),
    }


def mutual_information(passes: np.ndarray) -> np.ndarray:
    """BALD's score per row from Monte-Carlo probabilities `[T, N, C]`.

    The entropy of the mean prediction minus the mean entropy of each pass (nats): high
    where the passes disagree, not merely where each is unsure.
    """

    def entropy(p: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            h: np.ndarray = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)
        return h

    mean = passes.mean(axis=0)
    mi: np.ndarray = np.maximum(entropy(mean) - entropy(passes).mean(axis=0), 0.0)
    return mi.astype(np.float32)


def dropout_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's dropout modules (what Monte-Carlo dropout switches on)."""
    kinds = (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d,
             torch.nn.AlphaDropout)  # fmt: skip
    return [m for m in model.modules() if isinstance(m, kinds)]


class Scorer:
    """A model in eval mode: batches of decoded images in, probabilities and embeddings out.

    Each actor of the pool (`FileScorer`, which also reads its input) builds the model
    once from the checked weights. With `mc_passes`, each batch also runs that many
    passes with only the dropout layers in training mode (batch norm stays frozen), for
    `mutual_info`; the stored probabilities stay those of the deterministic pass.
    """

    def __init__(
        self,
        architecture: str,
        num_classes: int,
        weights: dict[str, torch.Tensor],
        use_gpu: bool = False,
        threads: int = 1,
        mc_passes: int = 0,
    ):
        torch.set_num_threads(max(1, threads))
        self.device = torch.device("cuda" if use_gpu else "cpu")
        model = nets.build(architecture, num_classes)
        model.load_state_dict(weights)
        self.model = model.to(self.device).eval()
        self.mc_passes = mc_passes
        self.dropout = dropout_layers(self.model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Scores `image` [N,3,S,S] uint8 and `asset_id` [N].

        Returns `asset_id`, `probabilities`, `embedding` and the `uncertainty` columns.
        """
        x = normalize(torch.from_numpy(np.ascontiguousarray(batch["image"])).to(self.device))
        cuda = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=cuda):
            logits, emb = nets.forward_with_embedding(self.model, x)
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        out = {
            "asset_id": batch["asset_id"],
            "probabilities": probs.astype(np.float32),
            "embedding": emb.float().cpu().numpy(),
            **uncertainty(probs),
        }
        if self.mc_passes:
            out["mutual_info"] = mutual_information(self._passes(x))
            out["mc_passes"] = np.full(len(probs), self.mc_passes, np.int32)
        return out

    def _passes(self, x: torch.Tensor) -> np.ndarray:
        """`[T, N, C]` probabilities of `mc_passes` passes with dropout on."""
        for m in self.dropout:
            m.train()
        cuda = self.device.type == "cuda"
        try:
            with torch.inference_mode(), torch.autocast(self.device.type, enabled=cuda):
                passes = [torch.softmax(self.model(x).float(), dim=1).cpu().numpy()
                          for _ in range(self.mc_passes)]  # fmt: skip
        finally:
            for m in self.dropout:
                m.eval()
        return np.stack(passes)
