"""The app's views, in menu order and grouped into the menu's sections: script, title, icon and one line each.

The one registry of views: app.py registers a page for each (`navigation`), Home links to each with its line.
"""

from __future__ import annotations

from typing import NamedTuple


class View(NamedTuple):
    script: str  # path relative to app.py; tests switch pages by it (``at.switch_page("views/slices.py")``)
    title: str
    icon: str
    line: str
    section: str  # the menu's heading above it: one of SECTIONS


SECTIONS = ("Explore", "Inspect", "Train")  # in menu order


VIEWS: list[View] = [
    View(
        "views/home.py",
        "Home",
        ":material/home:",
        "the model card, the picked images and the model's top-k predictions for each.",
        "Explore",
    ),
    View(
        "views/slices.py",
        "Slices",
        ":material/view_in_ar:",
        "the decision regions on 2D planes through input space around an image (boundary normal, random, three "
        "images, DCT, curvature directions), adaptive and cached, with region statistics and a second model.",
        "Explore",
    ),
    View(
        "views/curvature.py",
        "Curvature",
        ":material/line_curve:",
        "DeepFool's boundary point for an image and the boundary's curvature there: principal curvatures and "
        "directions, cross-sections with osculating parabolas, random directions, and curvature vs vulnerability.",
        "Explore",
    ),
    View(
        "views/features.py",
        "Feature space",
        ":material/scatter_plot:",
        "samples embedded from the last hidden layer (PCA, UMAP, t-SNE) with the model's regions painted behind "
        "them, exact region maps on feature planes beside pixel-space slices, convex-hull tests, morphing.",
        "Explore",
    ),
    View(
        "views/margins.py",
        "Frequency margins",
        ":material/equalizer:",
        'distance to the boundary inside bands of DCT frequencies ("Hold me tight!") against a random subspace, '
        "the bands as images, dct_flip and low-pass previews, two models on one plot.",
        "Inspect",
    ),
    View(
        "views/connectivity.py",
        "Connectivity",
        ":material/route:",
        "a path between two inputs of one class that never leaves the class, and the success rate over random "
        "same-class pairs.",
        "Inspect",
    ),
    View(
        "views/detection.py",
        "Adversarial detection",
        ":material/gpp_maybe:",
        "the curvature statistic around an input: ROC and AUC on clean vs DeepFool-perturbed inputs, label "
        "recovery, and a verdict for one input.",
        "Inspect",
    ),
    View(
        "views/robustness.py",
        "Robustness",
        ":material/rotate_90_degrees_ccw:",
        "predictions and margins as objects shrink, move, rotate or the resolution changes: your own images, and "
        "generated shapes for shapes models (SI-Score style).",
        "Inspect",
    ),
    View(
        "views/atlas.py",
        "Atlas",
        ":material/grid_view:",
        "every image of the data set in one table (margin, curvature, frequency margins, detection), computed in "
        "batch here or on a Ray cluster: a scatter of all images, the robustness curve R(eps), two models compared.",
        "Inspect",
    ),
    View(
        "views/report.py",
        "Report",
        ":material/summarize:",
        "all of the above in one self-contained HTML file to download (also `python -m geometry report`).",
        "Inspect",
    ),
    View(
        "views/train.py",
        "Train",
        ":material/model_training:",
        "a small model trained with and without activated gradients (Liu et al.), its training curves, and the "
        "boundaries both draw: regions, distances to the boundary, curvature.",
        "Train",
    ),
    View(
        "views/playground.py",
        "Playground",
        ":material/school:",
        "a network you build trains live on 2D data (2 to 6 classes, your own points): regions, boundary and loss "
        "redraw as it learns, with its exact linear regions, margins and curvature; share a link, export the lesson.",
        "Train",
    ),
]


def by_section() -> dict[str, list[View]]:
    """The views under each of `SECTIONS`, in menu order (what ``st.navigation`` takes as a dict)."""
    return {section: [v for v in VIEWS if v.section == section] for section in SECTIONS}
