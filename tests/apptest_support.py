"""Shared pieces for driving the app through Streamlit's `AppTest` (no browser): open
explorer/app.py with URL parameters, check that a run raised nothing, and read what it showed.
Plain functions (no pytest), one definition for every test module; the browser's counterparts
are in tests/browser_support.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "explorer" / "app.py")


def make_app(*, timeout_s: float = 90, **query) -> AppTest:
    """The app opened with `query` as its URL parameters, after its first run. `timeout_s` bounds
    each run: views that build or run a model take longer than the cost tables."""
    from streamlit.testing.v1 import AppTest  # Streamlit only for the tests that drive the app

    at = AppTest.from_file(APP, default_timeout=timeout_s)
    at.query_params.update(query)
    return at.run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def metric(at: AppTest, label: str, *, prefix: bool = False) -> str:
    """The value of the first metric labelled `label` (with `prefix`, whose label starts with it)."""
    matches = [m.value for m in at.metric if (m.label.startswith(label) if prefix else m.label == label)]
    assert matches, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return matches[0]


def texts(at: AppTest, *kinds: str) -> list[str]:
    """The values of every element of these kinds ("warning", "caption", ...), kind after kind."""
    return [e.value for kind in kinds for e in getattr(at, kind)]


def charts(at: AppTest, kind: str) -> list:
    """Every element of a kind AppTest has no class for ("plotly_chart", "graphviz_chart")."""
    return list(at.get(kind))


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe shown that has `column`."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no dataframe with a {column!r} column")


def fake_import(root, groups: int, scale: float):
    """An imported checkpoint folder as `import-weights` writes it (random weights, no torch needed)."""
    import json

    from shufflenet import build_model, imagenet
    from shufflenet.checkpoints import MANIFEST_NAME, WEIGHTS_NAME

    config = imagenet.megvii_config(groups, scale)
    out = root / f"g{groups}_{scale}x"
    out.mkdir(parents=True)
    build_model(config).save_weights(out / WEIGHTS_NAME)
    source = root / "fake.pth.tar"
    source.write_bytes(b"not read")
    (out / MANIFEST_NAME).write_text(json.dumps(imagenet.build_manifest(config, source, "0" * 64)))
    return out
