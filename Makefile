# The two commands: `make run` (set up, start the app) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: run test unit lint setup browser bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

# Headless Chromium for the browser test (Debian package; Playwright's own browser download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the browser test"; fi; }

run: $(STAMP)
	$(PY) app.py

# Lint and types (config in pyproject.toml), the unit tier, then every test on the real data with the CPU's default
# precision, then the quality bars again with f32 forced (REID_PRECISION), unless f32 already is this CPU's default:
# results must not depend on the CPU's bf16 support.
test: $(DEV_STAMP) browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest tests/unit
	$(PY) -m pytest tests --ignore=tests/unit
	@if [ "$$($(PY) -c 'from reid_core.precision import inference_precision as p; print(p())')" = f32 ]; then \
	  echo "this CPU computes in f32 by default: the run above was the forced-f32 run"; \
	else REID_PRECISION=f32 $(PY) -m pytest -m quality; fi

# The unit tier alone (tests/unit: no data, no models, no network; well under a minute). `make test` runs both tiers.
unit: $(DEV_STAMP)
	$(PY) -m pytest tests/unit

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/ingest.py --repeat 3

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
