import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@pytest.fixture
def no_dot(monkeypatch):
    """The app as on a server without Graphviz's `dot`: the browser lays out the DOT source (and
    the Architecture page is faster)."""
    from shufflenet import diagrams

    monkeypatch.setattr(diagrams, "dot_available", lambda: False)
