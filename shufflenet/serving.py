"""Serving the explorer to a class from one process: the shared, bounded state of a server and
the long work that must not run inside a page's update.

A web front end runs one thread per session. What they share lives here, without any UI
library (a front end hands in its spinner and its session ids as plain values):

- `LRU`: a least-recently-used mapping for threads, bounded in entries and, optionally, in bytes.
  Every shared store below is one.
- `ModelCache`: the built Keras models (and their compiled predictors) by configuration,
  bounded in entries and estimated memory, each configuration built once however many sessions
  ask at the same time. `check_model_size` refuses networks above `MODEL_MAX_BYTES` first.
  What a build found out about its model (`ModelFacts`: parameter and layer counts, a summary
  table) is kept longer than the model itself, so a check done once is not redone.
- `BackgroundBuilder`: builds the model of every configuration a session shows, in one thread,
  after the page has been sent and only while no page is being computed (it pauses between
  layers whenever one is); requests are deduplicated, a session's newer request replaces its
  older one, and the most recent is built first.
- `SerialJobs`: long measurements (the latency sweep) in a background thread, one at a time,
  stored by key when done: the job finishes whether or not the page that started it is still
  open, and any session can read its progress or result.
- `Activity`: counts the page updates in progress, which the builder waits for.
- `freeze_after_import`: once TensorFlow and Keras are imported, a full collection, then
  `gc.freeze()`, so that later collections no longer walk their hundreds of thousands of
  long-lived objects (measured: an Overview rerun after the first model view cost 320 ms with
  them in the collected generations, 50 ms frozen).
- `Collector`: no automatic full collections (they walk every cached model, stalling every page
  for hundreds of ms); the builder's thread makes them at quiet moments instead.

`WORK_DONE` counts the expensive work done, by kind: model builds, predictor compilations,
measurements (tests check that work is done once).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import sys
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any, NamedTuple

from .complexity import format_bytes
from .config import ShuffleNetConfig
from .settings import SETTINGS

WORK_DONE: Counter = Counter()

#: A front end's spinner: text -> a context manager shown while a model is built or compiled.
Spinner = Callable[[str], contextlib.AbstractContextManager]
#: A long job's progress report: (fraction 0..1, message).
Progress = Callable[[float, str], None]


def _no_spinner(text: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


# --- a bounded store ------------------------------------------------------------------------

class LRU:
    """A mapping shared by threads that keeps at most `max_entries` items and, when `size`
    (value -> bytes) is given, at most `max_bytes` between them; the least recently used go
    first. The newest item always stays, even alone above `max_bytes`: what was just made for
    someone is not thrown away before they use it (callers refuse oversized items beforehand)."""

    def __init__(self, max_entries: int, max_bytes: int | None = None, size: Callable[[Any], int] | None = None):
        if int(max_entries) < 1:
            raise ValueError(f"`max_entries` must be at least 1. Received: {max_entries!r}")
        if max_bytes is not None and size is None:
            raise ValueError("`max_bytes` needs `size`, the function that tells an item's bytes.")
        self.max_entries, self.max_bytes = int(max_entries), max_bytes
        self._size = size or (lambda value: 0)
        self._data: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, default=None):
        """The item (now the most recently used), or `default`."""
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def peek(self, key: Hashable, default=None):
        """The item without counting as a use, or `default`."""
        with self._lock:
            return self._data.get(key, default)

    def put(self, key: Hashable, value) -> list[tuple[Hashable, Any]]:
        """Store `value` as the most recently used; returns the (key, value) pairs dropped."""
        with self._lock:
            if key in self._data:
                self._bytes -= self._size(self._data[key])
            self._data[key] = value
            self._data.move_to_end(key)
            self._bytes += self._size(value)
            dropped = []
            while len(self._data) > 1 and (len(self._data) > self.max_entries or (
                    self.max_bytes is not None and self._bytes > self.max_bytes)):
                old_key, old = self._data.popitem(last=False)
                self._bytes -= self._size(old)
                dropped.append((old_key, old))
            return dropped

    def pop(self, key: Hashable, default=None):
        with self._lock:
            if key not in self._data:
                return default
            value = self._data.pop(key)
            self._bytes -= self._size(value)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def keys(self) -> list:
        """Keys from the least to the most recently used."""
        with self._lock:
            return list(self._data)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data


# --- model size policy ----------------------------------------------------------------------

# The tunables are `shufflenet.settings.SETTINGS`' (environment overrides there).
#: The model cache keeps at most this many configurations (a model and its compiled predictor each)...
MODEL_CACHE_ENTRIES = SETTINGS.model_cache_entries
#: ...and at most this much estimated memory between them (see `model_memory`); the least
#: recently used are dropped first. A classroom of sessions cannot grow it past this.
MODEL_CACHE_BYTES = SETTINGS.model_cache_bytes
#: The largest network the app builds; every other view works for any configuration.
MODEL_MAX_BYTES = SETTINGS.model_max_bytes
#: What builds found out about their models (a few kB each) is kept for this many configurations.
FACTS_ENTRIES = SETTINGS.facts_entries


class ModelTooLargeError(ValueError):
    """The configuration's model is larger than the server builds; the message says what to change."""


