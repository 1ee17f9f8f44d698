"""Streamlit glue of the Playground: the trainer kept in session state, the link, the live frame, saving the net.

The `Playground` (network, optimiser, data, history) lives in ``st.session_state[TRAINER]`` across reruns; the
page rebuilds it only when the settings change (`ensure_trainer`). The live panel is a fragment that reruns on a
timer while playing (`live_interval`), steps the trainer and redraws one image, so the rest of the page does not
rerun. The whole state is in the URL (`write_link` / `read_link`, through `geometry.playground.config_to_query`).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from geometry.data.datasets import load_dataset
from geometry.figures.images import png_data_url
from geometry.figures.playground import live_image as figures_live_image
from geometry.figures.playground import unit_thumbnail
from geometry.models.cards import save_model, user_models_dir
from geometry.playground import (
    Playground,
    PlaygroundConfig,
    config_from_query,
    config_to_query,
)
from ui import keys

TRAINER = "pg_trainer"  # the Playground
PLAYING = "pg_playing"  # True while the live panel trains
LINK_READ = "pg_link_read"  # the URL's settings were applied once in this session
TARGET_EPOCH = "pg_target_epoch"  # the epoch a shared link asks for (trained to once)
CUSTOM = "pg_custom"  # (points, labels) from an uploaded CSV
MARGINS = "pg_margins"  # {epoch: margins} measured while paused (the histogram over training)
GRID_COUNTS = "pg_grid_counts"  # {epoch: linear regions seen on the grid}
EXACT_COUNTS = "pg_exact_counts"  # {epoch: exact linear regions in the view}
REDRAWS = "pg_redraws"  # redraw times of the live panel (the rate shown under the map)
ADDED = "pg_added"  # [(x, y, class)]: points the teacher clicked in (the point editor)
EDITOR = "pg_editor"  # the point editor's chart (its selection event)
ADD_CLASS = "pg_add_class"  # the class a click adds

SCALE = 4  # display pixels per map pixel: a 100 x 100 map is drawn 400 x 400
RATE = 8.0  # live redraws asked per second (the fragment's timer)

# widget keys, one per config field (the link sets them before the widgets are drawn)
WIDGETS = {
    "dataset": "pg_dataset",
    "classes": "pg_classes",
    "noise": "pg_noise",
    "seed": "pg_seed",
    "points": "pg_points",
    "test_fraction": "pg_test",
    "hidden": "pg_hidden",
    "activation": "pg_activation",
    "optimizer": "pg_optimizer",
    "lr": "pg_lr",
    "batch_size": "pg_batch",
    "l2": "pg_l2",
    "activated_gradients": "pg_ga",
}


def hidden_text(hidden: tuple[int, ...]) -> str:
    return ", ".join(str(h) for h in hidden)


def parse_hidden(text: str) -> tuple[int, ...]:
    """``"8, 8"`` -> (8, 8); empty -> () (a linear classifier). ValueError says what was expected."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected units per hidden layer as comma-separated whole numbers, got {text!r}") from None


def read_link() -> None:
    """On the session's first run, set the widgets from the URL (``?set=spirals&k=3&layers=8-8&epoch=40...``)."""
    if LINK_READ in st.session_state:
        return
    st.session_state[LINK_READ] = True
    params = {k: st.query_params[k] for k in st.query_params}
    if not set(params) & {"set", "layers", "act", "epoch"}:
        return
    try:
        config, epoch = config_from_query(params)
    except ValueError as err:
        st.warning(f"The link's settings could not be read ({err}); starting from the defaults.")
        return
    set_widgets(config)
    st.session_state[ADDED] = list(config.added)
    st.session_state[TARGET_EPOCH] = epoch


def set_widgets(config: PlaygroundConfig) -> None:
    for field, key in WIDGETS.items():
        value = getattr(config, field)
        st.session_state[key] = hidden_text(value) if field == "hidden" else value


