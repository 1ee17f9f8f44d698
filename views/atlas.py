"""Atlas: every image of the data set measured at once (margin, curvature, frequency margins, detection), browsed as a
scatter, a robustness curve, histograms and a sortable table; images go on to Slices and Curvature from here."""

from __future__ import annotations

import numpy as np
import streamlit as st

from geometry.atlas import ANALYSES, AtlasOptions, compare_atlases, robustness_curve
from geometry.atlas.curves import eps_grid
from geometry.figures import image_to_uint8
from geometry.figures.atlas import atlas_histogram, atlas_scatter, column_label, margin_change_figure, robustness_figure
from ui import atlas as U
from ui import page, state
from ui.features import selected_indices
from ui.hover_images import hover_images, sprite_sheet

sel = page.selection()
handle, data = sel.handle, sel.dataset
class_names = list(data.class_names)
is_image = data.images.dim() == 4

st.title("Atlas")
st.caption(
    "Every image of the data set measured in one batch: its margin (DeepFool's distance to the boundary, L2 in [0, 1] "
    "pixels), the principal curvatures of the boundary there (κ > 0: the image's own region bends around it), its "
    "margins inside DCT frequency bands and the detector's curvature statistic. The same job runs from the command "
    "line, on one machine or a Ray cluster: `python -m geometry atlas --model M --data D --engine ray`; both fill the "
    "same cache, so an atlas computed there opens here at once."
)

# -- choices ---------------------------------------------------------------------------------------------------------

cols = st.columns([3, 1.3, 1.2, 2])
analyses = cols[0].multiselect(
    "Analyses",
    list(ANALYSES),
    default=["margin", "curvature"],
    key="atlas_analyses",
    help="; ".join(f"**{k}**: {v}" for k, v in ANALYSES.items()),
)
limit = int(
    cols[1].number_input(
        "Images",
        min_value=1,
        max_value=len(data),
        value=min(len(data), 450),
        step=50,
        key="atlas_limit",
        help=f"The first N images of {data.name} ({data.split}, {len(data):,} images).",
    )
)
engine = cols[2].radio(
    "Engine",
    ["local", "ray"],
    key="atlas_engine",
    horizontal=True,
    help="local: in this process. ray: shards as Ray tasks on a local cluster of this machine's CPUs.",
)
others = ["none", *state.comparable_models(handle)]
second = cols[3].selectbox(
    "Second model", others, key="atlas_model2", help="Its robustness curve on the same plot, and image-by-image."
)
if not analyses:
    st.info("Pick at least one analysis.")
    st.stop()
with page.guard("Could not set up the atlas"):
    options = AtlasOptions(analyses=tuple(analyses))

done, total = U.status(handle, data, options, limit)
df = U.load(handle, data, options, limit) if done == total else None
if df is None:
    slot = st.empty()  # what to do, until the atlas is there
    with slot.container():
        st.caption(f"{done} of {total} shards of this atlas are in the cache.")
        clicked = st.button("Compute the atlas", key="atlas_run", icon=":material/play_arrow:", type="primary")
    if clicked or st.session_state.get("atlas_resume"):  # the button, or "Compute" after a Stop
        with page.guard("Could not compute the atlas", resume_key="atlas_resume"):
            df = U.run(handle, data, options, limit, engine=engine)
        slot.empty()
if df is None:
    st.stop()

df2 = None
if second != "none":
    handle2 = state.builtin_handle(second, state.current_device())
    df2 = U.load(handle2, data, AtlasOptions(analyses=("margin",)), limit)
    if df2 is None and st.button(f"Compute the margins of {second}", key="atlas_run2"):
        with page.guard(f"Could not compute the atlas of {second}", keep_going=True):
            df2 = U.run(handle2, data, AtlasOptions(analyses=("margin",)), limit, engine=engine, label=" (second)")

# -- summary ---------------------------------------------------------------------------------------------------------

m = st.columns(4)
m[0].metric("Images", f"{len(df):,}")
m[1].metric("Accuracy", f"{df['correct'].mean():.1%}")
if "margin" in df.columns:
    m[2].metric("Median margin", f"{np.nanmedian(df['margin']):.3f}", help="DeepFool boundary distance, L2 pixels.")
    m[3].metric("DeepFool converged", f"{U.finite_share(df['margin']):.1%}")

# -- scatter of every image ------------------------------------------------------------------------------------------

numeric = U.numeric_columns(df)
default_y = "curvature_max_abs" if "curvature_max_abs" in numeric else "logit_margin"
default_x = "margin" if "margin" in numeric else numeric[0]
c = st.columns([2, 2, 2, 1])
x_col = c[0].selectbox("x", numeric, index=numeric.index(default_x), key="atlas_x", format_func=column_label)
y_col = c[1].selectbox("y", numeric, index=numeric.index(default_y), key="atlas_y", format_func=column_label)
color_by = c[2].radio(
    "Colour",
    ["class", "correct"],
    key="atlas_color",
    horizontal=True,
    format_func=lambda v: "by true class" if v == "class" else "correct / wrong",
)
log_y = c[3].toggle("log y", key="atlas_logy", value=False)
fig = atlas_scatter(df, x_col, y_col, class_names=class_names, color_by=color_by, log_y=log_y)


