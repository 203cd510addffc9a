# make install | demo | test | test-fast | bench — everything runs inside .venv (Python 3.11).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo-out
# pytest-xdist workers; each test file runs whole on one worker (module fixtures, ports)
TEST_WORKERS ?= 2

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): setup.py requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "setuptools>=68" wheel
	$(BIN)/pip install --quiet -e . -r requirements-dev.txt
	touch $(STAMP)

demo: install
	$(BIN)/catalog-tagger sample --output $(DEMO)/catalog.jsonl.gz
	$(BIN)/catalog-tagger preprocess --input $(DEMO)/catalog.jsonl.gz --output-dir $(DEMO)/preprocessed
	$(BIN)/catalog-tagger train --data-dir $(DEMO)/preprocessed --model-dir $(DEMO)/model
	$(BIN)/catalog-tagger predict --input $(DEMO)/catalog.jsonl.gz --model-dir $(DEMO)/model \
		--output-dir $(DEMO)/tags --embeddings
	$(BIN)/catalog-tagger similar --embeddings $(DEMO)/tags --output-dir $(DEMO)/similar --k 5
	$(BIN)/catalog-tagger evaluate --predictions $(DEMO)/tags --catalog $(DEMO)/catalog.jsonl.gz \
		--model-dir $(DEMO)/model --split test --output-dir $(DEMO)/evaluation
	@echo "demo done: tags in $(DEMO)/tags/tags/, similar videos in $(DEMO)/similar/similar/," \
		"evaluation in $(DEMO)/evaluation/report.html"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The unit tests: everything but the end-to-end tests marked slow (tests/conftest.py).
test-fast: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

bench: install
	$(BIN)/pip install --quiet -e ".[bench,serve]"
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/predict.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/quality.py

clean:
	rm -rf $(DEMO) build dist *.egg-info .pytest_cache .ruff_cache
