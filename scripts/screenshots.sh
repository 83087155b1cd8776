#!/usr/bin/env bash
# Make the README's screenshots from the running demo: runs the browser test that starts `legend serve` on the
# embedded defaults (simulated prices, at any hour), opens the dashboard in Debian's Chromium (Playwright), waits
# for live prices, adds a rule, a pattern and an alert trigger at the levels on screen, and writes
# artifacts/screenshots/dashboard-{desktop,desktop-dark,phone,phone-dark}[-chart].png; then copies the desktop
# pair over docs/img/dashboard.png and docs/img/dashboard-chart.png. Commit those two afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv dev
ensure_debian_package chromium chromium
.venv/bin/python -m pytest -q -n 0 -p no:cacheprovider \
  "tests/browser/test_dashboard.py::test_screenshots_desktop_and_phone"
cp artifacts/screenshots/dashboard-desktop.png docs/img/dashboard.png
cp artifacts/screenshots/dashboard-desktop-chart.png docs/img/dashboard-chart.png
echo "docs/img/dashboard.png and docs/img/dashboard-chart.png: new screenshots (artifacts/screenshots/ has the rest)"
