"""The server's tunables (shufflenet/settings.py): defaults, environment overrides, what a bad
override says, and the environment helpers."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from shufflenet import serving, settings
from shufflenet.settings import Settings, quiet_tensorflow, quiet_tensorflow_env, temporary_environ


def test_every_setting_declares_its_least_value_and_what_it_is_for():
    for field in dataclasses.fields(Settings):
        assert field.default >= field.metadata["least"] and field.metadata["help"], field.name
    assert settings.SETTINGS.model_cache_entries == serving.MODEL_CACHE_ENTRIES


def test_overrides_are_read_by_type_and_bad_ones_keep_the_default_with_a_message():
    read, problems = Settings.from_environ({"SHUFFLENET_MODEL_CACHE_ENTRIES": "8",
                                            "SHUFFLENET_BUILD_SETTLE_S": " 0.5 ",
                                            "SHUFFLENET_MODEL_MAX_BYTES": "250_000_000"})
    assert (read.model_cache_entries, read.build_settle_s, read.model_max_bytes) == (8, 0.5, 250_000_000)
    assert problems == ()
    read, problems = Settings.from_environ({"SHUFFLENET_MODEL_CACHE_ENTRIES": "lots",
                                            "SHUFFLENET_BUILD_MAX_PENDING": "0",
                                            "SHUFFLENET_BUILD_SETTLE_S": "nan",
                                            "SHUFFLENET_TABLE_ENTRIES": "2.5"})
    assert read == Settings()
    assert len(problems) == 4
    assert problems[0] == ("SHUFFLENET_MODEL_CACHE_ENTRIES='lots' is not used: it must be a whole number of at "
                           "least 1 (configurations whose model and compiled predictor are kept). Using the "
                           "default 4.")
    assert any("SHUFFLENET_BUILD_SETTLE_S='nan'" in p and "a number of at least 0.0" in p for p in problems)


def test_the_server_reads_its_overrides_at_start():
    code = "from shufflenet import serving; print(serving.MODEL_CACHE_ENTRIES, serving.BUILD_MAX_PENDING)"
    env = {**os.environ, "SHUFFLENET_MODEL_CACHE_ENTRIES": "7", "SHUFFLENET_BUILD_MAX_PENDING": "x"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["7", str(Settings().build_max_pending)]
    assert "SHUFFLENET_BUILD_MAX_PENDING='x' is not used" in done.stderr  # logged; the server keeps running


def test_temporary_environ_sets_removes_and_restores_even_on_error(monkeypatch):
    monkeypatch.setenv("SHUFFLENET_TEST_KEPT", "before")
    monkeypatch.delenv("SHUFFLENET_TEST_NEW", raising=False)
    seen = {}

    def fail_inside():
        with temporary_environ({"SHUFFLENET_TEST_KEPT": None, "SHUFFLENET_TEST_NEW": "1"}):
            seen.update(kept=os.environ.get("SHUFFLENET_TEST_KEPT"), new=os.environ.get("SHUFFLENET_TEST_NEW"))
            raise RuntimeError("the block fails")

    with pytest.raises(RuntimeError):
        fail_inside()
    assert seen == {"kept": None, "new": "1"}
    assert os.environ["SHUFFLENET_TEST_KEPT"] == "before" and "SHUFFLENET_TEST_NEW" not in os.environ


def test_quiet_tensorflow_keeps_what_is_set():
    environ = {"TF_CPP_MIN_LOG_LEVEL": "1"}
    quiet_tensorflow(environ)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}
    assert quiet_tensorflow_env(onednn=True) == {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1"}
