"""Serving a class from one process (`shufflenet.serving`): the bounded stores, the model cache
and the facts read from built models, the background builder (deduplicated, most recent first,
out of the pages' way) and the one-at-a-time jobs; then, through `AppTest`, the Overview's check
against the built Keras model and a latency measurement that outlives the session that started it."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import apptest_support
import pandas as pd
import pytest
from apptest_support import no_exception, texts
from conftest import TINY

from shufflenet import ShuffleNetConfig, analysis, serving

ROOT = Path(__file__).resolve().parents[1]



# --- LRU -----------------------------------------------------------------------------------------

def test_lru_drops_the_least_recently_used_first_and_peek_is_no_use():
    store = serving.LRU(2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # a is now the most recent
    assert store.peek("b") == 2  # ...and looking at b does not change that
    assert store.put("c", 3) == [("b", 2)]
    assert store.keys() == ["a", "c"] and "b" not in store and len(store) == 2
    assert store.get("b", "none") == "none"


def test_lru_is_bounded_in_bytes_but_keeps_the_newest():
    store = serving.LRU(10, max_bytes=10, size=len)
    store.put("a", "xxxx")
    store.put("b", "xxxx")
    assert store.nbytes == 8
    assert store.put("c", "xxxx") == [("a", "xxxx")] and store.nbytes == 8
    assert [k for k, _ in store.put("huge", "x" * 50)] == ["b", "c"]  # alone above the bound: it stays
    assert store.keys() == ["huge"] and store.nbytes == 50
    assert store.pop("huge") == "x" * 50 and store.nbytes == 0


def test_lru_refuses_settings_that_cannot_work():
    with pytest.raises(ValueError, match="at least 1"):
        serving.LRU(0)
    with pytest.raises(ValueError, match="needs `size`"):
        serving.LRU(2, max_bytes=10)


def test_lru_stays_consistent_under_threads():
    store = serving.LRU(8, max_bytes=80, size=lambda v: v)

    def work(offset):
        for i in range(2000):
            store.put((offset, i % 20), 5)
            store.get((offset, (i * 7) % 20))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store) == 8 and store.nbytes == 40


# --- the model cache and what built models say -------------------------------------------------

@pytest.mark.parametrize("config", [TINY, TINY.replace(groups=8, blocks=(2, 1, 2), reduction=0.5),
                                    TINY.replace(groups=3, shuffle=False, num_classes=7, channels=3)])
def test_the_built_model_agrees_with_the_analysis(config):
    cache = serving.ModelCache(2, 10**12)
    facts = cache.entry(config).facts
    figures = analysis.key_figures(config)
    assert (facts.trainable, facts.non_trainable, facts.layers) == (
        figures["params"], figures["non_trainable"], figures["layers"])
    assert serving.facts_problems(facts, figures) == []
    table = serving.summary_table(cache.model(config))
    assert list(table.columns) == ["layer", "type", "output shape", "params"]
    assert len(table) == facts.layers and table["params"].sum() == facts.trainable + facts.non_trainable
    assert table.iloc[-1]["type"] == "Dense" and table.iloc[-1]["output shape"] == str(config.num_classes)
    assert serving.summary_table(facts).equals(table)  # the facts alone give the same table


def test_a_disagreement_is_reported_with_both_numbers():
    figures = analysis.key_figures(TINY)
    facts = serving.ModelFacts(figures["params"] + 1, figures["non_trainable"], figures["layers"] - 2, ())
    problems = serving.facts_problems(facts, figures)
    assert len(problems) == 2
    assert f"{figures['params'] + 1:,} trainable parameters" in problems[0] and f"{figures['params']:,}" in problems[0]
    assert "layers" in problems[1]


def test_facts_outlive_the_model_in_the_cache():
    cache = serving.ModelCache(1, 10**12)
    first = cache.entry(TINY).facts
    cache.entry(TINY.replace(groups=1))
    assert cache.peek(TINY) is None and len(cache) == 1  # the model is gone...
    assert cache.facts(TINY) == first  # ...what it said is not


def test_the_builder_s_pausing_build_is_build_model():
    from shufflenet import build_model

    pauses = []
    built = serving.build_model_yielding(TINY, pause=lambda: pauses.append(1))
    plain = build_model(TINY)
    assert [(x.name, type(x).__name__, x.count_params()) for x in built.layers] == [
        (x.name, type(x).__name__, x.count_params()) for x in plain.layers]
    assert built.name == plain.name and len(pauses) == len(plain.layers) - 1  # once before each layer


def test_the_spinner_is_shown_while_building_and_compiling():
    shown = []
    cache = serving.ModelCache(2, 10**12, spinner=lambda text: _record(shown, text))
    cache.predictor(TINY)
    cache.predictor(TINY)
    assert shown == ["Building the Keras model...", "Compiling the model for inference..."]


def _record(shown, text):
    import contextlib

    shown.append(text)
    return contextlib.nullcontext()


# --- the background builder --------------------------------------------------------------------

class FakeCache:
    """Records what the builder builds; a build takes `seconds` and can be held by `gate`."""

    def __init__(self, seconds=0.0, too_large=()):
        self.built, self.known = [], {}
        self.seconds, self.too_large = seconds, set(too_large)
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def facts(self, config):
        return self.known.get(config)

    def check(self, config):
        if config in self.too_large:
            raise serving.ModelTooLargeError(f"{config.label} is too large")

    def entry(self, config, pause=None, show=True):
        self.started.set()
        self.gate.wait(30)
        time.sleep(self.seconds)
        if pause is not None:
            pause()
        self.built.append(config)
        self.known[config] = serving.ModelFacts(1, 0, 1, ())


def g(n: int) -> ShuffleNetConfig:
    return TINY.replace(groups=n)


def quick_builder(cache, **kw) -> serving.BackgroundBuilder:
    return serving.BackgroundBuilder(cache, activity=kw.pop("activity", serving.Activity()),
                                     **{"settle_s": 0.0, **kw})


def test_requests_are_deduplicated_and_the_most_recent_is_built_first():
    cache = FakeCache()
    cache.gate.clear()  # the first build waits until every request is in
    builder = quick_builder(cache)
    builder.request(g(1), "s1")
    assert cache.started.wait(10)
    assert builder.status(g(1)).state == "building"
    for who in ("s2", "s3", "s4"):
        builder.request(g(2), who)  # three sessions, one configuration
    builder.request(g(4), "s5")
    builder.request(g(8), "s6")
    status = builder.status(g(2))
    assert status.state == "queued" and status.ahead == 3  # the one building, then g = 8 and g = 4
    assert builder.pending() == [g(8), g(4), g(2)]
    cache.gate.set()
    assert builder.wait_idle(30)
    assert cache.built == [g(1), g(8), g(4), g(2)]  # each once, the most recent first
    assert builder.request(g(2), "s7").state == "built" and cache.built.count(g(2)) == 1


def test_a_session_s_new_request_replaces_its_old_one():
    cache = FakeCache()
    cache.gate.clear()
    builder = quick_builder(cache)
    builder.request(g(1), "busy")
    assert cache.started.wait(10)
    builder.request(g(2), "student")
    builder.request(g(4), "student")  # moved on before g = 2 was built
    builder.request(g(8), "other")
    builder.request(g(8), "student")  # now shares g = 8 with another session
    assert builder.pending() == [g(8)]
    builder.forget("student")
    assert builder.pending() == [g(8)]  # "other" still wants it
    cache.gate.set()
    assert builder.wait_idle(30)
    assert cache.built == [g(1), g(8)]


def test_the_builder_waits_for_pages_being_computed():
    cache = FakeCache()
    activity = serving.Activity()
    builder = quick_builder(cache, activity=activity, settle_s=0.3, max_wait_s=60)
    with activity.running():  # a page is being computed
        builder.request(g(1), "s1")
        time.sleep(0.5)
        assert cache.built == [] and builder.status(g(1)).state == "queued"
    assert builder.wait_idle(10) and cache.built == [g(1)]


def test_under_constant_load_a_request_is_built_after_max_wait():
    cache = FakeCache()
    activity = serving.Activity()
    builder = quick_builder(cache, activity=activity, settle_s=5, max_wait_s=0.3, max_pause_s=0.05)
    with activity.running():
        builder.request(g(1), "s1")
        assert builder.wait_idle(10)  # built although a page never stopped being computed
    assert cache.built == [g(1)]


def test_a_build_pauses_between_layers_while_a_page_is_computed():
    activity = serving.Activity()
    builder = quick_builder(serving.ModelCache(2, 10**12), activity=activity, max_pause_s=0.2)
    with activity.running():
        t = time.monotonic()
        builder._pause()
        assert 0.15 < time.monotonic() - t < 2  # waited, but not forever
    t = time.monotonic()
    builder._pause()
    assert time.monotonic() - t < 0.05  # nobody busy: no wait


def test_a_page_waiting_for_a_background_build_stops_its_pauses():
    """A page that needs the model the builder is building waits for that build; the build then
    stops giving way to pages (its pauses would make the waiting page wait for itself)."""
    cache = serving.ModelCache(2, 10**12)
    started, calls, late = threading.Event(), [], []

    def slow_pause():
        started.set()
        late.extend([1] if cache._waiting.get(TINY) else [])
        calls.append(1)
        time.sleep(0.05)

    builder = threading.Thread(target=cache.entry, args=(TINY,), kwargs={"pause": slow_pause, "show": False})
    builder.start()
    assert started.wait(60)
    entry = cache.entry(TINY)  # the page: waits for the build in progress, never builds it again
    builder.join(60)
    layers = len(entry.model.layers) - 1
    assert serving.WORK_DONE["model"] >= 1 and cache.peek(TINY) is entry
    assert len(late) <= 1 and len(calls) < layers  # the pauses ended once the page waited
    assert not cache._waiting and not cache._building


def test_too_large_and_failing_builds_say_why():
    big = g(8)
    cache = FakeCache(too_large={big})
    builder = quick_builder(cache)
    status = builder.request(big, "s1")
    assert status.state == "too large" and "too large" in status.message and cache.built == []

    class Failing(FakeCache):
        def entry(self, config, pause=None, show=True):
            raise RuntimeError("out of memory")

    failing = quick_builder(Failing())
    failing.request(g(1), "s1")
    assert failing.wait_idle(10)
    status = failing.status(g(1))
    assert status.state == "failed" and "RuntimeError: out of memory" in status.message


def test_wide_networks_are_left_to_the_views_that_run_them():
    cache = FakeCache()
    builder = quick_builder(cache, max_weight_bytes=1000)  # TINY's weights take more
    status = builder.request(TINY, "s1")
    assert status.state == "on demand" and "Predictions" in status.message and builder.pending() == []
    cache.known[TINY] = serving.ModelFacts(1, 0, 1, ())  # built by a view that needed it
    assert builder.status(TINY).state == "built"


def test_the_real_builder_builds_each_configuration_once():
    cache = serving.ModelCache(4, 10**12)
    builder = quick_builder(cache)
    before = serving.WORK_DONE["model"]
    for who in range(5):
        builder.request(TINY, who)
    assert builder.wait_idle(120)
    assert serving.WORK_DONE["model"] - before == 1
    status = builder.status(TINY)
    assert status.state == "built" and status.facts == cache.facts(TINY) and cache.peek(TINY) is not None


# --- one job at a time ---------------------------------------------------------------------------

def test_jobs_run_one_at_a_time_and_keep_their_results():
    jobs = serving.SerialJobs(serving.LRU(4))
    release = threading.Event()

    def work(progress):
        progress(0.5, "half way")
        release.wait(30)
        return "result A"

    job = jobs.start("a", "network A", work)
    deadline = time.monotonic() + 10
    while job.fraction < 0.5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (job.fraction, job.message) == (0.5, "half way") and not job.done
    assert jobs.start("a", "network A", work) is job  # the same measurement: the one running
    with pytest.raises(serving.JobBusyError, match="network A") as info:
        jobs.start("b", "network B", work)
    assert info.value.job is job and jobs.running() is job and jobs.job("b") is None
    release.set()
    assert job.wait(10) and job.result == "result A" and jobs.result("a") == "result A"
    assert jobs.running() is None and jobs.job("a") is None  # done and stored, nothing running
    assert jobs.start("b", "network B", lambda p: "result B").wait(10) and jobs.result("b") == "result B"


def test_a_failed_job_says_why_until_it_is_run_again():
    jobs = serving.SerialJobs(serving.LRU(4))

    def boom(progress):
        raise ValueError("conversion failed")

    jobs.start("a", "A", boom).wait(10)
    assert jobs.job("a").error == "ValueError: conversion failed" and jobs.result("a") is None
    assert jobs.start("a", "A", lambda p: 42).wait(10)
    assert jobs.job("a") is None and jobs.result("a") == 42


# --- through the app ---------------------------------------------------------------------------

make_app = functools.partial(apptest_support.make_app, timeout_s=180)
PAGE_TEXT = ("caption", "error", "markdown")


@pytest.mark.slow
def test_the_overview_checks_its_figures_against_the_built_model():
    from explorer import cache

    link = dict(view="overview", task="fashion-mnist", groups="4", blocks="1,2,1", scale="0.5")
    at = make_app(**link)
    no_exception(at)
    config = ShuffleNetConfig(groups=4, blocks=(1, 2, 1), scale=0.5, input_size=32, channels=1, num_classes=10)
    if cache.MODELS.facts(config) is None:  # the page did not wait for the model
        assert any("background" in t for t in texts(at, *PAGE_TEXT)), texts(at, *PAGE_TEXT)
    assert cache.BUILDER.wait_idle(120)
    at.run()
    no_exception(at)
    figures = analysis.key_figures(config)
    checked = [t for t in texts(at, *PAGE_TEXT) if "Checked against the built Keras model" in t]
    assert len(checked) == 1 and f"{figures['params']:,} trainable parameters" in checked[0]
    assert f"{figures['layers']:,} layers" in checked[0]

    # A model that disagrees with the analysis is a visible error, not a quiet mark.
    wrong = cache.MODELS.facts(config)._replace(layers=figures["layers"] + 1)
    cache.MODELS._facts.put(config, wrong)
    try:
        at.run()
        assert at.error and "disagrees with the analysis" in at.error[0].value
        assert f"{figures['layers'] + 1:,} layers" in at.error[0].value
        assert not [t for t in texts(at, *PAGE_TEXT) if "Checked against" in t]
    finally:
        cache.MODELS._facts.put(config, wrong._replace(layers=figures["layers"]))


@pytest.mark.slow
def test_architecture_shows_the_built_model_s_layer_table():
    from explorer import cache

    at = make_app(view="architecture", task="fashion-mnist", groups="2", blocks="1,1,1", scale="0.5")
    no_exception(at)
    assert cache.BUILDER.wait_idle(120)
    at.run()
    no_exception(at)
    config = ShuffleNetConfig(groups=2, blocks=(1, 1, 1), scale=0.5, input_size=32, channels=1, num_classes=10)
    figures = analysis.key_figures(config)
    table = next(df.value for df in at.dataframe if "output shape" in df.value.columns)
    assert len(table) == figures["layers"] and int(table["params"].sum()) == figures["params"] + figures[
        "non_trainable"]
    assert any(f"{figures['layers']:,} layers" in t for t in texts(at, *PAGE_TEXT))


@pytest.mark.slow
def test_views_do_not_wait_for_the_model_and_each_configuration_is_built_once():
    from explorer import cache

    at = make_app(view="compare", task="fashion-mnist", groups="1", blocks="2,1,1", scale="0.75")
    config = ShuffleNetConfig(groups=1, blocks=(2, 1, 1), scale=0.75, input_size=32, channels=1, num_classes=10)
    no_exception(at)
    assert cache.BUILDER.wait_idle(120)
    builds = cache.WORK_DONE["model"]
    assert cache.MODELS.facts(config) is not None  # built after the page, though Compare needs no model
    for view in ("Overview", "Complexity", "Predictions", "Overview"):
        at.radio(key="view").set_value(view).run()
        no_exception(at)
    assert cache.BUILDER.wait_idle(120)
    assert cache.WORK_DONE["model"] == builds  # the same configuration is never built again


@pytest.fixture
def tiny_sweep(monkeypatch):
    """The Latency view measures g = 1 and 3, TensorFlow only, 2 rounds; `hold` keeps a
    measurement running until it is set."""
    from explorer.views import latency

    monkeypatch.setattr(latency, "GROUPS", (1, 3))
    monkeypatch.setattr(latency, "RUNTIMES", ("tensorflow",))
    monkeypatch.setattr(latency, "THREADS", ())
    monkeypatch.setattr(latency, "REPEATS", 2)
    hold = threading.Event()
    real = serving.latency_work

    def held(key):
        work = real(key)

        def run(progress):
            progress(0.01, "held by the test")
            hold.wait(120)
            return work(progress)
        return run

    monkeypatch.setattr(serving, "latency_work", held)
    yield hold
    hold.set()


@pytest.mark.slow
def test_a_measurement_outlives_its_session_and_others_see_it(tiny_sweep):
    from explorer import cache

    query = dict(view="latency", task="fashion-mnist", blocks="1,1,1", scale="0.5")
    config = ShuffleNetConfig(groups=3, blocks=(1, 1, 1), scale=0.5, input_size=32, channels=1, num_classes=10)
    key = cache.latency_key(config, (1, 3), ("tensorflow",), (), 2, False)
    assert cache.measured_latency(key) is None
    first = make_app(**query)
    first.button(key="lat_measure").click().run()
    no_exception(first)
    job = cache.latency_job(key)
    assert job is not None and not job.done
    assert any("Measuring" in p.proto.text for p in first.get("progress"))
    del first  # the tab is closed; the measurement goes on

    same = make_app(**query, groups="1")  # another student, same network, another g: the same sweep
    no_exception(same)
    assert any("Measuring" in p.proto.text for p in same.get("progress"))
    assert not any("Another measurement" in w.value for w in same.warning)
    assert same.button(key="lat_measure").disabled

    other = make_app(**{**query, "scale": "0.25"})  # a different network: told that another one runs
    no_exception(other)
    assert any("Another measurement is running" in w.value and job.label in w.value for w in other.warning)
    assert any(job.label in p.proto.text for p in other.get("progress"))

    sweeps = cache.WORK_DONE["latency_sweep"]
    tiny_sweep.set()
    assert job.wait(300) and job.error is None
    assert cache.WORK_DONE["latency_sweep"] == sweeps + 1
    same.run()
    no_exception(same)
    assert len(list(same.get("plotly_chart"))) == 2 and not list(same.get("progress"))
    other.run()
    assert not other.warning and any("Not measured yet" in i.value for i in other.info)
    assert isinstance(cache.measured_latency(key), pd.DataFrame)
