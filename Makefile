# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deepfit-installed
# Exact pins: these wheels lie on the dev/CI machine's disk; a looser spec downloads several GB.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]" $(TORCH)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deepfit train --data breast_cancer

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_overhead.py

docs: $(STAMP)
	$(BIN)/python tools/gen_config_doc.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
