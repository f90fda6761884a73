"""What many tests share: the tiny network, the skips for what a machine may lack (Fashion-MNIST,
Debian's Chromium), and a quiet background before each test."""

import sys

import pytest

from shufflenet import ShuffleNetConfig
from shufflenet.settings import quiet_tensorflow

quiet_tensorflow()  # before any test imports TensorFlow (importing `shufflenet` does not)

#: The smallest useful network: builds and trains in a moment (Fashion-MNIST's shape).
TINY = ShuffleNetConfig(groups=2, blocks=(1, 1, 1), scale=0.25, input_size=32, channels=1, num_classes=10)
#: How long a test waits for background work an earlier test left running.
SETTLE_TIMEOUT_S = 300.0


@pytest.fixture
def tiny_config() -> ShuffleNetConfig:
    return TINY


@pytest.fixture(scope="session")
def requires_fashion_mnist():
    """Skip unless Fashion-MNIST can be read offline, where `shufflenet.data` would look for it
    (`SHUFFLENET_DATA`, Keras's cache, the Debian package's folder)."""
    from shufflenet import data

    if data.fashion_mnist_folder() is None:
        pytest.skip(f"Fashion-MNIST not available offline (apt-get install dataset-fashion-mnist, or set "
                    f"{data.ENV_VAR} to a folder holding its four files)")


@pytest.fixture(scope="session")
def requires_chromium():
    """Skip unless Debian's Chromium and the Playwright package are installed (`playwright install`
    is never used: it downloads). Session-wide, so it skips before any module's server starts."""
    from browser_support import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip(f"Debian Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright", reason="the playwright Python package is not installed")


@pytest.fixture(autouse=True)
def _background_settled():
    """Each test starts with the app's background builder and latency jobs idle, so what it counts
    (`cache.WORK_DONE`) is its own work, not what an earlier test left running. Only where the app's
    cache module is loaded: nothing else starts them."""
    cache = sys.modules.get("explorer.cache")
    if cache is None:
        return
    if not cache.BUILDER.wait_idle(SETTLE_TIMEOUT_S) or not cache.LATENCY.wait_stopped(SETTLE_TIMEOUT_S):
        pytest.fail(f"background work left by an earlier test was still running after {SETTLE_TIMEOUT_S:.0f} s")


@pytest.fixture
def no_dot(monkeypatch):
    """The app as on a server without Graphviz's `dot`: the browser lays out the DOT source (and
    the Architecture page is faster)."""
    from shufflenet import diagrams

    monkeypatch.setattr(diagrams, "dot_available", lambda: False)
