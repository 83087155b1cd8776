"""An installed wheel carries everything a checkout has: the dashboard, the API docs UIs, the migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built_log = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    ).stderr
    assert "would be ignored" not in built_log  # every data folder is a declared package
    (built,) = out.glob("legend_realtime-*.whl")
    return built


def test_wheel_contains_the_dashboard_docs_assets_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "legend/web/index.html",
        "legend/web/static/js/websocket-client.js",
        "legend/web/static/js/realtime-dashboard.js",
        "legend/web/static/css/realtime.css",
        "legend/adapters/http/apidocs/swagger-ui-bundle.js",
        "legend/adapters/http/apidocs/redoc.standalone.js",
        "legend/migrations/env.py",
        "legend/migrations/alembic.ini",
        "legend/migrations/versions/0001_watchlists_and_alerts.py",
        "legend/py.typed",
        "legend/adapters/quotes/replay.py",
        "legend/adapters/quotes/data/SP500_NOV2019_IDay.csv",
        "legend/adapters/quotes/data/LICENSE-mplfinance.txt",
        "legend/plugins/builtin/news/plugin.py",
        "legend/migrations/versions/0002_portfolio_and_plugin_state.py",
        "legend/web/static/img/favicon.svg",
    ):
        assert required in names, required


def test_installed_wheel_finds_its_files_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import legend.app, legend.adapters.sql.migrate as m; "
        "web = legend.app.web_root(); print(web); print(m.migrations_dir()); "
        "assert (web / 'index.html').is_file() and (web / 'static' / 'js' / 'websocket-client.js').is_file()"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    web, migrations = result.stdout.split()
    assert web.startswith(str(site)) and migrations.startswith(str(site))
