# earshot — two commands do everything: `make demo` and `make test`.
# Both install what they need (missing apt packages, a .venv) and are idempotent.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all setup demo test test-fast lint bench deb clean

all: demo

$(STAMP): pyproject.toml scripts/install-system-deps
	scripts/install-system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[train,pi,dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/demo

# One pytest worker per core, up to 4 (whole test files per worker; the trained fixtures are
# built once, under a file lock, and shared through build/test-cache). TEST_JOBS=1: serial.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST := $(PY) -m pytest -q -ra -n $(TEST_JOBS) --dist loadfile

test: setup
	$(PYTEST)

test-fast: setup
	$(PYTEST) -m "not slow"

lint: setup
	$(VENV)/bin/ruff check daemon trainer tests bench
	$(VENV)/bin/mypy daemon trainer

bench: setup
	$(PY) bench/train.py
	$(PY) bench/daemon.py
	$(PY) bench/mcu_cycles.py
	$(PY) bench/quality.py
	$(PY) bench/real_voices.py

# make deb: a package for this machine; make deb ARCH=arm64: for a Pi (docs/deploy.md).
deb: setup
	deploy/build-deb $(if $(ARCH),--arch $(ARCH))

clean:
	rm -rf build out dist .pytest_cache
