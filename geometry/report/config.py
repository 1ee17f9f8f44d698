"""What the pre-deployment report runs: its sections and its configuration (`ReportConfig`).

The boundary analyses are configured by the library's own options objects (`DeepFoolOptions`, `CurvatureOptions`),
so the report keys its cached results exactly as the pages do: the same image with the same options is one cache
entry, whoever asked first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.report.thresholds import Thresholds

__all__ = ["PAGE_CURVATURE", "SECTION_KEYS", "SECTION_TITLES", "ReportConfig"]

SECTION_KEYS: tuple[str, ...] = (
    "model",
    "accuracy",
    "deepfool",
    "frequency",
    "curvature",
    "connectivity",
    "detection",
    "robustness",
)
SECTION_TITLES = {
    "model": "Model card",
    "accuracy": "Accuracy",
    "deepfool": "Distance to the boundary (DeepFool margins)",
    "frequency": "Margins along frequency bands",
    "curvature": "Curvature of the boundary",
    "connectivity": "Connectivity of the class regions",
    "detection": "Detecting small adversarial perturbations",
    "robustness": "Robustness to size, position, rotation and resolution",
}

# The Curvature page's default settings (k = 10 from each end, 300 random directions, automatic method, seed 0,
# nearest class, no clipping): the report measures each image with these, one image per call, so an image the page has
# shown comes from the same cache entry.
PAGE_CURVATURE = CurvatureOptions(k=10, num_random=300)


@dataclass(frozen=True)
class ReportConfig:
    """How much of each analysis the report runs (defaults: about a minute for the digits models on 2 CPU cores).

    ``deepfool``, ``curvature``: the options of those analyses (``curvature`` is applied to each of the
    ``curvature_images`` images on its own). ``seed``: the sample of images and the random choices of the other
    sections (the curvature's random directions follow ``curvature.seed``). ``thresholds``: what the go / no-go
    summary at the top of the report checks the numbers against.
    """

    n_images: int = 100  # DeepFool and frequency margins
    bands: int | None = None  # frequency bands, evenly spread from low to high (None: all)
    deepfool: DeepFoolOptions = DeepFoolOptions()  # noqa: RUF009 (frozen: a shared default is safe)
    curvature_images: int = 10
    curvature: CurvatureOptions = PAGE_CURVATURE
    connectivity_pairs: int = 20
    connectivity_pool: int = 200  # images the same-class pairs are drawn from
    detection_images: int = 50
    detection_directions: int = 32
    detection_fpr: float = 0.05
    robustness_images: int = 100
    shapes_images: int = 60  # per factor value, for models trained on shapes
    seed: int = 0
    thresholds: Thresholds = Thresholds()  # noqa: RUF009 (frozen: a shared default is safe)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "bands" and v is None:
                continue
            if f.name == "deepfool":
                if not isinstance(v, DeepFoolOptions):
                    raise TypeError(f"expected deepfool as a DeepFoolOptions, got {type(v).__name__}")
                continue
            if f.name == "curvature":
                if not isinstance(v, CurvatureOptions):
                    raise TypeError(f"expected curvature as a CurvatureOptions, got {type(v).__name__}")
                continue
            if f.name == "thresholds":
                if not isinstance(v, Thresholds):
                    raise TypeError(f"expected thresholds as a Thresholds, got {type(v).__name__}")
                continue
            if f.name == "detection_fpr":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                    raise ValueError(f"expected detection_fpr in [0, 1), got {v!r}")
                continue
            minimum = 0 if f.name == "seed" else (2 if f.name == "connectivity_pool" else 1)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ValueError(f"expected {f.name} as an int >= {minimum}, got {v!r}")

    @classmethod
    def quick(cls) -> ReportConfig:
        """A small configuration that runs in seconds (for tests and a first look)."""
        return cls(
            n_images=8,
            bands=3,
            curvature_images=3,
            curvature=CurvatureOptions(k=2, num_random=50),
            connectivity_pairs=4,
            connectivity_pool=24,
            detection_images=10,
            detection_directions=8,
            robustness_images=12,
            shapes_images=6,
        )

    @classmethod
    def with_images(cls, n: int, **changes: Any) -> ReportConfig:
        """The default configuration scaled to ``n`` images per analysis."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"expected n as an int >= 2, got {n!r}")
        return cls(
            **{
                **dict(
                    n_images=n,
                    curvature_images=min(10, n),
                    connectivity_pairs=max(1, min(20, n // 2)),
                    connectivity_pool=max(2, 2 * n),
                    detection_images=max(2, min(50, n)),
                    robustness_images=n,
                    shapes_images=max(6, min(60, n)),
                ),
                **changes,
            }
        )

    def with_seed(self, seed: int) -> ReportConfig:
        """This configuration with ``seed`` for every random choice, the curvature's random directions included."""
        return dataclasses.replace(self, seed=seed, curvature=dataclasses.replace(self.curvature, seed=seed))
