"""ruff owns formatting and lint: the tree is `ruff format`-clean and `ruff check`-clean (docs/DESIGN.md §10)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is installed by requirements-dev.txt")
@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(command):
    done = subprocess.run([RUFF, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_formatter_escape_hatches():
    """No formatter escape hatches (fmt: skip / off): the formatter's output is the style."""
    hatch = re.compile(r"#\s*fmt:\s*(skip|off|on)\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("geometry", "ui", "views", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if path != Path(__file__).resolve()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if hatch.search(line)
    ]
    assert offenders == []
