"""Feature space: where the last hidden layer puts each sample, and the regions the final affine layer draws there."""

from __future__ import annotations

import numpy as np
import streamlit as st

from geometry.features.embedding import EMBEDDING_METHODS
from geometry.figures import image_to_uint8
from geometry.figures.features import (
    embedding_scatter,
    feature_plane_figure,
    hull_figure,
    morph_figure,
    slice_label_figure,
)
from ui import features as ui
from ui import page
from ui.hover_images import hover_images
from ui.state import image_label

METHOD_LABELS = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}

sel = page.selection()
handle, data = sel.handle, sel.dataset
class_names = list(handle.class_names)
is_image = data.images.dim() == 4
ui.start_umap_warmup()

st.title("Feature space")
st.markdown(
    "The last hidden layer is where a classifier separates its classes. After it the model is affine, "
    "`logits = W z + b`, so each class region in feature space is a **convex polyhedron**: exact maps below "
    "come from the final layer alone. Behind a 2D embedding the regions can only be **approximated**."
)


def show_sample(i: int, *, width: int = 96, caption: str | None = None) -> None:
    """One data set sample: its image (or its 2D coordinates), with its true label."""
    text = caption or index_label(i)
    if is_image:
        st.image(image_to_uint8(data.images[i], min_size=width), caption=text, width=width)
    else:
        st.markdown(f"**{text}** at ({', '.join(f'{v:.2f}' for v in data.images[i].tolist())})")


def index_label(i: int) -> str:
    return image_label(data, i)


# -- controls -------------------------------------------------------------------------------------

n_total = len(data)
three_key = f"feat_three::{data.name}::{data.split}::{n_total}"  # the three samples of the feature-plane map
default_n = min(1000, n_total)


def keep_in_range(key: str, lo: int, hi: int, default: int) -> None:
    """A slider's value lives in session state (set here, not by ``value=``): reset it when out of range."""
    value = st.session_state.get(key)
    if not (isinstance(value, int) and lo <= value <= hi):
        st.session_state[key] = default


if n_total < 3:
    st.error(f"The feature-space view needs at least 3 samples; {data.name} has {n_total}. Pick or upload more.")
    st.stop()
keep_in_range("feat_sample", 10, n_total, default_n)
cols = st.columns([3, 2, 2, 2])
with cols[0]:
    if n_total > 10:
        n_sample = st.slider(
            "Samples",
            min_value=10,
            max_value=n_total,
            key="feat_sample",
            help=f"A seeded random sample of {data.name} ({data.split} split, {n_total:,} samples).",
        )
    else:
        n_sample = n_total
        st.caption(f"All {n_total} samples of {data.name}.")
with cols[1]:
    method = st.selectbox(
        "Embedding",
        list(METHOD_LABELS),
        format_func=METHOD_LABELS.get,
        key="feat_embedding",
        help=" ".join(EMBEDDING_METHODS.values()),
    )
with cols[2]:
    color_by = st.radio(
        "Colour by", ["true", "predicted"], horizontal=True, key="feat_color", format_func=lambda c: f"{c} class"
    )
with cols[3]:
    paint = st.toggle(
        "Paint regions",
        value=True,
        key="feat_paint",
        help="Paint the model's classes behind the embedding (an approximation; see below).",
    )

with st.expander("Options: layer, embedding parameters, painting"):
    ocols = st.columns(4)
    layers = ui.layer_options(handle)
    layer = ocols[0].selectbox(
        "Layer",
        layers,
        key="feat_layer",
        format_func=lambda n: "input of the final linear layer (default)" if n == "head" else n,
        help="Exact region maps need the input of the final affine layer.",
    )
    seed = int(ocols[0].number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="feat_seed"))
    params: dict[str, object] = {}
    if method == "umap":
        params["n_neighbors"] = int(ocols[1].slider("UMAP neighbours", 2, 100, 15, key="feat_umap_nn"))
        params["min_dist"] = float(ocols[1].slider("UMAP min_dist", 0.0, 1.0, 0.1, 0.05, key="feat_umap_md"))
    elif method == "tsne":
        params["perplexity"] = float(ocols[1].slider("t-SNE perplexity", 2.0, 100.0, 30.0, 1.0, key="feat_tsne_perp"))
    backmap = ocols[2].radio(
        "Back-map",
        ["knn", "rbf"],
        key="feat_backmap",
        horizontal=True,
        format_func={"knn": "k nearest neighbours", "rbf": "thin-plate RBF"}.get,
        help="How a grid point of the embedding is mapped back to feature space.",
    )
    resolution = int(ocols[3].slider("Painting grid", 50, 400, 200, 10, key="feat_paint_res"))

