"""Connectivity of classification regions: a path between two inputs of one class that stays in that class.

The path finder of Fawzi et al. ("Classification regions of deep neural networks", docs/SCIENCE.md §8): if the straight
segment x1 -> x2 stays in class c (checked on a fine grid), done; else take its midpoint, and if the midpoint is not
in c push it into c (DeepFool targeted at c, with an overshoot), then recurse on both halves, up to a depth and an
anchor budget. The result reports success, the anchors, and the largest deviation of the path from the straight
segment relative to ``||x1 - x2||``.

Many pairs run together, level by level: every grid check of a level is one batched forward pass and every push one
batched targeted DeepFool, so the batch mode (M random same-class pairs and the success rate) costs little more
than a single path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np
import torch

from geometry.boundary.deepfool import deepfool
from geometry.inspection.options import PathOptions
from geometry.models.handle import ModelHandle
from geometry.runtime.compute import CancelToken, Progress
from geometry.runtime.memo import memoize
from geometry.runtime.options import KeywordOptions, options_with
from geometry.runtime.validate import check_int

__all__ = [
    "PathOptions",
    "PathResult",
    "cached_connectivity_batch",
    "cached_find_path",
    "connectivity_batch",
    "find_path",
    "find_paths",
    "sample_same_class_pairs",
]


@dataclass(frozen=True)
class PathResult:
    """Paths for P pairs of inputs (S = input shape, A = max_anchors)."""

    success: torch.Tensor  # (P,) bool: a path inside the class was found (every grid point on it is in class c)
    num_anchors: torch.Tensor  # (P,) int64: anchors inserted between the endpoints
    max_deviation: torch.Tensor  # (P,) float32: max distance of an anchor from the segment x1-x2, / ||x1 - x2||
    anchors: torch.Tensor  # (P, A + 2, *S) float32: the path's vertices in order, endpoints included; NaN-padded
    cls: torch.Tensor  # (P,) int64: c, the class both endpoints are predicted as
    distance: torch.Tensor  # (P,) float32: ||x1 - x2|| (input units)
    path_length: torch.Tensor  # (P,) float32: length of the polyline through the anchors (input units)
    path_class: torch.Tensor  # (P, G) int64: prediction at G points evenly spaced along the polyline by length
    strip: torch.Tensor  # (P, T, *S) float32: T inputs evenly spaced along the polyline (endpoints included)
    strip_class: torch.Tensor  # (P, T) int64: their predictions
    pair_index: torch.Tensor  # (P, 2) int64: which inputs were joined (indices into the batch given), or (0, 1)
    depth: torch.Tensor  # (P,) int64: deepest bisection level used
    reason: tuple[str, ...]  # (P,) "" on success, else why the search stopped
    resolution: int  # grid points checked inside each segment
    max_depth: int
    max_anchors: int
    overshoot: float  # overshoot of the targeted DeepFool that pushes a midpoint into c
    evaluations: int  # model evaluations for the grid checks (DeepFool's own not counted)

    def __len__(self) -> int:
        return len(self.success)

    @property
    def success_rate(self) -> float:
        """Share of pairs joined by a path inside their class (NaN for no pairs)."""
        return float(self.success.float().mean()) if len(self) else math.nan

    @property
    def straight_rate(self) -> float:
        """Share of pairs joined by the straight segment alone: successful with 0 anchors (a failed pair with 0
        anchors, e.g. when the anchor budget is 0, does not count). NaN for no pairs."""
        return float((self.success & (self.num_anchors == 0)).float().mean()) if len(self) else math.nan

    def vertices(self, p: int) -> torch.Tensor:
        """The path's vertices ``(n_p, *S)`` of pair ``p`` (padding removed)."""
        count = int(self.num_anchors[p]) + 2
        return self.anchors[p, :count]


class PathFields(TypedDict, total=False):
    """The `PathOptions` fields that `find_path`, `find_paths` and `connectivity_batch` also take as keywords (one
    that is not None overrides ``options``); declared once so the three signatures do not repeat them."""

    resolution: int | None
    max_depth: int | None
    max_anchors: int | None
    overshoot: float | None
    samples: int | None
    strip: int | None


def find_path(
    handle: ModelHandle,
    x1: torch.Tensor,
    x2: torch.Tensor,
    *,
    options: PathOptions | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    **fields: Unpack[PathFields],
) -> PathResult:
    """A path from ``x1`` to ``x2`` (two inputs of shape ``input_shape``) inside their common predicted class.

    Raises ValueError when the model predicts different classes for x1 and x2. ``options``: a `PathOptions` (its
    defaults are this function's); a keyword that is not None overrides the option of the same name.
    """
    opts = options_with(PathOptions, options, dict(fields))
    a = handle.check_inputs(x1)
    b = handle.check_inputs(x2)
    if len(a) != 1 or len(b) != 1:
        raise ValueError(f"expected one input each for x1 and x2, got {len(a)} and {len(b)}")
    return find_paths(handle, a, b, options=opts, progress=progress, cancel=cancel)


