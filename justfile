# Luffy's everyday commands. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Install Luffy and its development tools (editable, so code changes apply at once)
setup:
    python -m pip install -q -e '.[dev]'

# Migrate, seed and serve the API on the embedded default (SQLite, in-process tasks)
run: migrate seed
    luffy serve

# Run the whole test suite against real PostgreSQL and Redis (installed and started if missing)
test *ARGS: services
    python -m pytest {{ ARGS }}

# Install PostgreSQL and Redis when missing (needs root and apt); the test suite starts them
services:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    if ((${#missing[@]})); then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
            echo "missing: ${missing[*]} (install them, or set LUFFY_TEST_POSTGRES_URL / LUFFY_TEST_REDIS_URL)" >&2
            exit 1
        fi
        echo "installing ${missing[*]} ..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi

# Lint, check formatting and type-check luffy/ (mypy, configured in pyproject.toml)
lint:
    ruff check .
    ruff format --check .
    mypy

# Load benchmarks (PostgreSQL, production server settings); results in bench/results.md
bench:
    python bench/catalogue.py
    python bench/seckill.py

# Apply database migrations
migrate:
    luffy db upgrade

# Load the seed data (idempotent)
seed:
    luffy seed

# Run task workers (production: needs LUFFY_REDIS_URL)
worker *ARGS:
    luffy worker {{ ARGS }}

# Run the scheduler (exactly one per deployment)
scheduler:
    luffy scheduler
