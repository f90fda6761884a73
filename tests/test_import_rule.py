"""House rule 1: `shufflenet/` is a plain library and never imports Streamlit (only `explorer/` does)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "shufflenet"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_library_source_imports_streamlit():
    files = sorted(LIBRARY.rglob("*.py"))
    assert files, f"no sources under {LIBRARY}"
    offenders = {
        str(f.relative_to(LIBRARY.parent)): sorted(m for m in imported_modules(f) if m.split(".")[0] == "streamlit")
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}


def test_importing_the_library_loads_no_streamlit():
    code = ("import sys, shufflenet, shufflenet.analysis, shufflenet.complexity, shufflenet.diagrams, "
            "shufflenet.inference; print(any(m.split('.')[0] == 'streamlit' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
