"""Curvature: DeepFool's boundary point for one image, and how the boundary curves there (principal curvatures,
directions, cross-sections, random directions, and the link to vulnerability)."""

from __future__ import annotations

import math

import streamlit as st

from geometry.boundary.hessian import default_step, resolve_method
from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.boundary.spectrum import concentration
from geometry.figures import image_to_uint8, toy_scatter
from geometry.figures.curvature import (
    SIGN_CONVENTION,
    curvature_histogram,
    logit_profile_figure,
    profile_figure,
    signed_image,
    spectrum_figure,
    vulnerability_figure,
)
from ui import curvature as U
from ui import page

sel = page.selection()
handle = sel.handle
names = handle.class_names
is_toy = len(handle.input_shape) == 1
dim = math.prod(handle.input_shape)

st.title("Curvature")
st.caption(
    "Near a data point the decision boundary is flat in most directions and sharply curved in a few — and those few "
    "are where the model is most vulnerable (Fawzi et al., 2017-2018). DeepFool finds the nearest boundary point z; "
    "the curvature of the boundary {F = f_k − f_j = 0} is measured there, along its principal directions."
)

# -- choices ---------------------------------------------------------------------------------------------------------

positions = list(range(len(sel.indices)))
if st.session_state.get("curv_image") not in positions:
    st.session_state["curv_image"] = 0
cols = st.columns([2, 2, 1])
pos = cols[0].selectbox("Image (from the sidebar's picks)", positions, format_func=sel.caption, key="curv_image")
x = sel.images[pos : pos + 1]
with page.guard(""):
    predicted = int(handle.predict(x)[0])
targets = [U.NEAREST] + [c for c in range(handle.num_classes) if c != predicted]
if st.session_state.get("curv_target") not in targets:
    st.session_state["curv_target"] = U.NEAREST
target = cols[1].selectbox(
    "Target class",
    targets,
    key="curv_target",
    format_func=lambda c: "nearest class (untargeted)" if c == U.NEAREST else names[c],
)
clip = cols[2].toggle(
    "Clip to [0, 1]",
    key="curv_clip",
    disabled=handle.input_range is None,
    help="Keep DeepFool's path inside valid images (projected steps).",
)

with st.expander("Curvature settings: method, number of directions"):
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox("How curvature is measured", list(U.METHODS), format_func=U.METHODS.get, key="curv_method")
    max_k = max(1, min(50, dim - 1))
    if st.session_state.get("curv_k", 10) > max_k:
        st.session_state["curv_k"] = max_k
    if max_k > 1:
        k = c2.slider("Principal curvatures from each end (k)", 1, max_k, min(10, max_k), key="curv_k")
    else:
        k = 1
        c2.caption("2D input: the boundary is a curve with a single curvature.")
    num_random = c3.select_slider("Random directions", [50, 100, 300, 1000], value=300, key="curv_random")
    resolved, _ = resolve_method(handle, method)
    h = None
    beta = 10.0
    if resolved == "finite-difference":
        h = c1.number_input(
            "Finite-difference step h (L2, input units)",
            min_value=1e-4,
            max_value=1.0,
            value=float(default_step(handle)),
            format="%.4f",
            key="curv_h",
            help="Gradients are compared at z ± h·v: the curvature seen at scale h. Default: 1% of the input range.",
        )
    if resolved == "softplus":
        beta = c1.number_input(
            "Softplus β",
            min_value=0.5,
            max_value=1000.0,
            value=10.0,
            key="curv_beta",
            help="ReLU → softplus(βx)/β; larger β is closer to ReLU but curvier.",
        )
    seed = c2.number_input("Seed", min_value=0, max_value=10_000, value=0, key="curv_seed")

options = CurvatureOptions(
    k=int(k),
    method=method,
    h=h,
    beta=float(beta),
    num_random=int(num_random),
    seed=int(seed),
    deepfool=DeepFoolOptions(target=None if target == U.NEAREST else int(target), clip=bool(clip)),
)

# -- DeepFool --------------------------------------------------------------------------------------------------------

with page.guard("DeepFool could not run on this image"):
    df = U.run_deepfool(handle, x, options.deepfool)

st.subheader("DeepFool perturbation")
j, reached = int(df.original_label[0]), int(df.label_reached[0])
truth = int(sel.labels[pos])
aim = "the nearest class" if target == U.NEAREST else f"class {names[target]}"
clip_text = "clipped to [0, 1] (x + r is a valid image)" if df.clip else "not clipped (x + r may leave [0, 1])"
if not bool(df.converged[0]):
    st.warning(
        f"DeepFool did not reach {aim} in 50 steps (‖r‖ = {float(df.norm[0]):.3g} so far); there is no "
        "boundary point to measure curvature at. Try another image or target, or turn clipping off."
    )
    st.stop()
