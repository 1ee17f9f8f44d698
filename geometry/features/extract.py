"""Features at a chosen layer, and the final affine layer ("head") that turns them into logits.

The default layer is the *input* of the model's final ``nn.Linear``: there the classifier is exactly
``logits = W z + b``, so class regions in feature space are convex polyhedra that
`geometry.features.regions` computes from the head alone (docs/SCIENCE.md §11). Features are read by forward
hooks that are always removed (also when the model raises), batched through `map_batches` on the
handle's device, and cached on disk by (model fingerprint, data set fingerprint, layer, sample).

Thread safety: a ModelHandle is shared by every session of the app (``st.cache_resource``), so two sessions
can run the same module at once. Hooks are attached only while holding the module's `hook_lock`, and a hook
records only the forward passes of the thread that attached it, so another thread's forward (hooked or not)
never leaks into the captured features.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from geometry.data.datasets import Dataset
from geometry.models.handle import ModelHandle, _check_finite
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import CancelToken, Progress, map_batches
from geometry.runtime.memo import memoize

__all__ = [
    "FeatureSet",
    "Head",
    "NoAffineHeadError",
    "candidate_layers",
    "compute_features",
    "extract_features",
    "find_head",
    "hook_lock",
    "sample_indices",
]

HEAD_INPUT = "head"
"""`layer` value (or None) meaning: the input of the model's final affine layer."""

Position = Literal["input", "output"]


class NoAffineHeadError(ValueError):
    """The model has no final affine layer at the requested place, so exact region maps are impossible."""


