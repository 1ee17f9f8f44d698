"""2D embeddings of feature vectors with scikit-learn's fit/transform shape: PCA, t-SNE and UMAP.

All three are seeded (same features, same parameters, same seed: same coordinates) and `embed` caches
their results on disk. UMAP (umap-learn) is imported only when it is used: its import and first fit
compile numba code (tens of seconds in a new process), so `configure_numba_cache` points numba's cache
at a folder under the result cache and `start_umap_warmup` compiles in a background thread while the
user looks at something else.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from geometry.runtime.cache import DiskCache, default_cache_root
from geometry.runtime.compute import Progress
from geometry.runtime.memo import memoize
from geometry.runtime.validate import check_int

__all__ = [
    "EMBEDDING_METHODS",
    "Embedding2D",
    "PCAEmbedding",
    "TSNEEmbedding",
    "UMAPEmbedding",
    "configure_numba_cache",
    "embed",
    "make_embedding",
    "start_umap_warmup",
    "umap_compiled_for",
    "umap_warmup_state",
    "warm_up_umap",
]

Method = Literal["pca", "umap", "tsne"]
EMBEDDING_METHODS: dict[str, str] = {
    "pca": "PCA: linear, exact, instant; distances along the two axes are feature distances.",
    "umap": "UMAP: nonlinear, keeps neighbourhoods; the first run in a new process compiles (about a minute).",
    "tsne": "t-SNE: nonlinear, keeps neighbourhoods; slow for many samples; cannot place new points.",
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "pca": {"whiten": False},
    "umap": {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean"},
    "tsne": {"perplexity": 30.0, "learning_rate": "auto", "max_iter": 1000, "init": "pca"},
}


def _features(x: Any, what: str = "features") -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if a.ndim != 2 or a.shape[0] < 3 or a.shape[1] < 2:
        raise ValueError(f"expected {what} as an (N, D) array with N >= 3 and D >= 2, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"expected numeric {what}, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinity")
    return a


class _Embedding:
    """Common fit/transform plumbing: ``fit(X)`` stores ``embedding_`` (N, 2) float32 of the training rows."""

    embedding_: np.ndarray

    def fit(self, x: Any, y: Any = None) -> _Embedding:
        self.embedding_ = self._fit(_features(x))
        return self

    def fit_transform(self, x: Any, y: Any = None) -> np.ndarray:
        return self.fit(x).embedding_

    def _fit(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "embedding_"):
            raise ValueError(f"{type(self).__name__} is not fitted yet: call fit(X) first")


class PCAEmbedding(_Embedding):
    """Projection on the top ``n_components`` principal axes (scikit-learn PCA, full SVD: deterministic).

    After ``fit``: ``mean_`` (D,), ``components_`` (2, D) orthonormal rows, ``explained_variance_ratio_`` (2,).
    """

    def __init__(self, *, n_components: int = 2, whiten: bool = False, seed: int = 0) -> None:
        if n_components != 2:
            raise ValueError(f"expected n_components=2 (a 2D view), got {n_components!r}")
        self.n_components = n_components
        self.whiten = bool(whiten)
        self.seed = check_int("seed", seed, 0)

    def _fit(self, x: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, whiten=self.whiten, svd_solver="full", random_state=self.seed)
        out = pca.fit_transform(x.astype(np.float64))
        # make the sign of each axis deterministic: the largest |loading| is positive
        signs = np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(axis=1)])
        signs[signs == 0] = 1.0
        pca.components_ *= signs[:, None]
        out *= signs[None, :]
        self._pca = pca
        self.mean_ = pca.mean_.copy()
        self.components_ = pca.components_.copy()
        self.explained_variance_ratio_ = pca.explained_variance_ratio_.copy()
        return out.astype(np.float32)

    def transform(self, x: Any) -> np.ndarray:
        """Coordinates ``(N, 2)`` float32 of new rows on the fitted axes."""
        self._check_fitted()
        a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"expected features of shape (N, {self.mean_.shape[0]}), got {a.shape}")
        return self._pca.transform(a).astype(np.float32)


class TSNEEmbedding(_Embedding):
    """scikit-learn's Barnes-Hut t-SNE, seeded; ``perplexity`` is capped below N / 3 for small N.

    ``init="pca"`` (default) starts from the PCA layout, which makes the result independent of the seed;
    ``init="random"`` draws the start from the seed. t-SNE has no map for new points: ``transform`` raises
    NotImplementedError.
    """

    def __init__(
        self,
        *,
        n_components: int = 2,
        perplexity: float = 30.0,
        learning_rate: float | str = "auto",
        max_iter: int = 1000,
        init: str = "pca",
        seed: int = 0,
    ) -> None:
        if n_components != 2:
            raise ValueError(f"expected n_components=2 (a 2D view), got {n_components!r}")
        if not (isinstance(perplexity, (int, float)) and perplexity >= 2):
            raise ValueError(f"expected perplexity as a number >= 2, got {perplexity!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 250:
            raise ValueError(f"expected max_iter as an int >= 250, got {max_iter!r}")
        if init not in ("pca", "random"):
            raise ValueError(f"expected init 'pca' or 'random', got {init!r}")
        self.init = init
        self.n_components = n_components
        self.perplexity = float(perplexity)
        self.learning_rate = learning_rate
        self.max_iter = int(max_iter)
        self.seed = check_int("seed", seed, 0)

    def _fit(self, x: np.ndarray) -> np.ndarray:
        from sklearn.manifold import TSNE

        perplexity = min(self.perplexity, max(2.0, (len(x) - 1) / 3.0))
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            init=self.init,
            random_state=self.seed,
            method="barnes_hut",
        )
        return tsne.fit_transform(x).astype(np.float32)

    def transform(self, x: Any) -> np.ndarray:
        raise NotImplementedError("t-SNE cannot place new points; use PCA or UMAP to embed points after fitting")


class UMAPEmbedding(_Embedding):
    """UMAP (umap-learn), seeded (which makes it single-threaded). Imports umap on first use."""

    def __init__(
        self,
        *,
        n_components: int = 2,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        metric: str = "euclidean",
        seed: int = 0,
        n_epochs: int | None = None,
    ) -> None:
        if n_components != 2:
            raise ValueError(f"expected n_components=2 (a 2D view), got {n_components!r}")
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 2:
            raise ValueError(f"expected n_neighbors as an int >= 2, got {n_neighbors!r}")
        if not (isinstance(min_dist, (int, float)) and 0.0 <= min_dist <= 1.0):
            raise ValueError(f"expected min_dist in [0, 1], got {min_dist!r}")
        if metric not in ("euclidean", "cosine", "manhattan", "correlation"):
            raise ValueError(f"expected metric 'euclidean', 'cosine', 'manhattan' or 'correlation', got {metric!r}")
        self.n_components = n_components
        self.n_neighbors = int(n_neighbors)
        self.min_dist = float(min_dist)
        if n_epochs is not None and (
            isinstance(n_epochs, bool) or not isinstance(n_epochs, (int, np.integer)) or n_epochs < 1
        ):
            raise ValueError(f"expected n_epochs as an int >= 1 or None (umap-learn's default), got {n_epochs!r}")
        self.metric = metric
        self.seed = check_int("seed", seed, 0)
        self.n_epochs = None if n_epochs is None else int(n_epochs)

    def _fit(self, x: np.ndarray) -> np.ndarray:
        umap = _import_umap()
        self._umap = umap.UMAP(
            n_components=2,
            n_neighbors=min(self.n_neighbors, len(x) - 1),
            min_dist=self.min_dist,
            metric=self.metric,
            random_state=self.seed,
            n_jobs=1,
            low_memory=True,
            n_epochs=self.n_epochs,
        )
        return np.asarray(self._umap.fit_transform(x), dtype=np.float32)

    def transform(self, x: Any) -> np.ndarray:
        """UMAP's out-of-sample placement of new rows (approximate, as UMAP itself is)."""
        self._check_fitted()
        return np.asarray(self._umap.transform(_features(x)), dtype=np.float32)


