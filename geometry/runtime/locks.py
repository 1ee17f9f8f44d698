"""One computation per cache entry at a time: a lock file beside the entry that dies with its owner.

    with EntryLock(cache.root / "ab" / "ab12….lock").hold(on_wait=...) as lock:
        ...  # re-check the cache, compute, store
        lock.report(0.4, "batch 4 of 10")  # what waiters show as the owner's progress

The lock is ``fcntl.flock`` on ``<key>.lock``: the kernel releases it when its owner's file is closed, which
includes the owner's process dying (SIGKILL too), so a waiter never waits on a dead owner. Two threads of one
process exclude each other as well (each opens the file itself, and flock locks belong to open files).

The owner deletes the lock file when it is done, while still holding it; a waiter that then gets the lock of the
deleted file notices (its inode is no longer the path's) and starts again, so at most one holder of a *current*
lock file exists. Waiting polls a non-blocking lock every ``poll_s`` seconds and calls ``on_wait`` each time, so a
caller can show progress, and stop waiting by raising (a Stop button, a cancel token).

Windows has no flock: there the lock does nothing (every request computes, as before).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_SUFFIX", "EntryLock", "OwnerProgress"]

LOCK_SUFFIX = ".lock"
_REPORT_EVERY_S = 0.25  # the owner writes its progress at most this often

OwnerProgress = tuple[float, str] | None
"""What the owner last reported: (fraction in [0, 1], message), or None before its first report."""


class EntryLock:
    """The lock file of one cache entry; `hold` waits for it and keeps it for a block."""

    def __init__(self, path: str | os.PathLike[str], *, poll_s: float = 0.1) -> None:
        self.path = Path(path)
        self.poll_s = float(poll_s)
        self._fd: int | None = None
        self._last_report = 0.0

    def __repr__(self) -> str:
        return f"EntryLock({str(self.path)!r}, held={self._fd is not None})"

    @contextlib.contextmanager
    def hold(self, on_wait: Callable[[float, OwnerProgress], None] | None = None) -> Iterator[EntryLock]:
        """Wait until no one else holds the lock, keep it for the block, then delete the file and release it.

        ``on_wait(seconds_waited, owner_progress)`` is called about every ``poll_s`` while another thread or
        process holds the lock; raising from it gives up waiting (the exception propagates, nothing is held).
        """
        self._acquire(on_wait)
        try:
            yield self
        finally:
            self._release()

    def report(self, fraction: float, message: str) -> None:
        """Publish the owner's progress for waiters (throttled; only while the lock is held)."""
        now = time.monotonic()
        if self._fd is None or (now - self._last_report < _REPORT_EVERY_S and fraction < 1.0):
            return
        self._last_report = now
        text = f"{float(fraction):.4f} {message}".encode("utf-8", "replace")[:512]
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, text, 0)

    def owner_progress(self) -> OwnerProgress:
        """The owner's last `report`, read from the lock file (None if nothing readable was written yet)."""
        try:
            text = self.path.read_bytes()[:512].decode("utf-8", "replace")
        except OSError:
            return None
        fraction, _, message = text.partition(" ")
        try:
            return min(max(float(fraction), 0.0), 1.0), message
        except ValueError:
            return None

    # -- the protocol --------------------------------------------------------------------------

    def _acquire(self, on_wait: Callable[[float, OwnerProgress], None] | None) -> None:
        if fcntl is None:
            return
        start = time.monotonic()
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # 0o666: group and others get what the umask allows, as for the entries (another user waits too)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError:  # a folder we may not write to: go on unlocked rather than fail the computation
                return
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if on_wait is not None:
                            on_wait(time.monotonic() - start, self.owner_progress())
                        time.sleep(self.poll_s)
                if _same_file(fd, self.path):
                    self._fd = fd
                    return
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the owner deleted the file we waited on: it finished; lock the current one

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                # Deleted while held, so the next caller creates a fresh file; waiters on this one start over.
                if _same_file(fd, self.path):
                    self.path.unlink()
        finally:
            os.close(fd)  # releases the flock


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path`` (not deleted or replaced meanwhile)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_ino, st.st_dev) == (own.st_ino, own.st_dev)
