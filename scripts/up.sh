#!/usr/bin/env bash
# Sets up and runs the whole service on this machine: a local nats-server,
# embedded SurrealDB, the four actors and the HTTP API on 127.0.0.1:8080.
# Extra arguments go to `mediajet up` (see `cargo run -- up --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PATH:$(python3 -m site --user-base)/bin"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mediajet-target}"
exec cargo run --quiet --bin mediajet -- up "$@"
