"""Slices: the model's classification regions on a 2D plane through input space, around a picked image."""

from __future__ import annotations

import functools
import time

import numpy as np
import streamlit as st

from geometry.figures import image_to_uint8, probability_bars
from geometry.figures.slices import disagreement_figure, slice_colors, slice_figure
from geometry.slices.stats import region_iou, slice_statistics
from ui import page, state
from ui import slices as U
from ui import vocabulary as words

U.link_to_sidebar()  # a shared link's model and data set, when this page runs before the sidebar is drawn
sel = page.selection()
handle, data = sel.handle, sel.dataset
is_toy = len(handle.input_shape) == 1
NONE = "none"

st.title("Slices")
st.caption(
    "The model's decision regions on a plane through input space: x0 + a·u + b·v, with u and v orthonormal, so a "
    f"and b are L2 distances in {words.input_space(handle)}. Colour = predicted class (paler = less confident), dark "
    "lines = boundaries (along the grid cells where the label changes)"
    + ("." if words.is_plane(handle) else ", dimmed and hatched = some pixel leaves [0, 1].")
    + " Click a point to see the input there."
)

# -- requests from other pages and from a shared link (applied before the widgets exist) ----------------------------

U.apply_page_request(data)  # "three images" from the Feature-space page
U.apply_link(handle, data)  # a shared link (app.py has applied its model and data set to the sidebar)

# -- the plane ------------------------------------------------------------------------------------------------------

kinds = U.available_kinds(handle)
for key, value in (
    ("slices_adaptive", True),
    ("slices_seed", 0),
    ("slices_target", U.NEAREST),
    ("slices_which", "positive"),
    ("slices_model2", NONE),
    ("slices_zoom", 1.0),
    ("slices_shade", True),
    ("slices_dim", True),
    ("slices_pair_i", NONE),
    ("slices_pair_j", NONE),
    ("slices_manual_extent", False),
):
    st.session_state.setdefault(key, value)
if st.session_state.get("slices_kind") not in kinds:
    st.session_state["slices_kind"] = U.default_kind(handle)
if st.session_state.get("slices_res") not in U.RESOLUTIONS:
    st.session_state["slices_res"] = 256
x0_options = list(sel.indices)  # the sidebar's picks, plus an index set by a link or another page
if isinstance(st.session_state.get("slices_x0"), int) and 0 <= st.session_state["slices_x0"] < len(data):
    x0_options = list(dict.fromkeys([*x0_options, st.session_state["slices_x0"]]))
if st.session_state.get("slices_x0") not in x0_options:
    st.session_state["slices_x0"] = x0_options[0]


def _image_label(i: int) -> str:
    return state.image_label(data, i)


cols = st.columns([2.1, 1.3, 1.5, 1.5, 1.2])
kind = cols[0].selectbox(
    "Plane",
    kinds,
    key="slices_kind",
    format_func=lambda k: U.KINDS[k][0],
    help="How the two directions u, v of the plane are chosen.",
)
if kind == "three":  # the plane's origin is the first of its three images: show it, not a picker that disagrees
    if not isinstance(st.session_state.get("slices_three"), list):
        st.session_state["slices_three"] = list(sel.indices[:3]) if len(sel.indices) >= 3 else [0, 1, 2][: len(data)]
    st.session_state["slices_three"] = [  # indices of another data set picked earlier would break the widget
        i for i in st.session_state["slices_three"] if isinstance(i, int) and 0 <= i < len(data)
    ]
    first = st.session_state["slices_three"][:1]
    x0 = first[0] if first else st.session_state["slices_x0"]
    cols[1].selectbox(
        "Origin x0",
        first or ["—"],
        format_func=lambda i: _image_label(i) if isinstance(i, int) else i,
        disabled=True,
        help="The plane through three images has its origin at the first of the three: change the order below.",
    )
else:
    x0 = cols[1].selectbox(
        "Origin x0",
        x0_options,
        key="slices_x0",
        format_func=_image_label,
        help="The image at the centre (0, 0); pick more images in the sidebar.",
    )
