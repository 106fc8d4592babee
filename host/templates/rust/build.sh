#!/bin/sh
# Build {{name}} into target/{{name}}.wasm (same as `ferry plugin build .`).
# Needs Rust 1.95+ and `rustup target add wasm32-wasip2`.
set -eu
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
dir="${CARGO_TARGET_DIR:-target}"
cp "$dir/wasm32-wasip2/release/{{crate_name}}.wasm" target/{{name}}.wasm 2>/dev/null \
    || { mkdir -p target && cp "$dir/wasm32-wasip2/release/{{crate_name}}.wasm" target/{{name}}.wasm; }
echo "target/{{name}}.wasm"