@functools.lru_cache(maxsize=SETTINGS.memory_entries)
def _memory(config: ShuffleNetConfig) -> tuple[int, int]:
    """(weight bytes, activation bytes of one picture), computed once per configuration: every
    page update asks, and the analysis takes milliseconds."""
    from .analysis import key_figures

    figures = key_figures(config)
    return int(figures["model_bytes"]), int(figures["activation_bytes"])


def model_memory(config: ShuffleNetConfig) -> int:
    """Estimated bytes of a built model: its float32 weights plus one picture's activations."""
    return sum(_memory(config))


def check_model_size(config: ShuffleNetConfig, max_bytes: int | None = None) -> None:
    """Raise ModelTooLargeError before building a model the server should not hold."""
    limit = MODEL_MAX_BYTES if max_bytes is None else max_bytes
    weights, activations = _memory(config)
    need = weights + activations
    if need > limit:
        raise ModelTooLargeError(
            f"This network needs about {format_bytes(need)} to run ({format_bytes(weights)} of weights "
            f"and {format_bytes(activations)} of activations per picture), more than the "
            f"{format_bytes(limit)} this server builds a model for. Lower the width scale, the units per "
            "stage, the input size or the number of classes. The other views work at any size."
        )


# --- what a built model says about itself ---------------------------------------------------

class ModelFacts(NamedTuple):
    """Counted on the built Keras model itself (not by the analysis), to check the analysis."""

    trainable: int  # trainable parameters
    non_trainable: int  # batch-norm statistics
    layers: int  # Keras layers, the input left out (as `analysis.key_figures` counts them)
    rows: tuple[tuple[str, str, str, int], ...]  # (layer, type, output shape, parameters), in model order


def _shape_text(shape) -> str:
    """(None, 56, 56, 240) -> '56×56×240' (the batch left out)."""
    dims = [d for d in tuple(shape)[1:]]
    return "×".join("?" if d is None else str(int(d)) for d in dims)


def model_facts(model) -> ModelFacts:
    """Parameter and layer counts and a `model.summary()`-like row per layer, read from a Keras model."""
    import math

    def count(weights) -> int:
        return sum(math.prod(int(d) for d in w.shape) for w in weights)

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    rows = tuple((layer.name, type(layer).__name__, _shape_text(layer.output.shape), int(layer.count_params()))
                 for layer in layers)
    return ModelFacts(count(model.trainable_weights), count(model.non_trainable_weights), len(layers), rows)


def summary_table(model_or_facts):
    """A compact `model.summary()` of a built model: one row per layer (the input left out) with
    its name, Keras type, output shape (batch left out) and parameter count, in model order.
    Takes the Keras model or its `ModelFacts`."""
    import pandas as pd

    facts = model_or_facts if isinstance(model_or_facts, ModelFacts) else model_facts(model_or_facts)
    return pd.DataFrame(list(facts.rows), columns=["layer", "type", "output shape", "params"]).astype(
        {"params": "int64"})


