"""The options of the boundary family, in one place: what DeepFool and the curvature measurement are asked to do.

`DeepFoolOptions` and `CurvatureOptions` are frozen dataclasses, checked once when they are made, so every caller
(a page, the Train view, the report, a script) passes one object, and the cache keys them field by field
(`geometry.runtime.memo`). Only options that can change a result are here: progress, cancellation and batch sizes
are arguments of the calls. The defaults below are THE defaults of `deepfool` and `boundary_curvature`.

Numbers are normalised when an object is made (``overshoot=0`` becomes ``0.0``) so that equal options give equal keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np

from geometry.runtime.options import set_field
from geometry.runtime.validate import check_bool, check_int, check_optional_int, check_positive

__all__ = ["CURVATURE_METHODS", "CurvatureMethod", "CurvatureOptions", "DeepFoolOptions"]

CurvatureMethod = Literal["auto", "exact", "finite-difference", "softplus"]
CURVATURE_METHODS = ("auto", "exact", "finite-difference", "softplus")
DEFAULT_BETA = 10.0  # softplus sharpness: softplus(x) = log(1 + exp(beta x)) / beta -> relu(x) as beta grows

Options = TypeVar("Options", "DeepFoolOptions", "CurvatureOptions")


@dataclass(frozen=True)
class DeepFoolOptions:
    """What `deepfool` is asked to do (see its docstring for the algorithm).

    ``target``: the class to reach, None for the nearest boundary (a tensor of one target per image is a keyword
    of `deepfool`, not an option). ``candidates``: classes considered when untargeted (those with the highest logits
    at x). ``overshoot``: r = (1 + overshoot) * (sum of the steps), in [0, 10). ``max_iter``: iterations per image.
    ``clip``: keep every iterate in the input range. ``tol``: bisection tolerance on ||z - x|| (input units).
    """

    target: int | None = None
    candidates: int = 10
    overshoot: float = 0.02
    max_iter: int = 50
    clip: bool = False
    tol: float = 1e-5

    def __post_init__(self) -> None:
        if isinstance(self.target, (bool, np.bool_)) or not isinstance(self.target, (int, np.integer, type(None))):
            raise TypeError(f"expected target as an int class index or None, got {self.target!r}")
        set_field(self, "target", check_optional_int("target", self.target, 0))
        set_field(self, "candidates", check_int("candidates", self.candidates, 1))
        overshoot = self.overshoot
        if isinstance(overshoot, bool) or not isinstance(overshoot, (int, float, np.integer, np.floating)):
            raise ValueError(f"expected overshoot as a number in [0, 10), got {overshoot!r}")
        if not 0 <= overshoot < 10:
            raise ValueError(f"expected overshoot as a number in [0, 10), got {overshoot!r}")
        set_field(self, "overshoot", float(overshoot))
        set_field(self, "max_iter", check_int("max_iter", self.max_iter, 1))
        set_field(self, "clip", check_bool("clip", self.clip))
        set_field(self, "tol", check_positive("tol", self.tol))


@dataclass(frozen=True)
class CurvatureOptions:
    """What `boundary_curvature` is asked to do (see its docstring for the methods).

    ``k``: principal pairs from each end of the spectrum. ``method``: one of `CURVATURE_METHODS`. ``h``: the
    finite-difference step (input units; None: 1% of the input range). ``beta``: softplus sharpness.
    ``num_random``: random unit tangent directions per image. ``max_iter`` (None: automatic) / ``tol``: Lanczos steps
    and relative residual tolerance. ``dense_limit``: finite differences assemble the Hessian up to this many input
    dimensions. ``seed``: the random start vectors and directions. ``deepfool``: how the boundary point is found.
    """

    k: int = 10
    method: CurvatureMethod = "auto"
    h: float | None = None
    beta: float = DEFAULT_BETA
    num_random: int = 200
    max_iter: int | None = None
    tol: float = 1e-4
    dense_limit: int = 4096
    seed: int = 0
    deepfool: DeepFoolOptions = field(default_factory=DeepFoolOptions)

    def __post_init__(self) -> None:
        set_field(self, "k", check_int("k", self.k, 1))
        if self.method not in CURVATURE_METHODS:
            raise ValueError(f"expected method to be one of {', '.join(CURVATURE_METHODS)}, got {self.method!r}")
        set_field(self, "h", None if self.h is None else check_positive("h", self.h))
        set_field(self, "beta", check_positive("beta", self.beta))
        set_field(self, "num_random", check_int("num_random", self.num_random, 0))
        set_field(self, "max_iter", check_optional_int("max_iter", self.max_iter, 1))
        set_field(self, "tol", check_positive("tol", self.tol))
        set_field(self, "dense_limit", check_int("dense_limit", self.dense_limit, 0))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"expected seed as an int, got {self.seed!r}")
        set_field(self, "seed", int(self.seed))
        if not isinstance(self.deepfool, DeepFoolOptions):
            raise TypeError(f"expected deepfool to be a DeepFoolOptions, got {type(self.deepfool).__name__}")