def write_link(pg: Playground) -> None:
    """Put the config and the epoch in the URL (other parameters, such as the sidebar's model, are kept)."""
    wanted = config_to_query(pg.config, pg.epoch)
    if "add" not in wanted and "add" in st.query_params:  # the clicked points were cleared
        del st.query_params["add"]
    if any(st.query_params.get(k) != v for k, v in wanted.items()):
        st.query_params.update(wanted)


def ensure_trainer(config: PlaygroundConfig) -> Playground:
    """The session's Playground for ``config``: the same one while the settings stay, a fresh one when they change
    (and the link's epoch, once, trained to)."""
    pg: Playground | None = st.session_state.get(TRAINER)
    if pg is not None and pg.config != config and replace(pg.config, added=()) == replace(config, added=()):
        # only the clicked points changed: the same run with them, trained to the epoch it had (so the map shows
        # their effect at once, and the link, which trains from scratch, reproduces it)
        st.session_state.setdefault(TARGET_EPOCH, pg.epoch)
    if pg is None or pg.config != config:
        custom = st.session_state.get(CUSTOM) if config.dataset == "custom" else None
        if config.dataset == "custom" and custom is None:
            raise ValueError("upload a CSV of points (x, y, label) to train on your own data")
        pg = Playground(config, *(custom or (None, None)))
        reset_records()
        st.session_state[TRAINER] = pg
    target = st.session_state.pop(TARGET_EPOCH, None)
    if target:
        with st.spinner(f"Training to epoch {target} (the link's epoch)…"):
            pg.train_to(target)
    return pg


def reset(config: PlaygroundConfig) -> None:
    """on_click of Reset: a fresh network (same settings), paused."""
    st.session_state.pop(TRAINER, None)
    st.session_state[PLAYING] = False


def added_points(classes: int) -> tuple[tuple[float, float, int], ...]:
    """The clicked points of classes that exist now (lowering the class count drops the others)."""
    return tuple(tuple(p) for p in st.session_state.get(ADDED, ()) if p[2] < classes)  # type: ignore[misc]


def picked_point(event: Any) -> tuple[float, float] | None:
    """The plane point of a click on the point editor: its selection event (``{"selection": {"points": [{"x", "y",
    ...}]}}``, as `st.plotly_chart(on_select=...)` keeps it) -> (x, y), or None when nothing was picked."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points or ():
        if isinstance(point, dict) and "x" in point and "y" in point:
            return float(point["x"]), float(point["y"])
    return None


def on_pick() -> None:
    """on_select of the point editor: add the clicked point with the chosen class (`ADDED`)."""
    xy = picked_point(st.session_state.get(EDITOR))
    if xy is not None:
        st.session_state[ADDED] = [*st.session_state.get(ADDED, []), (*xy, int(st.session_state.get(ADD_CLASS, 0)))]


def undo_point() -> None:
    st.session_state[ADDED] = list(st.session_state.get(ADDED, []))[:-1]


def clear_points() -> None:
    st.session_state[ADDED] = []


def reset_records() -> None:
    for key in (MARGINS, GRID_COUNTS, EXACT_COUNTS, REDRAWS):
        st.session_state[key] = {} if key != REDRAWS else []


def toggle_play() -> None:
    st.session_state[PLAYING] = not st.session_state.get(PLAYING, False)


def live_interval() -> float | None:
    """The live panel's timer: a redraw every 1/RATE s while playing, none while paused."""
    return 1.0 / RATE if st.session_state.get(PLAYING) else None


def curves_interval() -> float | None:
    """The curves' timer: once a second while playing."""
    return 1.0 if st.session_state.get(PLAYING) else None


def note_redraw() -> float | None:
    """Record this redraw's time; the measured redraws per second over the last ones (None before two)."""
    times: list[float] = st.session_state.setdefault(REDRAWS, [])
    times.append(time.perf_counter())
    del times[:-20]
    if len(times) < 5 or not st.session_state.get(PLAYING):
        return None
    return (len(times) - 1) / (times[-1] - times[0])


