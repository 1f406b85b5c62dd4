# runnel's container image: one static binary on distroless, as a non-root
# user. Build it with BuildKit (the default builder of Docker 23 and later):
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t runnel .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/runnel:TAG --push .
#
# The build stage runs on the machine's own platform and cross-compiles for
# each target (no emulation). docs/operations.md: running it, the database
# volume, compose with nginx.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=devel
# deploy/container/build.sh is the build, here and in the tests.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION sh deploy/container/build.sh /out/runnel
# The mount point of the database volume, owned by the user runnel runs as:
# a new named volume takes its owner from it.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/runnel /runnel
COPY --from=build --chown=65532:65532 /out/data /data
# nonroot, by number, so that an orchestrator can tell it is not root.
USER 65532:65532
EXPOSE 8080
# Liveness and readiness: an HTTP probe on GET /healthz (the image has no
# shell or curl for a HEALTHCHECK command).
ENTRYPOINT ["/runnel"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
