# Two commands on a fresh machine:
#   make serve   install, execute the lessons (profile full, cached), build the site, serve it
#   make test    install and run the whole test suite
# Both are idempotent: nothing is reinstalled unless requirements.txt or pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1
PROFILE ?= full

.PHONY: setup serve site test lint typecheck bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the course environment into $(VENV) (first time: a few minutes)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

site: $(STAMP)
	@$(BIN)/grader book --profile $(PROFILE)

serve: site
	@$(BIN)/grader serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/python -m pytest

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/mypy

bench: $(STAMP)
	@$(BIN)/python -m bench

clean:
	rm -rf _build
