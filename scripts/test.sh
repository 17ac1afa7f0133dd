#!/usr/bin/env bash
# The whole test suite: format check, clippy with warnings denied, then every
# unit and end-to-end test against freshly built binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests start the real binaries, so build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked
