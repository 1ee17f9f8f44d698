"""OS errors as sentences: what could not be done, to which file, and why in words (no errno, no traceback).

``could not read the folder '/proc/1/cwd': the server may not read it (permission denied)``.
"""

from __future__ import annotations

import errno
import os

__all__ = ["os_error_sentence"]

_WHY = {
    errno.EACCES: "the server may not read it (permission denied)",
    errno.EPERM: "the server may not read it (operation not permitted)",
    errno.ENOENT: "it does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ELOOP: "it is a loop of symbolic links",
    errno.ENAMETOOLONG: "the path is too long",
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EIO: "the disk reported an input/output error",
}


def os_error_sentence(err: OSError, what: str, path: str | os.PathLike[str]) -> str:
    """``"could not {what} {path!r}: {why}"`` for an OSError (``what``: "read the folder", "open the model file").

    Names only ``path`` itself, never what a folder holds.
    """
    why = _WHY.get(err.errno or -1) or (err.strerror or type(err).__name__).lower()
    return f"could not {what} {os.fspath(path)!r}: {why}"
