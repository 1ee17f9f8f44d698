"""Playground: a small network trains live on 2D data; the regions, the boundary, the points and the loss redraw
several times a second, with the geometry no playground shows (exact linear regions, margins, curvature)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from geometry.data.toy2d import TOY2D_ANY_CLASSES
from geometry.figures.playground import editor_figure, margin_figure, mesh_figure, region_count_figure
from geometry.models.training import OPTIMIZERS
from geometry.playground import (
    PLAYGROUND_ACTIVATIONS,
    PLAYGROUND_DATASETS,
    PlaygroundConfig,
    boundary_curvature_2d,
    curvature_reading,
    exact_linear_regions,
    margin_reading,
    point_margins,
    region_reading,
    unit_reading,
)
from geometry.report.lesson import lesson_html
from ui import page
from ui import playground as U

st.title("Playground")
st.caption(
    "Build a small network, press **Play** and watch it carve the plane: the regions (paler where it is unsure), "
    "the boundary (dark lines), training points (dots) and test points (rings) redraw live. Pause to measure what "
    "no playground shows: the exact linear regions of a ReLU network, each training point's distance to the "
    "boundary, and how the boundary bends. The link in the address bar reproduces the run."
)
U.read_link()
mode = st.radio("Mode", ("2D points", "digits"), horizontal=True, key="pg_mode", label_visibility="collapsed")
if mode == "digits":
    from ui import playground_digits

    playground_digits.render()
    st.stop()
defaults = PlaygroundConfig()
for field, key in U.WIDGETS.items():  # first visit: the defaults (a link has set its own already)
    if key not in st.session_state:
        value = getattr(defaults, field)
        st.session_state[key] = U.hidden_text(value) if field == "hidden" else value

# -- settings --------------------------------------------------------------------------------------------------------

with st.expander("Data and network", expanded=True):
    cols = st.columns(5)
    dataset = cols[0].selectbox("Data set", PLAYGROUND_DATASETS, key=U.WIDGETS["dataset"])
    lo, hi = TOY2D_ANY_CLASSES
    classes = int(cols[1].number_input("Classes", lo, 10 if dataset == "custom" else hi, key=U.WIDGETS["classes"]))
    noise = float(cols[2].slider("Noise", 0.0, 1.0, step=0.05, key=U.WIDGETS["noise"]))
    test_fraction = float(cols[3].slider("Test share", 0.0, 0.9, step=0.05, key=U.WIDGETS["test_fraction"]))
    seed = int(cols[4].number_input("Seed", 0, 100_000, key=U.WIDGETS["seed"]))
    cols = st.columns(5)
    hidden_text = cols[0].text_input(
        "Units per hidden layer",
        key=U.WIDGETS["hidden"],
        help="Comma-separated, one number per layer: '8, 8' is two layers of 8. Empty: a linear classifier.",
    )
    activation = cols[1].selectbox("Activation", PLAYGROUND_ACTIVATIONS, key=U.WIDGETS["activation"])
    optimizer = cols[2].selectbox(
        "Optimiser",
        OPTIMIZERS,
        key=U.WIDGETS["optimizer"],
        format_func=lambda o: {"sgd": "SGD (momentum 0.9)", "adam": "Adam"}[o],
    )
    lr = float(
        cols[3].select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0], key=U.WIDGETS["lr"])
    )
    batch_size = int(cols[4].number_input("Batch size", 1, 1024, key=U.WIDGETS["batch_size"]))
    cols = st.columns([1, 1, 1, 2])
    l2 = float(cols[0].select_slider("L2", [0.0, 1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1], key=U.WIDGETS["l2"]))
    points = int(cols[1].number_input("Points", 20, 5000, step=20, key=U.WIDGETS["points"]))
    activated = cols[2].toggle(
        "Activated gradients", key=U.WIDGETS["activated_gradients"], help="g → 0.3·arctan(4.5·g) before each step"
    )
    upload = cols[3].file_uploader("Your points: CSV of x, y, label", type=["csv", "txt"], key="pg_csv")
    if upload is not None:
        with page.guard("Could not read the CSV"):
            st.session_state[U.CUSTOM] = U.parse_csv(upload.getvalue())
        n_classes = int(st.session_state[U.CUSTOM][1].max()) + 1
        if dataset != "custom" or classes != n_classes:
            st.session_state[U.WIDGETS["dataset"]] = "custom"
            st.session_state[U.WIDGETS["classes"]] = n_classes
            st.rerun()

with page.guard("These settings cannot be trained"):
    config = PlaygroundConfig(
        dataset=dataset,
        classes=classes,
        noise=noise,
        seed=seed,
        points=points,
        test_fraction=test_fraction,
        hidden=U.parse_hidden(hidden_text),
        activation=activation,
        optimizer=optimizer,
        lr=lr,
        batch_size=batch_size,
        l2=l2,
        activated_gradients=activated,
        added=U.added_points(classes),
    )
    pg = U.ensure_trainer(config)

# -- controls --------------------------------------------------------------------------------------------------------

playing = bool(st.session_state.get(U.PLAYING))
cols = st.columns([1, 1, 1, 2, 3])
cols[0].button(
    "Pause" if playing else "Play",
    key="pg_play",
    type="primary",
    icon=":material/pause:" if playing else ":material/play_arrow:",
    on_click=U.toggle_play,
    width="stretch",
)
step_clicked = cols[1].button("Step", key="pg_step", icon=":material/skip_next:", disabled=playing, width="stretch")
cols[2].button(
    "Reset", key="pg_reset", icon=":material/restart_alt:", on_click=U.reset, args=(config,), width="stretch"
)
speed = int(cols[3].select_slider("Epochs per redraw", [1, 2, 5, 10, 25], value=1, key="pg_speed"))
show_regions = cols[4].toggle(
    "Show the linear regions (ReLU)", value=True, key="pg_show_regions", disabled=not config.piecewise_linear
)
if step_clicked:
    with page.guard("Training stopped"):
        pg.step(1)
if not playing:
    U.write_link(pg)

# -- the live panel --------------------------------------------------------------------------------------------------


@st.fragment(run_every=U.live_interval())
def live_map() -> None:
    """Trains and redraws the map and the numbers of the same epoch, several times a second (the rest of the page
    does not rerun)."""
    if st.session_state.get(U.PLAYING):
        try:
            pg.step(speed)
        except ValueError as err:
            st.session_state[U.PLAYING] = False
            st.error(str(err))
    rate = U.note_redraw()
    caption, metrics = U.epoch_readout(pg.epoch, pg.history[-1])
    left, right = st.columns([3, 2])
    left.image(
        U.live_image(pg, regions=show_regions),
        caption=caption + (f" · {rate:.1f} redraws/s" if rate else ""),
        width=520,
        output_format="PNG",
    )
    with right:
        for row in (metrics[:2], metrics[2:]):
            for col, (label, value) in zip(st.columns(2), row, strict=True):
                col.metric(label, value)


@st.fragment(run_every=U.curves_interval())
def live_curves() -> None:
    """The loss curves, redrawn about once a second (a chart costs the browser more than an image)."""
    history = pd.DataFrame(pg.history).set_index("epoch")[["train_loss", "test_loss"]]
    st.line_chart(history, height=220, x_label="epoch", y_label="loss")
    counts = st.session_state.get(U.GRID_COUNTS, {})
    if config.piecewise_linear and counts:
        st.caption(f"Linear regions seen on the grid: **{counts[max(counts)]}**")


live_map()
live_curves()

# -- the point editor ------------------------------------------------------------------------------------------------

with st.expander("Point editor: click the map to add training points"):  # a fixed label: it stays open
    st.caption(f"{len(config.added)} point{'' if len(config.added) == 1 else 's'} added.")
    if playing:
        st.info("Pause to add points.")
    else:
        cols = st.columns([2, 1, 1])
        cols[0].selectbox(
            "Class of the next point",
            range(config.classes),
            key=U.ADD_CLASS,
            format_func=lambda k: f"class {k}",
        )
        cols[1].button("Undo the last point", key="pg_undo", on_click=U.undo_point, disabled=not config.added)
        cols[2].button("Clear the added points", key="pg_clear", on_click=U.clear_points, disabled=not config.added)
        st.plotly_chart(
            editor_figure(
                U.live_image(pg, regions=False), pg.grid.extent, added=config.added, num_classes=config.classes
            ),
            key=U.EDITOR,
            on_select=U.on_pick,
            selection_mode="points",
        )
        st.caption(
            "Each click adds a training point of the chosen class (crosses), rounded to 0.01; the network is "
            "retrained from the start with it to the same epoch, so the link (which carries the points) reproduces "
            "the run and the exported lesson shows them."
        )

# -- what each unit draws --------------------------------------------------------------------------------------------

if config.hidden and st.toggle("What each hidden unit draws", value=False, key="pg_units"):
    layers = pg.unit_activations()
    st.caption(
        "Orange where the unit's output is high, blue where it is low, over the same view (one row per layer); "
        "point at a map to enlarge it."
    )
    st.html(U.unit_grid_html(layers))
    st.markdown(str(unit_reading(layers)))

# -- geometry (while paused) -----------------------------------------------------------------------------------------

st.subheader("Geometry no playground shows")
if st.session_state.get(U.PLAYING):
    st.info("Pause to measure the exact linear regions, the margins and the curvature of this epoch.")
else:
    handle = pg.handle()
    measured = st.session_state.get("pg_measured")
    if measured is None or measured[0] != (id(pg), pg.epoch):
        margins, polygons = None, []
        with page.guard("Could not measure the margins"):
            margins = point_margins(handle, pg.x_train, pg.y_train)
        if config.piecewise_linear and config.hidden:
            with page.guard("Could not count the linear regions", keep_going=True):
                polygons = exact_linear_regions(pg.network, pg.grid.extent).polygons
        measured = ((id(pg), pg.epoch), margins, polygons)
        st.session_state["pg_measured"] = measured
    _, margins, polygons = measured
    st.session_state.setdefault(U.MARGINS, {})[pg.epoch] = margins.margin
    if polygons:
        st.session_state.setdefault(U.EXACT_COUNTS, {})[pg.epoch] = len(polygons)
    cols = st.columns([3, 2])
    with cols[0]:
        image = U.live_image(pg, regions=False)
        figure = mesh_figure(
            image,
            pg.grid.extent,
            polygons=polygons,
            circles=(pg.x_train.numpy(), margins.margin),
            title=f"Epoch {pg.epoch}: " + (f"{len(polygons)} linear regions, " if polygons else "") + "margin circles",
        )
        st.plotly_chart(figure, key="pg_mesh")
    with cols[1]:
        if polygons:
            st.markdown(f"**{len(polygons)} linear regions** in the view (exact).")
            st.markdown(str(region_reading(len(polygons), config.hidden[0])))
            st.plotly_chart(
                region_count_figure(st.session_state.get(U.GRID_COUNTS, {}), st.session_state.get(U.EXACT_COUNTS)),
                key="pg_counts",
            )
        st.plotly_chart(margin_figure(st.session_state[U.MARGINS]), key="pg_margin_hist")
        st.markdown(str(margin_reading(margins.margin, margins.correct, config.noise)))
        if config.smooth:
            curvature = boundary_curvature_2d(handle, margins)
            st.markdown(str(curvature_reading(curvature)))
            st.caption(
                "κ at each point's nearest boundary point, in 1 / plane units; κ > 0 where the point's own class is "
                "locally convex (a disc of radius R: 1/R)."
            )

# -- share and keep --------------------------------------------------------------------------------------------------

st.subheader("Share and keep")
cols = st.columns(3)
with cols[0]:
    st.markdown("**Link**: the address bar holds the data, the network, the optimiser and the epoch.")
    if config.dataset == "custom":
        st.caption("Uploaded points are not in the link: share the CSV with it.")
with cols[1]:
    lesson_key = (id(pg), pg.epoch)
    if st.button("Export the lesson", key="pg_export_make", disabled=playing, icon=":material/movie:"):
        with st.spinner(f"Drawing {len(pg.frames)} recorded epochs…"):
            st.session_state["pg_lesson"] = (lesson_key, lesson_html(pg))
    lesson = st.session_state.get("pg_lesson")
    if lesson is not None and lesson[0] == lesson_key and not playing:
        st.download_button(
            "Download the lesson (offline HTML)",
            data=lesson[1],
            file_name=f"{U.model_name(pg)}.html",
            mime="text/html",
            key="pg_export",
        )
    st.caption(f"One page that replays the {len(pg.frames)} recorded epochs without Python or a server.")
with cols[2]:
    if st.button("Keep this network for the other views", key="pg_keep", disabled=playing):
        with page.guard("Could not save the network"):
            st.session_state["pg_kept"] = U.keep(pg)
    kept = st.session_state.get("pg_kept")
    if kept:
        st.button("Use it in the sidebar", key="pg_use", on_click=U.use_in_sidebar, args=(kept,))
    st.download_button(
        "Download the weights (.safetensors)",
        data=U.weights_bytes(pg) if not playing else b"",
        file_name=f"{U.model_name(pg)}.safetensors",
        key="pg_download",
        disabled=playing,
    )
    st.download_button(
        "Download its card (.json)",
        data=json.dumps(U.card(pg, U.model_name(pg)), indent=2) if not playing else "",
        file_name=f"{U.model_name(pg)}.json",
        key="pg_download_card",
        disabled=playing,
    )