def facts_problems(facts: ModelFacts, figures: dict) -> list[str]:
    """Where the built model disagrees with the analysis (`analysis.key_figures`); [] when it agrees."""
    problems = []
    for name, built, analytic in (("trainable parameters", facts.trainable, figures["params"]),
                                  ("batch-norm statistics", facts.non_trainable, figures["non_trainable"]),
                                  ("layers", facts.layers, figures["layers"])):
        if int(built) != int(analytic):
            problems.append(f"the built Keras model has {int(built):,} {name}, the analysis counts {int(analytic):,}")
    return problems


# --- importing TensorFlow -------------------------------------------------------------------

_FROZEN = False
_FREEZE_LOCK = threading.Lock()


def _loaded(name: str) -> bool:
    """True once module `name` has finished importing (not while another thread imports it)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def freeze_after_import() -> bool:
    """After TensorFlow and Keras are imported, once per process: collect, then `gc.freeze()`,
    which moves every object alive into a generation the collector never walks again. Their
    objects live as long as the process anyway; afterwards each collection only walks what
    pages made since. True when it froze now. Cheap to call on every page update."""
    global _FROZEN
    if _FROZEN or not (_loaded("tensorflow") and _loaded("keras")):
        return False
    with _FREEZE_LOCK:
        if _FROZEN:
            return False
        gc.collect()
        gc.freeze()
        _FROZEN = True
    return True


# --- garbage collection in a server -------------------------------------------------------
# Python's automatic full collection walks every object alive, here the built models' hundreds of
# thousands of layers, nodes and tensors; with pages being computed around it, it stalls them all
# (measured in a class of 30: 33 full collections of 270 ms on average, 1.4 s at worst, in one
# run). `Collector.install` keeps the young collections (rarer) and stops the automatic full
# ones; the background builder's thread makes them instead, at quiet moments: soon after a model
# left the cache (its memory is freed by a full collection), else every FULL_COLLECT_EVERY_S,
# and at the latest every FULL_COLLECT_LATEST_S even without a quiet moment.

#: gen0 after this many net allocations (Python: 700), gen1 after 20 gen0; gen2 never automatically.
GC_THRESHOLDS = (20_000, 20, 1_000_000_000)
FULL_COLLECT_QUIET_S = SETTINGS.full_collect_quiet_s
FULL_COLLECT_EVERY_S = SETTINGS.full_collect_every_s
FULL_COLLECT_LATEST_S = SETTINGS.full_collect_latest_s


class Collector:
    """Full garbage collections at quiet moments instead of whenever allocations trigger them."""

    def __init__(self, activity: Activity | None = None):
        self.activity = activity
        self.installed = False
        self.collections = 0
        self._last = time.monotonic()
        self._requested = False
        self._lock = threading.Lock()

    def install(self) -> None:
        """Switch the process to collections by this collector (once; idempotent)."""
        if not self.installed:
            gc.set_threshold(*GC_THRESHOLDS)
            self.installed = True

    def request(self) -> None:
        """Something large became garbage (a model left the cache): collect at the next quiet moment."""
        self._requested = True

    def maybe_collect(self) -> bool:
        """Collect now if one is due and nobody waits for a page (or one is long overdue)."""
        if not self.installed:
            return False
        since = time.monotonic() - self._last
        activity = self.activity or ACTIVITY
        due = (self._requested or since >= FULL_COLLECT_EVERY_S) and activity.quiet_for() >= FULL_COLLECT_QUIET_S
        if not (due or since >= FULL_COLLECT_LATEST_S):
            return False
        with self._lock:
            clear_tensorflow_caches()
            gc.collect()
            _trim_heap()
            self._last, self._requested = time.monotonic(), False
            self.collections += 1
        return True


COLLECTOR = Collector()


def clear_tensorflow_caches() -> None:
    """Drop TensorFlow's eager kernel cache: it keeps a kernel for every op and shape it has run,
    so every new network's build adds its own (measured: RSS grew by 10-15 MB a build over 24
    random networks, however few of them the model cache kept; cleared after each build, it
    followed the weights alive). Streamlit did this after every page update (with a full
    collection); here it is done after a background build and with the full collections."""
    if not _loaded("tensorflow"):
        return
    try:
        from tensorflow.python.eager import context

        context.context().clear_kernel_cache()
    except Exception:  # noqa: BLE001 - a cache that cannot be cleared is only memory
        pass


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's `malloc_trim`), after a
    collection freed a model: without it the process keeps the high-water mark of its builds."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


def import_tensorflow():
    """Import TensorFlow and Keras (seconds, once), then `freeze_after_import`; returns keras."""
    import keras
    import tensorflow  # noqa: F401

    freeze_after_import()
    return keras


# --- page activity --------------------------------------------------------------------------

class Activity:
    """How many page updates are being computed, and since when none is: background work waits
    for quiet moments, so that it takes CPU from nobody waiting for a page."""

    def __init__(self):
        self._running = 0
        self._last_end = 0.0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around one page update (also when it ends by an exception, e.g. a newer rerun)."""
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._last_end = time.monotonic()

    @property
    def busy(self) -> bool:
        return self._running > 0

    def quiet_for(self) -> float:
        """Seconds since the last page update ended; 0 while one runs."""
        with self._lock:
            return 0.0 if self._running else time.monotonic() - self._last_end


