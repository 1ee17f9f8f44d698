"""Content-addressed on-disk cache of results: one `.npz` file per entry, never a pickle.

A key is the sha256 of (function, code version, model fingerprint, input fingerprint, params).
An entry holds the result's arrays plus a JSON description of its fields; it is written to a temp
file and renamed into place, so readers only ever see whole entries. Reading an entry refreshes its
mtime, which drives least-recently-used eviction once the cache grows past its size cap. A corrupt
or mismatching entry is deleted and reported as a miss.

Root: a per-deployment setting, env `BOUNDARY_ATLAS_CACHE`, else `~/.cache/boundary-atlas/results`
(`$XDG_CACHE_HOME` honoured); no page changes it. Cap: env `BOUNDARY_ATLAS_CACHE_MAX_MB`, else 2 GiB.

Concurrent identical requests compute once: `get_or_compute` (and `@memoize` on top of it) takes a lock file beside
the entry (`geometry.runtime.locks`) on a miss, so other threads and processes asking for the same key wait for the
running computation and read its result; the lock dies with its owner, so a killed owner lets a waiter compute.

Entries, the marker and lock files are readable by group and others as the umask allows (not 0600), since the cache
is shared by every user of a server.

Temp files are named ``.<key[:16]>.<host>.<pid>-<random>.tmp``: one whose writer process is gone (killed mid-write)
is removed at the next upkeep, one still being written counts towards the size cap.

Upkeep (LRU eviction, removing stale temp files and corrupt entries, `clear`) deletes only in a folder that
carries the marker file `.boundary-atlas-cache`, which the cache writes when it creates its root (or finds it
empty): a folder of someone else's `.npz` files that happens to look like the layout is never touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import socket
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from geometry.runtime.locks import LOCK_SUFFIX, EntryLock, OwnerProgress

__all__ = [
    "CACHE_ENV",
    "CACHE_MARKER",
    "CACHE_MAX_MB_ENV",
    "CacheStats",
    "DiskCache",
    "cache_key",
    "default_cache",
    "default_cache_root",
    "set_cache_root",
]

T = TypeVar("T")

CACHE_ENV = "BOUNDARY_ATLAS_CACHE"
CACHE_MAX_MB_ENV = "BOUNDARY_ATLAS_CACHE_MAX_MB"
DEFAULT_MAX_BYTES = 2 * 2**30
FORMAT_VERSION = 1
_META = "__meta__"
_KEY_RE = re.compile(r"^[0-9a-f]{16,128}$")
_TMP_SUFFIX = ".tmp"
_STALE_TMP_S = 3600.0  # temp files older than this are leftovers of a crashed writer
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]  # in temp names: a pid means this machine's
_TMP_WRITER = re.compile(r"^\.[0-9a-f]{1,16}\.([0-9a-f]{8})\.(\d+)-")  # `.<key[:16]>.<host>.<pid>-<random>.tmp`
CACHE_MARKER = ".boundary-atlas-cache"
"""The file at a cache root that says the folder is this project's cache (upkeep deletes nothing elsewhere)."""
_MARKER_TEXT = "This folder is a Boundary Atlas result cache; its two-letter subfolders may be deleted at any time.\n"


