# Multi-stage build of openclaws-controller: a Rust builder, then a slim non-root runtime.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# The build context holds the production crates only (.dockerignore). Cargo loads every workspace
# member and the root's dev-dependencies, so the simulator and the test kit come as manifests with
# empty sources (and the kit's bench as an empty file): none of them is compiled for the binary.
COPY . .
RUN mkdir -p crates/fly-sim/src crates/testkit/src crates/testkit/benches \
 && touch crates/fly-sim/src/lib.rs crates/testkit/src/lib.rs crates/testkit/benches/fleet.rs
# The commit shown in openclaws_build_info{git_sha}: `fly deploy --build-arg OPENCLAWS_GIT_SHA=$(git rev-parse --short HEAD)`.
ARG OPENCLAWS_GIT_SHA=unknown
ENV OPENCLAWS_GIT_SHA=${OPENCLAWS_GIT_SHA}
RUN cargo build --release --locked --bin openclaws-controller

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin openclaws
COPY --from=builder /src/target/release/openclaws-controller /usr/local/bin/openclaws-controller
USER 10001:10001
ENV OPENCLAWS_LISTEN=0.0.0.0:8080 \
    OPENCLAWS_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/openclaws-controller"]
CMD ["serve"]