_CLASSES: dict[str, type[_Embedding]] = {"pca": PCAEmbedding, "umap": UMAPEmbedding, "tsne": TSNEEmbedding}


def make_embedding(method: Method, *, seed: int = 0, **params: Any) -> _Embedding:
    """A fresh, unfitted embedding by name (``"pca"``, ``"umap"``, ``"tsne"``) with its parameters."""
    if method not in _CLASSES:
        raise ValueError(f"expected method 'pca', 'umap' or 'tsne', got {method!r}")
    allowed = set(_DEFAULTS[method])
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"expected parameters of {method} among {sorted(allowed)}, got {sorted(unknown)}")
    return _CLASSES[method](seed=seed, **params)


@dataclass(frozen=True, eq=False)
class Embedding2D:
    """2D coordinates of feature vectors, with what made them."""

    coords: np.ndarray  # (N, 2) float32, embedding coordinates (arbitrary units; PCA: feature units)
    method: str  # "pca" | "umap" | "tsne"
    params: tuple[tuple[str, Any], ...]  # the method's parameters, sorted by name
    seed: int
    seconds: float  # wall time of the fit that filled the cache
    pca_mean: np.ndarray | None  # (D,) PCA only: the centre of the projection
    pca_components: np.ndarray | None  # (2, D) PCA only: orthonormal axes
    explained_variance: np.ndarray | None  # (2,) PCA only: share of variance on each axis


