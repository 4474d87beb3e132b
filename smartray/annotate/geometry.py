"""Plane geometry of label objects: rotated boxes, polygon parts, clipping to the image.

Pixel coordinates, y down. A rotated box is stored as CVAT stores it: the box before
rotation (x, y, width, height) and an angle in degrees, clockwise on screen, about the
box's centre. Label Studio rotates about the box's top-left corner instead; the two
conversions are here, so both formats round-trip the same payload.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float]
Box = tuple[float, float, float, float]


def norm_angle(degrees: float) -> float:
    """`degrees` in [0, 360), rounded to 1/100 degree (360 comes back as 0)."""
    r = round(float(degrees) % 360.0, 2)
    return 0.0 if r >= 360.0 else r + 0.0


def rotate(point: Point, centre: Point, degrees: float) -> Point:
    """`point` turned about `centre` by `degrees` clockwise on screen (y down)."""
    t = math.radians(degrees)
    dx, dy = point[0] - centre[0], point[1] - centre[1]
    c, s = math.cos(t), math.sin(t)
    return centre[0] + c * dx - s * dy, centre[1] + s * dx + c * dy


def box_corners(box: Box, degrees: float = 0.0) -> list[Point]:
    """The corners of box (x, y, w, h) turned by `degrees` about its centre.

    In the order top-left, top-right, bottom-right, bottom-left (before rotation).
    """
    x, y, w, h = box
    corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    if not degrees:
        return corners
    centre = (x + w / 2, y + h / 2)
    return [rotate(p, centre, degrees) for p in corners]


def from_corner_rotation(box: Box, degrees: float) -> Box:
    """Label Studio's box as the box before a rotation about its centre.

    Label Studio's x, y are the top-left corner, and it rotates about that corner.
    """
    x, y, w, h = box
    cx, cy = rotate((x + w / 2, y + h / 2), (x, y), degrees)
    return cx - w / 2, cy - h / 2, w, h


def to_corner_rotation(box: Box, degrees: float) -> Box:
    """The inverse of `from_corner_rotation`: where Label Studio puts the corner."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    tx, ty = rotate((x, y), (cx, cy), degrees)
    return tx, ty, w, h


def extent(points: Sequence[Point]) -> Box:
    """(x1, y1, x2, y2) of `points`."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def polygon_area(points: Sequence[Point]) -> float:
    """The shoelace area of one closed ring."""
    s = 0.0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        s += x1 * y2 - x2 * y1
    return abs(s) / 2
