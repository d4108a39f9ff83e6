# syntax=docker/dockerfile:1
#
# atlas-grpc-gateway container image.
#
#   docker build -t atlas-grpc-gateway .
#   docker run --rm -e MONGODB_ATLAS_CLIENT_ID -e MONGODB_ATLAS_CLIENT_SECRET \
#     -e ATLAS_GATEWAY_LISTEN=0.0.0.0:50051 -e ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK=true \
#     -p 127.0.0.1:50051:50051 atlas-grpc-gateway
#
# No credentials are baked in: pass them at run time (env or a Kubernetes Secret).
# See docs/deployment.md.

# ---------------------------------------------------------------------------
# Builder. Bookworm, so the binary links against the same glibc (2.36) as the
# distroless cc-debian12 runtime below. No protoc is needed: build.rs compiles
# proto/ with protox (pure Rust). The slim image already has gcc/libc6-dev,
# which is all aws-lc-sys (rustls' crypto provider) needs.
# ---------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder

WORKDIR /src
COPY . .

# Cache mounts keep the crates.io registry and target/ between builds (BuildKit);
# the binary is copied out of the cached target/ in the same step because cache
# mounts are not part of the image layer. --locked: build exactly Cargo.lock.
# --no-default-features: the production binary, without the `emulator` feature, so
# the image carries no Atlas emulator, no `dev`/`emulator` subcommands and none of
# the crates only they use (axum, the Digest server side); `serve`, `healthcheck`
# and every flag are the same. .ci/lint-deploy.sh checks this line.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --no-default-features --bin atlas-grpc-gateway \
 && install -D -m 0755 target/release/atlas-grpc-gateway /out/atlas-grpc-gateway

# ---------------------------------------------------------------------------
# Runtime: distroless cc (glibc + libgcc + CA certificates, no shell, no package
# manager), the ":nonroot" variant. Chosen over debian:bookworm-slim because:
#  - the binary verifies Atlas' TLS certificate with rustls-platform-verifier,
#    which reads the OS trust store: distroless ships /etc/ssl/certs, so no
#    apt-get install ca-certificates step (and no unpinned apt packages);
#  - a much smaller attack surface (no shell, no apt) and a ready-made non-root
#    user (nonroot, uid/gid 65532), so no useradd step.
# Health checks therefore cannot use curl/grpc_health_probe; the binary has its
# own `healthcheck` subcommand instead.
# ---------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="atlas-grpc-gateway" \
      org.opencontainers.image.description="gRPC sidecar in front of the MongoDB Atlas Admin API (link tokens, API keys) with service-account/API-key auth and rich errors" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /out/atlas-grpc-gateway /usr/local/bin/atlas-grpc-gateway

# gRPC on loopback (127.0.0.1:50051), like the binary: right for a sidecar,
# whose app and exec probes share the pod's network namespace. A gateway on a
# non-loopback address refuses to start unless callers must authenticate
# (caller tokens or mTLS) or ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK=true says
# so explicitly: anyone who reaches it could mint Atlas API keys. For
# `docker run -p` (which forwards to the container's eth0) set
# ATLAS_GATEWAY_LISTEN=0.0.0.0:50051 and one of those; see docs/deployment.md.
ENV ATLAS_GATEWAY_LISTEN=127.0.0.1:50051 \
    ATLAS_GATEWAY_METRICS_LISTEN=0.0.0.0:9464 \
    ATLAS_GATEWAY_LOG_FORMAT=json

# 50051: gRPC (AtlasGateway, grpc.health.v1, reflection). 9464: Prometheus /metrics.
EXPOSE 50051 9464

# distroless' "nonroot" user, written numerically (65532 = nonroot) so that
# Kubernetes' runAsNonRoot can verify it without a runAsUser override (kubelet
# refuses to start a runAsNonRoot container whose image user is a name).
USER 65532:65532

# `healthcheck` calls grpc.health.v1.Health/Check on the address in
# ATLAS_GATEWAY_LISTEN (0.0.0.0 is dialled as 127.0.0.1) and exits 0 only on
# SERVING. Docker uses this; Kubernetes ignores HEALTHCHECK (see the probes in
# deploy/kubernetes/sidecar.yaml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/atlas-grpc-gateway", "healthcheck"]

# SIGTERM (docker stop / kubelet) → health NOT_SERVING, stop accepting, drain
# in-flight calls within ATLAS_GATEWAY_SHUTDOWN_GRACE, exit 0. Exec form, so the
# gateway is PID 1 and receives the signal directly.
ENTRYPOINT ["/usr/local/bin/atlas-grpc-gateway"]
CMD ["serve"]
