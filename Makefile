# flarelight: two set-up commands, `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test install-runtime install-dev bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

install-runtime: $(PY)
	$(PIP) install -e .

install-dev: $(PY)
	$(PIP) install -e ".[dev]"

## make demo: runtime only, shipped default model, simulated light curve -> flare table + demo.png
demo: install-runtime
	$(PY) -m pip --disable-pip-version-check -q install matplotlib
	$(PY) -m flarelight.cli.main demo -o demo.png

## make test: everything installed, whole suite
test: install-dev
	$(PY) -m pytest -q

bench: install-dev
	$(PY) bench/bench_runtime.py

clean:
	rm -rf build dist *.egg-info .pytest_cache