misclassified = truth >= 0 and truth != j
mcols = st.columns(4)
mcols[0].metric("‖r‖ (L2)", f"{float(df.norm[0]):.4f}")
mcols[1].metric("Distance to the boundary ‖z − x‖", f"{float(df.boundary_distance[0]):.4f}")
mcols[2].metric("Class change", f"{names[j]} → {names[reached]}")
mcols[3].metric("DeepFool steps", int(df.iterations[0]))
st.caption(
    f"Towards {aim}, overshoot {df.overshoot:g}, {clip_text}. z is the boundary point found by bisection on the "
    f"segment x → x + r (|F(z)| = {float(df.boundary_gap[0]):.1e} logits); the curvature below is measured at z."
    + (
        f" The model misclassifies this image (true class {names[truth]}): DeepFool starts from its prediction "
        f"{names[j]}."
        if misclassified
        else ""
    )
)
if note := U.target_note(df, names):
    st.info(note)
if is_toy:
    px = x[0].tolist()
    pr = (x[0] + df.perturbation[0]).tolist()
    st.markdown(
        f"x = ({px[0]:.3f}, {px[1]:.3f}) → x + r = ({pr[0]:.3f}, {pr[1]:.3f}). For a 2D model the input "
        "*is* a point of the plane, so the boundary is a curve and has one curvature."
    )
else:
    r = df.perturbation[0]
    scale = float(r.abs().max())
    icols = st.columns(3)
    icols[0].image(image_to_uint8(x[0], min_size=180), caption=f"x: {sel.caption(pos)}, predicted {names[j]}")
    icols[1].image(
        signed_image(r, min_size=180),
        caption=f"r, magnified ×{1.0 / scale:.0f} (red +, blue −)" if scale > 0 else "r = 0",
    )
    icols[2].image(image_to_uint8(x[0] + r, min_size=180), caption=f"x + r: predicted {names[reached]}")

# -- curvature -------------------------------------------------------------------------------------------------------

with page.guard("The curvature could not be computed"):
    curv = U.run_curvature(handle, x, options)

st.subheader("Curvature spectrum")
kname = names[int(curv.boundary_class[0])]
method_label = U.METHODS.get(curv.method, curv.method)
detail = ""
if curv.method == "finite-difference":
    detail = f" (h = {curv.h:g})"
elif curv.method == "softplus":
    detail = f" (β = {curv.beta:g}; z moved by {float(curv.smoothing_shift[0]):.1e} onto the smoothed boundary)"
st.info(f"**Measured by: {method_label}{detail}.** Why: {curv.method_reason}.")
st.markdown(f"**Sign convention.** {SIGN_CONVENTION} Here F = f({kname}) − f({names[j]}); x's region is F < 0.")
if U.all_zero(curv):
    st.warning(
        "Every principal curvature is exactly 0. "
        + (
            "The exact Hessian of a piecewise-linear network (ReLU, max-pooling) is zero almost everywhere, so the "
            "boundary looks perfectly flat at this scale — choose finite differences or softplus smoothing above to "
            "see its curvature at a finite scale."
            if handle.smooth is not True and curv.method == "exact"
            else "The boundary is flat here (an affine boundary, or finite differences at a scale h too small to "
            "cross a kink of the network — try a larger h)."
        )
    )
if curv.method == "finite-difference" and float(curv.asymmetry[0]) > 0.3:
    st.warning(
        f"At this scale (h = {curv.h:g}) the finite-difference Hessian is far from symmetric "
        f"({float(curv.asymmetry[0]):.0%} asymmetry): the gradient jumps between the network's linear pieces, so these "
        "numbers are dominated by kinks rather than by a smooth bend. Try a larger h, or softplus smoothing (settings "
        "above), for a smoother picture of the same boundary."
    )
kappa = curv.curvatures[0].numpy()
scols = st.columns([3, 1])
scols[0].plotly_chart(spectrum_figure(curv), key="curv_spectrum")
with scols[1]:
    st.metric("Largest κ", f"{kappa.max():.3g}")
    st.metric("Smallest κ", f"{kappa.min():.3g}")
    st.metric("‖∇F(z)‖", f"{float(curv.grad_norm[0]):.3g}")
    converged = int(curv.converged[0].sum())
    asymmetry = float(curv.asymmetry[0])
    if math.isfinite(asymmetry):
        solver = (
            f"Assembled from {curv.lanczos_iterations} finite-difference products on a tangent basis and "
            f"diagonalised (asymmetry before symmetrising {asymmetry:.0%})"
        )
    else:
        solver = f"Lanczos: {curv.lanczos_iterations} steps"
    st.caption(
        f"{solver}; {curv.hessian_products} Hessian-vector products in all, {converged}/{len(kappa)} pairs "
        f"converged (max residual {float(curv.residuals[0].max()):.1e}); {curv.seconds:.2f} s when computed."
    )

# -- principal directions --------------------------------------------------------------------------------------------

