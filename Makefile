# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast bench bench-md bench-scaling lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip -c constraints.txt

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(VENV)/bin/ase-gnn demo --out demo_out

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# mace-torch pins e3nn 0.4.4 and nequip needs e3nn 0.6: each gets its own environment.
bench/.venv-mace/.installed: constraints.txt
	$(PYTHON) -m venv bench/.venv-mace
	bench/.venv-mace/bin/python -m pip install --quiet -c constraints.txt torch==2.13.0 mace-torch
	touch $@

bench/.venv-nequip/.installed: constraints.txt
	$(PYTHON) -m venv bench/.venv-nequip
	bench/.venv-nequip/bin/python -m pip install --quiet -c constraints.txt torch==2.13.0 nequip
	touch $@

bench: $(STAMP) bench/.venv-mace/.installed bench/.venv-nequip/.installed
	$(PY) bench/compare.py

bench-md: $(STAMP)
	$(PY) bench/md_step.py

# time per atom up to 32,000 atoms of the models `make bench` trained (about 20 min, 14 GiB)
bench-scaling: $(STAMP) bench/.venv-mace/.installed bench/.venv-nequip/.installed
	$(PY) bench/compare.py --scaling

lint: $(STAMP)
	$(VENV)/bin/ruff check ase_gnn explain tests bench
	$(VENV)/bin/ruff format --check ase_gnn explain tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo_out .pytest_cache bench/.venv-mace bench/.venv-nequip
