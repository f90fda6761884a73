"""A non-editable install (`pip install .`, no checkout in reach) finds its shipped files through
the package (shufflenet/paths.py and the package data in pyproject.toml): the CLI's `summary` and
`evaluate` run on a shipped checkpoint from another directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shufflenet.paths import ASSETS_ENV, RUNS_ENV
from shufflenet.settings import quiet_tensorflow_env

ROOT = Path(__file__).resolve().parents[1]
#: What `pip install .` reads: the project file and the packages' sources (not tests, bench or screenshots).
SOURCES = ("pyproject.toml", "README.md", "shufflenet", "explorer", "assets")


@pytest.mark.slow
@pytest.mark.usefixtures("requires_fashion_mnist")
def test_a_non_editable_install_runs_summary_and_evaluate_from_elsewhere(tmp_path):
    source, target, elsewhere = tmp_path / "src", tmp_path / "target", tmp_path / "elsewhere"
    for name in SOURCES:  # a copy, so the build leaves nothing in the checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "screenshots", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                          "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (ASSETS_ENV, RUNS_ENV, "PYTHONPATH")}
    env.update(quiet_tensorflow_env(), PYTHONPATH=str(target))

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "shufflenet", *args], capture_output=True, text=True,
                              cwd=elsewhere, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    where = subprocess.run([sys.executable, "-c", "import shufflenet.checkpoints as c; print(c.SHIPPED_DIR)"],
                           capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)
    shipped = Path(where.stdout.strip())
    assert shipped.is_relative_to(target) and (shipped / "results.json").is_file(), where.stdout + where.stderr
    assert "Complexity (paper Table 1: conv MACs, FC excluded): 136,500,672" in run("summary").stdout
    result = json.loads(run("evaluate", str(shipped / "fmnist_0.5x_g3"), "--limit", "100", "--format", "json").stdout)
    assert result["n"] == 100 and result["accuracy"] > 0.5  # a trained network, not chance (0.1)
