#!/usr/bin/env bash
# The test command: set up (tests/setup.sh), then ruff, mypy and the whole pytest suite
# on every backend (a local SQLite file, and real tursodb and sqld servers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
.venv/bin/ruff check sqlstore tests benchmarks
.venv/bin/ruff format --check sqlstore tests benchmarks
.venv/bin/mypy
.venv/bin/pytest "$@"
