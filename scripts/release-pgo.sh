#!/usr/bin/env bash
# The release build, optimized with a profile of the real binaries at work
# (profile-guided optimization, as the rustc book describes it):
#
#   1. build the three binaries instrumented (-Cprofile-generate);
#   2. train: run the benchmark suite at its small counts (BENCH_QUICK=1),
#      which drives them as agents and an approver do: shims started and
#      listing tools, gets through shims and over gRPC, 50 concurrent
#      sessions, pairing and approval clicks, a million audit rows;
#   3. merge the profiles with the toolchain's own llvm-profdata;
#   4. build again with them (-Cprofile-use).
#
# The binaries land in target/pgo/release. On 2 cores this takes about 15
# minutes. Measured here, the shim costs about a third less CPU per call
# (docs/BENCHMARKS.md); the daemon, whose time goes mostly to SQLite (C)
# and the kernel, about the same.
#
# Needs the llvm-tools component of the toolchain that builds (installed
# here if missing): its llvm-profdata must read the profile format of
# rustc's LLVM.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  rustup component add llvm-tools >/dev/null 2>&1 || true
fi
if [ ! -x "$profdata" ]; then
  echo "release-pgo: $profdata is missing; install it with: rustup component add llvm-tools" >&2
  exit 1
fi

profiles="$root/target/pgo-profiles"
rm -rf "$profiles" && mkdir -p "$profiles"
base_flags=${RUSTFLAGS:-}

echo "release-pgo: 1/4 instrumented build"
export RUSTFLAGS="$base_flags -Cprofile-generate=$profiles"
cargo build --release --workspace --bins --locked --target-dir target/pgo-train

echo "release-pgo: 2/4 training run (the benchmark suite, small counts)"
# The suite starts the binaries with a clean environment, so they write to
# the directory given at build time; the suite's own profile (it is built
# with the same flags) goes elsewhere and is not used.
log="$root/target/pgo-train/training.log"
if ! BENCH_QUICK=1 LLVM_PROFILE_FILE="$root/target/pgo-train/harness-%p.profraw" \
  cargo bench -p agent-vault-e2e --bench bench --locked --target-dir target/pgo-train >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "release-pgo: the training run failed (whole log: $log)" >&2
  exit 1
fi
shopt -s nullglob
raw=("$profiles"/*.profraw)
if [ ${#raw[@]} -eq 0 ]; then
  echo "release-pgo: the training run left no profile in $profiles" >&2
  exit 1
fi

echo "release-pgo: 3/4 merging ${#raw[@]} profiles"
"$profdata" merge -o "$profiles/merged.profdata" "${raw[@]}"

echo "release-pgo: 4/4 optimized build"
export RUSTFLAGS="$base_flags -Cprofile-use=$profiles/merged.profdata"
cargo build --release --workspace --bins --locked --target-dir target/pgo

for b in agent-vaultd agent-vault-mcp agent-vault; do
  printf '%s\t%s bytes\n' "target/pgo/release/$b" "$(wc -c <"target/pgo/release/$b" | tr -d " ")"
done
echo "release-pgo: done. To measure them:"
echo "  RUSTFLAGS='$RUSTFLAGS' cargo bench -p agent-vault-e2e --bench bench --target-dir target/pgo"
