# syntax=docker/dockerfile:1
# One image for both binaries, /ferrolb-controller and /ferrolb-speaker, and the
# `ferrolb` tool (`docker run --rm -i IMAGE /ferrolb convert < metallb.yaml`).
#   docker build -t ghcr.io/ferrolb/ferrolb:dev .
# The binaries link glibc and libgcc only, which distroless/cc provides; no shell,
# no package manager in the final image.

# The toolchain the tests run with (rust-version is the oldest that builds): from
# 1.90 rustc links with LLD, which lays out the speaker's code as
# speaker/hot-code.txt lists it (names as this build makes them).
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# Every workspace member, since Cargo resolves the whole workspace; the cache mounts
# keep the registry and build output between builds.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY crds crds
COPY controller controller
COPY speaker speaker
COPY e2e e2e
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ferrolb-controller -p ferrolb-speaker \
        -p ferrolb-crds --bin ferrolb-controller --bin ferrolb-speaker --bin ferrolb \
    && for b in ferrolb-controller ferrolb-speaker ferrolb; do \
         install -D -m 0755 "target/release/$b" "/out/$b"; done

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ferrolb-controller /out/ferrolb-speaker /out/ferrolb /
# The controller runs as this user. The speaker's pod sets runAsUser: 0 with every
# capability dropped but NET_RAW (ARP/NDP raw sockets): Kubernetes gives added
# capabilities to root only, as it sets no ambient ones (see docs/install.md).
USER 65532:65532
EXPOSE 7472 7473
ENTRYPOINT ["/ferrolb-controller"]
