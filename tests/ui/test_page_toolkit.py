"""The page toolkit: the error guard, the image label, the session keys, the one-way imports and the menu."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from geometry.data.datasets import Dataset
from tests.ui.apptest import ROOT, app
from ui import keys
from ui.state import image_label
from ui.views import SECTIONS, VIEWS, by_section

# -- the guard ---------------------------------------------------------------------------------------------------------


def _guarded(raise_what: str, keep_going: bool) -> None:
    """A page whose library call fails in the way named by ``raise_what``."""
    import streamlit as st

    from geometry.models.handle import NonFiniteOutputError
    from ui import page
    from ui.progress import Stopped

    failures = {
        "value": ValueError("expected an image of 3x32x32 in [0,1], got 1x28x28"),
        "nan": NonFiniteOutputError("the model returned NaN"),
        "runtime": RuntimeError("mat1 and mat2 shapes cannot be multiplied"),
        "stop": Stopped("Computing the slice…"),
        "bug": KeyError("a bug, not bad input"),
        "none": None,
    }
    with page.guard("Could not compute the slice", keep_going=keep_going, resume_key="resume"):
        st.markdown("before")
        if failures[raise_what] is not None:
            raise failures[raise_what]
        st.markdown("inside, after the call")
    st.markdown("after the block")


def _run(raise_what: str, keep_going: bool = False) -> AppTest:
    return AppTest.from_function(_guarded, args=(raise_what, keep_going), default_timeout=30).run()


@pytest.mark.parametrize(
    ("raise_what", "message"),
    [
        ("value", "Could not compute the slice: expected an image of 3x32x32 in [0,1], got 1x28x28"),
        ("nan", "Could not compute the slice: the model returned NaN"),
        ("runtime", "Could not compute the slice: mat1 and mat2 shapes cannot be multiplied"),
    ],
)
def test_the_guard_shows_bad_input_as_an_error_and_ends_the_page(raise_what, message):
    at = _run(raise_what)
    assert not at.exception
    assert [e.value for e in at.error] == [message]
    assert [m.value for m in at.markdown] == ["before"]  # neither the rest of the block nor the page ran


def test_keep_going_shows_the_error_and_draws_the_rest_of_the_page():
    at = _run("value", keep_going=True)
    assert len(at.error) == 1
    assert [m.value for m in at.markdown] == ["before", "after the block"]


def test_a_stop_becomes_a_resume_hint_not_an_error():
    at = _run("stop")
    assert not at.exception and not at.error
    assert [i.value for i in at.info] == [
        "Stopped: Computing the slice…. Nothing half-done was kept; change a setting or rerun to start again."
    ]
    assert at.button(key="resume").label == "Compute"
    assert [m.value for m in at.markdown] == ["before"]


def test_a_bug_is_not_hidden_and_a_clean_block_runs_through():
    assert _run("bug").exception  # a KeyError is a bug: the traceback shows
    at = _run("none")
    assert not at.exception and not at.error and not at.info
    assert [m.value for m in at.markdown] == ["before", "inside, after the call", "after the block"]


def test_the_error_tuple_is_defined_once():
    definitions = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for folder in ("ui", "views", "geometry")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == "ERRORS"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    assert [d.split(":")[0] for d in definitions] == ["ui/page.py"], definitions


# -- the image label ---------------------------------------------------------------------------------------------------


def test_image_label_names_the_index_and_the_true_class():
    data = Dataset(
        name="toy",
        split="test",
        images=torch.zeros(4, 1, 2, 2),
        labels=torch.tensor([1, 0, -1, 1]),
        class_names=("cat", "dog"),
        input_range=(0.0, 1.0),
    )
    assert [image_label(data, i) for i in range(4)] == ["#0 · dog", "#1 · cat", "#2 · unlabelled", "#3 · dog"]


# -- the session keys and the sidebar ----------------------------------------------------------------------------------


def test_the_sidebar_keeps_its_choices_under_the_shared_keys():
    at = app(**{keys.BUILTIN_MODEL: "digits-cnn-silu", keys.DEVICE: "cpu"}).run()
    assert not at.exception
    sel = at.session_state[keys.SELECTION]
    assert sel.handle.name == "digits-cnn-silu"
    assert at.session_state[keys.DATASET] == sel.dataset.name == "digits"
    assert keys.picked(sel.dataset) == "picked::digits::test::450"
    assert list(at.session_state[keys.picked(sel.dataset)]) == [0, 1, 2] == list(sel.indices)


def _ui_imports(path: Path) -> set[str]:
    """The ``ui.*`` modules a file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "ui":
            found |= {f"ui.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ui."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ui.")}
    return found


def test_the_page_toolkit_imports_go_one_way():
    # ui.page -> ui.sidebar -> ui.state -> ui.keys, never back
    assert _ui_imports(ROOT / "ui" / "keys.py") == set()
    assert _ui_imports(ROOT / "ui" / "state.py") == {"ui.keys"}
    assert "ui.page" not in _ui_imports(ROOT / "ui" / "sidebar.py")
    assert {"ui.sidebar", "ui.state"} <= _ui_imports(ROOT / "ui" / "page.py")


# -- the menu ----------------------------------------------------------------------------------------------------------


def test_the_menu_has_each_view_once_under_its_section():
    groups = by_section()
    assert list(groups) == list(SECTIONS) == ["Explore", "Inspect", "Train"]
    assert [v for views in groups.values() for v in views] == VIEWS  # menu order is the registry's order
    assert [v.title for v in groups["Explore"]] == ["Home", "Slices", "Curvature", "Feature space"]
    assert [v.title for v in groups["Train"]] == ["Train", "Playground"]  # issue 15 added the Playground
    assert all((ROOT / v.script).is_file() for v in VIEWS)
    assert VIEWS[0].script == "views/home.py"  # the default page
