"""DiskCache: keys, round trips, corruption recovery, atomicity across processes, LRU eviction."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from geometry.runtime import cache as cache_mod
from geometry.runtime.cache import CacheStats, DiskCache, cache_key, default_cache, set_cache_root
from geometry.runtime.fingerprint import module_fingerprint, tensor_fingerprint


@dataclass(frozen=True)
class SliceResult:
    """A stand-in for a real result: every kind of field the cache supports."""

    logits: torch.Tensor  # (H, W) float32
    labels: np.ndarray  # (H, W) int64
    grid: tuple[float, float]
    name: str
    margin: float
    steps: int
    converged: bool
    note: str | None
    residuals: list[float]
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OtherResult:
    logits: torch.Tensor


def _result(seed: int = 0, size: int = 8) -> SliceResult:
    g = torch.Generator().manual_seed(seed)
    return SliceResult(
        logits=torch.randn(size, size, generator=g),
        labels=np.arange(size * size, dtype=np.int64).reshape(size, size),
        grid=(-1.5, 2.0),
        name="slice",
        margin=0.125,
        steps=7,
        converged=True,
        note=None,
        residuals=[1.0, 0.5, float("inf")],
        info={"classes": ["cat", "dog"], "nested": {"k": 3, "t": (1, 2)}},
    )


def _assert_same(a: SliceResult, b: SliceResult) -> None:
    assert isinstance(b.logits, torch.Tensor) and b.logits.dtype == torch.float32
    assert torch.equal(a.logits, b.logits)
    assert isinstance(b.labels, np.ndarray) and b.labels.dtype == np.int64
    np.testing.assert_array_equal(a.labels, b.labels)
    for f in ("grid", "name", "margin", "steps", "converged", "note", "residuals", "info"):
        assert getattr(a, f) == getattr(b, f), f
        assert type(getattr(a, f)) is type(getattr(b, f)), f


def _key(**params: object) -> str:
    return cache_key("slice2d", "1", model="m" * 16, inputs="x" * 16, params=params)


@pytest.fixture
def cache(tmp_path: Path) -> DiskCache:
    return DiskCache(tmp_path / "cache", max_bytes=10 * 2**20)


def _files(root: Path) -> list[str]:
    """Entry and temp files under root (the cache's own marker file is layout, not an entry)."""
    return sorted(p.name for p in root.rglob("*") if p.is_file() and p.name != cache_mod.CACHE_MARKER)


# -- keys --------------------------------------------------------------------------------------


def test_cache_key_is_canonical() -> None:
    k = cache_key("f", "1", params={"a": 1, "b": [1, 2.5], "c": {"y": None, "x": True}})
    assert len(k) == 64 and int(k, 16) >= 0
    assert k == cache_key("f", "1", params={"c": {"x": True, "y": None}, "b": (1, 2.5), "a": 1})
    assert k == cache_key(
        "f", "1", params={"a": np.int64(1), "b": [1, np.float64(2.5)], "c": {"y": None, "x": np.bool_(True)}}
    )
    assert k != cache_key("f", "2", params={"a": 1, "b": [1, 2.5], "c": {"y": None, "x": True}})
    assert k != cache_key("f", "1", params={"a": 2, "b": [1, 2.5], "c": {"y": None, "x": True}})
    assert cache_key("f", "1", params={"a": 1}) != cache_key("f", "1", params={"a": True})
    assert cache_key("f", "1", params={"a": 1}) != cache_key("f", "1", params={"a": 1.0})
    assert cache_key("f", "1", model="m") != cache_key("f", "1", inputs="m")


def test_cache_key_rejects_tensors_and_objects() -> None:
    with pytest.raises(TypeError, match=r"params\[x\] is a Tensor; pass a fingerprint"):
        cache_key("f", "1", params={"x": torch.zeros(3)})
    with pytest.raises(TypeError, match=r"params\[opts.w\[1\]\] is a ndarray; pass a fingerprint"):
        cache_key("f", "1", params={"opts": {"w": [0, np.zeros(2)]}})
    with pytest.raises(TypeError, match=r"params\[m\] is a Linear; expected int, float"):
        cache_key("f", "1", params={"m": nn.Linear(1, 1)})
    with pytest.raises(TypeError, match="non-str key 1"):
        cache_key("f", "1", params={"d": {1: "a"}})
    with pytest.raises(TypeError, match="model must be a str or None"):
        cache_key("f", "1", model=torch.zeros(1))  # type: ignore[arg-type]


def test_bad_key_rejected(cache: DiskCache) -> None:
    with pytest.raises(ValueError, match="lowercase hex string"):
        cache.get("../../etc/passwd")


# -- hits and misses ---------------------------------------------------------------------------


def test_round_trip_dataclass(cache: DiskCache) -> None:
    key = _key(resolution=8)
    assert cache.get(key, SliceResult) is None
    r = _result()
    assert cache.put(key, r)
    got = cache.get(key, SliceResult)
    assert isinstance(got, SliceResult)
    _assert_same(r, got)
    as_dict = cache.get(key)
    assert isinstance(as_dict, dict) and set(as_dict) == {
        "logits",
        "labels",
        "grid",
        "name",
        "margin",
        "steps",
        "converged",
        "note",
        "residuals",
        "info",
    }
    assert key in cache and len(cache) == 1
    assert Path(cache.path_for(key)).parent.name == key[:2]


def test_round_trip_plain_dict_and_odd_values(cache: DiskCache) -> None:
    key = _key(kind="dict")
    value = {
        "bf16": torch.randn(4).bfloat16(),
        "empty": torch.empty(0, 3),
        "scalar": np.float32(0.25),
        "flags": np.array([True, False]),
        "nan": float("nan"),
        "strs": ("a", "b"),
    }
    cache.put(key, value)
    got = cache.get(key)
    assert got is not None
    assert got["bf16"].dtype == torch.bfloat16 and torch.equal(got["bf16"], value["bf16"])
    assert got["empty"].shape == (0, 3)
    assert isinstance(got["scalar"], np.float32) and got["scalar"] == np.float32(0.25)
    np.testing.assert_array_equal(got["flags"], value["flags"])
    assert np.isnan(got["nan"]) and got["strs"] == ("a", "b")


def test_unstorable_values_rejected_before_writing(cache: DiskCache) -> None:
    with pytest.raises(TypeError, match="cannot cache model: Linear is not an array"):
        cache.put(_key(), {"model": nn.Linear(1, 1)})
    with pytest.raises(TypeError, match="arrays of dtype object would need pickle"):
        cache.put(_key(), {"obj": np.array([{}, 1], dtype=object)})
    with pytest.raises(TypeError, match="expected a dataclass instance or a dict"):
        cache.put(_key(), [1, 2])
    assert _files(cache.root) == []


def test_miss_when_params_or_model_fingerprint_change(cache: DiskCache) -> None:
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    x = torch.rand(3, 4)
    calls = []

    def compute() -> SliceResult:
        calls.append(1)
        return _result()

    def key_for(model: nn.Module, res: int) -> str:
        return cache_key(
            "slice2d",
            "1",
            model=module_fingerprint("lin", model),
            inputs=tensor_fingerprint(x),
            params={"resolution": res},
        )

    cache.get_or_compute(key_for(net, 8), compute, SliceResult)
    cache.get_or_compute(key_for(net, 8), compute, SliceResult)
    assert len(calls) == 1  # hit
    cache.get_or_compute(key_for(net, 16), compute, SliceResult)
    assert len(calls) == 2  # params changed
    changed = copy.deepcopy(net)
    with torch.no_grad():
        changed.weight[0, 0] += 1e-4
    cache.get_or_compute(key_for(changed, 8), compute, SliceResult)
    assert len(calls) == 3  # one weight changed
    assert len(cache) == 3


def test_get_or_compute_returns_same_on_hit(cache: DiskCache) -> None:
    key = _key()
    first = cache.get_or_compute(key, _result, SliceResult)
    second = cache.get_or_compute(key, lambda: pytest.fail("should be a hit"), SliceResult)
    _assert_same(first, second)


def test_get_or_compute_checks_the_computed_type(cache: DiskCache) -> None:
    with pytest.raises(TypeError, match="compute\\(\\) returned a dict, expected SliceResult"):
        cache.get_or_compute(_key(), lambda: {"a": 1}, SliceResult)
    assert len(cache) == 0


# -- failures leave nothing behind -------------------------------------------------------------


def test_compute_raising_stores_nothing(cache: DiskCache) -> None:
    def boom() -> SliceResult:
        raise ValueError("expected an image of 3x32x32 in [0,1], got 1x28x28")

    with pytest.raises(ValueError, match="expected an image"):
        cache.get_or_compute(_key(), boom, SliceResult)
    assert len(cache) == 0 and not any(n.endswith(".tmp") for n in _files(cache.root))


def test_failed_write_leaves_no_temp_file(cache: DiskCache, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_savez(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        cache.put(_key(), _result())
    assert _files(cache.root) == []


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncate", "empty"],
)
def test_corrupt_entry_is_dropped_and_recomputed(cache: DiskCache, damage: str) -> None:
    key = _key()
    cache.put(key, _result())
    path = cache.path_for(key)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a zip file" * 10)
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")
    assert cache.get(key, SliceResult) is None
    assert not path.exists()
    calls = []
    got = cache.get_or_compute(key, lambda: calls.append(1) or _result(), SliceResult)
    assert calls == [1]
    _assert_same(_result(), got)
    _assert_same(_result(), cache.get(key, SliceResult))  # rewritten


def test_class_mismatch_or_missing_fields_is_a_miss(cache: DiskCache) -> None:
    key = _key()
    cache.put(key, OtherResult(logits=torch.zeros(2)))
    assert cache.get(key, SliceResult) is None
    assert key not in cache
    # a dict with only some of the fields, stored where a SliceResult is expected
    cache.put(key, {"logits": torch.zeros(2)})
    assert cache.get(key, SliceResult) is None
    assert key not in cache


def test_entry_under_wrong_key_is_a_miss(cache: DiskCache) -> None:
    k1, k2 = _key(a=1), _key(a=2)
    cache.put(k1, _result())
    cache.path_for(k2).parent.mkdir(parents=True, exist_ok=True)
    os.replace(cache.path_for(k1), cache.path_for(k2))
    assert cache.get(k2, SliceResult) is None


def test_entries_contain_no_pickles(cache: DiskCache) -> None:
    key = _key()
    cache.put(key, _result())
    with np.load(cache.path_for(key), allow_pickle=False) as z:
        for name in z.files:
            assert z[name].dtype != object


# -- eviction ----------------------------------------------------------------------------------


def test_lru_eviction_drops_least_recently_read(tmp_path: Path) -> None:
    probe = DiskCache(tmp_path / "probe", unlimited=True)
    probe.put(_key(), _result(size=64))
    entry = probe.size_bytes()
    cache = DiskCache(tmp_path / "lru", max_bytes=int(3.5 * entry))
    keys = [_key(i=i) for i in range(4)]
    for i, k in enumerate(keys[:3]):
        cache.put(k, _result(seed=i, size=64))
        os.utime(cache.path_for(k), ns=(10**18 + i * 10**9,) * 2)  # distinct, increasing ages
    assert cache.get(keys[0], SliceResult) is not None  # keys[0] is now the most recent
    cache.put(keys[3], _result(seed=3, size=64))
    assert [k in cache for k in keys] == [True, False, True, True]
    assert cache.size_bytes() <= cache.max_bytes


def test_entry_larger_than_cap_is_not_stored(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=1024)
    assert cache.put(_key(), _result(size=64)) is False
    assert _files(tmp_path) == []


def test_clear_stats_and_len(cache: DiskCache) -> None:
    for i in range(3):
        cache.put(_key(i=i), _result(seed=i))
    s = cache.stats()
    assert isinstance(s, CacheStats)
    assert s.entries == 3 == len(cache) and s.bytes == cache.size_bytes() > 0
    assert s.root == cache.root
    cache.clear()
    assert len(cache) == 0 and cache.size_bytes() == 0 and _files(cache.root) == []


def test_bad_max_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="max_bytes must be a positive int, got 0"):
        DiskCache(tmp_path, max_bytes=0)
    monkeypatch.setenv("BOUNDARY_ATLAS_CACHE_MAX_MB", "lots")
    with pytest.raises(ValueError, match="BOUNDARY_ATLAS_CACHE_MAX_MB='lots' is not a number"):
        DiskCache(tmp_path)


# -- only the cache's own folders are ever cleaned -------------------------------------------------


def _someone_elses_folder(root: Path) -> list[Path]:
    """A folder that looks like a cache (two-letter subfolders of .npz and old .tmp files) but was not made by one."""
    files = []
    for shard in ("ab", "cd"):
        (root / shard).mkdir(parents=True)
        for name in (f"{shard * 32}.npz", "results.npz", ".x-1.tmp"):
            path = root / shard / name
            np.savez(path, a=np.arange(3)) if name.endswith(".npz") else path.write_bytes(b"half")
            os.utime(path, (1, 1))  # very old: stale by any rule
            files.append(path)
    return files


def test_upkeep_never_deletes_in_a_folder_without_the_marker(tmp_path: Path) -> None:
    files = _someone_elses_folder(tmp_path / "photos")
    cache = DiskCache(tmp_path / "photos", max_bytes=1)
    assert cache.evict() == 0
    assert len(cache) == 4 and cache.stats().entries == 4  # counting reads only
    with pytest.raises(ValueError, match=r"not a Boundary Atlas cache.*no \.boundary-atlas-cache marker.*nothing"):
        cache.clear()
    assert cache.get("ab" * 32) is None  # not an entry of ours: a miss, and (below) not deleted as corrupt
    assert not cache.delete("ab" * 32)
    assert all(p.exists() for p in files)
    assert not (tmp_path / "photos" / cache_mod.CACHE_MARKER).exists()


def test_the_cache_marks_the_root_it_creates_and_cleans_only_there(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "new" / "cache", max_bytes=10 * 2**20)
    cache.put(_key(), _result())
    assert (cache.root / cache_mod.CACHE_MARKER).is_file()
    stale = cache.path_for(_key()).parent / ".old-1.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (1, 1))
    assert len(cache) == 1 and not stale.exists()  # stale temp files are cleaned in our own cache
    cache.clear()
    assert len(cache) == 0 and (cache.root / cache_mod.CACHE_MARKER).is_file()


def _temp_of(cache: DiskCache, key: str, pid: int, size: int) -> Path:
    """A fresh temp file of ``size`` bytes named as the writer ``pid`` on this machine names it."""
    path = cache.path_for(key).parent / f".{key[:16]}.{cache_mod._HOST}.{pid}-abc123.tmp"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    return path


def test_a_killed_writers_temp_file_is_removed_and_a_running_ones_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 6: a writer killed mid-write left a 50-75 MB .tmp that the size cap ignored for an hour."""
    prefixes: list[str] = []
    mkstemp = cache_mod.tempfile.mkstemp
    monkeypatch.setattr(cache_mod.tempfile, "mkstemp", lambda **kw: prefixes.append(kw["prefix"]) or mkstemp(**kw))
    cache = DiskCache(tmp_path / "cache", max_bytes=10 * 2**20)
    key = _key()
    cache.put(key, _result())
    assert prefixes[-1] == f".{key[:16]}.{cache_mod._HOST}.{os.getpid()}-"  # the writer's pid is in the name
    entry = cache.size_bytes()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a writer that has exited
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        killed = _temp_of(cache, key, gone.pid, 3 * 2**20)
        alive = _temp_of(cache, key, running.pid, 2 * 2**20)
        ours = _temp_of(cache, key, os.getpid(), 2**20)
        assert cache.size_bytes() == entry + 3 * 2**20  # the running writers' temp files count, the dead one is gone
        assert not killed.exists() and alive.exists() and ours.exists()
        assert cache.stats().bytes == entry + 3 * 2**20 and len(cache) == 1
        running.kill()
        running.wait()
        assert cache.size_bytes() == entry + 2**20 and not alive.exists()  # its writer was killed meanwhile
    finally:
        running.kill()
        running.wait()


def test_temp_files_being_written_push_entries_out_under_the_cap(tmp_path: Path) -> None:
    probe = DiskCache(tmp_path / "probe", unlimited=True)
    probe.put(_key(i=0), _result())
    size = probe.size_bytes()
    cache = DiskCache(tmp_path / "capped", max_bytes=3 * size)
    cache.put(_key(i=1), _result())
    _temp_of(cache, _key(i=2), os.getpid(), 2 * size)  # another result being written
    cache.put(_key(i=2), _result())  # 2 entries + the temp file = 4 entries' worth > the cap: the oldest goes
    assert _key(i=1) not in cache and _key(i=2) in cache


def test_an_empty_existing_folder_becomes_a_cache(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=10 * 2**20)
    cache.put(_key(), _result())
    cache.clear()
    assert len(cache) == 0


# -- the process-wide default ------------------------------------------------------------------


def test_default_cache_follows_env_and_sidebar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "_root_override", None)
    monkeypatch.setenv("BOUNDARY_ATLAS_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("BOUNDARY_ATLAS_CACHE_MAX_MB", "5")
    c1 = default_cache()
    assert c1.root == tmp_path / "a" and c1.max_bytes == 5 * 2**20
    assert default_cache() is c1
    monkeypatch.setenv("BOUNDARY_ATLAS_CACHE", str(tmp_path / "b"))
    assert default_cache().root == tmp_path / "b"
    set_cache_root(tmp_path / "c")
    try:
        assert default_cache().root == tmp_path / "c"
    finally:
        set_cache_root(None)
    assert default_cache().root == tmp_path / "b"


def test_default_root_without_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BOUNDARY_ATLAS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_mod.default_cache_root() == tmp_path / "boundary-atlas" / "results"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_mod.default_cache_root() == Path.home() / ".cache" / "boundary-atlas" / "results"


# -- concurrency -------------------------------------------------------------------------------


# Each writer is a fresh interpreter that loads only geometry/cache.py (not the whole package, not
# torch), so starting three of them takes well under a second.
_WRITER = """
import importlib.util, pathlib, sys, time
import numpy as np

spec = importlib.util.spec_from_file_location("cache_under_test", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
root, key, rounds, ready, go = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
value = {"logits": np.random.default_rng(0).standard_normal((96, 96)).astype(np.float32),
         "labels": np.arange(96 * 96).reshape(96, 96), "grid": (-1.5, 2.0), "name": "slice"}
cache = mod.DiskCache(root, max_bytes=10 * 2**20)
pathlib.Path(ready).touch()
deadline = time.monotonic() + 60
while not pathlib.Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.001)
for _ in range(rounds):
    cache.put(key, value)
    got = cache.get(key)
    if got is None or not np.array_equal(got["logits"], value["logits"]) or got["grid"] != (-1.5, 2.0):
        sys.exit("a reader saw a missing or half-written entry")
"""


def test_processes_writing_same_key_at_once(tmp_path: Path) -> None:
    root, sync = tmp_path / "cache", tmp_path / "sync"
    sync.mkdir()
    key = _key(concurrent=True)
    n = 3
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                cache_mod.__file__,
                str(root),
                key,
                "200",
                str(sync / f"ready{i}"),
                str(sync / "go"),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((sync / f"ready{i}").exists() for i in range(n)):
            assert all(p.poll() is None for p in procs), "a writer died while starting"
            assert time.monotonic() < deadline, "writers did not start"
            time.sleep(0.01)
        (sync / "go").touch()  # all writers start hammering the same key at once
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * n, errors
    got = DiskCache(root).get(key)
    assert got is not None
    expected = np.random.default_rng(0).standard_normal((96, 96)).astype(np.float32)
    np.testing.assert_array_equal(got["logits"], expected)
    np.testing.assert_array_equal(got["labels"], np.arange(96 * 96).reshape(96, 96))
    assert _files(root) == [f"{key}.npz"]  # one entry, no temp files
