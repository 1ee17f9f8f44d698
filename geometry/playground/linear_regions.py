"""The linear regions of a ReLU MLP on the plane: each region is one activation pattern (which units are on).

Two ways to see them:

- `pattern_map`: the activation pattern at each pixel of a grid, numbered; cheap (one forward pass), what the live
  view draws as a mesh, and a lower bound on the count (regions smaller than a pixel are missed).
- `exact_linear_regions`: the regions inside a rectangle, exactly, by cutting it layer by layer. Inside a region of
  layers 1..l-1 the network is affine, so each unit of layer l is an affine function there and its zero set is a
  line: the region is split by that line (Sutherland-Hodgman clipping of convex polygons, in float64). The pieces
  after the last hidden layer are the linear regions (Serra et al. 2018; Hanin & Rolnick 2019 for their typical
  number). One hidden layer of k units in general position cuts the plane into 1 + k + k(k-1)/2 regions.

Coordinates are plane units; a rectangle is (x_min, x_max, y_min, y_max).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from geometry.runtime.compute import CancelToken

__all__ = ["LinearRegions", "exact_linear_regions", "one_layer_bound", "pattern_map", "relu_layers"]

Rectangle = tuple[float, float, float, float]


def one_layer_bound(units: int) -> int:
    """The most regions ``units`` lines cut the plane into: 1 + k + k(k-1)/2 (reached in general position)."""
    return 1 + units + units * (units - 1) // 2


def relu_layers(network: nn.Module) -> list[nn.Linear]:
    """The hidden ``nn.Linear`` layers of a ReLU MLP (each followed by an ``nn.ReLU``), in order.

    Raises ValueError for a network that is not Linear/ReLU pairs before a final Linear (its regions are not
    activation patterns of ReLUs).
    """
    modules = [m for m in network.modules() if not isinstance(m, (nn.Sequential, nn.Flatten)) and m is not network]
    modules = [m for m in modules if not list(m.children())]
    layers, i = [], 0
    while i < len(modules) - 1:
        if isinstance(modules[i], nn.Linear) and isinstance(modules[i + 1], nn.ReLU):
            layers.append(modules[i])
            i += 2
        else:
            break
    rest = modules[i:]
    if len(rest) != 1 or not isinstance(rest[0], nn.Linear) or (layers and layers[0].in_features != 2):
        raise ValueError("expected a ReLU MLP on the plane: (Linear, ReLU) pairs on 2 inputs, then one Linear head")
    return layers


@torch.no_grad()
def pattern_map(network: nn.Module, points: torch.Tensor) -> np.ndarray:
    """Number each point's activation pattern: int64 ``(N,)`` ids, equal ids = same pattern (same linear region).

    ``points``: float ``(N, 2)`` in the plane. Ids are in order of first appearance.
    """
    h = points.float()
    bits = []
    for layer in relu_layers(network):
        z = layer(h)
        bits.append((z > 0).numpy())
        h = torch.relu(z)
    if not bits:
        return np.zeros(len(points), dtype=np.int64)
    pattern = np.concatenate(bits, axis=1)
    if pattern.shape[1] <= 62:  # one int64 code per pattern: a 1-D unique, much faster than rows
        codes = pattern.astype(np.int64) @ (np.int64(1) << np.arange(pattern.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(np.packbits(pattern, axis=1), axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))  # ids in order of first appearance (stable colours)
    return rank[inverse.ravel()]


@dataclass(frozen=True)
class LinearRegions:
    """The exact linear regions inside a rectangle."""

    polygons: list[np.ndarray]  # one float64 (V, 2) convex polygon per region, counter-clockwise, plane units
    patterns: np.ndarray  # (R, units) bool: each region's activation pattern over all hidden units in order
    rectangle: Rectangle  # (x_min, x_max, y_min, y_max) the regions were cut from

    @property
    def count(self) -> int:
        return len(self.polygons)


def exact_linear_regions(
    network: nn.Module,
    rectangle: Rectangle,
    *,
    max_regions: int = 200_000,
    cancel: CancelToken | None = None,
) -> LinearRegions:
    """The linear regions of ReLU MLP ``network`` inside ``rectangle``, exactly (up to float64 rounding).

    Pieces of area below 1e-12 of the rectangle's are dropped (a line through a vertex leaves such slivers).
    Raises ValueError past ``max_regions`` regions (the count grows fast with width and depth).
    """
    x0, x1, y0, y1 = (float(v) for v in rectangle)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"expected a rectangle (x_min, x_max, y_min, y_max) with x_min < x_max, got {rectangle}")
    layers = relu_layers(network)
    min_area = 1e-12 * (x1 - x0) * (y1 - y0)
    box = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    # each piece: polygon, pattern bits so far, and the affine map x -> M x + m of the last layer's output there
    pieces: list[tuple[np.ndarray, list[bool], np.ndarray, np.ndarray]] = [(box, [], np.eye(2), np.zeros(2))]
    for layer in layers:
        w = layer.weight.detach().double().numpy()
        b = layer.bias.detach().double().numpy() if layer.bias is not None else np.zeros(len(w))
        split: list[tuple[np.ndarray, list[bool], np.ndarray, np.ndarray]] = []
        for polygon, bits, m_in, c_in in pieces:
            if cancel is not None:
                cancel.raise_if_cancelled("counting linear regions")
            a, c = w @ m_in, w @ c_in + b  # this layer's pre-activations on the piece: a x + c, (units, 2), (units,)
            parts: list[tuple[np.ndarray, list[bool]]] = [(polygon, [])]
            for unit in range(len(w)):
                next_parts = []
                for poly, signs in parts:
                    for on in (True, False):
                        side = _clip(poly, a[unit] if on else -a[unit], c[unit] if on else -c[unit])
                        if side is not None and _area(side) > min_area:
                            next_parts.append((side, [*signs, on]))
                parts = next_parts
            for poly, signs in parts:
                mask = np.array(signs, dtype=np.float64)
                split.append((poly, bits + signs, mask[:, None] * a, mask * c))
            if len(split) > max_regions:
                raise ValueError(f"more than {max_regions} linear regions: count them on a smaller network or view")
        pieces = split
    patterns = np.array([bits for _, bits, _, _ in pieces], dtype=bool).reshape(len(pieces), -1)
    return LinearRegions(polygons=[p for p, _, _, _ in pieces], patterns=patterns, rectangle=(x0, x1, y0, y1))


def _clip(polygon: np.ndarray, a: np.ndarray, c: float) -> np.ndarray | None:
    """The part of convex ``polygon`` (V, 2) where a . x + c >= 0 (None when empty)."""
    values = polygon @ a + c
    if (values >= 0).all():
        return polygon
    if (values <= 0).all():
        return None
    out = []
    n = len(polygon)
    for i in range(n):
        p, q, vp, vq = polygon[i], polygon[(i + 1) % n], values[i], values[(i + 1) % n]
        if vp >= 0:
            out.append(p)
        if (vp >= 0) != (vq >= 0):
            t = vp / (vp - vq)
            out.append(p + t * (q - p))
    return np.array(out) if len(out) >= 3 else None


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
