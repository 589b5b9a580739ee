# Two verbs for a new machine: `make demo` (install + run the main job on the embedded
# defaults) and `make test` (install + lint + the test suite). Everything else is a helper.
#
# The environment is built by uv from the hashed lock file; uv does not read pip's config,
# so the local wheel folder pip knows about (where the CPU build of torch lies) is passed
# with --find-links.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
FIND_LINKS ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
UV_FLAGS := $(if $(FIND_LINKS),--find-links $(FIND_LINKS),) --no-progress
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck-tree format lock bench train retrain-check clean

install: $(STAMP)

# Re-install only when the lock or the package metadata changes.
$(STAMP): requirements.lock setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --python $(BIN)/python --require-hashes --compile-bytecode $(UV_FLAGS) requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps $(UV_FLAGS) -e .
	@touch $(STAMP)

demo: install
	$(BIN)/earful demo

test: install lint
	$(BIN)/python -m pytest

lint: install typecheck-tree
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy -p earful.pipeline -p earful.models -p earful.spiders
	$(BIN)/mypy tests bench

# mypy cannot follow setuptools' editable-install finder, so it reads the folders through a
# tree of symlinks laid out as installed: .typecheck/earful/pipeline -> pipeline/, ...
typecheck-tree:
	@mkdir -p .typecheck/earful
	@for d in pipeline models spiders; do ln -sfn ../../$$d .typecheck/earful/$$d; done

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-resolve the lock after changing setup.cfg (needs the package registry).
lock:
	$(BIN)/uv pip compile setup.cfg --extra dev --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 $(UV_FLAGS) -o requirements.lock

bench: install
	$(BIN)/python bench/store.py
	$(BIN)/python bench/crawl.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/insight.py
	$(BIN)/python bench/backtest.py

# Retrain the shipped sentiment model from ../shared/data and rewrite models/sentiment-model/
# (weights, config, model card); about 30 minutes on 2 cores, plus 7 for the evaluation.
train: install
	$(BIN)/python -m earful.models.train

# Retrain into a temporary folder and check the figures match the shipped card within 1 point.
# Kept out of `make test` because it takes ~40 minutes on 2 cores.
retrain-check: install
	EARFUL_TEST_RETRAIN=1 $(BIN)/python -m pytest tests/test_models.py -k retraining -s

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .pytest_cache .ruff_cache .typecheck
