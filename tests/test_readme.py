"""README's library example runs as written and prints what its comments promise."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "README should have exactly one python example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102 - our own README
    lines = out.getvalue().splitlines()
    accuracy = float(lines[0])
    assert 0.98 <= accuracy <= 0.99  # the model card says 98.67% on this split
    rows, cols, evaluations = map(int, re.fullmatch(r"\((\d+), (\d+)\) (\d+)", lines[-1]).groups())
    assert (rows, cols) == (512, 512)
    assert 1_000 < evaluations < 512 * 512 // 5  # "about 9,000": the adaptive grid's saving is real
