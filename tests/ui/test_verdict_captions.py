"""The Curvature page's flatness caption says "curved along a few" only where the few most curved directions carry
most of the curvature energy: true on a low-rank quadratic boundary, false on a random-Hessian one (where, relative to
the largest |kappa|, almost every random direction is flat too)."""

from __future__ import annotations

import pytest

from geometry.boundary.curvature import boundary_curvature
from geometry.boundary.spectrum import concentration
from geometry.report import PAGE_CURVATURE
from tests.geometry.test_verdicts import low_rank_model, random_hessian_model
from ui import curvature as ui_curvature


@pytest.mark.parametrize(("model", "few"), [(low_rank_model, True), (random_hessian_model, False)])
def test_the_flatness_caption_says_curved_along_a_few_only_when_it_is(model, few):
    handle, x = model(200)
    curv = boundary_curvature(handle, x[:1], options=PAGE_CURVATURE)
    kappa = curv.curvatures[0].numpy()
    caption = ui_curvature.flatness_caption(
        curv.random_curvatures[0].numpy(), kappa, spectrum=concentration(curv), k=curv.k
    )
    assert caption.startswith(f"{ui_curvature.flatness(curv.random_curvatures[0].numpy(), kappa)[0]:.0%} of the 300")
    assert ("curved along a few" in caption) is few
    assert ("curved in a few directions and nearly flat in the others" in caption) is few
    assert ("spread over many directions" in caption) is not few
    assert "most curved of the 199 tangent directions carry" in caption
    # without the spectrum the caption said "curved along a few" on both models
    assert "curved along a few" in ui_curvature.flatness_caption(curv.random_curvatures[0].numpy(), kappa)
