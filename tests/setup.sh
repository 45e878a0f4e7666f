#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, idempotently:
# a virtualenv in .venv with sqlstore and its dev extra, and the pinned tursodb in .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
TURSO_VERSION=0.6.0   # keep in step with tests/tursodb_server.py
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev${SQLSTORE_EXTRAS:+,$SQLSTORE_EXTRAS}]"
if ! ls .tools/node_modules/@tursodatabase/*/tursodb >/dev/null 2>&1 \
   || ! grep -q "\"version\": \"$TURSO_VERSION\"" .tools/node_modules/turso/package.json 2>/dev/null; then
  command -v npm >/dev/null || { echo "npm is needed to install tursodb (npm package turso@$TURSO_VERSION)" >&2; exit 1; }
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools "turso@$TURSO_VERSION"
fi
ls .tools/node_modules/@tursodatabase/*/tursodb >/dev/null
