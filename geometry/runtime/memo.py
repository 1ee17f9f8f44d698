"""One memoisation API for every cached result: ``@memoize`` (joblib's ``Memory.cache``, on our own store).

    @memoize
    def deepfool_cached(handle, x, *, options=DeepFoolOptions(), progress=None, cancel=None) -> DeepFoolResult: ...

    deepfool_cached(handle, x)                 # computes once, then reads the disk cache
    deepfool_cached.is_cached(handle, x)       # answers without computing
    deepfool_cached.key(handle, x)             # the entry's key (sha256 hex)
    deepfool_cached(handle, x, cache=False)    # bypasses the cache

The key is built from the *whole* call, bound to the signature with its defaults applied, so changing a default
changes the key. Arguments are fingerprinted here, never by the caller: anything with a ``fingerprint`` string
(a `ModelHandle`, a `Dataset`, a `Plane`) by that string, tensors and arrays by their bytes, dataclasses (options
objects, results passed back in) field by field. ``progress`` and ``cancel`` are never part of a key.

The version in the key is taken from the code: the syntax tree (comments and formatting excluded) of the
function's module and of every ``geometry`` module it imports, transitively, except the storage layer. Editing the
algorithm or anything it calls therefore recomputes its results; re-formatting does not. ``version=`` adds an
explicit tag on top (for a change of meaning that the code does not show, such as new model weights).

Entries go to a `DiskCache` (``.npz`` + JSON, never a pickle). ``cache=`` on a call picks another `DiskCache`,
``cache=False`` computes without reading or writing. See docs/DESIGN.md §5 ("Cache rules").

Identical calls at the same time compute once: on a miss the call takes the entry's lock
(`geometry.runtime.locks`); other threads and processes making the same call wait, show the running
computation's progress through their own ``progress`` callback, honour their ``cancel`` token, and read the
stored result when it is done. A killed owner's lock is released by the OS, and a waiter computes instead.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.util
import inspect
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

import numpy as np

from geometry.runtime.cache import DiskCache, cache_key, default_cache
from geometry.runtime.locks import EntryLock, OwnerProgress

__all__ = ["Memoized", "code_version", "fingerprint_arguments", "memoize"]

P = ParamSpec("P")
R = TypeVar("R")

ALWAYS_IGNORED = ("progress", "cancel", "cache")
# Modules whose code does not change what a computation returns: how results are stored and keyed.
_STORAGE_MODULES = frozenset({"geometry.runtime.cache", "geometry.runtime.locks", "geometry.runtime.memo"})


# ---------------------------------------------------------------------------------------------------------------------
# code versions


def _geometry_imports(module_name: str, tree: ast.Module) -> set[str]:
    """The ``geometry.*`` modules that ``tree`` imports (``from geometry.x import y`` may name a module ``y``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("geometry."))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and (node.module == "geometry" or node.module.startswith("geometry."))
        ):
            found.add(node.module)
            for a in node.names:  # "from geometry.slices import planes" imports a module
                found.add(f"{node.module}.{a.name}")
    return {m for m in found if m != "geometry" and _module_file(m) is not None}


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


