"""Report: every inspection of this page group in one self-contained HTML file, for before a model is deployed."""

from __future__ import annotations

import streamlit as st

from geometry.report import SECTION_TITLES, Thresholds
from ui import margins as margins_ui
from ui import page, samples
from ui import report as R
from ui.vocabulary import distance_unit

sel = page.selection()
handle, data = sel.handle, sel.dataset
REPORT_KEY = "report_result"

st.title("Report")
st.caption(
    "One HTML file about this model on this data set: model card, accuracy, DeepFool margin distribution, "
    "frequency-margin profile, curvature summary, connectivity rate, detection ROC and robustness curves, each with a "
    "one-line reading. plotly.js is embedded, so it opens offline in any browser. Analyses already computed on the "
    "other pages (same images) come from the cache."
)

cols = st.columns([3, 3, 2])
n = cols[0].slider(
    "Images per analysis",
    10,
    100,
    20,
    10,
    key="rep_n",
    help="DeepFool and frequency margins, detection and robustness each use this many images "
    "(the curvature summary at most 10; connectivity draws pairs from twice as many).",
)
if samples.is_image_model(handle):
    total = len(margins_ui.bands_of(handle))
    if not 1 <= st.session_state.get("rep_bands", total) <= total:
        st.session_state["rep_bands"] = total
    bands = (
        cols[1].slider(
            "Frequency bands",
            1,
            total,
            total,
            key="rep_bands",
            help="Bands spread from low to high frequency (all by default).",
        )
        if total > 1
        else 1
    )
else:
    bands = None
with st.expander("Go / no-go thresholds"):
    st.caption(
        "The report opens with a go / no-go summary: each number against its threshold, go only if all pass. "
        f"Margins are L2 distances in {distance_unit(handle)}; 0 lets a check always pass."
    )
    default = Thresholds()
    tcols = st.columns(5)
    thresholds = Thresholds(
        accuracy=tcols[0].number_input("Accuracy ≥", 0.0, 1.0, default.accuracy, 0.01, key="rep_t_acc"),
        median_margin=tcols[1].number_input(
            "Median margin ≥", 0.0, 100.0, default.median_margin, 0.05, key="rep_t_med"
        ),
        low_margin=tcols[2].number_input(
            "10th-percentile margin ≥", 0.0, 100.0, default.low_margin, 0.05, key="rep_t_low"
        ),
        sweep_accuracy=tcols[3].number_input(
            "Accuracy under each sweep ≥",
            0.0,
            1.0,
            default.sweep_accuracy,
            0.05,
            key="rep_t_sweep",
            help="At half size, rotated by 40°, at half resolution, shifted by 30% in x and y.",
        ),
        detection_auc=tcols[4].number_input(
            "Detection AUC ≥", 0.0, 1.0, default.detection_auc, 0.05, key="rep_t_auc", help="Held-out ROC AUC."
        ),
    )
config = R.report_config(n, bands, thresholds)
key = R.report_key(handle, data, config)
cols[2].markdown("&nbsp;")
too_small = len(data) < 2
go = cols[2].button("Generate report", type="primary", key="rep_go", icon=":material/description:", disabled=too_small)
if too_small:
    st.info(
        f"Only {len(data)} input in {data.name}: the report needs at least 2 (connectivity pairs them, the "
        "detection sets a threshold on them). Upload or pick more inputs."
    )
st.caption(
    f"From the command line: `python -m geometry report --model {handle.name} --dataset {data.name} "
    f"--split {data.split} --n {n}{f' --bands {bands}' if bands else ''}{R.threshold_flags(thresholds)} "
    "--out report.html`"
)

if go:
    with page.guard("Could not build the report"):
        rep, text = R.generate_report(handle, data, config)
    st.session_state[REPORT_KEY] = {
        "key": key,
        "html": text,
        "seconds": rep.seconds,
        "sections": [(s.key, s.title, s.summary, s.applicable, list(s.caveats)) for s in rep.sections],
        "verdict": None
        if rep.verdict is None
        else (rep.verdict.go, rep.verdict.summary, rep.verdict.lines, rep.verdict.thresholds.text()),
    }

stored = st.session_state.get(REPORT_KEY)
if stored is None or stored["key"] != key:
    st.info(
        "Press **Generate report** to run every analysis on "
        f"{handle.name} and {data.name} ({data.split}) and download the result."
    )
    st.markdown("The report's sections: " + ", ".join(SECTION_TITLES.values()) + ".")
    st.stop()

st.success(
    f"Report ready: {len(stored['sections'])} sections, built in {stored['seconds']:.1f} s, "
    f"{len(stored['html']) / 2**20:.1f} MiB (plotly.js included)."
)
st.download_button(
    "Download the report (HTML)",
    stored["html"],
    file_name=f"boundary-atlas-{handle.name}.html",
    mime="text/html",
    key="rep_download",
    icon=":material/download:",
    type="primary",
)
if stored["verdict"] is not None:
    go, verdict, lines, thresholds_text = stored["verdict"]
    (st.success if go else st.warning)(f"**{verdict}**", icon=":material/check_circle:" if go else ":material/block:")
    st.markdown("\n".join(f"- {line}" for line in lines))
    st.caption(f"Thresholds: {thresholds_text}. A number that could not be measured fails.")
for _key, title, summary, applicable, caveats in stored["sections"]:
    with st.container(border=True):
        st.markdown(f"**{title}**" + ("" if applicable else " · not applicable"))
        st.markdown(summary)
        for caveat in caveats:
            st.warning(f"Caveat: {caveat}", icon=":material/info:")
