"""Streamlit glue of the Curvature page: the settings, and every computation through geometry's disk cache.

Each computation is a memoized library function (`geometry.runtime.memo`) run through `ui.progress.run_cached`: its
key is the model's fingerprint, the image's bytes and the whole options object, so a repeated view (or the same view
after a restart, by another user, in the Train view or in a report with the same options) comes back from disk.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import streamlit as st
import torch

from geometry.boundary.curvature import (
    CurvatureProfile,
    CurvatureResult,
    VulnerabilityResult,
    cached_curvature,
    cached_curvature_profiles,
    cached_curvature_vulnerability,
)
from geometry.boundary.deepfool import DeepFoolResult, cached_deepfool
from geometry.boundary.hessian import smooth_handle
from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.boundary.spectrum import FEW_RULE, CurvatureConcentration
from geometry.models.handle import ModelHandle
from geometry.slices.evaluate import SliceResult, cached_slice
from geometry.slices.planes import plane_from_directions
from ui.progress import progress_bar, run_cached

NEAREST = -1  # the target selector's "nearest class" (DeepFoolOptions.target None)
METHODS: dict[str, str] = {
    "auto": "Automatic (exact for smooth models, softplus-smoothed for ReLU ones)",
    "exact": "Exact Hessian (double backprop)",
    "finite-difference": "Finite differences of gradients at scale h",
    "softplus": "Softplus-smoothed copy of the network (ReLU → softplus β)",
}
VULNERABILITY_DIMS = (1, 2, 3, 5, 10, 20, 50)
FLAT_FRACTION = 0.1  # a random direction counts as flat when |κ| < this fraction of the largest principal |κ|


def effective_k(handle: ModelHandle, k: int) -> int:
    """k clipped to what the tangent space holds (D - 1 directions)."""
    return max(1, min(int(k), math.prod(handle.input_shape) - 1))


def page_options(handle: ModelHandle, options: CurvatureOptions) -> CurvatureOptions:
    """``options`` with k clipped to the model's tangent space (`effective_k`), as the page computes them."""
    k = effective_k(handle, options.k)
    return options if k == options.k else dataclasses.replace(options, k=k)


def run_deepfool(handle: ModelHandle, x: torch.Tensor, options: DeepFoolOptions) -> DeepFoolResult:
    """DeepFool on one image ``x`` (1, *input_shape), through the cache (`cached_deepfool`)."""
    return run_cached(cached_deepfool, handle, x, options, label="DeepFool")


def target_note(result: DeepFoolResult, names: Sequence[str], image: int = 0) -> str:
    """A sentence for a targeted run whose boundary point is not on the boundary with the target (empty otherwise).

    z is where the way from x to the target leaves x's region (`deepfool`); when it first enters a third class's
    region, the distance and the curvature are those of the boundary with that class, and the page says so.
    """
    target = int(result.target[image])
    if target < 0 or not bool(result.converged[image]) or bool(result.boundary_is_target[image]):
        return ""
    j, k = int(result.original_label[image]), int(result.boundary_class[image])
    return (
        f"The way from x to class {names[target]} leaves the region of {names[j]} into class {names[k]} first, so z is "
        f"on the boundary between {names[j]} and {names[k]}, not on one with {names[target]}: the distance and the "
        f"curvature below are those of the {names[j]} | {names[k]} boundary (F = f({names[k]}) − f({names[j]}))."
    )


def run_curvature(handle: ModelHandle, x: torch.Tensor, options: CurvatureOptions) -> CurvatureResult:
    """Principal curvatures and random-direction curvatures at DeepFool's boundary point, through the cache
    (`cached_curvature`; its DeepFool step is the entry `run_deepfool` made with ``options.deepfool``)."""
    return run_cached(cached_curvature, handle, x, page_options(handle, options), label="Curvature")


def profile_model(handle: ModelHandle, curvature: CurvatureResult) -> ModelHandle:
    """The model whose boundary the cross-sections draw: the smoothed copy when curvature was measured on it."""
    if curvature.method == "softplus":
        return _smooth(handle, handle.fingerprint, float(curvature.beta))
    return handle


@st.cache_resource(show_spinner=False, max_entries=2)
def _smooth(_handle: ModelHandle, fingerprint: str, beta: float) -> ModelHandle:
    """The softplus copy of a model, held per (model fingerprint, beta); the handle itself is not hashed."""
    del fingerprint  # the cache key
    return smooth_handle(_handle, beta=beta)


def run_profiles(
    handle: ModelHandle,
    curvature: CurvatureResult,
    *,
    zoom: float = 1.0,
    resolution: int | None = None,
) -> CurvatureProfile:
    """Cross-sections along the most positive and the most negative principal directions, through the cache."""
    model = profile_model(handle, curvature)
    if resolution is None:  # fewer points for large inputs: each costs ~45 forward passes
        resolution = 61 if math.prod(handle.input_shape) <= 1024 else 41
    extent = zoom * 1.2 * float(curvature.boundary_distance[0])  # x (at about -distance) stays in view
    return run_cached(
        cached_curvature_profiles,
        handle,
        curvature,
        extent=extent,
        resolution=resolution,
        model=model,
        label="Cross-sections",
    )


