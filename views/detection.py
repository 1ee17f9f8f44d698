"""Adversarial detection: spot small perturbations by the curvature of the boundary around an input, and recover the
original label."""

from __future__ import annotations

import math

import streamlit as st

from geometry.figures import image_to_uint8
from geometry.figures.detection import detection_scores_figure, rho_figure, roc_figure
from ui import detection as U
from ui import page, samples

sel = page.selection()
handle, data = sel.handle, sel.dataset
names = handle.class_names
is_image = data.images.dim() == 4

st.title("Adversarial detection")
st.caption(
    "The boundary curves differently around clean inputs and around inputs pushed just across it (Fawzi et al., "
    "2018). For an input predicted as j and each other class i, ρᵢ = mean over M random unit directions v of "
    "[Fᵢ(x + hv) + Fᵢ(x − hv) − 2Fᵢ(x)] / h², with Fᵢ = fᵢ − fⱼ. Clean inputs sit in locally convex regions (every "
    "ρᵢ > 0); a perturbed input sees its original class's region curve around it (ρ strongly negative there). "
    "Score = maxᵢ(−ρᵢ): flagged as perturbed above a threshold set on clean inputs for a false-positive rate; the "
    "recovered label is argminᵢ ρᵢ."
)

ref = U.clean_reference(handle, data)
cols = st.columns(4)
m = cols[1].select_slider("Random directions M", [4, 8, 16, 32, 64, 128], value=32, key="det_m")
h = cols[2].select_slider(
    "Step h",
    [0.05, 0.1, 0.25, 0.5, 1.0, 2.0],
    value=0.5,
    key="det_h",
    help="Finite-difference step in L2 input units. Smooth models barely depend on it; ReLU "
    "models need a step that spans several linear pieces.",
)
fpr = cols[3].select_slider(
    "Target false-positive rate",
    [0.01, 0.02, 0.05, 0.1, 0.2],
    value=0.05,
    key="det_fpr",
    format_func=lambda v: f"{v:.0%}",
)
seed = int(st.session_state.get("det_seed", 0))

res = None
if ref is None:
    st.warning(
        f"No clean data set with {handle.name}'s inputs ({'×'.join(map(str, handle.input_shape))}) is available, so "
        "no threshold can be set and no verdict given: the threshold must come from clean images of the model's own "
        "data set, not from the images under test. Below: the score of each upload, without a verdict."
    )
else:
    if ref is not data:
        st.info(
            f"The threshold is set on clean images of **{ref.name}** ({ref.split}), the data set of {handle.name}, "
            f"not on your {len(data)} upload{'s' if len(data) != 1 else ''}; the verdict below applies it to them."
        )
    n_max = min(200, len(ref))
    n = samples.count_slider(
        cols[0],
        "Clean inputs",
        low=2,
        high=n_max,
        default=20,
        key="det_n",
        help=f"A seeded random sample of {ref.name}, split in two (seeded): the threshold is set on half of them; "
        "the other half and their DeepFool perturbations give every number below (held out).",
    )
    if n_max <= 2:
        samples.too_few(cols[0], ref, n, "the threshold and the ROC are computed")
    x = samples.sample(ref, n).images
    with page.guard("Could not run the detection"):
        res = U.detection(handle, x, fpr=fpr, num_directions=int(m), h=float(h), seed=seed)