resolution = cols[2].select_slider("Resolution", U.RESOLUTIONS, key="slices_res", help="Grid points per axis.")
zoom = cols[3].select_slider(
    "Zoom out",
    [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0],
    key="slices_zoom",
    help="Multiplies the default extent (about 2x the distance to the boundary).",
)
adaptive = cols[4].toggle(
    "Adaptive",
    key="slices_adaptive",
    help="Refine only near boundaries (quadtree): far fewer model evaluations, same regions.",
)
st.caption(f"**{U.KINDS[kind][0]}**: {U.KINDS[kind][1]}")

class_options = list(range(handle.num_classes))
spec = U.PlaneSpec(kind=kind, x0=int(x0))
upload = None
opts = st.columns(4)
with page.guard("Cannot evaluate the model at x0"):
    ranking = U.class_ranking(handle, data.images[int(x0)]) if kind in ("normal", "two") else []  # prediction first
if kind == "normal":
    others = ranking[1:]  # every class but x0's prediction
    if st.session_state.get("slices_target") not in [U.NEAREST, *others]:
        st.session_state["slices_target"] = U.NEAREST
    target = opts[0].selectbox(
        "Towards",
        [U.NEAREST, *others],
        key="slices_target",
        format_func=lambda k: "the nearest class" if k == U.NEAREST else handle.class_names[k],
    )
    seed = opts[1].number_input("Seed of the random direction", 0, U.MAX_SEED, key="slices_seed")
    spec = U.spec_with(spec, target=int(target), seed=int(seed))
elif kind == "curvature":
    which = opts[0].radio(
        "Curvature",
        ["positive", "negative"],
        key="slices_which",
        horizontal=True,
        help="Principal direction of the most positive or most negative normal curvature "
        "(kappa > 0: x0's region is locally convex there).",
    )
    spec = U.spec_with(spec, which=which)
elif kind == "two":
    others = ranking[1:]
    ca, cb = st.session_state.get("slices_class_a"), st.session_state.get("slices_class_b")
    if ca not in others or cb not in others or ca == cb:  # default: the two runner-up classes at x0
        st.session_state["slices_class_a"], st.session_state["slices_class_b"] = others[0], others[1]
    a_cls = opts[0].selectbox(
        "Class along u",
        others,
        key="slices_class_a",
        format_func=lambda k: handle.class_names[k],
        help="Classes other than x0's prediction, most likely first.",
    )
    b_cls = opts[1].selectbox(
        "Class along v", others, key="slices_class_b", format_func=lambda k: handle.class_names[k]
    )
    spec = U.spec_with(spec, classes=(int(a_cls), int(b_cls)))
