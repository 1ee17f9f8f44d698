"""Embeddings: PCA against a float64 SVD, seeded reproducibility, the disk cache, UMAP (one small test)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from geometry.features import embedding as emb
from geometry.runtime.cache import DiskCache

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


def test_embed_is_cached_on_disk(tmp_path, monkeypatch):
    fits: list[int] = []
    fit = emb.TSNEEmbedding._fit

    def counted(self: emb.TSNEEmbedding, x: np.ndarray) -> np.ndarray:
        fits.append(len(x))
        return fit(self, x)

    monkeypatch.setattr(emb.TSNEEmbedding, "_fit", counted)
    cache = DiskCache(tmp_path)
    x = _blobs(n=120)
    params = {"perplexity": 8.0, "max_iter": 250}
    assert emb.embed(x, "tsne", seed=0, params=params, cache=cache, cached_only=True) is None
    first = emb.embed(x, "tsne", seed=0, params=params, cache=cache)
    again = emb.embed(x, "tsne", seed=0, params=params, cache=cache)
    assert fits == [120]  # the second call was a cache hit: no fit
    np.testing.assert_array_equal(first.coords, again.coords)
    assert again.seconds == first.seconds and again.params == first.params and len(cache) == 1
    hit = emb.embed(x, "tsne", seed=0, params=params, cache=cache, cached_only=True)
    np.testing.assert_array_equal(hit.coords, first.coords)
    emb.embed(x, "tsne", seed=1, params=params, cache=cache)  # another seed is another entry
    assert fits == [120, 120] and len(cache) == 2
    pca = emb.embed(x, "pca", cache=cache, fingerprint="my-features")
    assert pca.pca_components.shape == (2, 8) and pca.explained_variance.sum() <= 1.0
    assert len(cache) == 3


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


def test_umap_refuses_a_bad_epoch_count():
    with pytest.raises(ValueError, match=r"n_epochs as an int >= 1 or None"):
        emb.UMAPEmbedding(n_epochs=0)


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
    _fresh_warmup_state(monkeypatch)
    assert emb.start_umap_warmup()
    assert emb.umap_warmup_state()["state"] == "running"
    assert not emb.start_umap_warmup()  # a second call starts nothing
    seconds = emb.warm_up_umap()  # waits for the thread's warm-up instead of doing it again
    assert fits == [emb.WARMUP_SMALL, emb.WARMUP_SAMPLES] and seconds >= 0.6  # both neighbour-search paths
    state = emb.umap_warmup_state()
    assert state == {"state": "done", "seconds": seconds, "error": None}
    emb._warm_thread.join(timeout=30)  # (no thread outlives the test's patched state)
    assert emb.warm_up_umap() == seconds and fits == [emb.WARMUP_SMALL, emb.WARMUP_SAMPLES]
    assert emb.umap_warmup_state()["seconds"] == seconds


def _fresh_warmup_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emb, "_warm_state", {"state": "idle", "seconds": None, "error": None})
    monkeypatch.setattr(emb, "_warm_thread", None)
    monkeypatch.setattr(emb, "_warm_failed_at", None)
    monkeypatch.setattr(emb, "_warm_active", 0)
    monkeypatch.setattr(emb, "_warm_t0", None)
    monkeypatch.setattr(emb, "_phase_done", {"small": threading.Event(), "large": threading.Event()})


def test_a_small_set_waits_only_for_the_small_path_while_the_large_one_compiles(monkeypatch):
    """Below 4,096 samples UMAP never runs NNDescent: the page does not wait for its (long) compilation."""
    large_started, release = threading.Event(), threading.Event()
    fits = []

    class Fake:
        def __init__(self, **kwargs: object) -> None:
            pass

        def fit_transform(self, x: np.ndarray) -> np.ndarray:
            fits.append(len(x))
            if len(x) == emb.WARMUP_SAMPLES:  # the large phase: hold it until the test lets go
                large_started.set()
                assert release.wait(30)
            return x[:, :2]

    monkeypatch.setattr(emb, "UMAPEmbedding", Fake)
    _fresh_warmup_state(monkeypatch)
    assert not emb.umap_compiled_for(100) and not emb.umap_compiled_for(5000)
    assert emb.start_umap_warmup()
    assert large_started.wait(30)  # the background thread compiled the small path and is in the large one
    assert emb.umap_compiled_for(100) and not emb.umap_compiled_for(5000)
    emb.warm_up_umap(large=False)  # returns at once: nothing more to compile for a small set
    assert fits == [emb.WARMUP_SMALL, emb.WARMUP_SAMPLES] and emb.umap_warmup_state()["state"] == "running"
    release.set()
    emb._warm_thread.join(timeout=30)
    assert emb.umap_compiled_for(5000) and emb.umap_warmup_state()["state"] == "done"
    assert fits == [emb.WARMUP_SMALL, emb.WARMUP_SAMPLES]  # each path compiled once


def test_a_small_warm_up_alone_leaves_the_state_idle_not_running(monkeypatch):
    class Fake:
        def __init__(self, **kwargs: object) -> None:
            pass

        def fit_transform(self, x: np.ndarray) -> np.ndarray:
            return x[:, :2]

    monkeypatch.setattr(emb, "UMAPEmbedding", Fake)
    _fresh_warmup_state(monkeypatch)
    emb.warm_up_umap(large=False)
    assert emb.umap_warmup_state()["state"] == "idle" and emb.umap_compiled_for(10)
    assert not emb.umap_compiled_for(emb.UMAP_APPROXIMATE_FROM)


def test_a_failed_warm_up_is_reported_and_the_next_call_tries_again(monkeypatch):
    attempts = []

    class BrokenOnce:
        def __init__(self, **kwargs: object) -> None:
            attempts.append(1)
            if len(attempts) == 1:
                raise ImportError("umap is not installed")

        def fit_transform(self, x: np.ndarray) -> np.ndarray:
            return x[:, :2]

    monkeypatch.setattr(emb, "UMAPEmbedding", BrokenOnce)
    _fresh_warmup_state(monkeypatch)
    with pytest.raises(ImportError, match="umap is not installed"):
        emb.warm_up_umap()
    state = emb.umap_warmup_state()
    assert state == {"state": "failed", "seconds": None, "error": "ImportError: umap is not installed"}
    seconds = emb.warm_up_umap()  # installed since: the next call succeeds
    assert len(attempts) == 3  # one that failed, then the two warm-up fits
    assert emb.umap_warmup_state() == {"state": "done", "seconds": seconds, "error": None}


def test_the_background_warm_up_restarts_after_a_failure_but_not_at_once(monkeypatch):
    attempts = []

    class Broken:
        def __init__(self, **kwargs: object) -> None:
            attempts.append(1)
            raise ImportError("umap is not installed")

    monkeypatch.setattr(emb, "UMAPEmbedding", Broken)
    _fresh_warmup_state(monkeypatch)
    assert emb.start_umap_warmup()
    emb._warm_thread.join(timeout=30)
    assert emb.umap_warmup_state()["state"] == "failed" and attempts == [1]
    assert not emb.start_umap_warmup()  # within the retry interval: not again on every rerun
    assert emb.start_umap_warmup(retry_after=0.0)  # later: a new thread tries again
    emb._warm_thread.join(timeout=30)
    assert attempts == [1, 1] and emb.umap_warmup_state()["error"] == "ImportError: umap is not installed"


def test_a_missing_umap_learn_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_umap(name: str, *args: object, **kwargs: object) -> object:
        if name == "umap":
            raise ImportError("No module named 'umap'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "umap", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_umap)
    with pytest.raises(ImportError, match=r"UMAP needs the umap-learn package \(pip install umap-learn\)"):
        emb.UMAPEmbedding().fit(_blobs(n=20))


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
