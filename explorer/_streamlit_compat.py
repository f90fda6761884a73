"""The one home of what the explorer takes from Streamlit beyond its public `st.*` API.

Streamlit's internals change between releases without notice. Everything the app uses of them is
here, so an upgrade is checked in one file: tests/test_streamlit_compat.py fails, naming the hook,
when the pinned version no longer has one.

- `script_run_context()`: the current run's context (the session's id, the run's cursors), or
  None outside a script run (the background builder's thread, a deferred download).
- `keep_keras_between_runs()`: replaces the clean-up Streamlit runs after every script run
  (`script_runner._clean_problem_modules`), which calls `keras.backend.clear_session()`.
"""

from __future__ import annotations

import contextlib
import sys

from streamlit.runtime.scriptrunner import script_runner
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

#: The hooks used here, as (module, attribute): what the compatibility test checks.
HOOKS = (
    (script_runner, "_clean_problem_modules"),
    (sys.modules[get_script_run_ctx.__module__], "get_script_run_ctx"),
)
_MARK = "_shufflenet_keeps_keras"


def script_run_context():
    """The running script's context, or None outside a Streamlit script run."""
    return get_script_run_ctx()


def session_id() -> str | None:
    """The id of the session whose script is running, or None outside a script run."""
    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def _clean_problem_modules_but_keras() -> None:
    """What Streamlit does after every script run, without `keras.backend.clear_session()`.

    Streamlit clears Keras's global state after each run for apps that build a model per run.
    This app builds each model once, in the background builder's thread, and shares it: there is
    no per-run Keras state to clear, while the clearing cost every run a full garbage collection
    and TensorFlow's kernel cache, and replaced Keras's per-thread state under a build in progress.
    (`shufflenet.serving` clears the kernel cache itself, after background builds.)"""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        with contextlib.suppress(Exception):
            plt.close("all")


def keep_keras_between_runs() -> bool:
    """Replace Streamlit's after-run clean-up with one that keeps Keras's state, once per process
    (the app's script runs again on every rerun; the module keeps the replacement). False where
    this Streamlit has no such hook: then nothing is replaced and the app still works, slower."""
    if not hasattr(script_runner, "_clean_problem_modules"):
        return False
    if not getattr(script_runner, _MARK, False):
        script_runner._clean_problem_modules = _clean_problem_modules_but_keras
        setattr(script_runner, _MARK, True)
    return True
