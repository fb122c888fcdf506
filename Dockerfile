# syntax=docker/dockerfile:1
# One build for the three images (they share every dependency); pick one with --target:
#   docker build --target emulator -t storage-emulator .
#   docker build --target app      -t upload-app .
#   docker build --target worker   -t image-worker .
# With no registry to pull from, scripts/docker-images.sh builds the same images from
# binaries built on the host (docker/Dockerfile.prebuilt).
# Base images are build arguments so an offline mirror can be substituted, e.g.
#   --build-arg RUST_IMAGE=mirror.local/rust:1-bookworm --build-arg RUNTIME_IMAGE=mirror.local/debian:bookworm-slim
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p emulator -p app -p worker \
 && mkdir -p /out \
 && cp target/release/emulator target/release/app target/release/worker /out/

FROM ${RUNTIME_IMAGE} AS runtime
# CA roots for https to real Azure; nothing else: health checks are built into the binaries.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin svc \
 && mkdir -p /data && chown svc /data
USER 10001

FROM runtime AS emulator
COPY --from=build /out/emulator /usr/local/bin/emulator
# Azurite's command names, so its command lines (compose files, Testcontainers) work as they are.
USER root
RUN for n in azurite azurite-blob azurite-queue; do ln -s emulator /usr/local/bin/$n; done
USER 10001
WORKDIR /data
VOLUME /data
EXPOSE 10000 10001
# Probed every 100 ms while starting (engines from Docker 25; older ones ignore it), then
# every 5 s.
HEALTHCHECK --interval=5s --timeout=3s --retries=3 --start-period=30s --start-interval=100ms \
  CMD ["emulator", "--healthcheck"]
# As Microsoft's Azurite image: a command, not an entrypoint, so `azurite-blob ...` and the
# like replace it.
CMD ["azurite", "-l", "/data", "--blobHost", "0.0.0.0", "--queueHost", "0.0.0.0"]

FROM runtime AS app
COPY --from=build /out/app /usr/local/bin/app
ENV APP_LISTEN=0.0.0.0:3000
EXPOSE 3000
HEALTHCHECK --interval=5s --timeout=6s --start-period=5s --retries=3 CMD ["app", "--healthcheck"]
ENTRYPOINT ["app"]

FROM runtime AS worker
COPY --from=build /out/worker /usr/local/bin/worker
# SIGTERM: stop taking jobs, finish or release running ones, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["worker"]
