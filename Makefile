# Entry points for a new machine: `make demo`, `make test` (quick) and `make test-all` (CI).
# Each creates .venv in the repository root and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.avseg-installed
MMDET_STAMP := $(VENV)/.mmdet-installed

.PHONY: demo test test-all lint docs install chromium clean bench mutants

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

# The documentation site (MkDocs + mkdocstrings) into site/: --strict fails on a broken link or
# anchor; tests/test_api_reference.py fails on an undocumented public name.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Lint, types, the docs site and every test that needs no compiled mmcv: minutes on a new machine.
test: $(STAMP) lint docs
	$(PY) -m pytest -q -m "not mmdet"

# Everything: also builds mmcv (once per machine, reused from the wheelhouse) for the mmdet tests,
# and installs headless Chromium (apt, when root) for the report render test.
test-all: $(STAMP) $(MMDET_STAMP) lint docs chromium
	$(PY) -m pytest -q

chromium:
	bash scripts/install_chromium.sh

bench: $(STAMP)
	$(PY) benchmarks/bench.py

# Mutation testing of the output-deciding modules (cosmic-ray, each module against its fast tests;
# under an hour on 2 cores). Not part of `make test`; results and survivors: docs/testing.md.
# MUTANTS="metrics nms" picks modules (`$(PY) scripts/mutants.py --list`); MUTANT_JOBS parallel
# workers, each in its own scratch copy (default 2: one per core).
MUTANT_JOBS ?= 2
mutants: $(STAMP)
	nice -n 10 $(PY) scripts/mutants.py $(MUTANTS) --jobs $(MUTANT_JOBS) --json mutants.json

clean:
	rm -rf $(VENV) demo-out site
