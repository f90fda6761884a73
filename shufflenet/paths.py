"""Where the library finds its shipped files (assets/) and keeps its work (runs/).

In a checkout, assets/ sits beside the package; a non-editable install carries it inside the
package as package data (pyproject.toml maps `shufflenet.assets` to the checkout's assets/).
`SHUFFLENET_ASSETS` points elsewhere (a copy of the assets kept apart from the code), and
`SHUFFLENET_RUNS` says where imported and trained checkpoints go (default: runs/ beside the
package in a checkout, else in the current directory).
"""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_ENV, RUNS_ENV = "SHUFFLENET_ASSETS", "SHUFFLENET_RUNS"
_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def assets_dir() -> Path:
    """The shipped files: `$SHUFFLENET_ASSETS`, the installed package's copy, or the checkout's."""
    if os.environ.get(ASSETS_ENV):
        return Path(os.environ[ASSETS_ENV])
    installed = _PACKAGE / "assets"
    return installed if installed.is_dir() else _CHECKOUT / "assets"


def runs_dir() -> Path:
    """Where work is kept: `$SHUFFLENET_RUNS`, the checkout's runs/, or runs/ in the current directory."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV])
    return _CHECKOUT / "runs" if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd() / "runs"
