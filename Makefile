# Notebook Gateway — developer entry points. `make run` and `make test` are all a new machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= data
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: help install image engine browser run test test-tcp test-gvisor unit test-docker check lint typecheck bench bench-clickhouse docs clean oracle

help:
	@echo "make run        install, prepare $(DATA_DIR)/, print an API key, serve on $(HOST):$(PORT)"
	@echo "make test       install, start Docker and build the kernel image if possible, run all tests"
	@echo "make image      build (or reuse) the kernel image"
	@echo "make check      lint (ruff) + type check (mypy) + tests"
	@echo "make bench      benchmarks (figures go to docs/benchmarks.md by hand)"
	@echo "make bench-clickhouse  HogQL vs ClickHouse (chdb) at 10M events (docs/benchmarks.md, #16)"
	@echo "make docs       regenerate the route and settings tables in docs/"

$(STAMP): pyproject.toml
	@base=$$(scripts/find-python) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  rm -rf $(VENV); echo "creating $(VENV) with $$base"; $$base -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The Docker engine (installed and started when root on Debian) and the kernel image.
# Without an engine, the gateway still serves notebooks; kernel routes answer 503 with the reason.
engine:
	@scripts/ensure-docker || echo "warning: no Docker engine: kernels unavailable (docker tests skip)"

# Headless Chromium for the browser tests (installed when root on Debian; they skip without it
# locally and fail in CI).
browser:
	@scripts/ensure-browser >/dev/null || echo "warning: no chromium: browser tests skip (fail when CI=true)"

image: install
	scripts/ensure-docker
	$(PY) images/kernel/build.py

run: install engine
	@if docker info >/dev/null 2>&1; then $(PY) images/kernel/build.py >/dev/null; fi
	@mkdir -p $(DATA_DIR)
	@key=$$($(PY) -m gateway demo-key --data-dir $(DATA_DIR)) && \
	echo "" && echo "API key (all scopes, project 1): $$key" && \
	echo "try: curl -H 'Authorization: Bearer $$key' http://$(HOST):$(PORT)/api/projects/1/notebooks/" && \
	echo "capture token for PostHog SDKs (host http://$(HOST):$(PORT)): $$($(PY) -m gateway project-token --data-dir $(DATA_DIR) --project-id 1)" && echo ""
	$(PY) -m gateway serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: install engine browser
	@if docker info >/dev/null 2>&1; then $(PY) images/kernel/build.py >/dev/null; fi
	$(PY) -m pytest
	@$(MAKE) --no-print-directory test-tcp
	@$(MAKE) --no-print-directory test-gvisor

# The kernel suites again over the tcp transport, the gateway's default (runc, CurveZMQ and sealed
# data frames on the internal kernel network; needs root for the host firewall rules; the main
# pass runs the Docker suites over ipc). Skipped without an engine, like every Docker test.
test-tcp: install
	KERNEL_TEST_TRANSPORT=tcp $(PY) -m pytest -m docker -p no:cacheprovider tests/kernels

# The kernel suites again with every kernel in gVisor (runsc, ipc transport). Skipped, saying so,
# when gVisor cannot be set up here; a failure in CI (GATEWAY_REQUIRE_DOCKER=1).
GVISOR_SUITES := tests/kernels tests/security/test_run_dir.py
test-gvisor: install
	@if scripts/ensure-gvisor; then \
	  KERNEL_TEST_RUNTIME=runsc $(PY) -m pytest -m docker -p no:cacheprovider $(GVISOR_SUITES); \
	elif [ "$${GATEWAY_REQUIRE_DOCKER:-}" = "1" ]; then echo "gVisor unavailable" >&2; exit 1; \
	else echo "warning: gVisor (runsc) unavailable: kernel tests not run under it"; fi

# ClickHouse (chdb, ~0.9 GB) installed into the venv once, then the differential oracle suite
# (tests/oracle: our DuckDB translation against ClickHouse for every implemented function).
$(VENV)/.oracle: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,oracle]'
	@touch $@

oracle: $(VENV)/.oracle
	GATEWAY_REQUIRE_ORACLE=1 $(PY) -m pytest tests/oracle -q -p no:cacheprovider

test-docker: install
	scripts/ensure-docker
	GATEWAY_REQUIRE_DOCKER=1 $(PY) -m pytest -m docker

unit: install
	$(PY) -m pytest -m "not docker"

lint: install
	$(PY) -m ruff check gateway tests bench images scripts
	$(PY) -m ruff format --check gateway tests bench images scripts

typecheck: install
	$(PY) -m mypy

check: lint typecheck test

bench: install
	$(PY) bench/http_throughput.py
	$(PY) bench/collab.py
	$(PY) bench/hogql.py
	$(PY) bench/capture.py
	$(PY) bench/health_under_attack.py  # kernel phases skip (and say so) without Docker or the image
	@# kernels and data frames over both transports: tcp (the gateway's default), then ipc
	@if docker info >/dev/null 2>&1; then \
	  for t in tcp ipc; do $(PY) bench/kernels.py --transport $$t && \
	    $(PY) bench/dataframe.py --transport $$t --rounds 7 || exit 1; done; \
	else echo "bench/kernels.py and bench/dataframe.py skipped: no Docker engine"; fi

# HogQL on the analytics store vs the same queries in ClickHouse (issue #16); reuses the oracle's chdb
bench-clickhouse: $(VENV)/.oracle
	$(PY) bench/hogql_vs_clickhouse.py --events 10000000 --rounds 5

docs: install
	$(PY) scripts/update_docs.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
