"""Augmentation ops on decoded pixels, chained, each drawing from one seeded generator.

An op list is written `flip,rotate:15,crop:0.8,jitter:0.2,blur:1.5,noise:0.05,cutout:0.25`
(name, then an optional strength). A child's generator is seeded from (parent id, op
list, seed, copy index), so the same inputs always give the same pixels and, through the
same encoder, the same bytes, whichever worker runs them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from smartray.errors import ConfigError
from smartray.sanitize.cv import cv2
from smartray.types import Image

Op = Callable[[Image, np.random.Generator, float], Image]


def _flip(img: Image, rng: np.random.Generator, p: float) -> Image:
    """Mirrors left-right with probability `p`."""
    return np.ascontiguousarray(img[:, ::-1]) if rng.random() < p else img


def _rotate(img: Image, rng: np.random.Generator, degrees: float) -> Image:
    """Rotates by an angle drawn from [-degrees, degrees], same size, edges reflected."""
    h, w = img.shape[:2]
    angle = float(rng.uniform(-degrees, degrees))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _crop(img: Image, rng: np.random.Generator, min_side: float) -> Image:
    """Crops a window of [min_side, 1] of each side, anywhere, resized back to the size."""
    h, w = img.shape[:2]
    s = float(rng.uniform(min_side, 1.0))
    ch, cw = max(1, round(h * s)), max(1, round(w * s))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def _jitter(img: Image, rng: np.random.Generator, amount: float) -> Image:
    """Scales brightness, contrast and (colour images) saturation by 1 +- `amount`."""
    b, c, s = (float(rng.uniform(1 - amount, 1 + amount)) for _ in range(3))
    out = img.astype(np.float32) * b
    mean = out.mean()
    out = (out - mean) * c + mean
    if out.ndim == 3 and out.shape[2] >= 3:
        gray = out[..., :3].mean(axis=2, keepdims=True)
        out[..., :3] = gray + (out[..., :3] - gray) * s
    result: Image = np.clip(out, 0, 255).astype(np.uint8)
    return result


def _blur(img: Image, rng: np.random.Generator, sigma: float) -> Image:
    """Gaussian blur with a sigma drawn from [0.1, sigma]."""
    return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.1, sigma)))


def _noise(img: Image, rng: np.random.Generator, std: float) -> Image:
    """Adds Gaussian noise of `std` (a share of the 0..255 range)."""
    noise = rng.normal(0.0, std * 255.0, size=img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _cutout(img: Image, rng: np.random.Generator, side: float) -> Image:
    """Fills a square of `side` x the shorter side, anywhere, with mid gray."""
    h, w = img.shape[:2]
    k = max(1, round(min(h, w) * side))
    y, x = int(rng.integers(0, max(1, h - k + 1))), int(rng.integers(0, max(1, w - k + 1)))
    out = img.copy()
    out[y : y + k, x : x + k] = 127
    return out


# name -> (function, default strength, allowed range)
OPS: dict[str, tuple[Op, float, tuple[float, float]]] = {
    "flip": (_flip, 0.5, (0.0, 1.0)),
    "rotate": (_rotate, 15.0, (0.0, 180.0)),
    "crop": (_crop, 0.8, (0.05, 1.0)),
    "jitter": (_jitter, 0.2, (0.0, 1.0)),
    "blur": (_blur, 1.5, (0.1, 20.0)),
    "noise": (_noise, 0.05, (0.0, 1.0)),
    "cutout": (_cutout, 0.25, (0.01, 1.0)),
}


def parse_ops(text: str) -> list[dict[str, Any]]:
    """`"flip,rotate:15"` -> [{"op": "flip", "p": 0.5}, ...] with every strength explicit.

    Raises:
        ConfigError: an unknown op (the message lists them) or a strength out of range.
    """
    ops: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition(":")
        if name not in OPS:
            raise ConfigError(f"--ops: unknown op {name!r}; ops: {', '.join(OPS)}")
        _, default, (lo, hi) = OPS[name]
        try:
            strength = float(value) if value else default
        except ValueError:
            raise ConfigError(f"--ops: {part!r}: strength must be a number") from None
        if not lo <= strength <= hi:
            raise ConfigError(f"--ops: {part!r}: strength must be in [{lo:g}, {hi:g}]")
        ops.append({"op": name, "strength": strength})
    if not ops:
        raise ConfigError(f"--ops: give at least one of {', '.join(OPS)}")
    return ops


def canonical(ops: list[dict[str, Any]]) -> str:
    """The op list as canonical JSON (stored with the child, part of its identity)."""
    return json.dumps(ops, sort_keys=True, separators=(",", ":"))


def child_id(parent_id: str, ops_json: str, seed: int, copy: int) -> str:
    """sha256 of parent id, canonical op list, seed and copy index (DESIGN.md, identity)."""
    return hashlib.sha256(f"{parent_id}\x00{ops_json}\x00{seed}\x00{copy}".encode()).hexdigest()


def augment(img: Image, ops: list[dict[str, Any]], *, key: str) -> Image:
    """Applies `ops` in order with a generator seeded from `key` (the child id)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    for op in ops:
        img = OPS[op["op"]][0](img, rng, float(op["strength"]))
    return img


def children(
    parent: dict[str, Any],
    ops: list[dict[str, Any]],
    *,
    seed: int,
    copies: int,
    skip: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The `assets` rows (without run columns) of a parent's augmented copies.

    Args:
        parent: An `assets` row with at least `asset_id`, `data`, `format`,
            `captured_at`, `stored_bytes`, `video_id`, `frame_index`, `timestamp_ms`.
        ops: Parsed op list (`parse_ops`).
        seed: The run's seed.
        copies: Children per parent.
        skip: Child ids already in the lake (not made again).
    """
    from smartray.sanitize.config import SanitizeConfig
    from smartray.sanitize.ops import sanitize_pixels

    ops_json = canonical(ops)
    todo = [(c, child_id(parent["asset_id"], ops_json, seed, c)) for c in range(copies)]
    todo = [(c, cid) for c, cid in todo if cid not in skip]
    if not todo:
        return []
    buf = np.frombuffer(parent["data"], dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"asset {parent['asset_id']}: stored bytes do not decode")
    # the parent is already sanitized (faces blurred, metadata gone): no detection again
    config = SanitizeConfig(blur=False)
    rows = []
    for _, cid in todo:
        pixels = augment(img, ops, key=cid)
        rows.append(
            {
                "asset_id": cid,
                "media_type": "augmented",
                "source_format": parent["format"],
                "source_bytes": parent["stored_bytes"],
                "orientation": 1,
                "captured_at": parent["captured_at"],
                "video_id": parent["video_id"],
                "frame_index": parent["frame_index"],
                "timestamp_ms": parent["timestamp_ms"],
                "parent_id": parent["asset_id"],
                "augment_ops": ops_json,
                "augment_seed": seed,
                **sanitize_pixels(pixels, config=config, lossless=parent["format"] == "png"),
            }
        )
    return rows
