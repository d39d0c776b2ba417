# Two commands on a fresh machine:
#   make serve   install, execute the lessons (profile full, cached), build the site, serve it
#   make test    install and run the whole test suite
# Both are idempotent: nothing is reinstalled unless requirements.txt or pyproject.toml changed.

SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1
PROFILE ?= full

#: one thread for OpenMP, OpenBLAS, MKL, numexpr and torch in every process the parallel tests start
ONE_THREAD := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1
#: test suites that run alone after the rest (make test)
SERIAL_TESTS := tests/integration/test_hostile.py tests/integration/service

.PHONY: setup system-packages serve site test lint typecheck bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the course environment into $(VENV) (first time: a few minutes)"
	@# (this machine's pip config names local package folders that may not exist: keep those lines out)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 \
	  | { grep -v "^WARNING: Location 'file:" || true; }; test $${PIPESTATUS[0]} -eq 0
	@touch $@

# What the grading sandbox needs from Debian, installed only when missing (root + apt-get).
SYSTEM_PACKAGES := bubblewrap libseccomp2 chromium nginx openssl
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing$$missing (needed for sandboxed grading; see grader doctor)"; fi; \
	fi

site: $(STAMP)
	@$(BIN)/grader book --profile $(PROFILE)

serve: site
	@$(BIN)/grader serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache
	@# on both cores (pytest-xdist), all but the suites that share host-wide state; then those, in one process:
	@# the hostile sandbox suite (it counts and kills job uids' processes) and the service (leases, one broker).
	@# One numerical thread per process (as graded kernels have): two workers whose kernels each start a
	@# thread per core oversubscribe the machine, and OpenMP's spinning threads then slow everything tenfold.
	@$(ONE_THREAD) $(BIN)/python -m pytest -n 2 --dist worksteal --durations=15 tests $(SERIAL_TESTS:%=--ignore=%)
	@$(BIN)/python -m pytest --durations=10 $(SERIAL_TESTS)

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	@$(BIN)/python -m bench

clean:
	rm -rf _build
