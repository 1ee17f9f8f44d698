"""Shared test set-up: keep every test away from the user's real cache and data folders."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("cache")
    os.environ["BOUNDARY_ATLAS_CACHE"] = str(root / "results")
    os.environ["BOUNDARY_ATLAS_MODELS"] = str(root / "models")  # models the tests train never reach the user's
    os.environ.setdefault("BOUNDARY_ATLAS_DATA", str(root / "data"))
    os.environ.setdefault("BOUNDARY_ATLAS_DEVICE", "cpu")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