def find_paths(
    handle: ModelHandle,
    starts: torch.Tensor,
    ends: torch.Tensor,
    *,
    options: PathOptions | None = None,
    pair_index: torch.Tensor | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    **fields: Unpack[PathFields],
) -> PathResult:
    """Paths between ``starts[p]`` and ``ends[p]`` (P, *input_shape), each inside the class both are predicted as.

    ``resolution``: grid points checked inside every segment (odd, so the midpoint is one of them);
    ``max_depth``: bisection levels; ``max_anchors``: anchors per path; ``overshoot``: of the targeted DeepFool that
    pushes a midpoint into the class (the anchor lands ``overshoot`` times the push past the boundary; the default 1.0
    puts it well inside, so fewer levels are needed than with DeepFool's usual 0.02);
    ``samples``/``strip``: points along the finished path whose class (and images) are reported.
    Inputs with a bounded range keep their anchors inside it (clipped DeepFool). These are the fields of
    ``options`` (a `PathOptions`, its defaults are this function's); a keyword that is not None overrides one.
    """
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    opts = options_with(PathOptions, options, dict(fields))
    resolution, max_depth, max_anchors = opts.resolution, opts.max_depth, opts.max_anchors
    overshoot, samples, strip = opts.overshoot, opts.samples, opts.strip
    xa = handle.check_inputs(starts.detach() if isinstance(starts, torch.Tensor) else starts)
    xb = handle.check_inputs(ends.detach() if isinstance(ends, torch.Tensor) else ends)
    if len(xa) != len(xb):
        raise ValueError(f"expected as many ends as starts, got {len(xa)} and {len(xb)}")
    if not (torch.isfinite(xa).all() and torch.isfinite(xb).all()):
        raise ValueError("expected finite inputs, got NaN or infinite values")
    n_pairs = len(xa)
    shape = handle.input_shape
    dim = math.prod(shape)
    ca, cb = handle.predict(xa), handle.predict(xb)
    differ = torch.nonzero(ca != cb).flatten().tolist()
    if differ:
        p = differ[0]
        raise ValueError(
            f"expected two inputs of the same predicted class, got {handle.class_names[int(ca[p])]!r} and "
            f"{handle.class_names[int(cb[p])]!r}" + (f" for pair {p}" if n_pairs > 1 else "")
        )
    clip = handle.input_range is not None
    ts = torch.arange(1, resolution + 1, dtype=torch.float32) / (resolution + 1)  # interior grid, t = 0.5 included
    mid = resolution // 2

    # per pair: vertex list (flat tensors) and the pending segments (left index into an id list, depth)
    verts: list[list[torch.Tensor]] = [[xa[p].reshape(dim), xb[p].reshape(dim)] for p in range(n_pairs)]
    verified: list[list[bool]] = [[False] for _ in range(n_pairs)]  # verified[p][i]: segment verts[i] -> verts[i+1]
    seg_depth: list[list[int]] = [[0] for _ in range(n_pairs)]
    failed = [""] * n_pairs
    deepest = [0] * n_pairs
    evaluations = 0
    classes = ca.tolist()

    for level in range(max_depth + 1):
        if cancel is not None:
            cancel.raise_if_cancelled("path search")
        todo = [(p, i) for p in range(n_pairs) if not failed[p] for i, ok in enumerate(verified[p]) if not ok]
        if not todo:
            break
        if progress is not None:
            progress(level / (max_depth + 1), f"path search: level {level}, {len(todo)} segments to check")
        left = torch.stack([verts[p][i] for p, i in todo])
        right = torch.stack([verts[p][i + 1] for p, i in todo])
        grid = left[:, None] + ts[None, :, None] * (right - left)[:, None]  # (S, R, D)
        pred = handle.predict(grid.reshape(-1, *shape)).reshape(len(todo), resolution)
        evaluations += grid.shape[0] * grid.shape[1]
        target = torch.tensor([classes[p] for p, _ in todo], dtype=torch.int64)
        inside = (pred == target[:, None]).all(dim=1)
        push_rows: list[int] = []
        for s, (p, i) in enumerate(todo):
            if bool(inside[s]):
                verified[p][i] = True
            elif seg_depth[p][i] >= max_depth:
                failed[p] = failed[p] or f"a segment still leaves the class after {max_depth} bisection levels"
            elif len(verts[p]) - 2 >= max_anchors:
                failed[p] = failed[p] or f"the anchor budget ({max_anchors}) is used up"
            else:
                push_rows.append(s)
        # midpoints: keep those already in c, push the others into c
        mids = grid[:, mid]
        new_points = {s: mids[s] for s in push_rows if int(pred[s, mid]) == int(target[s])}
        to_push = [s for s in push_rows if s not in new_points and not failed[todo[s][0]]]
        if to_push:
            res = deepfool(
                handle,
                mids[to_push].reshape(len(to_push), *shape),
                target=target[to_push],
                overshoot=overshoot,
                clip=clip,
                cancel=cancel,
            )
            for r, s in enumerate(to_push):
                if bool(res.converged[r]):
                    new_points[s] = (mids[s] + res.perturbation[r].reshape(dim)).detach()
                else:
                    p = todo[s][0]
                    failed[p] = failed[p] or "DeepFool could not push a midpoint into the class"
        # insert anchors, right to left within a pair so indices stay valid
        for s in sorted(new_points, key=lambda s: (todo[s][0], -todo[s][1])):
            p, i = todo[s]
            if failed[p]:
                continue
            depth = seg_depth[p][i] + 1
            verts[p].insert(i + 1, new_points[s])
            verified[p][i : i + 1] = [False, False]
            seg_depth[p][i : i + 1] = [depth, depth]
            deepest[p] = max(deepest[p], depth)
    else:
        for p in range(n_pairs):
            if not failed[p] and not all(verified[p]):
                failed[p] = f"a segment still leaves the class after {max_depth} bisection levels"
    for p in range(n_pairs):
        if not failed[p] and not all(verified[p]):
            failed[p] = "the search stopped before every segment was checked"

    # summaries
    width = max_anchors + 2
    anchors = torch.full((n_pairs, width, dim), math.nan)
    n_anchor = torch.zeros(n_pairs, dtype=torch.int64)
    deviation = torch.zeros(n_pairs)
    distance = (xa - xb).reshape(n_pairs, dim).norm(dim=1)
    length = torch.zeros(n_pairs)
    sample_pts, strip_pts = [], []
    for p in range(n_pairs):
        v = torch.stack(verts[p])
        anchors[p, : len(v)] = v
        n_anchor[p] = len(v) - 2
        d = v[-1] - v[0]
        dd = float(d @ d)
        if dd > 0 and len(v) > 2:
            t = ((v[1:-1] - v[0]) @ d / dd).clamp(0, 1)
            off = (v[1:-1] - v[0] - t[:, None] * d[None]).norm(dim=1)
            deviation[p] = off.max() / math.sqrt(dd)
        seg = (v[1:] - v[:-1]).norm(dim=1)
        length[p] = seg.sum()
        sample_pts.append(_along(v, seg, samples))
        strip_pts.append(_along(v, seg, strip))
    sampled = torch.stack(sample_pts)  # (P, G, D)
    stripped = torch.stack(strip_pts)  # (P, T, D)
    path_class = handle.predict(sampled.reshape(-1, *shape)).reshape(n_pairs, samples)
    strip_class = handle.predict(stripped.reshape(-1, *shape)).reshape(n_pairs, strip)
    success = torch.tensor([not f for f in failed], dtype=torch.bool)
    if progress is not None:
        progress(1.0, f"path search: {int(success.sum())} of {n_pairs} pairs joined inside their class")
    return PathResult(
        success=success,
        num_anchors=n_anchor,
        max_deviation=deviation,
        anchors=anchors.reshape(n_pairs, width, *shape),
        cls=ca,
        distance=distance,
        path_length=length,
        path_class=path_class,
        strip=stripped.reshape(n_pairs, strip, *shape),
        strip_class=strip_class,
        pair_index=pair_index if pair_index is not None else torch.tensor([[0, 1]] * n_pairs, dtype=torch.int64),
        depth=torch.tensor(deepest, dtype=torch.int64),
        reason=tuple(failed),
        resolution=resolution,
        max_depth=max_depth,
        max_anchors=max_anchors,
        overshoot=float(overshoot),
        evaluations=int(evaluations),
    )


