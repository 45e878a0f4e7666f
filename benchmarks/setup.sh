#!/usr/bin/env bash
# Set up the benchmark environment: .venv-bench with sqlstore and the peers it is compared
# with (agent-squad[sql], agentomatic[db], langgraph-checkpoint-sqlite, autogenstudio),
# plus the pinned tursodb of the tests. Separate from .venv so peers never leak into tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh >/dev/null
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-bench/bin/python ]; then
  "$PYTHON" -m venv .venv-bench
fi
.venv-bench/bin/python -m pip install --quiet --upgrade pip
.venv-bench/bin/python -m pip install --quiet -e ".[bench]"
