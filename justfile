# Luffy's everyday commands. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# How requirements.lock is made: every dependency, runtime and dev, for Python 3.11+ on any platform.
# uv resolves against PyPI (it does not read pip's config) and writes no index URL into the lock.
compile := "uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --custom-compile-command 'just lock' --quiet"

# Install exactly the locked versions, then Luffy itself (editable, so code changes apply at once)
setup:
    python -m pip install -q -r requirements.lock
    python -m pip install -q --no-deps --no-build-isolation -e .

# Re-resolve requirements.lock after a change to pyproject.toml (pins that still fit are kept)
lock:
    {{ compile }} -o requirements.lock

# Move every locked dependency to the newest release pyproject.toml allows, install it and run the checks
upgrade:
    {{ compile }} --upgrade -o requirements.lock
    just setup
    just lint
    just test

# Fail when requirements.lock and pyproject.toml disagree: re-resolving with the lock's own pins as
# preferences reproduces the lock byte for byte unless pyproject.toml changed (then: just lock)
lock-check:
    #!/usr/bin/env bash
    set -euo pipefail
    fresh=$(mktemp)
    trap 'rm -f "$fresh"' EXIT
    cp requirements.lock "$fresh"
    {{ compile }} -o "$fresh"
    if ! diff -u requirements.lock "$fresh"; then
        echo "requirements.lock does not match pyproject.toml: run \`just lock\` and commit the lock" >&2
        exit 1
    fi

# Migrate, seed and serve the API on the embedded default (SQLite, in-process tasks)
run: migrate seed
    luffy serve

# Build the wheel operators install (migrations and seed data inside) into dist/
wheel:
    python -m pip wheel -q --no-deps --no-build-isolation -w dist .

# Run the whole test suite against real PostgreSQL, Redis and chromium (installed and started if missing)
test *ARGS: services
    python -m pytest {{ ARGS }}

# Install PostgreSQL, Redis and chromium (the admin's browser test) when missing (needs root and apt)
services:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    # The CJK fonts make the admin screenshots readable (its labels are Chinese).
    [ -x /usr/bin/chromium ] || missing+=(chromium fonts-noto-cjk)
    if ((${#missing[@]})); then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
            echo "missing: ${missing[*]} (install them, or set LUFFY_TEST_POSTGRES_URL / LUFFY_TEST_REDIS_URL; chromium must be /usr/bin/chromium)" >&2
            exit 1
        fi
        echo "installing ${missing[*]} ..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi

# Lint, check formatting, type-check luffy/ (mypy, configured in pyproject.toml), and check the lock
# matches pyproject.toml
lint: lock-check
    ruff check .
    ruff format --check .
    mypy
    # Every test module imports (mypy does not read tests/): a broken import fails here in seconds.
    python -m pytest --collect-only -q -p no:warnings > /dev/null

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
