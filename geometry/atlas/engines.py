"""Where an atlas's shards are computed: in this process (`LocalEngine`) or as Ray tasks (`RayEngine`).

Both run the same function on the same shards (`geometry.atlas.shards.atlas_shard`), so they give the same rows for
the same inputs: bit for bit on the same device with the same number of torch threads (a Ray task runs one thread per
CPU it holds, one by default, and ``LocalEngine(threads=1)`` matches it; other thread counts round sums differently,
about 1e-8 apart). An engine's ``map`` yields ``(shard, rows)`` as shards finish and stores each in the disk cache as
soon as it is done, so an interruption keeps every finished shard.

Ray. The model goes to the cluster once (``ray.put``) as a `ModelRecipe`: a built-in model's name or a weights file
path plus its load options (each worker loads it once and checks its fingerprint), or else the handle itself,
pickled on the CPU. Each shard is one task with its own images (a few hundred KB) in and its columns (about 100 bytes
per image) out; ``max_retries`` re-runs a task whose worker died. A cluster with GPUs gets one GPU per task. The
driver stores the results in its own cache, so workers on other machines need no shared disk.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from geometry.atlas.options import AtlasOptions
from geometry.atlas.shards import Shard, atlas_shard
from geometry.models.cards import builtin_models, user_models
from geometry.models.handle import ModelHandle
from geometry.models.loading import load_model
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import CancelToken, scaled_progress

__all__ = ["ENGINES", "Engine", "LocalEngine", "ModelRecipe", "RayEngine", "make_engine", "model_recipe"]

Progress = Callable[[float, str], None]
Rows = dict[str, np.ndarray]
ShardHook = Callable[[Shard], None]

ENGINES = ("local", "ray")


class Engine(Protocol):
    """Computes shards; ``map`` yields ``(shard, rows)`` as each finishes (in any order) and stores it in ``store``."""

    name: str

    def map(
        self,
        handle: ModelHandle,
        shards: Sequence[Shard],
        options: AtlasOptions,
        *,
        store: DiskCache | None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[Shard, Rows]]: ...


# ---------------------------------------------------------------------------------------------------------------------
# in-process


@dataclass
class LocalEngine:
    """Every shard in this process, one after the other, each one batched (all its images at once).

    ``threads``: torch's intra-op threads while it runs (None: as they are). A CPU sum split over another number of
    threads rounds differently in the last bit, so rows equal a Ray run's bit for bit with ``threads=1`` (a Ray task
    with one CPU runs one thread).
    """

    threads: int | None = None
    name: str = "local"

    def map(
        self,
        handle: ModelHandle,
        shards: Sequence[Shard],
        options: AtlasOptions,
        *,
        store: DiskCache | None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[Shard, Rows]]:
        threads = torch.get_num_threads()
        try:
            for i, shard in enumerate(shards):
                if cancel is not None:
                    cancel.raise_if_cancelled("atlas")
                inner = scaled_progress(progress, i / len(shards), (i + 1) / len(shards))
                if self.threads is not None:
                    torch.set_num_threads(self.threads)
                try:
                    rows = atlas_shard(
                        handle,
                        shard,
                        options,
                        cache=store if store is not None else False,
                        progress=inner,
                        cancel=cancel,
                    )
                finally:
                    torch.set_num_threads(threads)
                yield shard, rows
        finally:
            torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------------------
# the model, as it travels to workers


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker gets the model: ``load_model(source, **load_options)`` or the pickled ``handle`` (on the CPU).

    ``fingerprint``: the driver's `ModelHandle.fingerprint`; a worker whose model differs refuses to compute.
    """

    fingerprint: str
    source: str | None = None
    load_options: tuple[tuple[str, Any], ...] = ()
    handle: ModelHandle | None = None

    def build(self, device: torch.device | str) -> ModelHandle:
        """The model on ``device``; ValueError when what was loaded is not the driver's model."""
        device = torch.device(device)
        if self.source is not None:
            handle = load_model(self.source, device=device, **dict(self.load_options))
        elif self.handle is not None:
            handle = dataclasses.replace(self.handle, module=self.handle.module.to(device), device=device)
        else:
            raise ValueError("expected a ModelRecipe with a source or a handle")
        if handle.fingerprint != self.fingerprint:
            raise ValueError(
                f"the worker's model {handle.name!r} (fingerprint {handle.fingerprint[:12]}) is not the driver's "
                f"({self.fingerprint[:12]}): is the weights file the same on every machine?"
            )
        return handle