with page.guard(
    "Could not compute the features or their embedding",
    stopped="Stopped. Change a setting (fewer samples, PCA instead of UMAP or t-SNE) or let it run to the end.",
):
    fs = ui.feature_set(handle, data, sample=n_sample, layer=layer)
    em = ui.embedding(fs, method, params, seed)

painted = None
if paint and fs.has_head:
    with page.guard("Could not paint the regions", keep_going=True):
        painted = ui.painted(fs, em, method=backmap, resolution=resolution)
elif paint:
    st.info(f"No regions to paint at this layer: {fs.head_note}")

acc = float((fs.predictions == fs.labels)[fs.labels >= 0].mean()) if (fs.labels >= 0).any() else float("nan")
mcols = st.columns(6)
mcols[0].metric("Samples", f"{len(fs):,}")
mcols[1].metric("Dimension", fs.dim, help=f"Dimension of the features: the {fs.description}.")
mcols[2].metric("Accuracy", f"{acc:.1%}" if acc == acc else "—", help="The model's accuracy on these samples.")
mcols[3].metric("Misclassified", int(fs.misclassified.sum()))
if painted is not None:
    mcols[4].metric(
        "Held-out agreement",
        f"{painted.heldout_agreement:.1%}",
        help=f"The share of the {len(fs):,} samples whose class on a map painted *without* them (from the other "
        f"{painted.folds - 1} of {painted.folds} seeded folds) equals the model's prediction from their real "
        f"features: how well the painting predicts the model between samples. Chance (the most common class "
        f"everywhere): {painted.chance_agreement:.1%}.",
    )
    mcols[5].metric(
        "In-sample agreement",
        f"{painted.agreement:.1%}",
        help="The same at the samples the map was painted from (their own grid cell): optimistic, since the map "
        "reproduces its own samples; a map of random positions scores well above chance this way.",
    )
    if painted.heldout_better_than_chance:
        st.caption(painted.reading())
    else:
        st.warning(painted.reading(), icon=":material/report:")

# Nothing that the selection or the choices further down change may enter this figure: a figure that differs
# between reruns is a new chart to Streamlit, and its selection would be lost.
axis_names = ("PC 1", "PC 2") if method == "pca" else (f"{METHOD_LABELS[method]} 1", f"{METHOD_LABELS[method]} 2")
if method == "pca" and em.explained_variance is not None:
    axis_names = tuple(f"PC {i + 1} ({v:.0%} of variance)" for i, v in enumerate(em.explained_variance))  # type: ignore[assignment]
fig = embedding_scatter(
    em.coords,
    fs.labels,
    fs.predictions,
    class_names,
    indices=fs.indices,
    color_by=color_by,
    painted=painted,
    axis_names=axis_names,
)
predicted = dict(zip(fs.indices.tolist(), fs.predictions.tolist(), strict=True))


def use_selected_for_plane() -> None:
    picked = [i for i in ui.selected_indices(st.session_state.get("feat_scatter"), fig) if 0 <= i < n_total]
    if len(picked) >= 3:
        st.session_state[three_key] = ui.pick_three(picked, predicted)
        st.rerun()  # the whole page: the feature-plane map further down follows the new three


@st.fragment
def scatter_and_selection() -> None:
    """The scatter and the samples selected on it: a click, box or lasso reruns this fragment alone, not the
    features, the embedding or the sections below. It reads the page's values of the last full run (``fig``,
    ``fs``...)."""
    event = st.plotly_chart(fig, key="feat_scatter", on_select="rerun", selection_mode=("points", "box", "lasso"))
    sprite = ui.hover_sprite(data, fs)
    if sprite is not None:  # a thumbnail of the hovered sample follows the mouse (the points' customdata is its index)
        hover_images("feat_scatter", sprite, fs.indices)
    note = (
        f"{METHOD_LABELS[method]} of the {fs.description} ({fs.dim}-d), {len(fs):,} samples, seed {seed}. "
        "✗ marks misclassified samples. "
        + ("Hover over a point to see its image; click" if sprite is not None else "Click")
        + ", box or lasso points to see their images."
    )
    if painted is not None:
        note += (
            f" **The painted background is an approximation**: each grid point is mapped back to feature space "
            f"({'k nearest neighbours' if backmap == 'knn' else 'thin-plate RBF'} on the samples, k={painted.k}) and "
            f"classified by the final layer; pale where it is not trustworthy (no sample within "
            f"{painted.radius:.3g}, or too few nearby samples are predicted as the painted class and were classified "
            f"so by a map painted without them): {painted.trusted_share:.0%} of the grid is trusted."
        )
    st.caption(note)

    selected = [i for i in ui.selected_indices(event, fig) if 0 <= i < n_total]
    three_selected = ui.pick_three(selected, predicted)  # of three different predicted classes where possible

    if selected:
        st.subheader(f"Selected samples ({len(selected)})")
        shown = selected[:24]
        per_row = 8
        for start in range(0, len(shown), per_row):
            row = st.columns(per_row)
            for col, i in zip(row, shown[start : start + per_row], strict=False):
                with col:
                    p = predicted.get(i)
                    show_sample(i, caption=f"{index_label(i)} → {class_names[p]}" if p is not None else None)
        if len(selected) > len(shown):
            st.caption(f"… and {len(selected) - len(shown)} more.")
        bcols = st.columns([2, 2, 3])
        bcols[0].button(
            "Use three for the feature-plane map",
            key="feat_use_selected",
            on_click=use_selected_for_plane,
            disabled=len(selected) < 3,
        )
        if ui.slices_page_exists():
            if bcols[1].button("Send three to the Slices page", key="feat_send_slices", disabled=len(selected) < 3):
                ui.send_to_slices(three_selected)
        else:
            bcols[1].caption("The Slices page is not installed here.")
        if len(selected) >= 3:
            bcols[2].caption(
                f"Three of them, of different predicted classes where possible: "
                f"{', '.join(f'#{i}' for i in three_selected)}."
            )
    else:
        st.caption("No points selected yet.")


