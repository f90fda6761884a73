"""The server's tunables in one place, each overridable by an environment variable, and the
environment helpers the library shares.

`SETTINGS` is read once, at import: a field `model_cache_entries` is set by
`SHUFFLENET_MODEL_CACHE_ENTRIES=8`. A value that is not a number, or is below the field's
least, is not used: the default stays and `PROBLEMS` says what was wrong and what is allowed
(the server logs it and keeps running). The defaults are what the benches under bench/ were run
with; `python -m shufflenet.settings` prints the values in effect.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping

#: The training engines (`shufflenet.training`): the compiled step over the training graph, and
#: Keras's `fit` on the model. Here, so the CLI lists them without importing the training module.
ENGINES = ("fast", "keras-fit")
#: Prefix of the environment variables that override a setting.
ENV_PREFIX = "SHUFFLENET_"


def _tunable(default, least, help_: str):
    return dataclasses.field(default=default, metadata={"least": least, "help": help_})


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a server may tune: cache sizes, the model size policy and the background builder's
    timing. Each field's metadata holds its least allowed value and what it is for."""

    # --- the shared model cache (shufflenet.serving.ModelCache) ---
    model_cache_entries: int = _tunable(4, 1, "configurations whose model and compiled predictor are kept")
    model_cache_bytes: int = _tunable(1_000_000_000, 1, "estimated memory the kept models may take between them")
    model_max_bytes: int = _tunable(500_000_000, 1, "the largest network (estimated memory) the app builds")
    facts_entries: int = _tunable(512, 1, "configurations whose model facts (counts, summary) are kept")
    # --- the background builder (shufflenet.serving.BackgroundBuilder) ---
    build_settle_s: float = _tunable(0.25, 0.0, "quiet time (no page update) before a build starts")
    build_max_wait_s: float = _tunable(20.0, 0.0, "longest a request waits for a quiet moment")
    build_max_pause_s: float = _tunable(0.5, 0.0, "longest pause between two layers while pages are computed")
    build_request_ttl_s: float = _tunable(180.0, 0.0, "a request nobody repeated for this long is dropped")
    build_max_pending: int = _tunable(64, 1, "configurations that may wait to be built")
    background_max_weight_bytes: int = _tunable(100_000_000, 1, "larger networks are built when a view needs them")
    shutdown_wait_s: float = _tunable(30.0, 0.0, "longest the process waits for background work when it ends")
    # --- garbage collection at quiet moments (shufflenet.serving.Collector) ---
    full_collect_quiet_s: float = _tunable(1.0, 0.0, "quiet time before a full collection")
    full_collect_every_s: float = _tunable(20.0, 0.0, "a full collection at most this often at quiet moments")
    full_collect_latest_s: float = _tunable(120.0, 0.0, "and at the latest this long after the last one")
    # --- results kept by the server (shufflenet.serving, explorer.cache) ---
    latency_max_entries: int = _tunable(16, 1, "measured latency sweeps kept")
    latency_figure_entries: int = _tunable(32, 1, "latency charts kept")
    layer_latency_entries: int = _tunable(16, 1, "per-layer latency measurements kept")
    picture_entries: int = _tunable(96, 1, "diagrams laid out by Graphviz kept")
    # --- the page caches (explorer.cache), entries per cached function ---
    table_entries: int = _tunable(64, 1, "tables and figures of one configuration")
    diagram_entries: int = _tunable(128, 1, "DOT sources of the diagrams")
    image_entries: int = _tunable(16, 1, "sample pictures, thumbnails and decoded uploads")
    checkpoint_entries: int = _tunable(6, 1, "checkpoints loaded as predictors or activation taps")
    upload_entries: int = _tunable(2, 1, "uploaded weights loaded as predictors")
    score_entries: int = _tunable(16, 1, "test-batch accuracies of a loaded model")
    random_taps_entries: int = _tunable(4, 1, "activation taps of randomly initialised models")
    activation_entries: int = _tunable(8, 1, "activations of a picture through a model")
    inside_entries: int = _tunable(32, 1, "panels of the Inside view")
    # --- the library's per-configuration caches ---
    config_cache_entries: int = _tunable(256, 1, "cost rows and receptive fields of a configuration")
    cost_table_entries: int = _tunable(64, 1, "cost tables (pandas) of a configuration")
    memory_entries: int = _tunable(1024, 1, "memory estimates of a configuration")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> tuple[Settings, tuple[str, ...]]:
        """The settings with every `SHUFFLENET_<FIELD>` override applied, and one message per
        override that could not be used (its default stays)."""
        environ = os.environ if environ is None else environ
        values, problems = {}, []
        for field in dataclasses.fields(cls):
            name = ENV_PREFIX + field.name.upper()
            if name not in environ:
                continue
            text, kind, least = environ[name].strip(), type(field.default), field.metadata["least"]
            try:
                value = kind(text.replace("_", ""))
            except ValueError:
                value = None
            if value is None or value < least or value != value:  # NaN is not a number of seconds
                what = "a whole number" if kind is int else "a number"
                problems.append(f"{name}={environ[name]!r} is not used: it must be {what} of at least {least} "
                                f"({field.metadata['help']}). Using the default {field.default!r}.")
                continue
            values[field.name] = value
        return cls(**values), tuple(problems)


SETTINGS, PROBLEMS = Settings.from_environ()
for _problem in PROBLEMS:
    logging.getLogger(__name__).warning(_problem)


# --- the environment ------------------------------------------------------------------------

def quiet_tensorflow_env(onednn: bool = False) -> dict[str, str]:
    """The variables TensorFlow reads at import for a quiet log. `onednn` turns oneDNN's kernels
    on: faster training on CPU, though results then differ in the last bits from run to run."""
    return {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0"}


def quiet_tensorflow(environ: MutableMapping[str, str] | None = None, onednn: bool = False) -> None:
    """Set `quiet_tensorflow_env` in `environ` (this process's by default) where not set already;
    call it before TensorFlow is imported."""
    environ = os.environ if environ is None else environ
    for key, value in quiet_tensorflow_env(onednn).items():
        environ.setdefault(key, value)


@contextlib.contextmanager
def temporary_environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (a string) or remove (None) environment variables for the block, then put back what was
    there, also when the block raises. For a child process that reads them when it starts."""
    saved = {key: os.environ.get(key) for key in changes}
    try:
        _set_environ(changes)
        yield
    finally:
        _set_environ(saved)


def _set_environ(values: Mapping[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


if __name__ == "__main__":
    for _field in dataclasses.fields(Settings):
        print(f"{ENV_PREFIX}{_field.name.upper()}={getattr(SETTINGS, _field.name)!r}  # {_field.metadata['help']}")
    for _problem in PROBLEMS:
        print(_problem)
