"""The Playground's digits mode: the small CNN trains live on the 8x8 digits; a fixed slice through three chosen
test digits and the test accuracy redraw as it trains (the 2D mode's loop, on images).

The `DigitsPlayground` lives in ``st.session_state[TRAINER]``; `render` draws the settings, the controls and the live
fragment (one image and the numbers of the same epoch per redraw), and is called by views/playground.py.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from geometry.figures.common import image_to_uint8
from geometry.figures.playground import digits_image
from geometry.models.training import OPTIMIZERS
from geometry.playground import PLAYGROUND_ACTIVATIONS, DigitsConfig, DigitsPlayground
from geometry.playground.digits import DIGITS_ANCHORS
from ui import page
from ui.playground import epoch_readout, parse_hidden

TRAINER = "pgd_trainer"  # the DigitsPlayground
PLAYING = "pgd_playing"  # True while the live panel trains
REDRAWS = "pgd_redraws"  # redraw times (the rate under the slice)
RATE = 5.0  # live redraws asked per second: an epoch and a 64 x 64 slice take about 0.12 s on one core
SCALE = 6  # display pixels per slice grid point


def toggle_play() -> None:
    st.session_state[PLAYING] = not st.session_state.get(PLAYING, False)


def reset() -> None:
    st.session_state.pop(TRAINER, None)
    st.session_state[PLAYING] = False


def ensure_trainer(config: DigitsConfig) -> DigitsPlayground:
    """The session's digits run for ``config``: the same one while the settings stay, a fresh one when they change."""
    pg: DigitsPlayground | None = st.session_state.get(TRAINER)
    if pg is None or pg.config != config:
        with st.spinner("Loading the digits and evaluating the slice…"):
            pg = DigitsPlayground(config)
        st.session_state[TRAINER] = pg
        st.session_state[REDRAWS] = []
    return pg


def _rate() -> float | None:
    import time

    times: list[float] = st.session_state.setdefault(REDRAWS, [])
    times.append(time.perf_counter())
    del times[:-20]
    if len(times) < 5 or not st.session_state.get(PLAYING):
        return None
    return (len(times) - 1) / (times[-1] - times[0])


def render() -> None:
    """The digits mode of the Playground page."""
    with st.expander("Digits and network", expanded=True):
        cols = st.columns(5)
        activation = cols[0].selectbox("Activation", PLAYGROUND_ACTIVATIONS, key="pgd_activation")
        pool = cols[1].selectbox("Pooling", ("max", "avg"), key="pgd_pool", help="avg keeps a smooth network smooth")
        channels_text = cols[2].text_input("Channels of the two conv blocks", "8, 16", key="pgd_channels")
        hidden = int(cols[3].number_input("Hidden units", 1, 512, 32, key="pgd_hidden"))
        optimizer = cols[4].selectbox(
            "Optimiser", OPTIMIZERS, key="pgd_optimizer", format_func=lambda o: {"sgd": "SGD", "adam": "Adam"}[o]
        )
        cols = st.columns(5)
        lr = float(cols[0].select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03], 3e-3, key="pgd_lr"))
        batch_size = int(cols[1].number_input("Batch size", 1, 1347, 64, key="pgd_batch"))
        seed = int(cols[2].number_input("Seed", 0, 100_000, 0, key="pgd_seed"))
        resolution = int(cols[3].select_slider("Slice resolution", [32, 48, 64, 96], 64, key="pgd_resolution"))
        st.caption("The slice is the plane through three test digits (their indices in the 450 test digits):")
        cols = st.columns(6)
        anchors = tuple(
            int(cols[i].number_input(f"Digit {i + 1}", 0, 449, DIGITS_ANCHORS[i], key=f"pgd_anchor{i}"))
            for i in range(3)
        )
    with page.guard("These settings cannot be trained"):
        channels = parse_hidden(channels_text)
        config = DigitsConfig(
            activation=activation,
            pool=pool,
            channels=channels,  # type: ignore[arg-type]
            hidden=hidden,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            anchors=anchors,  # type: ignore[arg-type]
            resolution=resolution,
        )
        pg = ensure_trainer(config)
    for col, index, label in zip(cols[3:], pg.config.anchors, pg.anchor_labels, strict=True):
        col.image(image_to_uint8(pg.x_test[index], min_size=64), caption=f"a {pg.class_names[label]}", width=64)

    playing = bool(st.session_state.get(PLAYING))
    cols = st.columns([1, 1, 1, 2])
    cols[0].button(
        "Pause" if playing else "Play",
        key="pgd_play",
        type="primary",
        icon=":material/pause:" if playing else ":material/play_arrow:",
        on_click=toggle_play,
        width="stretch",
    )
    step_clicked = cols[1].button("Step", key="pgd_step", icon=":material/skip_next:", disabled=playing)
    cols[2].button("Reset", key="pgd_reset", icon=":material/restart_alt:", on_click=reset)
    speed = int(cols[3].select_slider("Epochs per redraw", [1, 2, 5], value=1, key="pgd_speed"))
    if step_clicked:
        with page.guard("Training stopped"):
            pg.step(1)

    @st.fragment(run_every=1.0 / RATE if playing else None)
    def live_slice() -> None:
        """Trains and redraws the slice and the numbers of the same epoch (the rest of the page does not rerun)."""
        if st.session_state.get(PLAYING):
            try:
                pg.step(speed)
            except ValueError as err:
                st.session_state[PLAYING] = False
                st.error(str(err))
        rate = _rate()
        caption, metrics = epoch_readout(pg.epoch, pg.history[-1])
        left, right = st.columns([3, 2])
        left.image(
            digits_image(pg, scale=SCALE),
            caption=caption + (f" · {rate:.1f} redraws/s" if rate else ""),
            width=min(SCALE * pg.config.resolution, 520),
            output_format="PNG",
        )
        with right:
            for row in (metrics[:2], metrics[2:]):
                for col, (label, value) in zip(st.columns(2), row, strict=True):
                    col.metric(label, value)

    @st.fragment(run_every=1.0 if playing else None)
    def accuracy_curve() -> None:
        """The accuracy over the epochs, redrawn about once a second (a chart costs the browser more than an image)."""
        accuracy = pd.DataFrame(pg.history).set_index("epoch")[["train_accuracy", "test_accuracy"]]
        st.line_chart(accuracy, height=220, x_label="epoch", y_label="accuracy")

    live_slice()
    accuracy_curve()
    st.caption(
        "The slice is fixed in pixel space: the origin is digit 1, the horizontal axis points to digit 2, the plane "
        "also holds digit 3 (discs in their true digit's colour). Each grid point is coloured by the digit the "
        f"network predicts there, paler where it is unsure; axes are L2 distances in [0, 1] pixel units. "
        f"{pg.config.resolution} x {pg.config.resolution} points, evaluated densely after every redraw."
    )
