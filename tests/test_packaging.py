"""pyproject.toml builds and installs the library: an editable install into a new virtual environment imports
`geometry` from outside the checkout, finds the built-in weights and runs ``python -m geometry``; the wheel holds the
library and nothing of the app. Offline: ``--no-deps --no-build-isolation --no-index``, with this interpreter's
packages (torch, setuptools, ...) made visible to the new environment through a ``.pth`` file and this interpreter's
pip driving it (``pip --python``), so nothing is downloaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # two pip runs and a torch import in a new process: about 20-40 s


def _checkout_copy(dest: Path) -> Path:
    """The files a build reads, copied so that building leaves nothing in the real checkout."""
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "geometry", src / "geometry", ignore=ignore)
    shutil.copytree(ROOT / "assets", src / "assets", ignore=ignore)
    return src


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONNOUSERSITE": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _pip(python: Path) -> list[str]:
    """This interpreter's pip, acting on the environment of ``python``."""
    return [sys.executable, "-m", "pip", "--python", str(python)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(python of a new venv with an editable install of a copy of the checkout, that copy)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = _checkout_copy(tmp)
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)  # no setuptools of its own: the build uses this one's
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp).stdout.strip())
    # After the venv's own site-packages: this interpreter's dependencies (torch, numpy, ...), never its geometry.
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "zz_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run([*_pip(python), "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", str(src)], tmp)
    return python, src


def test_an_editable_install_imports_geometry_from_anywhere_and_finds_the_builtin_weights(installed, tmp_path):
    python, src = installed
    probe = (
        "import json, importlib.metadata as md, geometry\n"
        "from geometry.models.cards import ASSETS\n"
        "h = geometry.load_model('digits-cnn-silu', device='cpu')\n"
        "print(json.dumps({'file': geometry.__file__, 'assets': str(ASSETS), 'models': geometry.builtin_models(),\n"
        "  'classes': len(h.class_names), 'dist': str(md.distribution('boundary-atlas').locate_file(''))}))\n"
    )
    out = json.loads(_run([str(python), "-c", probe], tmp_path).stdout.strip().splitlines()[-1])
    assert Path(out["file"]) == src / "geometry" / "__init__.py"  # the install's copy, not this checkout
    assert Path(out["assets"]) == src / "assets" / "models"
    assert "digits-cnn-silu" in out["models"] and out["classes"] == 10
    assert Path(out["dist"]).resolve().is_relative_to(python.parent.parent.resolve())  # installed in the new venv
    cli = _run([str(python), "-m", "geometry", "--help"], tmp_path)
    assert cli.stdout.startswith("usage: python -m geometry")
    script = _run([str(python.parent / "boundary-atlas"), "--help"], tmp_path)
    assert script.stdout == cli.stdout


def test_the_wheel_holds_the_library_and_its_pinned_dependencies_only(installed, tmp_path):
    python, src = installed
    build = [*_pip(python), "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path)]
    _run([*build, str(src)], tmp_path)
    (wheel,) = tmp_path.glob("boundary_atlas-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("boundary_atlas-")}
    assert top == {"geometry"}  # no ui/, views/, tests/, bench/: the app runs from the checkout
    for module in ("geometry/__main__.py", "geometry/runtime/memo.py", "geometry/boundary/deepfool.py"):
        assert module in names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [ln for ln in zipfile.ZipFile(wheel).read(meta).decode().splitlines() if ln.startswith("Requires-Dist")]
    pins = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    assert sorted(r.split(": ", 1)[1].replace(" ", "") for r in requires) == sorted(pins)
