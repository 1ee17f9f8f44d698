"""Embeddings: PCA against a float64 SVD, seeded reproducibility, the disk cache, UMAP (one small test)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from geometry import embedding as emb
from geometry.cache import DiskCache

# UMAP compiles numba code; keep the compiled code between test runs (inside the venv, which git ignores)
# instead of in the per-session temporary cache folder the conftest sets up.
if "numba" not in sys.modules:
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(sys.prefix) / "numba-cache"))


def _blobs(n: int = 150, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 6
    return (centres[np.arange(n) % 3] + rng.normal(size=(n, d))).astype(np.float32)


def test_pca_matches_a_float64_svd():
    x = _blobs()
    coords = emb.PCAEmbedding().fit_transform(x)
    xc = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:2].T
    signs = np.sign((coords * ref).sum(axis=0))  # PCA axes are defined up to sign
    np.testing.assert_allclose(coords, ref * signs, atol=1e-4)
    model = emb.PCAEmbedding().fit(x)
    np.testing.assert_allclose(model.explained_variance_ratio_, s[:2] ** 2 / (s**2).sum(), rtol=1e-6)
    np.testing.assert_allclose(model.components_ @ model.components_.T, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(model.transform(x[:5]), coords[:5], atol=1e-4)
    # the sign convention: the largest loading of each axis is positive
    assert (model.components_[np.arange(2), np.abs(model.components_).argmax(axis=1)] > 0).all()


def test_tsne_is_reproducible_with_a_seed_and_changes_with_another():
    x = _blobs(n=90)
    a = emb.make_embedding("tsne", seed=1, perplexity=10.0, max_iter=250, init="random").fit_transform(x)
    b = emb.make_embedding("tsne", seed=1, perplexity=10.0, max_iter=250, init="random").fit_transform(x)
    c = emb.make_embedding("tsne", seed=2, perplexity=10.0, max_iter=250, init="random").fit_transform(x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # the default PCA start makes t-SNE deterministic whatever the seed
    d = emb.make_embedding("tsne", seed=1, perplexity=10.0, max_iter=250).fit_transform(x)
    e = emb.make_embedding("tsne", seed=2, perplexity=10.0, max_iter=250).fit_transform(x)
    np.testing.assert_array_equal(d, e)
    with pytest.raises(NotImplementedError, match="cannot place new points"):
        emb.TSNEEmbedding().transform(x)


def test_embed_is_cached_on_disk(tmp_path):
    cache = DiskCache(tmp_path)
    x = _blobs(n=120)
    first = emb.embed(x, "tsne", seed=0, params={"perplexity": 8.0, "max_iter": 250}, cache=cache)
    t0 = time.perf_counter()
    again = emb.embed(x, "tsne", seed=0, params={"perplexity": 8.0, "max_iter": 250}, cache=cache)
    assert time.perf_counter() - t0 < 0.5 * max(first.seconds, 0.2)
    np.testing.assert_array_equal(first.coords, again.coords)
    assert again.seconds == first.seconds and again.params == first.params and len(cache) == 1
    pca = emb.embed(x, "pca", cache=cache, fingerprint="my-features")
    assert pca.pca_components.shape == (2, 8) and pca.explained_variance.sum() <= 1.0
    assert len(cache) == 2


@pytest.mark.parametrize(
    ("args", "kwargs", "err", "match"),
    [
        ((np.zeros((2, 5)), "pca"), {}, ValueError, r"N >= 3"),
        ((np.full((5, 3), np.nan), "pca"), {}, ValueError, "NaN"),
        ((np.zeros((5, 3)), "isomap"), {}, ValueError, "expected method"),
        ((np.zeros((5, 3)), "umap"), {"params": {"perplexity": 5}}, ValueError, "expected parameters of umap"),
        ((np.zeros((5, 3)), "umap"), {"params": {"n_neighbors": 1}}, ValueError, "n_neighbors as an int >= 2"),
        ((np.zeros((5, 3)), "pca"), {"seed": -1}, ValueError, "seed as an int >= 0"),
        ((np.array([["a"] * 3] * 5)), {}, TypeError, "numeric"),
    ],
)
def test_bad_arguments_are_refused(args, kwargs, err, match):
    if not isinstance(args, tuple):
        args = (args, "pca")
    with pytest.raises(err, match=match):
        emb.embed(*args, **kwargs)


def test_configure_numba_cache_points_numba_under_the_cache_root(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delitem(sys.modules, "numba", raising=False)
    folder = emb.configure_numba_cache(tmp_path)
    assert folder == str(tmp_path / "numba") and os.environ["NUMBA_CACHE_DIR"] == folder
    assert (tmp_path / "numba").is_dir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    assert emb.configure_numba_cache(tmp_path) == "/somewhere/else"  # a user's setting wins


def test_the_umap_warm_up_runs_once_in_a_background_thread(monkeypatch):
    """The threading of the warm-up, with a stand-in for UMAP (the real one is compiled in the test below)."""
    fits = []

    class SlowFake:
        def __init__(self, **kwargs: object) -> None:
            pass

        def fit_transform(self, x: np.ndarray) -> np.ndarray:
            fits.append(len(x))
            time.sleep(0.3)
            return x[:, :2]

    monkeypatch.setattr(emb, "UMAPEmbedding", SlowFake)
    monkeypatch.setattr(emb, "_warm_state", {"state": "idle", "seconds": None, "error": None})
    monkeypatch.setattr(emb, "_warm_thread", None)
    assert emb.start_umap_warmup()
    assert emb.umap_warmup_state()["state"] == "running"
    assert not emb.start_umap_warmup()  # a second call starts nothing
    seconds = emb.warm_up_umap()  # waits for the thread's warm-up instead of doing it again
    assert fits == [emb.WARMUP_SAMPLES] and seconds >= 0.3
    state = emb.umap_warmup_state()
    assert state == {"state": "done", "seconds": seconds, "error": None}
    assert emb.warm_up_umap() == seconds and fits == [emb.WARMUP_SAMPLES]


def test_a_failed_warm_up_is_reported(monkeypatch):
    class Broken:
        def __init__(self, **kwargs: object) -> None:
            raise ImportError("umap is not installed")

    monkeypatch.setattr(emb, "UMAPEmbedding", Broken)
    monkeypatch.setattr(emb, "_warm_state", {"state": "idle", "seconds": None, "error": None})
    with pytest.raises(ImportError):
        emb.warm_up_umap()
    state = emb.umap_warmup_state()
    assert state == {"state": "failed", "seconds": None, "error": "ImportError: umap is not installed"}


@pytest.mark.slow
def test_umap_is_reproducible_with_a_seed(tmp_path):
    """The one test of the real UMAP (numba compiles on first use): seeded fits, transform, the cache."""
    x = _blobs(n=150)
    a = emb.UMAPEmbedding(n_neighbors=10, seed=3).fit(x)
    b = emb.UMAPEmbedding(n_neighbors=10, seed=3).fit_transform(x)
    np.testing.assert_array_equal(a.embedding_, b)
    assert a.transform(x[:7]).shape == (7, 2)
    # neighbourhoods survive: each point's nearest embedded neighbour is mostly from its own blob
    d = np.linalg.norm(b[:, None] - b[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert (np.arange(150)[d.argmin(axis=1)] % 3 == np.arange(150) % 3).mean() > 0.95
    cache = DiskCache(tmp_path)
    first = emb.embed(x, "umap", seed=3, params={"n_neighbors": 10}, cache=cache)
    np.testing.assert_array_equal(first.coords, b)
    assert emb.embed(x, "umap", seed=3, params={"n_neighbors": 10}, cache=cache).seconds == first.seconds