elif kind in ("random", "dct"):
    seed = opts[0].number_input("Seed", 0, U.MAX_SEED, key="slices_seed")
    spec = U.spec_with(spec, seed=int(seed))
    if kind == "dct":
        size = min(handle.input_shape[1:])
        top = max(2, size // 2)
        st.session_state["slices_dct"] = int(np.clip(st.session_state.get("slices_dct", 2), 1, top))
        block = opts[1].slider(
            "Band size (frequencies per side)",
            1,
            top,
            key="slices_dct",
            help="u mixes the lowest block x block DCT frequencies, v the highest.",
        )
        spec = U.spec_with(spec, dct_block=int(block))
elif kind == "three":
    three = opts[0].multiselect(
        "Three images",
        list(range(len(data))),
        key="slices_three",
        max_selections=3,
        format_func=_image_label,
        help="The first one is the origin x0.",
    )
    spec = U.spec_with(spec, images=tuple(int(i) for i in three), x0=int(three[0]) if three else int(x0))
    st.session_state["slices_x0"] = spec.x0  # the origin picker shows it when another plane kind is chosen
elif kind == "custom":
    file = opts[0].file_uploader(
        "Two directions (.npy, shape (2, " + ", ".join(map(str, handle.input_shape)) + "))",
        type=["npy"],
        key="slices_upload",
    )
    upload = file.getvalue() if file is not None else None
    spec = U.spec_with(spec, upload=U.upload_digest(upload))
    wanted = st.session_state.get("slices_link_upload")
    if wanted and not upload:
        opts[1].info(
            f"The link you opened was made with uploaded directions (digest {wanted}); a link cannot carry a file: "
            "upload the same .npy to see that view."
        )
    elif wanted and spec.upload != wanted:
        opts[1].warning(f"This file (digest {spec.upload}) is not the one the link was made with (digest {wanted}).")

for key in ("slices_pair_i", "slices_pair_j"):  # a pair of a model with more classes, picked before
    if st.session_state.get(key) not in [NONE, *class_options]:
        st.session_state[key] = NONE
with st.expander("Extent, class pair, display and a second model"):
    e_cols = st.columns(4)
    manual = e_cols[0].checkbox("Set the extent by hand", key="slices_manual_extent")
    pair_cols = st.columns(4)
    pair_i = pair_cols[0].selectbox(
        "Logit margin of class",
        [NONE, *class_options],
        key="slices_pair_i",
        format_func=lambda k: k if k == NONE else handle.class_names[k],
        help="Draw the smooth line where f(i) = f(j) for a class pair (i, j).",
    )
    pair_j = pair_cols[1].selectbox(
        "minus class",
        [NONE, *class_options],
        key="slices_pair_j",
        format_func=lambda k: k if k == NONE else handle.class_names[k],
    )
    shade = pair_cols[2].toggle("Shade by confidence", key="slices_shade")
    dim = pair_cols[3].toggle("Dim inputs outside [0, 1]", key="slices_dim")
    others = state.comparable_models(handle)
    if st.session_state.get("slices_model2", NONE) not in [NONE, *others]:
        st.session_state["slices_model2"] = NONE
    model2 = st.selectbox("Compare with a second model on the same plane", [NONE, *others], key="slices_model2")

with page.guard("Cannot build this plane"):
    with st.spinner("Building the plane…"):
        plane = U.build_plane(handle, data, spec, upload)
    default_ext = U.default_extent(plane, handle)

if manual:
    for name, value in zip(("a0", "a1", "b0", "b1"), default_ext, strict=True):
        st.session_state.setdefault(f"slices_ext_{name}", float(round(value, 4)))
    with e_cols[1]:
        a0 = st.number_input("a from", key="slices_ext_a0", format="%.4f")
        a1 = st.number_input("a to", key="slices_ext_a1", format="%.4f")
    with e_cols[2]:
        b0 = st.number_input("b from", key="slices_ext_b0", format="%.4f")
        b1 = st.number_input("b to", key="slices_ext_b1", format="%.4f")
    extent = (a0, a1, b0, b1)
else:
    extent = U.zoom_extent(default_ext, zoom)
pair = (int(pair_i), int(pair_j)) if NONE not in (pair_i, pair_j) and pair_i != pair_j else None

# -- the slice ------------------------------------------------------------------------------------------------------

started = time.perf_counter()
with page.guard(
    "Cannot compute this slice",
    stopped="Stopped. Change a setting (a smaller resolution is faster) or compute this view after all.",
    resume_key="slices_resume",
):
    result = U.compute_slice(handle, plane, extent=extent, resolution=resolution, adaptive=adaptive, target_pair=pair)
elapsed = time.perf_counter() - started
stats = slice_statistics(result)

if "slices_a" not in st.session_state:
    st.session_state["slices_a"], st.session_state["slices_b"] = 0.0, 0.0


def _on_select() -> None:
    chart = st.session_state.get("slices_chart")
    points = chart["selection"]["points"] if chart else []
    if points:
        st.session_state["slices_a"] = float(points[0]["x"])
        st.session_state["slices_b"] = float(points[0]["y"])


toy_points = (plane.coordinates(data.images), data.labels.numpy()) if is_toy else None
png_config = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "filename": f"slice-{handle.name}-{kind}-{x0}", "scale": 2},
}

second = None
if model2 != NONE:
    with page.guard(
        f"Cannot compute the slice of {model2}", stopped=f"Stopped the slice of {model2}.", keep_going=True
    ):
        handle2 = state.builtin_handle(model2, str(handle.device))
        second = U.compute_slice(
            handle2,
            plane,
            extent=extent,
            resolution=resolution,
            adaptive=adaptive,
            target_pair=pair,
            label=f" ({model2})",
        )