scatter_and_selection()

# -- exact region map on a feature plane ------------------------------------------------------------

st.header("Exact regions on a plane in feature space")
st.markdown(
    "Pick three samples: the plane through their features is cut by the final layer into convex polygons, "
    "computed exactly (every pixel is the head's own argmax there; the black lines are the exact boundaries). "
    "Beside it, the slice of **pixel space** through the same three images: the arrangement differs, which is "
    "the point — straight lines in feature space are curves in pixel space and vice versa."
)
if three_key not in st.session_state:  # default: the sidebar's picks
    default_three = [i for i in sel.indices if 0 <= i < n_total][:3]
    st.session_state[three_key] = default_three if len(default_three) == 3 else [int(i) for i in fs.indices[:3]]
pcols = st.columns([3, 2])
three = pcols[0].multiselect(
    "Three samples", list(range(n_total)), key=three_key, max_selections=3, format_func=index_label
)
PLANE_KINDS = {"three": "through the three samples", "pca": "top-2 PCA plane"}
plane_kind = pcols[1].radio(
    "Plane", list(PLANE_KINDS), key="feat_plane_kind", horizontal=True, format_func=PLANE_KINDS.get
)

if not fs.has_head:
    st.info(f"Exact region maps need the input of the final affine layer: {fs.head_note}")
elif len(three) != 3:
    st.info("Choose exactly three samples (or select three points on the scatter and press the button).")
else:
    region = None
    with page.guard("Could not compute the feature-plane map", stopped="Stopped.", keep_going=True):
        fs_three = ui.feature_set(handle, data, indices=three, layer=layer)
        region = ui.feature_plane(fs_three, fs, plane_kind)
    if region is not None:
        names = [f"#{i}" for i in three]
        left, right = st.columns(2)
        with left:
            title = f"Feature space, {'plane through the three' if plane_kind == 'three' else 'top-2 PCA plane'}"
            st.plotly_chart(
                feature_plane_figure(
                    region, class_names, anchor_names=names, point_classes=fs.predictions, title=title
                ),
                key="feat_plane_fig",
            )
            present = [f"{class_names[c]} {s:.0%}" for c, s in enumerate(region.area_share) if s > 0.005]
            extra = (
                ""
                if plane_kind == "three"
                else " The three samples are projected onto the plane; small "
                "dots are the samples projected, coloured by the model's prediction for their real "
                "features."
            )
            st.caption(f"Exact, from the final layer alone. Area shares in view: {', '.join(present)}.{extra}")
        with right:
            if plane_kind != "three":
                st.caption("The pixel-space slice needs the plane through the three samples.")
            else:
                with page.guard(
                    "Could not compute the pixel-space slice", stopped="Stopped the pixel-space slice.", keep_going=True
                ):
                    plane, sl = ui.pixel_slice(handle, data, three)
                    st.plotly_chart(
                        slice_label_figure(
                            sl,
                            class_names,
                            anchors=plane.anchors,
                            anchor_classes=fs_three.predictions.tolist(),
                            title="Pixel space, same three images",
                        ),
                        key="feat_slice_fig",
                    )
                    st.caption(
                        f"The model evaluated on {sl.evaluations:,} points of the pixel-space plane "
                        "(adaptive grid); pale where a pixel leaves [0, 1]."
                    )
        if ui.slices_page_exists() and st.button("Open this plane on the Slices page", key="feat_open_slices"):
            ui.send_to_slices(three)

