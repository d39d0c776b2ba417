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
#: the service suite: one process (its tests share leases, queues and one broker), alongside the rest (make test)
SERVICE_TESTS := tests/integration/service
#: the hostile sandbox suite: alone, after everything else (it counts and kills job uids' processes host-wide)
ALONE_TESTS := tests/integration/test_hostile.py
SERIAL_TESTS := $(ALONE_TESTS) $(SERVICE_TESTS)
SERVICE_LOG := _build/service-tests.log

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
	@# On both cores (pytest-xdist, niced), all but the suites that share host-wide state. Alongside, in one
	@# process at normal priority, the service suite: it mostly waits (on workers, leases, the broker) and uses
	@# under half a core, so it costs the rest little; its output is shown when both are done. Then, alone,
	@# the hostile sandbox suite. One numerical thread per process (as graded kernels have): two workers whose
	@# kernels each start a thread per core oversubscribe the machine, and OpenMP's spinning threads then slow
	@# everything tenfold.
	@mkdir -p $(dir $(SERVICE_LOG)); \
	$(BIN)/python -m pytest --durations=10 $(SERVICE_TESTS) > $(SERVICE_LOG) 2>&1 & service=$$!; \
	nice -n 10 env $(ONE_THREAD) $(BIN)/python -m pytest -n 2 --dist worksteal --durations=15 tests \
	  $(SERIAL_TESTS:%=--ignore=%); rest=$$?; \
	wait $$service; served=$$?; \
	echo "=== the service suite ($(SERVICE_TESTS)), run alongside: its output ($(SERVICE_LOG)) ==="; \
	cat $(SERVICE_LOG); [ $$rest -eq 0 ] && [ $$served -eq 0 ]
	@$(BIN)/python -m pytest --durations=10 $(ALONE_TESTS)

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	@$(BIN)/python -m bench

clean:
	rm -rf _build