def _umask() -> int:
    """The process's umask, read without changing it where the OS says it (Linux), else by setting and restoring."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
"""The mode of the files the cache writes: what ``open()`` would give (mkstemp's temp files are 0600)."""


def _share(fd: int) -> None:
    """Give a freshly made temp file the umask's mode, so other users of a shared cache can read it."""
    with contextlib.suppress(OSError):
        os.fchmod(fd, _FILE_MODE)


def _is_tensor(value: Any) -> bool:
    """isinstance(value, torch.Tensor) without importing torch (no torch loaded: no tensors)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


class _CorruptEntry(Exception):
    """An entry that cannot be decoded into the requested value."""


# ---------------------------------------------------------------------------------------------
# keys


def _canonical(value: Any, path: str) -> Any:
    """`value` as plain JSON types, or TypeError naming where the unsupported object sits."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.ndarray) or _is_tensor(value):
        raise TypeError(
            f"cache key params[{path}] is a {type(value).__name__}; pass a fingerprint string "
            f"(geometry.runtime.fingerprint.tensor_fingerprint) instead of tensors or arrays"
        )
    if isinstance(value, np.generic):
        item = value.item()
        if isinstance(item, (bool, int, float, str)):
            return item
        raise TypeError(f"cache key params[{path}] is an unsupported numpy scalar {value.dtype}")
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"cache key params[{path}] has a non-str key {k!r}; use str keys")
            out[k] = _canonical(v, f"{path}.{k}" if path else k)
        return out
    raise TypeError(
        f"cache key params[{path}] is a {type(value).__name__}; expected int, float, str, bool, "
        f"None, lists/tuples or dicts of those (pass fingerprints, never objects)"
    )


