# SalesPulse — the operator's commands. `make run` and `make test` are the README's two.
SHELL := bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

VENV      := .venv
TOOLS     := $(HOME)/.cache/salespulse/tools
UV        := $(TOOLS)/bin/uv
PYTHON    ?= python3
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint unit kafka-up kafka-down pg-up pg-down bench clean

install: $(VENV)/.installed  ## .venv with the project and its locked dependencies

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q "uv>=0.5"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) -q
	touch $@

run: install  ## the embedded default: `serve --demo` (ingest :8001, API :8000, SQLite, simulator)
	$(VENV)/bin/salespulse serve --demo

lint: install  ## ruff and strict mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	check_db="sqlite:///$$(mktemp -d)/check.db"  # the models and the migrations agree
	SALESPULSE_DATABASE_URL=$$check_db $(VENV)/bin/alembic upgrade head
	SALESPULSE_DATABASE_URL=$$check_db $(VENV)/bin/alembic check

test: install lint kafka-up pg-up  ## the whole suite, on a real Kafka and a real PostgreSQL
	SALESPULSE_TEST_KAFKA=127.0.0.1:9092 \
	SALESPULSE_TEST_DATABASE_URL="$$(deploy/postgres/pg.sh url)" \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

unit: install  ## only the tests that need neither Kafka nor PostgreSQL
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

kafka-up:  ## a local single-node Apache Kafka (KRaft) on 127.0.0.1:9092
	deploy/kafka/kafka.sh up

kafka-down:
	deploy/kafka/kafka.sh down

pg-up:  ## a local PostgreSQL on 127.0.0.1:55432 (Debian's postgresql binaries)
	deploy/postgres/pg.sh up

pg-down:
	deploy/postgres/pg.sh down

bench: install kafka-up pg-up  ## the benchmarks; figures go to bench/results/
	SALESPULSE_TEST_KAFKA=127.0.0.1:9092 \
	SALESPULSE_TEST_DATABASE_URL="$$(deploy/postgres/pg.sh url)" \
	SALESPULSE_BENCH_UV=$(UV) $(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