def embed(
    features: Any,
    method: Method = "pca",
    *,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    fingerprint: str | None = None,
    progress: Progress | None = None,
    cache: DiskCache | None = None,
    cached_only: bool = False,
) -> Embedding2D | None:
    """Embed ``features`` (N, D) into 2D with ``method``; cached on disk by (features, method, params, seed).

    ``fingerprint`` names the features in the cache key (e.g. from a FeatureSet's key); by default the
    features' bytes are hashed. ``progress(fraction, text)`` is told when the fit starts and ends.
    ``cached_only=True`` returns the cached embedding or None, computing nothing.
    """
    from geometry.runtime.fingerprint import tensor_fingerprint

    x = _features(features)
    seed = check_int("seed", seed, 0)
    if method not in _CLASSES:
        raise ValueError(f"expected method 'pca', 'umap' or 'tsne', got {method!r}")
    full = {**_DEFAULTS[method], **(params or {})}
    model = make_embedding(method, seed=seed, **full)  # validates params before anything is cached
    if fingerprint is None:
        import torch

        fingerprint = tensor_fingerprint(torch.from_numpy(np.ascontiguousarray(x)))
    call = dict(features_id=fingerprint, n=len(x), d=x.shape[1], method=method, seed=seed, params=full, cache=cache)
    if cached_only:
        return _cached_fit.cached(x, model, **call)
    result = _cached_fit(x, model, progress=progress, **call)
    if progress is not None:
        progress(1.0, f"{method.upper()} embedding of {len(x):,} points")
    return result


@memoize(name="geometry.features.embedding.embed", ignore=("x", "model"))
def _cached_fit(
    x: np.ndarray,
    model: Any,
    *,
    features_id: str,
    n: int,
    d: int,
    method: str,
    seed: int,
    params: dict[str, Any],
    progress: Progress | None = None,
) -> Embedding2D:
    """Fit ``model`` (made by `make_embedding` from ``method``, ``seed`` and ``params``) on ``x`` (n, d): keyed by the
    caller's ``features_id`` naming x, the sizes, the method, the seed and every parameter."""
    if progress is not None:
        note = " (the first UMAP run in a process compiles first, about a minute)" if method == "umap" else ""
        progress(0.05, f"fitting {method.upper()} on {len(x):,} points{note}")
    t0 = time.perf_counter()
    coords = model.fit_transform(x)
    seconds = time.perf_counter() - t0
    pca = isinstance(model, PCAEmbedding)
    return Embedding2D(
        coords=np.ascontiguousarray(coords, dtype=np.float32),
        method=method,
        params=tuple(sorted((k, v) for k, v in params.items())),
        seed=seed,
        seconds=float(seconds),
        pca_mean=model.mean_ if pca else None,
        pca_components=model.components_ if pca else None,
        explained_variance=model.explained_variance_ratio_ if pca else None,
    )


# ---------------------------------------------------------------------------------------------
# UMAP: numba cache and warm-up

NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"


def configure_numba_cache(root: str | os.PathLike[str] | None = None) -> str | None:
    """Point numba's on-disk cache at ``<result cache root>/numba`` when NUMBA_CACHE_DIR is unset.

    Must run before numba is imported to take effect; returns the folder in use (None if numba was
    already imported without a cache folder set: its own default then applies).
    """
    current = os.environ.get(NUMBA_CACHE_ENV, "").strip()
    if current:
        return current
    if "numba" in sys.modules:
        return None
    folder = os.path.join(os.fspath(root) if root is not None else os.fspath(default_cache_root()), "numba")
    os.makedirs(folder, exist_ok=True)
    os.environ[NUMBA_CACHE_ENV] = folder
    return folder


_import_lock = threading.Lock()


def _import_umap() -> Any:
    with _import_lock:
        configure_numba_cache()
        try:
            import umap  # noqa: PLC0415 - lazy on purpose: 15-20 s and numba compilation
        except ImportError as err:
            raise ImportError(f"UMAP needs the umap-learn package (pip install umap-learn): {err}") from err
        return umap


