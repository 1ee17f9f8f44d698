"""Home: the model card, the picked images with their predictions, and the list of views."""

from __future__ import annotations

import streamlit as st

from geometry.figures import image_to_uint8, probability_bars, toy_scatter
from ui import page
from ui.views import by_section

sel = page.selection()
handle = sel.handle
card = handle.card

st.title("Boundary Atlas")
st.markdown(
    "See how an image classifier carves up its input: decision regions on planes through input space, "
    "the curvature of the boundary near each image, and the regions the last layer draws in feature space."
)

st.subheader(f"Model: {handle.name}")
summary = handle.describe()
cols = st.columns(4)
cols[0].metric("Classes", summary["classes"])
cols[1].metric("Parameters", f"{summary['parameters']:,}")
cols[2].metric("Input", summary["input shape"])
cols[3].metric("Test accuracy", f"{card['test_accuracy']:.1%}" if "test_accuracy" in card else "—")
if card:
    smooth = "smooth (curvature is exact)" if card.get("smooth") else "piecewise linear (ReLU / max-pooling)"
    st.caption(
        " ".join(
            part
            for part in (
                card.get("description", ""),
                f"Architecture `{card.get('architecture', '?')}`, activation `{card.get('activation', '?')}`:",
                f"{smooth}.",
                f"Trained on `{card['dataset']}`" if "dataset" in card else "",
                f"({card['train_size']:,} images, seed {card.get('seed', '?')})" if "train_size" in card else "",
                f"by `{card['training_command']}`." if "training_command" in card else "",
            )
            if part
        )
    )
    with st.expander("Model card (json)"):
        st.json(card)
else:
    st.caption(f"Your model on {summary['device']}; fingerprint `{summary['fingerprint'][:12]}`.")

st.subheader("Picked inputs and their predictions")
with page.guard(""):  # bad shapes or a model that returns NaN: the library's message says it all
    probs = handle.probabilities(sel.images)

if len(handle.input_shape) == 1:  # a 2D toy set: the input *is* a point of the plane
    data = sel.dataset
    st.plotly_chart(
        toy_scatter(data.images.numpy(), data.labels.numpy(), data.class_names, highlight=list(sel.indices)),
        key="toy_scatter",
    )

per_row = 3
for start in range(0, len(sel.indices), per_row):
    cols = st.columns(per_row)
    for offset, col in enumerate(cols):
        pos = start + offset
        if pos >= len(sel.indices):
            break
        p = probs[pos].numpy()
        pred = int(p.argmax())
        truth = int(sel.labels[pos])
        with col, st.container(border=True):
            if sel.images.dim() == 4:
                st.image(image_to_uint8(sel.images[pos], min_size=160), caption=sel.caption(pos))
            else:
                st.markdown(f"**{sel.caption(pos)}** at ({', '.join(f'{v:.2f}' for v in sel.images[pos].tolist())})")
            verdict = ""
            if truth >= 0:
                verdict = (
                    ":green[:material/check_circle: correct]" if pred == truth else ":red[:material/cancel: wrong]"
                )  # noqa: E501
            st.markdown(f"Predicted **{handle.class_names[pred]}** ({p[pred]:.1%}) {verdict}")
            st.plotly_chart(
                probability_bars(p, handle.class_names, k=min(5, handle.num_classes)),
                key=f"probs-{sel.indices[pos]}",
                config={"displayModeBar": False},
            )

st.subheader("Views")
st.caption(
    "Start with **Slices** (the boundary around the first picked image) or **Curvature**; each view reads the "
    "model and images picked in the sidebar."
)
for section, views in by_section().items():
    st.markdown(f"**{section}**")
    for view in views:
        if view.script == "views/home.py":
            continue
        left, right = st.columns([1.3, 5], vertical_alignment="center")
        left.page_link(view.script, label=view.title, icon=view.icon)
        right.markdown(view.line)