def run_region(
    handle: ModelHandle, curvature: CurvatureResult, profile: CurvatureProfile, row: int, resolution: int | None = None
) -> SliceResult:
    """The class regions on the plane (u_i, n) through z, from the Slices engine (cached by it)."""
    if resolution is None:
        resolution = 96 if math.prod(handle.input_shape) <= 1024 else 64
    i = int(profile.direction_index[row])
    plane = plane_from_directions(
        curvature.boundary_point[0],
        curvature.directions[0, i],
        curvature.normal[0],
        kind="normal + curvature",
        origin_name="z",
    )
    w = float(profile.window)
    model = profile_model(handle, curvature)
    with progress_bar(f"Regions around direction {i + 1}") as progress:
        return cached_slice(
            model,
            plane,
            extent=(-w, w, -w, w),
            resolution=resolution,
            adaptive=True,
            target_pair=(int(curvature.boundary_class[0]), int(curvature.original_label[0])),
            progress=progress,
        )


def vulnerability_dims(handle: ModelHandle, curvature: CurvatureResult) -> list[int]:
    """The subspace dimensions the vulnerability curve uses: the standard ones up to k."""
    dim = math.prod(handle.input_shape)
    m = curvature.curvatures.shape[1]
    limit = m if m >= dim - 1 else min(curvature.k, m)
    dims = [d for d in VULNERABILITY_DIMS if d <= limit]
    return dims or [1]


def run_vulnerability(
    handle: ModelHandle, x: torch.Tensor, curvature: CurvatureResult, *, num_random: int = 3, order: str = "absolute"
) -> VulnerabilityResult:
    """DeepFool in the span of the most curved directions vs random subspaces, through the cache."""
    dims = vulnerability_dims(handle, curvature)
    return run_cached(
        cached_curvature_vulnerability,
        handle,
        x,
        curvature,
        dims=dims,
        num_random=num_random,
        order=order,
        seed=curvature.seed,
        label="Vulnerability",
    )


def all_zero(curvature: CurvatureResult) -> bool:
    """True when every computed principal curvature is exactly 0 (a flat boundary, or a piecewise-linear model)."""
    kappa = curvature.curvatures[0]
    return bool(torch.isfinite(kappa).all()) and bool((kappa == 0).all())


def x_in_plane(x: torch.Tensor, curvature: CurvatureResult, direction: int, image: int = 0) -> tuple[float, float]:
    """Coordinates ``(t, s) = ((x - z) . u, (x - z) . n)`` of x's orthogonal projection onto the cross-section's plane
    through z spanned by the principal direction ``u = directions[image, direction]`` and the normal n."""
    d = (x.reshape(-1).double() - curvature.boundary_point[image].reshape(-1).double()).cpu()
    u = curvature.directions[image, direction].reshape(-1).double().cpu()
    n = curvature.normal[image].reshape(-1).double().cpu()
    return float(d @ u), float(d @ n)


def flatness(
    random_curvatures: np.ndarray, principal_curvatures: np.ndarray, fraction: float = FLAT_FRACTION
) -> tuple[float, float, int]:
    """``(share, cutoff, count)``: the share of the ``count`` finite random-direction curvatures with |κ| < cutoff,
    where cutoff = ``fraction`` x the largest principal |κ| (a share of exact zeros when that is 0)."""
    rand = np.asarray(random_curvatures, dtype=float)
    rand = rand[np.isfinite(rand)]
    kappa = np.asarray(principal_curvatures, dtype=float)
    kappa = kappa[np.isfinite(kappa)]
    peak = float(np.abs(kappa).max()) if len(kappa) else 0.0
    cutoff = fraction * peak
    if not len(rand):
        return float("nan"), cutoff, 0
    share = float(np.mean(np.abs(rand) < cutoff)) if peak > 0 else float(np.mean(rand == 0))
    return share, cutoff, len(rand)


def flatness_caption(
    random_curvatures: np.ndarray,
    principal_curvatures: np.ndarray,
    fraction: float = FLAT_FRACTION,
    *,
    spectrum: CurvatureConcentration | None = None,
    k: int = 0,
) -> str:
    """What the histogram measured, in words that follow the measurement (not the expected picture).

    ``spectrum``: the point's curvature concentration (`geometry.boundary.spectrum`, ``k`` principal curvatures at
    each end): "curved along a few" is then said only when the few most curved directions carry most of sum kappa^2
    (relative to the largest |kappa|, an unstructured random Hessian is also flat along almost every random direction),
    and the share is quoted."""
    text = _flatness_words(random_curvatures, principal_curvatures, fraction, spectrum)
    reading = spectrum.reading(k) if spectrum is not None else ""
    return f"{text} {reading[0].upper()}{reading[1:]} ({FEW_RULE})." if reading else text


def _flatness_words(
    random_curvatures: np.ndarray,
    principal_curvatures: np.ndarray,
    fraction: float,
    spectrum: CurvatureConcentration | None,
) -> str:
    share, cutoff, count = flatness(random_curvatures, principal_curvatures, fraction)
    if count == 0:
        return "No random tangent directions were sampled."
    if cutoff == 0:
        return (
            f"Every computed principal curvature is 0, and {share:.0%} of the {count} random tangent directions have "
            "κ = 0 exactly: this method sees no curvature at this point."
        )
    head = (
        f"{share:.0%} of the {count} random tangent directions have |κ| < {cutoff:.3g} "
        f"({fraction:.0%} of the largest principal |κ|, {cutoff / fraction:.3g})"
    )
    if share >= 0.9:
        if spectrum is not None and not spectrum.few_directions:
            return (
                head
                + ": here the boundary is flat along almost every random direction, relative to its most curved one."
            )
        return head + ": here the boundary is flat along almost every direction and curved along a few."
    if share >= 0.5:
        return head + f": here the boundary is flat along most directions; {1 - share:.0%} of them are more curved."
    return (
        head + f": here the boundary is not flat along most directions — {1 - share:.0%} of random directions bend "
        "by more than that."
    )
