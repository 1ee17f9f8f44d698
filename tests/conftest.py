"""Shared test set-up: every test is kept away from the user's real cache and data folders, and the built-in models
and data set most tests measure are fixtures here (one copy per test module, so no module sees another's changes).

Analytic models (balls, cylinders, quadratic forms, affine classifiers) live in tests/geometry/analytic.py.
"""

from __future__ import annotations

import os

import pytest
import torch

import geometry


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("cache")
    os.environ["BOUNDARY_ATLAS_CACHE"] = str(root / "results")
    os.environ["BOUNDARY_ATLAS_MODELS"] = str(root / "models")  # models the tests train never reach the user's
    os.environ.setdefault("BOUNDARY_ATLAS_DATA", str(root / "data"))
    os.environ.setdefault("BOUNDARY_ATLAS_DEVICE", "cpu")
    # the app reads typed paths only inside allowed roots: the tests' temporary folders, home, the working directory
    roots = (str(tmp_path_factory.getbasetemp()), os.path.expanduser("~"), os.getcwd())
    os.environ.setdefault("BOUNDARY_ATLAS_ALLOWED_ROOTS", os.pathsep.join(roots))
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="module")
def silu() -> geometry.ModelHandle:
    """The smooth built-in digits CNN (SiLU): exact curvature applies."""
    return geometry.load_model("digits-cnn-silu", device="cpu")


@pytest.fixture(scope="module")
def relu() -> geometry.ModelHandle:
    """The piecewise-linear built-in digits CNN (ReLU + max-pooling)."""
    return geometry.load_model("digits-cnn-relu", device="cpu")


@pytest.fixture(scope="module")
def digits() -> geometry.Dataset:
    """scikit-learn's 8x8 digits, the built-in split (a test module may define its own ``digits``)."""
    return geometry.load_dataset("digits")
