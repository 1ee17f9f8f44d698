"""geometry.runtime.memo: the one memoisation API. Keys follow the whole call and the code's version."""

from __future__ import annotations

import dataclasses
import importlib
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from geometry.runtime.cache import DiskCache
from geometry.runtime.memo import code_version, fingerprint_arguments, memoize


@dataclasses.dataclass(frozen=True)
class Options:
    steps: int = 3
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class Out:
    total: torch.Tensor  # (N,)
    steps: int


calls: list[int] = []


@memoize
def total(x: torch.Tensor, *, options: Options = Options(), progress=None, cancel=None) -> Out:
    calls.append(1)
    if progress is not None:
        progress(1.0, "done")
    return Out(total=x.sum(dim=1) * options.scale * options.steps, steps=options.steps)


class Fingerprinted:
    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint


@pytest.fixture
def cache(tmp_path):
    calls.clear()
    return DiskCache(tmp_path / "cache")


def test_a_second_call_reads_the_cache_and_rebuilds_the_result_type(cache):
    x = torch.arange(6.0).reshape(2, 3)
    first = total(x, cache=cache)
    second = total(x, cache=cache)
    assert len(calls) == 1
    assert isinstance(second, Out) and second.steps == 3
    torch.testing.assert_close(second.total, first.total)
    torch.testing.assert_close(second.total, torch.tensor([9.0, 36.0]))


def test_progress_and_cancel_are_not_part_of_the_key(cache):
    x = torch.ones(2, 2)
    seen = []
    total(x, progress=lambda f, t: seen.append(f), cache=cache)
    total(x, progress=None, cancel=object(), cache=cache)
    assert len(calls) == 1 and seen == [1.0]
    assert total.key(x, progress=print) == total.key(x)


def test_is_cached_answers_without_computing(cache):
    x = torch.ones(3, 2)
    assert not total.is_cached(x, cache=cache)
    assert total.cached(x, cache=cache) is None
    assert calls == []
    total(x, cache=cache)
    assert total.is_cached(x, cache=cache)
    assert total.cached(x, cache=cache).steps == 3
    assert len(calls) == 1


def test_explicit_defaults_give_the_same_key_as_omitted_ones():
    x = torch.ones(2, 2)
    assert total.key(x) == total.key(x, options=Options()) == total.key(x, options=Options(steps=3, scale=1.0))
    assert total.key(x) != total.key(x, options=Options(steps=4))
    assert total.key(x) != total.key(x + 1e-6)  # the tensor's bytes, not its shape


def test_cache_false_always_computes(cache):
    x = torch.ones(2, 2)
    total(x, cache=False)
    total(x, cache=False)
    assert len(calls) == 2


def test_arguments_are_fingerprinted_by_content():
    a = np.arange(4.0)
    plain = fingerprint_arguments({"h": Fingerprinted("abc"), "a": a, "o": Options(), "l": [1, (2.0, "x")]})
    assert plain["h"] == {"__fingerprint__": "abc", "type": "Fingerprinted"}
    assert plain["o"] == {"__dataclass__": "Options", "steps": 3, "scale": 1.0}
    assert plain["a"] != fingerprint_arguments({"a": a + 1})["a"]
    with pytest.raises(TypeError, match="argument g of type Generator"):
        fingerprint_arguments({"g": torch.Generator()})


def test_ignore_must_name_real_arguments():
    with pytest.raises(TypeError, match=r"ignore names \['nope'\]"):
        memoize(ignore=("nope",))(lambda x: x)


_MODULE = """
from __future__ import annotations

from geometry.runtime.memo import memoize

CALLS = []


@memoize
def scaled(values: list, *, factor: float = {factor}) -> dict:
    CALLS.append(1)
    return {{"out": [v * factor {op} 0 for v in values]}}
"""


def _load(tmp_path, monkeypatch, factor: str, op: str = "+"):
    """Write the module (a stand-in for a library function being edited) and import it afresh."""
    (tmp_path / "memo_subject.py").write_text(textwrap.dedent(_MODULE.format(factor=factor, op=op)))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("memo_subject", None)
    code_version.cache_clear()
    importlib.invalidate_caches()
    return importlib.import_module("memo_subject")


def test_changing_a_default_recomputes(tmp_path, monkeypatch):
    cache = DiskCache(tmp_path / "cache")
    mod = _load(tmp_path, monkeypatch, "2.0")
    assert mod.scaled([1.0, 2.0], cache=cache)["out"] == [2.0, 4.0]
    assert mod.scaled([1.0, 2.0], cache=cache)["out"] == [2.0, 4.0]
    assert len(mod.CALLS) == 1
    mod = _load(tmp_path, monkeypatch, "3.0")
    assert mod.scaled([1.0, 2.0], cache=cache)["out"] == [3.0, 6.0]  # not the stale [2, 4]
    assert len(mod.CALLS) == 1


def test_changing_the_code_recomputes_and_reformatting_does_not(tmp_path, monkeypatch):
    cache = DiskCache(tmp_path / "cache")
    mod = _load(tmp_path, monkeypatch, "2.0", op="+")
    before = mod.scaled.version
    mod.scaled([1.0], cache=cache)
    mod = _load(tmp_path, monkeypatch, "2.0", op="-")  # same signature and defaults, another body
    assert mod.scaled.version != before
    mod.scaled([1.0], cache=cache)
    assert len(mod.CALLS) == 1  # computed again in the edited module
    # a comment and blank lines change nothing the code does: same version, the entry is reused
    source = (tmp_path / "memo_subject.py").read_text()
    (tmp_path / "memo_subject.py").write_text("# a comment\n\n" + source.replace("CALLS = []", "CALLS = []  # why"))
    sys.modules.pop("memo_subject", None)
    code_version.cache_clear()
    again = importlib.import_module("memo_subject")
    assert again.scaled.version == mod.scaled.version
    again.scaled([1.0], cache=cache)
    assert again.CALLS == []


def test_the_version_follows_the_geometry_modules_imported():
    # deepfool's module imports the model handle: its version covers handle.py's code too
    import ast

    import geometry.boundary.deepfool as df
    from geometry.runtime.memo import _geometry_imports

    tree = ast.parse(Path(df.__file__).read_text())
    assert "geometry.models.handle" in _geometry_imports(df.__name__, tree)
    assert len(code_version("geometry.boundary.deepfool")) == 16
