# The mediajet image: the release binary plus Debian's ffmpeg. One image runs
# any actor (`mediajet run --actors …`), as the Nomad job does.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock nats.conf ./
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin mediajet

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/mediajet /usr/local/bin/mediajet
# A fixed uid, so that the Nomad job can hand secrets to this user alone.
RUN useradd --system --uid 10001 --home /var/lib/mediajet --create-home mediajet
USER mediajet
WORKDIR /var/lib/mediajet
ENTRYPOINT ["mediajet"]
CMD ["up", "--http", "0.0.0.0:8080"]
