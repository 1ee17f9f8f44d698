"""Is the boundary curved in a few directions only? The share of its curvature energy in the most curved directions.

At a boundary point the shape operator has D' = D - 1 principal curvatures kappa_i on the tangent space; its
*curvature energy* is ``sum_i kappa_i^2`` (the squared Frobenius norm of the shape operator). "Curved in a few
directions, flat in the others" (Fawzi et al. 2018) means the most curved directions, a small part of D', carry most
of that energy. m random directions carry m / D' of it on average, whatever the spectrum.

The statistic, `concentration`: the share of the energy in the m = floor(FEW_FRACTION * D') largest |kappa|. Its null
does not grow with D: for an unstructured random symmetric Hessian (GOE) the top 10% of directions carry about 31% of
the energy at any D (a full-rank Wishart A = B B^T: about 50%); a Hessian of rank r <= m puts all of it there. The
total is estimated from the random-direction curvatures (`CurvatureResult.random_curvatures`) unless the spectrum was
computed whole, and the share is bracketed when the result holds fewer than the m largest |kappa| (k < m).

The verdicts: `CurvatureConcentration.few_directions` when the median share over the points is at least FEW_SHARE =
0.6 (its lower bound is), `spread` when it is below (its upper bound is); neither when the bracket straddles 0.6
(measure more principal curvatures, a larger k) or when D' < 10.

Estimating the total: for v uniform on the unit sphere of the D'-dim tangent space and M the shape operator,
``E[kappa(v)] = tr M / D'`` and ``E[kappa(v)^2] = (2 tr M^2 + (tr M)^2) / (D' (D' + 2))``, hence
``sum kappa_i^2 = tr M^2 = (D' (D' + 2) E[kappa^2] - (D' E[kappa])^2) / 2``, from the sample moments (the square of
the mean unbiased). It is kept between the energy of the principal curvatures measured and what the unmeasured ones
can hold: they lie between the k-th most positive and the k-th most negative measured curvature, so each carries at
most the larger of those two squared (a spectrum of rank < k is then exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geometry.boundary.curvature import CurvatureResult

__all__ = ["FEW_FRACTION", "FEW_RULE", "FEW_SHARE", "CurvatureConcentration", "concentration", "energy_from_random"]

FEW_FRACTION = 0.1  # "a few directions": at most this share of the tangent directions
FEW_SHARE = 0.6  # ... carrying at least this share of the curvature energy (GOE null: 0.31, Wishart: 0.50)
FEW_RULE = (  # the threshold and its meaning, in the words the readings quote
    f"'a few' means at least {FEW_SHARE:.0%} of sum kappa^2 in {FEW_FRACTION:.0%} of the directions; an unstructured "
    "random Hessian puts about 31% there"
)


@dataclass(frozen=True)
class CurvatureConcentration:
    """How much of the curvature energy the m = floor(FEW_FRACTION * D') most curved directions carry, at N points.

    The share is known exactly when the result holds the m largest |kappa| (m <= k, or the whole spectrum); otherwise
    it is bracketed: at least the share of the largest |kappa| held, at most that plus what the m - (held) others can
    carry (each at most the smaller end of the held spectrum, squared).
    """

    top: int  # m: the most curved directions counted (0: fewer than 10 tangent directions, no reading)
    tangent_dims: int  # D' = D - 1
    share_low: np.ndarray  # (N,) float64: lower bound of the share of sum kappa^2 in the m largest |kappa| (NaN: none)
    share_high: np.ndarray  # (N,) float64: upper bound (equal to share_low where the share is known)
    energy: np.ndarray  # (N,) float64: sum kappa^2 over all D' tangent directions (1 / input units^2), estimated
    exact: bool  # True when the whole spectrum was computed (the energy is not an estimate)

    @property
    def null_share(self) -> float:
        """What m random directions carry on average: m / D'."""
        return self.top / self.tangent_dims if self.tangent_dims else math.nan

    @staticmethod
    def _median(values: np.ndarray) -> float:
        finite = values[np.isfinite(values)]
        return float(np.median(finite)) if len(finite) else math.nan

    @property
    def median_low(self) -> float:
        """Median over the points of the lower bound (a lower bound of the median share)."""
        return self._median(self.share_low)

    @property
    def median_high(self) -> float:
        """Median over the points of the upper bound (an upper bound of the median share)."""
        return self._median(self.share_high)

    @property
    def few_directions(self) -> bool:
        """True when, at the median point, the m most curved directions carry at least FEW_SHARE of the energy."""
        return self.top >= 1 and self.median_low >= FEW_SHARE

    @property
    def spread(self) -> bool:
        """True when, at the median point, they carry less than FEW_SHARE of it (the curvature is not in a few)."""
        return self.top >= 1 and self.median_high < FEW_SHARE

    def reading(self, k: int) -> str:
        """The share and what it says, e.g. "the 6 most curved of the 63 tangent directions carry 75% of the curvature
        energy sum kappa^2 (6 random directions carry 10%): the boundary is curved in a few directions and nearly flat
        in the others" (the median over the points when there are several); ``k``: principal curvatures measured at
        each end (named when they are too few to tell). Empty when there is no reading (D' < 10, nothing measured)."""
        low, high = self.median_low, self.median_high
        if self.top < 1 or not math.isfinite(low):
            return ""
        share = f"{low:.0%}" if high - low < 0.005 else f"between {low:.0%} and {high:.0%}"
        over = "median over the points; " if np.isfinite(self.share_low).sum() > 1 else ""
        head = (
            f"the {self.top} most curved of the {self.tangent_dims} tangent directions carry {share} of the curvature "
            f"energy sum kappa^2 ({over}{self.top} random directions carry {self.null_share:.0%})"
        )
        if self.few_directions:
            return f"{head}: the boundary is curved in a few directions and nearly flat in the others"
        if self.spread:
            return f"{head}: the curvature is spread over many directions, not concentrated in a few"
        return (
            f"{head}: whether it is concentrated in a few directions cannot be told from the {k} principal curvatures "
            "measured at each end (a larger k tells)"
        )


def energy_from_random(random_curvatures: np.ndarray, tangent_dims: int) -> float:
    """``sum_i kappa_i^2`` over the ``tangent_dims`` principal curvatures, estimated from ``random_curvatures``
    ((M,) kappa(v) at M >= 2 independent uniform unit tangent directions; NaNs dropped); NaN with fewer than 2."""
    kappa = np.asarray(random_curvatures, dtype=np.float64)
    kappa = kappa[np.isfinite(kappa)]
    count = len(kappa)
    if count < 2:
        return math.nan
    d = float(tangent_dims)
    s1, s2 = float(kappa.mean()), float((kappa**2).mean())
    mean_squared = (count * s1**2 - s2) / (count - 1)  # unbiased estimate of (E kappa)^2
    return max(0.0, (d * (d + 2) * s2 - d * d * mean_squared) / 2)


def concentration(result: CurvatureResult) -> CurvatureConcentration:
    """The share of each point's curvature energy in its m = floor(FEW_FRACTION * D') most curved directions.

    The energy is exact when the whole spectrum was computed (2k >= D'), else `energy_from_random`, kept between the
    measured principal curvatures' energy and what the unmeasured ones can add: they lie between the k-th most positive
    and the k-th most negative measured curvature, so each carries at most the larger of those two squared.
    """
    kappa = result.curvatures.detach().double().cpu().numpy()  # (N, held): k from each end, decreasing
    rand = result.random_curvatures.detach().double().cpu().numpy()  # (N, M)
    tangent = max(0, math.prod(result.boundary_point.shape[1:]) - 1)
    held = kappa.shape[1]
    exact = held >= tangent
    k = tangent if exact else min(result.k, held)
    m = int(FEW_FRACTION * tangent)
    n = len(kappa)
    low, high, energy = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        row = kappa[i]
        if not np.isfinite(row).all():
            continue
        squares = np.sort(row**2)[::-1]
        measured = float(squares.sum())
        # the largest square an unmeasured curvature can have (0 when the whole spectrum is held)
        cap = 0.0 if exact else float(max(row[k - 1] ** 2, row[-k] ** 2))
        total = (
            measured
            if exact
            else min(measured + (tangent - held) * cap, max(measured, energy_from_random(rand[i], tangent)))
        )
        energy[i] = total
        if m < 1 or not total > 0:
            continue
        # the m largest |kappa| are among the ones held when m <= k; otherwise the m largest held bound their energy
        # from below, and the m largest of (held, m unmeasured ones at the cap) from above
        low[i] = float(squares[:m].sum()) / total
        if m <= k:
            high[i] = low[i]
        else:
            high[i] = min(1.0, float(np.sort(np.r_[squares, np.full(m, cap)])[::-1][:m].sum()) / total)
    return CurvatureConcentration(
        top=m, tangent_dims=tangent, share_low=low, share_high=high, energy=energy, exact=exact
    )
