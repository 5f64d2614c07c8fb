# The two commands: `make run` (set up, start the app) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: run test setup browser bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

# Headless Chromium for the browser test (Debian package; Playwright's own browser download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the browser test"; fi; }

run: $(STAMP)
	$(PY) app.py

test: $(STAMP) browser
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
