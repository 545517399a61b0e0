#!/usr/bin/env bash
# Runs the Python client's checks: ruff, mypy --strict on the package, then
# pytest against a real Keymint process.
#
#   clients/python/run-tests.sh [pytest args…]
#
# KEYMINT_BIN  the keymint binary to test against (default target/debug/keymint of this checkout;
#              CI passes target/debug/keymint). Relative paths are taken from
#              the directory the script is run from.
# PYTHON       the interpreter for the virtualenv (default python3; 3.10+).
# KEYMINT_PY_VENV  where the virtualenv lives (default: a cache directory,
#              reused while requirements-test.txt and pyproject.toml are unchanged).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
PIP_BOOTSTRAP_VERSION=26.3   # only used where the interpreter has no ensurepip (Debian without python3-venv)

if [[ -n "${KEYMINT_BIN:-}" && "${KEYMINT_BIN}" != /* ]]; then
    KEYMINT_BIN="$(pwd)/${KEYMINT_BIN}"
fi
export KEYMINT_BIN="${KEYMINT_BIN:-$here/../../target/debug/keymint}"
if [[ ! -x "$KEYMINT_BIN" ]]; then
    echo "run-tests.sh: no executable keymint at $KEYMINT_BIN (set KEYMINT_BIN)" >&2
    exit 2
fi

# The venv is keyed by what goes into it, so a change of pins makes a new one.
stamp="$(cat "$here/requirements-test.txt" "$here/pyproject.toml" | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/keymint-python"
venv="${KEYMINT_PY_VENV:-$cache/venv-$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-$stamp}"

if [[ ! -x "$venv/bin/python" || ! -f "$venv/.complete" ]]; then
    echo "run-tests.sh: creating $venv" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian ships ensurepip separately (python3-venv): make the venv without
        # pip and bring pip in from PyPI, checking the wheel's published digest.
        rm -rf "$venv"
        "$python" -m venv --without-pip "$venv"
        "$venv/bin/python" - "$PIP_BOOTSTRAP_VERSION" <<'PY'
import hashlib, json, os, subprocess, sys, tempfile, urllib.parse, urllib.request
version = sys.argv[1]
index = "https://pypi.org/pypi/pip/json"
with urllib.request.urlopen(index, timeout=60) as answer:
    meta = json.load(answer)
wheel = next(u for u in meta["releases"][version] if u["packagetype"] == "bdist_wheel")
path = os.path.join(tempfile.mkdtemp(), wheel["filename"])
with urllib.request.urlopen(urllib.parse.urljoin(index, wheel["url"]), timeout=120) as answer:
    data = answer.read()
if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
    sys.exit("pip wheel digest mismatch")
with open(path, "wb") as out:
    out.write(data)
subprocess.check_call([sys.executable, os.path.join(path, "pip"), "install", "--quiet", "--no-index", path])
PY
    fi
    "$venv/bin/python" -m pip install --quiet -r "$here/requirements-test.txt"
    touch "$venv/.complete"
fi

# The package itself, fresh every run (not editable: what users install).
"$venv/bin/python" -m pip install --quiet --no-build-isolation --no-deps --force-reinstall \
    "$here[fastapi]"
"$venv/bin/python" -m pip check

cd "$here"
echo "run-tests.sh: ruff" >&2
"$venv/bin/python" -m ruff check --no-cache src tests examples
"$venv/bin/python" -m ruff format --no-cache --check src tests examples
echo "run-tests.sh: mypy --strict" >&2
"$venv/bin/python" -m mypy --strict --config-file pyproject.toml src/keymint examples

# The installed package must carry py.typed (PEP 561), or users get no types.
"$venv/bin/python" - <<'PY'
import importlib.resources, keymint
assert importlib.resources.files("keymint").joinpath("py.typed").is_file(), "py.typed is not installed"
PY

echo "run-tests.sh: pytest against $KEYMINT_BIN" >&2
# Tests import the installed package (src/ layout: the checkout is never imported).
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
