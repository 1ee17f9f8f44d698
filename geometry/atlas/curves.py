"""Summaries of an atlas: the robustness curve R(eps) and the image-by-image comparison of two atlases.

R(eps) is the share of images whose margin (DeepFool's boundary distance, L2 input units) exceeds eps: the accuracy
under any L2 perturbation of norm eps *that DeepFool would find*, an upper bound of the true robust accuracy because
DeepFool's distance is an upper bound of the minimum one. Images already misclassified count as not robust (their
margin is to a wrong region), and so do images whose DeepFool did not converge (margin NaN: unknown).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["compare_atlases", "eps_grid", "robustness_curve"]


def eps_grid(margins: np.ndarray | Sequence[float], points: int = 200) -> np.ndarray:
    """``points`` radii from 0 to a bit past the largest finite margin (0..1 when there is none)."""
    m = np.asarray(margins, dtype=np.float64)
    m = m[np.isfinite(m)]
    top = float(m.max()) * 1.05 if m.size and m.max() > 0 else 1.0
    return np.linspace(0.0, top, int(points))


def robustness_curve(
    df: pd.DataFrame, eps: np.ndarray | Sequence[float] | None = None, *, by_class: bool = True
) -> pd.DataFrame:
    """R(eps) overall and per true class: a frame with column ``eps`` and one column per group (``"all"``, then
    each class label present), each the share of the group's images that are correctly classified with a margin
    greater than eps."""
    if "margin" not in df.columns:
        raise ValueError("expected an atlas with the margin analysis (a 'margin' column)")
    eps = eps_grid(df["margin"]) if eps is None else np.asarray(eps, dtype=np.float64)
    margin = df["margin"].to_numpy(dtype=np.float64)
    robust_margin = np.where(df["correct"].to_numpy(bool) & np.isfinite(margin), margin, -np.inf)
    out = {"eps": eps, "all": _share_above(robust_margin, eps)}
    if by_class:
        labels = df["label"].to_numpy()
        for c in sorted(set(labels.tolist())):
            out[str(c)] = _share_above(robust_margin[labels == c], eps)
    return pd.DataFrame(out)


def _share_above(values: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """(len(eps),) share of ``values`` strictly greater than each eps (sorted once, then binary search)."""
    if values.size == 0:
        return np.full(len(eps), np.nan)
    v = np.sort(values)
    return 1.0 - np.searchsorted(v, eps, side="right") / v.size


def compare_atlases(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Image by image: ``index``, ``label``, the margins and predictions of both, and ``margin_change`` = b - a
    (negative: the image came closer to the boundary with model b). Both atlases must be of the same images."""
    for name, df in (("a", a), ("b", b)):
        if "margin" not in df.columns:
            raise ValueError(f"expected atlas {name} with the margin analysis (a 'margin' column)")
    fa = a.attrs.get("data_fingerprint", None)
    fb = b.attrs.get("data_fingerprint", None)
    if fa and fb and fa != fb:
        raise ValueError("expected two atlases of the same data set (their data fingerprints differ)")
    keep = ["index", "label", "prediction", "correct", "margin"]
    joined = a[keep].merge(b[keep[:1] + keep[2:]], on="index", suffixes=("_a", "_b"), validate="one_to_one")
    joined["margin_change"] = joined["margin_b"] - joined["margin_a"]
    return joined
