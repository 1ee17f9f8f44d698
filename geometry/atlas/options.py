"""What an atlas measures: the analyses to run on every image and the options of each (`AtlasOptions`).

A frozen dataclass, checked once when it is made, keyed field by field by the cache (`geometry.runtime.memo`), so a
shard computed by the command line, a Ray worker or the app is the same entry. The defaults are cheaper than those of
the interactive views (few principal curvatures and random directions, no random-subspace baseline): an atlas runs
over thousands of images. Only what changes a row is here; the engine, shard size and progress are not.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.inspection.options import DetectionOptions, MarginOptions

__all__ = ["ANALYSES", "AtlasOptions", "parse_analyses"]

# what each analysis adds to a row (see `geometry.atlas.rows` for the columns)
ANALYSES: dict[str, str] = {
    "margin": "DeepFool boundary distance, the class across and convergence",
    "curvature": "top-k / bottom-k principal curvatures and random-direction curvatures at the boundary point",
    "frequency": "the margins inside DCT frequency bands (the 'Hold me tight' profile)",
    "detection": "the curvature statistic of the adversarial detector (Fawzi et al.)",
}


def parse_analyses(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"margin,curvature"`` or an iterable of names -> a tuple in `ANALYSES` order, without repeats.

    ``curvature`` needs the boundary point, so it brings ``margin`` along.
    """
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in ANALYSES]
    if unknown or not names:
        raise ValueError(f"expected analyses among {', '.join(ANALYSES)}, got {', '.join(unknown) or 'none'}")
    if "curvature" in names:
        names.append("margin")
    return tuple(a for a in ANALYSES if a in names)


@dataclass(frozen=True)
class AtlasOptions:
    """The analyses of an atlas and how each measures.

    ``analyses``: names from `ANALYSES` (normalised by `parse_analyses`). ``deepfool``: the margin's DeepFool (also
    the boundary point of the curvature). ``curvature``: k pairs from each end of the spectrum and ``num_random``
    random tangent directions; its own ``deepfool`` field is replaced by ``deepfool`` so both share one boundary
    point. ``frequency``: the band layout and subspace DeepFool. ``detection``: directions and step of the statistic.
    """

    analyses: tuple[str, ...] = ("margin",)
    deepfool: DeepFoolOptions = field(default_factory=DeepFoolOptions)
    curvature: CurvatureOptions = field(default_factory=lambda: CurvatureOptions(k=3, num_random=32))
    frequency: MarginOptions = field(default_factory=lambda: MarginOptions(num_random=0, full=False))
    detection: DetectionOptions = field(default_factory=DetectionOptions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "analyses", parse_analyses(self.analyses))
        for name, cls in (
            ("deepfool", DeepFoolOptions),
            ("curvature", CurvatureOptions),
            ("frequency", MarginOptions),
            ("detection", DetectionOptions),
        ):
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"expected {name} to be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        if self.curvature.deepfool != self.deepfool:  # one boundary point for the margin and the curvature
            object.__setattr__(self, "curvature", dataclasses.replace(self.curvature, deepfool=self.deepfool))

    def parameters(self) -> str:
        """The options that shape the rows, as one JSON line (the atlas's ``parameters`` column): the analyses and
        the options of those that run."""
        used = {"analyses": list(self.analyses)}
        if "margin" in self.analyses:
            used["deepfool"] = _fields(self.deepfool)
        for name in ("curvature", "frequency", "detection"):
            if name in self.analyses:
                used[name] = _fields(getattr(self, name))
        return json.dumps(used, sort_keys=True, separators=(",", ":"))


def _fields(options: Any) -> dict[str, Any]:
    out = dataclasses.asdict(options)
    out.pop("deepfool", None)  # the curvature's DeepFool is the margin's
    return out