ACTIVITY = Activity()


# --- the model cache ------------------------------------------------------------------------

class ModelEntry:
    """One cached configuration: its Keras model (never changed after the build), the compiled
    predictor (made on first use), the estimated bytes and the facts read from the model."""

    __slots__ = ("facts", "lock", "model", "nbytes", "predictor")

    def __init__(self, model, nbytes: int, facts: ModelFacts):
        self.model, self.predictor, self.nbytes, self.facts = model, None, nbytes, facts
        self.lock = threading.Lock()  # held while the predictor is compiled


def build_model_yielding(config: ShuffleNetConfig, pause: Callable[[], None] | None = None):
    """`build_model(config)`, layer by layer through the same factories, calling `pause()`
    before each layer: the background builder passes a pause that waits while pages are
    being computed, so that a build in progress takes the interpreter from no page."""
    from .model import KERAS_FACTORIES, build_graph, default_name
    from .plan import layer_plan

    if pause is None:
        from .model import build_model

        return build_model(config)

    def paused(factory):
        def make(spec, c):
            pause()
            return factory(spec, c)
        return make

    factories = {op: paused(factory) for op, factory in KERAS_FACTORIES.items()}
    return build_graph(config, layer_plan(config), factories, name=default_name(config))


class ModelCache:
    """Least-recently-used models (and predictors) shared by every session's thread, bounded in
    entries and estimated bytes (`model_memory`). Each configuration is built once even when
    sessions ask at the same time; a network above `max_model_bytes` is refused first."""

    def __init__(self, max_entries: int = MODEL_CACHE_ENTRIES, max_bytes: int = MODEL_CACHE_BYTES, *,
                 spinner: Spinner | None = None, max_model_bytes: int | None = None,
                 facts_entries: int = FACTS_ENTRIES):
        self._store = LRU(max_entries, max_bytes, size=lambda entry: entry.nbytes)
        self._facts = LRU(facts_entries)
        self._building: dict = {}  # config -> the lock held while it is built
        self._waiting: dict = {}  # config -> how many callers wait for its build in progress
        self._lock = threading.Lock()
        self.spinner = spinner or _no_spinner
        self.max_model_bytes = max_model_bytes

    @property
    def max_entries(self) -> int:
        return self._store.max_entries

    @property
    def max_bytes(self) -> int:
        return self._store.max_bytes

    @property
    def _entries(self) -> OrderedDict:
        """The entries from the least to the most recently used (read-only; for tests and reports)."""
        return self._store._data

    def check(self, config: ShuffleNetConfig) -> None:
        check_model_size(config, self.max_model_bytes)

    def peek(self, config: ShuffleNetConfig) -> ModelEntry | None:
        """The cached entry, or None; never builds and does not count as a use."""
        return self._store.peek(config)

    def facts(self, config: ShuffleNetConfig) -> ModelFacts | None:
        """What the last build of `config` counted on its model, even after the model was dropped."""
        return self._facts.get(config)

    def is_building(self, config: ShuffleNetConfig) -> bool:
        return config in self._building

    def entry(self, config: ShuffleNetConfig, *, pause: Callable[[], None] | None = None,
              show: bool = True) -> ModelEntry:
        """The cached entry of `config`, built now if needed (with the spinner when `show`).
        ModelTooLargeError above the size limit, before anything is built."""
        entry = self._store.get(config)
        if entry is not None:
            return entry
        self.check(config)
        with self._lock:
            building = self._building.setdefault(config, threading.Lock())
        if pause is not None:
            # A page waiting for this very build must not wait for the build's pauses, which
            # give way to pages: the build then runs flat out.
            quiet_pause = pause
            pause = lambda: None if self._waiting.get(config) else quiet_pause()
        try:
            if not building.acquire(blocking=False):  # someone builds it: wait for that one build
                with self._lock:
                    self._waiting[config] = self._waiting.get(config, 0) + 1
                try:
                    building.acquire()
                finally:
                    with self._lock:
                        self._waiting[config] -= 1
                        if not self._waiting[config]:
                            del self._waiting[config]
            try:
                entry = self._store.get(config)
                if entry is None:
                    with self.spinner("Building the Keras model...") if show else contextlib.nullcontext():
                        import_tensorflow()
                        WORK_DONE["model"] += 1
                        model = build_model_yielding(config, pause)
                        entry = ModelEntry(model, model_memory(config), model_facts(model))
                    self._facts.put(config, entry.facts)
                    if self._store.put(config, entry):
                        COLLECTOR.request()  # a dropped model is freed by a full collection
            finally:
                building.release()
        finally:
            with self._lock:
                if self._building.get(config) is building and not self._waiting.get(config):
                    del self._building[config]
        return entry

    def model(self, config: ShuffleNetConfig):
        return self.entry(config).model

    def predictor(self, config: ShuffleNetConfig):
        """The compiled `inference.Predictor` of `config`'s model (shared, read-only)."""
        from .inference import Predictor

        entry = self.entry(config)
        if entry.predictor is None:
            with entry.lock:
                if entry.predictor is None:
                    with self.spinner("Compiling the model for inference..."):
                        WORK_DONE["predictor"] += 1
                        entry.predictor = Predictor(entry.model)
        return entry.predictor

    @property
    def nbytes(self) -> int:
        return self._store.nbytes

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()