@dataclass(frozen=True, eq=False)
class Head:
    """The final affine layer: ``logits = features @ weight.T + bias`` (float64 copies of its parameters).

    ``layer`` and ``position`` say where its features are read: the input of the nn.Linear that `find_head`
    found (position "input"), or the output of a named layer whose output is that input (position "output").
    """

    weight: np.ndarray  # (K, D) float64
    bias: np.ndarray  # (K,) float64
    layer: str = ""  # qualified module name in handle.module, e.g. "network.head"; "" = the model's default head
    position: str = "input"  # "input" (the features are that module's input) or "output"

    def __post_init__(self) -> None:
        w = np.asarray(self.weight, dtype=np.float64)
        b = np.asarray(self.bias, dtype=np.float64)
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"expected weight (K, D) and bias (K,), got {w.shape} and {b.shape}")
        if w.shape[0] < 2:
            raise ValueError(f"expected a head with at least 2 classes, got weight of shape {w.shape}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError("the head's weight or bias contains NaN or infinity")
        if self.position not in ("input", "output"):
            raise ValueError(f"expected position 'input' or 'output', got {self.position!r}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[0])

    @property
    def dim(self) -> int:
        """Feature dimension D."""
        return int(self.weight.shape[1])

    def _check(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        a = z.detach().cpu().double().numpy() if isinstance(z, torch.Tensor) else np.asarray(z, dtype=np.float64)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or a.shape[1] != self.dim:
            raise ValueError(f"expected features of shape (N, {self.dim}), got {a.shape}")
        return a

    def logits(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        """Logits ``(N, K)`` float64 of features ``(N, D)``."""
        return self._check(z) @ self.weight.T + self.bias

    def predict(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        """Predicted classes ``(N,)`` int64."""
        return self.logits(z).argmax(axis=1).astype(np.int64)

    def face_distances(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        """Distance ``(N, K)`` in feature units from each z to the face ``{(w_k - w_j)·z + b_k - b_j = 0}``
        between its predicted class j and each class k (inf for k = j and for identical rows).

        Class regions are convex polyhedra, so the smallest entry of a row is the exact distance from
        z to the boundary of its region.
        """
        zz = self._check(z)
        out = self.logits(zz)
        j = out.argmax(axis=1)
        gap = out[np.arange(len(zz)), j][:, None] - out  # >= 0
        norms = np.linalg.norm(self.weight[None, :, :] - self.weight[j][:, None, :], axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(norms > 0, gap / norms, np.inf)
        d[np.arange(len(zz)), j] = np.inf
        return d


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features of samples of a data set at one layer, with the model's logits for them."""

    features: np.ndarray  # (N, D) float32, flattened activations at `layer`
    logits: np.ndarray  # (N, K) float32, the model's logits for the same samples
    labels: np.ndarray  # (N,) int64 true labels, -1 where unknown
    indices: np.ndarray  # (N,) int64 positions of the samples in the data set
    layer: str  # qualified module name in handle.module, e.g. "network.head"
    position: str  # "input" (the features are that module's input) or "output"
    head_weight: np.ndarray | None  # (K, D) float64: the affine map from these features to the logits; None if none
    head_bias: np.ndarray | None  # (K,) float64
    head_note: str  # "" when there is an affine head, else why there is none
    fingerprint: str  # identifies (model, data set, layer, indices): the cache key; use it in downstream keys

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def predictions(self) -> np.ndarray:
        """The model's predicted classes ``(N,)`` int64."""
        return self.logits.argmax(axis=1).astype(np.int64)

    @property
    def misclassified(self) -> np.ndarray:
        """``(N,)`` bool: labelled samples whose prediction differs from the label."""
        return (self.labels >= 0) & (self.predictions != self.labels)

    @property
    def has_head(self) -> bool:
        return self.head_weight is not None

    @property
    def head(self) -> Head:
        """The affine head at this layer; raises NoAffineHeadError (with the reason) when there is none."""
        if self.head_weight is None or self.head_bias is None:
            raise NoAffineHeadError(self.head_note or "no affine head at this layer")
        return Head(self.head_weight, self.head_bias, self.layer, self.position)

    @property
    def description(self) -> str:
        return f"{self.position} of {self.layer}"


# ---------------------------------------------------------------------------------------------
# hooks: one lock per module, and hooks that only see their own thread's forward passes

_HOOK_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_HOOK_LOCKS_GUARD = threading.Lock()


def hook_lock(module: nn.Module) -> threading.RLock:
    """The re-entrant lock held while hooks are attached to ``module`` (one per module object, for its lifetime)."""
    with _HOOK_LOCKS_GUARD:
        lock = _HOOK_LOCKS.get(module)
        if lock is None:
            lock = _HOOK_LOCKS[module] = threading.RLock()
        return lock


def _lock_of(handle: ModelHandle) -> threading.RLock:
    """The hook lock of the handle's network (what the hooks attach to; shared by handles that wrap it)."""
    return hook_lock(handle.network)


# ---------------------------------------------------------------------------------------------
# layers and the head


def candidate_layers(handle: ModelHandle) -> list[str]:
    """Qualified names of the network's submodules (in ``handle.module``), in registration order."""
    _check_handle(handle)
    return [
        name
        for name, _ in handle.module.named_modules()
        if name and name != "preprocess" and not name.startswith("preprocess.")
    ]


def _check_handle(handle: ModelHandle) -> None:
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    if isinstance(handle.module, torch.jit.ScriptModule) or isinstance(handle.network, torch.jit.ScriptModule):
        raise NoAffineHeadError(
            f"model {handle.name!r} is a TorchScript archive: forward hooks cannot be attached to it, so its "
            f"features cannot be read; load its state dict with the architecture instead"
        )


def _resolve(handle: ModelHandle, layer: str) -> tuple[str, nn.Module]:
    """(qualified name, module) for a name in handle.module or, failing that, in handle.network."""
    modules = dict(handle.module.named_modules())
    for name in (layer, f"network.{layer}"):
        if name and name in modules:
            return name, modules[name]
    shown = candidate_layers(handle)
    more = f", ... ({len(shown)} in all)" if len(shown) > 12 else ""
    raise ValueError(f"expected a layer name of {handle.name!r} such as {', '.join(shown[:12])}{more}; got {layer!r}")


def _probe_inputs(handle: ModelHandle, n: int = 4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if handle.input_range is None:
        x = torch.randn(n, *handle.input_shape, generator=gen)
    else:
        lo, hi = handle.input_range
        x = lo + (hi - lo) * torch.rand(n, *handle.input_shape, generator=gen)
    return x.to(handle.device)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return False
    scale = float(b.abs().max()) if b.numel() else 0.0
    return bool(torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5 * max(1.0, scale)))


def find_head(handle: ModelHandle) -> Head:
    """The model's final affine layer: the last ``nn.Linear`` called in a forward pass whose output *is* the logits.

    Found by hooks on a probe batch (so execution order counts, not registration order). Raises
    NoAffineHeadError, saying why, when the model has no such layer (no nn.Linear, or operations after it).
    """
    _check_handle(handle)
    linears = [(name, m) for name, m in handle.module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise NoAffineHeadError(
            f"model {handle.name!r} has no nn.Linear layer, so it has no affine head: exact feature-space region "
            f"maps need a final linear layer (features can still be read at a named layer)"
        )
    calls: list[tuple[str, nn.Linear, torch.Tensor]] = []
    owner = threading.get_ident()

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if threading.get_ident() == owner:  # another session's forward of the shared model is not ours
                calls.append((name, module, output))  # type: ignore[arg-type]

        return hook

    probe = _probe_inputs(handle)
    with _lock_of(handle):
        handles = [m.register_forward_hook(record(name)) for name, m in linears]
        try:
            with torch.inference_mode():
                logits = handle.module(probe)
        finally:
            for h in handles:
                h.remove()
    if not calls:
        raise NoAffineHeadError(f"no nn.Linear of model {handle.name!r} is used in its forward pass: no affine head")
    name, module, output = calls[-1]
    if not isinstance(output, torch.Tensor) or not _close(output, logits):
        raise NoAffineHeadError(
            f"the last nn.Linear of model {handle.name!r} ({name!r}) is not its final operation (its output is not "
            f"the logits), so the model has no affine head: exact feature-space region maps are not available"
        )
    weight = module.weight.detach().cpu().double().numpy().copy()
    bias = module.bias.detach().cpu().double().numpy().copy() if module.bias is not None else np.zeros(weight.shape[0])
    return Head(weight, bias, name, "input")


def _head_at(handle: ModelHandle, layer: str, position: Position) -> tuple[Head | None, str]:
    """The head if the features at (layer, position) map to the logits by it; else (None, why)."""
    try:
        head = find_head(handle)
    except NoAffineHeadError as err:
        return None, str(err)
    if layer == head.layer and position == "input":
        return head, ""
    x = _probe_inputs(handle)
    feats, logits = _forward_capture(handle, x, layer, position)
    if feats.shape[1] == head.dim and np.allclose(
        head.logits(feats), logits.double().numpy(), rtol=1e-4, atol=1e-5 * max(1.0, float(logits.abs().max()))
    ):
        return Head(head.weight, head.bias, layer, position), ""
    return None, (
        f"the {position} of {layer!r} is not the input of the final affine layer {head.layer!r} (layers follow "
        f"it), so regions in this feature space are not convex polyhedra and have no exact map here; "
        f"use the default layer (the input of {head.layer!r}) for exact region maps"
    )


# ---------------------------------------------------------------------------------------------
# extraction


def _capture_hook(store: list[torch.Tensor], position: Position) -> Callable[..., None]:
    """A hook that appends the module's input or output to ``store``, for forward passes of this thread only."""
    owner = threading.get_ident()

    def pre(module: nn.Module, args: Any) -> None:
        if threading.get_ident() != owner:
            return
        if not args or not isinstance(args[0], torch.Tensor):
            raise TypeError(f"expected a tensor as the first input of {type(module).__name__}")
        store.append(args[0])

    def post(module: nn.Module, args: Any, output: Any) -> None:
        if threading.get_ident() != owner:
            return
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"expected a tensor output from {type(module).__name__}, got {type(output).__name__}")
        store.append(output)

    return pre if position == "input" else post


def _register(module: nn.Module, hook: Callable[..., None], position: Position) -> Any:
    return module.register_forward_pre_hook(hook) if position == "input" else module.register_forward_hook(hook)


def _forward_capture(
    handle: ModelHandle, x: torch.Tensor, layer: str, position: Position
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward of a batch: (features (B, D) float32 CPU, logits (B, K) float32 CPU); hook removed in finally."""
    _, module = _resolve(handle, layer)
    store: list[torch.Tensor] = []
    with _lock_of(handle):
        h = _register(module, _capture_hook(store, position), position)
        try:
            with torch.inference_mode():
                logits = handle.module(x.to(handle.device))
        finally:
            h.remove()
    if not store:
        raise ValueError(f"layer {layer!r} was not called in the forward pass of {handle.name!r}")
    feats = store[-1]
    if feats.shape[0] != x.shape[0]:
        raise ValueError(f"the {position} of {layer!r} has {feats.shape[0]} rows for a batch of {x.shape[0]}")
    return feats.reshape(feats.shape[0], -1).float().cpu(), logits.float().cpu()


def _resolve_layer(handle: ModelHandle, layer: str | None, position: Position | None = None) -> tuple[str, Position]:
    if position is not None and position not in ("input", "output"):
        raise ValueError(f"expected position 'input', 'output' or None, got {position!r}")
    if layer is None or layer == HEAD_INPUT:
        if position == "output":
            raise ValueError("expected position 'input' or None with the default layer (the head's input)")
        return find_head(handle).layer, "input"
    if not isinstance(layer, str):
        raise TypeError(f"expected layer as a module name (str) or None, got {type(layer).__name__}")
    return _resolve(handle, layer)[0], position or "output"


def extract_features(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    layer: str | None = None,
    position: Position | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and logits of inputs ``(N, *input_shape)``: ``(N, D)`` and ``(N, K)`` float32 on the CPU.

    ``layer=None`` (or ``"head"``): the input of the final affine layer (NoAffineHeadError if the model has
    none). Otherwise the qualified name of a module in ``handle.module`` (or in ``handle.network``), whose
    flattened *output* is returned (its *input* with ``position="input"``; its last call, when a module runs
    more than once). The hook is removed even when the model raises.
    """
    _check_handle(handle)
    x = handle.check_inputs(x)
    name, position = _resolve_layer(handle, layer, position)
    _, module = _resolve(handle, name)
    store: list[torch.Tensor] = []

    def forward(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        store.clear()
        logits = handle.module(batch)
        if not store:
            raise ValueError(f"layer {name!r} was not called in the forward pass of {handle.name!r}")
        feats = store[-1]
        store.clear()
        if feats.shape[0] != batch.shape[0]:
            raise ValueError(f"the {position} of {name!r} has {feats.shape[0]} rows for a batch of {batch.shape[0]}")
        return feats.reshape(feats.shape[0], -1).float(), logits.float()

    with _lock_of(handle):
        hook = _register(module, _capture_hook(store, position), position)
        try:
            feats, logits = map_batches(
                forward,
                x,
                batch_size=batch_size,
                device=handle.device,
                progress=progress,
                cancel=cancel,
                desc="extracting features",
                key=("features", handle.fingerprint),
            )
        finally:
            hook.remove()
            store.clear()
    _check_finite(logits, handle.name)
    if not torch.isfinite(feats).all():
        raise ValueError(f"the {position} of {name!r} in {handle.name!r} contains NaN or infinity")
    return feats, logits


def sample_indices(n: int, sample: int | None, seed: int = 0) -> np.ndarray:
    """Sorted positions of a seeded random subset of ``sample`` of ``n`` items (all of them when None or >= n)."""
    if isinstance(sample, bool) or (sample is not None and (not isinstance(sample, (int, np.integer)) or sample < 1)):
        raise ValueError(f"expected sample as a positive int or None, got {sample!r}")
    if sample is None or sample >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).permutation(n)[:sample]).astype(np.int64)


def compute_features(
    handle: ModelHandle,
    dataset: Dataset,
    *,
    layer: str | None = None,
    sample: int | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache: DiskCache | None = None,
    cached_only: bool = False,
) -> FeatureSet | None:
    """Features of (a sample of) ``dataset`` at ``layer`` with the model's logits; cached on disk.

    ``sample``: a seeded random subset of that size (``seed``), kept in data set order; or ``indices``:
    explicit positions. The result records whether an affine head maps these features to the logits.
    Cache key: (model fingerprint, data set fingerprint, layer, indices). ``cached_only=True`` returns the
    cached result or None, computing nothing.
    """
    _check_handle(handle)
    if not isinstance(dataset, Dataset):
        raise TypeError(f"expected a geometry.data.datasets.Dataset, got {type(dataset).__name__}")
    if tuple(dataset.input_shape) != tuple(handle.input_shape):
        raise ValueError(
            f"expected a data set of inputs {handle.input_shape} for {handle.name!r}, "
            f"got {dataset.name!r} with inputs {dataset.input_shape}"
        )
    if len(dataset) == 0:
        raise ValueError(f"data set {dataset.name!r} is empty")
    if indices is not None and sample is not None:
        raise ValueError("expected either sample or indices, got both")
    if indices is not None:
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"expected indices as a non-empty 1-D sequence of ints, got {idx.dtype} {idx.shape}")
        if idx.min() < 0 or idx.max() >= len(dataset):
            raise ValueError(f"expected indices in [0, {len(dataset)}), got {idx.min()}..{idx.max()}")
        idx = idx.astype(np.int64)
    else:
        idx = sample_indices(len(dataset), sample, seed)
    # the key names the layer without running the model (the head is found from the weights' fingerprint)
    if layer is None or layer == HEAD_INPUT:
        key_layer, position = HEAD_INPUT, "input"
    else:
        if not isinstance(layer, str):
            raise TypeError(f"expected layer as a module name (str) or None, got {type(layer).__name__}")
        key_layer, position = _resolve(handle, layer)[0], "output"
    call = dict(layer=key_layer, position=position, indices=idx, cache=cache)
    if cached_only:
        return _cached_feature_set.cached(handle, dataset, **call)
    result = _cached_feature_set(handle, dataset, batch_size=batch_size, progress=progress, cancel=cancel, **call)
    if progress is not None:
        progress(1.0, f"features of {len(idx)} samples ({result.dim}-d)")
    return result


@memoize(name="geometry.features.extract.compute_features", ignore=("batch_size",))
def _cached_feature_set(
    handle: ModelHandle,
    dataset: Dataset,
    *,
    layer: str,
    position: str,
    indices: np.ndarray,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> FeatureSet:
    """The features of ``dataset.images[indices]`` (int64 (N,)) at ``layer`` (`HEAD_INPUT` for the head's input,
    else a resolved module name) and ``position``; the result's ``fingerprint`` is this entry's key, which names
    the features for the caches built on them (embedding, painting, hull)."""
    name = find_head(handle).layer if layer == HEAD_INPUT else layer
    head, note = _head_at(handle, name, position)
    feats, logits = extract_features(
        handle,
        dataset.images[torch.from_numpy(indices)],
        layer=name if position == "output" else None,
        batch_size=batch_size,
        progress=progress,
        cancel=cancel,
    )
    return FeatureSet(
        features=feats.numpy(),
        logits=logits.numpy(),
        labels=dataset.labels.numpy()[indices].astype(np.int64),
        indices=indices,
        layer=name,
        position=position,
        head_weight=None if head is None else head.weight,
        head_bias=None if head is None else head.bias,
        head_note=note,
        fingerprint=_cached_feature_set.key(handle, dataset, layer=layer, position=position, indices=indices),
    )
