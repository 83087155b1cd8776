"""Run ``deploy/Dockerfile`` without Docker, as far as this machine allows: each stage's COPY, WORKDIR, ENV and RUN
steps against a folder that stands for the image's file system and a fresh virtual environment that stands for its
``python:3.11-slim`` interpreter; then the final stage's CMD and HEALTHCHECK.

What an image has and a folder cannot (a system user, file ownership) is named in ``SKIPPED`` and passed over; any
other command in a RUN line fails the run, so a new step in the Dockerfile is either emulated here or listed there.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import subprocess
import venv
from dataclasses import dataclass, field
from pathlib import Path

SKIPPED = {"useradd", "chown"}  # the image's own user and file ownership: nothing to emulate in a folder
PYTHON_IMAGE = "python:3.11"  # the interpreter the stages stand for (this machine's python3 is 3.11)


@dataclass
class Stage:
    name: str
    root: Path  # stands for the image's "/"
    python: Path  # the stage's interpreter (a venv standing for the image's system Python)
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    healthcheck: str = ""
    log: list[str] = field(default_factory=list)

    def path(self, where: str) -> Path:
        """Where a path of the image lies in the folder: absolute from its root, relative from WORKDIR."""
        base = "/" if where.startswith("/") else self.workdir
        return self.root / (Path(base) / where).relative_to("/")

    @property
    def bin(self) -> Path:
        return self.python.parent


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, continued lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


class DockerfileRun:
    """The stages of one Dockerfile, run in ``workspace`` with ``context`` as the build context."""

    def __init__(self, dockerfile: Path, context: Path, workspace: Path) -> None:
        self.dockerfile, self.context, self.workspace = dockerfile, context, workspace
        self.stages: list[Stage] = []

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def build(self) -> DockerfileRun:
        for keyword, rest in instructions(self.dockerfile):
            getattr(self, f"_{keyword.lower()}")(rest)
        return self

    # ── instructions ──

    def _from(self, rest: str) -> None:
        words = rest.split()
        assert words[0].startswith(PYTHON_IMAGE), f"FROM {rest}: only {PYTHON_IMAGE} images are emulated"
        index = len(self.stages)
        root = self.workspace / f"stage{index}"
        root.mkdir(parents=True)
        env = self.workspace / f"python{index}"
        venv.create(env, with_pip=True)
        name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(index)
        self.stages.append(Stage(name, root, env / "bin" / "python"))

    def _env(self, rest: str) -> None:
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            self.final.env[key] = value

    def _workdir(self, rest: str) -> None:
        stage = self.final
        stage.workdir = rest if rest.startswith("/") else str(Path(stage.workdir) / rest)
        stage.path(stage.workdir).mkdir(parents=True, exist_ok=True)

    def _copy(self, rest: str) -> None:
        words = rest.split()
        origin: Path = self.context
        if words[0].startswith("--from="):
            source_stage = words.pop(0).removeprefix("--from=")
            origin = next(s for s in self.stages if s.name == source_stage).root
        *sources, dest = words
        stage = self.final
        for source in sources:
            found = origin / source.lstrip("/")
            assert found.exists(), f"COPY {rest}: {source} does not exist"
            target = stage.path(dest)
            if dest.endswith("/") or len(sources) > 1:
                target = target / found.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if found.is_dir():
                _copy_tree(found, target)
            else:
                target.write_bytes(found.read_bytes())

    def _run(self, rest: str) -> None:
        stage = self.final
        for command in rest.split("&&"):
            words = shlex.split(command)
            if words[0] in SKIPPED:
                continue
            args = [_expand(stage.path(w)) if w.startswith("/") else [w] for w in words[1:]]
            flat = [a for group in args for a in group]
            if words[0] == "pip":
                argv = [str(stage.python), "-m", "pip", *flat]
            elif words[0] in ("rm", "mkdir"):
                argv = [words[0], *flat]
            else:
                raise AssertionError(f"RUN {command.strip()}: no emulation for {words[0]!r}")
            env = {**os.environ, **stage.env}
            env.pop("PIP_NO_CACHE_DIR", None)  # here the machine's pip cache may serve the same files
            done = subprocess.run(
                argv, cwd=stage.path(stage.workdir), env=env, capture_output=True, text=True, timeout=600
            )
            stage.log.append(f"$ {shlex.join(argv)}\n{done.stdout}{done.stderr}")
            assert done.returncode == 0, f"RUN {command.strip()} failed:\n{done.stdout}{done.stderr}"

    def _cmd(self, rest: str) -> None:
        self.final.cmd = json.loads(rest)

    def _healthcheck(self, rest: str) -> None:
        self.final.healthcheck = rest.partition(" CMD ")[2]

    def _expose(self, rest: str) -> None:
        pass

    def _user(self, rest: str) -> None:
        pass  # the image's own user (see SKIPPED): the folder belongs to whoever runs the test


def _expand(path: Path) -> list[str]:
    matches = sorted(glob.glob(str(path)))
    return matches or [str(path)]


def _copy_tree(source: Path, target: Path) -> None:
    for item in source.rglob("*"):
        if "__pycache__" in item.parts or item.is_dir():
            continue
        to = target / item.relative_to(source)
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_bytes(item.read_bytes())
