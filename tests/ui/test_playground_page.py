"""The Playground page in AppTest: a link sets the settings and the epoch and the page writes them back, Step
trains one epoch, the readings and the exact region count show, and a kept network loads in the other views."""

from __future__ import annotations

import geometry
from geometry.playground import PlaygroundConfig, config_from_query, config_to_query
from tests.ui.apptest import app


def _open(**query: str):
    at = app(timeout=300)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("views/playground.py").run()
    assert not at.exception, at.exception
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_link_reproduces_the_run_and_the_page_writes_it_back():
    config = PlaygroundConfig(dataset="blobs", classes=4, noise=0.3, hidden=(6, 5), activation="tanh", seed=2)
    at = _open(**config_to_query(config, 3))
    assert at.session_state["pg_dataset"] == "blobs" and at.session_state["pg_hidden"] == "6, 5"
    assert _metrics(at)["Epoch"] == "3"
    trainer = at.session_state["pg_trainer"]
    assert trainer.config == config and trainer.epoch == 3
    # one step: the epoch in the URL follows, and the URL reads back as the same config
    at.button(key="pg_step").click().run()
    assert _metrics(at)["Epoch"] == "4"
    params = {k: at.query_params[k] for k in at.query_params}
    params = {k: v[0] if isinstance(v, list) else v for k, v in params.items()}
    assert config_from_query(params) == (config, 4)
    assert any("hidden units changes" in m.value or "κ" in m.value for m in at.markdown)  # tanh: curvature reading


def test_relu_page_shows_the_exact_regions_and_keeps_the_network_for_other_views():
    at = _open()
    texts = [m.value for m in at.markdown]
    assert any(t.startswith("**") and "linear regions** in the view (exact)" in t for t in texts)
    assert any(t.startswith(("✓", "✗")) and "linear regions are more than one layer" in t for t in texts)
    assert len(at.main.get("image")) >= 1  # the live map is an image
    at.button(key="pg_keep").click().run()
    name = at.session_state["pg_kept"]
    handle = geometry.load_model(name, device="cpu")
    trainer = at.session_state["pg_trainer"]
    x = trainer.x_test[:20]
    assert (handle.predict(x) == trainer.network(x).argmax(1)).all()
    link = geometry.model_card(name)["playground_link"]  # the card says how to open the run again
    params = dict(part.split("=", 1) for part in link.removeprefix("?").split("&"))
    assert config_from_query(params) == (trainer.config, trainer.epoch)


def test_the_data_set_follows_the_model_when_switching_built_in_2d_models():
    at = app(timeout=300, builtin_model="moons-mlp").run()
    assert not at.exception and at.session_state["dataset"] == "moons"
    at.session_state["builtin_model"] = "blobs-mlp"
    at.run()
    assert not at.exception
    assert at.session_state["dataset"] == "blobs-4"  # was: moons points drawn on the blobs regions
    assert at.session_state["selection"].dataset.name == "blobs-4"