@st.fragment
def scatter_and_selection() -> None:
    """The scatter, the table and what is selected on either: a click reruns this part alone."""
    event = st.plotly_chart(fig, key="atlas_scatter", on_select="rerun", selection_mode=("points", "box", "lasso"))
    if is_image:
        hover_images(
            "atlas_scatter", sprite_sheet(data.images, indices=df["index"].to_numpy().copy()), df["index"].tolist()
        )
    st.caption("Hover over a point to see its image; click, box or lasso points to select them.")

    st.subheader("Table")
    sort_by = st.selectbox(
        "Sort by", numeric, index=numeric.index(default_x), key="atlas_sort", format_func=column_label
    )
    shown = df.sort_values(sort_by, na_position="last").head(U.TABLE_ROWS).reset_index(drop=True)
    table = shown.drop(columns=[c for c in df.columns if df[c].dtype == "string"])
    if is_image:
        table.insert(0, "image", U.thumbnails(data, data.fingerprint, tuple(int(i) for i in shown["index"])))
    table_event = st.dataframe(
        table,
        key="atlas_table",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        height=320,
        column_config={"image": st.column_config.ImageColumn("image", width="small")},
    )
    st.caption(f"The first {len(shown):,} images by {sort_by} (click a header to sort, select rows to pick them).")

    picked = selected_indices(event, fig) + U.selected_rows(table_event, shown)
    picked = list(dict.fromkeys(i for i in picked if 0 <= i < len(data)))
    if not picked:
        st.caption("No images selected yet.")
        return
    st.subheader(f"Selected images ({len(picked)})")
    per_row = 8
    by_index = df.set_index("index")
    for start in range(0, min(len(picked), 16), per_row):
        row = st.columns(per_row)
        for col, i in zip(row, picked[start : start + per_row], strict=False):
            with col:
                r = by_index.loc[i]
                caption = f"{state.image_label(data, i)} → {class_names[int(r['prediction'])]}"
                if "margin" in df.columns:
                    caption += f" · margin {r['margin']:.3f}"
                if is_image:
                    st.image(image_to_uint8(data.images[i], min_size=96), caption=caption, width=96)
                else:
                    st.markdown(caption)
    if len(picked) > 16:
        st.caption(f"… and {len(picked) - 16} more.")
    first = picked[0]
    b = st.columns(3)
    b[0].button(
        f"Pick {'these' if len(picked) > 1 else 'this'} in the sidebar",
        key="atlas_pick",
        on_click=U.pick_images,
        args=(data, picked),
        help="They become the picked images every page works on.",
    )
    if b[1].button(f"Open #{first} in Slices", key="atlas_open_slices", on_click=U.prepare_slices, args=(data, first)):
        st.switch_page(U.SLICES_PAGE)
    if b[2].button(
        f"Open #{first} in Curvature", key="atlas_open_curvature", on_click=U.prepare_curvature, args=(data, first)
    ):
        st.switch_page(U.CURVATURE_PAGE)


scatter_and_selection()

# -- robustness curve, histograms, comparison -------------------------------------------------------------------------

if "margin" in df.columns:
    st.subheader("Robustness")
    margins = np.concatenate([df["margin"].to_numpy(float), df2["margin"].to_numpy(float) if df2 is not None else []])
    eps = eps_grid(margins)
    curves = {handle.name: robustness_curve(df, eps)}
    if df2 is not None:
        curves[second] = robustness_curve(df2, eps)
    st.plotly_chart(robustness_figure(curves, class_names), key="atlas_robustness")
    st.caption(
        "R(eps): the share of images correctly classified whose DeepFool margin exceeds eps. DeepFool's distance is an "
        "upper bound of the smallest one, so R(eps) is an upper bound of the accuracy under L2 attacks of size eps."
    )

st.subheader("Per class")
hist_col = st.selectbox("Column", numeric, index=numeric.index(default_x), key="atlas_hist", format_func=column_label)
st.plotly_chart(atlas_histogram(df, hist_col, class_names), key="atlas_histogram")

if df2 is not None:
    st.subheader(f"{handle.name} vs {second}, image by image")
    joined = compare_atlases(df, df2)
    st.plotly_chart(margin_change_figure(joined, (handle.name, second), class_names), key="atlas_compare")
    closer = joined.sort_values("margin_change").head(12)
    st.caption(f"Images that came closest to the boundary with {second}:")
    st.dataframe(closer, hide_index=True)

st.download_button(
    "Download the atlas (Parquet)",
    data=df.to_parquet(index=False),
    file_name=f"atlas-{handle.name}-{data.name}-{data.split}.parquet",
    key="atlas_download",
)
