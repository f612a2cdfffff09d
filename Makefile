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
# A known incident the demo's alerts find (docs/alerts.md): organic users' chance to pay falls to
# 30 % on the last day. Empty: no incident.
DEMO_INCIDENT ?= organic:last:0.3

DAGSTER_PORT ?= 3000

.PHONY: help install demo test bench lint dbt-build clean dagster dagster-home dagster-manifest

help:
	@echo "make demo    generate sample data, build the warehouse, print a summary"
	@echo "make test    lint + pytest (dbt unit and data tests run inside)"
	@echo "make bench   full build, one-day run, DuckDB floor, race (pandas/polars/DuckDB/dbt) at 1M/10M/100M events"
	@echo "make dagster Dagster UI on http://127.0.0.1:$(DAGSTER_PORT) (assets, checks, schedules, sensors)"
	@echo "make clean   remove generated data, target/ and logs/"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled at install, not by the first run (Great Expectations alone compiled for
# 3 s in the first `make demo` after a fresh install).
.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

install: .venv/.synced

# Generate sample data, then build the whole graph through Dagster (dbt models and tests, data
# quality checks, churn model), publish the marts to the read-only serving copy, summarise.
demo: install dagster-home
	.venv/bin/userops generate $(if $(DEMO_INCIDENT),--incident $(DEMO_INCIDENT)) $(DEMO_ARGS)
	.venv/bin/python -m orchestration.materialize --full-refresh
	.venv/bin/userops publish
	.venv/bin/userops summary
	.venv/bin/userops alerts --days 1
	.venv/bin/userops report --if-missing

# Benchmark (docs/benchmark.md): BENCH_SCALES=1m,10m,100m by default; figures go to
# bench_results/results.json and bench_results/benchmark.md. 100M events needs ~25 GB of disk
# and runs for about 20 minutes on 2 cores.
BENCH_SCALES ?= 1m,10m,100m
# dbt threads; empty = 2 at 1M and 10M events, 1 at 100M (two heavy models share one memory
# limit).
BENCH_DBT_THREADS ?=
# Repeats of every step; the table gives medians.
BENCH_REPEATS ?= 1
# The race (docs/benchmark.md, Race): the three headline marts by pandas, polars, a DuckDB SQL
# script and dbt's lineage build. BENCH_RACE=0 skips it; BENCH_RACE_TOOLS picks tools.
BENCH_RACE ?= 1
BENCH_RACE_TOOLS ?= pandas,polars,duckdb,dbt
bench: install
	.venv/bin/python -m userops.bench --scales $(BENCH_SCALES) $(if $(BENCH_DBT_THREADS),--dbt-threads $(BENCH_DBT_THREADS)) \
		--repeats $(BENCH_REPEATS) $(if $(filter 0,$(BENCH_RACE)),--no-race,--race-tools $(BENCH_RACE_TOOLS))

# The instance every Dagster command run from here uses (the folder is gitignored): telemetry
# off, run history without an fsync per event (orchestration/instance.py).
dagster-home: install
	@.venv/bin/python -m orchestration.instance $(DAGSTER_HOME)

# The manifest the code location loads its asset graph from (dbt parse, target/dagster).
dagster-manifest: install
	.venv/bin/python -m userops.manifest

# `dagster dev` warns that `dg dev` supersedes it; dg needs a dg project layout this repository
# does not have, so the warning is not the user's business (that one message only).
dagster: install dagster-home dagster-manifest
	PYTHONWARNINGS='ignore:Function `dev_command` is superseded' \
		.venv/bin/dagster dev -h 127.0.0.1 -p $(DAGSTER_PORT) -m orchestration.definitions

lint: install
	.venv/bin/ruff check userops orchestration tests/python tests/browser

# tests/browser drives the Dagster UI in headless Chromium (skipped when chromium is absent).
test: install lint dagster-home
	.venv/bin/pytest --durations=30 tests/python tests/browser

clean:
	rm -rf data target logs .pytest_cache
