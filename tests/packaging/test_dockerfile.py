"""``deploy/Dockerfile`` run without Docker (tests/support/dockerfile.py): its stages build the wheel and install it
with exactly the locked dependencies, and the final stage's CMD serves, outside any checkout, until its HEALTHCHECK
passes. Docker itself does not run on these machines; this is as far as the image can be exercised here."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from packaging.markers import Marker

from tests.support.dockerfile import DockerfileRun
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> DockerfileRun:
    return DockerfileRun(ROOT / "deploy" / "Dockerfile", ROOT, tmp_path_factory.mktemp("image")).build()


def _locked(lock: Path) -> dict[str, str]:
    """The lock's pins for this interpreter (the image's is 3.11 too): a line's marker decides whether it applies."""
    pins = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")) and "==" in line:
            requirement, _, marker = line.removesuffix("\\").partition(";")
            if marker.strip() and not Marker(marker.strip()).evaluate():
                continue
            name, _, version = requirement.strip().partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_image_installs_exactly_the_runtime_lock(image: DockerfileRun) -> None:
    listed = subprocess.run(
        [str(image.final.python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    installed = {n.lower().replace("_", "-"): v for n, _, v in (line.partition("==") for line in listed)}
    assert installed.pop("legend-realtime") == "0.1.0"  # the wheel built in the first stage
    locked = _locked(ROOT / "requirements.txt")
    for name, version in installed.items():
        assert locked.get(name) == version, (
            f"{name} {version} is in the image but the lock says {locked.get(name)}"
        )


@pytest.fixture(scope="module")
def container(image: DockerfileRun) -> Iterator[tuple[int, Path]]:
    stage = image.final
    port = free_port()
    # CMD as written, on loopback: 0.0.0.0 would need security.auth = "jwt", which the compose file sets.
    argv = [a.replace("0.0.0.0", "127.0.0.1").replace("8000", str(port)) for a in stage.cmd]
    argv[0] = str(stage.bin / argv[0])
    workdir = stage.path(stage.workdir)
    env = {"PATH": f"{stage.bin}:/usr/bin:/bin", "HOME": str(workdir), **stage.env}
    log = (workdir / "serve.log").open("w")
    process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield port, workdir
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_the_image_serves_until_its_healthcheck_passes(
    image: DockerfileRun, container: tuple[int, Path]
) -> None:
    port, workdir = container
    stage = image.final
    check = stage.healthcheck.replace("8000", str(port)).split(" ", 1)
    assert check[0] == "python", stage.healthcheck
    deadline = time.monotonic() + 90
    while True:
        done = subprocess.run(
            ["sh", "-c", f"{stage.bin / 'python'} {check[1]}"],
            env={"PATH": "/usr/bin:/bin", **stage.env},
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            break
        assert time.monotonic() < deadline, (workdir / "serve.log").read_text() + done.stderr
        time.sleep(0.5)
    # The dashboard and its assets come from the installed wheel, and the SQLite file lands in WORKDIR/data.
    page = httpx.get(f"http://127.0.0.1:{port}/dashboard", timeout=10)
    assert page.status_code == 200 and "realtime-dashboard" in page.text
    assert httpx.get(f"http://127.0.0.1:{port}/static/js/websocket-client.js", timeout=10).status_code == 200
    assert (workdir / "data").is_dir() and any((workdir / "data").iterdir())
    assert str(ROOT) not in (workdir / "serve.log").read_text()
    assert not os.path.exists(workdir / "legend")  # nothing of the checkout was copied next to it
