"""The views the app offers, with one line each (Home lists them; app.py registers their pages)."""

from __future__ import annotations

VIEWS: list[tuple[str, str]] = [
    ("Home", "the model card, the picked images and the model's top-k predictions for each."),
    (
        "Curvature",
        "DeepFool's boundary point for an image and the boundary's curvature there: principal curvatures and "
        "directions, cross-sections with osculating parabolas, random directions, and curvature vs vulnerability.",
    ),
    (
        "Slices",
        "the decision regions on 2D planes through input space around an image (boundary normal, random, "
        "three images, DCT, curvature directions), adaptive and cached, with region statistics and a second model.",
    ),
    (
        "Feature space",
        "samples embedded from the last hidden layer (PCA, UMAP, t-SNE) with the model's regions painted "
        "behind them, exact region maps on feature planes beside pixel-space slices, convex-hull tests, morphing.",
    ),
    (
        "Frequency margins",
        'distance to the boundary inside bands of DCT frequencies ("Hold me tight!") against a '
        "random subspace, the bands as images, dct_flip and low-pass previews, two models on one plot.",
    ),
    (
        "Connectivity",
        "a path between two inputs of one class that never leaves the class, and the success rate over "
        "random same-class pairs.",
    ),
    (
        "Adversarial detection",
        "the curvature statistic around an input: ROC and AUC on clean vs DeepFool-perturbed "
        "inputs, label recovery, and a verdict for one input.",
    ),
    (
        "Robustness",
        "predictions and margins as objects shrink, move, rotate or the resolution changes: your own "
        "images, and generated shapes for shapes models (SI-Score style).",
    ),
    ("Report", "all of the above in one self-contained HTML file to download (also `python -m geometry report`)."),
]