def model_recipe(
    handle: ModelHandle, *, source: str | None = None, load_options: Mapping[str, Any] | None = None
) -> ModelRecipe:
    """The `ModelRecipe` of ``handle``: ``source`` / ``load_options`` as given (what ``load_model`` was called
    with), else the name of a built-in or trained model whose weights are ``handle``'s, else the handle itself."""
    options = tuple(sorted((load_options or {}).items()))
    if source is not None:
        return ModelRecipe(handle.fingerprint, source=str(source), load_options=options)
    if handle.name in builtin_models() or handle.name in user_models():
        try:
            same = load_model(handle.name, device="cpu").fingerprint == handle.fingerprint
        except (ValueError, OSError):
            same = False
        if same:
            return ModelRecipe(handle.fingerprint, source=handle.name)
    on_cpu = handle
    if handle.device.type != "cpu":  # a copy: the caller's model stays where it is
        on_cpu = dataclasses.replace(handle, module=copy.deepcopy(handle.module).to("cpu"), device=torch.device("cpu"))
    return ModelRecipe(handle.fingerprint, handle=on_cpu)


_WORKER_MODELS: dict[tuple[str, str], ModelHandle] = {}  # in a Ray worker: models loaded so far, by fingerprint


def run_shard_task(recipe: ModelRecipe, shard: Shard, options: AtlasOptions, hook: ShardHook | None = None) -> Rows:
    """What one Ray task runs: the shard's rows on the worker's device (a GPU when Ray gave it one). The model is
    built once per worker process. ``hook`` runs first (tests use it to kill a worker)."""
    import ray

    if hook is not None:
        hook(shard)
    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    key = (recipe.fingerprint, device)
    if key not in _WORKER_MODELS:
        _WORKER_MODELS[key] = recipe.build(device)
    return atlas_shard(_WORKER_MODELS[key], shard, options, cache=False)


# ---------------------------------------------------------------------------------------------------------------------
# Ray


@dataclass
class RayEngine:
    """Shards as Ray tasks on a cluster: ``address`` joins one (``"auto"``, ``"ray://host:10001"``...), None starts
    a local one with ``workers`` CPUs (default: all) and shuts it down afterwards; a Ray session already started in
    this process is used as it is. ``workers`` also caps the tasks in flight, so at most that many run at once on a
    larger cluster (None: every shard is submitted at once and the cluster's resources decide).
    ``max_retries``: how often a task whose worker died is run again. ``hook``: called in the worker before each
    shard (for tests). ``source`` / ``load_options``: how workers load the model (see `model_recipe`)."""

    address: str | None = None
    workers: int | None = None
    max_retries: int = 3
    hook: ShardHook | None = None
    source: str | None = None
    load_options: Mapping[str, Any] | None = None
    poll_seconds: float = 0.2
    name: str = "ray"

    def _connect(self) -> bool:
        """Join or start a cluster; True when this call started it (and must shut it down)."""
        import ray

        if ray.is_initialized():
            return False
        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=self.workers or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
            )
        return True

    def map(
        self,
        handle: ModelHandle,
        shards: Sequence[Shard],
        options: AtlasOptions,
        *,
        store: DiskCache | None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[Shard, Rows]]:
        import ray

        if not shards:
            return
        started = self._connect()
        pending: dict[Any, Shard] = {}
        try:
            gpus = ray.cluster_resources().get("GPU", 0)
            task = ray.remote(run_shard_task).options(
                num_cpus=1, num_gpus=1 if gpus else 0, max_retries=self.max_retries
            )
            recipe = ray.put(model_recipe(handle, source=self.source, load_options=self.load_options))
            window = self.workers or len(shards)  # tasks in flight: at most `workers` run at once
            queue = iter(shards)

            def submit() -> None:
                while len(pending) < window:
                    shard = next(queue, None)
                    if shard is None:
                        return
                    pending[task.remote(recipe, shard, options, self.hook)] = shard

            submit()
            while pending:
                if cancel is not None:
                    cancel.raise_if_cancelled("atlas")
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_seconds)
                for ref in ready:
                    shard = pending.pop(ref)
                    rows = ray.get(ref)
                    if store is not None:
                        store.put(atlas_shard.key(handle, shard, options), rows)
                    yield shard, rows
                submit()
        except BaseException:  # Ctrl-C, Stop, an error, or the consumer went away: no task keeps running
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()


def make_engine(
    engine: str | Engine,
    *,
    address: str | None = None,
    workers: int | None = None,
    source: str | None = None,
    load_options: Mapping[str, Any] | None = None,
) -> Engine:
    """``"local"`` / ``"ray"`` as an engine; an engine object passes through. ``workers``: Ray's CPUs of a local
    cluster and tasks in flight; for the local engine, torch's threads. ``address``: the Ray cluster to join."""
    if not isinstance(engine, str):
        return engine
    if engine == "local":
        if address is not None:
            raise ValueError("expected an address only with the ray engine")
        return LocalEngine(threads=None if workers is None else _positive_workers(workers))
    if engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("the ray engine needs Ray: pip install ray (see requirements.txt)") from None
        workers = None if workers is None else _positive_workers(workers)
        return RayEngine(address=address, workers=workers, source=source, load_options=load_options)
    raise ValueError(f"expected engine to be one of {', '.join(ENGINES)}, got {engine!r}")


def _positive_workers(workers: object) -> int:
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"expected workers as a positive int, got {workers!r}")
    return int(workers)