# --- building in the background -------------------------------------------------------------

#: The builder starts a build once no page update has run for this long...
BUILD_SETTLE_S = SETTINGS.build_settle_s
#: ...or once a request has waited this long (under constant load it then builds anyway, still
#: pausing between layers while pages are computed, at most `BUILD_MAX_PAUSE_S` per layer).
BUILD_MAX_WAIT_S = SETTINGS.build_max_wait_s
BUILD_MAX_PAUSE_S = SETTINGS.build_max_pause_s
#: A request nobody repeated for this long is dropped (its page is gone or shows another network).
BUILD_REQUEST_TTL_S = SETTINGS.build_request_ttl_s
#: At most this many configurations wait; the oldest requests go first.
BUILD_MAX_PENDING = SETTINGS.build_max_pending
#: Networks with more weights than this are not built in the background but when a view needs
#: their model (Predictions, Inside): a build needs about twice its weights at its peak, and
#: memory once used stays with the process, so a class trying wide networks would otherwise
#: leave the server hundreds of MB larger (bench/classroom.py). The paper's 1x g = 3 has 7.5 MB.
BACKGROUND_MAX_WEIGHT_BYTES = SETTINGS.background_max_weight_bytes


class Cancelled(Exception):
    """Background work was stopped because the process is ending."""


#: Background workers still running when the process ends are stopped at their next step, so
#: that no thread is inside TensorFlow while the interpreter shuts down (that aborts the process).
_WORKERS: weakref.WeakSet = weakref.WeakSet()
SHUTDOWN_WAIT_S = SETTINGS.shutdown_wait_s


@atexit.register
def _stop_workers() -> None:
    workers = list(_WORKERS)
    for worker in workers:
        worker.cancel()
    deadline = time.monotonic() + SHUTDOWN_WAIT_S
    for worker in workers:
        worker.wait_stopped(max(0.0, deadline - time.monotonic()))


