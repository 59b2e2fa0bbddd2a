# Everything a fresh machine needs, into a local virtualenv; fast when already done.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup browser test test-all lint bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian's headless Chromium and chromedriver, for the report.html browser tests (they skip without).
browser:
	tools/chromium.sh install

# Test files are shared out whole between TEST_WORKERS processes (pytest-xdist), so a file's
# session fixtures are built once; 2 fits this 2-core machine, where compiling is one thread.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST)

test-all: $(STAMP)  # includes the slow tests on real data
	$(PYTEST) -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The speed record, docs/benchmarks.md, beside PyTorch: the [bench] extra (torch) is not part of
# `setup`; MNIST from $(TFDS_DATA_DIR) when it holds it, else synthetic images. Run it on an idle
# machine (15–35 minutes on 2 cores).
BENCH_FLAGS := --repeats=5 --is_examples=1000 --is_repeats=2 --markdown_out=docs/benchmarks.md

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m benchmarks.run $(BENCH_FLAGS)

# A 2-D VAE on the embedded 8x8 digits (no download, no ../shared): Bernoulli cross-entropy on grey
# levels, as in the code of the lecture this project follows (see README; its metrics are named
# *_xent: not a likelihood), 100 epochs.
DEMO_FLAGS := --config=configs/vae.py:data=digits,latent=2 --config.data.binarization=none \
	--config.train.num_epochs=100 --config.train.eval_every=10 --config.checkpoint.every_epochs=10

demo: $(STAMP)
	$(PY) -m experiments.train $(DEMO_FLAGS) --workdir=runs/demo
	$(PY) -m experiments.evaluate --workdir=runs/demo  # runs/demo/eval.json, runs/demo/figures/

clean:
	rm -rf runs .pytest_cache
