"""Every view works on a user's own model: a state-dict file loaded by path, with no model card behind it."""

from __future__ import annotations

import shutil

import pytest

from tests.ui.apptest import ROOT, app
from ui.views import VIEWS


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Sidebar choices for a weights file alone (the built-in ReLU CNN's weights, without its model card)."""
    path = tmp_path_factory.mktemp("own") / "my-cnn.safetensors"
    shutil.copy(ROOT / "assets" / "models" / "digits-cnn-relu.safetensors", path)
    return {
        "model_source": "Path",
        "model_path": str(path),
        "model_arch": "cnn",
        "model_activation": "relu",  # what a bare state dict cannot tell: the sidebar asks
        "model_pool": "max",
        "model_shape": "1, 8, 8",
        "model_classes": "0,1,2,3,4,5,6,7,8,9",
        "dataset": "digits",
    }


@pytest.mark.parametrize("view", [v.script for v in VIEWS[1:]])
def test_every_view_runs_on_a_model_loaded_from_a_file(view, own_model):
    at = app(timeout=600, **own_model)
    at.run()
    assert not at.exception
    assert any(s.value == "Model: cnn (my-cnn.safetensors)" for s in at.subheader)  # not the default model
    at.switch_page(view).run()
    assert not at.exception, [str(e.value)[:500] for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == [next(v.title for v in VIEWS if v.script == view)]
    if view == "views/curvature.py":  # no model card says "smooth": the ReLU layers are found and smoothed
        assert any("Measured by: Softplus" in i.value for i in at.info)
