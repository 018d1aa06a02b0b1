#!/usr/bin/env bash
# Runs the benchmarks (B1-B7, release build) and writes bench/results.md.
# Installs what they need first: ffmpeg and nats-server (scripts/setup.sh),
# wrk (a Debian package) for the HTTP load of B5, and the static ffmpeg 7.0.2
# build (GPLv3) that the PyPI package imageio-ffmpeg ships, for the second
# B4 row.
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
if [ "$(python3 -c "from importlib.metadata import version; print(version('imageio-ffmpeg'))" 2>/dev/null)" != "0.6.0" ]; then
  echo "bench: installing imageio-ffmpeg 0.6.0 (a static ffmpeg build)"
  python3 -m pip install --quiet --disable-pip-version-check "imageio-ffmpeg==0.6.0" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "imageio-ffmpeg==0.6.0"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mediajet-target}"
cargo bench --bench service "$@"
