"""Files and folders are the user's own: paths typed into the app stay inside the operator's roots; uploads are
private; TorchScript (which runs code) is refused from uploads unless the operator opts in."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from torch import nn

import geometry
from geometry.runtime import paths


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An allowed root and a secret folder beside it (outside every allowed root)."""
    allowed, secret = tmp_path / "allowed", tmp_path / "secret"
    (allowed / "data").mkdir(parents=True)
    (secret / "passwords-folder").mkdir(parents=True)
    (secret / "id_rsa").write_text("key")
    monkeypatch.setenv(paths.ALLOWED_ROOTS_ENV, os.pathsep.join([str(allowed), str(tmp_path / "also")]))
    return allowed, secret


def test_allowed_roots_come_from_the_environment(roots):
    allowed, _ = roots
    assert paths.allowed_roots() == (allowed.resolve(), (allowed.parent / "also").resolve())


def test_default_roots_are_home_and_the_working_directory(monkeypatch):
    monkeypatch.delenv(paths.ALLOWED_ROOTS_ENV, raising=False)
    assert paths.allowed_roots() == (Path.home().resolve(), Path.cwd().resolve())


def test_a_path_inside_a_root_is_returned_resolved(roots):
    allowed, _ = roots
    assert paths.check_allowed_path(str(allowed / "data" / ".." / "data")) == (allowed / "data").resolve()


def test_a_path_outside_every_root_is_refused_without_listing_it(roots):
    _, secret = roots
    with pytest.raises(ValueError, match=rf"outside the folders .*{paths.ALLOWED_ROOTS_ENV}") as err:
        paths.check_allowed_path(str(secret))
    assert "id_rsa" not in str(err.value) and "passwords-folder" not in str(err.value)
    with pytest.raises(ValueError, match="outside the folders"):
        paths.check_allowed_path(str(roots[0] / ".." / "secret" / "id_rsa"))  # .. does not climb out


def test_a_symlink_inside_a_root_to_outside_is_refused(roots):
    allowed, secret = roots
    (allowed / "link").symlink_to(secret, target_is_directory=True)
    with pytest.raises(ValueError, match="outside the folders"):
        paths.check_allowed_path(str(allowed / "link" / "id_rsa"))


def test_a_root_that_is_a_prefix_of_another_name_does_not_allow_it(roots, tmp_path):
    (tmp_path / "allowed-not").mkdir()
    with pytest.raises(ValueError, match="outside the folders"):
        paths.check_allowed_path(str(tmp_path / "allowed-not"))


def test_uploads_go_to_a_private_folder(tmp_path):
    digest, path = paths.save_upload(b"weights", "../../etc/model.pt")
    saved = Path(path)
    assert saved.read_bytes() == b"weights" and saved.name.endswith("-model.pt")  # no path from the client's name
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert saved.parent.name.startswith("boundary-atlas-uploads-")
    assert paths.save_upload(b"weights", "model.pt") == (digest, path)  # the same bytes, the same file


def _scripted(tmp_path: Path) -> Path:
    path = tmp_path / "model.ts"
    torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()).save(str(path))
    return path


@pytest.mark.filterwarnings("ignore:`torch.jit.[a-z]*` is deprecated:FutureWarning")
def test_torchscript_is_refused_without_the_opt_in(tmp_path, monkeypatch):
    path = _scripted(tmp_path)
    monkeypatch.delenv(paths.ALLOW_CODE_ENV, raising=False)
    with pytest.raises(ValueError, match=rf"runs the code inside it.*{paths.ALLOW_CODE_ENV}=1"):
        geometry.load_model(path, input_shape=(1, 2, 2), allow_code=False, device="cpu")
    assert paths.code_uploads_allowed() is False
    monkeypatch.setenv(paths.ALLOW_CODE_ENV, "1")
    assert paths.code_uploads_allowed() is True
    handle = geometry.load_model(path, input_shape=(1, 2, 2), allow_code=paths.code_uploads_allowed(), device="cpu")
    assert handle.num_classes == 2
