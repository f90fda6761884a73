"""The Streamlit internals the explorer relies on (explorer/_streamlit_compat.py) exist in the
pinned Streamlit: an upgrade that removes one fails here, by name, rather than somewhere in a page."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import streamlit
from streamlit.runtime.scriptrunner import script_runner

from explorer import _streamlit_compat as compat

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("module", "name"), compat.HOOKS, ids=lambda v: getattr(v, "__name__", v))
def test_every_hook_exists_in_the_pinned_streamlit(module, name):
    assert callable(getattr(module, name, None)), (
        f"Streamlit {streamlit.__version__} has no {module.__name__}.{name}: explorer/_streamlit_compat.py "
        "needs another way to do what it did")


def test_the_pinned_version_is_the_one_the_hooks_were_checked_against():
    pinned = next(line.split("==")[1].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("streamlit=="))
    assert streamlit.__version__ == pinned


def test_the_clean_up_is_replaced_once_and_keeps_keras(monkeypatch):
    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    monkeypatch.delattr(script_runner, "_shufflenet_keeps_keras", raising=False)
    assert compat.keep_keras_between_runs()
    replaced = script_runner._clean_problem_modules
    assert replaced.__module__ == compat.__name__ and "keras" in replaced.__name__
    assert compat.keep_keras_between_runs() and script_runner._clean_problem_modules is replaced
    assert compat.script_run_context() is None and compat.session_id() is None  # not inside a script run


def test_no_other_module_imports_streamlit_internals():
    found = []
    for path in sorted([*(ROOT / "explorer").rglob("*.py"), *(ROOT / "shufflenet").rglob("*.py")]):
        if path.name == "_streamlit_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("streamlit.runtime")]
        if "_clean_problem_modules" in path.read_text(encoding="utf-8"):
            found.append(f"{path.relative_to(ROOT)}: _clean_problem_modules")
    assert found == []