def _along(v: torch.Tensor, seg: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` points evenly spaced by length along the polyline through ``v`` (n, D), endpoints included."""
    total = float(seg.sum())
    if total == 0:
        return v[:1].expand(count, -1).clone()
    cum = torch.cat([torch.zeros(1), seg.cumsum(0)])
    s = torch.linspace(0, total, count)
    k = torch.searchsorted(cum, s, right=True).clamp(1, len(v) - 1) - 1
    frac = ((s - cum[k]) / seg[k].clamp_min(1e-30)).clamp(0, 1)
    return v[k] + frac[:, None] * (v[k + 1] - v[k])


def sample_same_class_pairs(
    predicted: torch.Tensor, num_pairs: int, *, seed: int = 0, eligible: torch.Tensor | None = None
) -> torch.Tensor:
    """``num_pairs`` random pairs of distinct indices with the same predicted class: (P, 2) int64 (seeded).

    A pair is drawn uniformly among all same-class pairs of the eligible inputs; fewer pairs come back when fewer
    distinct pairs exist. Raises ValueError when no class has two eligible inputs.
    """
    num_pairs = check_int("num_pairs", num_pairs, 1)
    pred = predicted.detach().to("cpu", torch.int64).numpy()
    ok = np.ones(len(pred), dtype=bool) if eligible is None else eligible.detach().cpu().numpy().astype(bool)
    groups = {c: np.flatnonzero((pred == c) & ok) for c in np.unique(pred[ok])}
    groups = {c: g for c, g in groups.items() if len(g) >= 2}
    if not groups:
        raise ValueError("expected at least two (correctly classified) inputs of one class to pair, got none")
    classes = sorted(groups)
    weights = np.array([len(groups[c]) * (len(groups[c]) - 1) / 2 for c in classes], dtype=np.float64)
    available = int(weights.sum())
    want = min(num_pairs, available)
    rng = np.random.default_rng(seed)
    chosen: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(chosen) < want:
        c = classes[int(rng.choice(len(classes), p=weights / weights.sum()))]
        i, j = rng.choice(groups[c], size=2, replace=False)
        key = (int(min(i, j)), int(max(i, j)))
        if key in seen:
            continue
        seen.add(key)
        chosen.append((int(i), int(j)))
    return torch.tensor(chosen, dtype=torch.int64).reshape(-1, 2)


def connectivity_batch(
    handle: ModelHandle,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    num_pairs: int = 20,
    seed: int = 0,
    options: PathOptions | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    **fields: Unpack[PathFields],
) -> PathResult:
    """Paths between ``num_pairs`` random same-class pairs of ``images`` (N, *input_shape); see ``success_rate``.

    Both inputs of a pair are predicted as the same class and, when ``labels`` are given, correctly classified.
    ``options`` and the keywords after it: as in `find_paths`.
    """
    opts = options_with(PathOptions, options, dict(fields))
    x = handle.check_inputs(images.detach() if isinstance(images, torch.Tensor) else images)
    pred = handle.predict(x)
    eligible = None
    if labels is not None:
        lab = torch.as_tensor(labels).to(torch.int64).reshape(-1)
        if len(lab) != len(x):
            raise ValueError(f"expected one label per image ({len(x)}), got {len(lab)}")
        eligible = pred == lab
    pairs = sample_same_class_pairs(pred, num_pairs, seed=seed, eligible=eligible)
    return find_paths(
        handle, x[pairs[:, 0]], x[pairs[:, 1]], options=opts, pair_index=pairs, progress=progress, cancel=cancel
    )


@memoize(name="geometry.inspection.connectivity.find_path")
def _memoized_find_path(
    handle: ModelHandle,
    x1: torch.Tensor,
    x2: torch.Tensor,
    *,
    options: PathOptions = PathOptions(),  # noqa: B008 (frozen: a shared default is safe)
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> PathResult:
    return find_path(handle, x1, x2, options=options, progress=progress, cancel=cancel)


@memoize(name="geometry.inspection.connectivity.connectivity_batch")
def _memoized_connectivity_batch(
    handle: ModelHandle,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    num_pairs: int = 20,
    seed: int = 0,
    options: PathOptions = PathOptions(),  # noqa: B008 (frozen: a shared default is safe)
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> PathResult:
    return connectivity_batch(
        handle, images, labels, num_pairs=num_pairs, seed=seed, options=options, progress=progress, cancel=cancel
    )


cached_find_path = KeywordOptions(
    _memoized_find_path,
    PathOptions,
    doc="""`find_path` through the disk cache: ``cached_find_path(handle, x1, x2, options=PathOptions(...))`` or the
    options' fields as keywords; ``cache=`` picks a `DiskCache` (False: bypass); ``.is_cached(...)`` answers
    without computing.""",
)
cached_connectivity_batch = KeywordOptions(
    _memoized_connectivity_batch,
    PathOptions,
    doc="""`connectivity_batch` through the disk cache (``num_pairs``, ``seed``, then ``options=`` or its fields as
    keywords); ``cache=`` picks a `DiskCache` (False: bypass); ``.is_cached(...)`` answers without computing.""",
)
