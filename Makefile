# Two commands on a fresh machine: `make bench` and `make test`. Both set up .venv if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwkit-setup
PLUGINS := $(wildcard plugins/hwkit-*)
EXAMPLE_PLUGIN := $(wildcard examples/hwkit-example-plugin)

.PHONY: setup bench test conformance clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements-dev.txt \
		-e . $(foreach p,$(PLUGINS) $(EXAMPLE_PLUGIN),-e $(p))
	@touch $(STAMP)

bench: setup
	$(VENV)/bin/hwkit bench

test: setup
	$(PY) -m pytest -q -n 2 --timeout 600

# ONNX's node test suite: the converter alone, then every installed backend through hwkit
# (pass counts printed, and written into docs/conformance.md).
conformance: setup
	$(PY) scripts/conformance_fx.py
	$(PY) scripts/conformance.py --write-docs

clean:
	rm -rf $(VENV) build dist *.egg-info
