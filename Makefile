# `make run` and `make test` do all set-up on a fresh machine: system packages (apt-get, when
# root), a virtualenv with the pinned requirements, then the app or the whole test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0

.PHONY: run class test test-fast lint bench setup system clean

# One Streamlit process: enough for one laptop or a small group.
run: system $(VENV)/.installed
	$(VENV)/bin/streamlit run explorer/app.py

# A bigger class (docs/serving.md): PROCESSES app processes (about one per CPU core) behind
# HAProxy on 127.0.0.1:PORT, in the foreground; Ctrl-C stops them all.
PROCESSES ?= 2
PORT ?= 8501
class: system $(VENV)/.installed
	$(PY) deploy/balancer.py --processes $(PROCESSES) --port $(PORT)

test: setup
	$(PY) -m ruff check shufflenet explorer tests bench deploy
	$(PY) -m pytest

# The quick lane while working: no test marked slow (over ~5 s) or browser; `make test` runs all.
test-fast: setup
	$(PY) -m ruff check shufflenet explorer tests bench deploy
	$(PY) -m pytest -m "not slow and not browser" -q

bench: setup
	$(PY) bench/group_conv.py
	$(PY) bench/perf_targets.py
	$(PY) bench/ui_latency.py

lint: setup
	$(PY) -m ruff check shufflenet explorer tests bench deploy

setup: system $(VENV)/.installed-dev

# System packages: the `dot` binary (SVG export), Chromium (browser tests), Fashion-MNIST,
# HAProxy (`make class`).
system:
	@missing=""; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: not root, so not installing$$missing (SVG export / browser tests / offline data / make class will be skipped)"; \
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
