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

test: setup
	$(PY) -m pytest -q -ra

test-fast: setup
	$(PY) -m pytest -q -ra -m "not slow"

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
