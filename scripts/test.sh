#!/usr/bin/env bash
# Set up everything the tests need, then run all of them: lint, types (Python and JavaScript), JS unit tests, Python tests
# (unit, protocol over real uvicorn, Redis, PostgreSQL, browser). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
# Every test process (pytest's workers, each server and CLI a test starts) reads compiled modules instead of
# compiling legend/ and tests/ again (and pytest keeps its rewritten test modules): several seconds of CPU a
# process otherwise. The packages in .venv are compiled when they are installed.
unset PYTHONDONTWRITEBYTECODE
ensure_venv dev
ensure_debian_package redis-server redis-server   # tests start their own redis-server on a free port
# ... and their own PostgreSQL (initdb into a temporary directory, a free port): tests/support/postgres.py
ensure_debian_package '/usr/lib/postgresql/*/bin/initdb' postgresql
ensure_debian_package /usr/sbin/nginx nginx       # tests/deploy runs deploy/nginx.conf in Debian's nginx
ensure_debian_package node nodejs                 # node --test for the JavaScript client
ensure_debian_package npm npm                     # npm ci: tsc and eslint for it (package.json)
ensure_node_modules
ensure_debian_package chromium chromium           # Playwright drives Debian's Chromium
# The example third-party plugin, installed as its own package: tests/plugins discovers it by entry point.
if [ ! -f .venv/.installed-dev-sentiment ] || [ examples/legend-sentiment/pyproject.toml -nt .venv/.installed-dev-sentiment ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    -e examples/legend-sentiment
  touch .venv/.installed-dev-sentiment
fi

# One command a line: under `set -e` a failure anywhere in `a && b` but its last command does not stop the
# script (tests/packaging/test_scripts.py checks that a lint failure fails this command).
echo "== ruff"
.venv/bin/ruff check legend tests bench fuzz
.venv/bin/ruff format --check legend tests bench fuzz
# The slower checks (mypy, tsc, eslint, node --test: about half a minute) run beside pytest, which spends much
# of its time waiting on the servers it started; their output follows pytest's, and either failing fails the
# command. ruff (a second) stays in front, so that a lint error stops the command at once.
checks_log=$(mktemp)
(
  set -e
  echo "== mypy --strict legend"; .venv/bin/mypy legend
  echo "== tsc --checkJs"; node_modules/.bin/tsc -p jsconfig.json
  echo "== eslint"; node_modules/.bin/eslint .
  echo "== node --test"; node --test --test-reporter=dot tests/js/
) > "$checks_log" 2>&1 &
checks=$!
# `|| true`: under `set -e` a failing command in this trap (kill of the checks, finished and reaped by then)
# becomes the script's exit status: every green run exited 1 (tests/packaging/test_scripts.py).
trap 'kill "$checks" 2>/dev/null || true; rm -f "$checks_log"' EXIT
# In parallel (pytest-xdist): most tests wait on servers they started (each worker starts its own, on free
# ports), so 4 workers on 2 cores about halve the time; tests are handed out one at a time (worksteal).
# LEGEND_TEST_WORKERS=0 runs them in this one process.
echo "== pytest (mypy, tsc, eslint and node --test beside it: their output follows)"
tests=0
.venv/bin/python -m pytest -q -n "${LEGEND_TEST_WORKERS:-4}" --dist worksteal "$@" || tests=$?
checks_status=0
wait "$checks" || checks_status=$?
cat "$checks_log"
if [ "$checks_status" -ne 0 ]; then
  echo "== FAILED: the static check above (exit status $checks_status)" >&2
fi
[ "$tests" -eq 0 ] && [ "$checks_status" -eq 0 ]
