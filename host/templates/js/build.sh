#!/bin/sh
# Build {{name}} into target/{{name}}.wasm (same as `ferry plugin build .`)
# with componentize-js 0.23.0: FERRY_COMPONENTIZE_JS, node_modules (run
# `npm install` once: package.json pins it), or componentize-js on PATH.
set -eu
cd "$(dirname "$0")"
cjs="${FERRY_COMPONENTIZE_JS:-}"
[ -z "$cjs" ] && [ -x node_modules/.bin/componentize-js ] && cjs=node_modules/.bin/componentize-js
[ -z "$cjs" ] && cjs=componentize-js
command -v "$cjs" >/dev/null 2>&1 || {
    echo "componentize-js not found: run \`npm install\` here (package.json pins @bytecodealliance/componentize-js 0.23.0)" >&2
    exit 1
}
mkdir -p target
"$cjs" --wit wit --world-name {{world}} --disable http fetch-event -o target/{{name}}.wasm app.js
echo "target/{{name}}.wasm"