st.subheader("Principal directions")
if is_toy:
    u = curv.directions[0, 0].tolist()
    st.markdown(
        f"The tangent of the boundary curve at z is u = ({u[0]:.3f}, {u[1]:.3f}); its curvature is "
        f"κ = {kappa[0]:.4g} (radius of curvature {1 / abs(kappa[0]) if kappa[0] else math.inf:.3g})."
    )
    data = sel.dataset
    fig = toy_scatter(data.images.numpy(), data.labels.numpy(), data.class_names, highlight=[sel.indices[pos]])
    z = curv.boundary_point[0].numpy()
    fig.add_scatter(x=[z[0]], y=[z[1]], mode="markers", name="z", marker=dict(symbol="x", size=12, color="black"))
    st.plotly_chart(fig, key="curv_toy_points")
else:
    n_show = min(4, max(1, len(kappa) // 2))
    top = list(range(n_show))
    bottom = [i for i in (len(kappa) - 1 - r for r in range(n_show)) if i not in top]
    st.caption(
        "Unit directions in the tangent space at z, shown as images (red +, blue −, each scaled to its own "
        "maximum): the first row bends most towards x, the second most away from it."
    )
    for row_picks in (top, bottom):
        if not row_picks:
            continue
        dcols = st.columns(n_show)
        for col, i in zip(dcols, row_picks, strict=False):
            col.image(signed_image(curv.directions[0, i], min_size=140), caption=f"u{i + 1}: κ = {kappa[i]:.3g}")

# -- cross-sections --------------------------------------------------------------------------------------------------

st.subheader("Cross-sections with osculating parabolas")
zoom = st.select_slider(
    "View size (1: x just inside the bottom edge)", [0.5, 1.0, 1.5, 2.0, 3.0], value=1.0, key="curv_zoom"
)
with page.guard("The cross-sections could not be computed"):
    prof = U.run_profiles(handle, curv, zoom=float(zoom))
st.caption(
    "The plane through z spanned by a principal direction u (horizontal) and the boundary normal n (vertical, up = "
    f"towards {kname}): the black curve is the boundary F = 0, the dashed one its osculating parabola s = −κt²/2. "
    "With κ > 0 the boundary bends down, towards x. The star is x's orthogonal projection onto the plane. "
    "Background: the classes on that plane (Slices engine)."
    + (" Curvature and boundary here are those of the smoothed copy." if curv.method == "softplus" else "")
)
pcols = st.columns(2)
labels_of = ["most positive", "most negative"]
for row in range(len(prof.curvatures)):
    i = int(prof.direction_index[row])
    region = U.run_region(handle, curv, prof, row)
    x_t, x_s = U.x_in_plane(x[0], curv, i)  # x's orthogonal projection onto this plane
    fig = profile_figure(
        prof,
        row,
        region=region,
        class_names=names,
        x_offset=x_s,
        x_along=x_t,
        title=f"u{i + 1}, {labels_of[row]}: κ = {float(prof.curvatures[row]):.3g}"
        if len(prof.curvatures) > 1
        else f"The boundary curve around z: κ = {float(prof.curvatures[row]):.3g}",
    )
    pcols[row % 2].plotly_chart(fig, key=f"curv_profile_{row}")
st.plotly_chart(
    logit_profile_figure(prof, names=[f"u{int(i) + 1}" for i in prof.direction_index]), key="curv_logit_profile"
)

# -- random directions -----------------------------------------------------------------------------------------------

st.subheader("Curvature along random directions")
if is_toy:
    st.info(
        "A 2D model's boundary is a curve: its tangent space is one line, so every tangent direction has the same "
        f"curvature κ = {kappa[0]:.4g}. The distribution over random directions needs inputs of 3 or more "
        "dimensions (images)."
    )
else:
    st.plotly_chart(curvature_histogram(curv), key="curv_histogram")
    st.caption(U.flatness_caption(curv.random_curvatures[0].numpy(), kappa, spectrum=concentration(curv), k=curv.k))

# -- vulnerability ---------------------------------------------------------------------------------------------------

st.subheader("Curvature and vulnerability")
if is_toy:
    st.info(
        "With 2D inputs the tangent space is a single line, so there is no subspace of curved directions to "
        "compare with random ones; this view needs image inputs."
    )
elif st.toggle("Compute the vulnerability curve", value=True, key="curv_vulnerability"):
    with page.guard("The vulnerability curve could not be computed"):
        vul = U.run_vulnerability(handle, x, curv)
    st.plotly_chart(vulnerability_figure(vul), key="curv_vulnerability_figure")
    st.caption(
        "DeepFool restricted to the span of the m most curved principal directions (largest |κ|) against "
        "DeepFool restricted to random m-dimensional subspaces (3 draws per m): a smaller norm along the "
        "curved directions means the model is most vulnerable where its boundary is curved. Hollow markers: "
        "runs that did not reach another class within 100 steps (their norm so far)."
    )
