"""Which files the app may touch for a user: allowed roots for typed paths, a private folder for uploads, and the
operator's opt-in for model files that run code (TorchScript).

The library itself reads whatever path its Python caller names (the caller already has the process's rights);
these checks are for the app, where a remote user types a path or uploads a file.

Settings (environment variables, per deployment):

- ``BOUNDARY_ATLAS_ALLOWED_ROOTS``: folders whose files a typed path may name, separated by ``os.pathsep``
  (``:`` on Linux/macOS); default: the user's home folder and the working directory.
- ``BOUNDARY_ATLAS_ALLOW_CODE=1``: accept uploaded TorchScript archives (loading one runs the code inside it).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from geometry.runtime.errors import os_error_sentence

__all__ = [
    "ALLOWED_ROOTS_ENV",
    "ALLOW_CODE_ENV",
    "allowed_roots",
    "check_allowed_path",
    "code_uploads_allowed",
    "save_upload",
]

ALLOWED_ROOTS_ENV = "BOUNDARY_ATLAS_ALLOWED_ROOTS"
ALLOW_CODE_ENV = "BOUNDARY_ATLAS_ALLOW_CODE"


def allowed_roots() -> tuple[Path, ...]:
    """The folders typed paths must lie in, resolved (symlinks followed): ``$BOUNDARY_ATLAS_ALLOWED_ROOTS``,
    else the user's home folder and the working directory."""
    env = os.environ.get(ALLOWED_ROOTS_ENV, "").strip()
    if env:
        return tuple(Path(p).expanduser().resolve() for p in env.split(os.pathsep) if p.strip())
    return (Path.home().resolve(), Path.cwd().resolve())


def check_allowed_path(path: str | os.PathLike[str]) -> Path:
    """``path`` resolved (``~``, ``..`` and symlinks followed) if it lies inside one of `allowed_roots`.

    Raises ValueError otherwise, before anything at the path is read; the message names the setting and the
    roots, never what the path's folder holds (nor whether it exists).
    """
    try:
        resolved = Path(path).expanduser().resolve()
    except OSError as err:  # e.g. /proc/1/cwd: a link the server may not follow
        raise ValueError(os_error_sentence(err, "open", path)) from None
    roots = allowed_roots()
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    raise ValueError(
        f"{os.fspath(path)!r} is outside the folders this server lets the app read "
        f"({', '.join(map(str, roots)) or 'none'}); the operator can allow more with {ALLOWED_ROOTS_ENV} "
        f"(folders separated by {os.pathsep!r})"
    )


def code_uploads_allowed() -> bool:
    """Whether the operator accepts uploaded TorchScript archives (``BOUNDARY_ATLAS_ALLOW_CODE=1``)."""
    return os.environ.get(ALLOW_CODE_ENV, "").strip().lower() in ("1", "true", "yes")


_upload_lock = threading.Lock()
_upload_dir: Path | None = None


def _private_upload_dir() -> Path:
    """This process's upload folder: made by `tempfile.mkdtemp` (mode 0700, unpredictable name), removed at exit."""
    global _upload_dir
    with _upload_lock:
        if _upload_dir is None or not _upload_dir.is_dir():
            _upload_dir = Path(tempfile.mkdtemp(prefix="boundary-atlas-uploads-"))
            atexit.register(shutil.rmtree, _upload_dir, True)
        return _upload_dir


def save_upload(data: bytes, filename: str) -> tuple[str, str]:
    """Store uploaded bytes in the process's private upload folder; returns (sha256 hex, path).

    The file is named ``<sha256[:16]>-<name>`` with the client's name cut to its last component and to safe
    characters, so equal bytes give the same path and no client name leaves the folder.
    """
    digest = hashlib.sha256(data).hexdigest()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(str(filename)).name)[-100:].lstrip(".") or "upload"
    path = _private_upload_dir() / f"{digest[:16]}-{name}"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return digest, str(path)
