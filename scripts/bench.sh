#!/usr/bin/env bash
# Runs the benchmarks (B1-B5, release build) and writes bench/results.md.
# Installs what they need first: ffmpeg and nats-server (scripts/setup.sh)
# and wrk (a Debian package) for the HTTP load of B5.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH="$PATH:$(python3 -m site --user-base)/bin"
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mediajet-target}"
cargo bench --bench service "$@"
