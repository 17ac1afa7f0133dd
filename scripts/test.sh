#!/usr/bin/env bash
# The whole test suite: format check, clippy with warnings denied, then every
# unit and end-to-end test against freshly built binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The macOS-only code cannot build here with the daemon (its C dependencies
# need a macOS SDK); type-check it alone when the target is installed
# (.ci/run installs it).
if rustup target list --installed 2>/dev/null | grep -qx aarch64-apple-darwin; then
  cargo clippy --manifest-path platform-check/Cargo.toml --target aarch64-apple-darwin --locked -- -D warnings
else
  echo "skipped: the macOS type check (rustup target add aarch64-apple-darwin)"
fi
# The end-to-end tests start the real binaries, so build them first.
cargo build --workspace --bins --locked
rm -rf target/e2e-logs && mkdir -p target/e2e-logs
cargo test --workspace --locked 2>&1 | tee target/e2e-logs/cargo-test.log
# No secret value used by the tests may appear in any log of the run: the
# daemons' logs (kept in target/e2e-logs) and the test output itself.
secrets=(value-of-api-key-7f3a other-secret-91c2 'postgres://u:p@h/db' locked-value-5e1f s3cr3t)
logs=$(ls target/e2e-logs | wc -l)
for s in "${secrets[@]}"; do
  if grep -rlF -- "$s" target/e2e-logs; then
    echo "FAIL: a secret value ($s) reached a log" >&2
    exit 1
  fi
done
echo "no secret value in $logs log files of this run"
