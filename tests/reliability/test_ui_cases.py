"""The same bad inputs through the app, as a table: the sidebar (or the page) shows ``st.error`` with the sentence,
and no exception reaches the page (issue 14, items 3, 4 and 5). Plus: the sidebar's choices survive Streamlit
dropping its widgets' state (what an interrupted page switch does)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.reliability import inputs as make
from tests.ui.apptest import app


@dataclass(frozen=True)
class UICase:
    sidebar: Callable[[Path], dict[str, object]]  # sidebar widget values (by key) for files made in the folder
    expected: str  # a regex one st.error must match


def _path_model(path_of: Callable[[Path], Path], **fields: str) -> Callable[[Path], dict[str, object]]:
    def sidebar(d: Path) -> dict[str, object]:
        return {"model_source": "Path", "model_path": str(path_of(d)), "model_shape": "1, 8, 8", **fields}

    return sidebar


def _folder(path_of: Callable[[Path], Path | str]) -> Callable[[Path], dict[str, object]]:
    return lambda d: {"dataset": "Image folder…", "image_folder": str(path_of(d))}


UI_CASES: dict[str, UICase] = {
    "card without input_shape": UICase(
        _path_model(lambda d: make.with_card(d, make.card_without("input_shape"))), r"carded\.json lacks input_shape"
    ),
    "card that is a JSON list": UICase(
        _path_model(lambda d: make.with_card(d, [1, 2])), r"carded\.json is a JSON list, expected an object"
    ),
    "card that is not JSON": UICase(
        _path_model(lambda d: make.with_card(d, None, raw=b"not json")), r"carded\.json is not valid JSON"
    ),
    "TorchScript with a 1-D output": UICase(
        _path_model(lambda d: make.torchscript(d, "1d")), r"returned a tensor of shape \(10,\), expected logits"
    ),
    "TorchScript with a 0-D output": UICase(
        _path_model(lambda d: make.torchscript(d, "0d")), r"returned a tensor of shape \(\)"
    ),
    "TorchScript with a 3-D output": UICase(
        _path_model(lambda d: make.torchscript(d, "3d")), r"returned a tensor of shape \(2, 10, 2\)"
    ),
    "TorchScript given the wrong input shape": UICase(
        _path_model(lambda d: make.torchscript(d, "ok"), model_shape="3, 32, 32"), r"does not accept inputs of shape"
    ),
    "class names that do not match": UICase(
        _path_model(lambda d: make.torchscript(d, "ok"), model_classes="a,b,c"),
        r"returns 10 logits per input, but 3 classes were given",
    ),
    "truncated safetensors": UICase(
        _path_model(lambda d: make.truncated(make.builtin_weights(d)), model_arch="cnn"),
        r"is not a readable safetensors checkpoint",
    ),
    "pickle with a payload": UICase(
        _path_model(make.pickle_with_payload, model_arch="cnn"), r"evil\.pt contains Python objects beyond tensors"
    ),
    "weights without their options": UICase(
        _path_model(make.builtin_weights, model_arch="cnn"), r"does not record its activation"
    ),
    "a missing model file": UICase(_path_model(lambda d: d / "gone.safetensors"), r"no such model file"),
    "a model path outside the roots": UICase(
        _path_model(lambda d: Path("/etc/ssl/openssl.cnf")), r"is outside the folders this server lets the app read"
    ),
    "a model path the server may not follow": UICase(
        _path_model(lambda d: Path("/proc/1/cwd/model.pt")),
        r"'/proc/1/cwd/model\.pt'( is outside the folders|: the server may not read it)",
    ),
    "an input shape that is not numbers": UICase(
        _path_model(make.builtin_weights, model_shape="one, eight"), r"input shape must be comma-separated numbers"
    ),
    "an image folder outside the roots": UICase(_folder(lambda d: "/etc/ssl"), r"is outside the folders"),
    "an image folder the server may not read": UICase(
        _folder(lambda d: "/proc/1/cwd"), r"'/proc/1/cwd'( is outside the folders|: the server may not read it)"
    ),
    "an image folder without class folders": UICase(
        _folder(lambda d: make.image_folder(d, {})), r"found no subfolders"
    ),
    "an image folder with a broken image": UICase(
        _folder(lambda d: make.image_folder(d, {"3": [b"junk"]})), r"could not read '3/0\.png' as an image"
    ),
    "an image folder holding a bomb": UICase(
        _folder(lambda d: make.image_folder(d, {"3": [make.png_claiming(12000, 12000)]})), r"\(144 Mpx\)"
    ),
}


@pytest.mark.parametrize("name", list(UI_CASES))
def test_a_bad_input_in_the_app_shows_a_sentence(name: str, tmp_path: Path) -> None:
    at = app(timeout=120, **UI_CASES[name].sidebar(tmp_path))
    at.run()
    assert not at.exception, [str(e.value)[:300] for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(re.search(UI_CASES[name].expected, e) for e in errors), errors
    assert not any("Traceback" in e or "[Errno" in e for e in errors), errors


def test_the_ui_table_is_big_enough() -> None:
    assert len(UI_CASES) >= 15


def _sidebar_only() -> None:
    """A page that draws the sidebar after Streamlit dropped the state of the widgets named in ``drop`` (as a
    page switch that interrupts a run does), and writes what it selected."""
    import streamlit as st

    from ui import sidebar

    for key in st.session_state.get("drop", ()):
        if key in st.session_state:
            del st.session_state[key]
    sel = sidebar.render_sidebar()
    st.markdown(f"model={sel.handle.name} data={sel.dataset.name} picked={list(sel.indices)}")


def test_the_sidebar_keeps_its_choices_when_streamlit_drops_its_widgets() -> None:
    """Before issue 14 the model fell back to the default and the picked images to the first three."""
    picked = "picked::digits::test::450"
    at = AppTest.from_function(_sidebar_only, default_timeout=120)
    at.session_state["builtin_model"] = "digits-cnn-relu"
    at.session_state[picked] = [5, 7]
    at.run()
    chosen = "model=digits-cnn-relu data=digits picked=[5, 7]"
    assert [m.value for m in at.markdown] == [chosen]
    at.session_state["drop"] = ("builtin_model", "dataset", "model_source", picked)
    for _ in range(3):
        at.run()
        assert not at.exception
        assert [m.value for m in at.markdown] == [chosen]
