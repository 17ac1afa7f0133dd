#!/usr/bin/env bash
# Builds agent-vaultd, agent-vault-mcp and agent-vault in one release build
# (their shared dependencies compiled once) and puts the three programs in
# one directory on your PATH.
#
#   ./scripts/install.sh                  # into ~/.cargo/bin (where cargo install puts programs)
#   ./scripts/install.sh --bin-dir DIR    # anywhere else, e.g. ~/.local/bin
set -euo pipefail

bin_dir="${CARGO_HOME:-$HOME/.cargo}/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir)
      [ $# -ge 2 ] || { echo "install.sh: --bin-dir needs a directory" >&2; exit 2; }
      bin_dir="$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,7s/^# \{0,1\}//p' "$0"
      exit 0
      ;;
    *)
      echo "install.sh: unknown argument '$1'; the only option is --bin-dir DIR" >&2
      exit 2
      ;;
  esac
done

# A relative --bin-dir is taken from where you ran this, not the checkout.
case "$bin_dir" in
  /*) ;;
  *) bin_dir="$PWD/$bin_dir" ;;
esac
cd "$(dirname "$0")/.."
programs=(agent-vaultd agent-vault-mcp agent-vault)
cargo build --release --locked -p agent-vaultd -p agent-vault-mcp -p agent-vault
target="${CARGO_TARGET_DIR:-target}/release"
mkdir -p "$bin_dir"
for p in "${programs[@]}"; do
  # A copy beside it, then a rename: a running daemon keeps its old file.
  cp "$target/$p" "$bin_dir/.$p.new"
  chmod 0755 "$bin_dir/.$p.new"
  mv -f "$bin_dir/.$p.new" "$bin_dir/$p"
done
echo "Installed agent-vaultd, agent-vault-mcp and agent-vault $("$bin_dir/agent-vault" --version | awk '{print $2}') into $bin_dir."
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) echo "$bin_dir is not on your PATH: add it (export PATH=\"$bin_dir:\$PATH\" in your shell's profile)." ;;
esac
if "$bin_dir/agent-vault" status >/dev/null 2>&1; then
  echo "An agent-vaultd is running: \`agent-vault stop\` ends it, and the next agent (or \`agent-vaultd\`) starts the new one."
fi
