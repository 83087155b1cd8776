# Shared by scripts/serve.sh and scripts/test.sh: a virtual environment that is (re)installed from the
# lock file (requirements.txt, requirements-dev.txt; ./scripts/lock.sh) when it or pyproject.toml changes, the
# JavaScript dev tools (re)installed when package-lock.json changes, and
# Debian packages installed only when missing.

PYTHON=${PYTHON:-python3}

ensure_venv() {  # $1: which lock, "runtime" (the server) or "dev" (plus the test and bench extras)
  # Every version comes from the lock (hashes checked): requirements.txt for "runtime", requirements-dev.txt
  # for "dev". The package itself is installed editable on top, built with the lock's setuptools (no build
  # isolation: nothing floats in).
  local lock=requirements.txt stamp=".venv/.installed-$1" dev=".venv/.installed-dev"
  [ "$1" = dev ] && lock=requirements-dev.txt
  if [ "$1" = runtime ] && [ -f "$dev" ] && [ ! requirements-dev.txt -nt "$dev" ] && [ ! pyproject.toml -nt "$dev" ]; then
    return 0  # the test venv is the server's plus the test tools: no reinstall between test.sh and serve.sh
  fi
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing Legend Realtime with $lock into .venv (log: .venv/install.log)" >&2
    if ! install_lock "$lock" > .venv/install.log 2>&1; then
      cat .venv/install.log >&2
      return 1
    fi
    rm -f .venv/.installed-*  # the other lock's stamp no longer describes this venv
    touch "$stamp"
  fi
}

install_lock() {  # $1: the lock file, installed into .venv with uv (pinned and hash-checked itself), then the package
  # uv's own entry (version and hashes) is read from requirements-dev.txt, the one place it is pinned, and pip
  # installs that one wheel; uv installs the rest in parallel, in a tenth of pip's time, and compiles them as
  # pip does (else a machine with PYTHONDONTWRITEBYTECODE set compiles them again in every process: seconds).
  if [ ! -x .venv/bin/uv ]; then
    awk '/^uv==/ {p = 1} p {print} p && !/\\$/ {exit}' requirements-dev.txt > .venv/uv-requirement.txt
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
      -r .venv/uv-requirement.txt || return 1
  fi
  .venv/bin/uv pip install --quiet --python .venv/bin/python --compile-bytecode --require-hashes -r "$1" || return 1
  .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps --no-build-isolation -e .
}

ensure_node_modules() {  # the exact devDependencies of package-lock.json (tsc, eslint) into node_modules
  local stamp="node_modules/.installed" log
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
    echo "installing the JavaScript dev tools into node_modules (npm ci)" >&2
    log=$(mktemp)
    if ! npm ci --no-audit --no-fund --loglevel=error > "$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      return 1
    fi
    mv "$log" node_modules/.install.log
    touch "$stamp"
  fi
}

ensure_debian_package() {  # $1: command (or path, globs allowed) that must exist, $2: Debian package providing it
  command -v "$1" >/dev/null 2>&1 && return 0
  compgen -G "$1" >/dev/null && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian package $2 (for $1)" >&2
  if [ -z "${APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}
