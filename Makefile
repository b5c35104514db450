# Two commands on a fresh machine: `make bench` and `make test`. Both set up .venv if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwkit-setup
PLUGINS := $(wildcard plugins/hwkit-*)
EXAMPLE_PLUGIN := $(wildcard examples/hwkit-example-plugin)

.PHONY: setup bench test test-no-torch typecheck conformance clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt requirements-nodeps.txt $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# hwkit-cpu and hwkit-cuda became hwkit-torch: an old .venv must not keep both claiming cpu/cuda.
	$(PY) -m pip uninstall --quiet --disable-pip-version-check -y hwkit-cpu hwkit-cuda
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements-dev.txt \
		-e . $(foreach p,$(PLUGINS) $(EXAMPLE_PLUGIN),-e $(p))
	@# Last, without dependencies: onnx2tf's and tf-keras's metadata conflict with our pins (the
	@# file says which); pip check lists those conflicts, knowingly kept.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

bench: setup
	$(VENV)/bin/hwkit bench

# The type checker over the core and every shipped plugin ([tool.mypy] in pyproject.toml), then
# the tests (which include the layer and cycle contracts: tests/test_layout.py).
test: setup typecheck
	$(PY) -m pytest -q -n 2 --timeout 600

typecheck: setup
	$(PY) -m mypy

# A user's first run without torch (pip install hwkit hwkit-onnxruntime hwkit-openvino): a
# throwaway virtual environment that cannot see .venv's or the system's torch, the pinned
# packages, a bench of a built-in model from an empty cache, and tests/test_without_torch.py.
NO_TORCH := build/no-torch
test-no-torch:
	rm -rf $(NO_TORCH)
	$(PYTHON) -m venv $(NO_TORCH)/venv
	$(NO_TORCH)/venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements-dev.txt \
		-e . -e plugins/hwkit-onnxruntime -e plugins/hwkit-openvino pytest
	@! $(NO_TORCH)/venv/bin/python -c "import torch" 2>/dev/null || { echo "torch is installed in $(NO_TORCH)/venv"; exit 1; }
	HWKIT_CACHE_DIR=$(NO_TORCH)/cache $(NO_TORCH)/venv/bin/hwkit bench mlp \
		--min-time 0.05 --min-iters 3 --warmup 1 --warmup-time 0 --target-ci 0
	$(NO_TORCH)/venv/bin/python -m pytest -q -p no:cacheprovider tests/test_without_torch.py
	rm -rf $(NO_TORCH)

# ONNX's node test suite: the converter alone, then every installed backend through hwkit
# (pass counts printed, and written into docs/conformance.md). tensorflow and litert convert each
# case with onnx2tf in a child process: about 2 h more for the whole suite; the docs hold a sample,
# scripts/conformance.py --backend tensorflow,litert --every 20 --write-docs (about 7 min).
conformance: setup
	$(PY) scripts/conformance_fx.py
	$(PY) scripts/conformance.py --write-docs

clean:
	rm -rf $(VENV) build dist *.egg-info
