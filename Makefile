# `make run` and `make test` do all set-up on a fresh machine: system packages (apt-get, when
# root), a virtualenv with the pinned requirements, then the app or the whole test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0

.PHONY: run test test-fast lint bench setup system clean

# Several app processes behind a small sticky proxy (explorer/serve.py; README, "Serving a larger
# class"): one process uses about one core. PROCESSES=1 runs a single plain Streamlit server.
PROCESSES ?= 2

run: system $(VENV)/.installed
ifeq ($(PROCESSES),1)
	$(VENV)/bin/streamlit run explorer/app.py
else
	$(PY) explorer/serve.py --processes $(PROCESSES)
endif

test: setup
	$(PY) -m ruff check shufflenet explorer tests bench
	$(PY) -m pytest

# The quick lane while working: no test marked slow (over ~5 s) or browser; `make test` runs all.
test-fast: setup
	$(PY) -m ruff check shufflenet explorer tests bench
	$(PY) -m pytest -m "not slow and not browser" -q

bench: setup
	$(PY) bench/group_conv.py
	$(PY) bench/perf_targets.py
	$(PY) bench/ui_latency.py

lint: setup
	$(PY) -m ruff check shufflenet explorer tests bench

setup: system $(VENV)/.installed-dev

# System packages: the `dot` binary (SVG export), Chromium (browser tests), Fashion-MNIST.
system:
	@missing=""; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: not root, so not installing$$missing (SVG export / browser tests / offline data will be skipped)"; \
	  fi; \
	fi

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/artifacts bench/results
