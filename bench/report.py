"""Where every benchmark's result goes: one JSON object on stdout (one line, for a pipe) and the
same, indented, in a file (by default bench/results/<name>.json)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, result: dict, out: Path | None = None) -> Path:
    path = out if out is not None else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result), flush=True)
    return path
