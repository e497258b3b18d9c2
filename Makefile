# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deepfit-installed
# Exact pins: these wheels lie on the dev/CI machine's disk; a looser spec downloads several GB.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench docs clean fashion-mnist postgres chromium

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]" $(TORCH)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deepfit train --data breast_cancer

# Fashion-MNIST from Debian for the image integration tests and benchmarks; best effort (the
# tests that need it are skipped, saying so, where it cannot be installed).
FMNIST := /usr/share/datasets/fashion-mnist
fashion-mnist:
	@test -d $(FMNIST) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)); } || \
	  echo "note: Fashion-MNIST is not installed ($(FMNIST)); its tests will be skipped"

# PostgreSQL server binaries (Debian's postgresql) for the tests of a study shared by several
# workers, which start their own server in a temporary folder; best effort (else skipped, saying so).
postgres:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && export DEBIAN_FRONTEND=noninteractive && \
	  (apt-get install -y -qq postgresql >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq postgresql >/dev/null 2>&1)); } || \
	  echo "note: PostgreSQL is not installed (no initdb); its tests will be skipped"

# Chromium (Debian's) for the playground's browser tests, driven by Playwright from PyPI (no
# browser download); best effort (else skipped, saying so).
chromium:
	@command -v chromium >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && export DEBIAN_FRONTEND=noninteractive && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)); } || \
	  echo "note: Chromium is not installed; the playground's browser tests will be skipped"

test: $(STAMP) fashion-mnist postgres chromium
	$(BIN)/python -m pytest -q --durations=15

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/wide_table.py

docs: $(STAMP)
	$(BIN)/python tools/gen_config_doc.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