#: Build states a page can show as final (nothing more happens in the background).
FINAL_STATES = ("built", "too large", "on demand", "failed")


class BuildStatus(NamedTuple):
    state: str  # "built", "building", "queued", "too large", "on demand", "failed", "not requested"
    ahead: int = 0  # when queued: builds that come before this one
    message: str = ""  # when too large or failed: why, for people
    facts: ModelFacts | None = None  # when built


class BackgroundBuilder:
    """One thread that builds, into `cache`, the models that sessions' pages show, after those
    pages have been computed. `request(config, who)` says that session `who` (any hashable;
    None for nobody in particular) shows `config` now: it replaces that session's earlier
    request, repeats of the same configuration are one build, and the most recent request is
    built first. Never blocks the caller."""

    def __init__(self, cache: ModelCache, *, activity: Activity = ACTIVITY, settle_s: float = BUILD_SETTLE_S,
                 max_wait_s: float = BUILD_MAX_WAIT_S, max_pause_s: float = BUILD_MAX_PAUSE_S,
                 ttl_s: float = BUILD_REQUEST_TTL_S, max_pending: int = BUILD_MAX_PENDING,
                 collector: Collector = COLLECTOR, max_weight_bytes: int = BACKGROUND_MAX_WEIGHT_BYTES):
        self.cache, self.activity, self.collector = cache, activity, collector
        self.max_weight_bytes = max_weight_bytes
        self.settle_s, self.max_wait_s, self.max_pause_s = settle_s, max_wait_s, max_pause_s
        self.ttl_s, self.max_pending = ttl_s, max_pending
        self.enabled = True
        self._cancelled = False
        self._pending: OrderedDict = OrderedDict()  # config -> [first asked, last asked, {who}]
        self._wants: dict = {}  # who -> config
        self._failed = LRU(64)  # config -> message
        self._current: ShuffleNetConfig | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        _WORKERS.add(self)

    def cancel(self) -> None:
        """Stop for good: the build in progress ends at its next layer, nothing more is built."""
        with self._cond:
            self._cancelled, self.enabled = True, False
            self._pending.clear()
            self._cond.notify_all()

    def wait_stopped(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._current is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    # --- the sessions' side --------------------------------------------------------------

    def request(self, config: ShuffleNetConfig, who: Hashable = None) -> BuildStatus:
        """Ask for `config`'s model to be built (if it is not known already); its status."""
        known = self.status(config, touch=False)
        if known.state in FINAL_STATES:
            self._forget(who)
            return known
        now = time.monotonic()
        with self._cond:
            if who is not None:
                self._release(who, config)
                self._wants[who] = config
            if self._current != config:
                item = self._pending.get(config)
                if item is None:
                    item = self._pending[config] = [now, now, set()]
                item[1] = now
                if who is not None:
                    item[2].add(who)
                self._pending.move_to_end(config)
                while len(self._pending) > self.max_pending:
                    old, (_, _, whos) = self._pending.popitem(last=False)
                    for w in whos:
                        if self._wants.get(w) == old:
                            del self._wants[w]
            self._start()
            self._cond.notify_all()
        return self.status(config, touch=False)

    def status(self, config: ShuffleNetConfig, touch: bool = True) -> BuildStatus:
        """Where `config`'s build stands; `touch` keeps a queued request from expiring."""
        facts = self.cache.facts(config)
        if facts is not None:
            return BuildStatus("built", facts=facts)
        try:
            self.cache.check(config)
        except ModelTooLargeError as exc:
            return BuildStatus("too large", message=str(exc))
        weights = _memory(config)[0]
        if weights > self.max_weight_bytes:
            return BuildStatus("on demand", message=(
                f"Its weights take {format_bytes(weights)}, more than the {format_bytes(self.max_weight_bytes)} this "
                "server builds in the background; a view that runs the model (Predictions, Inside) builds it."))
        failed = self._failed.get(config)
        if failed is not None:
            return BuildStatus("failed", message=failed)
        with self._cond:
            if self._current == config:
                return BuildStatus("building")
            if config in self._pending:
                if touch:
                    self._pending[config][1] = time.monotonic()
                order = list(self._pending)
                return BuildStatus("queued", ahead=len(order) - 1 - order.index(config) + (self._current is not None))
        return BuildStatus("not requested")

    def forget(self, who: Hashable) -> None:
        """Session `who` shows no model any more (e.g. it closed)."""
        self._forget(who)

    def pending(self) -> list[ShuffleNetConfig]:
        """Queued configurations, the next to be built first."""
        with self._cond:
            return list(reversed(self._pending))

    @property
    def current(self) -> ShuffleNetConfig | None:
        return self._current

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or building (tests, benchmarks); True if so in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._current is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def _forget(self, who: Hashable) -> None:
        if who is None:
            return
        with self._cond:
            self._release(who, None)
            self._wants.pop(who, None)

    def _release(self, who: Hashable, keep) -> None:
        """Drop `who`'s earlier request unless it is `keep`; a configuration nobody else asked
        for leaves the queue. Called with the condition held."""
        old = self._wants.get(who)
        if old is None or old == keep:
            return
        item = self._pending.get(old)
        if item is not None:
            item[2].discard(who)
            if not item[2]:
                del self._pending[old]

    # --- the builder's side --------------------------------------------------------------

    def _start(self) -> None:
        if self._cancelled:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="model-builder", daemon=True)
            self._thread.start()

    def _pause(self) -> None:
        """Between two layers: wait while a page is being computed (at most `max_pause_s`)."""
        if self._cancelled:
            raise Cancelled("the process is ending")
        if not self.activity.busy:
            return
        end = time.monotonic() + self.max_pause_s
        while self.activity.busy and time.monotonic() < end:
            time.sleep(0.005)

    def _next(self) -> ShuffleNetConfig | None:
        """Wait for a request and a quiet moment; the configuration to build now."""
        with self._cond:
            while not (self._pending and self.enabled):
                if self._cancelled:
                    return None
                self._cond.wait(1.0)
                self.collector.maybe_collect()
            first = min(item[0] for item in self._pending.values())
        while True:
            quiet = self.activity.quiet_for()
            waited = time.monotonic() - first
            if quiet >= self.settle_s or waited >= self.max_wait_s:
                break
            time.sleep(max(0.01, min(self.settle_s - quiet, 0.1)))
            self.collector.maybe_collect()
        with self._cond:
            now = time.monotonic()
            for config in [c for c, item in self._pending.items() if now - item[1] > self.ttl_s]:
                del self._pending[config]
            if not self._pending or not self.enabled:
                return None
            config, _ = self._pending.popitem(last=True)
            self._current = config
            return config

    def _run(self) -> None:
        while not self._cancelled:
            config = self._next()
            if config is None:
                continue
            try:
                if self.cache.facts(config) is None:
                    self.cache.entry(config, pause=self._pause, show=False)
                    clear_tensorflow_caches()
            except (ModelTooLargeError, Cancelled):
                pass  # too large: `status` says so from the configuration alone
            except Exception as exc:  # noqa: BLE001 - reported to the pages that asked
                self._failed.put(config, f"{type(exc).__name__}: {exc}")
            finally:
                with self._cond:
                    self._current = None
                    self._cond.notify_all()
            self.collector.maybe_collect()


