# The two set-up commands are `make run` and `make test`; both go through `make install`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install install-test run test bench clean docker-test docs lock

# Idempotent: the stamp files change only when pyproject.toml does.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e '.[test,ray]'  # ray: the Ray executor's tests (tests/ray) run too
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(VENV)/bin/playground serve --host $(HOST) --port $(PORT)

# Two pytest workers (each test module on one, the Ray and the Firefox modules each on one:
# tests/conftest.py's scheduler). Most of a test's time is waiting (a server starting, a job, a
# page), so two share the 2-core VMs well: on the AMD EPYC (Zen 5) VM the suite took 11.5 minutes on
# two against 19.5 on one, the same hour. PYTEST_WORKERS=1 runs one.
PYTEST_WORKERS ?= 2
test: install-test
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Needs Docker or podman (DOCKER=podman): builds the CPU image, runs it, trains the book's line fit
# through the API, stops it with SIGTERM (tests/deploy/test_image.py, opt-in, not in `make test`).
docker-test: install-test
	PLAYGROUND_IMAGE_TEST=1 $(PY) -m pytest -q -n 0 -p no:cacheprovider -s tests/deploy/test_image.py

# Rewrites the README's table of PLAYGROUND_* variables from app/config.py.
docs: install
	$(PY) -m app.settings_doc --write README.md

# Rewrites docker/constraints.txt: the versions the image installs besides torch (docker/lock.py).
lock: install
	$(PY) docker/lock.py

clean:
	rm -rf $(VENV) var .pytest_cache test-artifacts
