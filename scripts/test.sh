#!/usr/bin/env bash
# Installs what the tests need and runs them: unit tests and the black-box
# tests in tests/, against a real nats-server (single node and a three-node
# cluster), ffmpeg, embedded and server SurrealDB, a real SMTP server
# (aiosmtpd), the official Python NATS client (nats-py), schemathesis, and
# headless Chromium for the web page, the official tus clients (tus-js-client
# and tuspy), pyloudnorm for loudness, mutagen for tags, feedparser and
# podcastparser for the podcast feeds, standardwebhooks and svix for the
# webhooks' signatures, and Prometheus with promtool.
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
pip_version() {
  python3 -c "from importlib.metadata import version; print(version('$1'))" 2>/dev/null || true
}
if [ "$(pip_version nats-py)" != "2.16.0" ]; then
  echo "test: installing nats-py (the NATS client that sends the documented nats CLI commands)"
  pip_install "nats-py==2.16.0"
fi
if [ "$(pip_version schemathesis)" != "4.32.5" ]; then
  echo "test: installing schemathesis (fuzzes the HTTP API against its OpenAPI document)"
  pip_install "schemathesis==4.32.5"
fi
if [ "$(pip_version tuspy)" != "1.1.0" ]; then
  echo "test: installing tuspy (the official Python tus client the resumable uploads are checked with)"
  pip_install "tuspy==1.1.0"
fi
if [ "$(pip_version pyloudnorm)" != "0.2.0" ] || [ "$(pip_version scipy)" != "1.17.1" ]; then
  echo "test: installing pyloudnorm (the BS.1770 loudness meter the normalized audio is checked with)"
  pip_install "numpy==2.4.6" "scipy==1.17.1" "pyloudnorm==0.2.0"
fi
if [ "$(pip_version feedparser)" != "6.0.14" ] || [ "$(pip_version podcastparser)" != "0.6.11" ]; then
  echo "test: installing feedparser and podcastparser (read the podcast feeds back)"
  pip_install "sgmllib3k==1.0.0" "feedparser==6.0.14" "podcastparser==0.6.11"
fi
if [ "$(pip_version standardwebhooks)" != "1.1.0" ] || [ "$(pip_version svix)" != "2.9.1" ]; then
  echo "test: installing standardwebhooks and svix (verify the webhooks' signatures)"
  pip_install "standardwebhooks==1.1.0" "svix==2.9.1"
fi
if [ "$(pip_version mutagen)" != "1.47.0" ]; then
  echo "test: installing mutagen (reads back the tags, pictures and chapters of the audio)"
  pip_install "mutagen==1.47.0"
fi
# The web page test drives Debian's Chromium through playwright-core (npm,
# pinned in tests/web/package-lock.json; it downloads no browser of its own).
# The network partition test cuts a transcoder off with an nftables rule;
# the benchmark's B5 puts load on the API with wrk.
missing=""
command -v chromium >/dev/null || missing="chromium"
command -v npm >/dev/null || missing="$missing nodejs npm"
command -v nft >/dev/null || missing="$missing nftables"
command -v wrk >/dev/null || missing="$missing wrk"
# The cluster tests make their TLS certificates with openssl.
command -v openssl >/dev/null || missing="$missing openssl"
# The operations tests scrape a split deployment with a real Prometheus and
# check metrics, rules and configs with its promtool.
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing="$missing prometheus"
if [ -n "$missing" ]; then
  echo "test: installing $missing (for the web page, network partition and benchmark runs)"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  # shellcheck disable=SC2086 # a list of package names
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
npm ci --prefix tests/web --no-audit --no-fund --silent
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mediajet-target}"
# A failed run should end with each failure's message and place; backtraces
# would push them out of the last screenful (and out of CI's excerpt).
# Set MEDIAJET_TEST_BACKTRACE=1 to have them.
export RUST_BACKTRACE="${MEDIAJET_TEST_BACKTRACE:-0}"
# The SurrealDB server the remote-database tests start; it lands next to the
# mediajet binary in the shared target dir, where the tests look for it.
cargo build --manifest-path tools/surreal-server/Cargo.toml
# A quick run of the benchmarks (small inputs, debug build) first, so the
# test summary stays the last thing printed.
cargo test --bench service
# A few tests need root (they mount a tmpfs, make a network namespace, or
# check ffmpeg runs as another user); they are marked ignored so a run
# without root reports them as skipped, never as passed. As root they run,
# and fail if what they need cannot be had.
if [ "$(id -u)" -eq 0 ]; then
  case " $* " in
    *" -- "*) cargo test "$@" --include-ignored ;;
    *) cargo test "$@" -- --include-ignored ;;
  esac
else
  echo "test: not root, so the tests that need root are skipped (reported as ignored)"
  cargo test "$@"
fi