def cache_key(
    function: str,
    version: str,
    *,
    model: str | None = None,
    inputs: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    """Sha256 hex key (64 chars) of the canonical JSON of function, version, fingerprints and params."""
    for name, v, optional in (
        ("function", function, False),
        ("version", version, False),
        ("model", model, True),
        ("inputs", inputs, True),
    ):
        if not (isinstance(v, str) or (optional and v is None)):
            expected = "a str or None" if optional else "a str"
            raise TypeError(f"cache_key: {name} must be {expected} (a fingerprint), got {type(v).__name__}")
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"cache_key: params must be a mapping, got {type(params).__name__}")
    doc = {
        "function": function,
        "version": version,
        "model": model,
        "inputs": inputs,
        "params": _canonical(dict(params or {}), ""),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# encoding a result as arrays + JSON


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class _Encoder:
    """Turns a value into JSON with arrays pulled out into `self.arrays` (name -> ndarray)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _add(self, arr: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = arr
        return name

    def encode(self, v: Any, path: str) -> Any:
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else {"__float__": repr(v)}
        if _is_tensor(v):
            import torch

            t = v.detach().to("cpu").resolve_conj().resolve_neg().contiguous()
            try:
                arr = t.numpy()
                raw = False
            except (TypeError, RuntimeError):  # dtypes numpy lacks (bfloat16, float8, ...)
                arr = t.reshape(-1).view(torch.uint8).numpy()
                raw = True
            return {"__tensor__": self._add(arr), "dtype": str(t.dtype), "shape": list(t.shape), "raw": raw}
        if isinstance(v, np.ndarray):
            if v.dtype.hasobject:
                raise TypeError(f"cannot cache {path}: numpy arrays of dtype object would need pickle")
            # ascontiguousarray would make a 0-d array 1-d
            return {"__ndarray__": self._add(np.ascontiguousarray(v).reshape(v.shape))}
        if isinstance(v, np.generic):
            if v.dtype.hasobject:
                raise TypeError(f"cannot cache {path}: numpy object scalars would need pickle")
            return {"__npscalar__": self._add(np.asarray(v))}
        if isinstance(v, tuple):
            return {"__tuple__": [self.encode(x, f"{path}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [self.encode(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, Mapping):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise TypeError(f"cannot cache {path}: dict key {k!r} is not a str")
                out[k] = self.encode(x, f"{path}.{k}")
            return {"__dict__": out}
        raise TypeError(
            f"cannot cache {path}: {type(v).__name__} is not an array, tensor, scalar, str, None, "
            f"tuple/list or dict of those"
        )


def _decode(v: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):
        return [_decode(x, arrays) for x in v]
    if not isinstance(v, dict) or len(v) == 0:
        raise _CorruptEntry(f"unexpected JSON value {v!r}")
    if "__float__" in v:
        return float(v["__float__"])
    if "__tuple__" in v:
        return tuple(_decode(x, arrays) for x in v["__tuple__"])
    if "__dict__" in v:
        return {k: _decode(x, arrays) for k, x in v["__dict__"].items()}
    if "__ndarray__" in v:
        return arrays[v["__ndarray__"]]
    if "__npscalar__" in v:
        return arrays[v["__npscalar__"]][()]
    if "__tensor__" in v:
        import torch  # only here, so reading numpy-only entries does not need torch

        arr = arrays[v["__tensor__"]]
        dtype = getattr(torch, str(v["dtype"]).removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            raise _CorruptEntry(f"unknown tensor dtype {v['dtype']!r}")
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        if v.get("raw"):
            t = t.view(dtype).reshape(v["shape"])
        if t.dtype != dtype or list(t.shape) != list(v["shape"]):
            raise _CorruptEntry("tensor dtype/shape does not match its description")
        return t
    raise _CorruptEntry(f"unexpected JSON object with keys {sorted(v)}")


def _split_value(value: Any) -> tuple[str, str | None, dict[str, Any]]:
    """(kind, class name, fields) of a dataclass instance or a str-keyed mapping."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return "dataclass", _class_name(type(value)), fields
    if isinstance(value, Mapping):
        return "dict", None, dict(value)
    raise TypeError(f"cannot cache a {type(value).__name__}; expected a dataclass instance or a dict of fields")


# ---------------------------------------------------------------------------------------------
# the cache


@dataclasses.dataclass(frozen=True)
class CacheStats:
    """Size of a cache: entry count, bytes on disk, its root folder and size cap (None: no cap)."""

    entries: int
    bytes: int  # entries and temp files being written
    root: Path
    max_bytes: int | None


def default_cache_root() -> Path:
    """`$BOUNDARY_ATLAS_CACHE`, else `$XDG_CACHE_HOME/boundary-atlas/results` (~/.cache by default)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "boundary-atlas" / "results"


def _env_max_bytes() -> int:
    env = os.environ.get(CACHE_MAX_MB_ENV, "").strip()
    if not env:
        return DEFAULT_MAX_BYTES
    try:
        mb = float(env)
    except ValueError:
        raise ValueError(f"{CACHE_MAX_MB_ENV}={env!r} is not a number of megabytes") from None
    if not mb > 0 or not math.isfinite(mb):
        raise ValueError(f"{CACHE_MAX_MB_ENV}={env!r} must be a positive number of megabytes")
    return int(mb * 2**20)


class DiskCache:
    """Results on disk under `root/<key[:2]>/<key>.npz`, capped at `max_bytes` with LRU eviction.

    `root=None` uses `default_cache_root()`; `max_bytes=None` uses `$BOUNDARY_ATLAS_CACHE_MAX_MB`
    or 2 GiB; `unlimited=True` disables the cap. Safe to share between threads and processes:
    writes are atomic renames, and a reader sees either the old entry, the new one, or none.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int | None = None,
        unlimited: bool = False,
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        if unlimited:
            self.max_bytes: int | None = None
        elif max_bytes is None:
            self.max_bytes = _env_max_bytes()
        elif isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        else:
            self.max_bytes = max_bytes
        self._evict_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DiskCache(root={str(self.root)!r}, max_bytes={self.max_bytes})"

    # -- paths ------------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """The entry file of `key` (which need not exist)."""
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ValueError(f"cache key must be a lowercase hex string (from cache_key()), got {key!r}")
        return self.root / key[:2] / f"{key}.npz"

    def owns_root(self) -> bool:
        """Whether the root carries the cache's marker file: only then does upkeep delete anything there."""
        return (self.root / CACHE_MARKER).is_file() and not (self.root / CACHE_MARKER).is_symlink()

    def _prepare_root(self) -> None:
        """Create the root (and mark it) if missing; mark an existing root only when it is empty."""
        if self.owns_root():
            return
        try:
            self.root.mkdir(parents=True)
            fresh = True
        except FileExistsError:
            fresh = False
        if not fresh:
            with os.scandir(self.root) as listing:
                fresh = next(listing, None) is None  # an empty folder is as good as a new one
        if fresh:
            marker = self.root / CACHE_MARKER
            fd, tmp = tempfile.mkstemp(prefix=f"{CACHE_MARKER}-", suffix=_TMP_SUFFIX, dir=self.root)
            _share(fd)
            with os.fdopen(fd, "w") as f:
                f.write(_MARKER_TEXT)
            os.replace(tmp, marker)

    def _entries(self) -> list[tuple[Path, os.stat_result]]:
        """All entry files with their stat (see `_scan`)."""
        return self._scan()[0]

    def _scan(self) -> tuple[list[tuple[Path, os.stat_result]], int]:
        """All entry files with their stat, and the bytes of temp files still being written.

        In our own cache a temp file whose writer process is gone, or that is older than an hour, is removed; the
        others count towards the size (a big result being written takes disk space before it is an entry).
        """
        out: list[tuple[Path, os.stat_result]] = []
        writing = 0
        try:
            shards = list(os.scandir(self.root))
        except FileNotFoundError:
            return out, writing
        owned = self.owns_root()
        now = time.time()
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False) or len(shard.name) != 2:
                continue
            try:
                files = list(os.scandir(shard.path))
            except FileNotFoundError:
                continue
            for f in files:
                try:
                    st = f.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if f.name.endswith(_TMP_SUFFIX):
                    if owned and (now - st.st_mtime > _STALE_TMP_S or _writer_gone(f.name)):
                        _unlink_quietly(Path(f.path))
                    else:
                        writing += st.st_size
                    continue
                if f.name.endswith(".npz") and f.is_file(follow_symlinks=False):
                    out.append((Path(f.path), st))
        return out, writing

    # -- reading ----------------------------------------------------------------------------

    def get(self, key: str, cls: type[T] | None = None) -> T | dict[str, Any] | None:
        """The stored value of `key`, or None on a miss.

        With `cls` (a dataclass) the entry must have been stored from that class and is rebuilt
        as it; without, the fields come back as a dict. Tensors come back on the CPU. A corrupt
        or mismatching entry is deleted and counts as a miss.
        """
        path = self.path_for(key)
        if cls is not None and cls is not dict and not dataclasses.is_dataclass(cls):
            raise TypeError(f"cls must be a dataclass type or None, got {cls!r}")
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, fstat needed while open
        except FileNotFoundError:
            return None
        try:
            ino = os.fstat(fh.fileno()).st_ino
            try:
                value = self._read(fh, key, cls)
            except (
                _CorruptEntry,
                ValueError,
                KeyError,
                TypeError,
                OSError,
                EOFError,
                zipfile.BadZipFile,
                json.JSONDecodeError,
                AttributeError,
                IndexError,
            ):
                value = None
        finally:
            fh.close()
        if value is None:
            self._drop_if_same(path, ino)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recency for LRU eviction
        return value

    def _read(self, fh: Any, key: str, cls: type | None) -> Any:
        with np.load(fh, allow_pickle=False) as z:
            meta = json.loads(z[_META].tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
                raise _CorruptEntry("unknown entry format")
            if meta.get("key") != key:
                raise _CorruptEntry("entry was stored under another key")
            arrays = {name: z[name] for name in meta["arrays"]}
        fields = meta["fields"]
        if not isinstance(fields, dict):
            raise _CorruptEntry("fields is not an object")
        values = {k: _decode(v, arrays) for k, v in fields.items()}
        if cls is None or cls is dict:
            return values
        if meta.get("kind") != "dataclass" or meta.get("class") != _class_name(cls):
            raise _CorruptEntry(f"entry holds {meta.get('class')!r}, expected {_class_name(cls)!r}")
        dc_fields = dataclasses.fields(cls)
        if set(values) != {f.name for f in dc_fields}:
            raise _CorruptEntry("entry fields do not match the dataclass")
        obj = cls(**{f.name: values[f.name] for f in dc_fields if f.init})
        for f in dc_fields:
            if not f.init:
                object.__setattr__(obj, f.name, values[f.name])
        return obj

    def _drop_if_same(self, path: Path, ino: int) -> None:
        """Delete a bad entry unless another writer has replaced it meanwhile (in our own cache only)."""
        if not self.owns_root():
            return
        try:
            if os.stat(path).st_ino == ino:
                path.unlink()
        except FileNotFoundError:
            pass

    def __contains__(self, key: str) -> bool:
        return self.path_for(key).is_file()

    # -- writing ----------------------------------------------------------------------------

    def put(self, key: str, value: Any) -> bool:
        """Store `value` (a dataclass instance or a dict of fields) under `key`, atomically.

        Returns False (storing nothing) when the entry alone is larger than the size cap.
        Raises TypeError, before writing anything, for a field that cannot be stored without pickle.
        """
        path = self.path_for(key)
        kind, class_name, fields = _split_value(value)
        enc = _Encoder()
        encoded = {}
        for name, v in fields.items():
            if not isinstance(name, str):
                raise TypeError(f"cannot cache a dict with non-str key {name!r}")
            encoded[name] = enc.encode(v, name)
        meta = {
            "format": FORMAT_VERSION,
            "key": key,
            "kind": kind,
            "class": class_name,
            "fields": encoded,
            "arrays": list(enc.arrays),
        }
        meta_text = json.dumps(meta, sort_keys=True, allow_nan=False)
        self._prepare_root()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=_tmp_prefix(key), suffix=_TMP_SUFFIX, dir=path.parent)
        tmp = Path(tmp_name)
        _share(fd)
        try:
            with os.fdopen(fd, "wb") as f:
                meta_bytes = np.frombuffer(meta_text.encode("utf-8"), dtype=np.uint8)
                np.savez(f, **{_META: meta_bytes}, **enc.arrays)
            size = tmp.stat().st_size
            if self.max_bytes is not None and size > self.max_bytes:
                tmp.unlink()
                return False
            _replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        if self.max_bytes is not None:
            self.evict(keep=path)
        return True

    def lock(self, key: str) -> EntryLock:
        """The lock of `key`'s entry (`geometry.runtime.locks`): the file ``<key>.lock`` beside the entry."""
        return EntryLock(self.path_for(key).with_suffix(LOCK_SUFFIX))

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], T],
        cls: type[T] | None = None,
        *,
        on_wait: Callable[[float, OwnerProgress], None] | None = None,
    ) -> T:
        """The cached value of `key`, else `compute()` stored and returned (not stored if it raises).

        On a miss the freshly computed object itself is returned (tensors where compute put them). While another
        thread or process computes the same key, this waits for it and returns its stored result; ``on_wait``
        (see `EntryLock.hold`) is called meanwhile and may raise to stop waiting.
        """
        return self.compute_once(key, lambda _lock: compute(), cls, on_wait=on_wait)

    def compute_once(
        self,
        key: str,
        compute: Callable[[EntryLock], T],
        cls: type[T] | None = None,
        *,
        on_wait: Callable[[float, OwnerProgress], None] | None = None,
    ) -> T:
        """`get_or_compute` for a ``compute(lock)`` that publishes its progress with ``lock.report`` for waiters."""
        hit = self.get(key, cls)
        if hit is not None:
            return hit  # type: ignore[return-value]
        with contextlib.suppress(OSError):  # a cache we cannot write to: compute unlocked (put will say why)
            self._prepare_root()  # before the lock's shard folder, so a new root still gets its marker
        with self.lock(key).hold(on_wait) as lock:
            hit = self.get(key, cls)  # the computation we waited for has stored it
            if hit is not None:
                return hit  # type: ignore[return-value]
            value = compute(lock)
            if cls is not None and cls is not dict and not isinstance(value, cls):
                raise TypeError(f"compute() returned a {type(value).__name__}, expected {cls.__name__}")
            self.put(key, value)
            return value

    def delete(self, key: str) -> bool:
        """Remove the entry of `key`; True if there was one (always False in a folder without the marker)."""
        if not self.owns_root():
            return False
        try:
            self.path_for(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def evict(self, *, keep: Path | None = None) -> int:
        """Delete least-recently-used entries until the cache fits its cap; returns how many.

        Deletes nothing (returns 0) in a folder without the cache's marker file.
        """
        if self.max_bytes is None or not self.owns_root():
            return 0
        with self._evict_lock:
            entries, writing = self._scan()
            total = writing + sum(st.st_size for _, st in entries)  # temp files in progress take space too
            removed = 0
            if total <= self.max_bytes:
                return 0
            entries.sort(key=lambda e: (e[1].st_mtime_ns, e[0].name))
            for p, st in entries:
                if total <= self.max_bytes:
                    break
                if keep is not None and p == keep:
                    continue
                _unlink_quietly(p)
                total -= st.st_size
                removed += 1
            return removed

    def clear(self) -> None:
        """Delete every entry and temp file under the root (the root folder and its marker stay).

        Raises ValueError, deleting nothing, when the root exists without the cache's marker file.
        """
        try:
            shards = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        if not self.owns_root():
            raise ValueError(
                f"{self.root} is not a Boundary Atlas cache (no {CACHE_MARKER} marker file in it), so nothing "
                f"was deleted; point {CACHE_ENV} at a new or empty folder"
            )
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False) or len(shard.name) != 2:
                continue
            for f in os.scandir(shard.path):
                if f.name.endswith((".npz", _TMP_SUFFIX, LOCK_SUFFIX)):
                    _unlink_quietly(Path(f.path))
            with contextlib.suppress(OSError):
                os.rmdir(shard.path)

    # -- size -------------------------------------------------------------------------------

    def size_bytes(self) -> int:
        """Total bytes of all entries and of the temp files being written."""
        entries, writing = self._scan()
        return writing + sum(st.st_size for _, st in entries)

    def __len__(self) -> int:
        return len(self._entries())

    def stats(self) -> CacheStats:
        """Entry count, bytes, root and cap."""
        entries, writing = self._scan()
        return CacheStats(
            entries=len(entries),
            bytes=writing + sum(st.st_size for _, st in entries),
            root=self.root,
            max_bytes=self.max_bytes,
        )


