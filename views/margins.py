"""Frequency margins ("Hold me tight!"): how far the boundary is inside each band of DCT frequencies."""

from __future__ import annotations

import io

import numpy as np
import streamlit as st

from geometry.figures.images import image_grid_figure
from geometry.figures.margins import band_images_figure, frequency_margins_figure
from ui import comparison, page, samples
from ui import margins as U

sel = page.selection()
handle, data = sel.handle, sel.dataset
names = handle.class_names

st.title("Frequency margins")
st.caption(
    "The distance to the decision boundary *inside* a subspace tells how much the model relies on the features in it "
    '(Ortiz-Jiménez et al., "Hold me tight!", 2020): small margins along discriminative directions, large ones where '
    "the model is invariant. The subspaces are K×K blocks of the orthonormal 2D DCT slid along the diagonal from low "
    "to high frequency (the same block in every colour channel); each margin is subspace-constrained DeepFool's "
    "‖(1 + overshoot) r‖ in L2 [0, 1] pixels. Expected picture for natural images: small at low, large at high "
    "frequency."
)
if not samples.is_image_model(handle):
    st.info(
        f"Frequency bands need image inputs; **{handle.name}** takes inputs of shape {handle.input_shape}. "
        "Pick an image model in the sidebar."
    )
    st.stop()

# -- choices ---------------------------------------------------------------------------------------------------------

size = min(handle.input_shape[1:])
default_layout = U.bands_of(handle)
with st.expander("Options: band layout, baseline, comparison"):
    ocols = st.columns(4)
    block = int(
        ocols[0].number_input(
            "Block size K",
            min_value=1,
            max_value=max(1, size - 1),
            value=default_layout.block,
            step=1,
            key="fm_block",
            help="Each band is a K×K block of DCT frequencies (default by image size: "
            "28 px → 8, 32 px → 8, 224 px → 16 as in the paper; other sizes get "
            "10-25 equal steps from the lowest to the highest frequency).",
        )
    )
    stride = int(
        ocols[1].number_input(
            "Stride",
            min_value=1,
            max_value=size,
            value=default_layout.stride,
            step=1,
            key="fm_stride",
            help="Offset between consecutive blocks on the diagonal (none is skipped while it is at most K).",
        )
    )
    random = ocols[2].toggle(
        "Random-subspace baseline",
        value=True,
        key="fm_random",
        help="DeepFool in a random subspace of the same dimension, for comparison.",
    )
    kind = ocols[3].radio("Show as", ["box", "violin"], horizontal=True, key="fm_kind")
    others = comparison.compatible_models(handle)
    compare = st.selectbox(
        "Compare with",
        [comparison.NONE, *others],
        key="fm_compare",
        format_func=lambda n: "no second model" if n == comparison.NONE else n,
        help="A second built-in model with the same inputs, drawn beside this one.",
    )
with page.guard("Cannot use this band layout"):
    layout = U.bands_of(handle, block, stride)
total = len(layout)
cols = st.columns([3, 3, 2])
n_max = min(100, len(data))
n = samples.count_slider(
    cols[0],
    "Images",
    low=1,
    high=n_max,
    default=100,
    key="fm_n",
    help=f"A seeded random sample of {data.name} ({data.split}); 100 as in the paper (slow on a CPU).",
)
if n_max < 2:
    samples.too_few(cols[0], data, n, "the margins are computed")
count = samples.count_slider(
    cols[1],
    "Bands",
    low=1,
    high=total,
    default=5,
    key="fm_bands",
    help=f"{total} bands of {layout.block}×{layout.block} frequencies with stride {layout.stride}; "
    "this many, spread from low to high.",
)
bands = samples.spread(total, count)
cols[2].metric("Subspace dimension", layout.subspace_dim, help="K × K frequencies × channels")

x = samples.sample(data, n).images
with page.guard("Could not compute the frequency margins"):
    res = U.frequency_margins(handle, x, bands, block=block, stride=stride, random=random)
    results = {handle.name: res}
    if compare != comparison.NONE:
        results[compare] = U.frequency_margins(
            comparison.other_handle(compare), x, bands, block=block, stride=stride, random=random, label=f" ({compare})"
        )

# -- results ---------------------------------------------------------------------------------------------------------

med = res.band_median()
labels = res.band_labels()
not_conv = int((~res.converged).sum())
mcols = st.columns(4)
mcols[0].metric(f"Lowest band ({labels[0]})", f"{med[0]:.3g}", help="Median margin over the images.")
mcols[1].metric(f"Highest band ({labels[-1]})", f"{med[-1]:.3g}", help="Median margin over the images.")
if res.random_margins.shape[1]:
    mcols[2].metric(
        "Random subspace",
        f"{float(np.median(res.random_margins.numpy())):.3g}",
        help="Median margin in a random subspace of the same dimension.",
    )
mcols[3].metric(
    "Not converged",
    f"{not_conv} of {res.margins.numel()}",
    help="Runs that did not cross the boundary in 100 steps: drawn as red crosses at their accumulated "
    "norm, a lower bound on the margin.",
)
st.plotly_chart(frequency_margins_figure(results, kind=kind), key="fm_figure")
st.caption(
    f"{n} images × {len(bands)} bands (+ baselines), L2 margins in [0, 1] pixels on a log axis. 'random': a "
    f"random {res.subspace_dim}-dimensional subspace; 'full': unconstrained DeepFool."
)

st.subheader("The bands as images")
st.caption("A random image from each band's subspace (grey = 0): low frequencies are smooth, high ones checkered.")
st.plotly_chart(
    band_images_figure(handle.input_shape, res.band_starts.tolist(), res.block),
    key="fm_bands_fig",
    config={"displayModeBar": False},
)

st.subheader("Data manipulations on the picked images")
keep = samples.count_slider(
    st, "Low-pass keeps the top-left k×k frequencies", low=1, high=size, default=size // 2, key="fm_keep"
)
with page.guard(""):
    grid, pred = U.transforms_preview(handle, sel.images, keep)
captions = [[names[p] for p in row] for row in pred]
colors = [["#2ca02c" if p == row[0] else "#d62728" for p in row] for row in pred]
st.plotly_chart(
    image_grid_figure(
        grid,
        row_titles=[sel.caption(i) for i in range(len(pred))],
        col_titles=["original", "dct_flip", f"low-pass {keep}×{keep}"],
        captions=captions,
        caption_colors=colors,
        tile=80,
    ),
    key="fm_preview",
    config={"displayModeBar": False},
)
st.caption(
    "`dct_flip(x) = IDCT(flip(DCT(x)))` swaps low and high frequencies (a model trained on flipped data shows "
    "the reversed margin profile); low-pass keeps the top-left DCT block. Under each image: the model's "
    "prediction (red: it changed). Images are clipped to [0, 1] for display and prediction."
)

buf = io.StringIO()
buf.write("image," + ",".join(f"band_{b}" for b in labels) + ",converged_all,random,full\n")
for i in range(len(res)):
    rnd = f"{float(res.random_margins[i, 0]):.6g}" if res.random_margins.shape[1] else ""
    buf.write(
        f"{i}," + ",".join(f"{float(v):.6g}" for v in res.margins[i]) + f",{bool(res.converged[i].all())},"
        f"{rnd},{float(res.full_margins[i]):.6g}\n"
    )
st.download_button(
    "Download the margins (CSV)",
    buf.getvalue(),
    file_name=f"frequency-margins-{handle.name}.csv",
    mime="text/csv",
    key="fm_download",
)
