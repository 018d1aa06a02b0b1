# Tasks for working on mediajet. Without `just`, run the scripts directly.

export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") + "/.cache/mediajet-target")

# Install ffmpeg and nats-server if missing.
setup:
    bash scripts/setup.sh

# Run the whole service on this machine (http://127.0.0.1:8080), release build.
up *ARGS:
    bash scripts/up.sh {{ARGS}}

# The same with the debug build: quicker to rebuild, slower to run.
up-dev *ARGS:
    MEDIAJET_PROFILE=dev bash scripts/up.sh {{ARGS}}

# Run every test against real NATS, ffmpeg, SurrealDB and SMTP.
test *ARGS:
    bash scripts/test.sh {{ARGS}}

# Benchmarks B1-B5 and B7 against bare ffmpeg and NATS (release build); writes
# bench/results.md. See BENCHMARKS.md.
bench *ARGS:
    bash scripts/bench.sh {{ARGS}}

# Format and lint as CI expects.
check:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Build a release binary.
release:
    cargo build --release
