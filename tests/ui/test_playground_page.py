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


def _captions(at) -> list[str]:
    return [img.caption for element in at.main.get("image") for img in element.proto.imgs]


def test_the_epoch_metric_and_the_map_caption_name_the_same_epoch():
    at = _open()
    at.button(key="pg_step").click().run()
    at.session_state["pg_playing"] = True  # one live tick: the map fragment steps, then draws the numbers
    at.run()
    assert not at.exception, at.exception
    epoch = at.session_state["pg_trainer"].epoch
    assert epoch == 2
    assert _metrics(at)["Epoch"] == str(epoch)
    assert any(c.startswith(f"epoch {epoch}") for c in _captions(at)), _captions(at)


def test_digits_mode_trains_the_cnn_and_redraws_the_slice():
    at = _open()
    at.radio(key="pg_mode").set_value("digits").run()
    assert not at.exception, at.exception
    assert "epoch 0" in _captions(at) and _metrics(at)["Epoch"] == "0"
    before = _captions(at)
    for _ in range(3):
        at.button(key="pgd_step").click().run()
    assert not at.exception, at.exception
    pg = at.session_state["pgd_trainer"]
    assert pg.epoch == 3 and _metrics(at)["Epoch"] == "3" and "epoch 3" in _captions(at)
    assert (pg.frames[0].labels != pg.frames[-1].labels).any()  # the slice's regions moved
    assert pg.history[-1]["test_accuracy"] > pg.history[0]["test_accuracy"] + 0.2
    assert _metrics(at)["Test accuracy"] == f"{pg.history[-1]['test_accuracy']:.1%}"
    assert before != _captions(at)


def test_a_click_on_the_point_editor_adds_a_point_of_the_chosen_class(monkeypatch):
    from ui import playground as U

    state = {U.ADD_CLASS: 1, U.ADDED: [(0.5, 0.5, 0)]}
    monkeypatch.setattr(U.st, "session_state", state)
    # the selection event as st.plotly_chart(on_select=...) keeps it under the chart's key
    state[U.EDITOR] = {"selection": {"points": [{"x": 1.25, "y": -0.75, "curve_number": 1, "point_index": 7}]}}
    U.on_pick()
    assert state[U.ADDED] == [(0.5, 0.5, 0), (1.25, -0.75, 1)]
    state[U.EDITOR] = {"selection": {"points": [], "box": [], "lasso": []}}  # a click that picked nothing
    U.on_pick()
    assert len(state[U.ADDED]) == 2
    U.undo_point()
    assert state[U.ADDED] == [(0.5, 0.5, 0)]
    assert U.picked_point(None) is None


def test_added_points_retrain_to_the_same_epoch_and_go_in_the_link():
    at = _open()
    for _ in range(3):
        at.button(key="pg_step").click().run()
    at.session_state["pg_added"] = [(1.234, -0.5, 1), (-2.0, 2.0, 0)]  # what two clicks leave
    at.run()
    assert not at.exception, at.exception
    trainer = at.session_state["pg_trainer"]
    assert trainer.epoch == 3 and trainer.config.added == ((1.23, -0.5, 1), (-2.0, 2.0, 0))
    assert trainer.x_train[-2:].tolist() == [[1.2300000190734863, -0.5], [-2.0, 2.0]]
    params = {k: at.query_params[k] for k in at.query_params}
    params = {k: v[0] if isinstance(v, list) else v for k, v in params.items()}
    assert params["add"] == "1.23,-0.5,1;-2.0,2.0,0"
    assert config_from_query(params) == (trainer.config, 3)
    at.button(key="pg_clear").click().run()
    assert "add" not in at.query_params and at.session_state["pg_trainer"].config.added == ()


def test_a_link_to_a_kept_playground_network_opens_it_on_any_page():
    from geometry.playground import Playground
    from ui.playground import keep

    pg = Playground(PlaygroundConfig(dataset="blobs", classes=4, hidden=(6,), seed=5))
    pg.step(2)
    name = keep(pg)
    at = app(timeout=300)
    at.query_params["model"] = name
    at.run()  # the Home view: reads the card's training fields (it once failed on a Playground card)
    assert not at.exception, at.exception
    assert at.session_state["selection"].handle.name == name
    for view in ("views/margins.py", "views/slices.py"):
        at.switch_page(view).run()
        assert not at.exception, at.exception
        selection = at.session_state["selection"]
        assert selection.handle.name == name and selection.dataset.name == "blobs-4"  # the data follows the model
        x = pg.x_test[:10]
        assert (selection.handle.predict(x) == pg.network(x).argmax(1)).all()


def test_each_hidden_unit_has_a_map_that_enlarges_under_the_pointer():
    import base64
    import io
    import re

    from PIL import Image

    config = PlaygroundConfig(hidden=(5, 3), activation="tanh")
    at = _open(**config_to_query(config, 2))
    at.toggle(key="pg_units").set_value(True).run()
    assert not at.exception, at.exception
    (grid,) = [h.proto.body for h in at.main.get("html") if "pg-units" in h.proto.body]
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="layer (\d), unit (\d)"', grid)
    assert [(int(layer), int(unit)) for _, layer, unit in images] == [(1, u) for u in range(1, 6)] + [
        (2, u) for u in range(1, 4)
    ]
    assert re.search(r"\.pg-units img:hover\{transform:scale\(3\.5\)", grid)
    # each map is sent large enough to stay sharp when enlarged (56 px shown, 3.5 x under the pointer)
    sizes = {Image.open(io.BytesIO(base64.b64decode(b64))).size for b64, _, _ in images}
    assert sizes == {(100, 100)}


def test_the_readout_refuses_measurements_of_another_epoch():
    import pytest

    from ui.playground import epoch_readout

    measures = {"epoch": 11.0, "test_accuracy": 0.5, "train_loss": 0.4, "test_loss": float("nan")}
    caption, metrics = epoch_readout(11, measures)
    assert caption == "epoch 11" and metrics == [
        ("Epoch", "11"),
        ("Test accuracy", "50.0%"),
        ("Train loss", "0.400"),
        ("Test loss", "–"),
    ]
    with pytest.raises(ValueError, match="expected the measurements of epoch 12, got those of epoch 11"):
        epoch_readout(12, measures)
