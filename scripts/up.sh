#!/usr/bin/env bash
# Sets up and runs the whole service on this machine: a local nats-server,
# embedded SurrealDB, the four actors and the HTTP API on 127.0.0.1:8080.
# Extra arguments go to `mediajet up` (see `mediajet up --help`).
#
# It runs a release build: a debug build converts and uploads several times
# slower. For quick edit-and-run cycles while developing, MEDIAJET_PROFILE=dev
# runs the debug build instead (`just up-dev`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PATH:$(python3 -m site --user-base)/bin"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mediajet-target}"
profile="${MEDIAJET_PROFILE:-release}"
case "$profile" in
  release | dev) ;;
  *) echo "up: MEDIAJET_PROFILE is release or dev, not '$profile'" >&2; exit 2 ;;
esac
exec cargo run --quiet --profile "$profile" --bin mediajet -- up "$@"