def _tmp_prefix(key: str) -> str:
    """The start of a temp file's name: the key, this machine and the writer's pid, so upkeep can tell a killed
    writer's leftover (often tens of MB) from a file still being written."""
    return f".{key[:16]}.{_HOST}.{os.getpid()}-"


def _writer_gone(name: str) -> bool:
    """True when the temp file ``name`` names a writer process on this machine that no longer runs."""
    found = _TMP_WRITER.match(name)
    if found is None or found.group(1) != _HOST or os.name != "posix":  # os.kill(pid, 0) would kill on Windows
        return False
    pid = int(found.group(2))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it runs, as another user
        return False
    return False


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _replace(src: Path, dst: Path) -> None:
    """`os.replace`, retried briefly where another process holds `dst` open (Windows)."""
    for attempt in range(20):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if attempt == 19:
                raise
            time.sleep(0.01 * (attempt + 1))


# ---------------------------------------------------------------------------------------------
# process-wide default

_default_lock = threading.Lock()
_default: DiskCache | None = None
_root_override: Path | None = None


def set_cache_root(path: str | os.PathLike[str] | None) -> None:
    """Deprecated: the cache root is a per-deployment setting (`BOUNDARY_ATLAS_CACHE`), not something a page
    changes for the whole server process. Still uses `path` as the root of `default_cache()` from now on
    (None: back to the environment)."""
    warnings.warn(
        f"set_cache_root() is deprecated: set the cache folder with the {CACHE_ENV} environment variable",
        DeprecationWarning,
        stacklevel=2,
    )
    global _root_override
    with _default_lock:
        _root_override = Path(path).expanduser() if path is not None else None


def default_cache() -> DiskCache:
    """The process-wide cache for the current root setting and cap (rebuilt when they change)."""
    global _default
    with _default_lock:
        root = _root_override if _root_override is not None else default_cache_root()
        max_bytes = _env_max_bytes()
        if _default is None or _default.root != root or _default.max_bytes != max_bytes:
            _default = DiskCache(root, max_bytes=max_bytes)
        return _default