# --- long jobs, one at a time ---------------------------------------------------------------

class Job:
    """One long job: its progress while it runs, then its result or its error."""

    def __init__(self, key: Hashable, label: str):
        self.key, self.label = key, label
        self.fraction, self.message = 0.0, "Starting..."
        self.started, self.finished = time.time(), None
        self.result = None
        self.error: str | None = None
        self.cancelled = False
        self._done = threading.Event()

    def progress(self, fraction: float, message: str) -> None:
        """Called by the work between its steps; raises Cancelled once the process is ending."""
        if self.cancelled:
            raise Cancelled("the process is ending")
        self.fraction, self.message = min(max(float(fraction), 0.0), 1.0), str(message)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class JobBusyError(RuntimeError):
    """Another job runs (two at once would time each other); `.job` is the one running."""

    def __init__(self, job: Job):
        super().__init__(f"Another job runs: {job.label} ({job.fraction:.0%}, {job.message}). "
                         "Wait until it has finished, then start again.")
        self.job = job


class SerialJobs:
    """Long jobs run in a background thread, one at a time, their results kept in `results`
    (an LRU) by key. A job keeps running when the page that started it goes away; any page can
    read its progress (`job`, `running`) and, once done, its result (`result`)."""

    def __init__(self, results: LRU, name: str = "job"):
        self.results, self.name = results, name
        self._current: Job | None = None
        self._failed = LRU(16)  # key -> the last job that failed, for its message
        self._lock = threading.Lock()
        self._cancelled = False
        _WORKERS.add(self)

    def cancel(self) -> None:
        """Stop for good: the job running ends at its next progress report, none starts."""
        self._cancelled = True
        job = self._current
        if job is not None:
            job.cancelled = True

    def wait_stopped(self, timeout: float) -> bool:
        job = self._current
        return job is None or job.wait(timeout)

    def latest(self) -> Job | None:
        """The job started last (running or done), or None."""
        return self._current

    def start(self, key: Hashable, label: str, work: Callable[[Progress], Any]) -> Job:
        """Start `work(progress)` for `key` in the background, or return the job already running
        for `key`. JobBusyError when a job for another key runs."""
        with self._lock:
            current = self._current
            if current is not None and not current.done:
                if current.key == key:
                    return current
                raise JobBusyError(current)
            if self._cancelled:
                raise Cancelled("the process is ending")
            job = self._current = Job(key, label)
            self._failed.pop(key)
            threading.Thread(target=self._run, args=(job, work), name=f"{self.name}-{label}"[:60],
                             daemon=True).start()
        return job

    def _run(self, job: Job, work) -> None:
        try:
            job.result = work(job.progress)
            self.results.put(job.key, job.result)
        except Exception as exc:  # noqa: BLE001 - reported to every page that looks
            job.error = f"{type(exc).__name__}: {exc}"
            self._failed.put(job.key, job)
        finally:
            job.finished = time.time()
            job._done.set()

    def running(self) -> Job | None:
        """The job running now, or None."""
        job = self._current
        return job if job is not None and not job.done else None

    def job(self, key: Hashable) -> Job | None:
        """The job for `key` running now, or the last one that failed for it, or None."""
        job = self._current
        if job is not None and job.key == key and (not job.done or job.error is not None):
            return job
        return self._failed.get(key)

    def result(self, key: Hashable):
        return self.results.get(key)


