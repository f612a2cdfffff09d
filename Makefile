# Two entry points work on a fresh machine with only Python 3.11 and pip:
#   make demo   - install from uv.lock, generate sample data, dbt build, print a summary
#   make test   - install from uv.lock, lint, pytest (which runs dbt build on fixture data)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
# uv itself lives in its own small venv: `uv sync` makes .venv exactly match the lock file and
# would remove a uv installed there.
UV := .tools/bin/uv
export UV_CACHE_DIR ?= $(HOME)/.cache/userops-uv
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

DEMO_ARGS ?=

.PHONY: help install demo test lint dbt-build clean

help:
	@echo "make demo    generate sample data, build the warehouse, print a summary"
	@echo "make test    lint + pytest (dbt unit and data tests run inside)"
	@echo "make clean   remove generated data, target/ and logs/"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: .venv/.synced

demo: install
	.venv/bin/userops demo $(DEMO_ARGS)

lint: install
	.venv/bin/ruff check userops orchestration tests/python

test: install lint
	.venv/bin/pytest

clean:
	rm -rf data target logs .pytest_cache
