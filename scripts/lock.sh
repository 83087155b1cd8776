#!/usr/bin/env bash
# Re-resolve the pinned Python dependencies after changing pyproject.toml (or to take newer releases):
#   ./scripts/lock.sh            # keep every pin that still satisfies pyproject.toml
#   ./scripts/lock.sh --upgrade  # newest releases allowed by pyproject.toml
# Writes requirements.txt (the server: serve.sh, the Dockerfile), requirements-dev.txt (plus
# the test and bench extras: test.sh, CI) and requirements-build.txt (pip and setuptools alone: the Dockerfile's
# build stage), universal (every platform, Python 3.11+) and with hashes. Then run
# ./scripts/test.sh and commit the locks with the change that needed them.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8  # the resolver itself is pinned too (and in pyproject's test extra: lib.sh installs with it)
tools=${TMPDIR:-/tmp}/legend-lock-uv-$UV_VERSION
if [ ! -x "$tools/bin/uv" ]; then
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
compile() {  # $1: output, then extras
  local out=$1
  shift
  "$tools/bin/uv" pip compile pyproject.toml requirements-build.in "$@" --universal --python-version 3.11 \
    --generate-hashes --quiet --custom-compile-command ./scripts/lock.sh -o "$out" ${UPGRADE:+--upgrade}
}
[ "${1:-}" = "--upgrade" ] && UPGRADE=1
compile requirements.txt
compile requirements-dev.txt --extra test --extra bench
# What building the package needs and nothing else (the Dockerfile's build stage); the same pins as
# requirements.txt (tests/packaging/test_wheel.py checks it).
"$tools/bin/uv" pip compile requirements-build.in --universal --python-version 3.11 --generate-hashes --quiet \
  --custom-compile-command ./scripts/lock.sh --constraint requirements.txt -o requirements-build.txt
echo "locked: requirements.txt, requirements-dev.txt, requirements-build.txt" >&2
