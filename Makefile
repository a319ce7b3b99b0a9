# flarelight: two set-up commands, `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test install-runtime install-dev bench train-default clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

install-runtime: $(PY)
	$(PIP) install -e .

install-dev: $(PY)
	$(PIP) install -e ".[dev]"

## make demo: the runtime (+ matplotlib for the plot, no TensorFlow), the shipped default model,
## a simulated light curve -> flare table on stdout + demo.png
demo: $(PY)
	$(PIP) install -e ".[plot]"
	$(VENV)/bin/flarelight demo -o demo.png

## make test: everything installed, whole suite
test: install-dev
	$(PY) -m pytest -q

## benchmarks (see bench/README.md); they print tables and write bench/results/*.json
bench: install-dev
	$(PY) bench/bench_runtime.py
	$(PY) bench/bench_models.py

## retrain the shipped ensemble from ../shared (about 10 minutes on 2 cores)
train-default: install-dev
	$(PY) -m flarelight.trainer.recipe --shared ../shared --out models/flarelight-v1 --work build/flarelight-v1

clean:
	rm -rf build dist *.egg-info .pytest_cache