_warm_lock = threading.Lock()  # guards the state below
_warm_state: dict[str, Any] = {"state": "idle", "seconds": None, "error": None}
_warm_thread: threading.Thread | None = None
_warm_failed_at: float | None = None  # time.monotonic() of the last failure
_warm_active = 0  # callers of warm_up_umap now running
_warm_t0: float | None = None  # time.perf_counter() when the current warm-up started
UMAP_APPROXIMATE_FROM = 4096  # umap-learn finds neighbours exactly below this many samples, by NNDescent from it
WARMUP_SAMPLES = 4500  # above the switch: the NNDescent path compiles too
WARMUP_SMALL = 300  # below it: the exact-neighbour path that smaller sets take
WARMUP_EPOCHS = 20  # enough to compile the layout optimiser; the layout itself is thrown away
WARMUP_RETRY_SECONDS = 30.0  # after a failure, `start_umap_warmup` tries again once this long has passed
# the two compile phases: each done once per process, each with its own lock (a caller that needs only the small
# one does not wait for the large one)
_phase_done = {"small": threading.Event(), "large": threading.Event()}
_phase_locks = {"small": threading.Lock(), "large": threading.Lock()}


def _compile_phase(phase: str, n: int) -> None:
    done = _phase_done[phase]
    if done.is_set():
        return
    with _phase_locks[phase]:
        if done.is_set():  # another thread compiled it while this one waited
            return
        x = np.random.default_rng(0).normal(size=(int(n), 8)).astype(np.float32)
        UMAPEmbedding(n_neighbors=10, seed=0, n_epochs=WARMUP_EPOCHS).fit_transform(x)
        done.set()


def warm_up_umap(n_samples: int = WARMUP_SAMPLES, *, large: bool = True) -> float:
    """Import umap and fit seeded random sets so numba compiles now (and caches to disk); returns seconds.

    A set of 300 compiles the exact nearest-neighbour path that UMAP takes below 4,096 samples; with
    ``large`` a set of ``n_samples`` (above 4,096) compiles the approximate search (NNDescent) of larger sets
    too; both with few epochs (the compiled layout optimiser is the same). Safe to call from several threads:
    each phase runs once per process, and a caller that arrives while another thread compiles what it needs
    waits for it (with ``large=False``, only for the small phase). A failure (umap-learn missing, a numba
    error) is re-raised and recorded in `umap_warmup_state`; the next call tries again.
    """
    global _warm_failed_at, _warm_active, _warm_t0
    with _warm_lock:
        if _warm_state["state"] == "done":
            return float(_warm_state["seconds"])
        if _warm_state["state"] != "running" or _warm_t0 is None:
            _warm_t0 = time.perf_counter()
        _warm_state.update(state="running", error=None)
        _warm_active += 1
    t0 = _warm_t0
    try:
        _compile_phase("small", WARMUP_SMALL)
        if large:
            _compile_phase("large", n_samples)
    except Exception as err:  # noqa: BLE001 - reported through umap_warmup_state()
        with _warm_lock:
            _warm_active -= 1
            _warm_state.update(state="failed", error=f"{type(err).__name__}: {err}")
            _warm_failed_at = time.monotonic()
        raise
    seconds = time.perf_counter() - t0
    with _warm_lock:
        _warm_active -= 1
        if _phase_done["large"].is_set():
            if _warm_state["state"] != "done":
                _warm_state.update(state="done", seconds=seconds)
            seconds = float(_warm_state["seconds"])
        elif _warm_active == 0 and _warm_state["state"] == "running":
            _warm_state.update(state="idle")  # only the small path was asked for, and nobody compiles the large one
    return seconds


def umap_compiled_for(n: int) -> bool:
    """True when UMAP's code for ``n`` samples is compiled in this process (a fit then pays no compilation)."""
    with _warm_lock:
        if _warm_state["state"] == "done":
            return True
    return _phase_done["large" if n >= UMAP_APPROXIMATE_FROM else "small"].is_set()


def start_umap_warmup(*, retry_after: float = WARMUP_RETRY_SECONDS) -> bool:
    """Start `warm_up_umap` in a daemon thread unless it is running or done; True if this call started it.

    After a failure it starts again, but not before ``retry_after`` seconds have passed since the failure
    (pages call this on every rerun; a broken installation should not be retried on every click).
    """
    global _warm_thread, _warm_t0
    with _warm_lock:
        if _warm_state["state"] in ("running", "done") or (_warm_thread is not None and _warm_thread.is_alive()):
            return False
        if (
            _warm_state["state"] == "failed"
            and _warm_failed_at is not None
            and time.monotonic() - _warm_failed_at < retry_after
        ):
            return False

        def run() -> None:
            with contextlib.suppress(Exception):  # the state says it failed
                warm_up_umap()

        _warm_state.update(state="running", error=None)  # so the UI says so at once
        _warm_t0 = time.perf_counter()
        _warm_thread = threading.Thread(target=run, name="umap-warmup", daemon=True)
        _warm_thread.start()
        return True


def umap_warmup_state() -> dict[str, Any]:
    """``{"state": "idle" | "running" | "done" | "failed", "seconds": float | None, "error": str | None}``."""
    with _warm_lock:
        return dict(_warm_state)
