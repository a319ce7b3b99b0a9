# flarelight: two set-up commands, `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip --disable-pip-version-check -q
# a second venv with the runtime and the test tools only (no TensorFlow, no extras): the runtime's tests pass there
RVENV  ?= .venv-runtime
RPY     = $(RVENV)/bin/python
# the runtime's tests (trainer and Keras-parity tests are marked `train` and deselected there)
RUNTIME_TESTS = tests/test_kernels.py tests/test_running_median.py tests/test_model.py tests/test_catalogue.py \
                tests/test_io.py tests/test_sliding.py tests/test_layers.py tests/test_runtime_only.py \
                tests/test_simulate.py tests/test_bench_models.py
# kernel tests, run a second time with numba's JIT off (the kernels as plain Python)
KERNEL_TESTS  = tests/test_kernels.py tests/test_running_median.py tests/test_baseline.py::test_local_poly_matches_reference \
                tests/test_flarefit.py::test_davenport_model_matches_reference tests/test_flarefit.py::test_lm_matches_plain_reference

.PHONY: demo test install-runtime install-dev install-runtime-test bench train-default train-v1 clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

$(RPY):
	$(PYTHON) -m venv $(RVENV)
	$(RPY) -m pip --disable-pip-version-check -q install --upgrade pip setuptools wheel

install-runtime: $(PY)
	$(PIP) install -e .

install-dev: $(PY)
	$(PIP) install -e ".[dev]"

install-runtime-test: $(RPY)
	$(RPY) -m pip --disable-pip-version-check -q install -e ".[test]"

## make demo: the runtime (+ matplotlib for the plot, no TensorFlow), the shipped default model,
## a simulated light curve -> flare table on stdout + demo.png
demo: $(PY)
	$(PIP) install -e ".[plot]"
	$(VENV)/bin/flarelight demo -o demo.png

## make test: everything installed, whole suite; kernels again without JIT; runtime tests without [train]
test: install-dev install-runtime-test
	$(PY) -m pytest -q
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q -p no:cacheprovider $(KERNEL_TESTS)
	FLARELIGHT_RUNTIME_ONLY=1 $(RPY) -m pytest -q -p no:cacheprovider -m "not train" $(RUNTIME_TESTS)

## benchmarks (see bench/README.md); they print tables and write bench/results/*.json
bench: install-dev
	$(PY) bench/bench_runtime.py
	$(PY) bench/bench_models.py

## retrain the shipped default model, flarelight-v2, from ../shared (see models/flarelight-v2/MODEL_CARD.md)
train-default: install-dev
	$(PY) -m flarelight.trainer.recipe_v2 --shared ../shared --out models/flarelight-v2 --work build/flarelight-v2

## retrain flarelight-v1 (about 10 minutes on 2 cores)
train-v1: install-dev
	$(PY) -m flarelight.trainer.recipe --shared ../shared --out models/flarelight-v1 --work build/flarelight-v1

clean:
	rm -rf build dist *.egg-info .pytest_cache