# one colour per class for both figures (with more than 24 classes the colours follow the classes in view)
colors = slice_colors([result.labels] if second is None else [result.labels, second.labels], handle.num_classes)
link = functools.partial(
    U.query_params_of,
    spec,
    extent=tuple(float(e) for e in result.extent),
    resolution=resolution,
    adaptive=bool(adaptive),
    model=handle.name,
    data=data.name,
    model2=None if model2 == NONE else model2,
    pair=pair,
    shade=bool(shade),
    dim=bool(dim),
)  # the selected point is added by the view


@st.fragment
def slice_view() -> None:
    """The slice figure(s), their numbers and the input at the selected point, with the link that names it.

    A click on the figure (or new coordinates a, b) reruns this fragment alone: the plane, the slice and the
    controls above are not built again. It reads the page's values of the last full run (``result``, ``plane``...).
    """
    point = (float(st.session_state["slices_a"]), float(st.session_state["slices_b"]))
    fig = slice_figure(
        result,
        handle.class_names,
        anchors=plane.anchors,
        title=f"{handle.name} · {plane.description}",
        shade=shade,
        dim_invalid=dim,
        selected=point,
        points=toy_points,
        colors=colors,
    )

    if second is None:
        st.plotly_chart(fig, key="slices_chart", on_select=_on_select, selection_mode="points", config=png_config)
    else:
        st.caption(f"Both models on one plane: {plane.description}.")
        left, right = st.columns(2)
        with left:
            fig.update_layout(height=520, title=handle.name, legend=dict(orientation="h", y=-0.18))
            st.plotly_chart(fig, key="slices_chart", on_select=_on_select, selection_mode="points", config=png_config)
        with right:
            fig2 = slice_figure(
                second,
                handle2.class_names,
                anchors=plane.anchors,
                title=f"{model2} (same plane)",
                shade=shade,
                dim_invalid=dim,
                selected=point,
                points=toy_points,
                height=480,
                colors=colors,
            )
            fig2.update_layout(height=520, legend=dict(orientation="h", y=-0.18))
            st.plotly_chart(
                fig2,
                key="slices_chart2",
                config={
                    **png_config,
                    "toImageButtonOptions": {
                        **png_config["toImageButtonOptions"],
                        "filename": f"slice-{model2}-{kind}-{x0}",
                    },
                },
            )

    # -- numbers ------------------------------------------------------------------------------------------------------

    dense = result.labels.size
    m = st.columns(5)
    m[0].metric(
        "To the boundary",
        f"{stats.boundary_distance:.3f}" if np.isfinite(stats.boundary_distance) else "none",
        help=f"From x0 to the nearest label change in this view, L2 {words.distance_unit(handle)} (to half a grid "
        "cell).",
    )
    present = np.flatnonzero(stats.area_share > 0)
    m[1].metric("Classes in view", len(present))
    fragmented = [handle.class_names[k] for k in stats.fragmented]
    m[2].metric(
        "Fragmented",
        len(fragmented),
        help="Classes with more than one connected region here: "
        + (", ".join(f"{n} ({stats.components[handle.class_names.index(n)]})" for n in fragmented) or "none"),
    )
    m[3].metric(
        "Evaluations",
        f"{result.evaluations:,}",
        f"{dense / result.evaluations:.1f}x < dense" if result.adaptive else "dense",
        delta_color="off",
        help="Grid points the model was run on. Adaptive slices run it only near boundaries (and near the "
        "f(i) = f(j) line of a chosen pair); elsewhere the label is the cell corners' common label and probability "
        "and margins are interpolated between them (hover says 'interpolated'; the .npz's `evaluated` marks them).",
    )
    cached = elapsed < 0.5 * result.seconds
    m[4].metric(
        "Time",
        "cached" if cached else f"{elapsed:.1f} s",
        f"computed in {result.seconds:.1f} s" if cached else None,
        delta_color="off",
    )
    share_text = ", ".join(
        f"{handle.class_names[k]} {stats.area_share[k]:.0%}" for k in present[np.argsort(-stats.area_share[present])]
    )
    interpolated = (
        f" Adaptive: the model ran on {result.evaluations / dense:.1%} of the grid points; the others' probability and "
        "margins are interpolated, not model outputs."
        if result.adaptive
        else ""
    )
    st.caption(
        f"Area per class: {share_text}. "
        + ("" if words.is_plane(handle) else f"Inputs inside [0, 1]: {result.valid.mean():.1%} of the view. ")
        + f"Extent a ∈ [{extent[0]:.3g}, {extent[1]:.3g}], b ∈ [{extent[2]:.3g}, {extent[3]:.3g}] "
        f"(L2 {words.distance_unit(handle)})." + interpolated
    )

    if second is not None:
        iou = region_iou(result.labels, second.labels, handle.num_classes)
        c = st.columns([1, 1, 2])
        c[0].metric(
            "IoU of the regions",
            f"{iou.mean_iou:.3f}",
            help="Mean over classes present of |A=c ∩ B=c| / |A=c ∪ B=c|.",
        )
        c[1].metric("Same label", f"{iou.agreement:.1%}")
        with c[2]:
            st.plotly_chart(disagreement_figure(result, second, (handle.name, model2), height=300), key="slices_diff")

    # -- the selected point -------------------------------------------------------------------------------------------

    st.subheader("The input at a point of the plane")
    pc = st.columns([1, 1, 1.2, 1.2, 2.4])
    pc[0].number_input("a", key="slices_a", format="%.4f", step=0.05)
    pc[1].number_input("b", key="slices_b", format="%.4f", step=0.05)
    with page.guard(f"Cannot evaluate the model at ({point[0]:.4g}, {point[1]:.4g})"):
        x_at, probs = U.probabilities_at(handle, plane, *point)
    pred = int(probs.argmax())
    inside = plane.input_shape == (2,) or bool(((x_at >= 0) & (x_at <= 1)).all())
    if is_toy:
        pc[2].markdown(f"**x0** = ({', '.join(f'{v:.3f}' for v in plane.origin.tolist())})")
        pc[3].markdown(f"**point** = ({', '.join(f'{v:.3f}' for v in x_at.tolist())})")
    else:
        pc[2].image(image_to_uint8(plane.origin, min_size=120), caption="x0 (the origin)")
        pc[3].image(
            image_to_uint8(x_at, min_size=120),
            caption=f"x0 + {point[0]:.2f}·u + {point[1]:.2f}·v" + ("" if inside else " (clipped to [0, 1])"),
        )
    with pc[4]:
        st.markdown(f"Predicted **{handle.class_names[pred]}** ({probs[pred]:.1%}) at ({point[0]:.3f}, {point[1]:.3f})")
        st.plotly_chart(
            probability_bars(probs, handle.class_names, k=min(5, handle.num_classes)),
            key="slices_probs",
            config={"displayModeBar": False},
        )

    qp = link(point=point)  # the URL follows the selected point
    if st.query_params.to_dict() != qp:
        st.query_params.from_dict(qp)


slice_view()

# -- downloads ------------------------------------------------------------------------------------------------------

d = st.columns([1, 3])
d[0].download_button(
    "Download arrays (.npz)",
    data=lambda: U.npz_bytes(result, plane, handle.class_names),
    file_name=f"slice-{handle.name}-{kind}-{x0}.npz",
    mime="application/octet-stream",
    key="slices_npz",
    on_click="ignore",
    icon=":material/download:",
)
d[1].caption(
    "The figure's camera icon saves it as PNG; this page's URL reproduces the view (plane, image, extent, "
    "resolution, class pair, display toggles, models, selected point). The .npz holds labels, probability and "
    "margins, the plane basis and `evaluated`: where it is False (adaptive slices) the values are interpolated."
)
if kind == "custom":
    d[1].warning(
        "Uploaded directions cannot be put in a link: the URL names the file only by its digest, so whoever opens "
        "it must upload the same .npy."
    )
