# Two commands: `make run` (embedded demo: API + worker on Milvus Lite and a project-started
# redis-server) and `make test` (the whole suite). Both create .venv and install on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch first and pinned: unpinned, sentence-transformers pulls several GB of CUDA wheels.
# Without a local CPU wheel, add the CPU index: make run TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
export HF_HUB_OFFLINE := 1

.PHONY: install run test test-unit lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	$(BIN)/pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/vantage run

test: install
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest tests/unit tests/test_compose.py

lint: install
	$(BIN)/ruff check app indexing embeddings vantage tests bench

# Which modules are strict and which are not checked yet: [tool.mypy] in pyproject.toml.
typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/latency.py

clean:
	rm -rf data .pytest_cache