# --- the latency sweep ----------------------------------------------------------------------

#: Measured sweeps kept (shared by sessions, the oldest dropped first).
LATENCY_MAX_ENTRIES = SETTINGS.latency_max_entries
#: The sweep over g does not depend on the current g: keys hold the configuration at this g.
SWEEP_KEY_GROUPS = 3


def latency_key(config: ShuffleNetConfig, groups, runtimes, threads, repeats: int, include_mobilenet: bool) -> tuple:
    """What a measured sweep depends on; not the current g (the sweep covers every g)."""
    from .analysis import with_groups

    return (with_groups(config, SWEEP_KEY_GROUPS), tuple(groups), tuple(runtimes), tuple(threads), int(repeats),
            bool(include_mobilenet))


def latency_label(key: tuple) -> str:
    """How pages name a measurement: its network and input."""
    config = key[0]
    return (f"{config.scale:g}x, units {'/'.join(map(str, config.blocks))}, "
            f"{config.input_size}×{config.input_size}×{config.channels}")


def latency_work(key: tuple) -> Callable[[Progress], Any]:
    """The sweep of `key` as a job: builds, converts and times every g (minutes at 224×224)."""
    def work(progress: Progress):
        from . import benchmark

        import_tensorflow()
        config, groups, runtimes, threads, repeats, include_mobilenet = key
        WORK_DONE["latency_sweep"] += 1
        return benchmark.latency_sweep(config, groups=groups, runtimes=runtimes, threads=threads, repeats=repeats,
                                       include_mobilenet=include_mobilenet, progress=progress)
    return work