def epoch_readout(epoch: int, measures: dict[str, float]) -> tuple[str, list[tuple[str, str]]]:
    """The live panel's caption and metrics, from one epoch's measurements: drawn in the same fragment run as the
    map, so the caption's epoch and the "Epoch" metric are always the same number (they once came from two
    fragments with two timers and disagreed by one while training)."""
    if int(measures["epoch"]) != epoch:
        raise ValueError(f"expected the measurements of epoch {epoch}, got those of epoch {int(measures['epoch'])}")

    def share(v: float) -> str:
        return f"{v:.1%}" if v == v else "–"

    def loss(v: float) -> str:
        return f"{v:.3f}" if v == v else "–"

    return f"epoch {epoch}", [
        ("Epoch", str(epoch)),
        ("Test accuracy", share(measures["test_accuracy"])),
        ("Train loss", loss(measures["train_loss"])),
        ("Test loss", loss(measures["test_loss"])),
    ]


def live_image(pg: Playground, *, regions: bool) -> np.ndarray:
    """The live region map (`geometry.figures.playground.live_image`); notes the grid's region count per epoch."""
    image, count = figures_live_image(pg, scale=SCALE, regions=regions)
    if count is not None:
        st.session_state.setdefault(GRID_COUNTS, {})[pg.epoch] = count
    return image


THUMB = 56  # display size of a unit's map, in CSS pixels
ENLARGED = 3.5  # how much a map grows under the pointer


def unit_grid_html(layers: list[np.ndarray], *, size: int = 100) -> str:
    """The hidden units' maps as an HTML grid, one row per layer, each map small and enlarged under the pointer
    (CSS ``:hover``, no script, so it works in ``st.html``). layers: (units, R, R) activations per layer
    (`Playground.unit_activations`); each map is sent at ``size`` px so the enlarged one stays sharp."""
    style = (
        "<style>.pg-units{display:flex;flex-direction:column;gap:6px}"
        ".pg-units .row{display:flex;flex-wrap:wrap;gap:4px;align-items:center}"
        ".pg-units .name{width:64px;font-size:12px;color:#666}"
        f".pg-units img{{width:{THUMB}px;height:{THUMB}px;image-rendering:pixelated;border:1px solid #ddd;"
        "transition:transform .12s ease-out;transform-origin:center;position:relative}"
        f".pg-units img:hover{{transform:scale({ENLARGED});z-index:20;box-shadow:0 2px 12px rgba(0,0,0,.35)}}"
        "</style>"
    )
    rows = []
    for i, layer in enumerate(layers):
        cells = "".join(
            f'<img src="{png_data_url(unit_thumbnail(a, size=size))}" alt="layer {i + 1}, unit {j + 1}" '
            f'title="layer {i + 1}, unit {j + 1}">'
            for j, a in enumerate(layer)
        )
        rows.append(f'<div class="row"><span class="name">layer {i + 1}</span>{cells}</div>')
    return f'{style}<div class="pg-units">{"".join(rows)}</div>'


