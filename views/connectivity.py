"""Connectivity: is there a path between two inputs of one class that never leaves the class?"""

from __future__ import annotations

import streamlit as st

from geometry.figures.connectivity import connectivity_figure, path_figure
from ui import connectivity as U
from ui import page, samples

sel = page.selection()
handle, data = sel.handle, sel.dataset
names = handle.class_names
is_image = data.images.dim() == 4

st.title("Connectivity")
st.caption(
    "Deep networks learn *connected* class regions (Fawzi et al., 2017): two inputs of one class can be joined by a "
    "path that stays in the class. The path finder checks the straight segment on a fine grid; where it leaves the "
    "class, the midpoint is pushed back into the class (DeepFool targeted at it, with an overshoot) and both halves "
    "are searched again, up to a depth and an anchor budget."
)

with st.expander("Options: grid, depth, anchors"):
    ocols = st.columns(4)
    resolution = int(
        ocols[0].select_slider("Grid points per segment", [7, 15, 31, 63, 127], value=31, key="conn_resolution")
    )
    max_depth = int(ocols[1].slider("Bisection levels", 0, 10, 6, key="conn_depth"))
    max_anchors = int(ocols[2].slider("Anchor budget", 0, 128, 32, key="conn_anchors"))
    overshoot = float(
        ocols[3].slider(
            "Push overshoot",
            0.0,
            3.0,
            1.0,
            0.1,
            key="conn_overshoot",
            help="How far past the boundary a pushed midpoint lands, relative to the push.",
        )
    )
options = {"resolution": resolution, "max_depth": max_depth, "max_anchors": max_anchors, "overshoot": overshoot}

# -- one path --------------------------------------------------------------------------------------------------------

st.subheader("A path between two inputs")
with page.guard(""):
    first_pred = int(handle.predict(sel.images[:1])[0])
classes = list(range(handle.num_classes))
if st.session_state.get("conn_class") not in classes:
    st.session_state["conn_class"] = first_pred
cols = st.columns([2, 3, 3])
c = cols[0].selectbox(
    "Class",
    classes,
    format_func=lambda k: names[k],
    key="conn_class",
    help="Inputs labelled and predicted as this class.",
)
members = U.class_members(handle, data, c)
if len(members) < 2:
    st.info(f"Fewer than two inputs of {data.name} are labelled and predicted as {names[c]!r}; choose another class.")
else:
    for key, default in (("conn_a", members[0]), ("conn_b", members[-1])):
        if st.session_state.get(key) not in members:
            st.session_state[key] = default
    a = cols[1].selectbox("From", members, key="conn_a", format_func=lambda i: f"#{i}")
    b = cols[2].selectbox("To", members, key="conn_b", format_func=lambda i: f"#{i}")
    if a == b:
        st.info("Pick two different inputs.")
    else:
        res = None
        with page.guard("Could not search the path", keep_going=True):
            res = U.path(handle, data.images[a], data.images[b], **options)
        if res is not None:
            mcols = st.columns(4)
            mcols[0].metric("Inside the class all along", "yes" if bool(res.success[0]) else "no")
            mcols[1].metric("Anchors", int(res.num_anchors[0]), help="0: the straight segment stays in the class.")
            mcols[2].metric(
                "Max deviation",
                f"{float(res.max_deviation[0]):.1%}",
                help="Largest distance of an anchor from the straight segment, relative to ‖x1 − x2‖.",
            )
            ratio = float(res.path_length[0]) / max(float(res.distance[0]), 1e-12)
            mcols[3].metric("Path length / ‖x1 − x2‖", f"{ratio:.3f}")
            if not bool(res.success[0]):
                st.warning(f"No path found within the budget: {res.reason[0]}.")
            if not is_image:
                st.markdown(
                    "Path: " + " → ".join(f"({', '.join(f'{v:.2f}' for v in q.tolist())})" for q in res.vertices(0))
                )
            st.plotly_chart(path_figure(res, 0, names), key="conn_path", config={"displayModeBar": False})
            st.caption(
                f"{res.evaluations:,} model evaluations for the grid checks. Green class names: inside "
                f"{names[c]!r}; the band below shows the class at {res.path_class.shape[1]} points along the "
                "path."
            )

# -- many pairs ------------------------------------------------------------------------------------------------------

st.subheader("Random same-class pairs")
cols = st.columns([3, 2])
pool_n = min(len(data), 200)
pairs = cols[0].slider(
    "Pairs",
    1,
    100,
    10,
    key="conn_pairs",
    help=f"Random pairs of correctly classified inputs of one class, from {pool_n} inputs of {data.name}.",
)
seed = int(cols[1].number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="conn_seed"))
pool = samples.sample(data, pool_n, seed)
if not U.has_same_class_pair(handle, pool):
    st.info(
        f"No two of the {len(pool)} input{'s' if len(pool) != 1 else ''} of {data.name} are "
        f"{'labelled and ' if bool((pool.labels >= 0).all()) else ''}predicted as the same class, so no pair "
        "can be joined: upload or pick more inputs."
    )
    st.stop()
with page.guard("Could not join the pairs"):
    batch = U.connectivity(handle, pool, num_pairs=pairs, seed=seed, **options)
bcols = st.columns(4)
bcols[0].metric("Success rate", f"{batch.success_rate:.0%}", help="Pairs joined by a path inside their class.")
bcols[1].metric(
    "Straight segment enough",
    f"{batch.straight_rate:.0%}",
    help="Pairs joined by the straight segment alone (0 anchors, inside the class all along).",
)
bcols[2].metric("Mean anchors", f"{float(batch.num_anchors.float().mean()):.2f}")
bcols[3].metric("Max deviation", f"{float(batch.max_deviation.max()):.1%}")
st.plotly_chart(connectivity_figure(batch), key="conn_batch")
rows = [
    {
        "pair": p,
        "class": names[int(batch.cls[p])],
        "joined": bool(batch.success[p]),
        "anchors": int(batch.num_anchors[p]),
        "deviation": float(batch.max_deviation[p]),
        "distance": float(batch.distance[p]),
        "note": batch.reason[p],
    }
    for p in range(len(batch))
]
st.dataframe(rows, hide_index=True, key="conn_table")
if len(batch):
    p = st.selectbox(
        "Show the path of pair",
        list(range(len(batch))),
        key="conn_show",
        format_func=lambda q: f"{q}: {names[int(batch.cls[q])]}, {int(batch.num_anchors[q])} anchors",
    )
    st.plotly_chart(path_figure(batch, p, names), key="conn_batch_path", config={"displayModeBar": False})
