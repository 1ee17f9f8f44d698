"""Identical requests at the same time compute once (threads of one server and separate processes), a killed
owner does not block anyone, and a killed computation leaves nothing half-written (issue 14, items 1 and 5)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from geometry.runtime.cache import DiskCache
from geometry.runtime.locks import EntryLock
from tests.reliability.memoized_work import call_in_process, runs, slow_square

N = 8
fork = multiprocessing.get_context("fork")  # a forked child needs no imports: cheap on a 2-core machine


@pytest.fixture
def cache(tmp_path: Path) -> DiskCache:
    return DiskCache(tmp_path / "cache")


def _wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_threads_making_the_same_call_compute_once(cache: DiskCache, tmp_path: Path) -> None:
    count = str(tmp_path / "runs.txt")
    results: list[int] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(int(slow_square(7, count_file=count, seconds=0.5, cache=cache)["y"]))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results == [49] * N
    assert runs(count) == 1
    assert len(cache) == 1
    assert not list(cache.root.rglob("*.lock")), "the owner deletes its lock file when done"


def test_processes_making_the_same_call_compute_once(cache: DiskCache, tmp_path: Path) -> None:
    count = str(tmp_path / "runs.txt")
    outs = [str(tmp_path / f"out{i}.txt") for i in range(N)]
    procs = [fork.Process(target=call_in_process, args=(str(cache.root), 7, count, 0.8, out)) for out in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * N
    assert [Path(o).read_text() for o in outs] == ["49"] * N
    assert runs(count) == 1


def test_waiters_see_the_owners_progress(cache: DiskCache, tmp_path: Path) -> None:
    count = str(tmp_path / "runs.txt")
    owner = threading.Thread(target=lambda: slow_square(3, count_file=count, seconds=1.5, cache=cache))
    owner.start()
    _wait_until(lambda: runs(count) == 1)
    seen: list[tuple[float, str]] = []
    value = slow_square(3, count_file=count, seconds=1.5, cache=cache, progress=lambda f, m: seen.append((f, m)))
    owner.join()
    assert int(value["y"]) == 9 and runs(count) == 1
    assert seen and all("already running" in m for _, m in seen)
    assert any("step" in m for _, m in seen), "the owner's own progress text reaches the waiter"


def test_a_cancelled_waiter_stops_waiting(cache: DiskCache, tmp_path: Path) -> None:
    from geometry.runtime.compute import Cancelled, CancelToken

    count = str(tmp_path / "runs.txt")
    owner = threading.Thread(target=lambda: slow_square(4, count_file=count, seconds=1.5, cache=cache))
    owner.start()
    _wait_until(lambda: runs(count) == 1)
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        slow_square(4, count_file=count, seconds=1.5, cache=cache, cancel=token)
    assert time.monotonic() - started < 1.2
    owner.join()
    assert runs(count) == 1


def test_a_killed_owner_lets_a_waiter_compute_and_leaves_no_partial_entry(cache: DiskCache, tmp_path: Path) -> None:
    count = str(tmp_path / "runs.txt")
    owner = fork.Process(target=call_in_process, args=(str(cache.root), 5, count, 60.0))
    owner.start()
    _wait_until(lambda: runs(count) == 1)
    results: list[int] = []
    waiter = threading.Thread(
        target=lambda: results.append(int(slow_square(5, count_file=count, seconds=0.2, cache=cache)["y"]))
    )
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive() and runs(count) == 1, "the waiter waits for the running computation"
    os.kill(owner.pid, signal.SIGKILL)
    owner.join(10)
    waiter.join(20)
    assert not waiter.is_alive()
    assert results == [25]
    assert runs(count) == 2, "the waiter computed once the owner was gone"
    assert len(cache) == 1
    assert not list(cache.root.rglob("*.tmp"))


def test_a_lock_deleted_under_a_waiter_is_taken_afresh(tmp_path: Path) -> None:
    """The owner deletes its lock file when done; the waiter, which waited on that (deleted) file, must then hold
    the lock of a file at the path, or a third caller creating a new file would become a second owner."""
    path = tmp_path / "k.lock"
    held = threading.Event()
    release = threading.Event()
    inode_held: list[int] = []

    def second() -> None:
        with EntryLock(path, poll_s=0.01).hold() as lock:
            inode_held.append(os.fstat(lock._fd).st_ino)
            held.set()
            release.wait(5)

    with EntryLock(path).hold():
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.1)
        assert not held.is_set(), "the second caller waits while the first holds the lock"
    assert held.wait(5)
    assert path.exists() and inode_held == [path.stat().st_ino]
    third = EntryLock(path, poll_s=0.01)
    with pytest.raises(TimeoutError), third.hold(on_wait=lambda waited, _owner: _raise_after(waited, 0.2)):
        pass
    release.set()
    t.join(5)
    assert not path.exists(), "the last holder deletes the file"


def _raise_after(waited: float, limit: float) -> None:
    if waited > limit:
        raise TimeoutError


def test_entries_and_locks_follow_the_umask(cache: DiskCache, tmp_path: Path) -> None:
    """Not 0600 (mkstemp's mode): a second OS user of a shared cache can read what the first computed."""
    from geometry.runtime.cache import _umask

    expected = 0o666 & ~_umask()
    assert expected & 0o044 == 0o044 & ~_umask(), "group and others may read where the umask allows"
    count = str(tmp_path / "runs.txt")
    lock_path = cache.lock(slow_square.key(1, count_file=count)).path
    lock_modes: list[int] = []

    def watch() -> None:
        _wait_until(lock_path.exists)
        lock_modes.append(stat.S_IMODE(lock_path.stat().st_mode))

    watcher = threading.Thread(target=watch)
    watcher.start()
    slow_square(1, count_file=count, seconds=0.3, cache=cache)
    watcher.join(5)
    entry = cache.path_for(slow_square.key(1, count_file=count))
    assert stat.S_IMODE(entry.stat().st_mode) == expected
    assert lock_modes == [expected]
    assert stat.S_IMODE((cache.root / ".boundary-atlas-cache").stat().st_mode) == expected


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.95])
def test_a_truncated_entry_is_dropped_and_recomputed(cache: DiskCache, tmp_path: Path, keep: float) -> None:
    count = str(tmp_path / "runs.txt")
    assert int(slow_square(6, count_file=count, seconds=0.0, cache=cache)["y"]) == 36
    entry = cache.path_for(slow_square.key(6, count_file=count))
    data = entry.read_bytes()
    entry.write_bytes(data[: int(len(data) * keep)])
    assert int(slow_square(6, count_file=count, seconds=0.0, cache=cache)["y"]) == 36
    assert runs(count) == 2, "the damaged entry was not used"
    assert entry.read_bytes() == data, "and a whole entry replaced it"