def parse_csv(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A CSV of 2D points with labels: columns x, y, label (a header line is skipped). Labels may be any integers
    or names; they are numbered 0..K-1 in sorted order."""
    text = data.decode("utf-8", errors="replace")
    rows = [r for r in (line.strip() for line in text.splitlines()) if r]
    parsed = []
    for n, row in enumerate(rows):
        cells = [c.strip() for c in row.replace(";", ",").split(",")]
        try:
            parsed.append((float(cells[0]), float(cells[1]), cells[2]))
        except (ValueError, IndexError):
            if n == 0:
                continue  # a header
            raise ValueError(f"line {n + 1} of the CSV is not 'x, y, label': {row!r}") from None
    if len(parsed) < 4:
        raise ValueError(f"expected at least 4 points in the CSV, got {len(parsed)}")
    names = sorted(
        {p[2] for p in parsed}, key=lambda s: (not s.lstrip("-").isdigit(), int(s) if s.lstrip("-").isdigit() else 0, s)
    )
    if not 2 <= len(names) <= 10:
        raise ValueError(f"expected 2 to 10 classes in the CSV's label column, got {len(names)}")
    index = {name: i for i, name in enumerate(names)}
    points = np.array([(x, y) for x, y, _ in parsed], dtype=np.float32)
    labels = np.array([index[c] for _, _, c in parsed], dtype=np.int64)
    return points, labels


# -- keeping the network ---------------------------------------------------------------------------------------------


def card(pg: Playground, name: str) -> dict[str, Any]:
    """The model card of the Playground's network (what the other views and the download read)."""
    c = pg.config
    dataset = f"{c.dataset}-{c.classes}" if c.dataset != "custom" else None
    if dataset is not None:
        try:
            load_dataset(dataset, split="test", n=4)  # only a set the other views can load is named
        except ValueError:
            dataset = None
    last = pg.history[-1]
    playground_link = "?" + "&".join(f"{k}={v}" for k, v in config_to_query(c, pg.epoch).items())
    return {  # the fields the Train view's cards have (the Home view reads them), for a 2D network
        "name": name,
        "description": f"Trained in the Playground: {c.dataset}, {c.classes} classes, noise {c.noise:g}, "
        f"hidden {list(c.hidden)}, {c.activation}, {pg.epoch} epochs.",
        "architecture": "mlp",
        "architecture_options": {"hidden": list(c.hidden), "activation": c.activation},
        "activation": c.activation,
        "smooth": c.smooth,
        "dataset": dataset,
        "input_shape": [2],
        "input_range": None,
        "class_names": [f"class {i}" for i in range(c.classes)],
        "mean": None,
        "std": None,
        "seed": c.seed,
        "training": {**asdict(c), "hidden": list(c.hidden), "epochs": pg.epoch},
        "playground_link": playground_link,
        "train_size": len(pg.x_train),
        "training_command": f"the Playground ({playground_link})",
        **({"test_accuracy": round(float(last["test_accuracy"]), 4)} if np.isfinite(last["test_accuracy"]) else {}),
        "history": [{k: round(v, 5) for k, v in h.items()} for h in pg.history],
    }


def model_name(pg: Playground) -> str:
    c = pg.config
    return f"playground-{c.dataset}-{c.classes}-{'x'.join(map(str, c.hidden)) or 'linear'}-{c.activation}-e{pg.epoch}"


def keep(pg: Playground) -> str:
    """Save the network and its card to `user_models_dir()` (the sidebar lists it); returns its name."""
    name = model_name(pg)
    folder = user_models_dir()
    meta = card(pg, name)
    save_model(
        pg.network,
        folder / f"{name}.safetensors",
        arch="mlp",
        options=meta["architecture_options"],
        input_shape=(2,),
        class_names=meta["class_names"],
        input_range=None,
    )
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return name


def use_in_sidebar(name: str) -> None:
    """on_click: make ``name`` the sidebar's model."""
    st.session_state[keys.MODEL_SOURCE] = "Built-in"
    st.session_state[keys.BUILTIN_MODEL] = name


def weights_bytes(pg: Playground) -> bytes:
    """The network's weights as a .safetensors file that records its architecture (loads with load_model)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "playground.safetensors"
        save_model(
            pg.network,
            path,
            arch="mlp",
            options={"hidden": list(pg.config.hidden), "activation": pg.config.activation},
            input_shape=(2,),
            class_names=[f"class {i}" for i in range(pg.num_classes)],
            input_range=None,
        )
        return path.read_bytes()


def history_csv(pg: Playground) -> str:
    out = io.StringIO()
    keys_ = list(pg.history[0])
    out.write(",".join(keys_) + "\n")
    for h in pg.history:
        out.write(",".join(f"{h[k]:.6g}" for k in keys_) + "\n")
    return out.getvalue()
