# Two entry points for a new machine: `make demo` and `make test`.
# Both create .venv in the repository root and install what they need into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.avseg-installed
MMDET_STAMP := $(VENV)/.mmdet-installed

.PHONY: demo test lint install clean bench

$(STAMP): pyproject.toml examples/avseg-example-plugin/pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) bash scripts/install.sh $(VENV)
	touch $(STAMP)

# MMDetection for the mmdet plugin: mmcv 2.1.0 is built once per machine into
# $${AVSEG_WHEELHOUSE:-~/.cache/avseg/wheelhouse} and reused (see docs/plugins/mmdet.md).
$(MMDET_STAMP): $(STAMP) scripts/install_mmdet.sh
	bash scripts/install_mmdet.sh $(VENV)
	touch $(MMDET_STAMP)

install: $(STAMP) $(MMDET_STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check avseg plugins tests examples benchmarks scripts
	$(VENV)/bin/mypy

test: $(STAMP) $(MMDET_STAMP) lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) demo-out
