#!/usr/bin/env bash
# Set up Legend Realtime (first run only) and start it on its embedded defaults:
# in-memory backplane, SQLite, simulated quotes, bound to 127.0.0.1:8000. Extra arguments go to `legend serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv runtime
exec .venv/bin/legend serve "$@"
