#!/bin/sh
# Build {{name}} into target/{{name}}.wasm (same as `ferry plugin build .`)
# with componentize-py 0.25.1: FERRY_COMPONENTIZE_PY, or componentize-py on PATH.
# Install it once:  python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1
set -eu
cd "$(dirname "$0")"
cpy="${FERRY_COMPONENTIZE_PY:-}"
[ -z "$cpy" ] && [ -x .venv/bin/componentize-py ] && cpy=.venv/bin/componentize-py
[ -z "$cpy" ] && cpy=componentize-py
command -v "$cpy" >/dev/null 2>&1 || {
    echo "componentize-py not found: python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1" >&2
    exit 1
}
mkdir -p target
PYTHONDONTWRITEBYTECODE=1 "$cpy" -d wit -w {{world}} componentize app -p . -o target/{{name}}.wasm
echo "target/{{name}}.wasm"
