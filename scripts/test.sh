#!/usr/bin/env bash
# Installs what the tests need and runs them: unit tests and the black-box
# tests in tests/, against a real nats-server (single node and a three-node
# cluster), ffmpeg, embedded and server SurrealDB, a real SMTP server
# (aiosmtpd), and the official Python NATS client (nats-py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PATH:$(python3 -m site --user-base)/bin"
pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "$@"
}
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "test: installing aiosmtpd (the SMTP server the tests deliver to)"
  pip_install "aiosmtpd==1.4.6"
fi
if [ "$(python3 -c 'from importlib.metadata import version; print(version("nats-py"))' 2>/dev/null)" != "2.16.0" ]; then
  echo "test: installing nats-py (the NATS client that sends the documented nats CLI commands)"
  pip_install "nats-py==2.16.0"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mediajet-target}"
# The SurrealDB server the remote-database tests start; it lands next to the
# mediajet binary in the shared target dir, where the tests look for it.
cargo build --manifest-path tools/surreal-server/Cargo.toml
# A quick run of the upload benchmark (small files, debug build) first, so
# the test summary stays the last thing printed.
cargo test --bench upload
cargo test "$@"
