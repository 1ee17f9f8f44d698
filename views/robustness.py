"""Robustness: how predictions hold up as the object gets smaller, moves, rotates, or the resolution changes."""

from __future__ import annotations

import streamlit as st

from geometry.data.shapes import SHAPE_NAMES
from geometry.figures.images import image_strip_figure
from geometry.figures.robustness import position_heatmap, sweep_figure
from geometry.inspection.robustness import ROTATION_SIZES, is_shapes_model
from ui import page, samples
from ui import robustness as U

sel = page.selection()
handle, data = sel.handle, sel.dataset
names = handle.class_names

KINDS = {
    "scale": "Size (scaled about the centre)",
    "shift": "Position (shifted)",
    "rotate": "Rotation",
    "resolution": "Resolution (down/up-sampled)",
}
FACTORS = {"area": "Object size (area fraction)", "position": "Object position", "rotation": "Object rotation"}
SIZES = [0.05, 0.1, 0.2, 0.3, 0.4, 0.6]  # object areas offered for the rotation sweeps
FILLS = {"border": "each image's border colour", 0.5: "grey", 0.0: "black", 1.0: "white"}

st.title("Robustness")
st.caption(
    "One factor at a time, as in SI-Score (Djolonga et al., 2021): how often the prediction survives when the object "
    "is smaller or larger, off-centre, rotated, or seen at another resolution, and the mean logit margin "
    "f_y − max_k f_k of the class it should keep (below 0: lost on average)."
)
if not samples.is_image_model(handle):
    st.info(
        f"These sweeps transform images; **{handle.name}** takes inputs of shape {handle.input_shape}. Pick an "
        "image model in the sidebar."
    )
    st.stop()

own, shapes = st.tabs(["Your images", "Generated shapes (SI-Score style)"])

with own:
    cols = st.columns([3, 3, 2])
    kind = cols[0].radio("Vary", list(KINDS), format_func=KINDS.get, key="rob_kind", horizontal=True)
    n_max = min(200, len(data))
    n = samples.count_slider(
        cols[1],
        "Images",
        low=1,
        high=n_max,
        default=20,
        key="rob_n",
        help=f"A seeded random sample of {data.name}; the reference class of each is the model's "
        "prediction on the untouched image.",
    )
    if n_max < 2:
        samples.too_few(cols[1], data, n, "the sweep runs")
    fill = cols[2].selectbox(
        "Background",
        list(FILLS),
        format_func=FILLS.get,
        key="rob_fill",
        help="What fills the image where the transformed content does not reach.",
    )
    sample = samples.sample(data, n)
    with page.guard("Could not run the sweep"):
        sweep = U.image_sweep(handle, sample, kind, fill=fill)
    if kind == "shift":
        fig = position_heatmap(sweep, what="kept", title="Share of predictions kept for each shift")
    else:
        fig = sweep_figure(sweep, title=KINDS[kind])
    st.plotly_chart(fig, key="rob_figure")
    acc = sweep.accuracy
    extra = (
        f" Accuracy against the true labels goes from {acc.min():.0%} to {acc.max():.0%}."
        if (sweep.labels >= 0).all()
        else ""
    )
    st.caption(
        f"{n} images of {data.name}: share of predictions kept (solid) and mean logit margin (dashed) per "
        f"value; the untouched image keeps every prediction by definition.{extra}"
    )
    st.markdown("**The first picked image under the transform** (green: the class of the untouched image)")
    with page.guard(""):
        strip, caps, kept = U.transform_strip(handle, sel.images[:1], sweep, fill)
    st.plotly_chart(
        image_strip_figure(strip, caps, colors=["#2ca02c" if k else "#d62728" for k in kept], tile=80),
        key="rob_preview",
        config={"displayModeBar": False},
    )

with shapes:
    if not is_shapes_model(handle):
        st.info(
            f"Generated shapes need a model trained on the shapes data set (3×S×S inputs, {len(SHAPE_NAMES)} "
            f"classes: {', '.join(SHAPE_NAMES)}); **{handle.name}** takes "
            f"{'×'.join(map(str, handle.input_shape))} with {handle.num_classes} classes. Pick a shapes model "
            "(e.g. shapes-resnet-silu) in the sidebar."
        )
    else:
        cols = st.columns([3, 2, 2])
        factor = cols[0].radio("Vary", list(FACTORS), format_func=FACTORS.get, key="rob_factor", horizontal=True)
        per_value = cols[1].slider(
            "Images per value",
            6,
            120,
            30,
            6,
            key="rob_shapes_n",
            help="Balanced shapes with random colours, backgrounds and rotations (seeded).",
        )
        grid = cols[2].slider(
            "Position grid",
            3,
            21,
            7,
            key="rob_grid",
            disabled=factor != "position",
            help="Object centres on a grid×grid lattice over the image (SI-Score: 21×21).",
        )
        if factor == "rotation":
            sizes = st.multiselect(
                "Object sizes (area fraction)",
                SIZES,
                default=list(ROTATION_SIZES),
                key="rob_sizes",
                format_func=lambda a: f"{a:g}",
                help="The rotation sweep at each of these object sizes, one curve each (SI-Score "
                "rotates objects at several sizes).",
            )
            if not sizes:
                st.info(f"Pick at least one size; showing {', '.join(f'{a:g}' for a in ROTATION_SIZES)} meanwhile.")
                sizes = list(ROTATION_SIZES)
        with page.guard("Could not run the sweep"):
            if factor == "rotation":
                rotations = U.rotation_sweeps(handle, sorted(sizes), n=per_value, seed=0)
                ssweep = rotations[sorted(sizes)[0]]
            else:
                ssweep = U.shapes_sweep(handle, factor, n=per_value, seed=0, grid=grid)
        if factor == "position":
            st.plotly_chart(
                position_heatmap(ssweep, what="accuracy", title="Accuracy by object centre"), key="rob_shapes_figure"
            )
        elif factor == "rotation":
            curves = {f"area {a:g}": sw for a, sw in rotations.items()}
            st.plotly_chart(sweep_figure(curves, metric="accuracy", title=FACTORS[factor]), key="rob_shapes_figure")
        else:
            st.plotly_chart(sweep_figure(ssweep, metric="accuracy", title=FACTORS[factor]), key="rob_shapes_figure")
        st.caption(
            f"{per_value} generated images per value"
            + (", the same ones at every size" if factor == "rotation" else "")
            + "; accuracy against the true shape (solid) and the mean logit margin of the true shape (dashed)."
        )
        strip, caps = U.shapes_strip(handle, ssweep)
        st.plotly_chart(
            image_strip_figure(strip, caps, tile=80), key="rob_shapes_preview", config={"displayModeBar": False}
        )
