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
	@# the content suite (independent kernels) on both cores, then unit + integration in one process
	@$(BIN)/python -m pytest -n 2 --durations=15 tests/content
	@$(BIN)/python -m pytest --durations=15 tests/unit tests/integration

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	@$(BIN)/python -m bench

clean:
	rm -rf _build