if res is not None:
    ok = res.n_perturbed
    held = f"{res.n_held_out} held-out clean input{'s' if res.n_held_out != 1 else ''}"
    mcols = st.columns(5)
    mcols[0].metric(
        "AUC",
        f"{res.auc:.3f}" if math.isfinite(res.auc) else "—",
        help=f"Area under the ROC curve on the {held} and their {ok} perturbations: 0.5 = chance, 1 = perfect "
        "separation, below 0.5 = perturbed inputs score lower than clean ones.",
    )
    mcols[1].metric(
        "Detected",
        f"{res.tpr_at_threshold:.0%}" if math.isfinite(res.tpr_at_threshold) else "—",
        help=f"Share of the {ok} perturbed held-out inputs whose score exceeds the threshold (true-positive rate).",
    )
    mcols[2].metric(
        "False alarms",
        f"{res.fpr_at_threshold:.0%}",
        help=f"Share of the {held} flagged at the threshold (the false-positive rate). On the "
        f"{res.n_calibration} calibration inputs the threshold was set on it is {res.calibration_fpr:.0%}, at most "
        f"the target {res.target_fpr:.0%} by construction, so that one says nothing.",
    )
    mcols[3].metric(
        "Recovered",
        f"{res.recovery_accuracy:.0%}" if math.isfinite(res.recovery_accuracy) else "—",
        help="Share of perturbed held-out inputs whose argmin ρ is the clean input's class.",
    )
    mcols[4].metric(
        "Perturbations",
        f"{ok} of {res.n_held_out}",
        help=f"DeepFool perturbations of the held-out inputs that flipped the prediction; median ‖r‖ "
        f"{float(res.attack_norm[res.attack_converged].median()) if ok else float('nan'):.3g}.",
    )
    reading = res.reading(handle.name)
    if res.worse_than_chance:
        st.warning(reading, icon=":material/report:")
    else:
        st.markdown(reading)
    st.caption(
        f"Threshold {res.threshold:.3g} set on {res.n_calibration} calibration inputs for a {res.target_fpr:.0%} "
        f"false-positive rate; every number above is measured on the other {held} and their {ok} successful "
        "DeepFool perturbations."
    )
    fcols = st.columns(2)
    fcols[0].plotly_chart(roc_figure(res), key="det_roc")
    fcols[1].plotly_chart(detection_scores_figure(res), key="det_scores")

# -- one input -------------------------------------------------------------------------------------------------------

st.subheader("Verdict for one input")
positions = list(range(len(sel.indices)))
if st.session_state.get("det_image") not in positions:
    st.session_state["det_image"] = 0
vcols = st.columns([2, 2, 3])
pos = vcols[0].selectbox(
    "Input (from the sidebar's picks or uploads)", positions, format_func=sel.caption, key="det_image"
)
variant = vcols[1].radio(
    "Check",
    ["as it is", "DeepFool-perturbed"],
    key="det_variant",
    help="The perturbed version is the input pushed just across its nearest boundary.",
)
xi = sel.images[pos : pos + 1]
note = ""
with page.guard("Could not check this input"):
    if variant == "DeepFool-perturbed":
        xi, flipped, norm = U.perturbed(handle, xi)
        note = f"perturbation ‖r‖ = {norm:.3g}" + ("" if flipped else " (DeepFool did not flip the prediction)")
    threshold = res.threshold if res is not None else math.inf
    v = U.verdict(handle, xi, threshold, num_directions=int(m), h=float(h), seed=seed)
flagged = bool(v.flagged[0])
pred, rec = int(v.predicted[0]), int(v.recovered[0])
score = float(v.score[0])
with vcols[2]:
    if res is None:
        st.markdown(
            f"**No verdict** (no threshold) — score {score:.3g}. Predicted **{names[pred]}**; the label the "
            f"detector would restore if it were perturbed: **{names[rec]}**."
        )
    elif flagged:
        st.markdown(
            f":red[:material/warning: **Looks perturbed**] — score {score:.3g} > threshold "
            f"{threshold:.3g}. Predicted **{names[pred]}**; recovered label **{names[rec]}**."
        )
    else:
        st.markdown(
            f":green[:material/verified: **Looks clean**] — score {score:.3g} ≤ threshold "
            f"{threshold:.3g}. Predicted **{names[pred]}**."
        )
    if note:
        st.caption(note)
icols = st.columns([1, 3])
if is_image:
    icols[0].image(image_to_uint8(xi[0], min_size=128), caption=f"{sel.caption(pos)} ({variant})")
else:
    icols[0].markdown(f"**{sel.caption(pos)}** at ({', '.join(f'{t:.3f}' for t in xi[0].tolist())})")
icols[1].plotly_chart(
    rho_figure(v.rho[0], names, predicted=pred, recovered=rec, threshold=res.threshold if res is not None else None),
    key="det_rho",
    config={"displayModeBar": False},
)
