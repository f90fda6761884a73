"""Many users and long sessions: the shared model cache stays within its bounds, a
long session's memory levels off, and sessions working at the same time on one server each see
the right numbers. The soak and the class here are short versions of bench/soak.py and
bench/classroom.py (run those for the full figures); both stop by themselves."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import pytest
from conftest import TINY

from explorer import cache
from shufflenet import ShuffleNetConfig

ROOT = Path(__file__).resolve().parents[1]



def bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the model cache ------------------------------------------------------------------------

def tiny(groups: int) -> ShuffleNetConfig:
    return TINY.replace(groups=groups)


def test_model_cache_is_bounded_in_entries_least_recently_used_first():
    models = cache.ModelCache(max_entries=2, max_bytes=10**12)
    a, b, c = (models.entry(tiny(g)) for g in (1, 2, 4))
    assert len(models) == 2 and models.entry(tiny(4)) is c and models.entry(tiny(2)) is b
    models.entry(tiny(1))  # rebuilt; 4 was used longest ago and goes
    assert [k.groups for k in models._entries] == [2, 1]
    assert models.entry(tiny(1)) is not a  # a fresh build: the evicted one was dropped


def test_model_cache_is_bounded_in_bytes():
    sizes = [cache.model_memory(tiny(g)) for g in (1, 2, 4)]
    models = cache.ModelCache(max_entries=10, max_bytes=sizes[1] + sizes[2])  # room for two of the three
    for g in (1, 2, 4):
        models.entry(tiny(g))
    assert [k.groups for k in models._entries] == [2, 4] and models.nbytes <= models.max_bytes


def test_model_cache_builds_each_configuration_once_for_sessions_asking_together():
    models = cache.ModelCache(max_entries=4, max_bytes=10**12)
    before = dict(cache.WORK_DONE)
    start = threading.Barrier(6)
    got = []

    def session():
        start.wait()
        got.append(models.predictor(tiny(8)))

    threads = [threading.Thread(target=session) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(got) == 6 and all(p is got[0] for p in got)
    assert cache.WORK_DONE["model"] - before.get("model", 0) == 1
    assert cache.WORK_DONE["predictor"] - before.get("predictor", 0) == 1


def test_too_large_model_is_refused_before_building():
    huge = ShuffleNetConfig(scale=3.0, groups=8, blocks=(16, 16, 16), input_size=512, num_classes=100_000)
    builds = cache.WORK_DONE["model"]
    with pytest.raises(cache.ModelTooLargeError, match=r"needs about 5\.11 GB .* more than the 500\.00 MB"):
        cache.ModelCache(4, 10**12).entry(huge)
    assert cache.WORK_DONE["model"] == builds
    # Every model the cache may hold together fits the memory bound.
    assert cache.MODEL_MAX_BYTES <= cache.MODEL_CACHE_BYTES


# --- soak and load --------------------------------------------------------------------------

@pytest.mark.slow
def test_soak_memory_levels_off():
    """15 configurations through Predictions and the other views in one session (bench/soak.py
    drives 100: see its figures in the report)."""
    soak = bench_module("soak")
    result = soak.soak(n_configs=15, max_seconds=240, warm=5)
    assert result["configs_done"] >= 10, result  # it stops by itself; on a slow machine after 240 s
    assert result["growth_after_warm_mb"] < 200, result["rss_mb"]
    assert result["model_cache"]["entries"] <= cache.MODEL_CACHE_ENTRIES


@pytest.mark.slow
def test_eight_sessions_at_once_see_the_right_numbers(tmp_path):
    """Eight tabs at once, each changing its own network back to back (Streamlit's own protocol,
    no browsers: the server gets what browsers send, and every MACs figure it sends is checked)."""
    import classroom  # bench/ is on pytest's pythonpath

    result = classroom.classroom(8, 4, max_seconds=240, timeout=120, server_log=tmp_path / "server.log")
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "load.json").write_text(json.dumps(result, indent=1) + "\n")  # kept by CI for a failure
    assert not classroom.failed(result), result["samples"]
    assert result["changes_done"] >= 24 and result["numbers_checked"] > 0, result  # bounded by time