@functools.cache
def code_version(module_name: str) -> str:
    """Sha256 of the syntax trees of ``module_name`` and every geometry module it imports, transitively.

    Storage modules (the cache and this file) are left out: they decide where a result is kept, not what it is.
    """
    seen: dict[str, str] = {}
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in seen or name in _STORAGE_MODULES:
            continue
        path = _module_file(name)
        if path is None:
            raise ValueError(f"code_version: cannot find the source of module {name!r}")
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        seen[name] = ast.dump(tree, annotate_fields=False, include_attributes=False)
        todo.extend(sorted(_geometry_imports(name, tree)))
    h = hashlib.sha256(b"boundary-atlas/code/v1")
    for name in sorted(seen):
        h.update(f"{name}\n{len(seen[name])}\n".encode())
        h.update(seen[name].encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------------
# arguments -> plain JSON


def _array_fingerprint(arr: np.ndarray) -> str:
    if arr.dtype.hasobject:
        raise TypeError("numpy arrays of dtype object cannot be fingerprinted")
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(memoryview(arr.reshape(-1).view(np.uint8)))
    return h.hexdigest()


def _plain(value: Any, path: str) -> Any:
    """``value`` as plain JSON types: objects by their fingerprints, dataclasses by their fields."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    fingerprint = getattr(value, "fingerprint", None)
    if isinstance(fingerprint, str) and not isinstance(value, type):
        return {"__fingerprint__": fingerprint, "type": type(value).__name__}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        from geometry.runtime.fingerprint import tensor_fingerprint

        return {"__tensor__": tensor_fingerprint(value)}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": _array_fingerprint(value)}
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name), f"{path}.{f.name}") for f in dataclasses.fields(value)}
        return {"__dataclass__": type(value).__qualname__, **fields}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v, f"{path}{{}}") for v in value), key=repr)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{path}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"cannot key a cached call on argument {path} of type {type(value).__name__}: expected a value with a "
        "'fingerprint' string, a tensor, an array, a dataclass, or plain numbers, strings, lists and dicts"
    )


def fingerprint_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Every argument as plain JSON types, ready for `cache_key` (see `_plain`)."""
    return {name: _plain(value, name) for name, value in arguments.items()}


# ---------------------------------------------------------------------------------------------------------------------
# the decorator


class Memoized(Generic[P, R]):
    """A function whose results are kept in the disk cache; see the module's docstring."""

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str | None = None,
        version: str = "",
        ignore: Iterable[str] = (),
        result: type | None = None,
    ) -> None:
        self.function = function
        self.name = name or f"{function.__module__}.{function.__qualname__}"
        self.extra_version = str(version)
        self.signature = inspect.signature(function)
        self.ignore = frozenset(ALWAYS_IGNORED) | frozenset(ignore)
        unknown = self.ignore - set(self.signature.parameters) - set(ALWAYS_IGNORED)
        if unknown:
            raise TypeError(f"memoize({self.name}): ignore names {sorted(unknown)}, which the function does not take")
        self._result = result
        functools.update_wrapper(self, function)

    @property
    def version(self) -> str:
        """The code version of the function's module (plus the explicit tag, if any)."""
        code = code_version(self.function.__module__)
        return f"{code}+{self.extra_version}" if self.extra_version else code

    @property
    def result_type(self) -> type | None:
        """The dataclass the entry is rebuilt as (from ``result=`` or the return annotation), None for a dict."""
        if self._result is None:
            try:
                hint = typing.get_type_hints(self.function).get("return")
            except Exception:  # an annotation that does not resolve: keep the entry as a dict of fields
                hint = None
            self._result = hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else dict
        return None if self._result is dict else self._result

    def arguments(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The call bound to the signature with defaults applied, without the ignored arguments."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update({k: v for k, v in value.items() if k not in self.ignore})
            elif name not in self.ignore:
                out[name] = value
        return out

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key of this call (sha256 hex): function name, code version and every bound argument."""
        kwargs.pop("cache", None)
        params = fingerprint_arguments(self.arguments(*args, **kwargs))
        return cache_key(self.name, self.version, params=params)

    @staticmethod
    def _store(cache: DiskCache | bool | None) -> DiskCache | None:
        if cache is False:
            return None
        if cache is None or cache is True:
            return default_cache()
        if not isinstance(cache, DiskCache):
            raise TypeError(f"cache must be a DiskCache, None (the default cache) or False, got {type(cache).__name__}")
        return cache

    def cached(self, *args: P.args, cache: DiskCache | None = None, **kwargs: P.kwargs) -> R | None:
        """The stored result of this call, or None when it is not cached (nothing is computed)."""
        store = self._store(cache)
        if store is None:
            return None
        return store.get(self.key(*args, **kwargs), self.result_type)

    def is_cached(self, *args: P.args, cache: DiskCache | None = None, **kwargs: P.kwargs) -> bool:
        """Whether this call's result is in the cache (nothing is computed)."""
        store = self._store(cache)
        return store is not None and self.key(*args, **kwargs) in store

    def __call__(self, *args: P.args, cache: DiskCache | bool | None = None, **kwargs: P.kwargs) -> R:
        store = self._store(cache)
        if store is None:
            return self.function(*args, **kwargs)
        key = self.key(*args, **kwargs)
        bound = self.signature.bind(*args, **kwargs)
        progress = bound.arguments.get("progress") if "progress" in self.signature.parameters else None
        cancel = bound.arguments.get("cancel") if "cancel" in self.signature.parameters else None

        def compute(lock: EntryLock) -> R:
            if "progress" in self.signature.parameters:  # waiters in other sessions show the owner's progress
                bound.arguments["progress"] = _publishing(progress, lock)
            return self.function(*bound.args, **bound.kwargs)

        return store.compute_once(key, compute, cls=self.result_type, on_wait=_waiting(self.name, progress, cancel))

    def __repr__(self) -> str:
        return f"<memoized {self.name}>"


def _publishing(progress: Callable[[float, str], None] | None, lock: EntryLock) -> Callable[[float, str], None]:
    """The owner's progress callback: the caller's, and a copy in the lock file for the requests waiting on it."""

    def update(fraction: float, message: str) -> None:
        lock.report(fraction, message)
        if progress is not None:
            progress(fraction, message)

    return update


def _waiting(
    name: str, progress: Callable[[float, str], None] | None, cancel: Any
) -> Callable[[float, OwnerProgress], None]:
    """What a request does while the same computation runs elsewhere: honour its cancel token and show the
    owner's progress through its own progress callback (which is also where a Streamlit page can be stopped)."""
    what = name.rsplit(".", 1)[-1]

    def on_wait(waited_s: float, owner: OwnerProgress) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled(what)
        if progress is not None:
            fraction, message = owner if owner is not None else (0.0, "")
            progress(
                fraction,
                f"the same computation is already running for another request; waiting for it ({waited_s:.0f} s"
                + (f", {message})" if message else ")"),
            )

    return on_wait


@typing.overload
def memoize(function: Callable[P, R], /) -> Memoized[P, R]: ...
@typing.overload
def memoize(
    *, name: str | None = None, version: str = "", ignore: Iterable[str] = (), result: type | None = None
) -> Callable[[Callable[P, R]], Memoized[P, R]]: ...
def memoize(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    version: str = "",
    ignore: Iterable[str] = (),
    result: type | None = None,
) -> Any:
    """Cache ``function``'s results on disk, keyed by the whole call and the code's version.

    ``name``: the entry's function name (default: module + qualified name); ``version``: an explicit tag added to the
    code version; ``ignore``: arguments that do not change the result (``progress``, ``cancel`` and ``cache`` never
    do); ``result``: the dataclass to rebuild (default: the return annotation, else a dict of fields).
    """

    def wrap(fn: Callable[P, R]) -> Memoized[P, R]:
        return Memoized(fn, name=name, version=version, ignore=ignore, result=result)

    return wrap(function) if function is not None else wrap
