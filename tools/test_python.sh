#!/usr/bin/env bash
# The Python package's tests: a venv from PyPI alone (bindings/python/requirements-test.txt),
# the package installed as users install it (`pip install ./bindings/python`: maturin builds the
# native module with cargo from crates.io), then pytest, mypy.stubtest of the .pyi stubs and mypy
# over the adapters.
#
#   tools/test_python.sh            # venv in .venv-py (created if missing)
#   AUDIOTOK_PY_VENV=/tmp/v tools/test_python.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${AUDIOTOK_PY_VENV:-$root/.venv-py}
export PATH="$venv/bin:$PATH"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r bindings/python/requirements-test.txt
# No build isolation: maturin comes from the pinned test requirements above.
"$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./bindings/python
cd "$root/bindings/python"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests
# Run from outside the source tree, so that the installed package is the one checked.
cd /
"$venv/bin/python" -m mypy.stubtest audiotok._audiotok
# The pure-Python adapters type-check against those stubs.
"$venv/bin/python" -m mypy --no-incremental "$root/bindings/python/python/audiotok"