# -- convex hull ------------------------------------------------------------------------------------

st.header("Inside or outside the training data's convex hull?")
st.markdown(
    "A test sample whose features lie inside the convex hull of the training features is an interpolation; "
    "outside, the model extrapolates. Membership is a linear program, the distance a quadratic program "
    "(exact). In high dimensions nearly every test sample is outside — even for an accurate model."
)
train = ui.train_split(data)
if train is None:
    st.info("The hull test needs the training split of a built-in data set; pick one in the sidebar.")
else:
    hcols = st.columns([3, 1])
    n_hull = len(fs)
    if len(fs) > 10:
        keep_in_range("feat_hull_n", 10, len(fs), min(200, len(fs)))
        n_hull = int(hcols[0].slider("Test samples to check", min_value=10, max_value=len(fs), key="feat_hull_n"))
    run_hull = hcols[1].button("Run the hull test", key="feat_hull_run", type="primary")
    report = None
    with page.guard("Could not run the hull test", stopped="Stopped the hull test.", keep_going=True):
        report = ui.hull(handle, train, fs, n_hull, layer=layer, run=run_hull)
    if report is None:
        st.caption(
            f"Checks {n_hull} test samples against the hulls of the {len(train):,} training features "
            "(overall and of their class); press the button to run it (the result is cached)."
        )
    else:
        c = st.columns(4)
        c[0].metric("Outside the overall hull", f"{report.share_outside:.0%}")
        c[1].metric("Outside their class's hull", f"{report.share_outside_class:.0%}")
        c[2].metric("Median distance (relative)", f"{np.median(report.distance) / report.scale:.3f}")
        c[3].metric("Training features", f"{int(report.train_count.sum()):,}")
        st.plotly_chart(hull_figure(report, class_names), key="feat_hull_fig")
        st.caption(
            f"{len(report.inside)} test samples, {fs.dim}-d features. Distances are divided by the median "
            f"distance of the training features from their mean ({report.scale:.3g})."
        )

# -- morphing ---------------------------------------------------------------------------------------

st.header("Morphing: the straight path in pixel space vs in feature space")
st.markdown(
    "Along the straight line between two **images** the class may change several times. Along the straight line "
    "between their **features** the logits change linearly, so each class appears at most once (its region is "
    "convex)."
)
mkey = f"feat_morph::{data.name}::{data.split}::{n_total}"
morph_defaults = {"a": three[0] if len(three) > 0 else 0, "b": three[1] if len(three) > 1 else min(1, n_total - 1)}
for suffix, default in morph_defaults.items():
    if not 0 <= st.session_state.get(f"{mkey}::{suffix}", -1) < n_total:
        st.session_state[f"{mkey}::{suffix}"] = int(default)
mc = st.columns([2, 2, 2])
ia = mc[0].selectbox("From", list(range(n_total)), key=f"{mkey}::a", format_func=index_label)
ib = mc[1].selectbox("To", list(range(n_total)), key=f"{mkey}::b", format_func=index_label)
steps = int(mc[2].slider("Steps", 9, 101, 33, 2, key="feat_morph_steps"))
if ia == ib:
    st.info("Pick two different samples.")
else:
    mr = None
    with page.guard(
        "Could not compute the paths",
        stopped="Stopped the morphing. Pick other samples or fewer steps, or let it run to the end.",
        keep_going=True,
    ):
        mr = ui.morph_paths(handle, data, int(ia), int(ib), steps)
    if mr is not None:
        st.plotly_chart(morph_figure(mr, class_names, endpoint_names=(f"#{ia}", f"#{ib}")), key="feat_morph_fig")
        seq_p = " → ".join(class_names[c] for c in mr.pixel_classes)
        seq_f = " → ".join(class_names[c] for c in mr.feature_classes)

        def changes(n: int) -> str:
            return f"{n} change{'' if n == 1 else 's'}"

        st.markdown(
            f"Pixel path: **{seq_p}** ({changes(len(mr.pixel_breaks))}) · feature path: **{seq_f}** "
            f"({changes(len(mr.feature_breaks))}, exact). The pixel path's image in feature space is "
            f"{mr.pixel_path_length / max(mr.feature_distance, 1e-12):.2f}× as long as the straight "
            "feature path."
        )
        if is_image:
            strip = ui.path_images(handle, data, int(ia), int(ib), 9)
            scols = st.columns(len(strip))
            for col, (t, x, p) in zip(scols, strip, strict=True):
                col.image(image_to_uint8(x, min_size=64), caption=f"t={t:.2f} → {class_names[p]}", width=64)
            st.caption(
                "Images along the pixel path. Points on the feature path have no image: features cannot be inverted."
            )
