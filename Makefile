# Two commands on a fresh machine: `make bench` and `make test`. Both set up .venv if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwkit-setup
PLUGINS := $(wildcard plugins/hwkit-*)
EXAMPLE_PLUGIN := $(wildcard examples/hwkit-example-plugin)

.PHONY: setup bench test typecheck conformance clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# hwkit-cpu and hwkit-cuda became hwkit-torch: an old .venv must not keep both claiming cpu/cuda.
	$(PY) -m pip uninstall --quiet --disable-pip-version-check -y hwkit-cpu hwkit-cuda
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements-dev.txt \
		-e . $(foreach p,$(PLUGINS) $(EXAMPLE_PLUGIN),-e $(p))
	@touch $(STAMP)

bench: setup
	$(VENV)/bin/hwkit bench

# The type checker over the core and every shipped plugin ([tool.mypy] in pyproject.toml), then
# the tests (which include the layer and cycle contracts: tests/test_layout.py).
test: setup typecheck
	$(PY) -m pytest -q -n 2 --timeout 600

typecheck: setup
	$(PY) -m mypy

# ONNX's node test suite: the converter alone, then every installed backend through hwkit
# (pass counts printed, and written into docs/conformance.md).
conformance: setup
	$(PY) scripts/conformance_fx.py
	$(PY) scripts/conformance.py --write-docs

clean:
	rm -rf $(VENV) build dist *.egg-info
