"""An installed wheel carries everything a checkout has: the dashboard, the API docs UIs, the migrations; its
metadata names the licence and classifiers; and the oldest setuptools that ``[build-system]`` allows builds it."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from tests.support.dockerfile import instructions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, with the lock's setuptools: two test processes may build at once,
    and a build in the checkout itself writes its build/ and egg-info there."""
    out = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp_path_factory.mktemp("src"))
    built_log = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    ).stderr
    assert "would be ignored" not in built_log  # every data folder is a declared package
    (built,) = out.glob("legend_realtime-*.whl")
    return built


def test_every_python_package_of_the_checkout_is_declared() -> None:
    """``[tool.setuptools] packages`` is a list written by hand: a package moved or added and not listed
    would be missing from the wheel and the image, and fail only there."""
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "legend").rglob("__init__.py")}
    assert found - declared == set()


def _pins(lock: Path) -> dict[str, str]:
    lines = (line for line in lock.read_text().splitlines() if line and not line.startswith((" ", "#")))
    return dict(line.split(" ")[0].split(";")[0].partition("==")[::2] for line in lines)


def test_the_build_lock_pins_what_the_runtime_lock_pins() -> None:
    """The Dockerfile's build stage installs requirements-build.txt alone: the wheel must be built with the
    setuptools (and pip) that requirements.txt pins, as a checkout's editable install is."""
    build, runtime = _pins(ROOT / "requirements-build.txt"), _pins(ROOT / "requirements.txt")
    assert set(build) == {"pip", "setuptools"}
    assert {name: runtime.get(name) for name in build} == build


def test_wheel_contains_the_dashboard_docs_assets_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "legend/web/index.html",
        "legend/web/static/js/websocket-client.js",
        "legend/web/static/js/realtime-dashboard.js",
        "legend/web/static/js/client/client.js",  # the ES modules the entry points import
        "legend/web/static/js/dashboard/dashboard.js",
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
        "legend/adapters/redis/publish.lua",
        "legend/plugins/builtin/news/plugin.py",
        "legend/migrations/versions/0002_plugin_state.py",
        "legend/plugins/builtin/portfolio/migrations/0001_portfolio_positions.py",
        "legend/web/static/img/favicon.svg",
    ):
        assert required in names, required


def test_installed_wheel_finds_its_files_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import legend.app, legend.adapters.sql.migrate as m, legend.adapters.redis.scripts as s; "
        "web = legend.app.web_root(); print(web); print(m.migrations_dir()); "
        "assert (web / 'index.html').is_file() and (web / 'static' / 'js' / 'websocket-client.js').is_file(); "
        "assert 'PUBLISH' in s.PUBLISH.source and s.LEAVE.source"
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


def _metadata(wheel: Path) -> email.message.Message:
    archive = zipfile.ZipFile(wheel)
    (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(archive.read(name))


def test_wheel_metadata_names_the_licence_and_classifiers(wheel: Path) -> None:
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    assert "legend_realtime-0.1.0.dist-info/licenses/LICENSE" in zipfile.ZipFile(wheel).namelist()
    classifiers = metadata.get_all("Classifier")
    assert "Framework :: Litestar :: 2" in classifiers and "Typing :: Typed" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # superseded by License-Expression


def _dockerfile_sources() -> list[str]:
    """What the Dockerfile's build stage copies from the repository (``COPY src... dest``), each under its own name."""
    sources = []
    for keyword, rest in instructions(ROOT / "deploy" / "Dockerfile"):
        if keyword == "FROM" and sources:
            break  # the build stage ends here
        if keyword == "COPY":
            *names, dest = rest.split()
            for name in names:
                lands = f"{dest}{Path(name).name}" if dest.endswith("/") else dest
                assert lands.removeprefix("./") in (name, "") or dest == "./", (rest, lands)
            sources += names
    return sources


def _copy_sources(src: Path) -> Path:
    """What the Dockerfile's build stage copies, copied into ``src``."""
    for name in _dockerfile_sources():
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    return src


def test_the_dockerfile_sources_build_with_the_oldest_setuptools_allowed(tmp_path: Path) -> None:
    """Build as the image does, from only the files its COPY lines bring in, with exactly the lowest
    setuptools that ``[build-system] requires`` allows (that bound is a promise to every builder)."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    (floor,) = [m.group(1) for r in requires if (m := re.fullmatch(r"setuptools>=([\d.]+)", r))]
    src = tmp_path / "src"
    src.mkdir()
    _copy_sources(src)
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = str(env / "bin" / "python")
    quiet = ["--quiet", "--disable-pip-version-check"]
    subprocess.run([python, "-m", "pip", "install", *quiet, f"setuptools=={floor}"], check=True, timeout=300)
    built = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "wheel",
            *quiet,
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("legend_realtime-*.whl")
    metadata = _metadata(wheel)
    assert (metadata["License-Expression"], metadata["License-File"]) == ("MIT", "LICENSE")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"legend/web/index.html", "legend/migrations/env.py", "legend/app.py"} <= names
    assert "legend_realtime-0.1.0.dist-info/licenses/LICENSE" in names
