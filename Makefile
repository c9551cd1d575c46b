# Set-up lives here so that a fresh machine needs only `make run` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The test, integration and Milvus extras, on top of what running needs: `make test` only.
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 7860
# The demo is this project's user guide, in a collection of its own ("demo"): uploads from the
# page go to another collection, and the benchmark tables in docs/ never reach the answers.
DEMO := docs/user-guide.md
CORPUS ?= $(DEMO)
COLLECTION ?= $(if $(filter $(DEMO),$(CORPUS)),demo,my-documents)

.PHONY: install install-test run lint test test-slow test-all bench chromium clean-index train-reader

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first and pinned: an unpinned torch resolved by pip may pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[test,mcp,langchain,llamaindex,milvus]"
	touch $(TEST_STAMP)

# What running needs, and no more (`make run`); `make test` and the other targets add the extras.
install: $(STAMP)

install-test: $(TEST_STAMP)

# The main job: index the default corpus (incrementally) and open the web chat on 127.0.0.1.
run: install
	$(BIN)/rag serve --collection $(COLLECTION) --corpus $(CORPUS) --host $(HOST) --port $(PORT)

# Debian's chromium for the browser tests (never a downloaded browser); skipped without root.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	else echo "note: /usr/bin/chromium is missing and cannot be installed here: browser tests will skip"; fi

# Lint and type checks (settings in pyproject.toml); `make test` runs them first.
# The layering contract: each package imports only the layers below it, no import cycles, imports
# inside functions only to defer something heavy (tests/test_structure.py).
lint: install-test
	$(BIN)/ruff check rag train bench tests app.py
	$(BIN)/mypy
	$(BIN)/python -m pytest -q tests/test_structure.py -k "cycle or layer or why"

# The Milvus tests start their own server (milvus-lite server on 127.0.0.1, a free port, a temp
# folder) and stop it when the session ends: the milvus_uri fixture in tests/conftest.py.
test: install-test chromium lint
	$(BIN)/python -m pytest -q

# Model-heavy and long tests, kept out of the default run.
test-slow: install-test
	$(BIN)/python -m pytest -q -m slow

test-all: install-test chromium
	$(BIN)/python -m pytest -q -m "slow or not slow"

# Every benchmark, one after another (about 2 hours on 2 cores), then docs/benchmarks.md.
# Each script also runs alone: see the command at the top of its section in docs/benchmarks.md.
bench: install-test
	$(BIN)/python -m bench.studies.retrieval
	$(BIN)/python -m bench.studies.fusion_study
	$(BIN)/python -m bench.studies.fusion_more
	$(BIN)/python -m bench.studies.squad_answer --latency 50
	$(BIN)/python -m bench.studies.reader_rerank
	$(BIN)/python -m bench.studies.conversation
	$(BIN)/python -m bench.studies.financebench
	$(BIN)/python -m bench.studies.answer_text
	$(BIN)/python -m bench.perf.answer_speed
	$(BIN)/python -m bench.studies.tatqa
	$(BIN)/python -m bench.perf.ingest_formats
	$(BIN)/python -m bench.perf.embed_backends
	$(BIN)/python -m bench.perf.ingest_speed --rounds 2
	$(BIN)/python -m bench.perf.ingest_speed --memory
	$(BIN)/python -m bench.perf.query_latency --questions 50
	$(BIN)/python -m bench.perf.scale
	$(BIN)/python -m bench.studies.compare_frameworks --rounds 2
	$(BIN)/python -m bench.robustness.fault_injection
	$(BIN)/python -m bench.report

# Refit the shipped reader (rag/models/reader-int8.onnx): six stages of one batch stream, each
# continuing the last (about 5 hours on 2 cores), then its abstention rule end to end on
# the calibration articles; needs ../shared/data/train. The recipe is in train/reader/__init__.py.
train-reader: install-test
	$(BIN)/python -m train.reader --steps 1000 --out train/.work/stage1
	$(BIN)/python -m train.reader --steps 900 --lr 5e-5 --skip-steps 1000 \
		--init-from train/.work/stage1/reader-int8.onnx --out train/.work/stage2
	$(BIN)/python -m train.reader --steps 1500 --lr 5e-5 --skip-steps 1900 \
		--init-from train/.work/stage2/reader-int8.onnx --out train/.work/stage3
	$(BIN)/python -m train.reader --steps 1500 --lr 5e-5 --skip-steps 3400 \
		--init-from train/.work/stage3/reader-int8.onnx --out train/.work/stage4
	$(BIN)/python -m train.reader --steps 1500 --lr 5e-5 --skip-steps 4900 \
		--init-from train/.work/stage4/reader-int8.onnx --out train/.work/stage5
	$(BIN)/python -m train.reader --steps 1500 --lr 5e-5 --skip-steps 6400 \
		--init-from train/.work/stage5/reader-int8.onnx
	$(BIN)/python -m train.reader --calibrate

clean-index:
	rm -rf index/gen-* index/CURRENT index/cache index/.lock
