"""Soak: one long session drives many distinct configurations through the app and the server's
resident memory is recorded after each, to show that it levels off.

    python bench/soak.py [--configs 100] [--max-seconds 1800] [--out bench/results/soak.json]

Each configuration (Fashion-MNIST task: its models are small, so the run measures what the app
keeps rather than how large one model is) is set in the sidebar and shown in the Predictions
view, which builds, compiles and runs its Keras model, then in one of the table/diagram views.
The app runs in this process through Streamlit's AppTest, so the resident memory of the
"server" is this process's VmRSS (/proc/self/status; psutil is not needed).

Prints one JSON object (also written to --out): RSS in MB after every configuration, the growth
after the first `--warm` configurations (issue target: < 300 MB after 20), the model cache's
final size, and timings. Stops by itself after --configs or --max-seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

APP = str(ROOT / "explorer" / "app.py")
OTHER_VIEWS = ("Overview", "Complexity", "Architecture", "Compare", "Channel shuffle")


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB, from /proc/<pid>/status (VmRSS)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) / 1024


def configurations(n: int, seed: int = 0) -> list[dict]:
    """`n` distinct sidebar settings (groups, units per stage, width, bottleneck), shuffled."""
    grid = itertools.product((1, 2, 3, 4, 8), ((1, 1, 1), (1, 2, 1), (2, 2, 2), (2, 3, 2), (1, 3, 1)),
                             (0.25, 0.5, 0.75), (0.25, 0.5))
    settings = [{"groups": g, "blocks": b, "scale": s, "reduction": r} for g, b, s, r in grid]
    random.Random(seed).shuffle(settings)
    if n > len(settings):
        raise ValueError(f"at most {len(settings)} distinct configurations; asked for {n}")
    return settings[:n]


def apply(at, setting: dict) -> None:
    """Set one configuration's widgets (one rerun follows)."""
    at.selectbox(key="groups").set_value(setting["groups"])
    for key, units in zip(("blocks_stage2", "blocks_stage3", "blocks_stage4"), setting["blocks"]):
        at.slider(key=key).set_value(units)
    at.slider(key="scale").set_value(setting["scale"])
    at.slider(key="reduction").set_value(setting["reduction"])


def check(at, what: str) -> None:
    if at.exception:
        raise RuntimeError(f"{what}: {[e.value for e in at.exception]}")


def soak(n_configs: int = 100, max_seconds: float = 1800, warm: int = 20, on_step=None) -> dict:
    """Drive `n_configs` configurations through one AppTest session; the RSS curve and more."""
    from streamlit.testing.v1 import AppTest

    from explorer import cache
    from explorer.sidebar import config_from_state

    start = time.monotonic()
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update(task="fashion-mnist", view="predictions")
    at.run()
    check(at, "first run")
    rss = []
    seconds = []
    settings = configurations(n_configs)
    for i, setting in enumerate(settings):
        if time.monotonic() - start > max_seconds:
            break
        t0 = time.monotonic()
        at.radio(key="view").set_value("Predictions")
        apply(at, setting)
        at.run()
        check(at, f"configuration {i + 1} ({setting}) in Predictions")
        shown = config_from_state(at.session_state)
        if (shown.groups, shown.blocks, shown.scale, shown.reduction) != (
                setting["groups"], tuple(setting["blocks"]), setting["scale"], setting["reduction"]):
            raise RuntimeError(f"configuration {i + 1}: the app shows {shown}, expected {setting}")
        at.radio(key="view").set_value(OTHER_VIEWS[i % len(OTHER_VIEWS)]).run()
        check(at, f"configuration {i + 1} in {OTHER_VIEWS[i % len(OTHER_VIEWS)]}")
        gc.collect()
        rss.append(round(rss_mb(), 1))
        seconds.append(round(time.monotonic() - t0, 2))
        if on_step is not None:
            on_step(i + 1, rss[-1], seconds[-1])
    done = len(rss)
    base = rss[min(warm, done) - 1] if done else None
    return {
        "benchmark": "soak",
        "configs_requested": n_configs,
        "configs_done": done,
        "stopped_by_time": done < n_configs,
        "rss_mb": rss,
        "seconds_per_config": seconds,
        "warm_configs": warm,
        "rss_after_warm_mb": base,
        "rss_max_after_warm_mb": max(rss[warm - 1:]) if done >= warm else None,
        "growth_after_warm_mb": round(max(rss[warm - 1:]) - base, 1) if done >= warm else None,
        "growth_target_mb": 300,
        "model_cache": {"entries": len(cache.MODELS), "estimated_bytes": cache.MODELS.nbytes,
                        "max_entries": cache.MODELS.max_entries, "max_bytes": cache.MODELS.max_bytes},
        "model_builds": cache.BUILDS["model"],
        "total_seconds": round(time.monotonic() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--warm", type=int, default=20, help="configurations before growth is measured")
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument("--out", type=Path, default=None, help="the JSON file (default bench/results/soak.json)")
    args = parser.parse_args(argv)
    from report import write_result

    result = soak(args.configs, args.max_seconds, args.warm,
                  on_step=lambda i, mb, s: print(f"{i:4d} {mb:8.1f} MB {s:6.1f} s", file=sys.stderr, flush=True))
    write_result("soak", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
